// Planning a convolution: its parameters, which path runs it (Winograd or im2col + GEMM), the dead kernel taps,
// and how each direction's work is cut into units for the threads (a function of the shape only).

import { config, setConfig, type WinogradPolicy } from '../../config.js';
import { takeFinite } from '../finite.js';
import { kernelBackend } from '../wasm/features.js';
import { winogradCost, type Epilogue, type WinogradParams } from '../winograd.js';

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

export type { WinogradPolicy } from '../../config.js';

/** Sets config.winograd (for tests and benchmarks; withConfig scopes it); returns the previous policy. */
export function setWinogradPolicy(policy: WinogradPolicy): WinogradPolicy {
  return setConfig({ winograd: policy }).winograd!;
}

/** Multiply-adds per channel pair of the im2col path (forward or input gradient): live taps × N × oH·oW. */
export function directMacs(p: Conv2dParams): number {
  const taps = liveTaps(p);
  return (taps ? taps.length : p.kh * p.kw) * p.n * p.oh * p.ow;
}

/** Fitted prices (ns) of the SIMD im2col + GEMM path's parts, for one direction (see im2colCost). */
interface Im2colPrices {
  /** Per multiply-add. */
  mac: number;
  /**
   * Forward: per im2col element packed (each row block packs its own). Input gradient: per dcol element (the float64
   * GEMM result, its col2im and the dx update).
   */
  col: number;
  /** Forward: per output element. */
  out: number;
  /** Per weight element packed as the GEMM's A (once per unit's images). */
  weights: number;
  /** Input gradient: per dy element packed as the GEMM's B (once per channel block). */
  dy: number;
  /**
   * Forward on small maps (images side by side in one GEMM): extra per multiply-add, per im2col element instead of
   * `col` (the plain-JS im2col), and per row of y copied out of the batched result.
   */
  smallMac: number;
  smallCol: number;
  smallCopy: number;
}

/** The SIMD backend's prices, fitted with winogradCost's (see there). */
const SIMD_IM2COL: Record<'forward' | 'forward32' | 'input', Im2colPrices> = {
  forward: { mac: 0.0455, col: 0.48, out: 0, weights: 0.966, dy: 0, smallMac: 0.0368, smallCol: 2.82, smallCopy: 290 },
  forward32: { mac: 0.0476, col: 0.461, out: 1.47, weights: 0.906, dy: 0, smallMac: 0.0114, smallCol: 3.96, smallCopy: 450 },
  input: { mac: 0.0482, col: 8.16, out: 0, weights: 2.14, dy: 1.60, smallMac: 0, smallCol: 0, smallCopy: 0 },
};

/**
 * Estimated CPU time (ns, one core) of the im2col + GEMM path for the forward (float32: the fused forward, the
 * Winograd side then being float32 too) or the input gradient of p, from the units forwardTask / backwardInputTask
 * cut: the multiply-adds, the im2col packing (once per row block), the weights packed per unit, and for the input
 * gradient the float64 dcol with its col2im (at 8 channels ~0.7 ns per multiply-add in all, 10× the forward GEMM's)
 * and dy packed per channel block. The js backend: 0.5 ns per multiply-add, im2col included.
 */
export function im2colCost(p: Conv2dParams, dir: 'forward' | 'input', float32 = false): number {
  const taps = liveTaps(p), khw = taps ? taps.length : p.kh * p.kw;
  const cg = p.c / p.groups, macs = directMacs(p) * cg * p.o;
  if (kernelBackend() !== 'simd') return 0.5 * macs;
  const cols = p.c * khw * p.n * p.oh * p.ow;
  if (dir === 'input') {
    const q = backwardInputTask(p, taps), c = SIMD_IM2COL.input;
    return c.mac * macs + c.col * cols + c.dy * p.o * p.n * p.oh * p.ow * q.chBlocks + c.weights * cg * p.o * khw * q.imgChunks;
  }
  const q = forwardTask(p, null, taps), c = SIMD_IM2COL[float32 ? 'forward32' : 'forward'];
  const perUnit = c.weights * cg * p.o * khw * q.imgChunks * q.colBlocks + c.out * p.o * p.n * p.oh * p.ow;
  if (p.oh * p.ow < SMALL_MAP && p.n > 1) return (c.mac + c.smallMac) * macs + c.smallCol * cols * q.rowBlocks + c.smallCopy * p.n * p.o + perUnit;
  return c.mac * macs + c.col * cols * q.rowBlocks + perUnit;
}

