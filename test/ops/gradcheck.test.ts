/**
 * Finite-difference checks of every differentiable op's backward (see test/helpers/gradcheck.ts for the method and
 * the tolerance: central differences with eps = 1e-2 in float32, atol 5e-3 + rtol 1e-2). Inputs are small, seeded,
 * and kept away from kinks (relu/abs/clamp at their thresholds, ties in max/min/maximum/maxPool) by `spaced`.
 */
import { describe, it } from 'vitest';
import {
  abs, add, cat, Generator, clamp, div, exp, expand, flatten, log, matmul, max, maximum, mean, min, minimum, mul, narrow, neg, nn, pad,
  permute, pow, relu, Tensor, reshape, sigmoid, slice, sqrt, squeeze, stack, sub, sum, tanh, transpose, unsqueeze, variance,
} from '../../src/index.js';
import { gradcheck, mulberry32, spaced, uniform } from '../helpers/gradcheck.js';

const F = nn.functional;
const rng = mulberry32(20240601);
const U = (shape: number[], lo = -1, hi = 1): Tensor => uniform(rng, shape, lo, hi);
const S = (shape: number[], gap = 0.05): Tensor => spaced(rng, shape, gap);

/** Leaf tensors of the given shapes cut from one `spaced` draw: no ties between them either. */
function pieces(...shapes: number[][]): Tensor[] {
  const sizes = shapes.map((s) => s.reduce((a, b) => a * b, 1));
  const all = spaced(rng, [sizes.reduce((a, b) => a + b, 0)]).data;
  let off = 0;
  return shapes.map((s, i) => {
    const t = new Tensor(all.slice(off, off + sizes[i]!), s);
    off += sizes[i]!;
    return t.requiresGrad_();
  });
}

type Row = [label: string, fn: (...xs: Tensor[]) => Tensor, inputs: () => Tensor[]];

function suite(name: string, rows: Row[]): void {
  describe(`gradcheck ${name}`, () => {
    for (const [label, fn, inputs] of rows) it(label, () => gradcheck(fn, inputs(), label));
  });
}

suite('elementwise', [
  ['add a=[3,1] b=[1,4]', (a, b) => add(a, b), () => [U([3, 1]), U([1, 4])]],
  ['sub a=[2,3,4] b=[4]', (a, b) => sub(a, b), () => [U([2, 3, 4]), U([4])]],
  ['mul a=[2,1,4] b=[1,3,1]', (a, b) => mul(a, b), () => [U([2, 1, 4]), U([1, 3, 1])]],
  ['mul a=[2,3] scalar 2.5', (a) => mul(a, 2.5), () => [U([2, 3])]],
  ['div a=[3,4] b=[3,1]', (a, b) => div(a, b), () => [U([3, 4]), U([3, 1], 0.5, 2)]],
  ['div a=[3] b=[] (0-d)', (a, b) => div(a, b), () => [U([3]), U([], 0.5, 2)]],
  ['pow x=[3,4] e=3', (x) => pow(x, 3), () => [U([3, 4])]],
  ['pow x=[3,4] e=-1.5', (x) => pow(x, -1.5), () => [U([3, 4], 0.5, 2)]],
  ['pow x=[3,1] e=[1,4] tensor exponent', (x, e) => pow(x, e), () => [U([3, 1], 0.5, 2), U([1, 4])]],
  ['neg x=[5]', (x) => neg(x), () => [U([5])]],
  ['exp x=[2,3]', (x) => exp(x), () => [U([2, 3])]],
  ['log x=[2,3]', (x) => log(x), () => [U([2, 3], 0.5, 2)]],
  ['sqrt x=[2,3]', (x) => sqrt(x), () => [U([2, 3], 0.5, 2)]],
  ['abs x=[12]', (x) => abs(x), () => [S([12])]],
  ['relu x=[12]', (x) => relu(x), () => [S([12])]],
  ['sigmoid x=[2,3]', (x) => sigmoid(x), () => [U([2, 3], -3, 3)]],
  ['tanh x=[2,3]', (x) => tanh(x), () => [U([2, 3], -2, 2)]],
  ['clamp x=[16] min=-0.1 max=0.15 (bounds between the spaced values)', (x) => clamp(x, -0.1, 0.15), () => [S([16])]],
  ['maximum a=[3,4] b=[3,4]', (a, b) => maximum(a, b), () => pieces([3, 4], [3, 4])],
  ['minimum a=[3,4] b=[4]', (a, b) => minimum(a, b), () => pieces([3, 4], [4])],
]);

