import { describe, expect, it } from 'vitest';
import { noGrad } from '../../src/autograd.js';
import { gradientNorms, layerWeights, responseStds, tensorStd } from '../../src/experiments/probes.js';
import { cifarResnet } from '../../src/models/cifar.js';
import { Linear } from '../../src/nn/layers.js';
import { crossEntropy } from '../../src/ops/loss.js';
import { manualSeed } from '../../src/random.js';
import { randn, Tensor } from '../../src/tensor.js';

/** Naive double-precision L2 norm. */
const norm = (a: Float32Array): number => Math.sqrt(Array.from(a).reduce((s, v) => s + v * v, 0));

const relClose = (got: number, want: number, rtol: number, what: string): void => {
  expect(Math.abs(got - want), `${what}: ${got} vs ${want}`).toBeLessThanOrEqual(rtol * Math.abs(want) + 1e-30);
};

const snapshot = (sd: Record<string, Tensor>): Record<string, number[]> => Object.fromEntries(Object.entries(sd).map(([k, t]) => [k, Array.from(t.data)]));

const DEPTH8_LAYERS = [
  'conv1.weight',
  'layer1.0.conv1.weight', 'layer1.0.conv2.weight',
  'layer2.0.conv1.weight', 'layer2.0.conv2.weight',
  'layer3.0.conv1.weight', 'layer3.0.conv2.weight',
  'fc.weight',
];

describe('gradientNorms', () => {
  it('equals ‖p.grad‖ from a direct backward pass, layer by layer from input to output (ResNet-8)', () => {
    manualSeed(3);
    const model = cifarResnet(8, { widths: [2, 4, 4], inChannels: 1, numClasses: 3 });
    const x = randn([6, 1, 8, 8]);
    const y = Int32Array.from([0, 1, 2, 0, 1, 2]);
    const probe = gradientNorms(model, x, y);
    expect(probe.layers).toEqual(DEPTH8_LAYERS);

    model.train();
    model.zeroGrad();
    const loss = crossEntropy(model.forward(x), y);
    loss.backward();
    const params = Object.fromEntries(model.namedParameters());
    relClose(probe.loss, loss.item(), 1e-6, 'loss');
    DEPTH8_LAYERS.forEach((name, i) => relClose(probe.norms[i]!, norm(params[name]!.grad!.data), 1e-6, name));
    expect(probe.norms.every((v) => v > 0)).toBe(true);
  });

  it('plain nets too: the same layers, the same agreement (plain-14)', () => {
    manualSeed(4);
    const model = cifarResnet(14, { plain: true, widths: [2, 4, 4], inChannels: 1, numClasses: 3 });
    const x = randn([4, 1, 8, 8]);
    const y = Int32Array.from([2, 1, 0, 1]);
    const probe = gradientNorms(model, x, y);
    expect(probe.layers).toHaveLength(14);
    model.zeroGrad();
    crossEntropy(model.forward(x), y).backward();
    const params = Object.fromEntries(model.namedParameters());
    probe.layers.forEach((name, i) => relClose(probe.norms[i]!, norm(params[name]!.grad!.data), 1e-6, name));
  });

  it('matches the hand-derived gradient of a linear classifier: (1/N) Σ (softmax(z) − onehot) xᵀ', () => {
    const lin = new Linear(3, 2);
    lin.weight.data.set([0.5, -1, 0.25, 1.5, 0.3, -0.7]);
    lin.bias!.data.set([0.1, -0.2]);
    const xs = [[1, 2, -1], [0.5, -0.5, 2], [-1, 0, 1]];
    const ys = [0, 1, 1];
    const g = [[0, 0, 0], [0, 0, 0]];
    xs.forEach((xi, n) => {
      const z = [0, 1].map((o) => lin.bias!.data[o]! + xi.reduce((s, v, k) => s + v * lin.weight.data[o * 3 + k]!, 0));
      const m = Math.max(...z);
      const e = z.map((v) => Math.exp(v - m));
      const sum = e[0]! + e[1]!;
      for (let o = 0; o < 2; o++) for (let k = 0; k < 3; k++) g[o]![k]! += ((e[o]! / sum - (ys[n] === o ? 1 : 0)) * xi[k]!) / xs.length;
    });
    const want = Math.sqrt(g.flat().reduce((s, v) => s + v * v, 0));
    const probe = gradientNorms(lin, new Tensor(Float32Array.from(xs.flat()), [3, 3]), Int32Array.from(ys));
    expect(probe.layers).toEqual(['weight']);
    relClose(probe.norms[0]!, want, 1e-5, 'linear weight');
  });

  it('leaves the model as it found it: mode, gradients, BatchNorm running statistics', () => {
    manualSeed(5);
    const model = cifarResnet(8, { widths: [2, 4, 4], inChannels: 1, numClasses: 3 });
    noGrad(() => model.forward(randn([4, 1, 8, 8]))); // move the running stats away from (0, 1)
    model.eval();
    const sentinel = new Tensor(new Float32Array([7, 7, 7]), [3]);
    model.fc.bias!.grad = sentinel;
    const before = snapshot(model.stateDict());
    gradientNorms(model, randn([4, 1, 8, 8]), Int32Array.from([0, 1, 2, 0]));
    expect(model.training).toBe(false);
    expect(model.fc.bias!.grad).toBe(sentinel);
    expect(model.namedParameters().filter(([n]) => n !== 'fc.bias').every(([, p]) => p.grad === null)).toBe(true);
    expect(snapshot(model.stateDict())).toEqual(before);
  });

  it('skips projection shortcuts: option B nets still report depth layers', () => {
    const model = cifarResnet(8, { widths: [2, 4, 4], inChannels: 1, numClasses: 3, shortcut: 'B' });
    expect(model.namedParameters().some(([n]) => n.includes('downsample') && n.endsWith('weight'))).toBe(true);
    expect(layerWeights(model).map(([n]) => n)).toEqual(DEPTH8_LAYERS);
  });
});

