// Batch normalization kernels (PyTorch batch_norm), over x: (N, C, HW) — any NC… layout flattened to HW per plane.
// Statistics are per channel over the N·HW values of that channel; all sums are float64.
//
//   train forward:  mean, biased var (two-pass), invstd = 1/√(var + eps), y = (x − mean)·invstd·γ + β
//   train backward: x̂ = (x − mean)·invstd, dβ = Σdy, dγ = Σdy·x̂, dx = γ·invstd·(dy − Σdy/M − x̂·Σ(dy·x̂)/M)
//   eval forward:   y = (x − running_mean)/√(running_var + eps)·γ + β (a per-channel affine map)
//
// Backward kernels accumulate (+=) into dx, dweight and dbias; the caller zeroes them (or asks the training
// backward to overwrite dx, which saves zero-filling it and reading it back).

import { channelAffine, simdTrainBackward, simdTrainForward } from './batchnorm-simd.js';
import { noteFinite } from './finite.js';
import { parallelFor, registerTask } from './parallel.js';
import { float32Bits, reluBits } from './relu.js';
import { kernelBackend } from './wasm/features.js';

/** N images, C channels, HW = spatial size (H·W) of each plane; eps for the forward passes. */
export interface BatchNormParams {
  n: number;
  c: number;
  hw: number;
  eps: number;
}

/** Same as BatchNormParams without eps (the training backward does not need it: invstd already has it). */
export interface BatchNormBackwardParams {
  n: number;
  c: number;
  hw: number;
}

/**
 * Training-mode forward. Outputs: y (N, C, HW) overwritten; mean (C), invstd (C) = 1/√(biased var + eps), and
 * varUnbiased (C) = Σ(x − mean)²/(M − 1) with M = N·HW, for the running-variance update (NaN when M = 1; the op
 * rejects that case as PyTorch does). weight/bias (C) default to 1/0 when null. `fuse` (the training step's
 * BN → (+ residual) → ReLU in one pass): `residual` (N, C, HW) is added to the normalized value, and with `relu`
 * y = max(y, 0) (NaN kept), PyTorch's relu(batch_norm(x) + residual). `fuse.affine` (2C), when given, receives each
 * channel's float64 map y = x·α + β before the residual and ReLU ([2c] = α, [2c + 1] = β): the backward can then
 * recompute the ReLU mask from x. Split over channels across threads (each channel's sums are made by one thread,
 * in the same order whatever the thread count); the SIMD backend's split is batchnorm-simd.ts's.
 */
export function batchNormTrainForward(
  y: Float32Array,
  mean: Float32Array,
  invstd: Float32Array,
  varUnbiased: Float32Array,
  x: Float32Array,
  weight: Float32Array | null,
  bias: Float32Array | null,
  p: BatchNormParams,
  fuse: { residual?: Float32Array | null; relu?: boolean; affine?: Float64Array | null } = {},
): void {
  const relu = fuse.relu === true, residual = fuse.residual ?? null, affine = fuse.affine ?? null;
  if (kernelBackend() === 'simd') {
    simdTrainForward(y, mean, invstd, varUnbiased, x, weight, bias, p, residual, relu, affine);
    return;
  }
  const outs = ['y', 'mean', 'invstd', 'varUnbiased', ...(affine ? ['affine'] : [])];
  parallelFor<BnTask>({
    kernel: 'batchnorm.trainForward', bufs: { y, mean, invstd, varUnbiased, x, weight, bias, residual, affine },
    writes: outs, overwrites: outs,
    params: { ...channelUnits(p), relu }, units: units(p), cost: 6 * p.n * p.c * p.hw,
  });
  noteFinite(y, false);
}

/** Parameters of a BN task: the shape, channels per unit, and whether a ReLU follows. */
interface BnTask extends BatchNormBackwardParams {
  eps: number;
  perUnit: number;
  relu: boolean;
}

/**
 * Work units the JavaScript kernels split a shape into (fewer when it has fewer channels): each unit takes a block of
 * whole channels (the statistics of a channel are one unit's).
 */
const BN_UNITS = 4;

function channelUnits(p: BatchNormBackwardParams & { eps?: number }): Omit<BnTask, 'relu'> {
  return { n: p.n, c: p.c, hw: p.hw, eps: p.eps ?? 0, perUnit: Math.max(1, Math.ceil(p.c / BN_UNITS)) };
}

