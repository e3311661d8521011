// Winograd's input and output transforms in WebAssembly SIMD, emitted from this file when the library loads (see
// encoder.ts), over the same memory as the thread's SIMD GEMM (sgemm.ts): x's rows are copied in once per tile
// block, the transformed tiles V are written where the GEMMs read them, and the outputs are written into a staging
// copy of y's rows that the caller copies out in whole runs (or, over the resident memory, x's and y's rows are read
// and written where they lie: residentWinograd). The arithmetic is winograd.ts's JavaScript transforms'
// (float64, the same operations in the same order), two tiles per f64x2, so results are the same bits.
//
//   pad:     rows of x (float32, plane after plane) → zero-padded planes, so that every tile's 6×6 patch is inside;
//   vin64:   Bᵀ d B of each tile of a block, into float64 V panels of 4 tiles (the `wino64` GEMM's B-panels);
//   vin64s:  the same, each V(ξ) times the filter transform's scales (with U from `w64Int`);
//   gemm64c: wino64's GEMMs over a chunk of input channels, for U transformed a chunk at a time;
//   w64:     the float64 weight transform of 4 output channels into U's A-panels (`w64Int`: without G's scales);
//   vin32x8: the same, each value rounded to float32 once, into V panels of 8 tiles (the float32 `wino` GEMM's);
//   vin32x4: likewise into V panels of 4 tiles (the float32 `wino4` GEMM's, for blocks of at most 4 tiles);
//   vin32x4s: the same, each V(ξ) times the filter transform's scales (with U from `wchunk`);
//   wchunk:  the float32 weight transform of 4 output channels × up to KB input channels into a U chunk, without
//            G's scales;
//   wino8x4: the 36 float32 GEMMs of 8 output channels × 4 tiles (for calls with few tiles);
//   vout4/8: Aᵀ M A of 4 output channels × a panel of 4 or 8 tiles (the GEMMs' float64 blocks), the epilogue, one
//            rounding to float32, and the stores of the part of each 4×4 tile inside the output.

import { encodeModule, f32, f32x4, f64, f64x2, forLoop, i32, if_, local, Locals, v128, ValType, uleb, type Expr, type Func } from './encoder.js';
import { overResident, usesFma, wasm, type WasmMemory } from './features.js';
import { filterTransformLocals, KB, type FilterTransformLocals, kBlocks, reluLanes, simdGemmMemory, wino64Func, wino64Loop, wino64Regs } from './sgemm.js';

const { i32: I32, v128: V128 } = ValType;
const get = local.get;

// Instructions the shared encoder lacks: i32.shr_u and lane stores (SIMD 0x5a, 0x5b).
const i32shrU = (a: Expr, b: Expr): Expr => [...a, ...b, 0x76];
const storeLane = (code: number, align: number) => (addr: Expr, v: Expr, lane: number, offset = 0): Expr =>
  [...addr, ...v, 0xfd, ...uleb(code), align, ...uleb(offset), lane];
/** Stores lane `lane` (32 bits) of v. */
const store32Lane = storeLane(0x5a, 2);
/** Stores lane `lane` (64 bits) of v. */
const store64Lane = storeLane(0x5b, 3);

/** call of function `index` of this module, on the values of args. */
const call = (index: number, ...args: Expr[]): Expr => [...args.flat(), 0x10, ...uleb(index)];

/** 32-bit-lane shuffle of a and b (lanes 0–3 from a, 4–7 from b). */
const sh = f32x4.shuffle;
const add = f64x2.add, sub = f64x2.sub, mul = f64x2.mul;

/** Epilogue flags of `vout`: y's old value added first, then ·scale, + shift, + residual, then ReLU. */
export const OUT_ACC = 1, OUT_SCALE = 2, OUT_SHIFT = 4, OUT_RES = 8, OUT_RELU = 16;

/**
 * The constants of G = diag(D) · G', F(4×4, 3×3)'s filter transform split into an integer matrix
 * G' = (1 0 0; 1 1 1; 1 −1 1; 1 2 4; 1 −2 4; 0 0 1) and its row scales D = (1/4, −1/6, −1/6, 1/24, 1/24, 1), so that
 * U = G g Gᵀ = D_r·D_e·(G' g G'ᵀ)[r][e]. G' g G'ᵀ takes adds and exact doublings only; the scales go either into U
 * (`w64`) or, when there are fewer tiles than output channels to scale, into V (`w64Int` with `vin64s`).
 */
export const G_SCALE = [0.25, -1 / 6, -1 / 6, 1 / 24, 1 / 24, 1] as const;

/**
 * `pad(src, srcPlane, wi, rows, ci, dst, dstPlane, pw, ph, first, colOff, bad)` (byte addresses and strides): for each
 * of ci planes, ph rows of pw bytes at dst + ic·dstPlane + py·pw, zero except row py = first + r (0 ≤ r < rows), whose
 * bytes from colOff on are the wi float32 of source row r at src + ic·srcPlane + 4·wi·r. pw is a multiple of 16.
 * Every value v copied adds v − v (0, or NaN for a NaN or ±Inf) into the 4 float32 at `bad`, so that the caller learns
 * whether the rows it copied are all finite without a pass of its own.
 */
function padFunc(): Func {
  const [src, srcPlane, wi, rows, ci, dst, dstPlane, pw, ph, first, colOff, bad] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
  const L = new Locals(12);
  const ic = L.add(I32), py = L.add(I32), r = L.add(I32), s = L.add(I32), d = L.add(I32), c = L.add(I32), end4 = L.add(I32), z = L.add(I32);
  const v = L.add(V128), acc = L.add(V128);
  return {
    name: 'pad',
    params: new Array<ValType>(12).fill(I32),
    results: [],
    locals: L.types,
    body: [
      local.set(acc, v128.load(get(bad))),
      local.set(end4, i32.and(get(wi), i32.const(-4))),
      forLoop(ic, i32.const(0), get(ci), 1,
        forLoop(py, i32.const(0), get(ph), 1,
          local.set(d, i32.add(i32.add(get(dst), i32.mul(get(ic), get(dstPlane))), i32.mul(get(py), get(pw)))),
          local.set(r, i32.sub(get(py), get(first))),
          if_(i32.and(i32.ge_s(get(r), i32.const(0)), i32.lt_s(get(r), get(rows))), [
            // A row of x: zeros only around it (the 16-byte chunks before colOff, and from the one holding the
            // row's end on), then the row over them.
            forLoop(z, i32.const(0), get(colOff), 16, v128.store(i32.add(get(d), get(z)), v128.zero())),
            forLoop(z, i32.and(i32.add(get(colOff), i32.shl(get(wi), i32.const(2))), i32.const(-16)), get(pw), 16,
              v128.store(i32.add(get(d), get(z)), v128.zero())),
            local.set(s, i32.add(i32.add(get(src), i32.mul(get(ic), get(srcPlane))), i32.shl(i32.mul(get(r), get(wi)), i32.const(2)))),
            local.set(d, i32.add(get(d), get(colOff))),
            forLoop(c, i32.const(0), get(end4), 4,
              local.set(v, v128.load(i32.add(get(s), i32.shl(get(c), i32.const(2))))),
              v128.store(i32.add(get(d), i32.shl(get(c), i32.const(2))), get(v)),
              local.set(acc, f32x4.add(get(acc), f32x4.sub(get(v), get(v))))),
            forLoop(c, get(end4), get(wi), 1,
              i32.store(i32.add(get(d), i32.shl(get(c), i32.const(2))), i32.load(i32.add(get(s), i32.shl(get(c), i32.const(2))))),
              local.set(v, f32x4.splat(f32.load(i32.add(get(s), i32.shl(get(c), i32.const(2)))))),
              local.set(acc, f32x4.add(get(acc), f32x4.sub(get(v), get(v))))),
          ], [forLoop(z, i32.const(0), get(pw), 16, v128.store(i32.add(get(d), get(z)), v128.zero()))]))),
      v128.store(get(bad), get(acc)),
    ],
  };
}

