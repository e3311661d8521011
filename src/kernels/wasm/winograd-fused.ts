// Winograd F(4×4, 3×3) for few channels with transforms and GEMMs fused in one WebAssembly SIMD function (emitted
// from this file when the library loads; see encoder.ts), over the memory of the thread's SIMD GEMM (sgemm.ts).
//
// With few channels (CIFAR's 16→16) the 16×16 products per Winograd point are small next to the transforms, and
// passes over large V and M arrays cost more than the multiply-adds. Here the tiles of a group of tile rows are
// transformed into a V that stays in L1, its 36 GEMMs run at once, and each 4-channel × 8-tile result goes through
// the output transform straight from L1 into staged output rows. Lanes hold 4 horizontally adjacent tiles (a quad).
//
//   V = Bᵀ d B in float32 (d: a tile's 6×6 input patch; Bᵀ as winograd.ts's btCol)
//   M(ξ) = Σ_c U(ξ)[k][c] · V(ξ)[c]: float32 products, one float32 sum over the input channels (≤ 64: one block)
//   y = Aᵀ M A in float32 (winograd.ts's outputBlock), then the epilogue (scale and shift rounded to float32)
//
// All in float32, 4 tiles per f32x4 throughout: within 1.1× of the error of an output transform in float64 on f64x2
// lanes, which made the whole call 1.2× slower (16→16 @32 batch 32, one core).

import { br_if, encodeModule, f32, f32x4, forLoop, i32, if_, local, Locals, loop, v128, ValType, type Expr, type Func } from './encoder.js';
import { wasm } from './features.js';
import { simdGemmMemory } from './sgemm.js';

const { i32: I32, v128: V128 } = ValType;
const get = local.get;
const sh = f32x4.shuffle;

/** Epilogue flags of `fconv`: ·scale[k], + shift[k], + the residual, ReLU (in that order). */
export const FUSED_SCALE = 1, FUSED_SHIFT = 2, FUSED_RES = 4, FUSED_RELU = 8;

/**
 * `fconv(p, pw, pplane, groups, tab, u, v, m, y, ypitch, yplane, flags, scale, shift, resDelta, pStep, yStep, bad)`
 * (byte addresses and strides), built for ci input channels, kpad output channels (a multiple of 4) and nqg quads
 * per group of tile rows (even): `groups` groups.
 * - Input: zero-padded planes, channel c at p + c·pplane, rows pw bytes apart; quad Q of a group reads 6 rows × 20
 *   float32 at p + tab[2Q] (tile j of the quad: columns 4j … 4j + 5). Each group moves p on by pStep.
 * - U: float32 in panels of 4 output channels, U(ξ)[k][c] at u + (((k/4)·36 + ξ)·ci + c)·16 + (k mod 4)·4 (channels
 *   ≥ Co zero), ξ = 6·row + column: the GEMMs of a panel read 36·ci·16 contiguous bytes.
 * - V scratch at v (36·ci·nqg·16 bytes), M scratch at m (FUSED_M_BYTES).
 * - Output: channel k's 4 rows × 16 values of quad Q at y + k·yplane + tab[2Q + 1], rows ypitch apart (tile j at
 *   columns 4j …); each group moves y on by yStep. The residual (FUSED_RES) is read likewise at + resDelta.
 * - scale, shift: float32 per channel (kpad of them).
 * - At byte bad: an f32x4 of Σ (stored value)·0 per lane, added to what is there (NaN when a stored value is NaN or
 *   ±Inf), so the caller can note an all-finite output (kernels/finite.ts) for the next conv's Winograd check; at
 *   bad + 16 the same over every transformed value before the epilogue (the tiles past the map's edge and the
 *   channels ≥ Co too): NaN when x holds a NaN or ±Inf (every input value reaches some V, M and y of its tiles with
 *   a nonzero factor), or when a transform overflowed.
 */
