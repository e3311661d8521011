import { defineOp, gradTarget, type Ctx } from '../autograd.js';
import { ShapeError, ValueError } from '../errors.js';
import {
  batchNormBackward,
  batchNormEvalBackward,
  batchNormEvalForward,
  batchNormTrainForward,
  type BatchNormParams,
} from '../kernels/batchnorm.js';
import { alloc, fmt, sameShape } from '../shape.js';
import { Tensor } from '../tensor.js';
import { add, relu } from './elementwise.js';
import { gradBuffer, outputBuffer } from '../fusion/arena.js';

export interface BatchNormOptions {
  /** Normalize with the batch statistics and update the running ones (default false: use the running stats). */
  training?: boolean;
  /** Running-stat update factor; null = cumulative average over batches (needs numBatchesTracked). Default 0.1. */
  momentum?: number | null;
  eps?: number;
  /** The module's num_batches_tracked buffer: incremented in training, and used when momentum is null. */
  numBatchesTracked?: Tensor | null;
}

interface TrainStats { mean: Float32Array; invstd: Float32Array; varUnbiased: Float32Array }

/**
 * What the training forward leaves its backward (besides x): the fused ReLU's output (its mask) and, without a
 * residual, the per-channel map it applied (the kernels can recompute the mask from x), γ, shape, stats.
 */
interface TrainSaved {
  reluOut: Float32Array | null;
  affine: Float64Array | null;
  weight: Tensor | null;
  p: BatchNormParams;
  stats: TrainStats;
}

/** What the eval forward leaves its backward (besides x and the running stats): γ and the shape. */
interface EvalSaved {
  weight: Tensor | null;
  p: BatchNormParams;
}

/**
 * Training-mode BN; the fused variant is relu(bn(x) + residual) (residual optional), saving its output for the
 * ReLU mask. Arguments: x, weight, bias, residual, params, stats.
 */
function bnTrainFamily(name: string, relu: boolean) {
  return defineOp(name, {
    forward(ctx: Ctx<TrainSaved, [Tensor]>, x: Tensor, weight: Tensor | null, bias: Tensor | null, residual: Tensor | null, p: BatchNormParams, stats: TrainStats) {
      const y = new Tensor(outputBuffer(name, x.size), x.shape);
      const affine = relu && residual === null ? new Float64Array(2 * p.c) : null;
      const fuse = { relu, residual: residual?.data ?? null, affine };
      batchNormTrainForward(y.data, stats.mean, stats.invstd, stats.varUnbiased, x.data, weight?.data ?? null, bias?.data ?? null, p, fuse);
      ctx.save(x);
      ctx.reluOut = relu ? y.data : null;
      ctx.affine = affine;
      ctx.weight = weight;
      ctx.p = p;
      ctx.stats = stats;
      return y;
    },
    backward(ctx, dy) {
      const [x] = ctx.saved;
      const { weight: w, p } = ctx;
      const { mean, invstd } = ctx.stats;
      const dx = ctx.needs[0] ? new Tensor(gradBuffer(name, x.size, true), x.shape) : null;
      const dw = ctx.needs[1] ? gradTarget(ctx, 1, name, [p.c]) : null;
      const db = ctx.needs[2] ? gradTarget(ctx, 2, name, [p.c]) : null;
      const dres = ctx.needs[3] ? new Tensor(gradBuffer(name, x.size, true), x.shape) : null;
      batchNormBackward(dx?.data ?? null, dw?.data ?? null, db?.data ?? null, dy.data, x.data, mean, invstd, w?.data ?? null, p, {
        reluOut: ctx.reluOut,
        affine: ctx.affine,
        dresidual: dres?.data ?? null,
        overwriteDx: true,
      });
      return [dx, dw, db, dres];
    },
  });
}

const bnTrainOp = bnTrainFamily('batchNorm2d', false);
const bnReluTrainOp = bnTrainFamily('batchNormRelu2d', true);

const bnEvalOp = defineOp('batchNorm2d', {
  forward(ctx: Ctx<EvalSaved, [Tensor, Tensor, Tensor]>, x: Tensor, weight: Tensor | null, bias: Tensor | null, rm: Tensor, rv: Tensor, p: BatchNormParams) {
    const y = new Tensor(alloc('batchNorm2d', x.size), x.shape);
    batchNormEvalForward(y.data, x.data, rm.data, rv.data, weight?.data ?? null, bias?.data ?? null, p);
    ctx.save(x, rm, rv);
    ctx.weight = weight;
    ctx.p = p;
    return y;
  },
  backward(ctx, dy) {
    const [x, rm, rv] = ctx.saved;
    const { weight: w, p } = ctx;
    const dx = ctx.needs[0] ? new Tensor(alloc('batchNorm2d', x.size), x.shape) : null;
    const dw = ctx.needs[1] ? new Tensor(alloc('batchNorm2d', p.c), [p.c]) : null;
    const db = ctx.needs[2] ? new Tensor(alloc('batchNorm2d', p.c), [p.c]) : null;
    batchNormEvalBackward(dx?.data ?? null, dw?.data ?? null, db?.data ?? null, dy.data, x.data, rm.data, rv.data, w?.data ?? null, p);
    return [dx, dw, db];
  },
});