/**
 * `vin64` / `vin32x8` / `vin32x4(tab, nt, ci, pitch, pw, v, vxi)`: the input transform of nt tiles × ci channels.
 * Tile j's 6×6 patch of channel ic: 6 rows of 6 float32 at byte i32[tab + 4j] + ic·pitch + row·pw (padded planes:
 * no edge). V of (tile j, channel ic) at ξ = 6·row + col goes to v + ξ·vxi + ⌊j/nr⌋·nr·size·ci + ic·nr·size +
 * (j mod nr)·size (float64, nr = 4; or rounded to float32, nr = 8 or 4): winograd.ts's inputTransform layout. Two tiles per f64x2; with nt odd the
 * last tile fills both lanes.
 */
function vinFunc(f32: boolean, nr: number, scaled = false): Func {
  const [tab, nt, ci, pitch, pw, v, vxi] = [0, 1, 2, 3, 4, 5, 6];
  const L = new Locals(7);
  const j = L.add(I32), ic = L.add(I32), pa = L.add(I32), pb = L.add(I32), out = L.add(I32), addr = L.add(I32);
  const rowOff = L.addMany(I32, 6);
  const c4 = L.add(V128), c2 = L.add(V128);
  const T = L.addMany(V128, 5) as [number, number, number, number, number];
  const lo = L.addMany(V128, 2), hi = L.addMany(V128, 2);
  const P = L.addMany(V128, 36), D = L.addMany(V128, 36);
  /** Bytes per input channel of a panel of nr tiles. */
  const panel = nr * (f32 ? 4 : 8);
  // Bᵀ applied to (x0 … x5): the six results, as winograd.ts's btCol and row pass compute them (the common parts
  // a = x4 − 4x2, b = x3 − 4x1, s = x4 − x2, e = x3 − x1, f = 2e in the T locals first).
  const bt = (x: Expr[]): { pre: Expr[]; out: Expr[] } => {
    const [x0, x1, x2, x3, x4, x5] = x as [Expr, Expr, Expr, Expr, Expr, Expr];
    const [a, b, s, e, f] = T;
    return {
      pre: [
        local.set(a, sub(x4, mul(get(c4), x2))),
        local.set(b, sub(x3, mul(get(c4), x1))),
        local.set(s, sub(x4, x2)),
        local.set(e, sub(x3, x1)),
        local.set(f, mul(get(c2), get(e))),
      ],
      out: [
        add(mul(get(c4), sub(x0, x2)), get(s)),
        add(get(a), get(b)),
        sub(get(a), get(b)),
        add(get(s), get(f)),
        sub(get(s), get(f)),
        sub(sub(x5, x3), mul(get(c4), get(e))),
      ],
    };
  };
  const perChannel: Expr[] = [];
  for (let r = 0; r < 6; r++) {
    perChannel.push(
      local.set(lo[0]!, v128.load(i32.add(get(pa), get(rowOff[r]!)))),
      local.set(hi[0]!, v128.load64_zero(i32.add(get(pa), get(rowOff[r]!)), 16)),
      local.set(lo[1]!, v128.load(i32.add(get(pb), get(rowOff[r]!)))),
      local.set(hi[1]!, v128.load64_zero(i32.add(get(pb), get(rowOff[r]!)), 16)),
    );
    // Interleave the two tiles' rows into [a0 b0 a1 b1], [a2 b2 a3 b3], [a4 b4 a5 b5] (unpack shuffles, one
    // instruction each), then widen each half: three such shuffles and three swizzles per row where a general
    // two-input shuffle per column took several instructions each on x64.
    const [u01, u23, u45] = [hi[1]!, lo[0]!, hi[0]!];
    perChannel.push(
      local.set(u45, sh(get(hi[0]!), get(hi[1]!), [0, 4, 1, 5])),
      local.set(u01, sh(get(lo[0]!), get(lo[1]!), [0, 4, 1, 5])),
      local.set(u23, sh(get(lo[0]!), get(lo[1]!), [2, 6, 3, 7])),
    );
    [u01, u23, u45].forEach((u, k) => perChannel.push(
      local.set(P[6 * r + 2 * k]!, f64x2.promote_low_f32x4(get(u))),
      local.set(P[6 * r + 2 * k + 1]!, f64x2.promote_low_f32x4(f32x4.high(get(u)))),
    ));
  }
  // Column pass: Bᵀ down each column → D[row·6 + col]; row pass: Bᵀ along each row → V at ξ = 6·row + col.
  for (let c = 0; c < 6; c++) {
    const col = bt([0, 1, 2, 3, 4, 5].map((r) => get(P[6 * r + c]!)));
    perChannel.push(...col.pre);
    for (let r = 0; r < 6; r++) perChannel.push(local.set(D[6 * r + c]!, col.out[r]!));
  }
  perChannel.push(local.set(addr, get(out)));
  for (let r = 0; r < 6; r++) {
    const row = bt([0, 1, 2, 3, 4, 5].map((c) => get(D[6 * r + c]!)));
    perChannel.push(...row.pre);
    for (let e = 0; e < 6; e++) {
      // vin64s: V(ξ) times G_SCALE[r]·G_SCALE[e], the scales `w64Int` leaves out of U.
      const d = G_SCALE[r]! * G_SCALE[e]!;
      const val = scaled && d !== 1 ? mul(row.out[e]!, f64x2.splat(f64.const(d))) : row.out[e]!;
      perChannel.push(f32
        ? store64Lane(get(addr), f32x4.demote_f64x2_zero(val), 0)
        : v128.store(get(addr), val));
      if (r < 5 || e < 5) perChannel.push(local.set(addr, i32.add(get(addr), get(vxi))));
    }
  }
  perChannel.push(
    local.set(pa, i32.add(get(pa), get(pitch))),
    local.set(pb, i32.add(get(pb), get(pitch))),
    local.set(out, i32.add(get(out), i32.const(panel))),
  );
  return {
    name: f32 ? `vin32x${nr}${scaled ? 's' : ''}` : scaled ? 'vin64s' : 'vin64',
    params: new Array<ValType>(7).fill(I32),
    results: [],
    locals: L.types,
    body: [
      local.set(c4, f64x2.splat(f64.const(4))),
      local.set(c2, f64x2.splat(f64.const(2))),
      ...rowOff.map((x, r) => local.set(x, i32.mul(get(pw), i32.const(r)))),
      forLoop(j, i32.const(0), get(nt), 2,
        local.set(pa, i32.load(i32.add(get(tab), i32.shl(get(j), i32.const(2))))),
        local.set(pb, get(pa)),
        if_(i32.lt_s(i32.add(get(j), i32.const(1)), get(nt)), [local.set(pb, i32.load(i32.add(get(tab), i32.shl(get(j), i32.const(2))), 4))]),
        local.set(out, i32.add(get(v), i32.add(
          i32.mul(i32shrU(get(j), i32.const(Math.log2(nr))), i32.mul(get(ci), i32.const(panel))),
          i32.mul(i32.and(get(j), i32.const(nr - 1)), i32.const(f32 ? 4 : 8))))),
        forLoop(ic, i32.const(0), get(ci), 1, ...perChannel)),
    ],
  };
}

