// The SIMD backend of batchnorm.ts's training tasks: one work unit's block of channels [ch0, ch1) of every image is
// copied into this thread's wasm memory (n copies of (ch1 − ch0)·hw contiguous values), the per-channel passes run
// there (wasm/batchnorm.ts), and the outputs are copied back. The statistics and the float64 → float32 formulas are
// batchnorm.ts's; only the order of the float64 sums differs from the JavaScript kernels (fixed per channel: a
// function of n and hw, whatever the block or the thread).

import { laneTotal, simdBatchNorm } from './wasm/batchnorm.js';

/** The shape of a task and the channel block of the unit. */
export interface BnBlock {
  n: number;
  c: number;
  hw: number;
  ch0: number;
  ch1: number;
}

/** Bytes of one array's block in wasm memory, rounded up to 16. */
const regionBytes = (b: BnBlock): number => (b.n * (b.ch1 - b.ch0) * b.hw * 4 + 15) & ~15;

/** Below this many values a block row is copied by a loop (a subarray costs more than the copy). */
const SET_MIN = 64;

/**
 * Between a tensor t (N, C, HW) and the block at `at` in wasm memory m (n rows of len = (ch1 − ch0)·hw values):
 * `into` copies t's channels [ch0, ch1) of every image into the block, else the block back into t. A block of every
 * channel is one contiguous range, copied at once.
 */
function copyBlock(m: Float32Array, at: number, t: Float32Array, b: BnBlock, into: boolean): void {
  const len = (b.ch1 - b.ch0) * b.hw;
  if (len === b.c * b.hw) {
    if (into) m.set(t.length === b.n * len ? t : t.subarray(0, b.n * len), at);
    else t.set(m.subarray(at, at + b.n * len));
    return;
  }
  for (let i = 0; i < b.n; i++) {
    const to = (i * b.c + b.ch0) * b.hw, mo = at + i * len;
    const [dst, d, src, s] = into ? [m, mo, t, to] : [t, to, m, mo];
    if (len >= SET_MIN) dst.set(src.subarray(s, s + len), d);
    else for (let j = 0; j < len; j++) dst[d + j] = src[s + j]!;
  }
}

const copyIn = (m: Float32Array, at: number, t: Float32Array, b: BnBlock): void => copyBlock(m, at, t, b, true);
const copyOut = (t: Float32Array, m: Float32Array, at: number, b: BnBlock): void => copyBlock(m, at, t, b, false);

/**
 * Channel ch's statistics from its sum of values and of squared deviations over count values: stores mean, invstd
 * = 1/√(biased var + eps) and the unbiased variance, and returns the normalization as y = x·α + β' with α =
 * invstd·γ and β' = β − mean·α (float64, from the unrounded statistics), also stored at aff[2·ch], aff[2·ch + 1]
 * when aff is given. Both backends' training forward.
 */
export function channelAffine(
  ch: number, sum: number, ss: number, count: number, eps: number, weight: Float32Array | null, bias: Float32Array | null,
  mean: Float32Array, invstd: Float32Array, varUnbiased: Float32Array, aff: Float64Array | null,
): [number, number] {
  const mu = sum / count;
  const istd = 1 / Math.sqrt(ss / count + eps);
  mean[ch] = mu;
  invstd[ch] = istd;
  varUnbiased[ch] = ss / (count - 1);
  const alpha = istd * (weight ? weight[ch]! : 1), beta = (bias ? bias[ch]! : 0) - mu * alpha;
  if (aff !== null) {
    aff[2 * ch] = alpha;
    aff[2 * ch + 1] = beta;
  }
  return [alpha, beta];
}

/** Whether the 4 lanes of an affine or dx function's finiteness check at byte `at` are all +0 (see wasm/batchnorm.ts). */
const checkedFinite = (f: Float32Array, at: number): boolean =>
  f[at >> 2] === 0 && f[(at >> 2) + 1] === 0 && f[(at >> 2) + 2] === 0 && f[(at >> 2) + 3] === 0;

/**
 * batchnorm.ts's training forward over the channels of block b (see batchNormTrainForward). Returns whether every
 * value it wrote to y is finite.
 */
