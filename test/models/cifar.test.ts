import { describe, expect, it } from 'vitest';
import { models, nn, noGrad, randn, manualSeed, ShapeError } from '../../src/index.js';

const count = (m: nn.Module): number => m.parameters().reduce((s, p) => s + p.size, 0);
const convs = (m: nn.Module): number => m.namedModules().filter(([, x]) => x instanceof nn.Conv2d).length;
const linears = (m: nn.Module): number => m.namedModules().filter(([, x]) => x instanceof nn.Linear).length;

describe('CIFAR ResNets of He et al. 2015 §4.2 (Table 6)', () => {
  // paper: 0.27M, 0.46M, 0.66M, 0.85M, 1.7M, 19.4M parameters; depth 6n + 2 weighted layers
  const table = [
    ['resnet20', 3, 0.27], ['resnet32', 5, 0.46], ['resnet44', 7, 0.66], ['resnet56', 9, 0.85], ['resnet110', 18, 1.7], ['resnet1202', 200, 19.4],
  ] as const;
  for (const [name, n, millions] of table) {
    it(`${name}: ${6 * n + 2} weighted layers, ${millions}M parameters as in the paper`, () => {
      const m = models[name]();
      expect(convs(m) + linears(m)).toBe(6 * n + 2); // option A adds no layers
      const digits = millions < 1 ? 2 : 1;
      expect(Number((count(m) / 1e6).toFixed(digits))).toBe(millions);
    });
  }

  it('resnet20 exact count 269,722; plain20 has the same weights without shortcuts', () => {
    expect(count(models.resnet20())).toBe(269_722);
    expect(count(models.plain20())).toBe(269_722);
    // option B adds two 1×1 projections + BN: 16·32 + 2·32 + 32·64 + 2·64
    expect(count(models.resnet20({ shortcut: 'B' }))).toBe(269_722 + 16 * 32 + 64 + 32 * 64 + 128);
    expect(convs(models.resnet20({ shortcut: 'B' }))).toBe(21);
  });

  it('stage shapes: 16×32×32 → 32×16×16 → 64×8×8, logits (N, 10); Fashion-MNIST has 1 channel', () => {
    manualSeed(0);
    const m = models.resnet20({ inChannels: 1 }).eval();
    const s = models.summary(m, [2, 1, 28, 28]);
    const shape = (name: string) => s.rows.find((r) => r.name === name)!.outputShape;
    expect(shape('layer1')).toEqual([2, 16, 28, 28]);
    expect(shape('layer2')).toEqual([2, 32, 14, 14]);
    expect(shape('layer3')).toEqual([2, 64, 7, 7]);
    expect(shape('fc')).toEqual([2, 10]);
    expect(() => m.forward(randn([2, 3, 28, 28]))).toThrow(ShapeError);
    expect(() => m.forward(randn([2, 3, 28, 28]))).toThrow(/ResNet20\] expected input\[2, 3, 28, 28\] to have 1 channels/);
  });

  it('option A: the first unit of a stage adds x[:, :, ::2, ::2] with zero channels (a zero residual passes it through)', () => {
    manualSeed(1);
    const m = models.resnet20().eval();
    const unit = m.layer2.at(0) as models.CifarBasicBlock;
    unit.bn2.weight!.data.fill(0);
    unit.bn2.bias!.data.fill(0);
    const x = randn([1, 16, 8, 8]).relu();
    const y = noGrad(() => unit.forward(x));
    expect(y.shape).toEqual([1, 32, 4, 4]);
    for (let c = 0; c < 32; c++)
      for (let i = 0; i < 4; i++)
        for (let j = 0; j < 4; j++) {
          const want = c >= 8 && c < 24 ? x.data[(c - 8) * 64 + 2 * i * 8 + 2 * j]! : 0;
          expect(y.data[c * 16 + i * 4 + j]).toBe(want);
        }
  });

  it('plain nets have no shortcuts: a unit with zeroed BN gives relu(0) = 0', () => {
    const m = models.plain20().eval();
    const unit = m.layer1.at(1) as models.CifarBasicBlock;
    unit.bn2.weight!.data.fill(0);
    unit.bn2.bias!.data.fill(0);
    const y = noGrad(() => unit.forward(randn([1, 16, 8, 8])));
    expect(Math.max(...y.data)).toBe(0);
  });
});