/**
 * `vout4` / `vout8(m, nt, tab, nc, flags, scale, shift, resDelta, rowPitch, c0, scratch)`: the output transform of
 * channels i < nc (≤ 4) × tiles j < nt of a GEMM block (float64, m + 8·(ξ·4·nr + i·nr + j): wino64's 4×4 blocks,
 * nr = 4, or wino's 4×8, nr = 8). Tile j's entry at tab + 16j: i32 [byte address of its (row 0, column 0) for
 * channel 0, channel stride, rows, columns] (rows, columns ≤ 4: the part inside the output); channel i is stored
 * as the table's channel c0 + i. Each value v (float64), with the
 * flags: y's float32 there + v (OUT_ACC), ·scale[i] (doubles at scale), + shift[i], + the float32 at resDelta bytes
 * past its address (OUT_RES); rounded to float32 once; ReLU on its bits (OUT_RELU); stored. Rows are rowPitch bytes
 * apart. winograd.ts's outputBlock, the same operations in the same order, two tiles per f64x2. The column pass's
 * 24 results go to the row pass through scratch (384 bytes): each column's stores come before the next column's
 * loads of M, so the compiled code cannot load all 36 values of M first, which it did with the results in locals
 * (spilling most of them: 30% slower).
 */
function voutFunc(nr: number): Func {
  const [m, nt, tab, nc, flags, scale, shift, resDelta, rowPitch, c0, scratch] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  const L = new Locals(11);
  const i = L.add(I32), j = L.add(I32), te = L.add(I32), lane = L.add(I32), ic = L.add(I32);
  const ya = L.add(I32), yb = L.add(I32), ra = L.add(I32), rb = L.add(I32), ca = L.add(I32), cb = L.add(I32), addr = L.add(I32);
  const sc = L.add(V128), shf = L.add(V128), c2 = L.add(V128), c4 = L.add(V128), c8 = L.add(V128);
  const T = L.addMany(V128, 4), O = L.addMany(V128, 4), la = L.add(V128), lb = L.add(V128), va = L.add(V128), vb = L.add(V128);
  const xsB = 8 * 4 * nr;
  const mv = (xi: number): Expr => v128.load(get(lane), xi * xsB);
  const tileBody: Expr[] = [];
  // Column pass: Aᵀ (4×6) down each of the 6 columns → T[row·6 + col], rows 0..3, at scratch + 16·(row·6 + col)
  // (the row pass reads them there: a transpose through memory; in registers, the 24 values spilled).
  for (let c = 0; c < 6; c++) {
    const [m0, m1, m2, m3, m4, m5] = [0, 1, 2, 3, 4, 5].map((k) => mv(6 * k + c)) as [Expr, Expr, Expr, Expr, Expr, Expr];
    // s = m1 + m2, d = m1 − m2, u = m3 + m4, e = m3 − m4
    const [s, d, u, e] = T as [number, number, number, number];
    tileBody.push(
      local.set(s, add(m1, m2)), local.set(d, sub(mv(6 + c), mv(12 + c))),
      local.set(u, add(m3, m4)), local.set(e, sub(mv(18 + c), mv(24 + c))),
      v128.store(get(scratch), add(add(m0, get(s)), get(u)), 16 * c),
      v128.store(get(scratch), add(get(d), mul(get(c2), get(e))), 16 * (6 + c)),
      v128.store(get(scratch), add(get(s), mul(get(c4), get(u))), 16 * (12 + c)),
      v128.store(get(scratch), add(add(get(d), mul(get(c8), get(e))), m5), 16 * (18 + c)),
    );
  }
  // Row r: Aᵀ along the row → O[0..3] (lanes: tiles j, j + 1), epilogue, rounding, stores.
  // Column c of tile a's and tile b's float32 row as one f64x2, from va = [a0 b0 a1 b1] and vb = [a2 b2 a3 b3].
  const f32pair = (c: number): Expr => {
    const v = get(c < 2 ? va : vb);
    return f64x2.promote_low_f32x4(c % 2 === 0 ? v : f32x4.high(v));
  };
  for (let r = 0; r < 4; r++) {
    const t = (c: number): Expr => v128.load(get(scratch), 16 * (6 * r + c));
    const rowCode: Expr[] = [
      local.set(O[0]!, add(t(1), t(2))), local.set(O[1]!, sub(t(1), t(2))),
      local.set(O[2]!, add(t(3), t(4))), local.set(O[3]!, sub(t(3), t(4))),
      // O[0] = s12, O[1] = d12, O[2] = s34, O[3] = d34 → the four outputs
      local.set(va, add(add(t(0), get(O[0]!)), get(O[2]!))),
      local.set(vb, add(get(O[0]!), mul(get(c4), get(O[2]!)))),
      local.set(O[0]!, get(va)),
      local.set(va, add(get(O[1]!), mul(get(c2), get(O[3]!)))),
      local.set(O[3]!, add(add(get(O[1]!), mul(get(c8), get(O[3]!))), t(5))),
      local.set(O[1]!, get(va)),
      local.set(O[2]!, get(vb)),
    ];
    const loadPair = (delta: Expr | null): Expr[] => [
      local.set(la, v128.load(delta === null ? get(ya) : i32.add(get(ya), delta))),
      local.set(lb, v128.load(delta === null ? get(yb) : i32.add(get(yb), delta))),
      local.set(va, sh(get(la), get(lb), [0, 4, 1, 5])),
      local.set(vb, sh(get(la), get(lb), [2, 6, 3, 7])),
    ];
    const applyPair = (op: (o: Expr, x: Expr) => Expr): Expr[] => [0, 1, 2, 3].map((c) => local.set(O[c]!, op(get(O[c]!), f32pair(c))));
    rowCode.push(
      if_(i32.and(get(flags), i32.const(OUT_ACC)), [...loadPair(null), ...applyPair((o, x) => add(x, o))]),
      if_(i32.and(get(flags), i32.const(OUT_SCALE)), [0, 1, 2, 3].map((c) => local.set(O[c]!, mul(get(O[c]!), get(sc))))),
      if_(i32.and(get(flags), i32.const(OUT_SHIFT)), [0, 1, 2, 3].map((c) => local.set(O[c]!, add(get(O[c]!), get(shf))))),
      if_(i32.and(get(flags), i32.const(OUT_RES)), [...loadPair(get(resDelta)), ...applyPair((o, x) => add(o, x))]),
      // Round: [a0 b0 a1 b1], [a2 b2 a3 b3] → tile a's row, tile b's row.
      local.set(la, f32x4.join_low(f32x4.demote_f64x2_zero(get(O[0]!)), f32x4.demote_f64x2_zero(get(O[1]!)))),
      local.set(lb, f32x4.join_low(f32x4.demote_f64x2_zero(get(O[2]!)), f32x4.demote_f64x2_zero(get(O[3]!)))),
      local.set(va, sh(get(la), get(lb), [0, 2, 4, 6])),
      local.set(vb, sh(get(la), get(lb), [1, 3, 5, 7])),
      if_(i32.and(get(flags), i32.const(OUT_RELU)), [local.set(va, reluLanes(get(va))), local.set(vb, reluLanes(get(vb)))]),
      if_(i32.gt_s(get(ra), i32.const(r)), storeRow(get(ya), va, ca)),
      if_(i32.gt_s(get(rb), i32.const(r)), storeRow(get(yb), vb, cb)),
      local.set(ya, i32.add(get(ya), get(rowPitch))),
      local.set(yb, i32.add(get(yb), get(rowPitch))),
    );
    tileBody.push(...rowCode);
  }
  // The part of a 4-wide row inside the output: all four, or the first `cols`.
  function storeRow(at: Expr, v: number, cols: number): Expr[] {
    return [
      local.set(addr, at),
      if_(i32.eq(get(cols), i32.const(4)), [v128.store(get(addr), get(v))], [
        if_(i32.gt_s(get(cols), i32.const(1)), [store64Lane(get(addr), get(v), 0)], [store32Lane(get(addr), get(v), 0)]),
        if_(i32.eq(get(cols), i32.const(3)), [store32Lane(get(addr), get(v), 2, 8)]),
      ]),
    ];
  }
  return {
    name: `vout${nr}`,
    params: new Array<ValType>(11).fill(I32),
    results: [],
    locals: L.types,
    body: [
      local.set(c2, f64x2.splat(f64.const(2))),
      local.set(c4, f64x2.splat(f64.const(4))),
      local.set(c8, f64x2.splat(f64.const(8))),
      forLoop(i, i32.const(0), get(nc), 1,
        if_(i32.and(get(flags), i32.const(OUT_SCALE)), [local.set(sc, f64x2.splat(f64.load(i32.add(get(scale), i32.shl(get(i), i32.const(3))))))]),
        if_(i32.and(get(flags), i32.const(OUT_SHIFT)), [local.set(shf, f64x2.splat(f64.load(i32.add(get(shift), i32.shl(get(i), i32.const(3))))))]),
        local.set(ic, i32.add(get(c0), get(i))),
        forLoop(j, i32.const(0), get(nt), 2,
          local.set(lane, i32.add(get(m), i32.shl(i32.add(i32.mul(get(i), i32.const(nr)), get(j)), i32.const(3)))),
          local.set(te, i32.add(get(tab), i32.shl(get(j), i32.const(4)))),
          local.set(ya, i32.add(i32.load(get(te)), i32.mul(get(ic), i32.load(get(te), 4)))),
          local.set(ra, i32.load(get(te), 8)),
          local.set(ca, i32.load(get(te), 12)),
          local.set(yb, get(ya)),
          local.set(rb, i32.const(0)),
          local.set(cb, i32.const(0)),
          if_(i32.lt_s(i32.add(get(j), i32.const(1)), get(nt)), [
            local.set(yb, i32.add(i32.load(get(te), 16), i32.mul(get(ic), i32.load(get(te), 20)))),
            local.set(rb, i32.load(get(te), 24)),
            local.set(cb, i32.load(get(te), 28)),
          ]),
          ...tileBody)),
    ],
  };
}