suite('reduce', [
  ['sum x=[2,3] all', (x) => sum(x), () => [U([2, 3])]],
  ['mean x=[2,3] all', (x) => mean(x), () => [U([2, 3])]],
  ['sum x=[2,3,4] dim=[0,2]', (x) => sum(x, [0, 2]), () => [U([2, 3, 4])]],
  ['mean x=[2,3,4] dim=1 keepDim', (x) => mean(x, 1, true), () => [U([2, 3, 4])]],
  ['max x=[2,3,4] dim=2', (x) => max(x, 2), () => [S([2, 3, 4])]],
  ['max x=[2,3,4] all', (x) => max(x), () => [S([2, 3, 4])]],
  ['min x=[2,3,4] dim=[0,1]', (x) => min(x, [0, 1]), () => [S([2, 3, 4])]],
  ['var x=[3,5] dim=1 unbiased', (x) => variance(x, 1), () => [U([3, 5])]],
  ['var x=[2,3,4] all biased', (x) => variance(x, undefined, { unbiased: false }), () => [U([2, 3, 4])]],
]);

suite('matmul', [
  ['matmul a=[4] b=[4]', (a, b) => matmul(a, b), () => [U([4]), U([4])]],
  ['matmul a=[3] b=[3,2]', (a, b) => matmul(a, b), () => [U([3]), U([3, 2])]],
  ['matmul a=[2,3] b=[3]', (a, b) => matmul(a, b), () => [U([2, 3]), U([3])]],
  ['matmul a=[3,4] b=[4,2]', (a, b) => matmul(a, b), () => [U([3, 4]), U([4, 2])]],
  ['matmul a=[2,1,3,4] b=[3,4,2]', (a, b) => matmul(a, b), () => [U([2, 1, 3, 4]), U([3, 4, 2])]],
]);

suite('movement', [
  ['transpose x=[2,3,4] 0,2', (x) => transpose(x, 0, 2), () => [U([2, 3, 4])]],
  ['permute x=[2,3,4] [2,0,1]', (x) => permute(x, [2, 0, 1]), () => [U([2, 3, 4])]],
  ['reshape x=[2,3,4] → [4,-1]', (x) => reshape(x, [4, -1]), () => [U([2, 3, 4])]],
  ['flatten x=[2,3,2] start=1', (x) => flatten(x, 1), () => [U([2, 3, 2])]],
  ['squeeze x=[1,3,1]', (x) => squeeze(x), () => [U([1, 3, 1])]],
  ['unsqueeze x=[3,2] dim=1', (x) => unsqueeze(x, 1), () => [U([3, 2])]],
  ['expand x=[3,1] → [2,3,4]', (x) => expand(x, [2, 3, 4]), () => [U([3, 1])]],
  ['cat [2,1]+[2,3] dim=1', (a, b) => cat([a, b], 1), () => [U([2, 1]), U([2, 3])]],
  ['stack 2×[2,3] dim=1', (a, b) => stack([a, b], 1), () => [U([2, 3]), U([2, 3])]],
  ['narrow x=[4,3] dim=0 1..3', (x) => narrow(x, 0, 1, 2), () => [U([4, 3])]],
  ['slice x=[3,5] dim=1 -3:-1', (x) => slice(x, 1, -3, -1), () => [U([3, 5])]],
  ['pad x=[2,3,4] (1,-1,2,0)', (x) => pad(x, [1, -1, 2, 0]), () => [U([2, 3, 4])]],
]);