function fusedFunc(ci: number, kpad: number, nqg: number): Func {
  const P = ['p', 'pw', 'pplane', 'groups', 'tab', 'u', 'v', 'm', 'y', 'ypitch', 'yplane', 'flags', 'scale', 'shift', 'resDelta', 'pStep', 'yStep', 'bad'];
  const [p, pw, pplane, groups, tab, u, v, m, y, ypitch, yplane, flags, scale, shift, resDelta, pStep, yStep, bad] = P.map((_, i) => i) as number[] as [
    number, number, number, number, number, number, number, number, number, number, number, number, number, number, number, number, number, number,
  ];
  const t = 4, n = 6, npt = 36;
  const L = new Locals(P.length);
  const g = L.add(I32), c = L.add(I32), q = L.add(I32), kg = L.add(I32), xi = L.add(I32), idx = L.add(I32);
  const pa = L.add(I32), addr = L.add(I32), vo = L.add(I32), a = L.add(I32), b = L.add(I32);
  const mm = L.add(I32), yb = L.add(I32), k = L.add(I32), bEnd = L.add(I32);
  // The V and U strides: between input channels (vstep, ustep), points ξ (vxi, uxi), and U's 4-channel panels.
  const vstep = 16 * nqg, vxi = ci * vstep, ustep = 16, uxi = ci * ustep, upanel = 36 * uxi;
  const rowAt = L.addMany(I32, n);
  const ld = L.addMany(V128, 5), tr = L.addMany(V128, 2), col = L.addMany(V128, n), T = L.addMany(V128, 5);
  const acc = L.addMany(V128, 8), v0 = L.add(V128), v1 = L.add(V128), s = L.add(V128);
  const Mv = L.addMany(V128, n), S = L.addMany(V128, t * n), O = L.addMany(V128, 4), sc = L.add(V128), sf = L.add(V128);
  const R = L.addMany(V128, 4);
  // The constants 2, 4 and 8 (f32x4), set once.
  const k4 = L.add(V128), k2 = L.add(V128), k8 = L.add(V128), zero = L.add(V128), fin = L.add(V128), finx = L.add(V128);
  const fv = { add: f32x4.add, sub: f32x4.sub, mul: f32x4.mul };

  // Bᵀ applied to x[0 … 5] (f32x4 expressions), as 6 expressions; `pre` first sets the T locals. winograd.ts's
  // btCol: a = x4 − 4x2, b = x3 − 4x1, s = x4 − x2, e = x3 − x1, f = 2e.
  const bt = (x: Expr[]): { pre: Expr[]; out: Expr[] } => {
    const c4 = get(k4), c2 = get(k2);
    const [ta, tb, ts, te, tf] = T as [number, number, number, number, number];
    return {
      pre: [
        local.set(ta, fv.sub(x[4]!, fv.mul(c4, x[2]!))),
        local.set(tb, fv.sub(x[3]!, fv.mul(c4, x[1]!))),
        local.set(ts, fv.sub(x[4]!, x[2]!)),
        local.set(te, fv.sub(x[3]!, x[1]!)),
        local.set(tf, fv.mul(c2, get(te))),
      ],
      out: [
        fv.add(fv.mul(c4, fv.sub(x[0]!, x[2]!)), get(ts)),
        fv.add(get(ta), get(tb)),
        fv.sub(get(ta), get(tb)),
        fv.add(get(ts), get(tf)),
        fv.sub(get(ts), get(tf)),
        fv.sub(fv.sub(x[5]!, x[3]!), fv.mul(c4, get(te))),
      ],
    };
  };

  // ---- input transform of one quad of one channel (patch rows at rowAt[r]): V(ξ) to vo + ξ·vxi ----
  const quadIn: Expr[] = [];
  for (let r = 0; r < n; r++) {
    const at = get(rowAt[r]!);
    // Tile j: columns 4j … 4j + 5. Columns 0 … 3: the 4×4 transpose of the loads at 0, 16, 32, 48 bytes; columns
    // 4, 5: lanes 0, 1 of the loads at 16 … 64.
    for (let i = 0; i < 5; i++) quadIn.push(local.set(ld[i]!, v128.load(at, 16 * i)));
    const pairs = (a0: number, a1: number, a2: number, a3: number, lo: boolean, into: [number, number]): Expr[] => {
      const sel = lo ? [0, 4, 1, 5] : [2, 6, 3, 7];
      return [
        local.set(tr[0]!, sh(get(ld[a0]!), get(ld[a1]!), sel)), local.set(tr[1]!, sh(get(ld[a2]!), get(ld[a3]!), sel)),
        local.set(col[into[0]]!, sh(get(tr[0]!), get(tr[1]!), [0, 1, 4, 5])), local.set(col[into[1]]!, sh(get(tr[0]!), get(tr[1]!), [2, 3, 6, 7])),
      ];
    };
    quadIn.push(...pairs(0, 1, 2, 3, true, [0, 1]), ...pairs(0, 1, 2, 3, false, [2, 3]), ...pairs(1, 2, 3, 4, true, [4, 5]));
    // Bᵀ along the row.
    const row = bt(col.map((x) => get(x)));
    quadIn.push(...row.pre, ...row.out.map((e, i) => v128.store(get(m), e, 16 * (n * r + i))));
  }
  // Bᵀ down the columns: V(n·row + e). (The row pass's results go through the M scratch rather than 36 locals,
  // which the register allocator spilled.)
  for (let e = 0; e < n; e++) {
    const cl = bt(Array.from({ length: n }, (_, r) => v128.load(get(m), 16 * (n * r + e))));
    quadIn.push(...cl.pre, ...cl.out.map((x, r) => v128.store(get(vo), x, (n * r + e) * vxi)));
  }

  // ---- the GEMMs of one point ξ: 4 channels × 2 quads, over ci input channels, into M at m + ξ·128 ----
  // One input channel per round (unrolled ×2, ×4 or ×16 with constant offsets, TurboFan's code was 17%, 40% and
  // 100% slower in a first F(2×2) version: 16→16 @32 batch 32, one core).
  const step: Expr[] = [local.set(v0, v128.load(get(b))), local.set(v1, v128.load(get(b), 16))];
  for (let i = 0; i < 4; i++) {
    step.push(
      local.set(s, v128.load32_splat(get(a), 4 * i)),
      local.set(acc[2 * i]!, f32x4.add(get(acc[2 * i]!), f32x4.mul(get(s), get(v0)))),
      local.set(acc[2 * i + 1]!, f32x4.add(get(acc[2 * i + 1]!), f32x4.mul(get(s), get(v1)))),
    );
  }
  step.push(local.set(a, i32.add(get(a), i32.const(ustep))), local.set(b, i32.add(get(b), i32.const(vstep))));
  const gemmXi: Expr[] = [
    local.set(a, i32.add(i32.add(get(u), i32.mul(get(kg), i32.const(upanel / 4))), i32.mul(get(xi), i32.const(uxi)))),
    local.set(b, i32.add(i32.add(get(v), i32.shl(get(q), i32.const(4))), i32.mul(get(xi), i32.const(vxi)))),
    ...acc.map((x) => local.set(x, v128.zero())),
    // do … while (b < bEnd): the V pointer is the loop's only counter (ci ≥ 1).
    local.set(bEnd, i32.add(get(b), i32.const(ci * vstep))),
    loop(...step, br_if(0, i32.lt_s(get(b), get(bEnd)))),
    local.set(addr, i32.add(get(m), i32.shl(get(xi), i32.const(7)))),
    ...acc.map((x, j) => v128.store(get(addr), get(x), 16 * j)),
  ];

  // ---- the output transform of channel k = kg + idx>>1, quad q + idx&1, from M at mm = m + 16·idx ----
  const outQuad: Expr[] = [
    local.set(k, i32.add(get(kg), i32.shr_s(get(idx), i32.const(1)))),
    local.set(mm, i32.add(get(m), i32.shl(get(idx), i32.const(4)))),
    local.set(yb, i32.add(i32.add(get(y), i32.mul(get(k), get(yplane))),
      i32.load(i32.add(get(tab), i32.shl(i32.add(get(q), i32.and(get(idx), i32.const(1))), i32.const(3))), 4))),
    if_(i32.and(get(flags), i32.const(FUSED_SCALE)), [local.set(sc, v128.load32_splat(i32.add(get(scale), i32.shl(get(k), i32.const(2)))))]),
    if_(i32.and(get(flags), i32.const(FUSED_SHIFT)), [local.set(sf, v128.load32_splat(i32.add(get(shift), i32.shl(get(k), i32.const(2)))))]),
  ];
  // Aᵀ of the 6 values in the locals xs → 4 values into the locals out (O as scratch for s, d, u, e).
  const aT = (xs: number[], out: number[]): Expr[] => {
    const x = (i: number): Expr => get(xs[i]!);
    const [ss, dd, uu, ee] = O as [number, number, number, number];
    return [
      local.set(ss, fv.add(x(1), x(2))), local.set(dd, fv.sub(x(1), x(2))), local.set(uu, fv.add(x(3), x(4))), local.set(ee, fv.sub(x(3), x(4))),
      local.set(out[0]!, fv.add(fv.add(x(0), get(ss)), get(uu))),
      local.set(out[1]!, fv.add(get(dd), fv.mul(get(k2), get(ee)))),
      local.set(out[2]!, fv.add(get(ss), fv.mul(get(k4), get(uu)))),
      local.set(out[3]!, fv.add(fv.add(get(dd), fv.mul(get(k8), get(ee))), x(5))),
    ];
  };
  // Aᵀ down each column e of M: S[t·e + r] (rows r < t), the 4 tiles of the quad in the lanes.
  for (let e = 0; e < n; e++) {
    for (let r = 0; r < n; r++) outQuad.push(local.set(Mv[r]!, v128.load(get(mm), 128 * (n * r + e))));
    outQuad.push(...aT(Mv, Array.from({ length: t }, (_, r) => S[t * e + r]!)));
  }
  const ys = Mv.slice(0, t);
  for (let r = 0; r < t; r++) {
    // Aᵀ along output row r: Y[col] (lanes: the 4 tiles) into ys, scaled and shifted, then transposed into the 4
    // tiles' rows (R: 4 values each), + the residual, ReLU, stores.
    outQuad.push(
      ...aT(Array.from({ length: n }, (_, e) => S[t * e + r]!), ys),
      local.set(finx, f32x4.add(get(finx), f32x4.mul(fv.add(fv.add(get(ys[0]!), get(ys[1]!)), fv.add(get(ys[2]!), get(ys[3]!))), get(zero)))),
      if_(i32.and(get(flags), i32.const(FUSED_SCALE)), ys.map((z) => local.set(z, fv.mul(get(z), get(sc))))),
      if_(i32.and(get(flags), i32.const(FUSED_SHIFT)), ys.map((z) => local.set(z, fv.add(get(z), get(sf))))),
      local.set(O[0]!, sh(get(ys[0]!), get(ys[1]!), [0, 4, 1, 5])), local.set(O[1]!, sh(get(ys[2]!), get(ys[3]!), [0, 4, 1, 5])),
      local.set(O[2]!, sh(get(ys[0]!), get(ys[1]!), [2, 6, 3, 7])), local.set(O[3]!, sh(get(ys[2]!), get(ys[3]!), [2, 6, 3, 7])),
      local.set(R[0]!, sh(get(O[0]!), get(O[1]!), [0, 1, 4, 5])), local.set(R[1]!, sh(get(O[0]!), get(O[1]!), [2, 3, 6, 7])),
      local.set(R[2]!, sh(get(O[2]!), get(O[3]!), [0, 1, 4, 5])), local.set(R[3]!, sh(get(O[2]!), get(O[3]!), [2, 3, 6, 7])),
      local.set(addr, r === 0 ? get(yb) : i32.add(get(yb), i32.mul(get(ypitch), i32.const(r)))),
      if_(i32.and(get(flags), i32.const(FUSED_RES)), R.map((z, j) => local.set(z, fv.add(get(z), v128.load(i32.add(get(addr), get(resDelta)), 16 * j))))),
      // ReLU: pmax(v, 0) keeps v unless v < 0 (NaN too); + 0 turns −0 into +0 (reluLanes' values, in 2 instructions).
      if_(i32.and(get(flags), i32.const(FUSED_RELU)), R.map((z) => local.set(z, fv.add(f32x4.pmax(get(z), get(zero)), get(zero))))),
      local.set(fin, f32x4.add(get(fin), f32x4.mul(fv.add(fv.add(get(R[0]!), get(R[1]!)), fv.add(get(R[2]!), get(R[3]!))), get(zero)))),
      ...R.map((z, j) => v128.store(get(addr), get(z), 16 * j)),
    );
  }

  return {
    name: 'fconv',
    params: new Array<ValType>(P.length).fill(I32),
    results: [],
    locals: L.types,
    body: [
      local.set(k4, f32x4.splat(f32.const(4))), local.set(k2, f32x4.splat(f32.const(2))),
      local.set(k8, f32x4.splat(f32.const(8))),
      local.set(zero, v128.zero()), local.set(fin, v128.load(get(bad))), local.set(finx, v128.load(get(bad), 16)),
      forLoop(g, i32.const(0), get(groups), 1,
        // Input transform of the group's quads, channel by channel.
        forLoop(c, i32.const(0), i32.const(ci), 1,
          local.set(vo, i32.add(get(v), i32.mul(get(c), i32.const(vstep)))),
          forLoop(q, i32.const(0), i32.const(nqg), 1,
            local.set(pa, i32.add(i32.add(get(p), i32.mul(get(c), get(pplane))), i32.load(i32.add(get(tab), i32.shl(get(q), i32.const(3)))))),
            ...rowAt.map((x, r) => local.set(x, r === 0 ? get(pa) : i32.add(get(rowAt[r - 1]!), get(pw)))),
            ...quadIn,
            local.set(vo, i32.add(get(vo), i32.const(16))))),
        // GEMMs and output transform, 4 channels × 2 quads at a time.
        forLoop(kg, i32.const(0), i32.const(kpad), 4,
          forLoop(q, i32.const(0), i32.const(nqg), 2,
            forLoop(xi, i32.const(0), i32.const(npt), 1, ...gemmXi),
            forLoop(idx, i32.const(0), i32.const(8), 1, ...outQuad))),
        local.set(p, i32.add(get(p), get(pStep))),
        local.set(y, i32.add(get(y), get(yStep)))),
      v128.store(get(bad), get(fin)), v128.store(get(bad), get(finx), 16),
    ],
  };
}

