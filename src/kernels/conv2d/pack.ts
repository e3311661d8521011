// Packing: the per-thread scratch buffers, im2col / col2im, and the GEMM's B panels packed straight from the
// input through a table of tap offsets (float64 panels for the asm.js tiles, float32 for the SIMD ones).

import { scratchLength } from '../gemm.js';
import { simdIm2col } from '../wasm/im2col.js';
import { phaseTable } from './direct.js';
import { im2colSmall } from './small-map.js';
import { endValid, firstValid, type Conv2dParams, type ForwardTask } from './plan.js';

// ---- scratch --------------------------------------------------------------------------------------------------

// Scratch buffers grow to what is asked, rounded up (not doubled: doubling left up to half of a several-MB buffer
// unused, per thread, for the life of the process).

export let colBuf: Float32Array = new Float32Array(0);

export function colScratch(need: number): Float32Array {
  if (colBuf.length < need) colBuf = new Float32Array(scratchLength(need));
  return colBuf;
}

export const f64Bufs: Float64Array[] = [new Float64Array(0), new Float64Array(0)];

/** Float64 scratch number `slot`, its first `need` entries zeroed. */
export function f64Scratch(slot: number, need: number): Float64Array {
  let buf = f64Bufs[slot]!;
  if (buf.length < need) {
    buf = f64Bufs[slot] = new Float64Array(scratchLength(need));
  } else {
    buf.fill(0, 0, need);
  }
  return buf;
}

export let f32Buf: Float32Array = new Float32Array(0);

/** A second float32 scratch (gathered images, GEMM output of batched images); contents unspecified. */
export function f32Scratch(need: number): Float32Array {
  if (f32Buf.length < need) f32Buf = new Float32Array(scratchLength(need));
  return f32Buf;
}

// ---- im2col / col2im -------------------------------------------------------------------------------------------

/**
 * im2col for one image and one group, restricted to channels [c0, c1) of the group and output positions [j0, j1)
 * (j = oy·oW + ox): col[colOff + r·ldc + (j − j0)] for rows r of (c1 − c0)·T, from x[xOff …] holding the group's
 * channels of H×W; row r = ci·T + t for kernel tap taps[t] = ky·kW + kx (all T = kH·kW taps when taps is null).
 * Out-of-bounds (padding) positions are written as 0.
 */
export function im2colRange(
  col: Float32Array,
  colOff: number,
  ldc: number,
  x: Float32Array,
  xOff: number,
  c0: number,
  c1: number,
  p: Conv2dParams,
  j0: number,
  j1: number,
  taps: readonly number[] | null = null,
): void {
  if (im2colSmall(col, colOff, ldc, x, xOff, c0, c1, p, j0, j1, taps)) return;
  const { h, w, kh, kw, strideH: sh, strideW: sw, padH: ph, padW: pw, dilH: dh, dilW: dw, ow } = p;
  const oy0 = Math.floor(j0 / ow), oy1 = Math.floor((j1 - 1) / ow) + 1;
  const nt = taps ? taps.length : kh * kw;
  let row = 0;
  for (let ci = c0; ci < c1; ci++) {
    const xc = xOff + ci * h * w;
    for (let ti = 0; ti < nt; ti++, row++) {
      const tap = taps ? taps[ti]! : ti;
      const ky = Math.floor(tap / kw), kx = tap - ky * kw;
      {
        const base = colOff + row * ldc - j0;
        const ixStart = kx * dw - pw;
        const vx0 = Math.min(firstValid(ixStart, sw), ow);
        const vx1 = Math.max(endValid(ixStart, sw, w, ow), vx0);
        for (let oy = oy0; oy < oy1; oy++) {
          // this output row's part of [j0, j1)
          const rs = oy * ow;
          const a = Math.max(0, j0 - rs), b = Math.min(ow, j1 - rs);
          const d = base + rs;
          const iy = oy * sh - ph + ky * dh;
          if (iy < 0 || iy >= h) {
            col.fill(0, d + a, d + b);
            continue;
          }
          const src = xc + iy * w + ixStart;
          const lo = Math.max(a, vx0), hi = Math.min(b, vx1);
          for (let ox = a; ox < Math.min(b, lo); ox++) col[d + ox] = 0;
          if (sw === 1) {
            for (let ox = lo; ox < hi; ox++) col[d + ox] = x[src + ox]!;
          } else {
            for (let ox = lo; ox < hi; ox++) col[d + ox] = x[src + ox * sw]!;
          }
          for (let ox = Math.max(a, hi); ox < b; ox++) col[d + ox] = 0;
        }
      }
    }
  }
}