/** 3×3, stride 1, dilation 1, one group: the shapes F(4×4, 3×3) computes. */
export function winogradShape(p: Conv2dParams): boolean {
  return p.kh === 3 && p.kw === 3 && p.strideH === 1 && p.strideW === 1 && p.dilH === 1 && p.dilW === 1 && p.groups === 1;
}

/**
 * True when every value is finite. Winograd's transforms mix a whole 6×6 patch, so one NaN or ±Inf would spread
 * over whole tiles (and Inf − Inf makes NaN where the direct conv gives ±Inf): such inputs take the im2col path,
 * keeping the direct convolution's NaN/Inf pattern. One multiply-add per element, small next to the conv.
 */
export function allFinite(a: Float32Array): boolean {
  if (takeFinite(a)) return true; // the kernel that wrote a checked it (kernels/finite.ts)
  return scanFinite(a);
}

// The scan, in a function of its own that runs once to completion when this module loads (below), so that every
// operation in it has type feedback before V8 compiles its loop mid-call (on-stack replacement). Without that, the
// compiled loop lacked the feedback for the compares after it and was dropped there, on every call, and the next
// call ran the loop unoptimized until it was compiled again (a CIFAR ResNet-20 training step, one thread: 11 scans of
// 2k–37k weights, one deoptimization each; `node --trace-deopt`).
function scanFinite(a: Float32Array): boolean {
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
scanFinite(new Float32Array(5));

// The forward checks x only: winogradConv reports non-finite weights itself (its weight transform reads them all),
// and the forward then runs again on the im2col path (y is overwritten, so nothing is lost). That saves a serial
// pass over w on every call (1.1 ms for a 512→512 3×3 weight, a tenth of the conv at batch 1). The fused kernel
// (winograd-fused.ts) checks x too, in its threads (a serial pass over x: 0.19 ms of 16→16 @32 batch 32), and so
// do the SIMD float64 and float32 forwards (their `pad` sums v − v over the values it copies; winogradConv then
// returns false). That saves a serial pass over x where it was not noted finite: 7–10 µs of 3×3 512→512 @7's
// 3.3 ms on one core.
export function forwardWinograd(p: Conv2dParams, x: Float32Array, float32 = false): WinogradParams | null {
  if (config.winograd === 'never' || !winogradShape(p)) return null;
  const q: WinogradParams = {
    n: p.n, ci: p.c, hi: p.h, wi: p.w, co: p.o, ho: p.oh, wo: p.ow, padH: p.padH, padW: p.padW, flip: false, accumulate: false, float32,
  };
  const xChecked = kernelBackend() === 'simd';
  return (config.winograd === 'always' || winogradCost(q) < im2colCost(p, 'forward', float32)) && (xChecked || allFinite(x)) ? q : null;
}

// dx = full correlation of dy with the rotated, transposed weights: padding 2 − p, so p ≤ 2 only. A caller that
// overwrites dx on the SIMD backend leaves the checks of dy and w to winogradConv (its pad and weight transform see
// every value; it then returns false and the caller computes dx another way): no serial passes over dy and w.
export function backwardInputWinograd(p: Conv2dParams, dy: Float32Array, w: Float32Array, overwrite = false): WinogradParams | null {
  if (config.winograd === 'never' || !winogradShape(p) || p.padH > 2 || p.padW > 2) return null;
  const q: WinogradParams = {
    n: p.n, ci: p.o, hi: p.oh, wi: p.ow, co: p.c, ho: p.h, wo: p.w, padH: 2 - p.padH, padW: 2 - p.padW, flip: true, accumulate: true,
  };
  const checked = overwrite && kernelBackend() === 'simd';
  return (config.winograd === 'always' || winogradCost(q) < im2colCost(p, 'input')) && (checked || (allFinite(dy) && allFinite(w))) ? q : null;
}

/** True when the convolution is a plain matrix product over channels (1×1 kernel, stride 1, no padding). */
export function isPointwise(p: Conv2dParams): boolean {
  return p.kh === 1 && p.kw === 1 && p.strideH === 1 && p.strideW === 1 && p.padH === 0 && p.padW === 0;
}

/** A 1×1 convolution without padding (any stride) on the SIMD backend: its forward runs in conv2d/inplace.ts. */
export function pointwiseSimd(p: Conv2dParams): boolean {
  return p.kh === 1 && p.kw === 1 && p.padH === 0 && p.padW === 0 && kernelBackend() === 'simd';
}

export const roundUp4 = (v: number): number => Math.ceil(v / 4) * 4;

// For one kernel column kx, the output columns [ox0, ox1) whose input column ix = start + ox·stride
// (start = kx·dW − pW) lies in [0, W): ox0 = firstValid(start, stride), ox1 = endValid(start, stride, W, oW).
export function firstValid(start: number, stride: number): number {
  // smallest o ≥ 0 with start + o·stride ≥ 0
  return start >= 0 ? 0 : Math.floor((-start + stride - 1) / stride);
}
export function endValid(start: number, stride: number, size: number, outSize: number): number {
  // one past the largest o < outSize with start + o·stride ≤ size − 1
  if (start > size - 1) return 0;
  return Math.min(outSize, Math.floor((size - 1 - start) / stride) + 1);
}

/** Output maps smaller than this many positions are batched over images (one GEMM for several images). */
export const SMALL_MAP = 64;
/** Largest im2col scratch per unit, in floats (4 MB). */
export const COL_CAP = 2 ** 20;

// ---- dead kernel taps ----------------------------------------------------------------------------------------
// On maps smaller than the kernel's reach (a 3×3 pad-1 conv on a 1×1 map: only the centre tap ever meets the
// input) some taps only ever see padding. They are dropped from the GEMMs: K shrinks from C·kH·kW to C·T, with the
// weights of the live taps gathered into a shared scratch. Skipped terms are exactly the ones the naive loops skip.

/** The kernel taps ky·kW + kx that meet the input at least once, or null when all do. */
export function liveTaps(p: Conv2dParams): number[] | null {
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

// ---- units of work ----------------------------------------------------------------------------------------

export interface ForwardTask {
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

export function forwardTask(p: Conv2dParams, ep: Epilogue | null, taps: number[] | null): ForwardTask {
  const ohw = p.oh * p.ow, og = p.o / p.groups;
  const K = (p.c / p.groups) * (taps ? taps.length : p.kh * p.kw);
  let imgChunk = 1, colBlocks = 1;
  if (ohw < SMALL_MAP && p.n > 1) {
    imgChunk = Math.max(1, Math.min(p.n, Math.floor(256 / ohw), Math.floor(COL_CAP / (K * ohw))));
  } else if (pointwiseSimd(p)) {
    return pointwiseTask(p, ep);
  } else {
    // Aim at ≥ 16 units in all (load balance on a shared machine), blocks ≥ 128 columns: each stored row of a
    // block is one copy out of the wasm memory (~150 ns), so short blocks pay it often (1×1 1024→256 @14, one core,
    // 64 → 128: 3.1 → 2.7 ms).
    colBlocks = Math.max(1, Math.ceil((K * ohw) / COL_CAP), Math.min(Math.ceil(ohw / 128), Math.ceil(16 / p.n)));
    // One image on the SIMD backend: up to 8 column blocks of ≥ 64 positions, so that fewer row blocks make the 8
    // units. The pool runs units one at a time, each packing its own B (im2col's panels), so every row block of a
    // column block packs it again (2 threads, CPU, by min, both orders: 3×3/2 64→128 @56 −7/−6%, 128→128 @56 −3/−2%).
    if (p.n === 1 && kernelBackend() === 'simd') colBlocks = Math.max(colBlocks, Math.min(8, Math.floor(ohw / 64)));
  }
  const imgChunks = Math.ceil(p.n / imgChunk);
  const colBlock = roundUp4(Math.ceil(ohw / colBlocks));
  const cb = Math.ceil(ohw / colBlock);
  // Row blocks repeat the im2col and the packing of B: only as many as load balance needs (≥ 8 units in all).
  const rowBlocks = Math.max(1, Math.min(Math.ceil(og / 64), Math.ceil(8 / (imgChunks * cb))));
  const rowBlock = roundUp4(Math.ceil(og / rowBlocks));
  return { p, ep, imgChunk, imgChunks, colBlock, colBlocks: cb, rowBlock, rowBlocks: Math.ceil(og / rowBlock), taps };
}

/** Floats of the L2 cache the pointwise units size their blocks to (1 MB). */
const L2_FLOATS = 2 ** 18;

/**
 * The SIMD pointwise forward's units (conv2d/inplace.ts): ≥ 8 in all where the shape allows. Each unit copies its
 * rows of the weights into the wasm memory and its outputs back (one copy when they are whole rows of y, else one per
 * row), and x's rows (a thread copies all of an image's once when they fit in COL_CAP floats, else each unit its
 * columns, one copy per row). So where x's copy is whole, blocks of output channels (≥ 8, or ≥ 64 when x outgrows
 * L2) over whole rows come first (2 threads, CPU, vs column blocks: 64→256 @56 −8/−11%, 1×1/2 256→512 @56 −8/−9%,
 * in both orders; 8 rows × 3136 vs 64 rows × 392 for 256→64 @56, its kernel calls alone on one core: 64-row
 * blocks −5 to −7%, 512→128 @28 −5%); else
 * column blocks of ≥ 256 positions, then row blocks of ≥ 32 channels.
 */
function pointwiseTask(p: Conv2dParams, ep: Epilogue | null): ForwardTask {
  const ohw = p.oh * p.ow, og = p.o / p.groups, per = p.n * p.groups;
  let rowBlocks: number, colBlocks: number;
  if ((p.c / p.groups) * ohw <= COL_CAP) {
    // Rows of at least 8 channels, or of 64 where x (K × oHW) outgrows the L2 cache at stride 1: the kernel then
    // reads each column tile of B from further out once per 4-row tile pass over the unit's rows, so more rows per
    // unit read it fewer times.
    const minRows = p.strideH === 1 && p.strideW === 1 && (p.c / p.groups) * ohw > L2_FLOATS ? 64 : 8;
    rowBlocks = Math.max(1, Math.min(Math.ceil(og / minRows), Math.ceil(8 / per)));
    rowBlocks = Math.ceil(og / roundUp4(Math.ceil(og / rowBlocks)));
    colBlocks = Math.max(1, Math.min(Math.ceil(ohw / 256), Math.ceil(8 / (per * rowBlocks))));
  } else {
    colBlocks = Math.max(1, Math.min(Math.ceil(ohw / 256), Math.ceil(8 / p.n)));
    rowBlocks = Math.max(1, Math.min(Math.ceil(og / 32), Math.ceil(8 / (per * Math.ceil(ohw / (Math.ceil(ohw / colBlocks / 8) * 8))))));
  }
  const colBlock = Math.ceil(ohw / colBlocks / 8) * 8, rowBlock = roundUp4(Math.ceil(og / rowBlocks));
  return { p, ep, imgChunk: 1, imgChunks: p.n, colBlock, colBlocks: Math.ceil(ohw / colBlock), rowBlock, rowBlocks: Math.ceil(og / rowBlock), taps: null };
}

export interface BackwardInputTask {
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

export function backwardInputTask(p: Conv2dParams, taps: number[] | null): BackwardInputTask {
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

export interface BackwardWeightTask {
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
  /** Units run the SIMD kernel (packed dy and x rows) instead of im2col + GEMM. */
  simd: boolean;
}

/** Units below which a weight gradient is split over images too (a function of the shape only, not of threads). */
const MIN_WEIGHT_UNITS = 4;
/** Splits at most, and the largest partial-sum buffer (doubles) a split may take. */
const MAX_SPLITS = 8;
const MAX_PARTIAL = 2 ** 20;

export function backwardWeightTask(p: Conv2dParams, taps: number[] | null, simd = false): BackwardWeightTask {
  const cg = p.c / p.groups, og = p.o / p.groups, ohw = p.oh * p.ow, khw = taps ? taps.length : p.kh * p.kw;
  // Column block: ≥ 64 columns of dw (K entries) when possible, im2col scratch ≤ COL_CAP floats per image chunk.
  const memCap = Math.max(1, Math.floor(COL_CAP / (khw * ohw)));
  // Units: ≥ 16 in all for im2col + GEMM; ≥ 4 for the SIMD kernel, whose units pack all of their dy rows for every
  // channel block and their x rows for every row block (64→64 3×3 8×8 batch 32, one core, CPU time, against im2col +
  // GEMM: 0.70× with 16 units, 0.51× with 4).
  const want = Math.max(1, Math.ceil((simd ? 4 : 16) / p.groups));
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
  return { p, chBlock, chBlocks, rowBlock, rowBlocks: rb, imgChunk, splitImages, splits, taps, simd };
}

