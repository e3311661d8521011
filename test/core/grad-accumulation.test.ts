/**
 * Gradients accumulate into an existing .grad in place (conv and batch-norm backwards add into it directly), with
 * the same values as a fresh gradient plus the old one; zeroGrad(false) then backward gives the fresh gradient
 * bit for bit.
 */
import { describe, expect, it } from 'vitest';
import { manualSeed, nn, optim, randn, type Tensor } from '../../src/index.js';
import { batchNormRelu2d } from '../../src/ops/norm.js';
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

// A residual unit's input h feeds a convolution and the shortcut; backward sends h the shortcut's gradient first,
// and the convolution's input gradient is then accumulated into that buffer (CtxBase.into). Checked against the two
// paths' gradients taken apart (the other path's use of h replaced by a constant copy: same forward, same ReLU mask).
describe("a residual input's two gradients accumulate into one buffer", () => {
  const cases = [
    { name: 'identity shortcut', stride: 1, cin: 8, shortcut: (h: Tensor) => h },
    { name: 'option-A shortcut, stride 2', stride: 2, cin: 4, shortcut: (h: Tensor) => nn.functional.shortcutA(h, 8, 2) },
  ];
  for (const c of cases) {
    it(`${c.name}: the input gradient is the sum of the conv path's and the shortcut's`, () => {
      manualSeed(7);
      const w = randn([8, c.cin, 3, 3]).mul(0.2).requiresGrad_();
      const gamma = randn([8]).requiresGrad_(), beta = randn([8]).requiresGrad_();
      const x0 = randn([3, c.cin, 10, 10]);
      const r = randn([3, 8, 10 / c.stride, 10 / c.stride]);
      const run = (convPath: boolean, skipPath: boolean): Float32Array => {
        const x = x0.clone().requiresGrad_();
        const h = x.mul(1.5); // made by an op: its gradient is pending while the unit's backward runs
        const hc = h.detach();
        const z = nn.functional.conv2d(convPath ? h : hc, w, null, { stride: c.stride, padding: 1 });
        const y = batchNormRelu2d(z, null, null, gamma, beta, { training: true, residual: c.shortcut(skipPath ? h : hc) });
        y.mul(r).sum().backward();
        return x.grad!.data;
      };
      const both = run(true, true), convOnly = run(true, false), skipOnly = run(false, true);
      assertClose(`${c.name}: d loss / d x`, both, convOnly.map((v, i) => v + skipOnly[i]!), { atol: 1e-6, rtol: 1e-5 });
    });
  }
});