suite('nn.functional', [
  ['conv2d x=[2,2,5,5] w=[3,2,3,3] b s=2 p=1', (x, w, b) => F.conv2d(x, w, b!, { stride: 2, padding: 1 }), () => [U([2, 2, 5, 5]), U([3, 2, 3, 3]), U([3])]],
  ['conv2d x=[1,4,5,4] w=[4,2,2,3] groups=2 dilation=(2,1) p=(1,2)', (x, w) => F.conv2d(x, w, null, { groups: 2, dilation: [2, 1], padding: [1, 2] }), () => [U([1, 4, 5, 4]), U([4, 2, 2, 3])]],
  ["conv2d x=[1,2,5,5] w=[2,2,2,2] p='same' dilation=2", (x, w, b) => F.conv2d(x, w, b!, { padding: 'same', dilation: 2 }), () => [U([1, 2, 5, 5]), U([2, 2, 2, 2]), U([2])]],
  ['batchNorm2d training x=[3,2,2,3]', (x, w, b) => F.batchNorm2d(x, null, null, w!, b!, { training: true }), () => [U([3, 2, 2, 3]), U([2], 0.5, 1.5), U([2])]],
  ['batchNorm2d eval x=[2,2,2,2]', (x, w, b, rm, rv) => F.batchNorm2d(x, rm!, rv!, w!, b!, { training: false }), () => [U([2, 2, 2, 2]), U([2], 0.5, 1.5), U([2]), uniform(rng, [2], -1, 1, false), uniform(rng, [2], 0.5, 2, false)]],
  ['F.relu x=[2,6]', (x) => F.relu(x), () => [S([2, 6])]],
  ['maxPool2d x=[1,2,5,5] k=3 s=2 p=1', (x) => F.maxPool2d(x, { kernelSize: 3, stride: 2, padding: 1 }), () => [S([1, 2, 5, 5])]],
  ['maxPool2d x=[1,1,5,5] k=2 s=2 p=1 ceilMode', (x) => F.maxPool2d(x, { kernelSize: 2, stride: 2, padding: 1, ceilMode: true }), () => [S([1, 1, 5, 5])]],
  ['avgPool2d x=[1,2,5,5] k=3 s=2 p=1 countIncludePad=false ceilMode', (x) => F.avgPool2d(x, { kernelSize: 3, stride: 2, padding: 1, countIncludePad: false, ceilMode: true }), () => [U([1, 2, 5, 5])]],
  ['adaptiveAvgPool2d x=[1,2,5,7] → (3,4)', (x) => F.adaptiveAvgPool2d(x, [3, 4]), () => [U([1, 2, 5, 7])]],
  ['linear x=[3,4] w=[2,4] b=[2]', (x, w, b) => F.linear(x, w, b), () => [U([3, 4]), U([2, 4]), U([2])]],
  ['softmax x=[3,4] dim=1', (x) => F.softmax(x, 1), () => [U([3, 4], -2, 2)]],
  ['logSoftmax x=[2,3,2] dim=1', (x) => F.logSoftmax(x, 1), () => [U([2, 3, 2], -2, 2)]],
  ['crossEntropy x=[4,3] mean', (x) => F.crossEntropy(x, [0, 2, 1, 2]), () => [U([4, 3], -2, 2)]],
  ['crossEntropy x=[4,3] weight labelSmoothing=0.1 ignoreIndex', (x, w) => F.crossEntropy(x, [0, -100, 1, 2], { weight: w, labelSmoothing: 0.1 }), () => [U([4, 3], -2, 2), uniform(rng, [3], 0.5, 2, false)]],
  ['nllLoss x=[4,3] sum', (x) => F.nllLoss(x, [1, 0, 2, 2], { reduction: 'sum' }), () => [U([4, 3])]],
  // a fresh generator per call: the same mask in every forward, so finite differences see one fixed function
  ['dropout x=[4,5] p=0.4 (fixed mask)', (x) => F.dropout(x, 0.4, true, new Generator(5)), () => [U([4, 5])]],
  ['linear x=[4] (1-D) w=[3,4] no bias', (x, w) => F.linear(x, w), () => [U([4]), U([3, 4])]],
  ['avgPool2d x=[1,1,5,5] k=3 s=2 p=1 divisorOverride=4', (x) => F.avgPool2d(x, { kernelSize: 3, stride: 2, padding: 1, divisorOverride: 4 }), () => [U([1, 1, 5, 5])]],
  ['shortcutA x=[1,2,4,4] out=5 s=2', (x) => F.shortcutA(x, 5, 2), () => [U([1, 2, 4, 4])]],
]);
