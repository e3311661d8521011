/**
 * Comparison and data helpers for the kernel tests (plain typed arrays, no Tensor).
 */
import { conv2dOutSize, type Conv2dParams } from '../../src/kernels/conv2d.js';
import { residentAlloc } from '../../src/kernels/wasm/optim.js';

/** Small seeded PRNG (mulberry32), so test data does not depend on anything under test. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n uniform float32 values in [lo, hi) from seed. */
export function randArray(seed: number, n: number, lo = -1, hi = 1): Float32Array {
  const r = mulberry32(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * r();
  return a;
}

export interface Tol {
  atol?: number;
  rtol?: number;
}

/**
 * Throws unless |got − ref| ≤ atol·scale + rtol·|ref| everywhere, where scale = max(1, max|ref|) (so atol is relative
 * to the values' magnitude). NaN must meet NaN. The message says how many differ, the worst index and by how much.
 */
export function assertClose(what: string, got: ArrayLike<number>, ref: ArrayLike<number>, tol: Tol = {}): void {
  const atol = tol.atol ?? 1e-5;
  const rtol = tol.rtol ?? 1e-4;
  if (got.length !== ref.length) throw new Error(`${what}: length ${got.length} vs reference ${ref.length}`);
  let scale = 1;
  for (let i = 0; i < ref.length; i++) if (Number.isFinite(ref[i]!)) scale = Math.max(scale, Math.abs(ref[i]!));
  let bad = 0;
  let worst = -1;
  let worstErr = -1;
  for (let i = 0; i < ref.length; i++) {
    const g = got[i]!, r = ref[i]!;
    let err: number;
    if (Number.isNaN(r) || Number.isNaN(g)) err = Number.isNaN(r) && Number.isNaN(g) ? 0 : Infinity;
    else if (g === r) err = 0; // also equal infinities
    else err = Math.abs(g - r) / (atol * scale + rtol * Math.abs(r));
    if (err > 1) bad++;
    if (err > worstErr) {
      worstErr = err;
      worst = i;
    }
  }
  if (bad > 0) {
    const g = got[worst]!, r = ref[worst]!;
    throw new Error(
      `${what}: ${bad}/${ref.length} differ; worst at [${worst}]: ${g} vs ${r} (|Δ|=${Math.abs(g - r).toExponential(2)}, ` +
        `allowed ${(atol * scale + rtol * Math.abs(r)).toExponential(2)})`,
    );
  }
}

/** Throws unless the arrays are bit-identical (NaN meets NaN; +0 and −0 differ). */
export function assertIdentical(what: string, got: ArrayLike<number>, ref: ArrayLike<number>): void {
  if (got.length !== ref.length) throw new Error(`${what}: length ${got.length} vs reference ${ref.length}`);
  let bad = 0;
  let first = -1;
  for (let i = 0; i < ref.length; i++) {
    if (!Object.is(got[i], ref[i])) {
      if (first < 0) first = i;
      bad++;
    }
  }
  if (bad > 0) throw new Error(`${what}: ${bad}/${ref.length} not identical; first at [${first}]: ${got[first]} vs ${ref[first]}`);
}

/**
 * The fused eval epilogue's reference over an NCHW conv output: relu(conv·scale[o] + shift[o] + res), computed in
 * float64 per element and rounded once. `channels` output channels of `plane` pixels each.
 */
export function fusedEpilogueReference(conv: Float32Array, scale: Float64Array, shift: Float64Array, res: Float32Array, channels: number, plane: number): Float32Array {
  const ref = new Float32Array(conv.length);
  for (let i = 0; i < conv.length; i++) {
    const o = Math.floor(i / plane) % channels;
    const v = conv[i]! * scale[o]! + shift[o]! + res[i]!;
    ref[i] = v > 0 ? v : 0;
  }
  return ref;
}

/** A 3×3, stride-1 convolution's parameters (Winograd's shapes): x (n, c, h, w) → y (n, o, ·, ·), padding `pad`. */
export function winogradShapeParams(n: number, c: number, h: number, w: number, o: number, pad: number): Conv2dParams {
  return {
    n, c, h, w, o, kh: 3, kw: 3, strideH: 1, strideW: 1, padH: pad, padW: pad, dilH: 1, dilW: 1, groups: 1,
    oh: conv2dOutSize(h, 3, 1, pad, 1), ow: conv2dOutSize(w, 3, 1, pad, 1),
  };
}

/** How a Winograd-shaped case reads in a test name: x=[…] w=[…] p=…. */
export const winogradLabel = (p: Conv2dParams): string => `x=[${p.n},${p.c},${p.h},${p.w}] w=[${p.o},${p.c},3,3] p=${p.padH}`;

/** A copy of a in the resident shared wasm memory (where the in-place kernels read and write); the simd backend. */
export function residentCopy(a: Float32Array): Float32Array {
  const r = residentAlloc(a.length);
  if (r === null) throw new Error('no resident memory (the simd backend with SharedArrayBuffer is needed)');
  r.set(a);
  return r;
}