/** im2col for one image and one group (all channels, all output positions): col (cg·kH·kW × oH·oW). */
export function im2col(col: Float32Array, x: Float32Array, xOff: number, cg: number, p: Conv2dParams): void {
  const ohw = p.oh * p.ow;
  im2colRange(col, 0, ohw, x, xOff, 0, cg, p, 0, ohw);
}

/**
 * col2im in float64 for channels [0, cb) of a block: dx64 (cb × H × W) += the (cb·T) × oH·oW matrix at
 * col64[colOff + r·ldc + j] scattered back (rows as in im2colRange); padding entries dropped. Each dx64 entry
 * receives its terms in (tap, oy, ox) order.
 */
export function col2im64(
  dx64: Float64Array,
  col64: Float64Array,
  colOff: number,
  ldc: number,
  cb: number,
  p: Conv2dParams,
  taps: readonly number[] | null,
): void {
  const { h, w, kh, kw, strideH: sh, strideW: sw, padH: ph, padW: pw, dilH: dh, dilW: dw, oh, ow } = p;
  const nt = taps ? taps.length : kh * kw;
  let row = 0;
  for (let ci = 0; ci < cb; ci++) {
    const xc = ci * h * w;
    for (let ti = 0; ti < nt; ti++, row++) {
      const tap = taps ? taps[ti]! : ti;
      const ky = Math.floor(tap / kw), kx = tap - ky * kw;
      {
        const base = colOff + row * ldc;
        const ixStart = kx * dw - pw;
        const ox0 = Math.min(firstValid(ixStart, sw), ow);
        const ox1 = Math.max(endValid(ixStart, sw, w, ow), ox0);
        for (let oy = 0; oy < oh; oy++) {
          const iy = oy * sh - ph + ky * dh;
          if (iy < 0 || iy >= h) continue;
          const d = base + oy * ow;
          const dst = xc + iy * w + ixStart;
          if (sw === 1) {
            for (let ox = ox0; ox < ox1; ox++) dx64[dst + ox] = dx64[dst + ox]! + col64[d + ox]!;
          } else {
            for (let ox = ox0; ox < ox1; ox++) dx64[dst + ox * sw] = dx64[dst + ox * sw]! + col64[d + ox]!;
          }
        }
      }
    }
  }
}

/**
 * Rows [r0, r1) of channel-block `rows` of several images gathered side by side: dst[(r − r0)·(nc·hw) + i·hw + q]
 * = src[((n0 + i)·chans + chOff + r)·hw + q] for images i < nc. Used to batch small images into one GEMM.
 */
export function gatherImages(dst: Float32Array, src: Float32Array, n0: number, nc: number, chans: number, chOff: number, r0: number, r1: number, hw: number): void {
  const ld = nc * hw;
  for (let r = r0; r < r1; r++) {
    for (let i = 0; i < nc; i++) {
      const s = ((n0 + i) * chans + chOff + r) * hw, d = (r - r0) * ld + i * hw;
      // A loop for short maps: a subarray per 2×2 map cost more than the copy (23% of a 256→256 @2 weight gradient).
      if (hw < 64) for (let q = 0; q < hw; q++) dst[d + q] = src[s + q]!;
      else dst.set(src.subarray(s, s + hw), d);
    }
  }
}

export const liveBufs: Float32Array[] = [new Float32Array(0), new Float32Array(0)];

/** Shared float32 scratch `slot` of at least n elements (main thread only; handed to the task as a buffer). */
export function liveScratch(slot: number, n: number): Float32Array {
  let buf = liveBufs[slot]!;
  if (buf.length < n) {
    buf = liveBufs[slot] = typeof SharedArrayBuffer === 'function' ? new Float32Array(new SharedArrayBuffer(Math.max(n, 1024) * 4)) : new Float32Array(n);
  }
  return buf.length === n ? buf : buf.subarray(0, n);
}

