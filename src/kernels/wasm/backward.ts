// The convolution weight gradient in WebAssembly SIMD, emitted from this file when the library loads (see
// encoder.ts). dw[r][ci][ky][kx] = Σ over images and output positions of dy[r][oy][ox] · x[ci][oy·s + ky·d][ox·s + kx·d]
// (padding positions are 0), computed from two packings instead of an im2col copy and a transposed GEMM panel:
//
//   dy panel: for each MR-row tile, for each (image, oy, 4-column group v), MR vectors of 4 columns: row i of the
//             tile at +16i bytes; columns past oW are 0;
//   x rows:   for each (channel, kx), for each image, hp rows of owPad values: row iyp, column ox holds
//             x[iyp − pH][ox·s + kx·d − pW] (0 outside x, and 0 for ox ≥ oW), so that tap ky of output row oy reads
//             row oy·s + ky·d, 4 columns at a time.
//
// `dw(dy, x, xTap, nImg, xImg, oh, xOy, vecs, out, outRow, outTap)` runs one tile of MR dw rows × KT entries of
// those rows (entry t's x rows at x + t·xTap bytes) over nImg images (`dwr`: then reps times over the next KT
// entries, x and out advanced by KT·xTap, KT·outTap, the same dy): float32 products, a float32 running sum per
// lane (lane l sums the columns ≡ l mod 4) over whole output rows, at most DW_KB vector steps (oW ≤ 4·DW_KB), then
// the four lanes widened (exact) and added to float64 lane sums at out + i·outRow + t·outTap (4 doubles,
// accumulated onto). The caller adds the four lanes of each entry in a fixed order. So a float32 sum is never longer
// than DW_KB terms, running sums are float64, and the order is a function of the shape and of a call's images only.
// With FMA (relaxed SIMD) each step is one f32x4.relaxed_madd: the last bits differ from the no-FMA build.

import { block, br, br_if, encodeModule, f32x4, f64, f64x2, forLoop, i32, i32x4, if_, local, Locals, loop, memory as bulk, v128, ValType, type Expr, type Func } from './encoder.js';
import { padFunc, type PadFn } from './direct.js';
import { growTo, newMemory, overResident, usesFma, wasm, type WasmMemory } from './features.js';

/** Rows of dw (output channels) per tile. */
export const DW_MR = 4;
/** Vector steps (4 columns each) per float32 partial sum at most: KB terms per lane. */
export const DW_KB = 64;

const { i32: I32, v128: V128 } = ValType;

/** Bytes per dy row in the row-split panel of `dwu` (U_ROW·i apart): DW_KB vectors and 64 bytes of slack. */
export const U_ROW = 16 * DW_KB + 64;

/**
 * `dw` for tiles of mr rows × kt taps (see the file comment); with `repeat`, `dwr` with the extra parameter reps
 * (runs over the same dy rows for the next kt entries: x + rep·kt·xTap, out + rep·kt·outTap). With `uRow` (repeat
 * only: `dwu`), the dy panel is split by rows instead of interleaved: per image, mr rows of vectors at dy +
 * img·mr·uRow + i·uRow (i < mr), one vector per step (oh = 1: one row of at most DW_KB vectors per image).
 */
