import { describe, expect, it } from 'vitest';
import { manualSeed, models, nn, noGrad, randn, type Tensor } from '../../src/index.js';
import { withConfig } from '../../src/config.js';
import { convBnAct, fusedConvBnAct } from '../../src/fusion/conv-bn.js';
import { arenaBytes, emptyArena, withArena } from '../../src/fusion/arena.js';

const withoutFusion = <T>(fn: () => T): T => withConfig({ fusion: false }, fn);

/** Randomizes BN running stats and affine parameters so that folding them is not the identity. */
function perturbBn(m: nn.Module): void {
  for (const [, mod] of m.namedModules()) {
    if (!(mod instanceof nn.BatchNorm2d)) continue;
    const c = mod.numFeatures;
    const r = randn([4, c]).data;
    for (let i = 0; i < c; i++) {
      mod.runningMean!.data[i] = 0.1 * r[i]!;
      mod.runningVar!.data[i] = 1 + 0.5 * Math.abs(r[c + i]!);
      mod.weight!.data[i] = 1 + 0.2 * r[2 * c + i]!;
      mod.bias!.data[i] = 0.1 * r[3 * c + i]!;
    }
  }
}

function compare(make: () => nn.Module, shape: number[]): { maxAbs: number; scale: number; differ: number } {
  manualSeed(11);
  const m = make().eval();
  perturbBn(m);
  const x = randn(shape);
  const fusedY: Tensor = noGrad(() => m.forward(x));
  const plainY: Tensor = noGrad(() => withoutFusion(() => m.forward(x)));
  let maxAbs = 0, scale = 0, differ = 0;
  for (let i = 0; i < fusedY.size; i++) {
    maxAbs = Math.max(maxAbs, Math.abs(fusedY.data[i]! - plainY.data[i]!));
    scale = Math.max(scale, Math.abs(plainY.data[i]!));
    if (fusedY.data[i] !== plainY.data[i]) differ++;
  }
  return { maxAbs, scale, differ };
}

describe('inference fusion (BN folded into the conv, ReLU and residual fused) equals the layer-by-layer model', () => {
  // atol 1e-5·max|y|: the fused path rounds once where the unfused rounds after conv, BN, add and relu
  const cases: [string, () => nn.Module, number[]][] = [
    ['resnet18 at 2×3×48×48', () => models.resnet18({ numClasses: 10 }), [2, 3, 48, 48]],
    ['resnet50 at 1×3×64×64', () => models.resnet50({ numClasses: 10 }), [1, 3, 64, 64]],
    ['resnext50_32x4d at 1×3×32×32', () => models.resnext50_32x4d({ numClasses: 10 }), [1, 3, 32, 32]],
    ['resnet20 (option A) at 2×3×32×32', () => models.resnet20(), [2, 3, 32, 32]],
    ['resnet20 (option B) at 2×1×28×28', () => models.resnet20({ shortcut: 'B', inChannels: 1 }), [2, 1, 28, 28]],
    ['plain20 at 2×3×32×32', () => models.plain20(), [2, 3, 32, 32]],
    ['preactResnet18 at 1×3×64×64', () => models.preactResnet18({ numClasses: 10 }), [1, 3, 64, 64]],
    ['pre-activation CIFAR bottleneck net (n=2) at 2×3×32×32', () => new models.PreActCifarResNet(models.PreActBottleneck, 2), [2, 3, 32, 32]],
  ];
  for (const [name, make, shape] of cases) {
    it(name, () => {
      const { maxAbs, scale, differ } = compare(make, shape);
      expect(scale).toBeGreaterThan(0);
      expect(differ, 'the fused kernels ran: they round differently from the layer-by-layer ops somewhere').toBeGreaterThan(0);
      expect(maxAbs).toBeLessThanOrEqual(1e-5 * scale);
    });
  }

  it('training mode and gradients are untouched: eval with gradients on takes the layer-by-layer ops', () => {
    manualSeed(12);
    const m = models.resnet20().eval();
    const x = randn([1, 3, 32, 32]);
    const y = m.forward(x); // gradients on: the graph must exist
    expect(y.gradFn).not.toBeNull();
    y.sum().backward();
    expect(m.conv1.weight.grad).not.toBeNull();
  });
});

