import { describe, expect, it } from 'vitest';
import { manualSeed, models, nn, noGrad, randn, type Tensor } from '../../src/index.js';
import { withoutFusion } from '../../src/ops/fused.js';

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

function compare(make: () => nn.Module, shape: number[]): { maxAbs: number; scale: number } {
  manualSeed(11);
  const m = make().eval();
  perturbBn(m);
  const x = randn(shape);
  const fusedY: Tensor = noGrad(() => m.forward(x));
  const plainY: Tensor = noGrad(() => withoutFusion(() => m.forward(x)));
  let maxAbs = 0, scale = 0;
  for (let i = 0; i < fusedY.size; i++) {
    maxAbs = Math.max(maxAbs, Math.abs(fusedY.data[i]! - plainY.data[i]!));
    scale = Math.max(scale, Math.abs(plainY.data[i]!));
  }
  return { maxAbs, scale };
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
  ];
  for (const [name, make, shape] of cases) {
    it(name, () => {
      const { maxAbs, scale } = compare(make, shape);
      expect(scale).toBeGreaterThan(0);
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
