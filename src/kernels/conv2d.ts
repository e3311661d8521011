// 2-D convolution kernels (PyTorch conv2d), NCHW activations and OIHW weights.
//
//   x: (N, C, H, W) · w: (O, C/groups, kH, kW) · bias: (O) → y: (N, O, oH, oW)
//
// Paths:
//   Winograd F(4×4, 3×3) (winograd.ts) for stride-1, dilation-1, ungrouped 3×3 convolutions of sufficient size,
//     forward and input gradient (the input gradient of such a conv is itself one: see winograd.ts).
//   im2col + GEMM otherwise, per image and per group, over
//     col_g: (K = C/groups·kH·kW) × (oH·oW), row index k = (ci·kH + ky)·kW + kx
//     forward:          y_g  (O/g × oHW)  = w_g (O/g × K) · col_g            (+ bias, folded into the GEMM's C)
//     backward input:   dcol (K × oHW)    = w_gᵀ · dy_g (float64),  then col2im adds dcol into a float64 dx
//     backward weight:  dw_g (O/g × K)    = Σ_n dy_g,n · col_g,nᵀ  (one float64 running sum over all images)
//   1×1 convolutions with stride 1 and no padding skip im2col: x_g itself is the (C/g × HW) matrix.
// Groups are handled by offsets into the same buffers (no copies of x or w per group). Padding is skipped in
// im2col/col2im, never materialized in a padded copy of x.
//
// Summation orders (what makes results independent of blocking and thread count):
//   forward (im2col): bias + Σ_k w[o,k]·col[k,j], k ascending = (ci, ky, kx) row-major, float64, one rounding —
//     the naive reference's order, so bit-identical to it.
//   backward weight: Σ over (n, oy, ox) ascending in float64, then added to dw once — the naive order, bit-identical.
//     Except where the channel blocks give fewer than MIN_WEIGHT_UNITS units on a big enough problem (CIFAR's 3→16
//     stem: one): the images are then split into at most MAX_SPLITS runs fixed by the shape, each summed that way
//     into its own float64 partial, and dw += (partial₀ + partial₁ + …) once. Still one order per shape, whatever
//     the threads; within a rounding of the naive loop.
//   backward input (im2col): each dcol entry is a float64 sum over output channels; col2im adds them per dx entry in
//     (ky, kx, oy, ox) order, in float64; dx += that once.
//   Winograd: float64 throughout, one rounding (see winograd.ts).
//
// Threads: each direction is one task whose units are blocks of the output that never share an output value:
//   forward: (image, block of output columns, block of output channels) — each unit does its own im2col;
//   backward input: (image, group, block of input channels) — a unit's col2im touches only its channels of dx;
//   backward weight: (group, block of output channels, block of input channels) — every image is summed inside
//     the unit, in order; times the image splits where there are any (above).
// Block sizes depend on the shapes only. Scratch buffers are module-level (one set per thread), grown on demand.
//
// Small maps (fewer than SMALL_MAP output positions, as in CIFAR-sized inputs or ResNet's last stages): several
// images go side by side into one GEMM (forward and backward input: a unit covers a chunk of images; backward
// weight: k spans a chunk of images), instead of one skinny GEMM per image. Taps of the kernel that only ever
// meet padding (a 3×3 pad-1 conv on a 1×1 map) are dropped from the GEMMs (see liveTaps).

import { dgemmAccRange, scratchLength, sgemmRange, type PackB } from './gemm.js';
import { config, setConfig, type WinogradPolicy } from '../config.js';
import { parallelFor, registerTask, sharedFloat64 } from './parallel.js';
import { float32Bits, reluBits } from './relu.js';
import { NO_EPILOGUE, winogradConv, winogradWorthIt, type Epilogue, type WinogradParams } from './winograd.js';

export type { Epilogue } from './winograd.js';

/** Shapes and hyper-parameters of a 2-D convolution. Padding is symmetric per axis (PyTorch). */
export interface Conv2dParams {
  n: number;
  c: number;
  h: number;
  w: number;
  o: number;
  kh: number;
  kw: number;
  strideH: number;
  strideW: number;
  padH: number;
  padW: number;
  dilH: number;
  dilW: number;
  groups: number;
  /** Output height, precomputed by the caller with conv2dOutSize. */
  oh: number;
  /** Output width, precomputed by the caller with conv2dOutSize. */
  ow: number;
}

/** PyTorch's output size: floor((in + 2·pad − dil·(k − 1) − 1) / stride) + 1. */
export function conv2dOutSize(inSize: number, k: number, stride: number, pad: number, dil: number): number {
  return Math.floor((inSize + 2 * pad - dil * (k - 1) - 1) / stride) + 1;
}

// ---- Winograd dispatch ----------------------------------------------------------------------------------------

export type { WinogradPolicy } from '../config.js';

/** Sets config.winograd (for tests and benchmarks; withConfig scopes it); returns the previous policy. */
export function setWinogradPolicy(policy: WinogradPolicy): WinogradPolicy {
  return setConfig({ winograd: policy }).winograd!;
}

/** Multiply-adds per channel pair of the im2col path (forward or input gradient): live taps × N × oH·oW. */
function directMacs(p: Conv2dParams): number {
  const taps = liveTaps(p);
  return (taps ? taps.length : p.kh * p.kw) * p.n * p.oh * p.ow;
}

/** 3×3, stride 1, dilation 1, one group: the shapes F(4×4, 3×3) computes. */
function winogradShape(p: Conv2dParams): boolean {
  return p.kh === 3 && p.kw === 3 && p.strideH === 1 && p.strideW === 1 && p.dilH === 1 && p.dilW === 1 && p.groups === 1;
}

/**
 * True when every value is finite. Winograd's transforms mix a whole 6×6 patch, so one NaN or ±Inf would spread
 * over whole tiles (and Inf − Inf makes NaN where the direct conv gives ±Inf): such inputs take the im2col path,
 * keeping the direct convolution's NaN/Inf pattern. One multiply-add per element, small next to the conv.
 */
