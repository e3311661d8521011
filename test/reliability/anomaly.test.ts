/**
 * Anomaly detection (src/autograd.ts: detectAnomaly(fn), setDetectAnomaly(on)): with it on, the first op whose
 * forward output or backward gradient holds NaN or ±Inf throws an AutogradError naming the op, forward or backward,
 * the value, and the op's input shapes. Off by default: the same computations return NaN / Inf silently. Each row's
 * expected values are worked out by hand in its name (log(−1) = NaN, d√x/dx at 0 = 1/(2·0) = Inf, …).
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  AutogradError, detectAnomaly, div, exp, expand, full, log, manualSeed, matmul, models, mul, nn, ones, pow, relu, setDetectAnomaly, sqrt, sum, tensor,
  Tensor,
} from '../../src/index.js';
import { expectError, runRows, type Row } from './rows.js';

const F = nn.functional;
const g = (v: number[]): Tensor => tensor(v, undefined, { requiresGrad: true });
const t = (v: number[] | number[][]): Tensor => tensor(v);

/** Runs fn after reseeding the default generator (model init draws from it), so two runs build the same model. */
function seeded<T>(fn: () => T): T {
  manualSeed(123);
  return fn();
}

afterEach(() => setDetectAnomaly(false)); // a failing row must not leave the global switch on for the next

describe('forward: the first op that produces NaN or ±Inf throws, naming itself and its input shapes', () => {
  const rows: Row[] = [
    ['log([1, −1, 2]): log(−1) = NaN at index 1', () => detectAnomaly(() => log(t([1, -1, 2]))), AutogradError,
      ['[log]', 'forward', 'NaN', 'flat index 1', 'inputs [3]']],
    ['log([0, 1]): log(0) = −Inf', () => detectAnomaly(() => log(t([0, 1]))), AutogradError, ['[log]', 'forward', '-Infinity', 'flat index 0']],
    ['sqrt([4, −1]): NaN', () => detectAnomaly(() => sqrt(t([4, -1]))), AutogradError, ['[sqrt]', 'forward', 'NaN', 'flat index 1']],
    ['div([1, 2], [0, 1]): 1/0 = Inf', () => detectAnomaly(() => div(t([1, 2]), t([0, 1]))), AutogradError, ['[div]', 'forward', 'Infinity', 'inputs [2], [2]']],
    ['exp([100, 1]): e^100 overflows float32', () => detectAnomaly(() => exp(t([100, 1]))), AutogradError, ['[exp]', 'forward', 'Infinity', 'flat index 0']],
    ['pow([−1, 1], 0.5): (−1)^0.5 = NaN', () => detectAnomaly(() => pow(t([-1, 1]), 0.5)), AutogradError, ['[pow]', 'forward', 'NaN']],
    ['mul([0], [Inf]): 0·Inf = NaN', () => detectAnomaly(() => mul(t([0]), t([Infinity]))), AutogradError, ['[mul]', 'forward', 'NaN', 'inputs [1], [1]']],
    ['matmul [1,2]@[2,1] of 1e30s: 2e60 overflows', () => detectAnomaly(() => matmul(t([[1e30, 1e30]]), t([[1e30], [1e30]]))), AutogradError,
      ['[matmul]', 'forward', 'Infinity', 'of [1, 1]', 'inputs [1, 2], [2, 1]']],
    ['conv2d with a NaN weight', () => detectAnomaly(() => F.conv2d(ones([1, 1, 3, 3]), full([2, 1, 3, 3], NaN))), AutogradError,
      ['[conv2d]', 'forward', 'NaN', 'of [1, 2, 1, 1]', 'inputs [1, 1, 3, 3], [2, 1, 3, 3]']],
    ['crossEntropy of logits [Inf, 0]: Inf − Inf in the log-softmax', () => detectAnomaly(() => F.crossEntropy(t([[Infinity, 0]]), [1])), AutogradError,
      ['[logSoftmax]', 'forward', 'NaN', 'inputs [1, 2]']],
    ['sum([3e38, 3e38]) overflows float32', () => detectAnomaly(() => sum(t([3e38, 3e38]))), AutogradError, ['[sum]', 'forward', 'Infinity', 'inputs [2]']],
    ['a CIFAR ResNet whose conv1 holds one NaN weight: conv1 is the first op to produce NaN', () => detectAnomaly(() => {
      const m = models.resnet20({ widths: [4, 8, 8] });
      m.conv1.weight.data[5] = NaN;
      return m.forward(ones([2, 3, 8, 8]));
    }), AutogradError, ['[conv2d]', 'forward', 'NaN', 'of [2, 4, 8, 8]', 'inputs [2, 3, 8, 8], [4, 3, 3, 3]']],
    ['setDetectAnomaly(true): log(−1) throws without a wrapper', () => {
      setDetectAnomaly(true);
      return log(t([-1]));
    }, AutogradError, ['[log]', 'NaN']],
  ];
  runRows(rows);
});