export function trainForwardBlock(
  y: Float32Array, mean: Float32Array, invstd: Float32Array, varUnbiased: Float32Array, x: Float32Array,
  weight: Float32Array | null, bias: Float32Array | null, res: Float32Array | null, relu: boolean, eps: number,
  aff: Float64Array | null, b: BnBlock,
): boolean {
  const { n, hw } = b;
  const rb = regionBytes(b), X = 0, R = rb, OUT = 2 * rb, FIN = OUT + 48;
  const m = simdBatchNorm(OUT + 64);
  let finite = true;
  copyIn(m.f, X >> 2, x, b);
  if (res !== null) copyIn(m.f, R >> 2, res, b);
  const stride = (b.ch1 - b.ch0) * hw * 4, count = n * hw;
  const affine = m.affine[(res !== null ? 2 : 0) + (relu ? 1 : 0)]!;
  for (let ch = b.ch0; ch < b.ch1; ch++) {
    const off = (ch - b.ch0) * hw * 4;
    m.sum(X + off, n, hw, stride, OUT);
    const sum = laneTotal(m.h, OUT >> 3);
    m.sqdev(X + off, n, hw, stride, sum / count, OUT);
    const [alpha, beta] = channelAffine(ch, sum, laneTotal(m.h, OUT >> 3), count, eps, weight, bias, mean, invstd, varUnbiased, aff);
    affine(X + off, X + off, R + off, n, hw, stride, alpha, beta, FIN);
    finite &&= checkedFinite(m.f, FIN);
  }
  copyOut(y, m.f, X >> 2, b);
  return finite;
}

/**
 * batchnorm.ts's training backward over the channels of block b (see batchNormBackward). The ReLU mask comes from
 * reluOut, or with aff (the forward's α, β; it had a ReLU and no residual) is recomputed from x (reluOut is then
 * null). Returns whether every value it wrote to dx is finite (false without dx).
 */
export function trainBackwardBlock(
  dx: Float32Array | null, dweight: Float32Array | null, dbias: Float32Array | null, dy: Float32Array, x: Float32Array,
  mean: Float32Array, invstd: Float32Array, weight: Float32Array | null, reluOut: Float32Array | null,
  aff: Float64Array | null, dres: Float32Array | null, overwriteDx: boolean, b: BnBlock,
): boolean {
  const { n, hw } = b;
  // G: dy, masked in place, then dx when it is overwritten and dres is not wanted (in place: each value is read
  // before it is stored); X: x; D (only when needed): the ReLU output, then dx (channel ch's part once its mask is
  // made), or dx's old contents and dx.
  const rb = regionBytes(b), G = 0, X = rb, D = 2 * rb, DX = overwriteDx && dres === null ? G : D;
  const needD = reluOut !== null || DX !== G;
  const OUT = (needD ? 3 : 2) * rb, FIN = OUT + 96;
  const m = simdBatchNorm(OUT + 112);
  copyIn(m.f, G >> 2, dy, b);
  if (reluOut !== null) copyIn(m.f, D >> 2, reluOut, b);
  copyIn(m.f, X >> 2, x, b);
  const stride = (b.ch1 - b.ch0) * hw * 4, count = n * hw;
  const grad = m.grad[reluOut !== null ? 1 : 0]!;
  const dxFn = m.dx[overwriteDx ? 0 : 1]!;
  const sums = new Float64Array(2 * (b.ch1 - b.ch0));
  let finite = true;
  const gradChannel = (ch: number): void => {
    const off = (ch - b.ch0) * hw * 4;
    if (aff !== null) m.gradX(G + off, G + off, X + off, n, hw, stride, mean[ch]!, aff[2 * ch]!, aff[2 * ch + 1]!, OUT);
    else grad(G + off, G + off, D + off, X + off, n, hw, stride, mean[ch]!, OUT);
    const sg = laneTotal(m.h, OUT >> 3), sgx = laneTotal(m.h, (OUT >> 3) + 6);
    sums[2 * (ch - b.ch0)] = sg;
    sums[2 * (ch - b.ch0) + 1] = sgx;
    if (dbias) dbias[ch] = dbias[ch]! + sg;
    if (dweight) dweight[ch] = dweight[ch]! + sgx * invstd[ch]!;
  };
  const dxChannel = (ch: number): void => {
    const off = (ch - b.ch0) * hw * 4;
    const istd = invstd[ch]!;
    const sg = sums[2 * (ch - b.ch0)]!, sgx = sums[2 * (ch - b.ch0) + 1]!;
    // dx = γ·invstd·(g − mean(g) − (x − mean)·invstd²·mean(g·(x − mean))), batchnorm.ts's formula
    dxFn(DX + off, G + off, X + off, n, hw, stride, (weight ? weight[ch]! : 1) * istd, sg / count, mean[ch]!, (istd * istd * sgx) / count, FIN);
    finite &&= checkedFinite(m.f, FIN);
  };
  if (dx !== null && overwriteDx) {
    // each channel's dx right after its sums, while its planes are still in cache
    for (let ch = b.ch0; ch < b.ch1; ch++) {
      gradChannel(ch);
      dxChannel(ch);
    }
    if (dres !== null) copyOut(dres, m.f, G >> 2, b);
  } else {
    for (let ch = b.ch0; ch < b.ch1; ch++) gradChannel(ch);
    if (dres !== null) copyOut(dres, m.f, G >> 2, b);
    if (dx === null) return false;
    copyIn(m.f, D >> 2, dx, b);
    for (let ch = b.ch0; ch < b.ch1; ch++) dxChannel(ch);
  }
  copyOut(dx, m.f, DX >> 2, b);
  return finite;
}