/** dst (rows × T) = src (rows × kH·kW) restricted to the live taps. */
export function gatherTaps(dst: Float32Array, src: Float32Array, rows: number, khw: number, taps: readonly number[]): void {
  const nt = taps.length;
  if (nt === 1) {
    const tap = taps[0]!;
    for (let r = 0; r < rows; r++) dst[r] = src[r * khw + tap]!;
    return;
  }
  for (let r = 0; r < rows; r++) for (let t = 0; t < nt; t++) dst[r * nt + t] = src[r * khw + taps[t]!]!;
}

/** The task whose tap table `tapTab` holds (a table per call, per thread). */
export let tapFor: ForwardTask | null = null;
export let tapTab: Int32Array = new Int32Array(0);

/**
 * Per row k = ci·nt + t of a group's col (nt live taps, or all kH·kW): [ci·H·W + ky·dH·W + kx·dW, ky·dH, kx·dW], the
 * offset of tap t of channel ci from a window's top-left input position, and the tap's own (y, x) offset.
 */
export function tapTable(q: ForwardTask): Int32Array {
  if (tapFor === q) return tapTab;
  const { p, taps } = q;
  const nt = taps ? taps.length : p.kh * p.kw, cg = p.c / p.groups, hw = p.h * p.w;
  if (tapTab.length < 3 * cg * nt) tapTab = new Int32Array(3 * cg * nt);
  for (let ci = 0, k = 0; ci < cg; ci++) {
    for (let t = 0; t < nt; t++, k++) {
      const tap = taps ? taps[t]! : t;
      const ky = Math.floor(tap / p.kw), kx = tap - ky * p.kw;
      tapTab[3 * k] = ci * hw + ky * p.dilH * p.w + kx * p.dilW;
      tapTab[3 * k + 1] = ky * p.dilH;
      tapTab[3 * k + 2] = kx * p.dilW;
    }
  }
  tapFor = q;
  return tapTab;
}

/** packIm2col's per-window tap offsets, and a panel's window offsets. */
let offs = new Int32Array(0);
const base = new Int32Array(8);

/**
 * The GEMM's packed B panels (PackB) of col = im2col(x) for output positions [j, j + nc) and col rows [p0, p0 + kl),
 * read from x directly (tab: tapTable's, nt taps per channel): the values im2colRange would copy (0 for padding), in
 * packPanelB's layout, so the GEMM gives the same bits. A panel of nr positions whose windows all lie inside x (in
 * one output row or across a row's end: a quarter of 1×1/2 64→128 @56's panels) reads nr values per row through the
 * tap table, unchecked; others take each position's taps from a table of its in-bounds offsets. (Measured: one pass
 * instead of im2col's copy and the packing's second pass over it.)
 */
