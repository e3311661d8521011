import { defineOp, isGradEnabled } from '../autograd.js';
import { config } from '../config.js';
import { AutogradError, ShapeError, ValueError } from '../errors.js';
import { conv2dForwardFused, conv2dOutSize, type Conv2dParams } from '../kernels/conv2d.js';
import type { Module } from '../nn/module.js';
import type { BatchNorm2d, Conv2d, ReLU } from '../nn/layers.js';
import { conv2d, pair, type Pair } from '../ops/conv.js';
import { add, relu } from '../ops/elementwise.js';
import { batchNorm2d, batchNormRelu2d } from '../ops/norm.js';
import { dims4, fmt, sameShape } from '../shape.js';
import { Tensor } from '../tensor.js';
import { takeBuffer } from './arena.js';

/**
 * Inference fusion: conv2d → BatchNorm2d (running statistics) → (+ residual) → (ReLU) as one pass (PyTorch's
 * fuse_conv_bn_eval, candle's Conv2d::absorb_bn).
 *
 * The BatchNorm is folded into the convolution as a per-output-channel affine map applied to the convolution's
 * float64 sums, in the GEMM/Winograd epilogue:
 *   y = conv(x, w)·α + β' (+ residual) (→ relu),   α = γ/√(var + ε),   β' = β − mean·α + bias·α
 * which is w' = w·α, b' = β − mean·α + bias·α applied after the sum instead of to a copy of the weights: the same
 * map, one rounding fewer, and no folded copy to keep. So there is no cache of folded weights and nothing to
 * invalidate: α and β' are recomputed from the live tensors on every call (O(channels)), so a weight update, a
 * loaded state dict or a changed running stat is always seen.
 *
 * Models call `convBnAct(x, conv, bn, { residual, act })` with their own submodules: in eval mode without
 * gradients (and config.fusion on) it runs the fused kernel; in training (batch statistics, config.fusion on) the
 * conv's forward then BN → (+ residual) → ReLU as one differentiable op (batchNormRelu2d); otherwise, or when a
 * forward hook watches the conv, the BN or the activation, it calls those modules' forwards in order. The model's
 * forward is the same either way.
 */

export interface ConvBnActModules {
  /** Added after the BatchNorm, before the activation (a residual unit's shortcut): same shape as the output. */
  residual?: Tensor | null;
  /** The activation module applied last (the unit's ReLU), or none. */
  act?: ReLU | null;
}

/**
 * act(bn(conv(x)) + residual) over modules: one fused kernel in eval mode without gradients (see the file comment),
 * else conv.forward, bn.forward, add, act.forward. bn null: the conv alone.
 */
export function convBnAct(x: Tensor, conv: Conv2d, bn: BatchNorm2d | null, opts: ConvBnActModules = {}): Tensor {
  const residual = opts.residual ?? null;
  const act = opts.act ?? null;
  if (canFuse(x, conv, bn, act)) return fusedConvBnAct(x, conv, bn, { residual, relu: act !== null });
  let y = conv.forward(x);
  if (bn && act && trainFusable(bn, act)) {
    // Training: BN with batch statistics (+ residual) → ReLU as one op (ops/norm.ts's batchNormRelu2d).
    return batchNormRelu2d(y, bn.runningMean, bn.runningVar, bn.weight, bn.bias, {
      training: true, momentum: bn.momentum, eps: bn.eps, numBatchesTracked: bn.training ? bn.numBatchesTracked : null, residual,
    });
  }
  if (bn) y = bn.forward(y);
  if (residual) y = add(y, residual);
  return act ? act.forward(y) : y;
}

/** BN → (+ residual) → ReLU of a training step (batch statistics) runs as one op unless hooks watch either module. */
function trainFusable(bn: BatchNorm2d, act: ReLU): boolean {
  return config.fusion && (bn.training || !bn.trackRunningStats) && !bn.hasForwardHooks() && !act.hasForwardHooks();
}