describe('inference buffer arena (withArena)', () => {
  const isShared = (d: Float32Array) => d.buffer instanceof SharedArrayBuffer;

  it('buffers made in one scope are shared and come back as fused outputs in the next; old contents do not leak in', () => {
    manualSeed(13);
    emptyArena();
    const conv = new nn.Conv2d(8, 8, 3, { padding: 1 });
    const bn = new nn.BatchNorm2d(8).eval();
    const x = randn([1, 8, 48, 48]);
    const plain: Tensor = noGrad(() => fusedConvBnAct(x, conv, bn, { relu: true }));
    expect(isShared(plain.data)).toBe(false);
    // Scope 1: two outputs; the first dies in the scope, the second is returned and kept.
    let dead: Float32Array | null = null;
    const kept: Tensor = noGrad(() => withArena(() => {
      const a = fusedConvBnAct(x, conv, bn, { relu: true });
      dead = a.data;
      return fusedConvBnAct(a, conv, bn, { relu: true });
    }));
    expect(dead).not.toBeNull();
    const keptCopy = Array.from(kept.data);
    // Scope 2: the dead buffer, now shared, is the output; the returned one is untouched.
    const y: Tensor = noGrad(() => withArena(() => {
      const t = fusedConvBnAct(x, conv, bn, { relu: true });
      t.data.fill(123);
      return t;
    }));
    expect(isShared(y.data)).toBe(true);
    expect(y.data).not.toBe(kept.data);
    expect(Array.from(kept.data)).toEqual(keptCopy);
    // Scope 3: y was returned, so it is not reused; the pool is empty and the output is new memory, shared at once.
    const z: Tensor = noGrad(() => withArena(() => fusedConvBnAct(x, conv, bn, { relu: true })));
    expect(z.data).not.toBe(y.data);
    expect(z.data).not.toBe(kept.data);
    expect(isShared(z.data)).toBe(true);
    expect(Array.from(z.data)).toEqual(Array.from(plain.data));
    // A scope that drops its result gives it back: the next scope's output reuses it and old values do not leak in.
    noGrad(() => withArena(() => void fusedConvBnAct(x, conv, bn, { relu: true }).data.fill(7)));
    const u: Tensor = noGrad(() => withArena(() => fusedConvBnAct(x, conv, bn, { relu: true })));
    expect(isShared(u.data)).toBe(true);
    expect(Array.from(u.data)).toEqual(Array.from(plain.data));
    emptyArena();
  });

  it("a Sequential gives back its child's intermediates when the child returns, all but the returned tensor's buffer", () => {
    manualSeed(17);
    emptyArena();
    const conv = new nn.Conv2d(8, 8, 3, { padding: 1 }).eval();
    const bn = new nn.BatchNorm2d(8).eval();
    perturbBn(bn);
    const fused = (t: Tensor): Tensor => convBnAct(t, conv, bn);
    // Three fused convs of 8×48×48 (18432 floats, above config.arenaMinLength); returns a view of the last.
    class Block extends nn.Module {
      forward(t: Tensor): Tensor {
        return fused(fused(fused(t))).reshape([1, 8, 2304]);
      }
    }
    // Sees the pool between the children (no hook: a hook turns the arena's early returns off).
    const seen: number[] = [];
    class Probe extends nn.Module {
      forward(t: Tensor): Tensor {
        seen.push(arenaBytes());
        return fused(t.reshape([1, 8, 48, 48]));
      }
    }
    const net = new nn.Sequential(new Block(), new Probe());
    const x = randn([1, 8, 48, 48]);
    const plain: Tensor = noGrad(() => net.forward(x)); // fused, outside any scope
    expect(seen).toEqual([0]);
    seen.length = 0;
    const y: Tensor = noGrad(() => withArena(() => net.forward(x)));
    // The block's first two outputs were back in the pool while the probe ran; its returned view's buffer was not
    // (the probe's conv took one of the two and wrote over it, and the result is right).
    expect(seen).toEqual([2 * 18432 * 4]);
    expect(Array.from(y.data)).toEqual(Array.from(plain.data));
    emptyArena();
  });

  it('keeps small buffers out, and outside a scope takes nothing from the pool', () => {
    emptyArena();
    const conv = new nn.Conv2d(4, 4, 1, { bias: false });
    noGrad(() => withArena(() => void fusedConvBnAct(randn([1, 4, 8, 8]), conv, null)));
    const y: Tensor = noGrad(() => withArena(() => fusedConvBnAct(randn([1, 4, 8, 8]), conv, null)));
    expect(isShared(y.data)).toBe(false);
    const conv8 = new nn.Conv2d(8, 8, 1, { bias: false });
    noGrad(() => withArena(() => void fusedConvBnAct(randn([1, 8, 48, 48]), conv8, null)));
    const outside: Tensor = noGrad(() => fusedConvBnAct(randn([1, 8, 48, 48]), conv8, null));
    expect(isShared(outside.data)).toBe(false);
    emptyArena();
  });

  it('convBnAct over modules runs a hooked conv, BN or ReLU through its own forward, so the hook sees it', () => {
    manualSeed(15);
    const conv = new nn.Conv2d(3, 4, 3, { padding: 1 }).eval();
    const bn = new nn.BatchNorm2d(4).eval();
    const act = new nn.ReLU();
    const x = randn([1, 3, 6, 6]);
    const seen: string[] = [];
    const h = bn.registerForwardHook((_, _x, y) => void seen.push(`bn ${y.shape.join('x')}`));
    const hooked: Tensor = noGrad(() => convBnAct(x, conv, bn, { act }));
    expect(seen).toEqual(['bn 1x4x6x6']);
    h.remove();
    const fused: Tensor = noGrad(() => convBnAct(x, conv, bn, { act }));
    expect(seen).toEqual(['bn 1x4x6x6']);
    const plain: Tensor = noGrad(() => withoutFusion(() => convBnAct(x, conv, bn, { act })));
    expect(Array.from(hooked.data)).toEqual(Array.from(plain.data));
    let maxAbs = 0;
    for (let i = 0; i < fused.size; i++) maxAbs = Math.max(maxAbs, Math.abs(fused.data[i]! - plain.data[i]!));
    expect(maxAbs).toBeLessThanOrEqual(1e-5 * Math.max(...plain.data));
  });

  const reuseCases: [string, () => nn.Module, number[], number[]][] = [
    ['resnet18', () => models.resnet18({ numClasses: 10 }), [1, 3, 64, 64], [2, 3, 48, 48]],
    ['resnet20 (option A)', () => models.resnet20(), [4, 3, 32, 32], [3, 3, 32, 32]],
    ['resnet20 (option B, 1 channel)', () => models.resnet20({ shortcut: 'B', inChannels: 1 }), [4, 1, 28, 28], [2, 1, 28, 28]],
    ['preact_resnet18', () => models.preactResnet18({ numClasses: 10 }), [1, 3, 64, 64], [2, 3, 48, 48]],
  ];
  const scopes: [string, (m: nn.Module, x: Tensor) => Tensor][] = [
    ['withArena', (m, x) => noGrad(() => withArena(() => m.forward(x)))],
    ['plain noGrad (the model scopes itself)', (m, x) => noGrad(() => m.forward(x))],
  ];
  for (const [name, make, s1, s2] of reuseCases) for (const [scope, forward] of scopes) {
    it(`repeated eval forwards of ${name}, ${scope}, give the same bits and leave the input and earlier outputs intact`, () => {
      manualSeed(14);
      emptyArena();
      const m = make().eval();
      perturbBn(m);
      const x1 = randn(s1);
      const x2 = randn(s2);
      const x1Copy = Array.from(x1.data);
      const run = (x: Tensor): Tensor => forward(m, x);
      const y1 = run(x1);
      const y1Copy = Array.from(y1.data);
      const y2 = run(x2);
      const y1b = run(x1);
      const y2b = run(x2);
      expect(Array.from(y1.data)).toEqual(y1Copy);
      expect(Array.from(y1b.data)).toEqual(y1Copy);
      expect(Array.from(y2b.data)).toEqual(Array.from(y2.data));
      expect(Array.from(x1.data)).toEqual(x1Copy);
      const plain: Tensor = noGrad(() => withoutFusion(() => m.forward(x1)));
      let maxAbs = 0, scale = 0;
      for (let i = 0; i < plain.size; i++) {
        maxAbs = Math.max(maxAbs, Math.abs(y1b.data[i]! - plain.data[i]!));
        scale = Math.max(scale, Math.abs(plain.data[i]!));
      }
      expect(maxAbs).toBeLessThanOrEqual(1e-5 * scale);
      // The activations went back to the pool: the next forward reuses them.
      expect(arenaBytes()).toBeGreaterThan(0);
      emptyArena();
    });
  }

  it('a plain eval forward recycles nothing while a forward hook may keep an output, nor with gradients on', () => {
    manualSeed(16);
    emptyArena();
    const m = models.resnet18({ numClasses: 10 }).eval();
    perturbBn(m);
    const x = randn([1, 3, 64, 64]);
    const xb = randn([1, 3, 64, 64]);
    const kept: Tensor[] = [];
    const h = (m as unknown as { layer2: nn.Module }).layer2.registerForwardHook((_, _x, y) => void kept.push(y));
    noGrad(() => m.forward(x));
    const first = Array.from(kept[0]!.data);
    noGrad(() => m.forward(xb));
    noGrad(() => m.forward(x));
    expect(arenaBytes()).toBe(0);
    expect(Array.from(kept[0]!.data)).toEqual(first);
    expect(Array.from(kept[2]!.data)).toEqual(first);
    h.remove();
    m.forward(x);
    expect(arenaBytes()).toBe(0);
    m.train();
    noGrad(() => m.forward(x));
    expect(arenaBytes()).toBe(0);
  });
});
