// The weight gradient of a convolution whose output is one position that every input position meets (ResNet-18's
// last stage on 32×32 images: 3×3/2 from 2×2 to 1×1, 3×3 pad 1 on 1×1), SIMD backend. Each input position r meets
// the output through one kernel tap, tap(r), so
//   S (O × C·HW) = dyᵀ · x          (one GEMM over the batch, on the tensors as they lie: x is N × C·HW, dy N × O)
//   dw[o, c, tap(r)] += S[o, c·HW + r]
// No im2col, no multiply-adds with padding, and dw is read and written once, at its live taps only: taps that meet
// only padding keep their value (their gradient is zero; the im2col path gathered the live taps out of all kH·kW and
// added 0 to the rest, three passes over a 512→512 3×3 gradient's 9.4 MB: 512→512 @1, batch 8, one core, 4.8 →
// 2.6 ms CPU on a loaded machine).
//
// Each dw entry's sum runs over the batch in the GEMM (float32 blocks of ≤ 64 terms added in float64, gemm.ts),
// rounded to float32 into S and then added to dw (onto a zeroed dw, as in training, the same as one rounding). Units are blocks of output channels, which never share a dw entry, so the results are the
// same bits for every thread count.

import { sgemmRange } from '../gemm.js';
import { parallelFor, registerTask } from '../parallel.js';
import { kernelBackend } from '../wasm/features.js';
import { f32Scratch } from './pack.js';
import type { Conv2dParams } from './plan.js';

/** Output positions × input positions at most this many in densePairTaps. */
const MAX_PAIRS = 16;

/**
 * The kernel tap ky·kW + kx linking output position q to input position r, at [q·H·W + r], when every output
 * position meets every input position through a tap (groups 1; with several output positions, at most MAX_PAIRS
 * pairs: ResNet-18's 1×1 maps, its 2×2 maps with 3×3 pad 1, and 3×3/2 from 2×2 to 1×1); else null.
 */
export function densePairTaps(p: Conv2dParams): Int32Array | null {
  const ohw = p.oh * p.ow, hw = p.h * p.w;
  if (p.groups !== 1 || (ohw > 1 && ohw * hw > MAX_PAIRS)) return null;
  const taps = new Int32Array(ohw * hw);
  for (let q = 0; q < ohw; q++) {
    const oy = Math.floor(q / p.ow), ox = q - oy * p.ow;
    for (let iy = 0; iy < p.h; iy++) {
      for (let ix = 0; ix < p.w; ix++) {
        // iy = oy·sH − pH + ky·dH, ix likewise
        const ky = (iy - oy * p.strideH + p.padH) / p.dilH, kx = (ix - ox * p.strideW + p.padW) / p.dilW;
        if (!(Number.isInteger(ky) && ky >= 0 && ky < p.kh && Number.isInteger(kx) && kx >= 0 && kx < p.kw)) return null;
        taps[q * hw + iy * p.w + ix] = ky * p.kw + kx;
      }
    }
  }
  return taps;
}

/**
 * tap(r) = ky·kW + kx linking the one output position to input position r, at [r], when the output is a single
 * position that every input position meets (groups 1); else null.
 */
export function oneOutputTaps(p: Conv2dParams): Int32Array | null {
  return p.oh === 1 && p.ow === 1 ? densePairTaps(p) : null;
}

/** oneOutputTaps on the SIMD backend (the weight gradient's GEMM path here), else null. */
export function denseMapTaps(p: Conv2dParams): Int32Array | null {
  return kernelBackend() === 'simd' ? oneOutputTaps(p) : null;
}

interface DenseTask {
  p: Conv2dParams;
  /** denseMapTaps(p). */
  taps: Int32Array;
  /** Output channels per unit. */
  block: number;
}