export function dwFunc(mr: number, kt: number, fma: boolean, repeat = false, uRow = 0): Func {
  if (uRow > 0 && !repeat) throw new Error('dwFunc: a row-split dy panel needs repeat');
  const [dy0, x0, xTap, nImg, xImg, oh, xOy, vecs, out0, outRow, outTap, reps] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
  const L = new Locals(repeat ? 12 : 11);
  const img = L.add(I32), oy = L.add(I32), v = L.add(I32), cnt = L.add(I32), xi = L.add(I32), xr = L.add(I32), addr = L.add(I32);
  // Without repeat, the parameters themselves are the running pointers.
  const [rep, dy, x, out] = repeat ? [L.add(I32), L.add(I32), L.add(I32), L.add(I32)] : [-1, dy0, x0, out0];
  const xt = L.addMany(I32, kt); // xr + t·xTap
  const xv = L.addMany(V128, kt), dv = L.add(V128);
  const acc = L.addMany(V128, mr * kt); // acc[i·kt + t]
  const get = local.get;
  const madd = (a: Expr, b: Expr, s: Expr): Expr => (fma ? f32x4.relaxed_madd(a, b, s) : f32x4.add(s, f32x4.mul(a, b)));
  const flush: Expr[] = [];
  for (let i = 0; i < mr; i++) {
    for (let t = 0; t < kt; t++) {
      const a = acc[i * kt + t]!;
      flush.push(local.set(addr, i32.add(get(out), i32.add(i32.mul(get(outRow), i32.const(i)), i32.mul(get(outTap), i32.const(t))))));
      flush.push(v128.store(get(addr), f64x2.add(v128.load(get(addr)), f64x2.promote_low_f32x4(get(a)))));
      flush.push(v128.store(get(addr), f64x2.add(v128.load(get(addr), 16), f64x2.promote_low_f32x4(f32x4.high(get(a)))), 16));
      flush.push(local.set(a, v128.zero()));
    }
  }
  const step: Expr[] = [];
  for (let t = 0; t < kt; t++) step.push(local.set(xv[t]!, v128.load(i32.add(get(xt[t]!), get(xr)))));
  for (let i = 0; i < mr; i++) {
    step.push(local.set(dv, v128.load(get(dy), uRow > 0 ? uRow * i : 16 * i)));
    for (let t = 0; t < kt; t++) step.push(local.set(acc[i * kt + t]!, madd(get(dv), get(xv[t]!), get(acc[i * kt + t]!))));
  }
  step.push(
    local.set(dy, i32.add(get(dy), i32.const(uRow > 0 ? 16 : 16 * mr))),
    local.set(xr, i32.add(get(xr), i32.const(16))),
  );
  // One tile over all images: float32 sums flushed every ≤ DW_KB steps and at the end.
  const tile: Expr[] = [
    local.set(cnt, i32.const(0)),
    forLoop(img, i32.const(0), get(nImg), 1,
      local.set(xi, i32.add(get(x), i32.mul(get(img), get(xImg)))),
      ...(uRow > 0 ? [local.set(dy, i32.add(get(dy0), i32.mul(get(img), i32.const(mr * uRow))))] : []),
      forLoop(oy, i32.const(0), get(oh), 1,
        // Flush first when this row's steps would take the float32 sums past DW_KB steps.
        local.set(cnt, i32.add(get(cnt), get(vecs))),
        if_(i32.gt_s(get(cnt), i32.const(DW_KB)), [...flush, local.set(cnt, get(vecs))]),
        local.set(xr, i32.add(get(xi), i32.mul(get(oy), get(xOy)))),
        forLoop(v, i32.const(0), get(vecs), 1, ...step))),
    if_(i32.ne(get(cnt), i32.const(0)), flush),
  ];
  const setTaps: Expr[] = [];
  for (let t = 0; t < kt; t++) setTaps.push(local.set(xt[t]!, i32.mul(get(xTap), i32.const(t))));
  return {
    name: `dw${uRow > 0 ? 'u' : repeat ? 'r' : ''}${kt}`,
    params: new Array<ValType>(repeat ? 12 : 11).fill(I32),
    results: [],
    locals: L.types,
    body: [
      ...setTaps,
      ...acc.map((a) => local.set(a, v128.zero())),
      ...(repeat
        ? [forLoop(rep, i32.const(0), get(reps), 1,
          local.set(dy, get(dy0)),
          local.set(x, i32.add(get(x0), i32.mul(get(rep), i32.mul(get(xTap), i32.const(kt))))),
          local.set(out, i32.add(get(out0), i32.mul(get(rep), i32.mul(get(outTap), i32.const(kt))))),
          ...tile)]
        : tile),
    ],
  };
}

/**
 * The module's bytes: `dw1`, `dw2` (tiles of 1 and 2 entries of a dw row), importing env.mem. 4 rows × 2 entries
 * (8 accumulators) measured best on one core (CPU time, a 16→16 32×32 tile over 8 images): 4×2 25–29 GFLOP/s,
 * 3×2 31, 2×4 31, 4×1 30, 3×3 15, 4×3 17–19, 5×2 20, 6×2 22 (9 and more accumulators spill).
 */
