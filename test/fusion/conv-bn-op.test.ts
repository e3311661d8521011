/**
 * fusedConvBnAct (src/fusion/conv-bn.ts): the fused inference op equals the unfused composition conv2d → batchNorm2d (eval)
 * → + residual → relu, within 1e-5 of the output's magnitude, on the Winograd and im2col paths, with nn modules as
 * the specs; it sees parameter updates (no stale cache); with gradients it falls back to the differentiable ops.
 * (An ops-level test kept under test/kernels, next to the kernels it drives.)
 */
import { describe, expect, it } from 'vitest';
import { noGrad } from '../../src/autograd.js';
import { BatchNorm2d, Conv2d } from '../../src/nn/layers.js';
import { conv2d } from '../../src/ops/conv.js';
import { add, relu } from '../../src/ops/elementwise.js';
import { fusedConvBnAct as convBnAct, type BatchNormSpec, type ConvSpec } from '../../src/fusion/conv-bn.js';
import { batchNorm2d } from '../../src/ops/norm.js';
import { Tensor } from '../../src/tensor.js';
import { assertClose, randArray } from '../kernels/compare.js';

const t = (seed: number, shape: number[], lo = -1, hi = 1) => new Tensor(randArray(seed, shape.reduce((a, b) => a * b, 1), lo, hi), shape);

function bnSpec(c: number, seed: number): BatchNormSpec {
  return {
    weight: t(seed, [c], 0.5, 1.5),
    bias: t(seed + 1, [c]),
    runningMean: t(seed + 2, [c], -0.3, 0.3),
    runningVar: t(seed + 3, [c], 0.2, 2),
    eps: 1e-5,
  };
}

function unfused(x: Tensor, conv: ConvSpec, bn: BatchNormSpec | null, residual: Tensor | null, doRelu: boolean): Tensor {
  let y = conv2d(x, conv.weight, conv.bias, { stride: conv.stride, padding: conv.padding, dilation: conv.dilation, groups: conv.groups });
  if (bn) y = batchNorm2d(y, bn.runningMean, bn.runningVar, bn.weight, bn.bias, { training: false, eps: bn.eps });
  if (residual) y = add(y, residual);
  return doRelu ? relu(y) : y;
}

const TOL = { atol: 1e-5, rtol: 0 }; // atol is relative to max |reference| (assertClose)

interface Case {
  name: string;
  x: number[];
  o: number;
  k: number;
  stride: number;
  pad: number;
  groups?: number;
  convBias?: boolean;
  bn?: boolean;
  residual?: boolean;
  relu?: boolean;
}

const cases: Case[] = [
  { name: 'BasicBlock conv1: 3×3 s1 + BN + relu (Winograd)', x: [1, 16, 20, 20], o: 16, k: 3, stride: 1, pad: 1, relu: true },
  { name: 'BasicBlock conv2: 3×3 s1 + BN + residual + relu', x: [2, 8, 12, 12], o: 8, k: 3, stride: 1, pad: 1, residual: true, relu: true },
  { name: 'strided 3×3 + BN + relu (im2col)', x: [1, 6, 15, 13], o: 10, k: 3, stride: 2, pad: 1, relu: true },
  { name: 'bottleneck 1×1 + BN + residual + relu', x: [2, 12, 7, 9], o: 20, k: 1, stride: 1, pad: 0, residual: true, relu: true },
  { name: 'downsample 1×1 s2 + BN (no relu)', x: [1, 8, 10, 10], o: 16, k: 1, stride: 2, pad: 0 },
  { name: 'conv bias + BN', x: [1, 4, 9, 9], o: 5, k: 3, stride: 1, pad: 1, convBias: true, relu: true },
  { name: 'conv bias, no BN, residual', x: [1, 4, 9, 9], o: 4, k: 3, stride: 1, pad: 0, convBias: true, bn: false, residual: true },
  { name: 'groups 2 + BN + relu', x: [1, 8, 8, 8], o: 6, k: 3, stride: 1, pad: 1, groups: 2, relu: true },
  { name: 'stem 7×7 s2 p3 + BN + relu', x: [1, 3, 32, 32], o: 8, k: 7, stride: 2, pad: 3, relu: true },
];

