/**
 * The plain training loop with zeroGrad() (PyTorch's set_to_none): every .grad is null after it; the next backward
 * gives each parameter a gradient of its own that no earlier .grad views, so a gradient kept from before zeroGrad()
 * keeps its values; and the gradients and losses are bit for bit those of the loop with zeroGrad(false) and of a loop
 * whose gradients are ordinary zero-filled arrays the caller put there.
 */
import { describe, expect, it } from 'vitest';
import { manualSeed, models, nn, optim, randn, Tensor, zeros } from '../../src/index.js';
import { assertClose, assertIdentical } from '../kernels/compare.js';

type Mode = 'none' | 'inPlace' | 'ordinary';

/** Three SGD steps of a small CIFAR ResNet; returns the losses and every step's gradients. */
function run(mode: Mode): { losses: number[]; grads: Float32Array[][] } {
  manualSeed(7);
  const m = models.resnet20({ widths: [4, 8, 16] }).train();
  const x = randn([4, 3, 16, 16]);
  const t = [1, 3, 5, 7];
  const params = m.parameters();
  const opt = new optim.SGD(params, { lr: 0.05, momentum: 0.9, weightDecay: 5e-4 });
  const losses: number[] = [];
  const grads: Float32Array[][] = [];
  for (let s = 0; s < 3; s++) {
    if (mode === 'none') opt.zeroGrad();
    else if (mode === 'inPlace') opt.zeroGrad(false);
    else for (const p of params) p.grad = new Tensor(new Float32Array(p.size), p.shape);
    const loss = nn.functional.crossEntropy(m.forward(x), t);
    loss.backward();
    grads.push(params.map((p) => p.grad!.data.slice()));
    opt.step();
    losses.push(loss.item());
  }
  return { losses, grads };
}

describe('zeroGrad() then backward (set to none)', () => {
  it('sets every .grad to null; a kept gradient keeps its values; the new ones share no memory with it', () => {
    manualSeed(3);
    const m = models.resnet20({ widths: [4, 8, 16] }).train();
    const x = randn([2, 3, 16, 16]);
    const params = m.parameters();
    const opt = new optim.SGD(params, { lr: 0.1, momentum: 0.9 });
    const step = (): void => {
      nn.functional.crossEntropy(m.forward(x), [2, 9]).backward();
      opt.step();
    };
    step();
    const kept = params.map((p) => p.grad!);
    const values = kept.map((g) => g.data.slice());
    opt.zeroGrad();
    params.forEach((p, i) => expect(p.grad, `param ${i} after zeroGrad()`).toBeNull());
    step();
    step(); // a second backward accumulates into the new gradients
    params.forEach((p, i) => {
      assertIdentical(`param ${i}: the gradient kept from before zeroGrad()`, kept[i]!.data, values[i]!);
      expect(p.grad, `param ${i}: a new gradient`).not.toBe(kept[i]);
      expect(p.grad!.data.buffer === kept[i]!.data.buffer, `param ${i}: the new gradient shares the kept one's memory`).toBe(false);
    });
    // The new gradients differ from each other's memory too (a gradient kept after this step keeps its values).
    const buffers = new Set(params.map((p) => p.grad!.data.buffer));
    expect(buffers.size).toBe(params.length);
    const kept2 = params.map((p) => p.grad!.data);
    const values2 = kept2.map((d) => d.slice());
    opt.zeroGrad();
    step();
    kept2.forEach((d, i) => assertIdentical(`param ${i}: the gradient kept from the second zeroGrad()`, d, values2[i]!));
  });

  it('gradients and losses bit for bit those of zeroGrad(false) and of caller-made ordinary zero gradients', () => {
    const none = run('none');
    const inPlace = run('inPlace');
    const ordinary = run('ordinary');
    for (const [name, other] of [['zeroGrad(false)', inPlace], ['ordinary zeros', ordinary]] as const) {
      expect(none.losses, `losses vs ${name}`).toEqual(other.losses);
      none.grads.forEach((step, s) => step.forEach((g, i) => assertIdentical(`step ${s} param ${i} vs ${name}`, g, other.grads[s]![i]!)));
    }
    expect(none.losses.every(Number.isFinite)).toBe(true);
    expect(none.losses[2]).not.toBe(none.losses[0]);
  });

  it('a leaf used twice by one op and again by another gets the sum of its gradients', () => {
    const w = randn([3, 5]).requiresGrad_();
    const wd = Float64Array.from(w.data);
    w.grad = zeros([3, 5]);
    w.zeroGrad();
    w.mul(w).sum().add(w.mul(3).sum()).backward();
    assertClose('d/dw (w·w + 3w)', w.grad!.data, Array.from(wd, (v) => 2 * v + 3), { atol: 1e-5, rtol: 1e-4 });
    const kept = w.grad!;
    const values = kept.data.slice();
    w.zeroGrad();
    w.mul(w).sum().backward();
    assertIdentical('the kept gradient', kept.data, values);
    assertClose('d/dw (w·w)', w.grad!.data, Array.from(wd, (v) => 2 * v), { atol: 1e-5, rtol: 1e-4 });
  });
});