describe('backward: the first op whose gradient holds NaN or ±Inf throws', () => {
  const rows: Row[] = [
    ['sqrt at 0: forward 0 is fine, d√x/dx = 1/(2·0) = Inf', () => detectAnomaly(() => sum(sqrt(g([0, 4]))).backward()), AutogradError,
      ['[sqrt]', 'backward', 'Infinity', 'flat index 0', 'inputs [2]']],
    ['pow(x, 0.5) at 0: 0.5·0^(−0.5) = Inf', () => detectAnomaly(() => sum(pow(g([0, 1]), 0.5)).backward()), AutogradError,
      ['[pow]', 'backward', 'Infinity']],
    ['div(1, b) at b = 1e-30: forward 1e30 is finite, d/db = −1/b² = −Inf', () => detectAnomaly(() => sum(div(g([1, 1]), g([1e-30, 1]))).backward()),
      AutogradError, ['[div]', 'backward', '-Infinity', 'inputs [2], [2]']],
    ['relu given an Inf upstream gradient', () => detectAnomaly(() => relu(g([1])).backward(t([Infinity]))), AutogradError, ['[relu]', 'backward', 'Infinity']],
    ['crossEntropy given a NaN upstream gradient: nllLoss is the first backward', () => detectAnomaly(() => F.crossEntropy(g([1, 2]).reshape([1, 2]), [0]).backward(tensor(NaN))),
      AutogradError, ['[nllLoss]', 'backward', 'NaN', 'inputs [1, 2]']],
    ['the graph built without detection, backward run inside detectAnomaly', () => {
      const x = g([0, 4]);
      const y = sum(sqrt(x));
      return detectAnomaly(() => y.backward());
    }, AutogradError, ['[sqrt]', 'backward', 'Infinity']],
    // ops called inside a backward are part of that backward: the error names the op whose backward it is
    ['log backward at 1e-45: 1/x overflows', () => detectAnomaly(() => log(g([1e-45, 1])).sum().backward()), AutogradError, ['[log]', 'backward', 'Infinity']],
    ['exp backward overflow (x = 88, dy = 10)', () => detectAnomaly(() => exp(g([88, 0])).backward(tensor([10, 1]))), AutogradError, ['[exp]', 'backward', 'Infinity']],
    ['mul-by-scalar backward overflow', () => detectAnomaly(() => mul(g([1, 0]), 1e30).backward(tensor([1e10, 1]))), AutogradError, ['[mul]', 'backward', 'Infinity']],
    ['expand backward overflow (the sum over the broadcast axis)', () => detectAnomaly(() => expand(g([1]), [2]).backward(tensor([3e38, 3e38]))), AutogradError, ['[expand]', 'backward', 'Infinity']],
  ];
  runRows(rows);
});

describe('off by default, scoped, and no change to finite results', () => {
  it('without detection the same computations give NaN and Inf silently', () => {
    const y = log(t([1, -1, 2]));
    expect(Number.isNaN(y.data[1])).toBe(true);
    const x = g([0, 4]);
    sum(sqrt(x)).backward();
    expect(Array.from(x.grad!.data)).toEqual([Infinity, 0.25]);
    expect(div(t([1]), t([0])).data[0]).toBe(Infinity);
  });

  it('detectAnomaly restores the previous mode, also when fn throws, and returns what fn returns', () => {
    expect(detectAnomaly(() => 42)).toBe(42);
    expect(() => detectAnomaly(() => {
      throw new Error('boom');
    })).toThrow('boom');
    expect(Number.isNaN(log(t([-1])).data[0])).toBe(true); // off again
    detectAnomaly(() => detectAnomaly(() => 0));
    expect(Number.isNaN(log(t([-1])).data[0])).toBe(true);
    setDetectAnomaly(true);
    detectAnomaly(() => 0); // nested inside the global switch: leaves it on
    expectError(() => log(t([-1])), AutogradError, ['[log]']);
    setDetectAnomaly(false);
    expect(Number.isNaN(log(t([-1])).data[0])).toBe(true);
  });

  it('a finite forward and backward give bit-identical outputs and gradients with detection on and off', () => {
    const run = (): number[][] => {
      const m = models.resnet20({ widths: [4, 8, 8] });
      const x = tensor(Array.from({ length: 2 * 3 * 8 * 8 }, (_, i) => Math.sin(i)), [2, 3, 8, 8]);
      const loss = F.crossEntropy(m.forward(x), [1, 7]);
      loss.backward();
      return [[loss.item()], ...m.parameters().map((p) => Array.from(p.grad!.data))];
    };
    const off = seeded(run);
    const on = seeded(() => detectAnomaly(run));
    expect(on.length).toBe(off.length);
    for (let i = 0; i < off.length; i++) expect(on[i], `tensor ${i}`).toEqual(off[i]);
  });
});