export function backwardModule(fma: boolean, shared = false): Uint8Array {
  return encodeModule([
    dwFunc(DW_MR, 1, fma), dwFunc(DW_MR, 2, fma), padFunc(), dwFunc(DW_MR, 1, fma, true), dwFunc(DW_MR, 2, fma, true), winogradXFunc(), winogradDyFunc(),
    dyPackFunc(), winogradCombineFunc(), stride2RowsFunc(1), stride2RowsFunc(2), stride2RowsFunc(3), dwFunc(DW_MR, 1, fma, true, U_ROW),
    dwFunc(DW_MR, 2, fma, true, U_ROW), zeroFunc(),
  ], 1, shared);
}

/**
 * `zero(at, bytes)`: bytes bytes from at set to 0 (`memory.fill`: on a shared memory 3.5–5× faster than
 * `TypedArray.prototype.fill` in Node 20; the Winograd weight gradient's float64 lane sums).
 */
export function zeroFunc(): Func {
  return { name: 'zero', params: [I32, I32], results: [], locals: [], body: [bulk.fill(local.get(0), i32.const(0), local.get(1))] };
}

/**
 * `dypack(src, rowBytes, rows, oh, ow, vecs, dst, masks)`: one tile of the dy panel for one image: for oy < oh,
 * v < vecs, row i < 4, the four floats of dy row i (at src + i·rowBytes), output row oy, columns 4v … 4v + 3, at
 * dst + 64·(oy·vecs + v) + 16·i; 0 for rows i ≥ rows and columns ≥ ow (the last vector of a row is masked with the
 * 16 bytes at masks + 16·(ow & 3): all ones in lanes below ow & 3).
 */
export function dyPackFunc(): Func {
  const [src, rowBytes, rows, oh, ow, vecs, dst, masks] = [0, 1, 2, 3, 4, 5, 6, 7];
  const L = new Locals(8);
  const oy = L.add(I32), v = L.add(I32), s = L.add(I32), d = L.add(I32), full = L.add(I32), mask = L.add(V128);
  const get = local.get;
  const step: Expr[] = [];
  for (let i = 0; i < DW_MR; i++) {
    const at = i32.add(get(s), i32.add(i32.mul(get(rowBytes), i32.const(i)), i32.shl(get(v), i32.const(4))));
    step.push(if_(i32.lt_s(i32.const(i), get(rows)),
      [if_(i32.lt_s(get(v), get(full)), [v128.store(get(d), v128.load(at), 16 * i)], [v128.store(get(d), v128.and(v128.load(at), get(mask)), 16 * i)])],
      [v128.store(get(d), v128.zero(), 16 * i)]));
  }
  return {
    name: 'dypack',
    params: new Array<ValType>(8).fill(I32),
    results: [],
    locals: L.types,
    body: [
      local.set(full, i32.shr_s(get(ow), i32.const(2))),
      local.set(mask, v128.load(i32.add(get(masks), i32.shl(i32.and(get(ow), i32.const(3)), i32.const(4))))),
      local.set(d, get(dst)),
      forLoop(oy, i32.const(0), get(oh), 1,
        local.set(s, i32.add(get(src), i32.shl(i32.mul(get(oy), get(ow)), i32.const(2)))),
        forLoop(v, i32.const(0), get(vecs), 1, ...step, local.set(d, i32.add(get(d), i32.const(64))))),
    ],
  };
}

// ---- Winograd F(3×3, 2×2) transforms for the weight gradient of stride-1 3×3 convolutions -------------------------
// A 2×2 tile g of dy meets a 4×4 patch d of the padded input; its 3×3 contribution to dw is
// Gᵀ[(A g Aᵀ) ⊙ (Bᵀ d B)]G (conv2d/backward-winograd.ts), with A = [1 0; 1 1; 1 −1; 0 −1] and
// Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1]: both transforms only add and subtract. Four tiles side by side per
// vector, from planes in which column q of plane k holds input column 2q + k (the `pad` function's output).

/** Bᵀ's rows (and B's columns) applied to four values: u = Bᵀ·(a0, a1, a2, a3). */
const bt = (a: Expr[], i: number): Expr =>
  [f32x4.sub(a[0]!, a[2]!), f32x4.add(a[1]!, a[2]!), f32x4.sub(a[2]!, a[1]!), f32x4.sub(a[1]!, a[3]!)][i]!;
/** A's rows applied to two values: A·(a0, a1). */
const at = (a: Expr[], i: number): Expr => [a[0]!, f32x4.add(a[0]!, a[1]!), f32x4.sub(a[0]!, a[1]!), f32x4.neg(a[1]!)][i]!;