describe('responseStds', () => {
  it('tensorStd is the unbiased std (hand value)', () => {
    expect(tensorStd(new Float32Array([1, 2, 3, 4]))).toBeCloseTo(Math.sqrt(5 / 3), 12);
    expect(tensorStd(new Float32Array([5]))).toBe(0);
  });

  for (const plain of [false, true]) {
    it(`equals the std of bn2(conv2(relu(bn1(conv1(x))))) computed unit by unit (${plain ? 'plain' : 'residual'}-14, eval mode)`, () => {
      manualSeed(6);
      const model = cifarResnet(14, { plain, widths: [2, 4, 4], inChannels: 1, numClasses: 3 });
      // non-trivial BN: random affine parameters and running statistics from a few training-mode batches
      for (const [n, p] of model.namedParameters()) if (/bn\d\.(weight|bias)$/.test(n)) p.data.set(randn([p.size]).data);
      noGrad(() => {
        for (let i = 0; i < 3; i++) model.forward(randn([4, 1, 8, 8]));
      });
      model.train();
      const x = randn([5, 1, 8, 8]);
      const got = responseStds(model, x);
      expect(model.training).toBe(true);
      expect(model.blocks().every((b) => !b.bn2.hasForwardHooks())).toBe(true);

      model.eval();
      const want: number[] = [];
      noGrad(() => {
        let h = model.relu.forward(model.bn1.forward(model.conv1.forward(x)));
        for (const b of model.blocks()) {
          const r = b.bn2.forward(b.conv2.forward(b.relu.forward(b.bn1.forward(b.conv1.forward(h)))));
          const d = Array.from(r.data);
          const mean = d.reduce((s, v) => s + v, 0) / d.length;
          want.push(Math.sqrt(d.reduce((s, v) => s + (v - mean) ** 2, 0) / (d.length - 1)));
          h = b.forward(h);
        }
      });
      expect(got).toHaveLength(6);
      // float32 tolerance: in eval mode without gradients the model's stem (and the direct loop's blocks) take the
      // fused conv+BN path, which rounds differently from the unfused one the probed blocks take
      got.forEach((v, i) => relClose(v, want[i]!, 1e-5, `unit ${i}`));
    });
  }
});