export function packIm2col(
  dst: Float32Array | Float64Array, d0: number, x: Float32Array, xOff: number, p: Conv2dParams, tab: Int32Array, nt: number, j: number, nc: number, p0: number, kl: number, nr: number,
): void {
  const { h, w, ow, strideH: sh, strideW: sw, padH: ph, padW: pw } = p;
  const hw = h * w;
  if (offs.length < nt) offs = new Int32Array(nt);
  const ySpan = (p.kh - 1) * p.dilH, xSpan = (p.kw - 1) * p.dilW;
  const q1 = p0 + kl;
  let d = d0;
  for (let jr = 0; jr < nc; jr += nr, j += nr) {
    const w8 = Math.min(nr, nc - jr);
    // A whole panel whose windows all lie inside x (in one output row or across a row's end): each position's
    // window from its own top-left input offset.
    let inside = w8 === nr;
    for (let t = 0; t < nr && inside; t++) {
      const oy = Math.floor((j + t) / ow), iy = oy * sh - ph, ix = (j + t - oy * ow) * sw - pw;
      inside = iy >= 0 && iy + ySpan < h && ix >= 0 && ix + xSpan < w;
      base[t] = xOff + iy * w + ix;
    }
    if (inside) {
      const b0 = base[0]!, b1 = base[1]!, b2 = base[2]!, b3 = base[3]!;
      if (nr === 8) {
        const b4 = base[4]!, b5 = base[5]!, b6 = base[6]!, b7 = base[7]!;
        for (let q = p0; q < q1; q++, d += 8) {
          const o = tab[3 * q]!;
          dst[d] = x[b0 + o]!;
          dst[d + 1] = x[b1 + o]!;
          dst[d + 2] = x[b2 + o]!;
          dst[d + 3] = x[b3 + o]!;
          dst[d + 4] = x[b4 + o]!;
          dst[d + 5] = x[b5 + o]!;
          dst[d + 6] = x[b6 + o]!;
          dst[d + 7] = x[b7 + o]!;
        }
      } else {
        for (let q = p0; q < q1; q++, d += 4) {
          const o = tab[3 * q]!;
          dst[d] = x[b0 + o]!;
          dst[d + 1] = x[b1 + o]!;
          dst[d + 2] = x[b2 + o]!;
          dst[d + 3] = x[b3 + o]!;
        }
      }
      continue;
    }
    for (let t = 0; t < nr; t++) {
      let dd = d + t;
      if (t >= w8) {
        for (let q = p0; q < q1; q++, dd += nr) dst[dd] = 0;
        continue;
      }
      const oyt = Math.floor((j + t) / ow), oxt = j + t - oyt * ow;
      const by = oyt * sh - ph, bx = oxt * sw - pw;
      // This window's taps (the same for every channel): offset from its top-left, or −1 where it reads padding.
      for (let tt = 0; tt < nt; tt++) {
        const iy = by + tab[3 * tt + 1]!, ix = bx + tab[3 * tt + 2]!;
        offs[tt] = iy >= 0 && iy < h && ix >= 0 && ix < w ? tab[3 * tt]! : -1;
      }
      const ci = Math.floor(p0 / nt);
      let tt = p0 - ci * nt, at = xOff + by * w + bx + ci * hw;
      for (let q = p0; q < q1; q++, dd += nr) {
        const o = offs[tt]!;
        dst[dd] = o >= 0 ? x[at + o]! : 0;
        if (++tt === nt) {
          tt = 0;
          at += hw;
        }
      }
    }
    d += nr * kl;
  }
}


/** packStrided1x1's eight positions' offsets in x. */
const at8 = new Int32Array(8);

/**
 * The SIMD GEMM's packed B panels (8 positions each, float32: packPanelB's layout) of a 1×1 convolution without
 * padding at any stride, for output positions [j, j + nc) and channels [p0, p0 + kl) of x_g (at xOff): B[q][j] =
 * x_g[q][oy·sH][ox·sW]. One pass over the positions x meets, straight from x (no gathered copy of its rows first;
 * 1×1/2 64→128 @56, one core: 21–31 µs against the row gather's 42); zeros past nc.
 */
export function packStrided1x1(dst: Float32Array, d0: number, x: Float32Array, xOff: number, p: Conv2dParams, j: number, nc: number, p0: number, kl: number): void {
  const { w, ow, strideH: sh, strideW: sw } = p, hw = p.h * w;
  let d = d0;
  for (let jr = 0; jr < nc; jr += 8, j += 8) {
    const w8 = Math.min(8, nc - jr);
    for (let t = 0; t < 8; t++) {
      const jt = j + Math.min(t, w8 - 1), oy = Math.floor(jt / ow);
      at8[t] = xOff + p0 * hw + oy * sh * w + (jt - oy * ow) * sw;
    }
    const b0 = at8[0]!, b1 = at8[1]!, b2 = at8[2]!, b3 = at8[3]!, b4 = at8[4]!, b5 = at8[5]!, b6 = at8[6]!, b7 = at8[7]!;
    for (let q = 0, o = 0; q < kl; q++, d += 8, o += hw) {
      dst[d] = x[b0 + o]!;
      dst[d + 1] = x[b1 + o]!;
      dst[d + 2] = x[b2 + o]!;
      dst[d + 3] = x[b3 + o]!;
      dst[d + 4] = x[b4 + o]!;
      dst[d + 5] = x[b5 + o]!;
      dst[d + 6] = x[b6 + o]!;
      dst[d + 7] = x[b7 + o]!;
    }
    // A last panel of fewer than 8 positions: its lanes past nc (copies of the last position above) zeroed.
    if (w8 < 8) for (let q = 0, dd = d - 8 * kl; q < kl; q++, dd += 8) dst.fill(0, dd + w8, dd + 8);
  }
}