/**
 * `wino8x4(k, ua, panelU, xiU, vb, xiV, mo, init)`: sgemm.ts's `wino4` GEMMs (float32 products, float32 sums over
 * KB-term blocks of k from p = 0, each block's sums widened and added to float64; the same operations in the same
 * order, so the same bits) for 8 output channels: the two 4-channel U panels at ua and ua + panelU (+ ξ·xiU), the
 * 4-tile V panel at vb + ξ·xiV (bytes). Channels 4h … 4h + 3 go to the float64 4×4 block at mo + h·36·128 + ξ·128
 * (wino4's layout, what vout4 reads), zeroed first unless init ≠ 0. The register tile holds U's channels in the
 * lanes and one accumulator per (panel, tile): per k step two U loads and four V splats for eight multiply-adds,
 * where wino4 spends five loads on four (3×3 512→512 @7 at batch 1: 4 tiles, the GEMMs dominate).
 */
function wino8x4Func(fma: boolean): Func {
  const [k, ua, panelU, xiU, vb, xiV, mo, init] = [0, 1, 2, 3, 4, 5, 6, 7];
  const L = new Locals(8);
  const xi = L.add(I32), a = L.add(I32), b = L.add(I32), c = L.add(I32), p = L.add(I32), end = L.add(I32), a1 = L.add(I32);
  const u0 = L.add(V128), u1 = L.add(V128), vs = L.add(V128);
  const acc = L.addMany(V128, 8); // acc[4h + t]: channels 4h … 4h + 3 of tile t
  const t0 = L.add(V128), t1 = L.add(V128);
  const madd = (x: Expr, y: Expr, s: Expr): Expr => (fma ? f32x4.relaxed_madd(x, y, s) : f32x4.add(s, f32x4.mul(x, y)));
  const step: Expr[] = [local.set(u0, v128.load(get(a))), local.set(u1, v128.load(get(a1)))];
  for (let t = 0; t < 4; t++) {
    step.push(local.set(vs, v128.load32_splat(get(b), 4 * t)));
    step.push(local.set(acc[t]!, madd(get(u0), get(vs), get(acc[t]!))));
    step.push(local.set(acc[4 + t]!, madd(get(u1), get(vs), get(acc[4 + t]!))));
  }
  step.push(local.set(a, i32.add(get(a), i32.const(16))), local.set(a1, i32.add(get(a1), i32.const(16))), local.set(b, i32.add(get(b), i32.const(16))));
  // Flush: transpose each panel's 4×4 (tiles × channels) to rows of channels, widen, add to the float64 block.
  const flush: Expr[] = [];
  for (let h = 0; h < 2; h++) {
    const x = (t: number): Expr => get(acc[4 * h + t]!);
    const at = h * 36 * 128;
    const rowsOf = (lo: boolean): Expr[] => {
      const q = lo ? [0, 4, 1, 5] : [2, 6, 3, 7];
      return [local.set(t0, sh(x(0), x(1), q)), local.set(t1, sh(x(2), x(3), q))];
    };
    const put = (i: number, v: Expr): Expr[] => [
      v128.store(get(c), f64x2.add(v128.load(get(c), at + 32 * i), f64x2.promote_low_f32x4(v)), at + 32 * i),
      v128.store(get(c), f64x2.add(v128.load(get(c), at + 32 * i + 16), f64x2.promote_low_f32x4(f32x4.high(v))), at + 32 * i + 16),
    ];
    for (const lo of [true, false]) {
      flush.push(...rowsOf(lo));
      const i = lo ? 0 : 2;
      // t0 = [x0[i] x1[i] x0[i+1] x1[i+1]], t1 likewise for tiles 2, 3: row i = t0[0,1] t1[0,1], row i + 1 = t0[2,3] t1[2,3].
      flush.push(...put(i, sh(get(t0), get(t1), [0, 1, 4, 5])), ...put(i + 1, sh(get(t0), get(t1), [2, 3, 6, 7])));
    }
  }
  const zero: Expr[] = [];
  for (let o = 0; o < 128; o += 16) zero.push(v128.store(get(c), v128.zero(), o), v128.store(get(c), v128.zero(), 36 * 128 + o));
  return {
    name: 'wino8x4',
    params: new Array<ValType>(8).fill(I32),
    results: [],
    locals: L.types,
    body: [
      forLoop(xi, i32.const(0), i32.const(36), 1,
        local.set(a, i32.add(get(ua), i32.mul(get(xi), get(xiU)))),
        local.set(a1, i32.add(get(a), get(panelU))),
        local.set(b, i32.add(get(vb), i32.mul(get(xi), get(xiV)))),
        local.set(c, i32.add(get(mo), i32.mul(get(xi), i32.const(128)))),
        if_(i32.eqz(get(init)), zero),
        ...kBlocks(p, k, end, acc, step, flush)),
    ],
  };
}