/**
 * torch.nn.functional.batch_norm for (N, C, H, W) (or (N, C)) input. Training mode normalizes with the biased batch
 * variance and updates runningMean/runningVar in place with the unbiased one; eval mode uses the running stats.
 */
export function batchNorm2d(
  x: Tensor,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  weight: Tensor | null = null,
  bias: Tensor | null = null,
  opts: BatchNormOptions = {},
): Tensor {
  return batchNormImpl(false, x, runningMean, runningVar, weight, bias, opts);
}

/**
 * relu(batchNorm2d(x, …) + residual) as one op (residual optional, same shape as x): the same values and gradients
 * as PyTorch's F.relu(F.batch_norm(…) + residual) — batch statistics and the unbiased running-variance update in
 * training — without the intermediate tensors. In training mode the fused kernels normalize, add and clamp in one
 * pass and mask the gradient inside the BN backward; in eval mode it is the ops composed. The sum is rounded to
 * float32 once (PyTorch rounds the BN output, then the sum).
 */
export function batchNormRelu2d(
  x: Tensor,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  weight: Tensor | null = null,
  bias: Tensor | null = null,
  opts: BatchNormOptions & { residual?: Tensor | null } = {},
): Tensor {
  return batchNormImpl(true, x, runningMean, runningVar, weight, bias, opts, opts.residual ?? null);
}

/** Both ops; errors name batchNorm2d (bad input is the batch norm's to report, fused or not). */
function batchNormImpl(
  fuseRelu: boolean,
  x: Tensor,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  weight: Tensor | null,
  bias: Tensor | null,
  opts: BatchNormOptions,
  residual: Tensor | null = null,
): Tensor {
  const op = 'batchNorm2d';
  const { training = false, momentum = 0.1, eps = 1e-5 } = opts;
  // (a closure: the text is built only for an error message)
  const shapes = (): string => [
    `input ${fmt(x.shape)}`,
    runningMean && `running_mean ${fmt(runningMean.shape)}`,
    runningVar && `running_var ${fmt(runningVar.shape)}`,
    weight && `weight ${fmt(weight.shape)}`,
    bias && `bias ${fmt(bias.shape)}`,
    residual && `residual ${fmt(residual.shape)}`,
  ].filter(Boolean).join(', ');
  if (x.ndim !== 4 && x.ndim !== 2 && x.ndim !== 3) {
    throw new ShapeError(op, `expected 2-D, 3-D or 4-D input (N, C, ...), got ${x.ndim}-D input of shape ${fmt(x.shape)}`);
  }
  const n = x.shape[0]!, c = x.shape[1]!;
  const hw = x.shape.slice(2).reduce((a, b) => a * b, 1);
  for (const t of [runningMean, runningVar, weight, bias]) {
    if (t && (t.ndim !== 1 || t.shape[0] !== c)) {
      throw new ShapeError(op, `running stats, weight and bias must have shape [${c}] (one per channel); ${shapes()}`);
    }
  }
  if (!(eps > 0)) throw new ValueError(op, `eps must be positive, got ${eps}; ${shapes()}`);
  if (residual && !sameShape(residual.shape, x.shape)) {
    throw new ShapeError(op, `residual must have the input's shape; ${shapes()}`);
  }
  const p: BatchNormParams = { n, c, hw, eps };
  if (!training) {
    if (!runningMean || !runningVar) throw new ValueError(op, `running_mean and running_var must be defined in evaluation mode; ${shapes()}`);
    const y = bnEvalOp(x, weight, bias, runningMean, runningVar, p);
    const sum = residual ? add(y, residual) : y;
    return fuseRelu ? relu(sum) : sum;
  }
  const count = n * hw;
  if (count <= 1) {
    throw new ValueError(op, `Expected more than 1 value per channel when training, got input size ${fmt(x.shape)}`);
  }
  const stats = { mean: new Float32Array(c), invstd: new Float32Array(c), varUnbiased: new Float32Array(c) };
  const y = (fuseRelu ? bnReluTrainOp : bnTrainOp)(x, weight, bias, residual, p, stats);
  if (runningMean && runningVar) {
    let factor: number;
    const nbt = opts.numBatchesTracked;
    if (nbt) nbt.data[0]! += 1;
    if (momentum === null) {
      if (!nbt) throw new ValueError(op, `momentum=null (cumulative average) needs the numBatchesTracked buffer; ${shapes()}`);
      factor = 1 / nbt.data[0]!;
    } else {
      if (!(momentum >= 0 && momentum <= 1)) throw new ValueError(op, `momentum must be in [0, 1] or null, got ${momentum}; ${shapes()}`);
      factor = momentum;
    }
    const rm = runningMean.data, rv = runningVar.data;
    for (let i = 0; i < c; i++) {
      rm[i] = (1 - factor) * rm[i]! + factor * stats.mean[i]!;
      rv[i] = (1 - factor) * rv[i]! + factor * stats.varUnbiased[i]!;
    }
  }
  return y;
}