// ---- im2col panels in wasm (SIMD backend) -----------------------------------------------------------------------

/** Output rows that nc consecutive positions from j can touch at most, and the padded input rows they read. */
function im2colRows(p: Conv2dParams, nc: number): { rows: number; hp: number } {
  const rows = Math.ceil(nc / p.ow) + 1;
  return { rows, hp: (rows - 1) * p.strideH + (p.kh - 1) * p.dilH + 1 };
}

/** Plane width (floats) of packIm2colSimd's stride-phase planes: oW plus the taps' reach, whole vectors. */
const planeWidth = (p: Conv2dParams): number => 4 * Math.ceil((p.ow + Math.floor(((p.kw - 1) * p.dilW) / p.strideW)) / 4);

/**
 * Floats past SIMD_GEMM_END that packIm2colSimd may use for a block of nc output positions of a group of cg
 * channels, K = cg·taps rows of col: the input rows, their planes, the offset tables.
 */
export function im2colSimdFloats(p: Conv2dParams, cg: number, K: number, nc: number): number {
  const { hp } = im2colRows(p, nc);
  return cg * Math.min(hp, p.h) * p.w + 4 + cg * p.strideW * hp * planeWidth(p) + K + 3 * p.strideW;
}

/**
 * packIm2col on the SIMD backend (nr = 8, dst: the float32 view of the SIMD GEMM's memory, which holds
 * SIMD_GEMM_END + im2colSimdFloats(…) floats): the same panels, packed in wasm (wasm/im2col.ts) from zero-padded
 * stride-phase planes of the input rows of this block's channels, made at float index `at` (SIMD_GEMM_END).
 */
export function packIm2colSimd(
  dst: Float32Array, d0: number, x: Float32Array, xOff: number, p: Conv2dParams, tab: Int32Array, nt: number, j: number, nc: number, p0: number, kl: number, at: number,
): void {
  const { h, w, ow, strideH: sh, strideW: s, padH, padW } = p, hw = h * w;
  const oyA = Math.floor(j / ow), oyB = Math.floor((j + nc - 1) / ow) + 1;
  const ci0 = Math.floor(p0 / nt), ci1 = Math.floor((p0 + kl - 1) / nt) + 1, chans = ci1 - ci0;
  // Planes row r: input row rowA + r; the copied input rows [rA, rB).
  const hp = (oyB - oyA - 1) * sh + (p.kh - 1) * p.dilH + 1, rowA = oyA * sh - padH;
  const rA = Math.max(0, rowA), rB = Math.min(h, rowA + hp), nrows = Math.max(0, rB - rA);
  const wq = planeWidth(p), plane = hp * wq;
  const raw = at, planesAt = raw + chans * nrows * w + ((4 - ((raw + chans * nrows * w) & 3)) & 3);
  const tabAt = planesAt + chans * s * plane, qtAt = tabAt + kl;
  const k = simdIm2col(), ints = new Int32Array(dst.buffer);
  for (let c = 0; c < chans && nrows > 0; c++) {
    const src = xOff + (ci0 + c) * hw + rA * w;
    dst.set(x.subarray(src, src + nrows * w), raw + c * nrows * w);
  }
  phaseTable(ints, qtAt, s, wq, w, padW);
  k.pad(4 * raw, 4 * nrows * w, chans, nrows, w, 4 * planesAt, 4 * plane, wq, hp, s, s, rowA - rA, 4 * qtAt);
  // Row q of col: channel ci, tap (ty, tx) = tab's (ky·dH, kx·dW): plane tx mod s, column tx / s, row ty.
  for (let q = p0; q < p0 + kl; q++) {
    const ty = tab[3 * q + 1]!, tx = tab[3 * q + 2]!, c = Math.floor(q / nt) - ci0;
    ints[tabAt + q - p0] = 4 * ((c * s + (tx % s)) * plane + ty * wq + Math.floor(tx / s));
  }
  k.im2col(4 * planesAt, 4 * sh * wq, 4 * tabAt, kl, j - oyA * ow, nc, ow, 4 * d0);
}