/**
 * The 9 taps of four filters (lane l at byte a0 + l·laneStep, taps in order) as f32x4 of the four lanes, tap k into
 * local `into(k)`: taps 0–7 as two f32x4 per filter and a 4×4 transpose each (ld, s0, s1: scratch), tap 8 by lane.
 * Sets the `lanes` locals to the four filters' addresses first.
 */
function loadTaps(lanes: number[], a0: number, laneStep: number, ld: number[], s0: number, s1: number, into: (k: number) => number): Expr[] {
  const body: Expr[] = lanes.map((v, l) => local.set(v, i32.add(get(a0), i32.mul(get(laneStep), i32.const(l)))));
  for (let q = 0; q < 2; q++) {
    for (let l = 0; l < 4; l++) body.push(local.set(ld[l]!, v128.load(get(lanes[l]!), 16 * q)));
    for (const [hi, k] of [[false, 4 * q], [true, 4 * q + 2]] as const) {
      const sel = hi ? [2, 6, 3, 7] : [0, 4, 1, 5];
      body.push(
        local.set(s0, sh(get(ld[0]!), get(ld[1]!), sel)), local.set(s1, sh(get(ld[2]!), get(ld[3]!), sel)),
        local.set(into(k), sh(get(s0), get(s1), [0, 1, 4, 5])), local.set(into(k + 1), sh(get(s0), get(s1), [2, 3, 6, 7])),
      );
    }
  }
  const tap8 = (l: number): Expr => f32.load(get(lanes[l]!), 32);
  body.push(local.set(into(8), f32x4.replace_lane(f32x4.replace_lane(f32x4.replace_lane(f32x4.splat(tap8(0)), 1, tap8(1)), 2, tap8(2)), 3, tap8(3))));
  return body;
}

/**
 * Bytes between the ξ-slices of a U chunk (two 4-channel panels × KB input channels, float32, and a cache line, so
 * that the 36 slices do not map to the same cache sets): see `wchunk`.
 */
export const CHUNK_XI = 2 * KB * 16 + 64;

/**
 * `wchunk(src, n, icStep, laneStep, dst, bad)`: G' g G'ᵀ (filterTransformInt32: U without G's row scales, which
 * `vin32x4s` puts into V) in float32 for 4 output channels × n ≤ KB input channels, into a U chunk: U(ξ) of
 * (lane, ic) to dst + ξ·CHUNK_XI + ic·16 + lane·4. Filter (lane, ic) is 9 float32 at byte src + lane·laneStep +
 * ic·icStep (taps in order). The chunk's fixed ξ stride makes every store's offset a constant, and the taps are read
 * as two f32x4 per filter and transposed (instead of 36 scalar loads and lane inserts). At byte bad: an f32x4 of
 * Σ (Σ taps)·0 per lane, added to what is there (NaN when a tap is NaN or ±Inf).
 */
function wchunkFunc(): Func {
  const [src, n, icStep, laneStep, dst, bad] = [0, 1, 2, 3, 4, 5];
  const L = new Locals(6);
  const ic = L.add(I32), a0 = L.add(I32), out = L.add(I32);
  const lanes = L.addMany(I32, 4);
  const t = filterTransformLocals(L), { g, acc } = t;
  const ld = L.addMany(V128, 4), s0 = L.add(V128), s1 = L.add(V128);
  const body: Expr[] = loadTaps(lanes, a0, laneStep, ld, s0, s1, (k) => g[k]!);
  body.push(...filterTransformInt32(t, (r, e, u) => [v128.store(get(out), u, (6 * r + e) * CHUNK_XI)]));
  body.push(local.set(out, i32.add(get(out), i32.const(16))));
  return {
    name: 'wchunk',
    params: new Array<ValType>(6).fill(I32),
    results: [],
    locals: L.types,
    body: [
      local.set(acc, v128.load(get(bad))),
      local.set(out, get(dst)),
      forLoop(ic, i32.const(0), get(n), 1,
        local.set(a0, i32.add(get(src), i32.mul(get(ic), get(icStep)))),
        ...body),
      v128.store(get(bad), get(acc)),
    ],
  };
}

/**
 * G' g G'ᵀ of four filters whose 9 taps are in t.g (G' = (1 0 0; 1 1 1; 1 −1 1; 1 2 4; 1 −2 4; 0 0 1), G without its
 * row scales G_SCALE, which `vin32x4s` puts into V instead): adds (Σ taps)·0 into t.acc like sgemm.ts's filterTransform32, then
 * `store(r, e, u)` takes the 36 values in order. Adds and exact doublings only, each step rounded to float32: per
 * column (a, b, c) of g, then per row of G' g, s = a + c, t = a + 4c, m = 2b and (a, s + b, s − b, t + m, t − m, c):
 * 72 operations for four filters, where filterTransform32's scaled rows take 108 (3×3 512→512 @7, one core: the
 * transforms 1.03 → 0.83 ms of 3.5).
 */