/**
 * `wx(src, plane, row, ch, ty0, ty1, vecs, dst, xiBytes, chBytes, rowBytes)`: for channels c < ch, tile rows ty in
 * [ty0, ty1) and vectors v < vecs of four tile columns: d[r][k] = phase plane 2c + (k & 1) (at src + (2c + (k & 1))·
 * plane), row 2ty + r, columns 4v + (k >> 1) … 4v + (k >> 1) + 3 (`s2rows`'s planes with col0 = −pW: input column
 * 2q + k − pW); V = Bᵀ d B, element ξ = 4i + j stored at dst + ξ·xiBytes + c·chBytes + (ty − ty0)·rowBytes + 16v.
 * With rowBytes = 4·tilesX, the tile rows are flattened: a row's last vector runs past its tiles into the next row's
 * first ones, which are stored after it.
 */
export function winogradXFunc(): Func {
  const [src, plane, row, ch, ty0, ty1, vecs, dst, xiBytes, chBytes, rowBytes] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  const L = new Locals(11);
  const c = L.add(I32), ty = L.add(I32), v = L.add(I32), s = L.add(I32), o = L.add(I32);
  const d = L.addMany(V128, 16), t = L.addMany(V128, 16);
  const get = local.get;
  const body: Expr[] = [];
  for (let r = 0; r < 4; r++) {
    for (let k = 0; k < 4; k++) {
      body.push(local.set(d[4 * r + k]!, v128.load(i32.add(get(s), i32.add(i32.mul(get(plane), i32.const(k & 1)), i32.mul(get(row), i32.const(r)))), 4 * (k >> 1))));
    }
  }
  // t = Bᵀ d (rows), then V = t B (columns).
  for (let i = 0; i < 4; i++) for (let k = 0; k < 4; k++) body.push(local.set(t[4 * i + k]!, bt([0, 1, 2, 3].map((r) => get(d[4 * r + k]!)), i)));
  for (let i = 0; i < 4; i++) {
    for (let j = 0; j < 4; j++) {
      const xi = 4 * i + j;
      body.push(v128.store(i32.add(get(o), i32.mul(get(xiBytes), i32.const(xi))), bt([0, 1, 2, 3].map((k) => get(t[4 * i + k]!)), j)));
    }
  }
  return {
    name: 'wx',
    params: new Array<ValType>(11).fill(I32),
    results: [],
    locals: L.types,
    body: [
      forLoop(c, i32.const(0), get(ch), 1,
        forLoop(ty, get(ty0), get(ty1), 1,
          forLoop(v, i32.const(0), get(vecs), 1,
            local.set(s, i32.add(i32.add(get(src), i32.mul(get(c), i32.shl(get(plane), i32.const(1)))),
              i32.add(i32.mul(get(ty), i32.shl(get(row), i32.const(1))), i32.shl(get(v), i32.const(4))))),
            local.set(o, i32.add(i32.add(get(dst), i32.mul(get(c), get(chBytes))),
              i32.add(i32.mul(i32.sub(get(ty), get(ty0)), get(rowBytes)), i32.shl(get(v), i32.const(4))))),
            ...body))),
    ],
  };
}

/**
 * `s2rows<phases>(src, srcCh, ch, hi, wi, dst, chBytes, phaseBytes, oh, ow, rowStep, row0, col0)`: column phases of
 * x rows: for channels c < ch and phases φ < phases (1, 2 or 3), the plane at dst + c·chBytes + φ·phaseBytes holds
 * oh·ow floats, element oy·ow + ox = input (row0 + oy·rowStep, col0 + 2·ox + φ) of channel c (float32 hi × wi at src +
 * c·srcCh bytes), 0 outside the input, then four floats of 0. The stride-2 weight gradient takes phase φ as the x
 * rows of kernel column kx + φ, each output map flattened; the Winograd weight gradient takes phases 0 and 1 (row
 * step 1, ow a multiple of 4) as its phase planes. Eight input columns at a time, split with shuffles (phase 2 from
 * the eight columns two further on); a row's last vector runs past its end into the next row, which is written after
 * it, or into the four zeros. So it reads up to 2·ow + 10 floats past a row's start (and col0 before it), and writes
 * up to oh·ow + 4 floats per plane.
 */
