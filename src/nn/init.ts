import { ValueError } from '../errors.js';
import { defaultGenerator, type Generator } from '../random.js';
import { fmt } from '../shape.js';
import type { Tensor } from '../tensor.js';

/** torch.nn.init, in place on a tensor's data, drawing from the seeded generator. */

/** fan_in = size(1)·receptive field, fan_out = size(0)·receptive field (torch's _calculate_fan_in_and_fan_out). */
export function fans(t: Tensor): { fanIn: number; fanOut: number } {
  if (t.ndim < 2) throw new ValueError('init', `Fan in and fan out can not be computed for tensor with fewer than 2 dimensions; shape ${fmt(t.shape)}`);
  const rf = t.shape.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: t.shape[1]! * rf, fanOut: t.shape[0]! * rf };
}

export function calculateGain(nonlinearity: 'relu' | 'linear' | 'leaky_relu', a = 0.01): number {
  if (nonlinearity === 'relu') return Math.SQRT2;
  if (nonlinearity === 'leaky_relu') return Math.sqrt(2 / (1 + a * a));
  return 1;
}

/** Depth of withoutRandomInit calls on this thread. */
let skipRandom = 0;

/**
 * Runs `build` with uniform_ and normal_ (and the kaiming functions built on them) leaving tensors as they are
 * and drawing nothing from any generator: for a model whose every parameter a checkpoint then overwrites (the CLI's
 * predict), whose random initialization would be wasted work (~1 s for a ResNet-50).
 */
export function withoutRandomInit<T>(build: () => T): T {
  skipRandom++;
  try {
    return build();
  } finally {
    skipRandom--;
  }
}

export function uniform_(t: Tensor, lo: number, hi: number, g: Generator = defaultGenerator): Tensor {
  if (skipRandom > 0) return t;
  const d = t.data;
  for (let i = 0; i < d.length; i++) d[i] = lo + (hi - lo) * g.uniform();
  return t;
}

export function normal_(t: Tensor, mean = 0, std = 1, g: Generator = defaultGenerator): Tensor {
  if (skipRandom > 0) return t;
  g.fillNormal(t.data, mean, std);
  return t;
}

export function constant_(t: Tensor, v: number): Tensor {
  t.data.fill(v);
  return t;
}

export interface KaimingOptions {
  /** Negative slope for leaky_relu (torch's `a`). */
  a?: number;
  mode?: 'fan_in' | 'fan_out';
  nonlinearity?: 'relu' | 'leaky_relu' | 'linear';
  generator?: Generator;
}

/** torch.nn.init.kaiming_normal_: N(0, gain/√fan). */
export function kaimingNormal_(t: Tensor, opts: KaimingOptions = {}): Tensor {
  const { a = 0, mode = 'fan_in', nonlinearity = 'leaky_relu' } = opts;
  const f = fans(t);
  const std = calculateGain(nonlinearity, a) / Math.sqrt(mode === 'fan_in' ? f.fanIn : f.fanOut);
  return normal_(t, 0, std, opts.generator);
}

/** torch.nn.init.kaiming_uniform_: U(−b, b), b = gain·√(3/fan). */
export function kaimingUniform_(t: Tensor, opts: KaimingOptions = {}): Tensor {
  const { a = 0, mode = 'fan_in', nonlinearity = 'leaky_relu' } = opts;
  const f = fans(t);
  const bound = calculateGain(nonlinearity, a) * Math.sqrt(3 / (mode === 'fan_in' ? f.fanIn : f.fanOut));
  return uniform_(t, -bound, bound, opts.generator);
}