function units(p: BatchNormBackwardParams): number {
  return Math.ceil(p.c / channelUnits(p).perUnit);
}

/** Σ x over channel ch (float64; four partial sums over j mod 4, added in a fixed order). */
function channelSum(x: Float32Array, n: number, c: number, hw: number, ch: number): number {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  const hw4 = hw & ~3;
  for (let ni = 0; ni < n; ni++) {
    const off = (ni * c + ch) * hw;
    let j = 0;
    for (; j < hw4; j += 4) {
      s0 += x[off + j]!;
      s1 += x[off + j + 1]!;
      s2 += x[off + j + 2]!;
      s3 += x[off + j + 3]!;
    }
    for (; j < hw; j++) s0 += x[off + j]!;
  }
  return s0 + s1 + (s2 + s3);
}

/** Σ (x − mu)² over channel ch (as channelSum). */
function channelSqDev(x: Float32Array, n: number, c: number, hw: number, ch: number, mu: number): number {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  const hw4 = hw & ~3;
  for (let ni = 0; ni < n; ni++) {
    const off = (ni * c + ch) * hw;
    let j = 0;
    for (; j < hw4; j += 4) {
      const d0 = x[off + j]! - mu, d1 = x[off + j + 1]! - mu, d2 = x[off + j + 2]! - mu, d3 = x[off + j + 3]! - mu;
      s0 += d0 * d0;
      s1 += d1 * d1;
      s2 += d2 * d2;
      s3 += d3 * d3;
    }
    for (; j < hw; j++) {
      const d = x[off + j]! - mu;
      s0 += d * d;
    }
  }
  return s0 + s1 + (s2 + s3);
}

registerTask<BnTask>('batchnorm.trainForward', (bufs, q, u0, u1) => {
  const y = bufs.y as Float32Array, x = bufs.x as Float32Array;
  const mean = bufs.mean as Float32Array, invstd = bufs.invstd as Float32Array, varUnbiased = bufs.varUnbiased as Float32Array;
  const weight = bufs.weight as Float32Array | null, bias = bufs.bias as Float32Array | null;
  const res = bufs.residual as Float32Array | null, aff = bufs.affine as Float64Array | null;
  const { n, c, hw, eps, relu } = q;
  const yBits = relu ? float32Bits(y) : null;
  const count = n * hw;
  for (let ch = u0 * q.perUnit; ch < Math.min(c, u1 * q.perUnit); ch++) {
    const sum = channelSum(x, n, c, hw, ch);
    const ss = channelSqDev(x, n, c, hw, ch, sum / count);
    const [alpha, beta] = channelAffine(ch, sum, ss, count, eps, weight, bias, mean, invstd, varUnbiased, aff);
    for (let ni = 0; ni < n; ni++) {
      const off = (ni * c + ch) * hw;
      if (res !== null) for (let j = off; j < off + hw; j++) y[j] = x[j]! * alpha + beta + res[j]!;
      else for (let j = off; j < off + hw; j++) y[j] = x[j]! * alpha + beta;
      // relu of the rounded value (the same bits as rounding the relu'd one), branch-free: see relu.ts.
      if (relu) reluBits(yBits!, yBits!, off, off + hw);
    }
  }
});

/**
 * Training-mode backward, given the saved mean and invstd of the forward. Accumulates: dx (N, C, HW) +=,
 * dweight (C) += Σ dy·x̂, dbias (C) += Σ dy; pass null for any gradient not needed. weight null means γ = 1.
 * `fuse.reluOut`: the forward was fused with a ReLU and this is its output: dy is first masked to 0 where
 * reluOut ≤ 0 (PyTorch's threshold_backward; a NaN output passes dy). `fuse.dresidual` (the forward added a
 * residual): overwritten with that masked dy, the residual's gradient. `fuse.overwriteDx`: dx is overwritten
 * instead of accumulated into (its old contents are not read). `fuse.affine`: the forward's `fuse.affine`, given only
 * when that forward had no residual: the SIMD kernel then recomputes the mask from x (the same bits as reluOut's)
 * instead of reading reluOut. Split as the forward.
 */