export function stride2RowsFunc(phases: 1 | 2 | 3): Func {
  const [src, srcCh, ch, hi, wi, dst, chBytes, phaseBytes, oh, ow, rowStep, row0, col0] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
  const L = new Locals(13);
  const c = L.add(I32), r = L.add(I32), j = L.add(I32), iy = L.add(I32), d = L.add(I32), sr = L.add(I32), col = L.add(I32);
  const a = L.add(V128), b = L.add(V128), ev = L.add(V128), od = L.add(V128), e2 = L.add(V128), ix = L.add(V128), wiv = L.add(V128);
  const get = local.get;
  const inside = (e: Expr, size: number): Expr => i32.and(i32.ge_s(e, i32.const(0)), i32.lt_s(e, get(size)));
  const whileDo = (cond: Expr, ...body: Expr[]): Expr => block(loop(br_if(1, i32.eqz(cond)), ...body, br(0)));
  // The stores of phases 0 … phases − 1 (vs[φ] → plane φ).
  const store = (vs: Expr[]): Expr[] => vs.slice(0, phases).map((v, phase) => v128.store(
    phase === 0 ? i32.add(get(d), i32.shl(get(j), i32.const(2))) : i32.add(i32.add(get(d), i32.mul(get(phaseBytes), i32.const(phase))), i32.shl(get(j), i32.const(2))),
    v,
  ));
  const zeros = [v128.zero(), v128.zero(), v128.zero()];
  const mask = (v: number, lane: number): Expr => local.set(v, v128.and(get(v), i32x4.lt_u(i32x4.add(get(ix), i32x4.splat(i32.const(lane))), get(wiv))));
  const colAt = (off: number): Expr => v128.load(i32.add(get(sr), i32.shl(get(col), i32.const(2))), off);
  return {
    name: `s2rows${phases}`,
    params: new Array<ValType>(13).fill(I32),
    results: [],
    locals: L.types,
    body: [
      local.set(wiv, i32x4.splat(get(wi))),
      forLoop(c, i32.const(0), get(ch), 1,
        forLoop(r, i32.const(0), get(oh), 1,
          local.set(iy, i32.add(get(row0), i32.mul(get(r), get(rowStep)))),
          local.set(d, i32.add(i32.add(get(dst), i32.mul(get(c), get(chBytes))), i32.shl(i32.mul(get(r), get(ow)), i32.const(2)))),
          local.set(j, i32.const(0)),
          if_(i32.eqz(inside(get(iy), hi)), [
            whileDo(i32.lt_s(get(j), get(ow)), ...store(zeros), local.set(j, i32.add(get(j), i32.const(4)))),
          ], [
            local.set(sr, i32.add(i32.add(get(src), i32.mul(get(c), get(srcCh))), i32.shl(i32.mul(get(iy), get(wi)), i32.const(2)))),
            whileDo(i32.lt_s(get(j), get(ow)),
              // Input columns col … col + 7: even ones to phase 0, odd ones to phase 1.
              local.set(col, i32.add(get(col0), i32.shl(get(j), i32.const(1)))),
              local.set(a, colAt(0)),
              local.set(b, colAt(16)),
              local.set(ev, f32x4.shuffle(get(a), get(b), [0, 2, 4, 6])),
              local.set(od, f32x4.shuffle(get(a), get(b), [1, 3, 5, 7])),
              ...(phases > 2 ? [local.set(e2, f32x4.shuffle(colAt(8), colAt(24), [0, 2, 4, 6]))] : []),
              if_(i32.eqz(i32.and(i32.ge_s(get(col), i32.const(0)), i32.le_s(i32.add(get(col), i32.const(phases > 2 ? 10 : 8)), get(wi)))), [
                // Lanes whose column e is outside [0, wi) (e as unsigned ≥ wi) → 0.
                local.set(ix, i32x4.add(i32x4.splat(get(col)), i32x4.const([0, 2, 4, 6]))),
                ...[ev, od, e2].slice(0, phases).map((v, phase) => mask(v, phase)),
              ]),
              ...store([get(ev), get(od), get(e2)]),
              local.set(j, i32.add(get(j), i32.const(4)))),
          ])),
        // The four floats after the plane: 0 (the last row's vector may have run into them).
        local.set(d, i32.add(i32.add(get(dst), i32.mul(get(c), get(chBytes))), i32.shl(i32.mul(get(oh), get(ow)), i32.const(2)))),
        local.set(j, i32.const(0)),
        ...store(zeros)),
    ],
  };
}

