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
import { colScratch, f32Scratch, liveScratch } from './pack.js';
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

// ---- the weight gradient tap by tap on small output maps --------------------------------------------------------
//
// On output maps of at most TAP_MAP_POSITIONS positions with many channels (ResNet-18's 2×2 and 4×4 maps at batch 8),
// im2col's columns are largely padding (2×2 under 3×3 pad 1: 20 of 36 entries per channel and image). Tap t meets
// only the output positions Q_t whose input position lies inside x, so
//   dw[:, :, t] += D_t,  D_t (O × C) = A_t (O × N·|Q_t|) · B_t (N·|Q_t| × C),
//   A_t[o, n·|Q_t| + j] = dy[n, o, Q_t[j]],  B_t[n·|Q_t| + j, c] = x[n, c, R_t[j]]   (R_t[j]: Q_t[j]'s input position)
// one GEMM per tap over the live pairs only (2×2 under 3×3 pad 1: 16 of 36). The B_t are gathered once (N·Σ|Q_t| × C
// floats), in units of images on the threads, before the GEMMs' task; its units are blocks of output channels, each
// with its A_t rows, its D_t in a scratch and then its rows of dw, walked in order. Each D_t entry is the GEMM's sum
// (float32 blocks of ≤ 64 terms added in float64) rounded to float32, then added to dw (onto a zeroed dw, as in
// training, the same as one rounding). Taps that meet no output position get dw + 0, as in the naive loop.

/**
 * Output positions at most this many take tapMapBackwardWeight (one core, CPU time, batch 8: 128→128 on 4×4 0.8× the
 * Winograd path, 64→128 3×3/2 from 8×8 0.75× im2col + GEMM; 64→64 on 8×8 1.9× Winograd).
 */
const TAP_MAP_POSITIONS = 16;

interface TapMapTask {
  p: Conv2dParams;
  /** Per tap: its output positions Q_t, their input positions R_t, and B_t's first float in bt. */
  qs: number[][];
  rs: number[][];
  bAt: number[];
  /** Output channels per unit. */
  block: number;
}

/**
 * Per tap t = ky·kW + kx, the output positions that meet an input position through it and those input positions,
 * when tapMapBackwardWeight applies (SIMD backend, groups 1, at most TAP_MAP_POSITIONS output positions, few pairs
 * against the weights: see below); else null.
 */
export function tapMapPairs(p: Conv2dParams): { qs: number[][]; rs: number[][] } | null {
  if (kernelBackend() !== 'simd' || p.groups !== 1 || p.oh * p.ow > TAP_MAP_POSITIONS) return null;
  const qs: number[][] = [], rs: number[][] = [];
  let pairs = 0;
  for (let ky = 0; ky < p.kh; ky++) {
    for (let kx = 0; kx < p.kw; kx++) {
      const q: number[] = [], r: number[] = [];
      for (let oy = 0; oy < p.oh; oy++) {
        const iy = oy * p.strideH - p.padH + ky * p.dilH;
        if (iy < 0 || iy >= p.h) continue;
        for (let ox = 0; ox < p.ow; ox++) {
          const ix = ox * p.strideW - p.padW + kx * p.dilW;
          if (ix < 0 || ix >= p.w) continue;
          q.push(oy * p.ow + ox);
          r.push(iy * p.w + ix);
        }
      }
      qs.push(q);
      rs.push(r);
      pairs += q.length;
    }
  }
  // The gathers of A_t and B_t, (O + C)·N·Σ|Q_t| floats, against dw's O·C·kH·kW entries: where the maps are not
  // small against the channels (ResNet-56's 16→16 on 4×4 at batch 128: 3× slower than Winograd), not this path.
  return (p.o + p.c) * p.n * pairs <= 4 * p.o * p.c * p.kh * p.kw ? { qs, rs } : null;
}