registerTask<DenseTask>('conv2d.denseBackwardWeight', (bufs, q, u0, u1) => {
  const { p, taps } = q;
  const { n, c, o } = p;
  const dw = bufs.dw as Float32Array, dy = bufs.dy as Float32Array, x = bufs.x as Float32Array;
  const hw = p.h * p.w, khw = p.kh * p.kw, chw = c * hw;
  for (let u = u0; u < u1; u++) {
    const o0 = u * q.block, o1 = Math.min(o, o0 + q.block);
    // S rows [o0, o1) = dyᵀ · x, over the batch.
    const s = f32Scratch((o1 - o0) * chw);
    sgemmRange(s, dy, x, o, chw, n, { transA: true, cOff: -o0 * chw }, o0, o1, 0, chw);
    for (let oc = o0; oc < o1; oc++) {
      const row = (oc - o0) * chw, base = oc * c * khw;
      if (hw === 1) {
        const at = base + taps[0]!;
        for (let ci = 0; ci < c; ci++) dw[at + ci * khw] = dw[at + ci * khw]! + s[row + ci]!;
        continue;
      }
      if (hw === 4) {
        // 3×3/2 from 2×2: the four live taps in registers, each channel's four entries at once.
        const t0 = base + taps[0]!, t1 = base + taps[1]!, t2 = base + taps[2]!, t3 = base + taps[3]!;
        for (let ci = 0, d = 0, e = row; ci < c; ci++, d += khw, e += 4) {
          dw[t0 + d] = dw[t0 + d]! + s[e]!;
          dw[t1 + d] = dw[t1 + d]! + s[e + 1]!;
          dw[t2 + d] = dw[t2 + d]! + s[e + 2]!;
          dw[t3 + d] = dw[t3 + d]! + s[e + 3]!;
        }
        continue;
      }
      for (let ci = 0; ci < c; ci++) {
        for (let r = 0; r < hw; r++) dw[base + ci * khw + taps[r]!] = dw[base + ci * khw + taps[r]!]! + s[row + ci * hw + r]!;
      }
    }
  }
});

/** dw: (O, C, kH, kW) += ∂L/∂w, given dy and x; taps from denseMapTaps. Dead taps are left as they are. */
export function denseMapBackwardWeight(dw: Float32Array, dy: Float32Array, x: Float32Array, p: Conv2dParams, taps: Int32Array): void {
  const block = Math.max(4, Math.ceil(p.o / 8));
  const cost = 2 * p.n * p.o * p.c * p.h * p.w;
  parallelFor<DenseTask>({
    kernel: 'conv2d.denseBackwardWeight', bufs: { dw, dy, x }, writes: ['dw'], params: { p, taps, block }, units: Math.ceil(p.o / block), cost,
  });
}

// ---- im2col on small maps ----------------------------------------------------------------------------------

/** Output rows at most this wide take im2colSmall. */
const SMALL_ROW = 4;
let srcTab = new Int32Array(0);

/**
 * im2colRange (pack.ts) where output rows are at most SMALL_ROW wide (ResNet-18's 4×4, 2×2 and 1×1 maps): through a
 * table of each (tap, output position)'s input offset (−1 for padding), built once per call, instead of per-row
 * bounds work that costs more than the row's few copies. Same values. Returns false (nothing done) for wider rows.
 */
export function im2colSmall(
  col: Float32Array, colOff: number, ldc: number, x: Float32Array, xOff: number, c0: number, c1: number, p: Conv2dParams,
  j0: number, j1: number, taps: readonly number[] | null,
): boolean {
  const { h, w, kw, ow } = p;
  if (ow > SMALL_ROW) return false;
  const nt = taps ? taps.length : p.kh * kw, len = j1 - j0, hw = h * w;
  if (srcTab.length < nt * len) srcTab = new Int32Array(nt * len);
  const tab = srcTab;
  for (let t = 0; t < nt; t++) {
    const tap = taps ? taps[t]! : t;
    const ky = Math.floor(tap / kw), kx = tap - ky * kw;
    for (let j = j0; j < j1; j++) {
      const oy = Math.floor(j / ow), ox = j - oy * ow;
      const iy = oy * p.strideH - p.padH + ky * p.dilH, ix = ox * p.strideW - p.padW + kx * p.dilW;
      tab[t * len + j - j0] = iy >= 0 && iy < h && ix >= 0 && ix < w ? iy * w + ix : -1;
    }
  }
  let d = colOff;
  for (let ci = c0; ci < c1; ci++) {
    const xc = xOff + ci * hw;
    for (let t = 0; t < nt; t++, d += ldc) {
      const tb = t * len;
      for (let j = 0; j < len; j++) {
        const s = tab[tb + j]!;
        col[d + j] = s < 0 ? 0 : x[xc + s]!;
      }
    }
  }
  return true;
}
