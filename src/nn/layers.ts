import { ShapeError, ValueError } from '../errors.js';
import { arenaMark, releaseEarly, releaseSince } from '../fusion/arena.js';
import { convBnAct } from '../fusion/conv-bn.js';
import { conv2d, pair, type Pair } from '../ops/conv.js';
import { relu } from '../ops/elementwise.js';
import { dropout, linear } from '../ops/linear.js';
import { flatten } from '../ops/movement.js';
import { batchNorm2d } from '../ops/norm.js';
import { adaptiveAvgPool2d, avgPool2d, maxPool2d, type AvgPool2dOptions, type MaxPool2dOptions } from '../ops/pool.js';
import { residentParam } from '../kernels/optim.js';
import { allocShared, checkShape, fmt } from '../shape.js';
import { Tensor, zeros, ones } from '../tensor.js';
import { kaimingUniform_, fans, uniform_ } from './init.js';
import { anyForwardHooks, Module } from './module.js';

/**
 * A zero-filled parameter in shared memory: on the SIMD backend in the optimizer's resident memory while it has room
 * (see residentParam in kernels/optim.ts), where SGD updates it in place with its momentum buffer and gradient, else
 * a SharedArrayBuffer (see allocShared). A shape too large to allocate is reported by the layer that asked for it.
 */
const param = (op: string, shape: number[]): Tensor => {
  const n = checkShape(op, shape);
  const t = new Tensor(residentParam(n) ?? allocShared(op, n), shape);
  t.requiresGrad = true;
  return t;
};

export interface Conv2dModuleOptions {
  stride?: Pair;
  padding?: Pair | 'same' | 'valid';
  dilation?: Pair;
  groups?: number;
  /** Learnable bias (default true, like torch.nn.Conv2d). */
  bias?: boolean;
}

/** torch.nn.Conv2d. weight (O, C/groups, kH, kW), bias (O); PyTorch's default init (kaiming_uniform a=√5). */
export class Conv2d extends Module {
  weight: Tensor;
  bias: Tensor | null;
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number] | 'same' | 'valid';
  readonly dilation: [number, number];
  readonly groups: number;

  constructor(inChannels: number, outChannels: number, kernelSize: Pair, opts: Conv2dModuleOptions = {}) {
    super();
    const what = `Conv2d(${inChannels}, ${outChannels}, kernelSize ${JSON.stringify(kernelSize)})`;
    this.groups = opts.groups ?? 1;
    if (!Number.isInteger(inChannels) || !Number.isInteger(outChannels) || inChannels < 1 || outChannels < 1) {
      throw new ValueError('Conv2d', `channels must be positive integers; ${what}`);
    }
    if (!Number.isInteger(this.groups) || this.groups < 1) throw new ValueError('Conv2d', `groups must be a positive integer; ${what}`);
    if (inChannels % this.groups !== 0) throw new ValueError('Conv2d', `in_channels must be divisible by groups; ${what}, groups ${this.groups}`);
    if (outChannels % this.groups !== 0) throw new ValueError('Conv2d', `out_channels must be divisible by groups; ${what}, groups ${this.groups}`);
    this.inChannels = inChannels;
    this.outChannels = outChannels;
    this.kernelSize = pair('Conv2d', 'kernelSize', kernelSize, 1, what);
    this.stride = pair('Conv2d', 'stride', opts.stride ?? 1, 1, what);
    const p = opts.padding ?? 0;
    this.padding = p === 'same' || p === 'valid' ? p : pair('Conv2d', 'padding', p, 0, what);
    if (p === 'same' && (this.stride[0] !== 1 || this.stride[1] !== 1)) {
      throw new ValueError('Conv2d', `padding='same' is not supported for strided convolutions; ${what}, stride (${this.stride.join(', ')})`);
    }
    this.dilation = pair('Conv2d', 'dilation', opts.dilation ?? 1, 1, what);
    this.weight = param('Conv2d', [outChannels, inChannels / this.groups, ...this.kernelSize]);
    this.bias = opts.bias ?? true ? param('Conv2d', [outChannels]) : null;
    this.resetParameters();
  }

  resetParameters(): void {
    kaimingUniform_(this.weight, { a: Math.sqrt(5) });
    if (this.bias) {
      const b = 1 / Math.sqrt(fans(this.weight).fanIn);
      uniform_(this.bias, -b, b);
    }
  }

  forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, this.bias, { stride: this.stride, padding: this.padding, dilation: this.dilation, groups: this.groups });
  }

  override extraRepr(): string {
    const s = [`${this.inChannels}, ${this.outChannels}, kernel_size=(${this.kernelSize.join(', ')}), stride=(${this.stride.join(', ')})`];
    if (this.padding !== 'valid' && (typeof this.padding === 'string' || this.padding.some((v) => v))) s.push(`padding=${typeof this.padding === 'string' ? `'${this.padding}'` : `(${this.padding.join(', ')})`}`);
    if (this.dilation.some((d) => d !== 1)) s.push(`dilation=(${this.dilation.join(', ')})`);
    if (this.groups !== 1) s.push(`groups=${this.groups}`);
    if (!this.bias) s.push('bias=False');
    return s.join(', ');
  }
}

