import { describe, expect, it } from 'vitest';
import { models, nn, noGrad, zeros, transpose, type Tensor } from '../../src/index.js';
import { manualSeed } from '../../src/random.js';

/** The reference: every module's output shape and conv/linear multiply-adds from a real forward on zeros. */
function realForward(model: nn.Module, shape: number[]): Map<string, { shape: number[]; macs: number }> {
  const seen = new Map<string, { shape: number[]; macs: number }>();
  const handles = model.namedModules().slice(1).map(([name, m]) => m.registerForwardHook((_, _x, y) => {
    const prev = seen.get(name)?.macs ?? 0;
    let macs = 0;
    if (m instanceof nn.Conv2d) macs = y.size * (m.inChannels / m.groups) * m.kernelSize[0] * m.kernelSize[1];
    if (m instanceof nn.Linear) macs = y.size * m.inFeatures;
    seen.set(name, { shape: y.shape.slice(), macs: prev + macs });
  }));
  const was = model.training;
  model.eval();
  try {
    noGrad(() => model.forward(zeros(shape)));
  } finally {
    handles.forEach((h) => h.remove());
    model.train(was);
  }
  return seen;
}

describe('summary computes shapes without data', () => {
  const cases: [string, () => nn.Module, number[]][] = [
    ['resnet18', () => models.resnet18(), [2, 3, 64, 48]],
    ['resnet50 (a quarter wide)', () => models.resnet50({ widthPerGroup: 16 }), [1, 3, 96, 96]],
    ['resnext50_32x4d', () => models.resnext50_32x4d({ numClasses: 7 }), [1, 3, 65, 65]],
    ['resnet20, option A', () => models.resnet20({ inChannels: 1 }), [3, 1, 28, 28]],
    ['resnet20, option B', () => models.resnet20({ shortcut: 'B' }), [2, 3, 33, 31]],
    ['plain20', () => models.plain20(), [2, 3, 32, 32]],
    ['preactResnet18', () => models.preactResnet18({ numClasses: 5 }), [1, 3, 70, 70]],
    ['preactResnet110', () => models.preactResnet110(), [2, 3, 32, 32]],
  ];
  for (const [name, make, shape] of cases) {
    it(`${name} at ${shape.join('×')}: the same rows as a real forward`, () => {
      manualSeed(0);
      const m = make();
      const ref = realForward(m, shape);
      const s = models.summary(m, shape);
      expect(m.training).toBe(true);
      expect(s.rows.length).toBe(m.namedModules().length - 1);
      for (const r of s.rows) {
        expect(r.outputShape, r.name).toEqual(ref.get(r.name)?.shape ?? null);
        expect(r.macs, r.name).toBe(ref.get(r.name)?.macs ?? 0);
      }
      expect(s.rows.find((r) => r.outputShape !== null)).toBeDefined();
    });
  }

  it('ResNet-50 on 1×3×8192×8192 (a real forward would need over 10 GB): shapes in well under a second', () => {
    const m = models.resnet50();
    const cpu0 = process.cpuUsage();
    const rss0 = process.memoryUsage().rss;
    const s = models.summary(m, [1, 3, 8192, 8192]);
    const cpu = process.cpuUsage(cpu0);
    const grew = process.memoryUsage().rss - rss0;
    const shape = (n: string) => s.rows.find((r) => r.name === n)!.outputShape;
    expect(shape('conv1')).toEqual([1, 64, 4096, 4096]);
    expect(shape('layer4')).toEqual([1, 2048, 256, 256]);
    expect(shape('fc')).toEqual([1, 1000]);
    // conv1 alone: 64·4096² outputs × 3·7·7 multiply-adds each
    expect(s.rows.find((r) => r.name === 'conv1')!.macs).toBe(64 * 4096 * 4096 * 147);
    expect((cpu.user + cpu.system) / 1e6).toBeLessThan(1);
    expect(grew).toBeLessThan(200 * 2 ** 20);
  });

  it('a module whose output does not keep the batch first: the summary falls back to a real forward', () => {
    class SwapNC extends nn.Module {
      conv = new nn.Conv2d(2, 4, 3);
      forward(x: Tensor): Tensor {
        return transpose(this.conv.forward(x), 0, 1);
      }
    }
    class Net extends nn.Module {
      swap = new SwapNC();
      forward(x: Tensor): Tensor {
        return this.swap.forward(x);
      }
    }
    const s = models.summary(new Net(), [3, 2, 8, 8]);
    expect(s.rows.map((r) => r.outputShape)).toEqual([[4, 3, 6, 6], [3, 4, 6, 6]]);
    expect(s.totalMacs).toBe(3 * 4 * 6 * 6 * 2 * 9);
  });
});