describe('pre-activation ResNets (He et al. 2016)', () => {
  it('preactResnet164 ≈ 1.7M and preactResnet1001 ≈ 10.2M parameters as in the paper (1001: without BN); 110 ≈ 1.7M', () => {
    expect(Number((count(models.preactResnet164()) / 1e6).toFixed(1))).toBe(1.7);
    expect(Number((count(models.preactResnet110()) / 1e6).toFixed(1))).toBe(1.7);
    // ResNet-1001: 10,327,706 in all; the paper's 10.2M matches the conv + fc weights (10,178,490) — BN's 149,216
    // scale/shift parameters are what the paper's figure leaves out
    const m = models.preactResnet1001();
    const bn = m.namedModules().filter(([, x]) => x instanceof nn.BatchNorm2d).reduce((s, [, x]) => s + 2 * (x as nn.BatchNorm2d).numFeatures, 0);
    expect(count(m)).toBe(10_327_706);
    expect(Number(((count(m) - bn) / 1e6).toFixed(1))).toBe(10.2);
    expect(convs(m) + linears(m)).toBe(1001 + 3); // 9n + 2 = 1001 weighted layers plus each stage's 1×1 projection
  });

  it('units are BN → ReLU → conv with nothing after the addition (zeroed last conv = identity)', () => {
    manualSeed(2);
    const m = models.preactResnet18({ numClasses: 10 }).eval();
    const unit = m.layer1.at(1) as models.PreActBasicBlock;
    unit.conv2.weight.data.fill(0);
    const x = randn([1, 64, 8, 8]); // negative values too: nothing after the add may clip them
    const y = noGrad(() => unit.forward(x));
    expect(Array.from(y.data)).toEqual(Array.from(x.data));
    expect(noGrad(() => m.forward(randn([1, 3, 64, 64]))).shape).toEqual([1, 10]);
  });
});

describe('summary', () => {
  it('ResNet-50 at 1×3×224×224: 25,557,032 parameters and about 4.1 G multiply-adds', () => {
    const s = models.summary(models.resnet50(), [1, 3, 224, 224]);
    expect(s.totalParams).toBe(25_557_032);
    expect(s.totalMacs).toBe(4_089_184_256);
    expect(s.text).toContain('Total params: 25,557,032');
    expect(s.rows.find((r) => r.name === 'layer1.0.conv2')).toMatchObject({ type: 'Conv2d', outputShape: [1, 64, 56, 56], params: 36_864, macs: 115_605_504 });
  });

  it('the bottleneck arithmetic: 69,632 conv weights vs 1,179,648 for two 3×3 convs at 256 channels', () => {
    const a = { stride: 1, downsample: null, groups: 1, baseWidth: 64, dilation: 1 };
    const convWeights = (m: nn.Module) => m.namedParameters().filter(([k]) => k.startsWith('conv')).reduce((s, [, p]) => s + p.size, 0);
    expect(convWeights(new models.Bottleneck({ ...a, inPlanes: 256, planes: 64 }))).toBe(1 * 1 * 256 * 64 + 3 * 3 * 64 * 64 + 1 * 1 * 64 * 256);
    expect(convWeights(new models.BasicBlock({ ...a, inPlanes: 256, planes: 256 }))).toBe(3 * 3 * 256 * 256 * 2);
    expect(1 * 1 * 256 * 64 + 3 * 3 * 64 * 64 + 1 * 1 * 64 * 256).toBe(69_632);
  });
});