describe('convBnAct (fused inference op) vs the unfused ops', () => {
  cases.forEach((cs, i) => {
    it(cs.name, () => {
      const groups = cs.groups ?? 1;
      const c = cs.x[1]!;
      const conv: ConvSpec = {
        weight: t(10 * i, [cs.o, c / groups, cs.k, cs.k], -0.3, 0.3),
        bias: cs.convBias ? t(10 * i + 1, [cs.o]) : null,
        stride: cs.stride, padding: cs.pad, dilation: 1, groups,
      };
      const bn = cs.bn === false ? null : bnSpec(cs.o, 10 * i + 2);
      const x = t(10 * i + 3, cs.x);
      const oh = Math.floor((cs.x[2]! + 2 * cs.pad - cs.k) / cs.stride) + 1, ow = Math.floor((cs.x[3]! + 2 * cs.pad - cs.k) / cs.stride) + 1;
      const residual = cs.residual ? t(10 * i + 4, [cs.x[0]!, cs.o, oh, ow]) : null;
      const doRelu = cs.relu === true;
      const [got, ref] = noGrad(() => [convBnAct(x, conv, bn, { residual, relu: doRelu }), unfused(x, conv, bn, residual, doRelu)]);
      expect(got.shape).toEqual(ref.shape);
      expect(got.gradFn).toBeNull();
      assertClose(cs.name, got.data, ref.data, TOL);
      if (doRelu) expect(ref.data.some((v) => v === 0) && ref.data.some((v) => v > 0)).toBe(true);
    });
  });

  it('takes nn.Conv2d / nn.BatchNorm2d modules as specs, and sees their updates (no stale folded weights)', () => {
    const conv = new Conv2d(6, 6, 3, { padding: 1, bias: false });
    const bn = new BatchNorm2d(6);
    bn.training = false;
    bn.runningMean!.data.set(randArray(90, 6, -0.2, 0.2));
    bn.runningVar!.data.set(randArray(91, 6, 0.5, 1.5));
    const x = t(92, [1, 6, 10, 10]);
    const run = () => noGrad(() => [convBnAct(x, conv, bn, { relu: true }), unfused(x, conv, bn, null, true)]);
    const [a, ra] = run();
    assertClose('modules', a!.data, ra!.data, TOL);
    // in-place updates of every folded quantity: weight, gamma, running var
    conv.weight.data[0] = conv.weight.data[0]! + 0.5;
    bn.weight!.data[1] = 2.5;
    bn.runningVar!.data[2] = 4;
    const [b, rb] = run();
    assertClose('after updates', b!.data, rb!.data, TOL);
    let changed = 0;
    for (let i = 0; i < a!.size; i++) if (a!.data[i] !== b!.data[i]) changed++;
    expect(changed).toBeGreaterThan(100);
  });

  it('with gradients on and parameters requiring grad, it is the differentiable composition', () => {
    const conv: ConvSpec = { weight: t(1, [4, 3, 3, 3]), bias: null, stride: 1, padding: 1, dilation: 1, groups: 1 };
    conv.weight.requiresGrad = true;
    const bn = bnSpec(4, 5);
    const x = t(2, [1, 3, 6, 6]);
    const y = convBnAct(x, conv, bn, { relu: true });
    expect(y.gradFn).not.toBeNull();
    y.sum().backward();
    expect(conv.weight.grad).not.toBeNull();
    const ref = noGrad(() => unfused(x, conv, bn, null, true));
    assertClose('graph path', y.data, ref.data, TOL);
  });

  it('bad shapes name the op and the shapes', () => {
    const conv: ConvSpec = { weight: t(1, [4, 3, 3, 3]), bias: null, stride: 1, padding: 1, dilation: 1, groups: 1 };
    expect(() => noGrad(() => convBnAct(t(2, [1, 5, 6, 6]), conv, bnSpec(4, 3)))).toThrow(/\[convBnAct\].*5 channels/);
    expect(() => noGrad(() => convBnAct(t(2, [1, 3, 6, 6]), conv, bnSpec(5, 3)))).toThrow(/\[convBnAct\].*shape \[4\]/);
    expect(() => noGrad(() => convBnAct(t(2, [1, 3, 6, 6]), conv, bnSpec(4, 3), { residual: t(3, [1, 4, 5, 6]) }))).toThrow(/\[convBnAct\] residual/);
  });
});
