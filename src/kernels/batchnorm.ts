// Batch normalization kernels (PyTorch batch_norm), over x: (N, C, HW) — any NC… layout flattened to HW per plane.
// Statistics are per channel over the N·HW values of that channel; all sums are float64.
//
//   train forward:  mean, biased var (two-pass), invstd = 1/√(var + eps), y = (x − mean)·invstd·γ + β
//   train backward: x̂ = (x − mean)·invstd, dβ = Σdy, dγ = Σdy·x̂, dx = γ·invstd·(dy − Σdy/M − x̂·Σ(dy·x̂)/M)
//   eval forward:   y = (x − running_mean)/√(running_var + eps)·γ + β (a per-channel affine map)
//
// Backward kernels accumulate (+=) into dx, dweight and dbias; the caller zeroes them.

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
 * rejects that case as PyTorch does). weight/bias (C) default to 1/0 when null.
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
): void {
  const { n, c, hw, eps } = p;
  const count = n * hw;
  for (let ch = 0; ch < c; ch++) {
    let s = 0;
    for (let ni = 0; ni < n; ni++) {
      const off = (ni * c + ch) * hw;
      for (let j = 0; j < hw; j++) s += x[off + j]!;
    }
    const mu = s / count;
    let ss = 0;
    for (let ni = 0; ni < n; ni++) {
      const off = (ni * c + ch) * hw;
      for (let j = 0; j < hw; j++) {
        const d = x[off + j]! - mu;
        ss += d * d;
      }
    }
    const istd = 1 / Math.sqrt(ss / count + eps);
    mean[ch] = mu;
    invstd[ch] = istd;
    varUnbiased[ch] = ss / (count - 1);
    // y = x·α + β' with α = invstd·γ and β' = β − mean·α, in float64 from the unrounded statistics.
    const alpha = istd * (weight ? weight[ch]! : 1);
    const beta = (bias ? bias[ch]! : 0) - mu * alpha;
    for (let ni = 0; ni < n; ni++) {
      const off = (ni * c + ch) * hw;
      for (let j = 0; j < hw; j++) y[off + j] = x[off + j]! * alpha + beta;
    }
  }
}

/**
 * Training-mode backward, given the saved mean and invstd of the forward. Accumulates: dx (N, C, HW) +=,
 * dweight (C) += Σ dy·x̂, dbias (C) += Σ dy; pass null for any gradient not needed. weight null means γ = 1.
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
): void {
  const { n, c, hw } = p;
  const count = n * hw;
  for (let ch = 0; ch < c; ch++) {
    const mu = mean[ch]!;
    const istd = invstd[ch]!;
    let sdy = 0;
    let sdyx = 0; // Σ dy·(x − mean); Σ dy·x̂ = invstd·sdyx
    for (let ni = 0; ni < n; ni++) {
      const off = (ni * c + ch) * hw;
      for (let j = 0; j < hw; j++) {
        const g = dy[off + j]!;
        sdy += g;
        sdyx += g * (x[off + j]! - mu);
      }
    }
    if (dbias) dbias[ch] = dbias[ch]! + sdy;
    if (dweight) dweight[ch] = dweight[ch]! + sdyx * istd;
    if (dx) {
      // dx = γ·invstd·(dy − mean(dy) − (x − mean)·invstd²·mean(dy·(x − mean)))
      const scale = (weight ? weight[ch]! : 1) * istd;
      const mdy = sdy / count;
      const k = (istd * istd * sdyx) / count;
      for (let ni = 0; ni < n; ni++) {
        const off = (ni * c + ch) * hw;
        for (let j = 0; j < hw; j++) {
          dx[off + j] = dx[off + j]! + scale * (dy[off + j]! - mdy - (x[off + j]! - mu) * k);
        }
      }
    }
  }
}

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