/** Eval mode, no gradients, nothing watching, and a shape the fused kernel takes: else the modules run themselves. */
function canFuse(x: Tensor, conv: Conv2d, bn: BatchNorm2d | null, act: Module | null): boolean {
  return (
    config.fusion &&
    !isGradEnabled() &&
    x.ndim === 4 &&
    x.shape[1] === conv.inChannels &&
    typeof conv.padding !== 'string' &&
    !conv.training &&
    !conv.hasForwardHooks() &&
    (bn === null || (!bn.training && bn.trackRunningStats && bn.numFeatures === conv.outChannels && !bn.hasForwardHooks())) &&
    (act === null || !act.hasForwardHooks())
  );
}

/** What fusedConvBnAct needs of a convolution; an nn.Conv2d module has these fields. */
export interface ConvSpec {
  weight: Tensor;
  bias: Tensor | null;
  stride: Pair;
  padding: Pair | 'same' | 'valid';
  dilation: Pair;
  groups: number;
}

/** What fusedConvBnAct needs of a BatchNorm2d in eval mode; an nn.BatchNorm2d module has these fields. */
export interface BatchNormSpec {
  weight: Tensor | null;
  bias: Tensor | null;
  runningMean: Tensor | null;
  runningVar: Tensor | null;
  eps: number;
}

export interface FusedConvBnActOptions {
  /** Added after the BatchNorm, before the ReLU (a residual block's shortcut): same shape as the output. */
  residual?: Tensor | null;
  /** Apply ReLU last. Default false. */
  relu?: boolean;
}

interface FusedParams {
  p: Conv2dParams;
  scale: Float64Array;
  shift: Float64Array;
  relu: boolean;
}

const convBnActOp = defineOp('convBnAct', {
  forward(_ctx, x: Tensor, w: Tensor, res: Tensor | null, q: FusedParams) {
    const { p } = q;
    const y = new Tensor(takeBuffer('convBnAct', p.n * p.o * p.oh * p.ow), [p.n, p.o, p.oh, p.ow]);
    conv2dForwardFused(y.data, x.data, w.data, res ? res.data : null, p, { scale: q.scale, shift: q.shift, relu: q.relu });
    return y;
  },
  backward() {
    throw new AutogradError('convBnAct', 'the fused inference op has no backward; it is only used when no input requires grad');
  },
});

/**
 * relu?(batchNorm2d(conv2d(x, conv), bn, eval) + residual) with BatchNorm folded into the convolution's epilogue
 * (see the file comment); bn null means no BatchNorm (conv + bias only). Matches the unfused composition within
 * float32 rounding; when gradients are on and an input requires them, it runs the unfused ops (differentiable).
 * x: (N, C, H, W).
 */
