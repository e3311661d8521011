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
// those rows (entry t's x rows at x + t·xTap bytes) over nImg images: float32 products, a float32 running sum per
// lane (lane l sums the columns ≡ l mod 4) over whole output rows, at most DW_KB vector steps (oW ≤ 4·DW_KB), then
// the four lanes widened (exact) and added to float64 lane sums at out + i·outRow + t·outTap (4 doubles,
// accumulated onto). The caller adds the four lanes of each entry in a fixed order. So a float32 sum is never longer
// than DW_KB terms, running sums are float64, and the order is a function of the shape and of a call's images only.
// With FMA (relaxed SIMD) each step is one f32x4.relaxed_madd: the last bits differ from the no-FMA build.

import { encodeModule, f32x4, f64x2, forLoop, i32, if_, local, Locals, loop, v128, ValType, type Expr, type Func } from './encoder.js';
import { padFunc, type PadFn } from './direct.js';
import { usesFma, wasm, type WasmMemory } from './features.js';

/** Rows of dw (output channels) per tile. */
export const DW_MR = 4;
/** Vector steps (4 columns each) per float32 partial sum at most: KB terms per lane. */
export const DW_KB = 64;

const { i32: I32, v128: V128 } = ValType;

/** `dw` for tiles of mr rows × kt taps (see the file comment). */
export function dwFunc(mr: number, kt: number, fma: boolean): Func {
  const [dy, x, xTap, nImg, xImg, oh, xOy, vecs, out, outRow, outTap] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  const L = new Locals(11);
  const img = L.add(I32), oy = L.add(I32), v = L.add(I32), cnt = L.add(I32), xi = L.add(I32), xr = L.add(I32), addr = L.add(I32);
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
    step.push(local.set(dv, v128.load(get(dy), 16 * i)));
    for (let t = 0; t < kt; t++) step.push(local.set(acc[i * kt + t]!, madd(get(dv), get(xv[t]!), get(acc[i * kt + t]!))));
  }
  step.push(
    local.set(dy, i32.add(get(dy), i32.const(16 * mr))),
    local.set(xr, i32.add(get(xr), i32.const(16))),
  );
  const setTaps: Expr[] = [];
  for (let t = 0; t < kt; t++) setTaps.push(local.set(xt[t]!, i32.mul(get(xTap), i32.const(t))));
  return {
    name: `dw${kt}`,
    params: new Array<ValType>(11).fill(I32),
    results: [],
    locals: L.types,
    body: [
      ...setTaps,
      ...acc.map((a) => local.set(a, v128.zero())),
      local.set(cnt, i32.const(0)),
      forLoop(img, i32.const(0), get(nImg), 1,
        local.set(xi, i32.add(get(x), i32.mul(get(img), get(xImg)))),
        forLoop(oy, i32.const(0), get(oh), 1,
          // Flush first when this row's steps would take the float32 sums past DW_KB steps.
          local.set(cnt, i32.add(get(cnt), get(vecs))),
          if_(i32.gt_s(get(cnt), i32.const(DW_KB)), [...flush, local.set(cnt, get(vecs))]),
          local.set(xr, i32.add(get(xi), i32.mul(get(oy), get(xOy)))),
          forLoop(v, i32.const(0), get(vecs), 1, ...step))),
      if_(i32.ne(get(cnt), i32.const(0)), flush),
    ],
  };
}

/**
 * The module's bytes: `dw1`, `dw2` (tiles of 1 and 2 entries of a dw row), importing env.mem. 4 rows × 2 entries
 * (8 accumulators) measured best on one core (CPU time, a 16→16 32×32 tile over 8 images): 4×2 25–29 GFLOP/s,
 * 3×2 31, 2×4 31, 4×1 30, 3×3 15, 4×3 17–19, 5×2 20, 6×2 22 (9 and more accumulators spill).
 */
export function backwardModule(fma: boolean): Uint8Array {
  return encodeModule([dwFunc(DW_MR, 1, fma), dwFunc(DW_MR, 2, fma), padFunc()]);
}

// ---- the per-thread instance ------------------------------------------------------------------------------------

type DwFn = (dy: number, x: number, xTap: number, nImg: number, xImg: number, oh: number, xOy: number, vecs: number, out: number, outRow: number, outTap: number) => void;

/** This thread's weight-gradient kernels over their own memory, with float32/float64 views of it. */
export interface SimdBackward {
  /** dw[kt − 1]: tiles of kt entries. */
  dw: [DwFn, DwFn];
  /** The x rows from a copy of the image (wasm/direct.ts's `pad`, one plane per kernel column). */
  pad: PadFn;
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
    if (memory === null) memory = new wasm!.Memory({ initial: Math.max(1, Math.ceil(bytes / 65536)) });
    const e = new wasm!.Instance(new wasm!.Module(backwardModule(fma)), { env: { mem: memory } }).exports;
    current = {
      dw: [e.dw1 as DwFn, e.dw2 as DwFn], pad: e.pad as PadFn, f: new Float32Array(memory.buffer), h: new Float64Array(memory.buffer),
      i: new Int32Array(memory.buffer),
    };
    builtFma = fma;
  }
  if (memory!.buffer.byteLength < bytes) {
    memory!.grow(Math.ceil((bytes - memory!.buffer.byteLength) / 65536));
    current = { ...current, f: new Float32Array(memory!.buffer), h: new Float64Array(memory!.buffer), i: new Int32Array(memory!.buffer) };
  }
  return current;
}