function filterTransformInt32(t: FilterTransformLocals, store: (r: number, e: number, u: Expr) => Expr[]): Expr[] {
  const { g, acc, row, cs, ct, cm, rs, rt, rm } = t;
  const F4 = f32x4.splat(f32.const(4));
  const fadd = f32x4.add, fsub = f32x4.sub;
  const x = (k: number): Expr => get(g[k]!);
  const body: Expr[] = [];
  let sum = x(0);
  for (let k = 1; k < 9; k++) sum = fadd(sum, x(k));
  body.push(local.set(acc, fadd(get(acc), f32x4.mul(sum, f32x4.splat(f32.const(0))))));
  for (let j = 0; j < 3; j++) {
    body.push(local.set(cs[j]!, fadd(x(j), x(j + 6))), local.set(ct[j]!, fadd(x(j), f32x4.mul(x(j + 6), F4))), local.set(cm[j]!, fadd(x(j + 3), x(j + 3))));
  }
  const rows: Array<(j: number) => Expr> = [
    (j) => x(j),
    (j) => fadd(get(cs[j]!), x(j + 3)),
    (j) => fsub(get(cs[j]!), x(j + 3)),
    (j) => fadd(get(ct[j]!), get(cm[j]!)),
    (j) => fsub(get(ct[j]!), get(cm[j]!)),
    (j) => x(j + 6),
  ];
  for (let r = 0; r < 6; r++) {
    for (let j = 0; j < 3; j++) body.push(local.set(row[j]!, rows[r]!(j)));
    const [a, b, c] = row.map((v) => get(v)) as [Expr, Expr, Expr];
    body.push(local.set(rs, fadd(a, c)), local.set(rt, fadd(a, f32x4.mul(c, F4))), local.set(rm, fadd(b, b)));
    const us = [a, fadd(get(rs), b), fsub(get(rs), b), fadd(get(rt), get(rm)), fsub(get(rt), get(rm)), c];
    for (let e = 0; e < 6; e++) body.push(...store(r, e, us[e]!));
  }
  return body;
}


/**
 * `w64` / `w64Flip` / `w64Int` / `w64IntFlip(src, n, icStep, laneStep, dst, sx, bad)`: the float64 weight transform of 4
 * output channels × n input channels into U's A-panels: U(ξ) of (lane, ic) to dst + ξ·sx + ic·32 + lane·8. Filter
 * (lane, ic) is 9 float32 at byte src + lane·laneStep + ic·icStep, taps in order (flip: reversed, a 180° rotation),
 * read as two f32x4 per filter and transposed (wchunk's loads). Per column, then per row: s = a + c, (a, s + b,
 * s − b, t + m, t − m, c) with t = a + 4c, m = b + b, each row scaled by G_SCALE in the scaled variants (`w64`:
 * U itself; `w64Int`: G' g G'ᵀ, whose scales `vin64s` applies to V). winograd.ts's weightTransformSimd is the same
 * arithmetic. At byte bad: an f32x4 of Σ taps·0 per lane added to what is there (NaN when a tap is NaN or ±Inf).
 */
function w64Func(flip: boolean, scaled: boolean, chunk: boolean): Func {
  const [src, n, icStep, laneStep, dst, sx, bad] = [0, 1, 2, 3, 4, 5, 6];
  const L = new Locals(7);
  const ic = L.add(I32), a0 = L.add(I32), out = L.add(I32), addr = L.add(I32);
  const lanes = L.addMany(I32, 4);
  const g = L.addMany(V128, 9), ld = L.addMany(V128, 4), s0 = L.add(V128), s1 = L.add(V128), acc = L.add(V128);
  const x = L.addMany(V128, 9), R = L.addMany(V128, 18), s = L.add(V128), t = L.add(V128), m = L.add(V128);
  const scale = L.addMany(V128, 3), c4 = L.add(V128);
  // Tap k goes to g[k] (flip: g[8 − k]).
  const body: Expr[] = loadTaps(lanes, a0, laneStep, ld, s0, s1, (k) => g[flip ? 8 - k : k]!);
  const zero = f32x4.splat(f32.const(0));
  let bads = f32x4.mul(get(g[0]!), zero);
  for (let k = 1; k < 9; k++) bads = f32x4.add(bads, f32x4.mul(get(g[k]!), zero));
  body.push(local.set(acc, f32x4.add(get(acc), bads)));
  body.push(local.set(out, i32.add(get(dst), i32.shl(get(ic), i32.const(5)))));
  // The six outputs of (a, b, c) along G' (in the locals of `into`, or as expressions for the first and last), scaled.
  const g3 = (a: Expr, b: Expr, c: Expr, into: (i: number, v: Expr) => Expr[]): Expr[] => {
    const sc = (i: number, v: Expr): Expr => (scaled ? mul(v, get(scale[i === 0 ? 0 : i < 3 ? 1 : 2]!)) : v);
    return [
      local.set(s, add(a, c)),
      local.set(t, add(a, mul(get(c4), c))),
      local.set(m, add(b, b)),
      ...into(0, sc(0, a)),
      ...into(1, sc(1, add(get(s), b))),
      ...into(2, sc(2, sub(get(s), b))),
      ...into(3, sc(3, add(get(t), get(m)))),
      ...into(4, sc(4, sub(get(t), get(m)))),
      ...into(5, c),
    ];
  };
  for (let h = 0; h < 2; h++) {
    for (let k = 0; k < 9; k++) body.push(local.set(x[k]!, f64x2.promote_low_f32x4(h === 0 ? get(g[k]!) : f32x4.high(get(g[k]!)))));
    // Columns j of g: rows r of G' g into R[3r + j].
    for (let j = 0; j < 3; j++) body.push(...g3(get(x[j]!), get(x[j + 3]!), get(x[j + 6]!), (r, v) => [local.set(R[3 * r + j]!, v)]));
    // Rows r of G' g: U(6r + e) of lanes 2h, 2h + 1 at out + (6r + e)·sx + 16h.
    // (Chunk variants: sx is U64_CHUNK_XI, so every store's offset is a constant.)
    body.push(local.set(addr, get(out)));
    for (let r = 0; r < 6; r++) {
      body.push(...g3(get(R[3 * r]!), get(R[3 * r + 1]!), get(R[3 * r + 2]!), (e, v) => chunk
        ? [v128.store(get(out), v, (6 * r + e) * U64_CHUNK_XI + 16 * h)]
        : [v128.store(get(addr), v, 16 * h), ...(r < 5 || e < 5 ? [local.set(addr, i32.add(get(addr), get(sx)))] : [])]));
    }
  }
  return {
    name: `w64${scaled ? '' : 'Int'}${flip ? 'Flip' : ''}${chunk ? 'C' : ''}`,
    params: new Array<ValType>(7).fill(I32),
    results: [],
    locals: L.types,
    body: [
      local.set(c4, f64x2.splat(f64.const(4))),
      ...[G_SCALE[0], G_SCALE[1], G_SCALE[3]].map((v, i) => local.set(scale[i]!, f64x2.splat(f64.const(v)))),
      local.set(acc, v128.load(get(bad))),
      forLoop(ic, i32.const(0), get(n), 1,
        local.set(a0, i32.add(get(src), i32.mul(get(ic), get(icStep)))),
        ...body),
      v128.store(get(bad), get(acc)),
    ],
  };
}

/** Input channels per chunk of U for `gemm64c`: 4 channels × 32 × 36 ξ float64 = 38 KB, inside L1. */
export const KC64 = 32;
/** Bytes between the ξ-slices of a float64 U chunk (KC64 input channels × 4 lanes, and a cache line). */
export const U64_CHUNK_XI = KC64 * 32 + 64;