export function batchNormBackward(
  dx: Float32Array | null,
  dweight: Float32Array | null,
  dbias: Float32Array | null,
  dy: Float32Array,
  x: Float32Array,
  mean: Float32Array,
  invstd: Float32Array,
  weight: Float32Array | null,
  p: BatchNormBackwardParams,
  fuse: { reluOut?: Float32Array | null; affine?: Float64Array | null; dresidual?: Float32Array | null; overwriteDx?: boolean } = {},
): void {
  const reluOut = fuse.reluOut ?? null, dresidual = fuse.dresidual ?? null, overwriteDx = fuse.overwriteDx === true;
  if (kernelBackend() === 'simd') {
    // the SIMD kernels recompute the mask from x given the forward's map (reluOut is then not read)
    simdTrainBackward(dx, dweight, dbias, dy, x, mean, invstd, weight, p, reluOut, reluOut !== null ? fuse.affine ?? null : null, dresidual, overwriteDx);
    return;
  }
  parallelFor<BnBackwardTask>({
    kernel: 'batchnorm.trainBackward', bufs: { dx, dweight, dbias, dy, x, mean, invstd, weight, reluOut, dresidual },
    writes: ['dx', 'dweight', 'dbias', 'dresidual'], overwrites: overwriteDx ? ['dresidual', 'dx'] : ['dresidual'],
    params: { ...channelUnits(p), relu: reluOut !== null, overwriteDx }, units: units(p), cost: 8 * p.n * p.c * p.hw,
  });
  if (dx) noteFinite(dx, false);
}

interface BnBackwardTask extends BnTask {
  overwriteDx: boolean;
}

/** One plane's masked gradient when the mask has nowhere else to go (per thread: a worker has its own module). */
let planeBuf: Float32Array = new Float32Array(0);
let planeBits: Int32Array = new Int32Array(0);

/**
 * g[go, go + len) = dy[off, off + len) where the ReLU output r is not ≤ 0, else +0 (PyTorch's threshold_backward;
 * r is +0, positive or NaN, so "not ≤ 0" is "r's bits are not 0"), as a bit mask: a branch on the sign would
 * mispredict about every other element (measured 5× slower on random data).
 */
function maskPlane(g: Int32Array, go: number, dy: Int32Array, r: Int32Array, off: number, len: number): void {
  for (let j = 0; j < len; j++) {
    const b = r[off + j]!;
    g[go + j] = dy[off + j]! & ((b | -b) >> 31);
  }
}

