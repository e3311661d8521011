import { describe, expect, it } from 'vitest';
import { manualSeed, models, nn, noGrad, randn, ValueError, type Tensor } from '../../src/index.js';
import { crossEntropy } from '../../src/ops/loss.js';
import { convBnAct } from '../../src/fusion/conv-bn.js';

const same = (a: Tensor, b: Tensor) => expect(Array.from(a.data)).toEqual(Array.from(b.data));

describe('forward hooks (PyTorch semantics)', () => {
  it('pre-hooks see (and may replace) the input, hooks see input and output (and may replace it), in registration order', () => {
    manualSeed(1);
    const lin = new nn.Linear(3, 2);
    const x = randn([4, 3]);
    const calls: string[] = [];
    const h1 = lin.registerForwardPreHook((m, inp) => {
      calls.push(`pre1 ${m === lin} ${inp === x}`);
      return inp.mul(2);
    });
    const h2 = lin.registerForwardPreHook((_, inp) => void calls.push(`pre2 ${inp === x}`));
    let seenOut: Tensor | null = null;
    const h3 = lin.registerForwardHook((_, inp, out) => {
      calls.push(`hook1 ${inp === x}`);
      seenOut = out;
      return out.add(1);
    });
    const y = lin.forward(x);
    expect(calls).toEqual(['pre1 true true', 'pre2 false', 'hook1 false']);
    const want = noGrad(() => nn.functional.linear(x.mul(2), lin.weight, lin.bias).add(1));
    same(y, want);
    same(seenOut!, noGrad(() => nn.functional.linear(x.mul(2), lin.weight, lin.bias)));
    for (const h of [h1, h2, h3]) h.remove();
    h1.remove(); // a second remove does nothing
    expect(lin.hasForwardHooks()).toBe(false);
    calls.length = 0;
    same(lin.forward(x), nn.functional.linear(x, lin.weight, lin.bias));
    expect(calls).toEqual([]);
  });

  it("a child's hook fires when the parent's forward calls it, once per call, also in eval under noGrad (fusion steps aside)", () => {
    manualSeed(2);
    const m = models.resnet20().eval();
    const x = randn([2, 3, 32, 32]);
    const shapes: string[] = [];
    const h = (m.layer2.at(0) as models.CifarBasicBlock).bn2.registerForwardHook((_, _x, y) => void shapes.push(y.shape.join('x')));
    const y1: Tensor = noGrad(() => m.forward(x));
    h.remove();
    const y2: Tensor = noGrad(() => m.forward(x));
    expect(shapes).toEqual(['2x32x16x16']);
    // within rounding: one unit ran layer by layer
    let maxAbs = 0;
    for (let i = 0; i < y1.size; i++) maxAbs = Math.max(maxAbs, Math.abs(y1.data[i]! - y2.data[i]!));
    expect(maxAbs).toBeLessThanOrEqual(1e-5 * Math.max(...y2.data.map(Math.abs)));
  });
});

describe('models.featureExtractor', () => {
  it("resnet18 ['layer3', 'layer4'] equals the stages run by hand, and stops after layer4 (fc never runs)", () => {
    manualSeed(3);
    const m = models.resnet18({ numClasses: 10 }).eval();
    const x = randn([1, 3, 64, 64]);
    let fcCalls = 0;
    const h = m.fc.registerForwardHook(() => void fcCalls++);
    const f: Record<string, Tensor> = noGrad(() => models.featureExtractor(m, ['layer3', 'layer4']).forward(x));
    expect(fcCalls).toBe(0);
    h.remove();
    expect(Object.keys(f)).toEqual(['layer3', 'layer4']);
    expect(f.layer3!.shape).toEqual([1, 256, 4, 4]);
    expect(f.layer4!.shape).toEqual([1, 512, 2, 2]);
    const want = noGrad(() => {
      // The stem through convBnAct, as the model's forward runs it (in eval its fused kernel).
      const stem = m.maxpool.forward(convBnAct(x, m.conv1, m.bn1, { act: m.relu }));
      const l3 = m.layer3.forward(m.layer2.forward(m.layer1.forward(stem)));
      return { l3, l4: m.layer4.forward(l3) };
    });
    same(f.layer3!, want.l3);
    same(f.layer4!, want.l4);
  });

  it('renames outputs with a record, and rejects an unknown name, naming the model and its submodules', () => {
    const m = models.resnet20();
    const f = noGrad(() => models.featureExtractor(m, { 'layer1.0': 'first' }).forward(randn([1, 3, 32, 32])));
    expect(Object.keys(f)).toEqual(['first']);
    expect(() => models.featureExtractor(m, ['layer9'])).toThrow(ValueError);
    expect(() => models.featureExtractor(m, ['layer9'])).toThrow(/ResNet20 has no submodule 'layer9'.*layer1, layer2, layer3/);
  });
});

describe('Module.requiresGrad_ (freezing for fine-tuning)', () => {
  it('a frozen backbone gets no gradients; the new head does, and the frozen weights are what the step leaves alone', () => {
    manualSeed(4);
    const m = models.resnet20({ numClasses: 3 });
    m.requiresGrad_(false);
    m.fc.requiresGrad_(true);
    expect(m.parameters().filter((p) => p.requiresGrad).length).toBe(2);
    const loss = crossEntropy(m.forward(randn([4, 3, 32, 32])), [0, 1, 2, 0]);
    loss.backward();
    expect(m.conv1.weight.grad).toBeNull();
    expect((m.layer3.at(2) as models.CifarBasicBlock).bn2.weight!.grad).toBeNull();
    expect(m.fc.weight.grad).not.toBeNull();
    expect(m.fc.bias!.grad).not.toBeNull();
  });
});