/**
 * `gemm64c(np, k, ua, xiU, vb, panelV, xiV, mo, init)`: sgemm.ts's `wino64` GEMMs (float64, p ascending) of 4
 * output channels × np 4-tile V panels over a chunk of k input channels, U (a chunk from `w64`) at ua + ξ·xiU, panel j
 * of V at vb + j·panelV + ξ·xiV, into the float64 4×4 blocks at mo + j·36·128 + ξ·128; each sum starts from the block's
 * value when init ≠ 0, else from zero. Chunks run in order of k then give each sum's terms in wino64's order, so the
 * same bits, while the chunk of U stays in L1 (a whole U of 4 channels × 512 streams 590 KB through L2).
 */
function gemm64cFunc(): Func {
  const [np, k, ua, xiU, vb, panelV, xiV, mo, init] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const L = new Locals(9);
  const j = L.add(I32), xi = L.add(I32), a = L.add(I32), b = L.add(I32), c = L.add(I32);
  const r = wino64Regs(L), { acc } = r; // acc[2i]: tiles 0–1 of channel i, acc[2i + 1]: tiles 2–3
  return {
    name: 'gemm64c',
    params: new Array<ValType>(9).fill(I32),
    results: [],
    locals: L.types,
    body: [
      forLoop(j, i32.const(0), get(np), 1,
        forLoop(xi, i32.const(0), i32.const(36), 1,
          local.set(a, i32.add(get(ua), i32.mul(get(xi), get(xiU)))),
          local.set(b, i32.add(i32.add(get(vb), i32.mul(get(j), get(panelV))), i32.mul(get(xi), get(xiV)))),
          local.set(c, i32.add(get(mo), i32.add(i32.mul(get(j), i32.const(36 * 128)), i32.mul(get(xi), i32.const(128))))),
          if_(get(init), acc.map((x, i) => local.set(x, v128.load(get(c), 16 * i))), acc.map((x) => local.set(x, v128.zero()))),
          ...wino64Loop(r, k, a, b),
          ...acc.map((x, i) => v128.store(get(c), get(x), 16 * i)))),
    ],
  };
}

/** The module's functions in order (their indices for `call`). */
const FUNCS = [
  'pad', 'vin64', 'vin32x8', 'vin32x4', 'vout4', 'vout8', 'wino8x4', 'wchunk', 'wino64', 'panels64', 'vin64s', 'w64', 'w64Flip', 'w64Int',
  'w64IntFlip', 'gemm64c', 'w64C', 'w64FlipC',
  'w64IntC', 'w64IntFlipC', 'vin32x4s', 'pair8',
] as const;
const fn = (name: (typeof FUNCS)[number]): number => FUNCS.indexOf(name);

/**
 * `pair8(src, ci, icStep, laneStep, np, vb, xiV, mo, bad)`: the 36 GEMMs of 8 output channels (all < Co) × np 4-tile
 * panels in `wino8x4` mode, in one call: per chunk of KB input channels from kc = 0, `wchunk` of the two 4-channel
 * panels (filters at byte src + kc·icStep, and 4·laneStep on) into U chunks at 0 and KB·16, then `wino8x4` on each
 * panel j (V at vb + 16·(j·ci + kc), xiV; M at mo + j·2·36·128, zeroed on the first chunk). winograd.ts's loop over
 * chunks and panels, without a JavaScript → wasm call per step.
 */
function pair8Func(): Func {
  const [src, ci, icStep, laneStep, np, vb, xiV, mo, bad] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const L = new Locals(9);
  const kc = L.add(I32), n = L.add(I32), j = L.add(I32), at = L.add(I32);
  return {
    name: 'pair8',
    params: new Array<ValType>(9).fill(I32),
    results: [],
    locals: L.types,
    body: [
      forLoop(kc, i32.const(0), get(ci), KB,
        local.set(n, i32.sub(get(ci), get(kc))),
        if_(i32.gt_s(get(n), i32.const(KB)), [local.set(n, i32.const(KB))]),
        local.set(at, i32.add(get(src), i32.mul(get(kc), get(icStep)))),
        call(fn('wchunk'), get(at), get(n), get(icStep), get(laneStep), i32.const(0), get(bad)),
        call(fn('wchunk'), i32.add(get(at), i32.shl(get(laneStep), i32.const(2))), get(n), get(icStep), get(laneStep), i32.const(KB * 16), get(bad)),
        forLoop(j, i32.const(0), get(np), 1,
          call(fn('wino8x4'), get(n), i32.const(0), i32.const(KB * 16), i32.const(CHUNK_XI),
            i32.add(get(vb), i32.shl(i32.add(i32.mul(get(j), get(ci)), get(kc)), i32.const(4))), get(xiV),
            i32.add(get(mo), i32.mul(get(j), i32.const(2 * 36 * 128))), get(kc)))),
    ],
  };
}

/**
 * `panels64(np, nTiles, k, ua, xiU, vb, xiV, mo, tab, nc, flags, scale, shift, resDelta, rowPitch, c0, scratch)`: for each of
 * np 4-tile panels j of a block (nTiles tiles in all), sgemm.ts's `wino64` (k, ua, xiU, vb + 32·k·j, xiV, mo) and
 * then `vout4` (mo, min(4, nTiles − 4j), tab + 64·j, nc, flags, …, c0, scratch) on its result: the float64 path's loop over a block's
 * panels for 4 output channels, in one call from JavaScript instead of two per panel.
 */
function panels64Func(): Func {
  const [np, nTiles, k, ua, xiU, vb, xiV, mo, tab, nc, flags, scale, shift, resDelta, rowPitch, c0, scratch] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];
  const L = new Locals(17);
  const j = L.add(I32), nt = L.add(I32);
  return {
    name: 'panels64',
    params: new Array<ValType>(17).fill(I32),
    results: [],
    locals: L.types,
    body: [
      forLoop(j, i32.const(0), get(np), 1,
        call(fn('wino64'), get(k), get(ua), get(xiU), i32.add(get(vb), i32.mul(get(j), i32.shl(get(k), i32.const(5)))), get(xiV), get(mo)),
        local.set(nt, i32.sub(get(nTiles), i32.shl(get(j), i32.const(2)))),
        if_(i32.gt_s(get(nt), i32.const(4)), [local.set(nt, i32.const(4))]),
        call(fn('vout4'), get(mo), get(nt), i32.add(get(tab), i32.shl(get(j), i32.const(6))), get(nc), get(flags), get(scale), get(shift), get(resDelta), get(rowPitch), get(c0), get(scratch))),
    ],
  };
}

