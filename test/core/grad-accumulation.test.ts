/**
 * Gradients accumulate into an existing .grad in place (conv and batch-norm backwards add into it directly), with
 * the same values as a fresh gradient plus the old one; zeroGrad(false) then backward gives the fresh gradient
 * bit for bit.
 */
import { describe, expect, it } from 'vitest';
import { manualSeed, nn, optim, randn, type Tensor } from '../../src/index.js';
import { assertClose, assertIdentical } from '../kernels/compare.js';

describe('in-place gradient accumulation', () => {
  it('conv → BN → ReLU (+ shortcut): second backward adds in place; zeroGrad(false) restores the first', () => {
    manualSeed(4);
    const conv = new nn.Conv2d(3, 8, 3, { padding: 1, bias: true });
    const bn = new nn.BatchNorm2d(8);
    const x = randn([4, 3, 9, 9]);
    const params = [conv.weight, conv.bias!, bn.weight!, bn.bias!];
    const loss = (): Tensor => {
      const y = bn.forward(conv.forward(x));
      return nn.functional.relu(y.add(y.mul(0.5))).sum();
    };
    loss().backward();
    const first = params.map((p) => p.grad!.data.slice());
    const objects = params.map((p) => p.grad);
    loss().backward();
    params.forEach((p, i) => {
      expect(p.grad, `param ${i}: the same .grad tensor`).toBe(objects[i]);
      assertClose(`param ${i} after two backwards`, p.grad!.data, first[i]!.map((v) => 2 * v), { atol: 1e-6, rtol: 1e-6 });
    });
    new optim.SGD(params, { lr: 0.1 }).zeroGrad(false);
    loss().backward();
    params.forEach((p, i) => assertIdentical(`param ${i} after zeroGrad(false)`, p.grad!.data, first[i]!));
  });
});