export interface BatchNormModuleOptions {
  eps?: number;
  /** null = cumulative moving average. Default 0.1. */
  momentum?: number | null;
  affine?: boolean;
  trackRunningStats?: boolean;
}

/** torch.nn.BatchNorm2d: weight 1, bias 0; buffers running_mean 0, running_var 1, num_batches_tracked 0. */
export class BatchNorm2d extends Module {
  weight: Tensor | null;
  bias: Tensor | null;
  readonly numFeatures: number;
  eps: number;
  momentum: number | null;
  readonly trackRunningStats: boolean;

  constructor(numFeatures: number, opts: BatchNormModuleOptions = {}) {
    super();
    if (!Number.isInteger(numFeatures) || numFeatures < 1) throw new ValueError('BatchNorm2d', `numFeatures must be a positive integer, got ${numFeatures}`);
    this.numFeatures = numFeatures;
    this.eps = opts.eps ?? 1e-5;
    this.momentum = opts.momentum === undefined ? 0.1 : opts.momentum;
    const affine = opts.affine ?? true;
    this.trackRunningStats = opts.trackRunningStats ?? true;
    this.weight = affine ? param('BatchNorm2d', [numFeatures]) : null;
    this.weight?.data.fill(1);
    this.bias = affine ? param('BatchNorm2d', [numFeatures]) : null;
    if (this.trackRunningStats) {
      this.registerBuffer('running_mean', zeros([numFeatures]));
      this.registerBuffer('running_var', ones([numFeatures]));
      this.registerBuffer('num_batches_tracked', zeros([]));
    }
  }

  get runningMean(): Tensor | null {
    return this.trackRunningStats ? this.buffer('running_mean') : null;
  }
  get runningVar(): Tensor | null {
    return this.trackRunningStats ? this.buffer('running_var') : null;
  }
  get numBatchesTracked(): Tensor | null {
    return this.trackRunningStats ? this.buffer('num_batches_tracked') : null;
  }

  forward(x: Tensor): Tensor {
    if (x.ndim !== 4) throw new ShapeError('BatchNorm2d', `expected 4D input (got ${x.ndim}D input of shape ${fmt(x.shape)})`);
    if (x.shape[1] !== this.numFeatures) {
      throw new ShapeError('BatchNorm2d', `running_mean should contain ${x.shape[1]} elements not ${this.numFeatures}; input ${fmt(x.shape)}, BatchNorm2d(${this.numFeatures})`);
    }
    const useBatchStats = this.training || !this.trackRunningStats;
    return batchNorm2d(x, this.runningMean, this.runningVar, this.weight, this.bias, {
      training: useBatchStats,
      momentum: this.momentum,
      eps: this.eps,
      numBatchesTracked: this.training ? this.numBatchesTracked : null,
    });
  }

  override extraRepr(): string {
    return `${this.numFeatures}, eps=${this.eps}, momentum=${this.momentum}, affine=${this.weight !== null}, track_running_stats=${this.trackRunningStats}`;
  }
}

/** torch.nn.ReLU. */
export class ReLU extends Module {
  forward(x: Tensor): Tensor {
    return relu(x);
  }
}

/** torch.nn.MaxPool2d. */
export class MaxPool2d extends Module {
  constructor(readonly opts: MaxPool2dOptions) {
    super();
  }
  forward(x: Tensor): Tensor {
    return maxPool2d(x, this.opts);
  }
  override extraRepr(): string {
    const o = this.opts;
    return `kernel_size=${o.kernelSize}, stride=${o.stride ?? o.kernelSize}, padding=${o.padding ?? 0}, dilation=${o.dilation ?? 1}, ceil_mode=${o.ceilMode ?? false}`;
  }
}

/** torch.nn.AvgPool2d. */
export class AvgPool2d extends Module {
  constructor(readonly opts: AvgPool2dOptions) {
    super();
  }
  forward(x: Tensor): Tensor {
    return avgPool2d(x, this.opts);
  }
  override extraRepr(): string {
    const o = this.opts;
    return `kernel_size=${o.kernelSize}, stride=${o.stride ?? o.kernelSize}, padding=${o.padding ?? 0}`;
  }
}