/**
 * `rows(src, srcPlane, srcPitch, dst, dstPlane, dstPitch, bytes, nRows, planes)`: for each of `planes` planes, nRows
 * rows of `bytes` bytes (a multiple of 4) from src + plane·srcPlane + row·srcPitch to dst + plane·dstPlane +
 * row·dstPitch (byte addresses and strides; the regions do not overlap). Moves staged output rows to and from the
 * layout of y inside the wasm memory, so that they leave it in one copy rather than one per row.
 */
function rowsFunc(): Func {
  const [src, srcPlane, srcPitch, dst, dstPlane, dstPitch, bytes, nRows, planes] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const L = new Locals(9);
  const pl = L.add(I32), r = L.add(I32), o = L.add(I32), sa = L.add(I32), da = L.add(I32), end16 = L.add(I32);
  return {
    name: 'rows',
    params: new Array<ValType>(9).fill(I32),
    results: [],
    locals: L.types,
    body: [
      local.set(end16, i32.and(get(bytes), i32.const(-16))),
      forLoop(pl, i32.const(0), get(planes), 1,
        forLoop(r, i32.const(0), get(nRows), 1,
          local.set(sa, i32.add(i32.add(get(src), i32.mul(get(pl), get(srcPlane))), i32.mul(get(r), get(srcPitch)))),
          local.set(da, i32.add(i32.add(get(dst), i32.mul(get(pl), get(dstPlane))), i32.mul(get(r), get(dstPitch)))),
          forLoop(o, i32.const(0), get(end16), 16, v128.store(i32.add(get(da), get(o)), v128.load(i32.add(get(sa), get(o))))),
          forLoop(o, get(end16), get(bytes), 4, i32.store(i32.add(get(da), get(o)), i32.load(i32.add(get(sa), get(o))))))),
    ],
  };
}