registerTask<TapMapTask>('conv2d.tapMapBackwardWeight', (bufs, q, u0, u1) => {
  const { p, qs, rs, bAt } = q;
  const { n, c, o } = p;
  const dw = bufs.dw as Float32Array, dy = bufs.dy as Float32Array, bt = bufs.bt as Float32Array;
  const khw = p.kh * p.kw, ohw = p.oh * p.ow;
  for (let u = u0; u < u1; u++) {
    const o0 = u * q.block, o1 = Math.min(o, o0 + q.block), m = o1 - o0, mc = m * c;
    // D_t for every tap, one after another (khw × m × C).
    const d = f32Scratch(khw * mc);
    for (let t = 0; t < khw; t++) {
      const qt = qs[t]!, nq = qt.length, kt = n * nq;
      if (kt === 0) {
        d.fill(0, t * mc, (t + 1) * mc);
        continue;
      }
      const a = colScratch(m * kt);
      for (let oc = o0; oc < o1; oc++) {
        const row = (oc - o0) * kt;
        for (let i = 0; i < n; i++) {
          const src = (i * o + oc) * ohw;
          for (let j = 0; j < nq; j++) a[row + i * nq + j] = dy[src + qt[j]!]!;
        }
      }
      sgemmRange(d, a, bt, m, c, kt, { bOff: bAt[t]!, cOff: t * mc }, 0, m, 0, c);
    }
    // dw's rows [o0, o1) in order, each entry from its tap's D_t.
    const end = o1 * c * khw;
    if (khw === 9) {
      for (let at = o0 * c * khw, e = 0; at < end; at += 9, e++) {
        dw[at] = dw[at]! + d[e]!;
        dw[at + 1] = dw[at + 1]! + d[mc + e]!;
        dw[at + 2] = dw[at + 2]! + d[2 * mc + e]!;
        dw[at + 3] = dw[at + 3]! + d[3 * mc + e]!;
        dw[at + 4] = dw[at + 4]! + d[4 * mc + e]!;
        dw[at + 5] = dw[at + 5]! + d[5 * mc + e]!;
        dw[at + 6] = dw[at + 6]! + d[6 * mc + e]!;
        dw[at + 7] = dw[at + 7]! + d[7 * mc + e]!;
        dw[at + 8] = dw[at + 8]! + d[8 * mc + e]!;
      }
      continue;
    }
    for (let at = o0 * c * khw, e = 0; at < end; at += khw, e++) {
      for (let t = 0; t < khw; t++) dw[at + t] = dw[at + t]! + d[t * mc + e]!;
    }
  }
});

interface TapGatherTask {
  c: number;
  hw: number;
  /** Per pair (tap by tap, positions in order): its input position, its row of B_t for image 0, and |Q_t|. */
  src: Int32Array;
  dst: Int32Array;
  nqs: Int32Array;
}

// B_t's rows of images [u0, u1), pair by pair (a row of C floats from x at a stride of H·W: one image's x stays in
// the core's cache; reading it plane by plane for every pair was no faster).
registerTask<TapGatherTask>('conv2d.tapMapGather', (bufs, q, u0, u1) => {
  const { c, hw, src, dst, nqs } = q;
  const bt = bufs.bt as Float32Array, x = bufs.x as Float32Array, np = src.length;
  for (let i = u0; i < u1; i++) {
    for (let k = 0; k < np; k++) {
      const row = dst[k]! + i * nqs[k]! * c, at = i * c * hw + src[k]!;
      for (let ci = 0; ci < c; ci++) bt[row + ci] = x[at + ci * hw]!;
    }
  }
});

/** dw: (O, C, kH, kW) += ∂L/∂w, given dy and x, where tapMapPairs(p) is not null (pairs: its value). */
export function tapMapBackwardWeight(dw: Float32Array, dy: Float32Array, x: Float32Array, p: Conv2dParams, pairs: { qs: number[][]; rs: number[][] }): void {
  const { n, c } = p, hw = p.h * p.w;
  const { qs, rs } = pairs;
  // B_t (N·|Q_t| × C) for every tap, one after another.
  const bAt: number[] = [];
  let len = 0;
  for (const r of rs) {
    bAt.push(len);
    len += n * r.length * c;
  }
  const bt = liveScratch(0, Math.max(len, 1));
  // The pairs in order (tap by tap): input position and first row of image 0's entry in B_t.
  const np = rs.reduce((s, r) => s + r.length, 0);
  const src = new Int32Array(np), dst = new Int32Array(np), nqs = new Int32Array(np);
  let at = 0;
  rs.forEach((r, t) => {
    for (let j = 0; j < r.length; j++, at++) {
      src[at] = r[j]!;
      dst[at] = bAt[t]! + j * c;
      nqs[at] = r.length;
    }
  });
  // cost: a strided copy takes about as long as 30 or more of the GEMM's flops (128→128 on 4×4, batch 8: 100K floats,
  // 0.3 ms on one core), so it goes to the threads from ~30K floats.
  parallelFor<TapGatherTask>({
    kernel: 'conv2d.tapMapGather', bufs: { bt, x }, writes: ['bt'], overwrites: ['bt'], params: { c, hw, src, dst, nqs }, units: n, cost: 32 * len,
  });
  const block = Math.max(4, Math.ceil(p.o / 8));
  const cost = 2 * p.o * len;
  parallelFor<TapMapTask>({
    kernel: 'conv2d.tapMapBackwardWeight', bufs: { dw, dy, bt }, writes: ['dw'], params: { p, qs, rs, bAt, block }, units: Math.ceil(p.o / block), cost,
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