export function fusedConvBnAct(x: Tensor, conv: ConvSpec, bn: BatchNormSpec | null, opts: FusedConvBnActOptions = {}): Tensor {
  const residual = opts.residual ?? null;
  const doRelu = opts.relu === true;
  const needsGraph =
    isGradEnabled() &&
    [x, conv.weight, conv.bias, bn?.weight ?? null, bn?.bias ?? null, residual].some((t) => t !== null && t.requiresGrad);
  const fusable = !needsGraph && x.ndim === 4 && typeof conv.padding !== 'string' && (bn === null || (bn.runningMean !== null && bn.runningVar !== null));
  if (!fusable) return composed(x, conv, bn, residual, doRelu);

  // (The shapes are formatted for an error message only: on every call they cost more than the checks.)
  const shapes = (): string => `input ${fmt(x.shape)}, weight ${fmt(conv.weight.shape)}`;
  const [n, c, h, w] = dims4('convBnAct', x.shape);
  const [o, wc, kh, kw] = dims4('convBnAct', conv.weight.shape, 'weight');
  const groups = conv.groups;
  const [sh, sw] = pair('convBnAct', 'stride', conv.stride, 1, shapes);
  const [ph, pw] = pair('convBnAct', 'padding', conv.padding as Pair, 0, shapes);
  const [dh, dw] = pair('convBnAct', 'dilation', conv.dilation, 1, shapes);
  if (!Number.isInteger(groups) || groups < 1 || o % groups !== 0 || c !== wc * groups) {
    throw new ShapeError('convBnAct', `Given groups=${groups}, weight of size ${fmt(conv.weight.shape)}, expected input${fmt(x.shape)} to have ${wc * groups} channels, but got ${c} channels instead`);
  }
  if (h + 2 * ph < dh * (kh - 1) + 1 || w + 2 * pw < dw * (kw - 1) + 1) {
    throw new ShapeError('convBnAct', `Kernel size can't be greater than actual input size; ${shapes()}, padding (${ph}, ${pw})`);
  }
  const p: Conv2dParams = {
    n, c, h, w, o, kh, kw, strideH: sh, strideW: sw, padH: ph, padW: pw, dilH: dh, dilW: dw, groups,
    oh: conv2dOutSize(h, kh, sh, ph, dh), ow: conv2dOutSize(w, kw, sw, pw, dw),
  };
  if (conv.bias && (conv.bias.ndim !== 1 || conv.bias.shape[0] !== o)) {
    throw new ShapeError('convBnAct', `conv bias must have shape [${o}], got ${fmt(conv.bias.shape)}; ${shapes()}`);
  }
  if (residual && !sameShape(residual.shape, [n, o, p.oh, p.ow])) {
    throw new ShapeError('convBnAct', `residual must have the output's shape ${fmt([n, o, p.oh, p.ow])}, got ${fmt(residual.shape)}; ${shapes()}`);
  }

  // α = γ/√(var + ε), β' = β − mean·α + bias·α, in float64 (batchNormEvalForward's formula).
  const scale = new Float64Array(o), shift = new Float64Array(o);
  if (bn) {
    for (const t of [bn.weight, bn.bias, bn.runningMean, bn.runningVar]) {
      if (t && (t.ndim !== 1 || t.shape[0] !== o)) {
        throw new ShapeError('convBnAct', `batch norm parameters must have shape [${o}] (one per conv output channel), got ${fmt(t.shape)}; ${shapes()}`);
      }
    }
    if (!(bn.eps > 0)) throw new ValueError('convBnAct', `eps must be positive, got ${bn.eps}`);
    const g = bn.weight?.data, b = bn.bias?.data, rm = bn.runningMean!.data, rv = bn.runningVar!.data;
    const cb = conv.bias?.data;
    for (let ch = 0; ch < o; ch++) {
      const alpha = (g ? g[ch]! : 1) / Math.sqrt(rv[ch]! + bn.eps);
      scale[ch] = alpha;
      shift[ch] = (b ? b[ch]! : 0) - rm[ch]! * alpha + (cb ? cb[ch]! * alpha : 0);
    }
  } else {
    scale.fill(1);
    if (conv.bias) shift.set(conv.bias.data);
  }
  return convBnActOp(x, conv.weight, residual, { p, scale, shift, relu: doRelu });
}

/** The unfused composition (differentiable): what convBnAct computes, op by op. */
function composed(x: Tensor, conv: ConvSpec, bn: BatchNormSpec | null, residual: Tensor | null, doRelu: boolean): Tensor {
  let y = conv2d(x, conv.weight, conv.bias, { stride: conv.stride, padding: conv.padding, dilation: conv.dilation, groups: conv.groups });
  if (bn) {
    if (!bn.runningMean || !bn.runningVar) {
      throw new ValueError('convBnAct', 'the batch norm needs running statistics (eval mode with track_running_stats)');
    }
    y = batchNorm2d(y, bn.runningMean, bn.runningVar, bn.weight, bn.bias, { training: false, eps: bn.eps });
  }
  if (residual) y = add(y, residual);
  return doRelu ? relu(y) : y;
}