/** Bytes of fconv's M scratch: 36 points × 4 channels × 2 quads × 16 bytes. */
export const FUSED_M_BYTES = 36 * 128;

// ---- the per-thread instance ------------------------------------------------------------------------------------

export type RowsFn = (src: number, srcPlane: number, srcPitch: number, dst: number, dstPlane: number, dstPitch: number, bytes: number, nRows: number, planes: number) => void;

export type FusedConvFn = (
  p: number, pw: number, pplane: number, groups: number, tab: number, u: number, v: number, m: number, y: number, ypitch: number, yplane: number,
  flags: number, scale: number, shift: number, resDelta: number, pStep: number, yStep: number, bad: number,
) => void;

/** Modules by `${ci},${kpad},${nqg}` (compiled once per process), and this thread's instances over its memory. */
const compiled = new Map<string, object>();
const instances = new Map<string, { fconv: FusedConvFn; rows: RowsFn }>();
let instancesMem: object | null = null;

/**
 * This thread's fconv for the shape and `rows`, over the memory of its SIMD GEMM (call simdGemm first, which sizes
 * it).
 */
export function simdFusedWinograd(ci: number, kpad: number, nqg: number): { fconv: FusedConvFn; rows: RowsFn } {
  const mem = simdGemmMemory();
  if (instancesMem !== mem) {
    instances.clear();
    instancesMem = mem;
  }
  const key = `${ci},${kpad},${nqg}`;
  let fn = instances.get(key);
  if (fn === undefined) {
    let mod = compiled.get(key);
    if (mod === undefined) compiled.set(key, (mod = new wasm!.Module(fusedWinogradModule(ci, kpad, nqg))));
    const e = new wasm!.Instance(mod, { env: { mem } }).exports;
    fn = { fconv: e.fconv as FusedConvFn, rows: e.rows as RowsFn };
    instances.set(key, fn);
  }
  return fn;
}

/** The module's bytes for ci input channels, kpad output channels and nqg quads per group. */
export function fusedWinogradModule(ci: number, kpad: number, nqg: number): Uint8Array {
  return encodeModule([fusedFunc(ci, kpad, nqg), rowsFunc()]);
}