function allFinite(a: Float32Array): boolean {
  // Four independent sums: one chain of dependent adds would cost an add latency per element.
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  const n = a.length, n4 = n - (n % 4);
  for (let i = 0; i < n4; i += 4) {
    s0 += a[i]! * 0;
    s1 += a[i + 1]! * 0;
    s2 += a[i + 2]! * 0;
    s3 += a[i + 3]! * 0;
  }
  for (let i = n4; i < n; i++) s0 += a[i]! * 0;
  return s0 + s1 + s2 + s3 === 0;
}

// The forward checks x only: winogradConv reports non-finite weights itself (its weight transform reads them all),
// and the forward then runs again on the im2col path (y is overwritten, so nothing is lost). That saves a serial
// pass over w on every call (1.1 ms for a 512→512 3×3 weight, a tenth of the conv at batch 1).
function forwardWinograd(p: Conv2dParams, x: Float32Array): WinogradParams | null {
  if (config.winograd === 'never' || !winogradShape(p)) return null;
  const q: WinogradParams = {
    n: p.n, ci: p.c, hi: p.h, wi: p.w, co: p.o, ho: p.oh, wo: p.ow, padH: p.padH, padW: p.padW, flip: false, accumulate: false,
  };
  return (config.winograd === 'always' || winogradWorthIt(q, directMacs(p))) && allFinite(x) ? q : null;
}

// dx = full correlation of dy with the rotated, transposed weights: padding 2 − p, so p ≤ 2 only.
function backwardInputWinograd(p: Conv2dParams, dy: Float32Array, w: Float32Array): WinogradParams | null {
  if (config.winograd === 'never' || !winogradShape(p) || p.padH > 2 || p.padW > 2) return null;
  const q: WinogradParams = {
    n: p.n, ci: p.o, hi: p.oh, wi: p.ow, co: p.c, ho: p.h, wo: p.w, padH: 2 - p.padH, padW: 2 - p.padW, flip: true, accumulate: true,
  };
  return (config.winograd === 'always' || winogradWorthIt(q, directMacs(p))) && allFinite(dy) && allFinite(w) ? q : null;
}

// ---- scratch --------------------------------------------------------------------------------------------------

// Scratch buffers grow to what is asked, rounded up (not doubled: doubling left up to half of a several-MB buffer
// unused, per thread, for the life of the process).

let colBuf: Float32Array = new Float32Array(0);

function colScratch(need: number): Float32Array {
  if (colBuf.length < need) colBuf = new Float32Array(scratchLength(need));
  return colBuf;
}

const f64Bufs: Float64Array[] = [new Float64Array(0), new Float64Array(0)];

/** Float64 scratch number `slot`, its first `need` entries zeroed. */
function f64Scratch(slot: number, need: number): Float64Array {
  let buf = f64Bufs[slot]!;
  if (buf.length < need) {
    buf = f64Bufs[slot] = new Float64Array(scratchLength(need));
  } else {
    buf.fill(0, 0, need);
  }
  return buf;
}

let f32Buf: Float32Array = new Float32Array(0);

/** A second float32 scratch (gathered images, GEMM output of batched images); contents unspecified. */
function f32Scratch(need: number): Float32Array {
  if (f32Buf.length < need) f32Buf = new Float32Array(scratchLength(need));
  return f32Buf;
}

/** True when the convolution is a plain matrix product over channels (1×1 kernel, stride 1, no padding). */
function isPointwise(p: Conv2dParams): boolean {
  return p.kh === 1 && p.kw === 1 && p.strideH === 1 && p.strideW === 1 && p.padH === 0 && p.padW === 0;
}

const roundUp4 = (v: number): number => Math.ceil(v / 4) * 4;