/** The module's bytes: FUNCS, importing env.mem (a shared memory when `shared`). */
export function winogradModule(fma: boolean, shared = false): Uint8Array {
  const funcs = [
    padFunc(), vinFunc(false, 4), vinFunc(true, 8), vinFunc(true, 4), voutFunc(4), voutFunc(8), wino8x4Func(fma), wchunkFunc(), wino64Func(), panels64Func(),
    vinFunc(false, 4, true), w64Func(false, true, false), w64Func(true, true, false), w64Func(false, false, false), w64Func(true, false, false),
    gemm64cFunc(), w64Func(false, true, true), w64Func(true, true, true), w64Func(false, false, true), w64Func(true, false, true),
    vinFunc(true, 4, true), pair8Func(),
  ];
  funcs.forEach((f, i) => {
    if (f.name !== FUNCS[i]) throw new Error(`winograd module: function ${i} is ${f.name}, not ${FUNCS[i]}`);
  });
  return encodeModule(funcs, 1, shared);
}

// ---- the per-thread instance ------------------------------------------------------------------------------------

type PadFn = (
  src: number, srcPlane: number, wi: number, rows: number, ci: number, dst: number, dstPlane: number, pw: number, ph: number, first: number, colOff: number, bad: number,
) => void;
type VinFn = (tab: number, nt: number, ci: number, pitch: number, pw: number, v: number, vxi: number) => void;
type VoutFn = (
  m: number, nt: number, tab: number, nc: number, flags: number, scale: number, shift: number, resDelta: number, rowPitch: number, c0: number, scratch: number,
) => void;
type WchunkFn = (src: number, n: number, icStep: number, laneStep: number, dst: number, bad: number) => void;
type Gemm64cFn = (np: number, k: number, ua: number, xiU: number, vb: number, panelV: number, xiV: number, mo: number, init: number) => void;
type W64Fn = (src: number, n: number, icStep: number, laneStep: number, dst: number, sx: number, bad: number) => void;
type Pair8Fn = (src: number, ci: number, icStep: number, laneStep: number, np: number, vb: number, xiV: number, mo: number, bad: number) => void;
type Wino8x4Fn = (k: number, ua: number, panelU: number, xiU: number, vb: number, xiV: number, mo: number, init: number) => void;
type Panels64Fn = (
  np: number, nTiles: number, k: number, ua: number, xiU: number, vb: number, xiV: number, mo: number, tab: number, nc: number, flags: number,
  scale: number, shift: number, resDelta: number, rowPitch: number, c0: number, scratch: number,
) => void;

/** The transforms, instantiated over the memory of this thread's SIMD GEMM. */
export interface SimdWinograd {
  pad: PadFn;
  vin64: VinFn;
  vin64s: VinFn;
  vin32x8: VinFn;
  vin32x4: VinFn;
  vout4: VoutFn;
  vout8: VoutFn;
  wino8x4: Wino8x4Fn;
  wchunk: WchunkFn;
  /** `vin32x4` with each V(ξ) times G_SCALE[r]·G_SCALE[e] (in float64, before the one rounding), for `wchunk`'s U. */
  vin32x4s: VinFn;
  pair8: Pair8Fn;
  panels64: Panels64Fn;
  /**
   * [w64, w64Flip, w64Int, w64IntFlip, then the same with ξ stride U64_CHUNK_XI (the sx argument ignored)]: index
   * 4·chunk + 2·(U without G's scales) + flip.
   */
  w64: W64Fn[];
  gemm64c: Gemm64cFn;
}

let current: SimdWinograd | null = null;
let currentMem: object | null = null;
let currentFma = false;
const compiled: Array<object | null> = [null, null];

/** This thread's transforms over the memory of its SIMD GEMM (call simdGemm first, which sizes that memory). */
export function simdWinograd(): SimdWinograd {
  const mem = simdGemmMemory();
  const fma = usesFma();
  if (current === null || currentMem !== mem || currentFma !== fma) {
    const mod = (compiled[+fma] ??= new wasm!.Module(winogradModule(fma)));
    current = pickWinograd(new wasm!.Instance(mod, { env: { mem } }).exports);
    currentMem = mem;
    currentFma = fma;
  }
  return current;
}

function pickWinograd(e: Record<string, unknown>): SimdWinograd {
  return {
    pad: e.pad as PadFn, vin64: e.vin64 as VinFn, vin32x8: e.vin32x8 as VinFn, vin32x4: e.vin32x4 as VinFn, vout4: e.vout4 as VoutFn,
    vout8: e.vout8 as VoutFn, wino8x4: e.wino8x4 as Wino8x4Fn, wchunk: e.wchunk as WchunkFn, vin32x4s: e.vin32x4s as VinFn, pair8: e.pair8 as Pair8Fn, panels64: e.panels64 as Panels64Fn,
    vin64s: e.vin64s as VinFn, w64: [e.w64, e.w64Flip, e.w64Int, e.w64IntFlip, e.w64C, e.w64FlipC, e.w64IntC, e.w64IntFlipC] as W64Fn[],
    gemm64c: e.gemm64c as Gemm64cFn,
  };
}

/**
 * This thread's transforms over the resident memory `r` (wasm/optim.ts), where a training step's tensors lie: the
 * float64 path runs on them in place (winograd.ts).
 */
export const residentWinograd = overResident(winogradModule, pickWinograd);

/**
 * wg's float64 functions with `base` added to every byte address into the scratch (so that a caller lays out its
 * scratch from 0 as in its own memory); the addresses it does not add to: pad's source, and the addresses the
 * tables hold. The float32 functions are not offered.
 */
export function basedWinograd(wg: SimdWinograd, base: number): SimdWinograd {
  const none = (): never => {
    throw new Error('basedWinograd: the float32 transforms do not run over the resident memory');
  };
  const B = base;
  return {
    pad: (src, sp, wi, rows, ci, dst, dp, pw, ph, first, colOff, bad) => wg.pad(src, sp, wi, rows, ci, dst + B, dp, pw, ph, first, colOff, bad + B),
    vin64: (tab, nt, ci, pitch, pw, v, vxi) => wg.vin64(tab + B, nt, ci, pitch, pw, v + B, vxi),
    vin64s: (tab, nt, ci, pitch, pw, v, vxi) => wg.vin64s(tab + B, nt, ci, pitch, pw, v + B, vxi),
    vin32x8: none,
    vin32x4: none,
    vout4: (m, nt, tab, nc, flags, scale, shift, resDelta, rowPitch, c0, scratch) =>
      wg.vout4(m + B, nt, tab + B, nc, flags, scale + B, shift + B, resDelta, rowPitch, c0, scratch + B),
    vout8: none,
    wino8x4: none,
    wchunk: none,
    vin32x4s: none,
    pair8: none,
    panels64: (np, nTiles, k, ua, xiU, vb, xiV, mo, tab, nc, flags, scale, shift, resDelta, rowPitch, c0, scratch) =>
      wg.panels64(np, nTiles, k, ua + B, xiU, vb + B, xiV, mo + B, tab + B, nc, flags, scale + B, shift + B, resDelta, rowPitch, c0, scratch + B),
    w64: wg.w64.map((f): W64Fn => (src, n, icStep, laneStep, dst, sx, bad) => f(src + B, n, icStep, laneStep, dst + B, sx, bad + B)),
    gemm64c: (np, k, ua, xiU, vb, panelV, xiV, mo, init) => wg.gemm64c(np, k, ua + B, xiU, vb + B, panelV, xiV, mo + B, init),
  };
}