/**
 * `wdy(src, oh, ow, rows, ty0, ty1, vecs, dst, xiBytes, tileBytes, rowBytes)`: for dy rows (output channels) r < rows
 * (float32 oh × ow each, one after another at src), tile rows ty in [ty0, ty1) and vectors v < vecs of four tiles:
 * g[a][b] = dy row r, output row 2ty + a, columns 8v + b, 8v + 2 + b, 8v + 4 + b, 8v + 6 + b (0 past oh and ow);
 * U = A g Aᵀ, element ξ stored at dst + ξ·xiBytes + (r >> 2)·tileBytes + (r & 3)·U_ROW + (ty − ty0)·rowBytes + 16v:
 * the row-split dy panel of `dwu` (MR = 4). With rowBytes = 4·tilesX, the tile rows are flattened as in `wx` (a
 * row's last vector, its tiles past oW zero, runs into the next row's first tiles, stored after it). Reads eight
 * floats at a time, up to 8·vecs floats past a row's start (the caller leaves that much memory after dy).
 */
export function winogradDyFunc(): Func {
  const [src, oh, ow, rows, ty0, ty1, vecs, dst, xiBytes, tileBytes, rowBytes] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  const L = new Locals(11);
  const r = L.add(I32), ty = L.add(I32), v = L.add(I32), s = L.add(I32), o = L.add(I32), col = L.add(I32);
  const g = L.addMany(V128, 4), t = L.addMany(V128, 8), ab = L.addMany(V128, 2), ix = L.add(V128), owv = L.add(V128);
  const get = local.get;
  const body: Expr[] = [local.set(col, i32.shl(get(v), i32.const(3)))];
  for (let a = 0; a < 2; a++) {
    // Output row 2ty + a: its columns 8v … 8v + 7, even ones to g[a][0], odd ones to g[a][1].
    const at = i32.add(get(s), i32.shl(i32.add(i32.mul(get(ow), i32.const(a)), get(col)), i32.const(2)));
    body.push(if_(i32.lt_s(i32.add(i32.shl(get(ty), i32.const(1)), i32.const(a)), get(oh)), [
      local.set(ab[0]!, v128.load(at)),
      local.set(ab[1]!, v128.load(at, 16)),
      local.set(g[2 * a]!, f32x4.shuffle(get(ab[0]!), get(ab[1]!), [0, 2, 4, 6])),
      local.set(g[2 * a + 1]!, f32x4.shuffle(get(ab[0]!), get(ab[1]!), [1, 3, 5, 7])),
    ], [local.set(g[2 * a]!, v128.zero()), local.set(g[2 * a + 1]!, v128.zero())]));
  }
  // Columns past ow (as unsigned ≥ ow) → 0.
  body.push(if_(i32.gt_s(i32.add(get(col), i32.const(8)), get(ow)), [
    local.set(ix, i32x4.add(i32x4.splat(get(col)), i32x4.const([0, 2, 4, 6]))),
    ...[0, 1].flatMap((b) => {
      const m = i32x4.lt_u(b === 0 ? get(ix) : i32x4.add(get(ix), i32x4.splat(i32.const(1))), get(owv));
      return [0, 1].map((a) => local.set(g[2 * a + b]!, v128.and(get(g[2 * a + b]!), m)));
    }),
  ]));
  // t = A g (rows: 4 × 2), then U = t Aᵀ (columns).
  for (let i = 0; i < 4; i++) for (let b = 0; b < 2; b++) body.push(local.set(t[2 * i + b]!, at([get(g[b]!), get(g[2 + b]!)], i)));
  for (let i = 0; i < 4; i++) {
    for (let j = 0; j < 4; j++) body.push(v128.store(i32.add(get(o), i32.mul(get(xiBytes), i32.const(4 * i + j))), at([get(t[2 * i]!), get(t[2 * i + 1]!)], j)));
  }
  return {
    name: 'wdy',
    params: new Array<ValType>(11).fill(I32),
    results: [],
    locals: L.types,
    body: [
      local.set(owv, i32x4.splat(get(ow))),
      // Rows outermost: each row's stores run along its own U rows.
      forLoop(r, i32.const(0), get(rows), 1,
        forLoop(ty, get(ty0), get(ty1), 1,
          forLoop(v, i32.const(0), get(vecs), 1,
            local.set(s, i32.add(get(src), i32.shl(i32.mul(i32.add(i32.mul(get(r), get(oh)), i32.shl(get(ty), i32.const(1))), get(ow)), i32.const(2)))),
            local.set(o, i32.add(
              i32.add(i32.add(get(dst), i32.mul(i32.shr_s(get(r), i32.const(2)), get(tileBytes))), i32.mul(i32.and(get(r), i32.const(3)), i32.const(U_ROW))),
              i32.add(i32.mul(i32.sub(get(ty), get(ty0)), get(rowBytes)), i32.shl(get(v), i32.const(4))))),
            ...body))),
    ],
  };
}