// For one kernel column kx, the output columns [ox0, ox1) whose input column ix = start + ox·stride
// (start = kx·dW − pW) lies in [0, W): ox0 = firstValid(start, stride), ox1 = endValid(start, stride, W, oW).
function firstValid(start: number, stride: number): number {
  // smallest o ≥ 0 with start + o·stride ≥ 0
  return start >= 0 ? 0 : Math.floor((-start + stride - 1) / stride);
}
function endValid(start: number, stride: number, size: number, outSize: number): number {
  // one past the largest o < outSize with start + o·stride ≤ size − 1
  if (start > size - 1) return 0;
  return Math.min(outSize, Math.floor((size - 1 - start) / stride) + 1);
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
function col2im64(
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
function gatherImages(dst: Float32Array, src: Float32Array, n0: number, nc: number, chans: number, chOff: number, r0: number, r1: number, hw: number): void {
  const ld = nc * hw;
  for (let r = r0; r < r1; r++) {
    for (let i = 0; i < nc; i++) {
      const s = ((n0 + i) * chans + chOff + r) * hw;
      dst.set(src.subarray(s, s + hw), (r - r0) * ld + i * hw);
    }
  }
}

/** Output maps smaller than this many positions are batched over images (one GEMM for several images). */
const SMALL_MAP = 64;
/** Largest im2col scratch per unit, in floats (4 MB). */
const COL_CAP = 2 ** 20;

// ---- dead kernel taps ----------------------------------------------------------------------------------------
// On maps smaller than the kernel's reach (a 3×3 pad-1 conv on a 1×1 map: only the centre tap ever meets the
// input) some taps only ever see padding. They are dropped from the GEMMs: K shrinks from C·kH·kW to C·T, with the
// weights of the live taps gathered into a shared scratch. Skipped terms are exactly the ones the naive loops skip.

/** The kernel taps ky·kW + kx that meet the input at least once, or null when all do. */
function liveTaps(p: Conv2dParams): number[] | null {
  const ys: number[] = [], xs: number[] = [];
  for (let ky = 0; ky < p.kh; ky++) {
    const start = ky * p.dilH - p.padH;
    if (Math.min(firstValid(start, p.strideH), p.oh) < endValid(start, p.strideH, p.h, p.oh)) ys.push(ky);
  }
  for (let kx = 0; kx < p.kw; kx++) {
    const start = kx * p.dilW - p.padW;
    if (Math.min(firstValid(start, p.strideW), p.ow) < endValid(start, p.strideW, p.w, p.ow)) xs.push(kx);
  }
  if (ys.length === p.kh && xs.length === p.kw) return null;
  const taps: number[] = [];
  for (const ky of ys) for (const kx of xs) taps.push(ky * p.kw + kx);
  return taps;
}

const liveBufs: Float32Array[] = [new Float32Array(0), new Float32Array(0)];

/** Shared float32 scratch `slot` of at least n elements (main thread only; handed to the task as a buffer). */
function liveScratch(slot: number, n: number): Float32Array {
  let buf = liveBufs[slot]!;
  if (buf.length < n) {
    buf = liveBufs[slot] = typeof SharedArrayBuffer === 'function' ? new Float32Array(new SharedArrayBuffer(Math.max(n, 1024) * 4)) : new Float32Array(n);
  }
  return buf.length === n ? buf : buf.subarray(0, n);
}

/** dst (rows × T) = src (rows × kH·kW) restricted to the live taps. */
function gatherTaps(dst: Float32Array, src: Float32Array, rows: number, khw: number, taps: readonly number[]): void {
  const nt = taps.length;
  for (let r = 0; r < rows; r++) for (let t = 0; t < nt; t++) dst[r * nt + t] = src[r * khw + taps[t]!]!;
}

// ---- forward -----------------------------------------------------------------------------------------------

interface ForwardTask {
  p: Conv2dParams;
  /** Fused epilogue (scale/shift/residual/relu) or null for the plain conv (bias folded into the GEMM's C). */
  ep: Epilogue | null;
  /** Images per unit (> 1 only when maps are small: then the unit's GEMM spans all its images' columns). */
  imgChunk: number;
  imgChunks: number;
  colBlock: number;
  colBlocks: number;
  rowBlock: number;
  rowBlocks: number;
  /** Live kernel taps (w is then the gathered live-tap weights), or null for all. */
  taps: number[] | null;
}

function forwardTask(p: Conv2dParams, ep: Epilogue | null, taps: number[] | null): ForwardTask {
  const ohw = p.oh * p.ow, og = p.o / p.groups;
  const K = (p.c / p.groups) * (taps ? taps.length : p.kh * p.kw);
  let imgChunk = 1, colBlocks = 1;
  if (ohw < SMALL_MAP && p.n > 1) {
    imgChunk = Math.max(1, Math.min(p.n, Math.floor(256 / ohw), Math.floor(COL_CAP / (K * ohw))));
  } else {
    // Aim at ≥ 16 units in all (load balance on a shared machine), blocks ≥ 64 columns.
    colBlocks = Math.max(1, Math.ceil((K * ohw) / COL_CAP), Math.min(Math.ceil(ohw / 64), Math.ceil(16 / p.n)));
  }
  const imgChunks = Math.ceil(p.n / imgChunk);
  const colBlock = roundUp4(Math.ceil(ohw / colBlocks));
  const cb = Math.ceil(ohw / colBlock);
  // Row blocks repeat the im2col and the packing of B: only as many as load balance needs (≥ 8 units in all).
  const rowBlocks = Math.max(1, Math.min(Math.ceil(og / 64), Math.ceil(8 / (imgChunks * cb))));
  const rowBlock = roundUp4(Math.ceil(og / rowBlocks));
  return { p, ep, imgChunk, imgChunks, colBlock, colBlocks: cb, rowBlock, rowBlocks: Math.ceil(og / rowBlock), taps };
}

/** Forward units [u0, u1): unit = ((imgChunk·colBlocks) + colBlock)·rowBlocks + rowBlock. */
function forwardUnits(
  y: Float32Array,
  x: Float32Array,
  w: Float32Array,
  bias: Float32Array | null,
  res: Float32Array | null,
  q: ForwardTask,
  u0: number,
  u1: number,
): void {
  const { p, ep, taps } = q;
  const { n, c, h, o, kh, kw, groups, oh, ow } = p;
  const cg = c / groups, og = o / groups;
  const K = cg * (taps ? taps.length : kh * kw), ohw = oh * ow, hw = h * p.w;
  const pointwise = isPointwise(p);
  const addBias = ep === null && bias !== null;
  for (let unit = u0; unit < u1; unit++) {
    const rb = unit % q.rowBlocks;
    const rest = (unit - rb) / q.rowBlocks;
    const cbi = rest % q.colBlocks;
    const n0 = ((rest - cbi) / q.colBlocks) * q.imgChunk;
    const nc = Math.min(q.imgChunk, n - n0);
    const r0 = rb * q.rowBlock, r1 = Math.min(og, r0 + q.rowBlock);
    for (let g = 0; g < groups; g++) {
      if (q.imgChunk === 1) {
        // One image, output columns [j0, j1): straight into y.
        const j0 = cbi * q.colBlock, j1 = Math.min(ohw, j0 + q.colBlock), nb = j1 - j0;
        const yOff = (n0 * o + g * og) * ohw;
        const xOff = (n0 * c + g * cg) * hw;
        // Bias goes into C first so that the GEMM's single rounding covers bias + Σ.
        if (addBias) for (let oc = r0; oc < r1; oc++) y.fill(bias[g * og + oc]!, yOff + oc * ohw + j0, yOff + oc * ohw + j1);
        if (pointwise) {
          sgemmRange(y, w, x, og, nb, K, { aOff: g * og * K, bOff: xOff + j0, ldb: hw, cOff: yOff + j0, ldc: ohw, accumulate: addBias }, r0, r1, 0, nb);
        } else {
          // B = col (K × nb), packed straight from x: no im2col copy (see packIm2col).
          const tab = tapTable(q);
          const pack: PackB = (dst, d0, jc, nc, p0, kl, nr) => packIm2col(dst, d0, x, xOff, p, tab, j0 + jc, nc, p0, kl, nr);
          sgemmRange(y, w, x, og, nb, K, { aOff: g * og * K, cOff: yOff + j0, ldc: ohw, accumulate: addBias }, r0, r1, 0, nb, pack);
        }
        if (ep !== null) epilogue(y, res, ep, g * og, yOff, ohw, r0, r1, j0, j1);
        continue;
      }
      // Small maps: nc images side by side, one GEMM into a scratch C ((r1 − r0) × nc·oHW), then scattered to y.
      const kk = nc * ohw, m = r1 - r0;
      const col = colScratch(K * kk);
      for (let i = 0; i < nc; i++) im2colRange(col, i * ohw, kk, x, ((n0 + i) * c + g * cg) * hw, 0, cg, p, 0, ohw, taps);
      const out = f32Scratch(m * kk);
      if (addBias) for (let r = 0; r < m; r++) out.fill(bias[g * og + r0 + r]!, r * kk, (r + 1) * kk);
      sgemmRange(out, w, col, m, kk, K, { aOff: (g * og + r0) * K, accumulate: addBias }, 0, m, 0, kk);
      for (let i = 0; i < nc; i++) {
        const yOff = ((n0 + i) * o + g * og) * ohw;
        for (let r = 0; r < m; r++) y.set(out.subarray(r * kk + i * ohw, r * kk + (i + 1) * ohw), yOff + (r0 + r) * ohw);
        if (ep !== null) epilogue(y, res, ep, g * og, yOff, ohw, r0, r1, 0, ohw);
      }
    }
  }
}

/** The task whose tap table `tapTab` holds (a table per call, per thread). */
let tapFor: ForwardTask | null = null;
let tapTab: Int32Array = new Int32Array(0);

/**
 * Per row k = ci·nt + t of a group's col (nt live taps, or all kH·kW): [ci·H·W + ky·dH·W + kx·dW, ky·dH, kx·dW], the
 * offset of tap t of channel ci from a window's top-left input position, and the tap's own (y, x) offset.
 */
function tapTable(q: ForwardTask): Int32Array {
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

/**
 * The GEMM's packed B panels (PackB) of col = im2col(x) for output positions [j, j + nc) and col rows [p0, p0 + kl),
 * read from x directly: the values im2colRange would copy (0 for padding), in packPanelB's layout, so the GEMM
 * gives the same bits. A panel of nr positions in one output row whose windows all lie inside x reads nr values per
 * row through the tap table, unchecked; others check each position. (Measured: one pass instead of im2col's copy
 * and the packing's second pass over it.)
 */
function packIm2col(
  dst: Float32Array | Float64Array, d0: number, x: Float32Array, xOff: number, p: Conv2dParams, tab: Int32Array, j: number, nc: number, p0: number, kl: number, nr: number,
): void {
  const { h, w, ow, strideH: sh, strideW: sw, padH: ph, padW: pw } = p;
  const ySpan = (p.kh - 1) * p.dilH, xSpan = (p.kw - 1) * p.dilW;
  const q1 = p0 + kl;
  let d = d0;
  for (let jr = 0; jr < nc; jr += nr, j += nr) {
    const w8 = Math.min(nr, nc - jr);
    const oy = Math.floor(j / ow), ox = j - oy * ow;
    const iy0 = oy * sh - ph, ix0 = ox * sw - pw;
    if (w8 === nr && ox + nr - 1 < ow && iy0 >= 0 && iy0 + ySpan < h && ix0 >= 0 && ix0 + (nr - 1) * sw + xSpan < w) {
      const b0 = xOff + iy0 * w + ix0, b1 = b0 + sw, b2 = b1 + sw, b3 = b2 + sw;
      if (nr === 8) {
        const b4 = b3 + sw, b5 = b4 + sw, b6 = b5 + sw, b7 = b6 + sw;
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
      const by = oyt * sh - ph, bx = oxt * sw - pw, base = xOff + by * w + bx;
      for (let q = p0; q < q1; q++, dd += nr) {
        const iy = by + tab[3 * q + 1]!, ix = bx + tab[3 * q + 2]!;
        dst[dd] = iy >= 0 && iy < h && ix >= 0 && ix < w ? x[base + tab[3 * q]!]! : 0;
      }
    }
    d += nr * kl;
  }
}

/** y = relu?(y·scale + shift + res) for channels [r0, r1) of a group (first channel ch0), columns [j0, j1). */
function epilogue(y: Float32Array, res: Float32Array | null, ep: Epilogue, ch0: number, yOff: number, ohw: number, r0: number, r1: number, j0: number, j1: number): void {
  // ReLU after the rounding, on the stored bits (branch-free): relu(round(v)) and round(relu(v)) are the same bits.
  const yb = ep.relu ? float32Bits(y) : null;
  for (let oc = r0; oc < r1; oc++) {
    const ch = ch0 + oc;
    const scale = ep.scale ? ep.scale[ch]! : 1, shift = ep.shift ? ep.shift[ch]! : 0;
    const base = yOff + oc * ohw;
    if (res !== null) for (let j = base + j0; j < base + j1; j++) y[j] = y[j]! * scale + shift + res[j]!;
    else for (let j = base + j0; j < base + j1; j++) y[j] = y[j]! * scale + shift;
    if (yb !== null) reluBits(yb, yb, base + j0, base + j1);
  }
}

registerTask<ForwardTask>('conv2d.forward', (bufs, q, u0, u1) => {
  forwardUnits(
    bufs.y as Float32Array, bufs.x as Float32Array, bufs.w as Float32Array, bufs.bias as Float32Array | null,
    bufs.res as Float32Array | null, q, u0, u1,
  );
});

/** y: (N, O, oH, oW), overwritten. x: (N, C, H, W) · w: (O, C/groups, kH, kW) · bias: (O) or null. */
export function conv2dForward(
  y: Float32Array,
  x: Float32Array,
  w: Float32Array,
  bias: Float32Array | null,
  p: Conv2dParams,
): void {
  const wp = forwardWinograd(p, x);
  if (wp !== null && winogradConv(y, x, w, null, wp, bias ? { scale: null, shift: Float64Array.from(bias), relu: false } : NO_EPILOGUE)) return;
  runForward(y, x, w, bias, null, p, null);
}

/**
 * Forward with an epilogue, for inference fusion: y = relu?(conv(x, w)·scale[o] + shift[o] + res), each output
 * rounded to float32 once on the Winograd path (twice on the im2col path: the GEMM result, then the epilogue).
 * res: (N, O, oH, oW) or null. No bias argument: fold it into shift.
 */
export function conv2dForwardFused(
  y: Float32Array,
  x: Float32Array,
  w: Float32Array,
  res: Float32Array | null,
  p: Conv2dParams,
  ep: Epilogue,
): void {
  const wp = forwardWinograd(p, x);
  if (wp !== null && winogradConv(y, x, w, res, wp, ep)) return;
  runForward(y, x, w, null, res, p, ep);
}

function runForward(
  y: Float32Array,
  x: Float32Array,
  w: Float32Array,
  bias: Float32Array | null,
  res: Float32Array | null,
  p: Conv2dParams,
  ep: Epilogue | null,
): void {
  const taps = liveTaps(p);
  const khw = p.kh * p.kw, rows = p.o * (p.c / p.groups);
  let wl = w;
  if (taps) gatherTaps((wl = liveScratch(0, rows * taps.length)), w, rows, khw, taps);
  const q = forwardTask(p, ep, taps);
  const cost = 2 * p.n * p.o * (p.c / p.groups) * (taps ? taps.length : khw) * p.oh * p.ow;
  const units = q.imgChunks * q.colBlocks * q.rowBlocks;
  parallelFor({ kernel: 'conv2d.forward', bufs: { y, x, w: wl, bias, res }, writes: ['y'], overwrites: y.length === p.n * p.o * p.oh * p.ow ? ['y'] : [], params: q, units, cost });
}

// ---- backward input --------------------------------------------------------------------------------------------

interface BackwardInputTask {
  p: Conv2dParams;
  /** Images per unit (> 1 only for small maps, im2col path). */
  imgChunk: number;
  imgChunks: number;
  /** Input channels per unit (within a group), and blocks per group. */
  chBlock: number;
  chBlocks: number;
  /** Pointwise only: output columns per unit, and blocks. */
  colBlock: number;
  colBlocks: number;
  /** Live kernel taps (w is then the gathered live-tap weights), or null for all. */
  taps: number[] | null;
}

/** Fewest dcol rows (channels × live taps) per backward-input unit, where the channels allow. */
const MIN_DCOL_ROWS = 16;

function backwardInputTask(p: Conv2dParams, taps: number[] | null): BackwardInputTask {
  const cg = p.c / p.groups, og = p.o / p.groups, ohw = p.oh * p.ow, khw = taps ? taps.length : p.kh * p.kw;
  if (isPointwise(p)) {
    // dx_g (cg × HW) += w_gᵀ · dy_g per image: split dx's rows and columns like a GEMM.
    const perGroup = Math.max(1, Math.ceil(16 / (p.n * p.groups)));
    const colBlocks = Math.max(1, Math.min(Math.ceil(ohw / 64), perGroup));
    const colBlock = roundUp4(Math.ceil(ohw / colBlocks));
    const cb = Math.ceil(ohw / colBlock);
    const chBlocks = Math.max(1, Math.min(Math.ceil(cg / 32), Math.ceil(perGroup / cb)));
    const chBlock = roundUp4(Math.ceil(cg / chBlocks));
    return { p, imgChunk: 1, imgChunks: p.n, chBlock, chBlocks: Math.ceil(cg / chBlock), colBlock, colBlocks: cb, taps };
  }
  const imgChunk = ohw < SMALL_MAP && p.n > 1 ? Math.max(1, Math.min(p.n, Math.floor(256 / ohw), Math.floor(COL_CAP / (og * ohw)))) : 1;
  const imgChunks = Math.ceil(p.n / imgChunk);
  const kk = imgChunk * ohw;
  // dcol for a block of channels is chBlock·kH·kW × kk float64s: keep it under ~2 MB.
  const memCap = Math.max(1, Math.floor(2 ** 18 / (khw * kk)));
  const perGroup = Math.max(1, Math.ceil(16 / (imgChunks * p.groups)));
  // Every unit packs all of dy_g (the GEMM's B) for its dcol rows (chBlock·kH·kW of them): at least MIN_DCOL_ROWS
  // rows, so that the packing stays small next to the multiply-adds (a 1×1/2 conv's 4-channel units spent more
  // time packing dy than multiplying).
  const chBlock = Math.max(1, Math.min(cg, memCap, Math.max(Math.ceil(cg / perGroup), Math.ceil(MIN_DCOL_ROWS / khw))));
  return { p, imgChunk, imgChunks, chBlock, chBlocks: Math.ceil(cg / chBlock), colBlock: ohw, colBlocks: 1, taps };
}

/** Backward-input units: unit = (((imgChunk·groups + g)·chBlocks + chBlock)·colBlocks + colBlock. */
function backwardInputUnits(dx: Float32Array, dy: Float32Array, w: Float32Array, q: BackwardInputTask, u0: number, u1: number): void {
  const { p, taps } = q;
  const { n, c, h, o, kh, kw, groups, oh, ow } = p;
  const cg = c / groups, og = o / groups;
  const khw = taps ? taps.length : kh * kw, K = cg * khw, ohw = oh * ow, hw = h * p.w;
  const pointwise = isPointwise(p);
  for (let unit = u0; unit < u1; unit++) {
    const cbi = unit % q.colBlocks;
    let rest = (unit - cbi) / q.colBlocks;
    const chi = rest % q.chBlocks;
    rest = (rest - chi) / q.chBlocks;
    const g = rest % groups;
    const n0 = ((rest - g) / groups) * q.imgChunk;
    const nc = Math.min(q.imgChunk, n - n0);
    const c0 = chi * q.chBlock, c1 = Math.min(cg, c0 + q.chBlock);
    if (pointwise) {
      // w_g is stored (og × cg); op(A) = w_gᵀ (cg × og). One rounding per dx entry: dx + Σ_o.
      const dyOff = (n0 * o + g * og) * ohw, dxOff = (n0 * c + g * cg) * hw;
      const j0 = cbi * q.colBlock, j1 = Math.min(ohw, j0 + q.colBlock);
      sgemmRange(dx, w, dy, cg, ohw, og, { transA: true, aOff: g * og * K, bOff: dyOff, cOff: dxOff, accumulate: true }, c0, c1, j0, j1);
      continue;
    }
    // dcol rows [c0·khw, c1·khw) = w_gᵀ · [dy_g of the nc images side by side], in float64; then per image,
    // col2im into a float64 block of dx, added to dx once.
    const kk = nc * ohw;
    let b = dy, bOff = (n0 * o + g * og) * ohw;
    if (nc > 1) {
      b = f32Scratch(og * kk);
      gatherImages(b, dy, n0, nc, o, g * og, 0, og, ohw);
      bOff = 0;
    }
    const rows = (c1 - c0) * khw;
    const dcol = f64Scratch(0, rows * kk);
    dgemmAccRange(dcol, w, b, K, kk, og, { transA: true, aOff: g * og * K, bOff, ldb: kk, cOff: -c0 * khw * kk }, c0 * khw, c1 * khw, 0, kk);
    for (let i = 0; i < nc; i++) {
      const acc = f64Scratch(1, (c1 - c0) * hw);
      col2im64(acc, dcol, i * ohw, kk, c1 - c0, p, taps);
      const base = ((n0 + i) * c + g * cg + c0) * hw;
      for (let t = 0; t < (c1 - c0) * hw; t++) dx[base + t] = dx[base + t]! + acc[t]!;
    }
  }
}

registerTask<BackwardInputTask>('conv2d.backwardInput', (bufs, q, u0, u1) => {
  backwardInputUnits(bufs.dx as Float32Array, bufs.dy as Float32Array, bufs.w as Float32Array, q, u0, u1);
});

/** dx: (N, C, H, W) += ∂L/∂x, given dy: (N, O, oH, oW) and w: (O, C/groups, kH, kW). Caller zeroes dx. */
export function conv2dBackwardInput(dx: Float32Array, dy: Float32Array, w: Float32Array, p: Conv2dParams): void {
  const wp = backwardInputWinograd(p, dy, w);
  if (wp !== null) {
    winogradConv(dx, dy, w, null, wp);
    return;
  }
  const taps = liveTaps(p);
  const khw = p.kh * p.kw, rows = p.o * (p.c / p.groups);
  let wl = w;
  if (taps) gatherTaps((wl = liveScratch(0, rows * taps.length)), w, rows, khw, taps);
  const q = backwardInputTask(p, taps);
  const cost = 2 * p.n * p.o * (p.c / p.groups) * (taps ? taps.length : khw) * p.oh * p.ow;
  const units = q.imgChunks * p.groups * q.chBlocks * q.colBlocks;
  parallelFor({ kernel: 'conv2d.backwardInput', bufs: { dx, dy, w: wl }, writes: ['dx'], params: q, units, cost });
}

// ---- backward weight -------------------------------------------------------------------------------------------

interface BackwardWeightTask {
  p: Conv2dParams;
  /** Input channels per unit (within a group) and blocks per group; output channels likewise. */
  chBlock: number;
  chBlocks: number;
  rowBlock: number;
  rowBlocks: number;
  /** Images per GEMM (consecutive images side by side along k): a function of the shape only. */
  imgChunk: number;
  /**
   * Images per split, and splits: 1 split (all images, n) unless the channel blocks alone give too few units; then
   * each split sums its images into its own float64 partial dw, and the partials are added in split order.
   */
  splitImages: number;
  splits: number;
  /** Live kernel taps (dw is then the gathered live-tap gradient), or null for all. */
  taps: number[] | null;
}

/** Units below which a weight gradient is split over images too (a function of the shape only, not of threads). */
const MIN_WEIGHT_UNITS = 4;
/** Splits at most, and the largest partial-sum buffer (doubles) a split may take. */
const MAX_SPLITS = 8;
const MAX_PARTIAL = 2 ** 20;

function backwardWeightTask(p: Conv2dParams, taps: number[] | null): BackwardWeightTask {
  const cg = p.c / p.groups, og = p.o / p.groups, ohw = p.oh * p.ow, khw = taps ? taps.length : p.kh * p.kw;
  // Column block: ≥ 64 columns of dw (K entries) when possible, im2col scratch ≤ COL_CAP floats per image chunk.
  const memCap = Math.max(1, Math.floor(COL_CAP / (khw * ohw)));
  const want = Math.max(1, Math.ceil(16 / p.groups));
  const chBlock = Math.max(1, Math.min(cg, memCap, Math.max(Math.ceil(64 / khw), Math.ceil(cg / want))));
  const chBlocks = Math.ceil(cg / chBlock);
  const rowBlocks = Math.max(1, Math.min(Math.ceil(og / 32), Math.ceil(want / chBlocks)));
  const rowBlock = roundUp4(Math.ceil(og / rowBlocks));
  const rb = Math.ceil(og / rowBlock);
  // Few units (CIFAR's 3→16 stem: 1; its 16→16 convs: 2) and enough work to share: split the images as well.
  const base = p.groups * chBlocks * rb, dwLen = p.o * cg * khw;
  let splits = 1;
  if (base < MIN_WEIGHT_UNITS && p.n > 1 && 2 * p.n * p.o * cg * khw * ohw >= 2 ** 22) {
    splits = Math.min(p.n, Math.ceil(MIN_WEIGHT_UNITS / base) * 2, MAX_SPLITS, Math.floor(MAX_PARTIAL / dwLen));
  }
  const splitImages = Math.ceil(p.n / Math.max(1, splits));
  splits = Math.ceil(p.n / splitImages);
  const imgChunk = Math.max(1, Math.min(splitImages, Math.floor(COL_CAP / (chBlock * khw * ohw))));
  return { p, chBlock, chBlocks, rowBlock, rowBlocks: rb, imgChunk, splitImages, splits, taps };
}

/**
 * Backward-weight units: unit = ((split·groups + g)·chBlocks + chBlock)·rowBlocks + rowBlock. With one split, every
 * image is summed inside the unit, images ascending then positions ascending, in one float64 running sum per dw
 * entry (the naive order, so the same bits as the naive loop). With several, unit (split s, …) sums the images of
 * split s that way into part[s·|dw| …] (float64, zeroed by the caller), and the caller adds the partials.
 */
function backwardWeightUnits(
  dw: Float32Array | null, dy: Float32Array, x: Float32Array, part: Float64Array | null, q: BackwardWeightTask, u0: number, u1: number,
): void {
  const { p, taps } = q;
  const { n, c, o, kh, kw, groups } = p;
  const cg = c / groups, og = o / groups;
  const khw = taps ? taps.length : kh * kw, K = cg * khw;
  for (let unit = u0; unit < u1; unit++) {
    const rb = unit % q.rowBlocks;
    const rest = (unit - rb) / q.rowBlocks;
    const chi = rest % q.chBlocks;
    const rest2 = (rest - chi) / q.chBlocks;
    const g = rest2 % groups, split = (rest2 - g) / groups;
    const c0 = chi * q.chBlock, c1 = Math.min(cg, c0 + q.chBlock);
    const r0 = rb * q.rowBlock, r1 = Math.min(og, r0 + q.rowBlock), m = r1 - r0;
    const kb = (c1 - c0) * khw;
    const nBegin = split * q.splitImages, nEnd = Math.min(n, nBegin + q.splitImages);
    if (part !== null) {
      // This split's partial sums, straight into its slice of part (rows of K entries, like dw).
      const at = split * o * K + (g * og + r0) * K + c0 * khw;
      for (let n0 = nBegin; n0 < nEnd; n0 += q.imgChunk) {
        const nc = Math.min(q.imgChunk, nEnd - n0);
        const { a, aOff, lda, b, bOff, ldb, kk } = weightGradOperands(dy, x, p, g, c0, c1, r0, r1, n0, nc, taps);
        dgemmAccRange(part, a, b, m, kb, kk, { transB: true, aOff, lda, bOff, ldb, cOff: at, ldc: K }, 0, m, 0, kb);
      }
      continue;
    }
    // One chunk: one GEMM straight into dw (dw + Σ, one rounding). Several: acc (m × kb) carries the float64 sums
    // from chunk to chunk, added to dw at the end. Same bits either way. (Without splits, dw is given.)
    const out = dw!;
    const direct = q.imgChunk >= n;
    const acc = direct ? null : f64Scratch(0, m * kb);
    for (let n0 = 0; n0 < n; n0 += q.imgChunk) {
      const nc = Math.min(q.imgChunk, n - n0);
      const { a, aOff, lda, b, bOff, ldb, kk } = weightGradOperands(dy, x, p, g, c0, c1, r0, r1, n0, nc, taps);
      if (acc === null) {
        sgemmRange(out, a, b, m, kb, kk, { transB: true, aOff, lda, bOff, ldb, cOff: (g * og + r0) * K + c0 * khw, ldc: K, accumulate: true }, 0, m, 0, kb);
        continue;
      }
      dgemmAccRange(acc, a, b, m, kb, kk, { transB: true, aOff, lda, bOff, ldb, ldc: kb }, 0, m, 0, kb);
    }
    if (acc === null) continue;
    for (let r = r0; r < r1; r++) {
      const dst = (g * og + r) * K + c0 * khw;
      const src = (r - r0) * kb;
      for (let j = 0; j < kb; j++) out[dst + j] = out[dst + j]! + acc[src + j]!;
    }
  }
}

/**
 * The GEMM operands of a weight-gradient chunk (images [n0, n0 + nc), group g, input channels [c0, c1), output
 * channels [r0, r1)): A = those dy rows of the nc images side by side (m × kk), B with op(B) = colᵀ (col: kb × kk).
 */
function weightGradOperands(
  dy: Float32Array, x: Float32Array, p: Conv2dParams, g: number, c0: number, c1: number, r0: number, r1: number,
  n0: number, nc: number, taps: number[] | null,
): { a: Float32Array; aOff: number; lda: number; b: Float32Array; bOff: number; ldb: number; kk: number } {
  const { c, o, groups } = p;
  const cg = c / groups, og = o / groups, m = r1 - r0, ohw = p.oh * p.ow, hw = p.h * p.w, kk = nc * ohw;
  const kb = (c1 - c0) * (taps ? taps.length : p.kh * p.kw);
  // A = dy_g rows [r0, r1) of the nc images side by side (m × kk).
  let a = dy, aOff = (n0 * o + g * og + r0) * ohw, lda = ohw;
  if (nc > 1) {
    a = f32Scratch(m * kk);
    gatherImages(a, dy, n0, nc, o, g * og, r0, r1, ohw);
    aOff = 0;
    lda = kk;
  }
  // B = colᵀ, col (kb × kk) stored row-major, so op(B) = colᵀ with ldb = kk.
  let b = x, bOff = (n0 * c + g * cg + c0) * hw, ldb = hw;
  if (!isPointwise(p) || nc > 1) {
    b = colScratch(kb * kk);
    for (let i = 0; i < nc; i++) im2colRange(b, i * ohw, kk, x, ((n0 + i) * c + g * cg) * hw, c0, c1, p, 0, ohw, taps);
    bOff = 0;
    ldb = kk;
  }
  return { a, aOff, lda, b, bOff, ldb, kk };
}

registerTask<BackwardWeightTask>('conv2d.backwardWeight', (bufs, q, u0, u1) => {
  backwardWeightUnits(bufs.dw as Float32Array | null, bufs.dy as Float32Array, bufs.x as Float32Array, bufs.part as Float64Array | null, q, u0, u1);
});

let partBuf: Float64Array = new Float64Array(0);

/**
 * The weight gradient's units into dw (which they accumulate onto), split over images where the task says so:
 * the splits' partial sums are then added in split order, and dw + that sum is rounded once.
 */
function runBackwardWeight(dw: Float32Array, dy: Float32Array, x: Float32Array, q: BackwardWeightTask, cost: number): void {
  const units = q.splits * q.p.groups * q.chBlocks * q.rowBlocks;
  if (q.splits === 1) {
    parallelFor({ kernel: 'conv2d.backwardWeight', bufs: { dw, dy, x, part: null }, writes: ['dw'], params: q, units, cost });
    return;
  }
  const len = dw.length, need = q.splits * len;
  if (partBuf.length < need) partBuf = sharedFloat64(scratchLength(need));
  const part = partBuf;
  part.fill(0, 0, need);
  // dw is not read by split units (no staging copy of it): only the partials are written.
  parallelFor({ kernel: 'conv2d.backwardWeight', bufs: { dw: null, dy, x, part }, writes: ['part'], params: q, units, cost });
  for (let i = 0; i < len; i++) {
    let sum = part[i]!;
    for (let sp = 1; sp < q.splits; sp++) sum += part[sp * len + i]!;
    dw[i] = dw[i]! + sum;
  }
}

/** dw: (O, C/groups, kH, kW) += ∂L/∂w, given dy: (N, O, oH, oW) and x: (N, C, H, W). Caller zeroes dw. */
export function conv2dBackwardWeight(dw: Float32Array, dy: Float32Array, x: Float32Array, p: Conv2dParams): void {
  const taps = liveTaps(p);
  const khw = p.kh * p.kw, rows = p.o * (p.c / p.groups);
  const q = backwardWeightTask(p, taps);
  const cost = 2 * p.n * p.o * (p.c / p.groups) * (taps ? taps.length : khw) * p.oh * p.ow;
  if (taps === null) {
    runBackwardWeight(dw, dy, x, q, cost);
    return;
  }
  // Live taps: accumulate onto a gathered copy of their dw entries, scatter back; dead taps get dw + 0 (what the
  // naive loop does with its empty sum).
  const nt = taps.length;
  const dwl = liveScratch(1, rows * nt);
  gatherTaps(dwl, dw, rows, khw, taps);
  runBackwardWeight(dwl, dy, x, q, cost);
  for (let r = 0; r < rows; r++) {
    for (let t = 0; t < khw; t++) dw[r * khw + t] = dw[r * khw + t]! + 0;
    for (let t = 0; t < nt; t++) dw[r * khw + taps[t]!] = dwl[r * nt + t]!;
  }
}

/** db: (O) += Σ over (N, oH, oW) of dy (float64 sum per channel, one rounding). Caller zeroes db. */
export function conv2dBackwardBias(db: Float32Array, dy: Float32Array, p: Conv2dParams): void {
  const { n, o, oh, ow } = p;
  const ohw = oh * ow;
  for (let oc = 0; oc < o; oc++) {
    let s = 0;
    for (let ni = 0; ni < n; ni++) {
      const off = (ni * o + oc) * ohw;
      for (let j = 0; j < ohw; j++) s += dy[off + j]!;
    }
    db[oc] = db[oc]! + s;
  }
}

// ---- naive references (direct loops, float64 accumulators) ------------------------------------------------

/** Reference forward: direct 7-loop convolution; each output is bias + Σ over (ci, ky, kx) ascending, in float64. */
export function conv2dForwardNaive(
  y: Float32Array,
  x: Float32Array,
  w: Float32Array,
  bias: Float32Array | null,
  p: Conv2dParams,
): void {
  const { n, c, h, o, kh, kw, strideH, strideW, padH, padW, dilH, dilW, groups, oh, ow } = p;
  const W = p.w;
  const cg = c / groups, og = o / groups;
  for (let ni = 0; ni < n; ni++) {
    for (let oc = 0; oc < o; oc++) {
      const g = Math.floor(oc / og);
      for (let oy = 0; oy < oh; oy++) {
        for (let ox = 0; ox < ow; ox++) {
          let s = 0;
          for (let ci = 0; ci < cg; ci++) {
            for (let ky = 0; ky < kh; ky++) {
              const iy = oy * strideH - padH + ky * dilH;
              if (iy < 0 || iy >= h) continue;
              for (let kx = 0; kx < kw; kx++) {
                const ix = ox * strideW - padW + kx * dilW;
                if (ix < 0 || ix >= W) continue;
                s += x[((ni * c + g * cg + ci) * h + iy) * W + ix]! * w[((oc * cg + ci) * kh + ky) * kw + kx]!;
              }
            }
          }
          y[((ni * o + oc) * oh + oy) * ow + ox] = bias ? bias[oc]! + s : s;
        }
      }
    }
  }
}

/** Reference backward input: scatter dy·w into a float64 copy of dx, then add it to dx once. */
export function conv2dBackwardInputNaive(dx: Float32Array, dy: Float32Array, w: Float32Array, p: Conv2dParams): void {
  const { n, c, h, o, kh, kw, strideH, strideW, padH, padW, dilH, dilW, groups, oh, ow } = p;
  const W = p.w;
  const cg = c / groups, og = o / groups;
  const acc = new Float64Array(n * c * h * W);
  for (let ni = 0; ni < n; ni++) {
    for (let oc = 0; oc < o; oc++) {
      const g = Math.floor(oc / og);
      for (let oy = 0; oy < oh; oy++) {
        for (let ox = 0; ox < ow; ox++) {
          const d = dy[((ni * o + oc) * oh + oy) * ow + ox]!;
          for (let ci = 0; ci < cg; ci++) {
            for (let ky = 0; ky < kh; ky++) {
              const iy = oy * strideH - padH + ky * dilH;
              if (iy < 0 || iy >= h) continue;
              for (let kx = 0; kx < kw; kx++) {
                const ix = ox * strideW - padW + kx * dilW;
                if (ix < 0 || ix >= W) continue;
                acc[((ni * c + g * cg + ci) * h + iy) * W + ix]! += d * w[((oc * cg + ci) * kh + ky) * kw + kx]!;
              }
            }
          }
        }
      }
    }
  }
  for (let i = 0; i < acc.length; i++) dx[i] = dx[i]! + acc[i]!;
}

/** Reference backward weight: each dw entry += Σ over (n, oy, ox) of dy·x, in float64. */
export function conv2dBackwardWeightNaive(dw: Float32Array, dy: Float32Array, x: Float32Array, p: Conv2dParams): void {
  const { n, c, h, o, kh, kw, strideH, strideW, padH, padW, dilH, dilW, groups, oh, ow } = p;
  const W = p.w;
  const cg = c / groups, og = o / groups;
  for (let oc = 0; oc < o; oc++) {
    const g = Math.floor(oc / og);
    for (let ci = 0; ci < cg; ci++) {
      for (let ky = 0; ky < kh; ky++) {
        for (let kx = 0; kx < kw; kx++) {
          let s = 0;
          for (let ni = 0; ni < n; ni++) {
            for (let oy = 0; oy < oh; oy++) {
              const iy = oy * strideH - padH + ky * dilH;
              if (iy < 0 || iy >= h) continue;
              for (let ox = 0; ox < ow; ox++) {
                const ix = ox * strideW - padW + kx * dilW;
                if (ix < 0 || ix >= W) continue;
                s += dy[((ni * o + oc) * oh + oy) * ow + ox]! * x[((ni * c + g * cg + ci) * h + iy) * W + ix]!;
              }
            }
          }
          const wi = ((oc * cg + ci) * kh + ky) * kw + kx;
          dw[wi] = dw[wi]! + s;
        }
      }
    }
  }
}