registerTask<BnBackwardTask>('batchnorm.trainBackward', (bufs, q, u0, u1) => {
  const dx = bufs.dx as Float32Array | null, dweight = bufs.dweight as Float32Array | null, dbias = bufs.dbias as Float32Array | null;
  const x = bufs.x as Float32Array, dy = bufs.dy as Float32Array, relu = bufs.reluOut as Float32Array | null;
  const dres = bufs.dresidual as Float32Array | null;
  const mean = bufs.mean as Float32Array, invstd = bufs.invstd as Float32Array, weight = bufs.weight as Float32Array | null;
  const { n, c, hw } = q;
  const count = n * hw;
  const dyBits = float32Bits(dy), rBits = relu ? float32Bits(relu) : null, dresBits = dres ? float32Bits(dres) : null;
  if (relu && !dres && planeBuf.length < hw) {
    planeBuf = new Float32Array(hw);
    planeBits = float32Bits(planeBuf);
  }
  // The gradient BN sees for plane `off`: dy, or dy masked by the ReLU (into dresidual, which is that gradient,
  // or into the plane scratch); returns [array, offset]. `fill` false: dresidual already holds it.
  const planeGrad = (off: number, fill: boolean): [Float32Array, number] => {
    if (dres !== null) {
      if (fill) {
        if (rBits !== null) maskPlane(dresBits!, off, dyBits, rBits, off, hw);
        else dres.set(dy.subarray(off, off + hw), off);
      }
      return [dres, off];
    }
    if (rBits !== null) {
      maskPlane(planeBits, 0, dyBits, rBits, off, hw);
      return [planeBuf, 0];
    }
    return [dy, off];
  };
  for (let ch = u0 * q.perUnit; ch < Math.min(c, u1 * q.perUnit); ch++) {
    const mu = mean[ch]!;
    const istd = invstd[ch]!;
    // Σ g and Σ g·(x − mean) (Σ g·x̂ = invstd·sgx), two partial sums each over even/odd j.
    let sg0 = 0, sg1 = 0, sgx0 = 0, sgx1 = 0;
    for (let ni = 0; ni < n; ni++) {
      const off = (ni * c + ch) * hw;
      const [g, go] = planeGrad(off, true);
      const hw2 = hw & ~1;
      let j = 0;
      for (; j < hw2; j += 2) {
        const g0 = g[go + j]!, g1 = g[go + j + 1]!;
        sg0 += g0;
        sg1 += g1;
        sgx0 += g0 * (x[off + j]! - mu);
        sgx1 += g1 * (x[off + j + 1]! - mu);
      }
      for (; j < hw; j++) {
        const g0 = g[go + j]!;
        sg0 += g0;
        sgx0 += g0 * (x[off + j]! - mu);
      }
    }
    const sg = sg0 + sg1, sgx = sgx0 + sgx1;
    if (dbias) dbias[ch] = dbias[ch]! + sg;
    if (dweight) dweight[ch] = dweight[ch]! + sgx * istd;
    if (!dx) continue;
    // dx = γ·invstd·(g − mean(g) − (x − mean)·invstd²·mean(g·(x − mean)))
    const scale = (weight ? weight[ch]! : 1) * istd;
    const mg = sg / count;
    const k = (istd * istd * sgx) / count;
    for (let ni = 0; ni < n; ni++) {
      const off = (ni * c + ch) * hw;
      const [g, go] = planeGrad(off, false);
      if (q.overwriteDx) for (let j = 0; j < hw; j++) dx[off + j] = scale * (g[go + j]! - mg - (x[off + j]! - mu) * k);
      else for (let j = 0; j < hw; j++) dx[off + j] = dx[off + j]! + scale * (g[go + j]! - mg - (x[off + j]! - mu) * k);
    }
  }
});

/** Eval-mode forward: y (N, C, HW) overwritten with (x − runningMean)/√(runningVar + eps)·γ + β. */
export function batchNormEvalForward(
  y: Float32Array,
  x: Float32Array,
  runningMean: Float32Array,
  runningVar: Float32Array,
  weight: Float32Array | null,
  bias: Float32Array | null,
  p: BatchNormParams,
): void {
  const { n, c, hw, eps } = p;
  for (let ch = 0; ch < c; ch++) {
    const alpha = (weight ? weight[ch]! : 1) / Math.sqrt(runningVar[ch]! + eps);
    const beta = (bias ? bias[ch]! : 0) - runningMean[ch]! * alpha;
    for (let ni = 0; ni < n; ni++) {
      const off = (ni * c + ch) * hw;
      for (let j = 0; j < hw; j++) y[off + j] = x[off + j]! * alpha + beta;
    }
  }
}

/**
 * Eval-mode backward (running statistics are constants). Accumulates: dx += dy·γ/√(runningVar + eps),
 * dweight += Σ dy·(x − runningMean)/√(runningVar + eps), dbias += Σ dy; null skips a gradient.
 */
export function batchNormEvalBackward(
  dx: Float32Array | null,
  dweight: Float32Array | null,
  dbias: Float32Array | null,
  dy: Float32Array,
  x: Float32Array,
  runningMean: Float32Array,
  runningVar: Float32Array,
  weight: Float32Array | null,
  p: BatchNormParams,
): void {
  const { n, c, hw, eps } = p;
  for (let ch = 0; ch < c; ch++) {
    const istd = 1 / Math.sqrt(runningVar[ch]! + eps);
    const scale = (weight ? weight[ch]! : 1) * istd;
    const rm = runningMean[ch]!;
    let sdy = 0;
    let sdyx = 0;
    for (let ni = 0; ni < n; ni++) {
      const off = (ni * c + ch) * hw;
      for (let j = 0; j < hw; j++) {
        const g = dy[off + j]!;
        if (dx) dx[off + j] = dx[off + j]! + g * scale;
        sdy += g;
        sdyx += g * (x[off + j]! - rm);
      }
    }
    if (dbias) dbias[ch] = dbias[ch]! + sdy;
    if (dweight) dweight[ch] = dweight[ch]! + sdyx * istd;
  }
}