/** torch.nn.AdaptiveAvgPool2d. */
export class AdaptiveAvgPool2d extends Module {
  constructor(readonly outputSize: Pair) {
    super();
  }
  forward(x: Tensor): Tensor {
    return adaptiveAvgPool2d(x, this.outputSize);
  }
  override extraRepr(): string {
    return `output_size=${typeof this.outputSize === 'number' ? this.outputSize : `(${this.outputSize.join(', ')})`}`;
  }
}

/** torch.nn.Linear: weight (out, in), bias (out), both U(−1/√in, 1/√in) as PyTorch's default. */
export class Linear extends Module {
  weight: Tensor;
  bias: Tensor | null;
  constructor(readonly inFeatures: number, readonly outFeatures: number, opts: { bias?: boolean } = {}) {
    super();
    if (!Number.isInteger(inFeatures) || !Number.isInteger(outFeatures) || inFeatures < 1 || outFeatures < 1) {
      throw new ValueError('Linear', `features must be positive integers, got Linear(${inFeatures}, ${outFeatures})`);
    }
    this.weight = param('Linear', [outFeatures, inFeatures]);
    this.bias = opts.bias ?? true ? param('Linear', [outFeatures]) : null;
    this.resetParameters();
  }
  resetParameters(): void {
    kaimingUniform_(this.weight, { a: Math.sqrt(5) });
    if (this.bias) {
      const b = 1 / Math.sqrt(this.inFeatures);
      uniform_(this.bias, -b, b);
    }
  }
  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }
  override extraRepr(): string {
    return `in_features=${this.inFeatures}, out_features=${this.outFeatures}, bias=${this.bias !== null}`;
  }
}

/** torch.nn.Flatten (startDim 1 by default, unlike torch.flatten). */
export class Flatten extends Module {
  constructor(readonly startDim = 1, readonly endDim = -1) {
    super();
  }
  forward(x: Tensor): Tensor {
    return flatten(x, this.startDim, this.endDim);
  }
}

/** torch.nn.Identity. */
export class Identity extends Module {
  forward(x: Tensor): Tensor {
    return x;
  }
}

/** torch.nn.Dropout. */
export class Dropout extends Module {
  constructor(readonly p = 0.5) {
    super();
    if (!(p >= 0 && p <= 1)) throw new ValueError('Dropout', `dropout probability has to be between 0 and 1, but got ${p}`);
  }
  forward(x: Tensor): Tensor {
    return dropout(x, this.p, this.training);
  }
  override extraRepr(): string {
    return `p=${this.p}`;
  }
}

/**
 * torch.nn.Sequential: children named 0, 1, … applied in order. A Conv2d directly followed by a BatchNorm2d (and a
 * ReLU) runs through convBnAct: one fused kernel in eval mode without gradients (fusion/conv-bn.ts).
 */
export class Sequential extends Module {
  private readonly _layers: Module[];
  constructor(...layers: Module[]) {
    super();
    this._layers = layers;
  }
  get length(): number {
    return this._layers.length;
  }
  at(i: number): Module {
    const m = this._layers[i < 0 ? this._layers.length + i : i];
    if (!m) throw new ValueError('Sequential', `index ${i} is out of range for ${this._layers.length} layers`);
    return m;
  }
  override namedChildren(): [string, Module][] {
    return this._layers.map((m, i) => [String(i), m]);
  }
  forward(x: Tensor): Tensor {
    const layers = this._layers;
    let y = x;
    for (let i = 0; i < layers.length; i++) {
      const m = layers[i]!, bn = layers[i + 1];
      let next: Tensor;
      if (m instanceof Conv2d && bn instanceof BatchNorm2d) {
        const act = layers[i + 2] instanceof ReLU ? (layers[i + 2] as ReLU) : null;
        next = convBnAct(y, m, bn, { act });
        i += act ? 2 : 1;
      } else {
        const mark = arenaMark();
        next = m.forward(y);
        // Inside withArena, what the child made and did not return is read by nobody (unless a hook kept it).
        if (!anyForwardHooks()) releaseSince(mark, next.data);
      }
      // Likewise an intermediate between two layers: its buffer goes back now, so the next output of its size
      // reuses it while it is in cache.
      if (y !== x && next.data !== y.data && !anyForwardHooks()) releaseEarly(y.data);
      y = next;
    }
    return y;
  }
}