/**
 * `wcomb(lanes, xiBytes, n, dst) → z`: for the n (dw row, channel) pairs e < n in order, M[ξ] = the four float64
 * lane sums at lanes + 32e + ξ·xiBytes added as (l0 + l1) + (l2 + l3), then the 3×3 Gᵀ M G (G = [1 0 0; ½ ½ ½;
 * ½ −½ ½; 0 0 1]: rows first, then columns) stored as 9 doubles at dst + 72e. z = Σ 0·(stored values): 0 when
 * all are finite, NaN otherwise. The float64 operations and their order are those of a scalar loop.
 */
export function winogradCombineFunc(): Func {
  const [lanes, xiBytes, n, dst] = [0, 1, 2, 3];
  const F64 = ValType.f64;
  const L = new Locals(4);
  const e = L.add(I32), l = L.add(I32), d = L.add(I32), s = L.add(F64), z = L.add(F64);
  const M = L.addMany(F64, 16), T = L.addMany(F64, 12);
  const get = local.get;
  const half = (x: Expr): Expr => f64.mul(f64.const(0.5), x);
  const body: Expr[] = [];
  for (let xi = 0; xi < 16; xi++) {
    const at = i32.add(get(l), i32.mul(get(xiBytes), i32.const(xi)));
    body.push(local.set(M[xi]!, f64.add(f64.add(f64.load(at, 0), f64.load(at, 8)), f64.add(f64.load(at, 16), f64.load(at, 24)))));
  }
  for (let b = 0; b < 4; b++) {
    body.push(
      local.set(s, half(f64.add(get(M[4 + b]!), get(M[8 + b]!)))),
      local.set(T[b]!, f64.add(get(M[b]!), get(s))),
      local.set(T[4 + b]!, half(f64.sub(get(M[4 + b]!), get(M[8 + b]!)))),
      local.set(T[8 + b]!, f64.add(get(s), get(M[12 + b]!))),
    );
  }
  const put = (off: number, v: Expr): Expr[] => [
    f64.store(i32.add(get(d), i32.const(8 * off)), v),
    local.set(z, f64.add(get(z), f64.mul(f64.const(0), f64.load(get(d), 8 * off)))),
  ];
  for (let ky = 0; ky < 3; ky++) {
    const t = (j: number): Expr => get(T[4 * ky + j]!);
    body.push(
      local.set(s, half(f64.add(t(1), t(2)))),
      ...put(3 * ky, f64.add(t(0), get(s))),
      ...put(3 * ky + 1, half(f64.sub(t(1), t(2)))),
      ...put(3 * ky + 2, f64.add(get(s), t(3))),
    );
  }
  return {
    name: 'wcomb',
    params: new Array<ValType>(4).fill(I32),
    results: [F64],
    locals: L.types,
    body: [
      local.set(z, f64.const(0)),
      local.set(l, get(lanes)),
      local.set(d, get(dst)),
      forLoop(e, i32.const(0), get(n), 1,
        ...body,
        local.set(l, i32.add(get(l), i32.const(32))),
        local.set(d, i32.add(get(d), i32.const(72)))),
      get(z),
    ],
  };
}

// ---- the per-thread instance ------------------------------------------------------------------------------------

/** `wx` and `wdy` (see winogradXFunc, winogradDyFunc; wdy's second and third parameters are oh, ow). */
export type WinogradFn = (
  src: number, plane: number, row: number, n: number, ty0: number, ty1: number, vecs: number, dst: number, xiBytes: number, stride: number,
  rowBytes: number,
) => void;


