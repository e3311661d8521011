/**
 * Measurements behind the degradation figures: the gradient norm of every weighted layer (the "1 in the derivative"
 * of x + F(x)), and the standard deviation of every residual unit's response F(x) (He et al. 2015, Fig. 7).
 * Both leave the model as they found it: mode, gradients and BatchNorm running statistics.
 */

import { noGrad } from '../autograd.js';
import type { CifarResNet } from '../models/cifar.js';
import type { Module, RemovableHandle } from '../nn/module.js';
import { crossEntropy } from '../ops/loss.js';
import type { Tensor } from '../tensor.js';

/**
 * The weights of the main path's weighted layers, from the input end to the output end: every conv and linear
 * weight except those of projection shortcuts (`downsample`, `shortcut`). For a CIFAR net of depth 6n + 2 that is
 * conv1, layer1.0.conv1, layer1.0.conv2, …, layer3.{n-1}.conv2, fc: exactly `depth` layers.
 */
export function layerWeights(model: Module): [string, Tensor][] {
  return model.namedParameters().filter(([name, p]) => /(^|\.)weight$/.test(name) && (p.ndim === 4 || p.ndim === 2) && !/(^|\.)(downsample|shortcut)\./.test(name));
}

/** L2 norm of a Float32Array, accumulated in double precision. */
export function l2norm(a: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * a[i]!;
  return Math.sqrt(s);
}

export interface LayerGradNorms {
  /** Parameter names (torchvision keys), input end first. */
  layers: string[];
  /** ‖∂loss/∂W‖₂ of each layer's weight, same order. */
  norms: number[];
  /** The mean cross-entropy of the batch. */
  loss: number;
}

/**
 * ‖∂L/∂W‖₂ for every main-path weight (see layerWeights), L = mean cross-entropy of (x, y), in training mode (batch
 * statistics, as during training). The model's mode, its parameters' `.grad` and its BatchNorm running statistics
 * are restored afterwards, so the probe does not disturb training.
 */
export function gradientNorms(model: Module, x: Tensor, y: Int32Array): LayerGradNorms {
  const weights = layerWeights(model);
  const params = model.parameters();
  const savedGrads = params.map((p) => p.grad);
  const buffers = model.namedBuffers().map(([, b]) => [b, b.data.slice()] as const);
  const was = model.training;
  try {
    model.train();
    for (const p of params) p.grad = null;
    const loss = crossEntropy(model.forward(x), y);
    loss.backward();
    return {
      layers: weights.map(([n]) => n),
      norms: weights.map(([, p]) => (p.grad ? l2norm(p.grad.data) : 0)),
      loss: loss.item(),
    };
  } finally {
    params.forEach((p, i) => (p.grad = savedGrads[i]!));
    for (const [b, data] of buffers) b.data.set(data);
    model.train(was);
  }
}

/** Standard deviation of all elements (unbiased, N − 1, like torch.std()), accumulated in double precision. */
export function tensorStd(a: Float32Array): number {
  const n = a.length;
  if (n < 2) return 0;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += a[i]!;
  mean /= n;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (a[i]! - mean) ** 2;
  return Math.sqrt(ss / (n - 1));
}

/**
 * The std of each unit's response (the output of its last BN, before the addition and the ReLU; the paper's Fig. 7
 * measures the same point of each 3×3 layer) for a batch x, in eval mode, without gradients; one number per unit,
 * from the input end. The model's mode is restored.
 */
export function responseStds(model: CifarResNet, x: Tensor): number[] {
  const blocks = model.blocks();
  const stds = new Array<number>(blocks.length).fill(NaN);
  const was = model.training;
  const handles: RemovableHandle[] = [];
  try {
    model.eval();
    // bn2's output is the unit's response F(x), before the addition and the ReLU
    handles.push(...blocks.map((b, i) => b.bn2.registerForwardHook((_, _in, r) => void (stds[i] = tensorStd(r.data)))));
    noGrad(() => model.forward(x));
  } finally {
    for (const h of handles) h.remove();
    model.train(was);
  }
  return stds;
}