type DwFn = (dy: number, x: number, xTap: number, nImg: number, xImg: number, oh: number, xOy: number, vecs: number, out: number, outRow: number, outTap: number) => void;
type DwrFn = (
  dy: number, x: number, xTap: number, nImg: number, xImg: number, oh: number, xOy: number, vecs: number, out: number, outRow: number, outTap: number,
  reps: number,
) => void;

/** `s2rows<phases>` (see stride2RowsFunc). */
type S2RowsFn = (
  src: number, srcCh: number, ch: number, hi: number, wi: number, dst: number, chBytes: number, phaseBytes: number, oh: number, ow: number,
  rowStep: number, row0: number, col0: number,
) => void;

/** This thread's weight-gradient kernels over their own memory, with float32/float64 views of it. */
export interface SimdBackward {
  /** dw[kt − 1]: tiles of kt entries. */
  dw: [DwFn, DwFn];
  /** dwr[kt − 1]: the same, repeated over the next entries (`reps`). */
  dwr: [DwrFn, DwrFn];
  /** dwu[kt − 1]: `dwr` on a row-split dy panel (see dwFunc). */
  dwu: [DwrFn, DwrFn];
  /** The x rows from a copy of the image (wasm/direct.ts's `pad`, one plane per kernel column). */
  pad: PadFn;
  /** Winograd F(3×3, 2×2) transforms of x and dy. */
  wx: WinogradFn;
  wdy: WinogradFn;
  /** The combine Gᵀ M G of the float64 lane sums (see winogradCombineFunc). */
  wcomb: (lanes: number, xiBytes: number, n: number, dst: number) => number;
  /** s2rows[phases − 1]: column phases of x rows (see stride2RowsFunc). */
  s2rows: [S2RowsFn, S2RowsFn, S2RowsFn];
  /** One tile of the dy panel (see dyPackFunc). */
  dypack: (src: number, rowBytes: number, rows: number, oh: number, ow: number, vecs: number, dst: number, masks: number) => void;
  /** Bytes [at, at + bytes) set to 0 (see zeroFunc). */
  zero: (at: number, bytes: number) => void;
  f: Float32Array;
  i: Int32Array;
  h: Float64Array;
}

let current: SimdBackward | null = null;
let memory: WasmMemory | null = null;
let builtFma: boolean | null = null;

/** This thread's weight-gradient kernels with a memory of at least `bytes` bytes (grown when needed; views renewed). */
export function simdBackward(bytes: number): SimdBackward {
  const fma = usesFma();
  if (current === null || builtFma !== fma) {
    if (memory === null) memory = newMemory(bytes);
    const e = new wasm!.Instance(new wasm!.Module(backwardModule(fma)), { env: { mem: memory } }).exports;
    current = { ...pickBackward(e), f: new Float32Array(memory.buffer), h: new Float64Array(memory.buffer), i: new Int32Array(memory.buffer) };
    builtFma = fma;
  }
  if (growTo(memory!, bytes)) {
    current = { ...current, f: new Float32Array(memory!.buffer), h: new Float64Array(memory!.buffer), i: new Int32Array(memory!.buffer) };
  }
  return current;
}

type BackwardFns = Omit<SimdBackward, 'f' | 'i' | 'h'>;

function pickBackward(e: Record<string, unknown>): BackwardFns {
  return {
    dw: [e.dw1 as DwFn, e.dw2 as DwFn], dwr: [e.dwr1 as DwrFn, e.dwr2 as DwrFn], dwu: [e.dwu1 as DwrFn, e.dwu2 as DwrFn], pad: e.pad as PadFn, wx: e.wx as WinogradFn, wdy: e.wdy as WinogradFn, dypack: e.dypack as SimdBackward['dypack'], wcomb: e.wcomb as SimdBackward['wcomb'],
    zero: e.zero as SimdBackward['zero'],
    s2rows: [e.s2rows1 as S2RowsFn, e.s2rows2 as S2RowsFn, e.s2rows3 as S2RowsFn],
  };
}

/**
 * This thread's weight-gradient kernels over the resident memory `r` (wasm/optim.ts), where a training step's
 * tensors lie (conv2d/backward-winograd.ts runs on them in place).
 */
export const residentBackward = overResident(backwardModule, pickBackward);
