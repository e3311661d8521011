/**
 * Our ResNet family has torchvision 0.14's architecture: the same state-dict keys, in the same order, with the same
 * shapes, and the same parameter counts (fixture: test/fixtures/models/keys.json, made by gen_models.py). Plus the
 * input and checkpoint errors a user meets first.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { models, ShapeError, StateDictError, Tensor, zeros } from '../../src/index.js';

interface KeysFixture {
  torchvision: string;
  models: Record<string, { params: number; keys: [string, number[]][] }>;
}
const fx = JSON.parse(readFileSync(new URL('../fixtures/models/keys.json', import.meta.url), 'utf8')) as KeysFixture;

const FACTORIES = [
  'resnet18', 'resnet34', 'resnet50', 'resnet101', 'resnet152',
  'resnext50_32x4d', 'resnext101_32x8d', 'resnext101_64x4d', 'wide_resnet50_2', 'wide_resnet101_2',
] as const;
type Factory = (typeof FACTORIES)[number];

const isBuffer = (k: string): boolean => /\.(running_mean|running_var|num_batches_tracked)$/.test(k);
const show = (e: [string, readonly number[]] | undefined): string => (e ? `${e[0]} [${e[1].join(', ')}]` : '(none)');

/** The first place two [key, shape] lists differ, or null. */
function firstDifference(ours: [string, readonly number[]][], ref: [string, number[]][]): string | null {
  const n = Math.max(ours.length, ref.length);
  for (let i = 0; i < n; i++) {
    const a = ours[i];
    const b = ref[i];
    if (!a || !b || a[0] !== b[0] || a[1].length !== b[1].length || a[1].some((d, j) => d !== b[1][j])) {
      return `entry ${i} of ${ours.length} (torchvision has ${ref.length}): ours ${show(a)}, torchvision ${show(b)}`;
    }
  }
  return null;
}

describe('torchvision 0.14 architectures', () => {
  it('fixture covers every factory and the published parameter counts', () => {
    expect(Object.keys(fx.models)).toEqual([...FACTORIES]);
    // torchvision's documented counts (weights metadata "num_params"), independent of the generator
    const published: Partial<Record<Factory, number>> = {
      resnet18: 11_689_512, resnet34: 21_797_672, resnet50: 25_557_032, resnet101: 44_549_160, resnet152: 60_192_808,
      resnext50_32x4d: 25_028_904, resnext101_32x8d: 88_791_336, resnext101_64x4d: 83_455_272,
      wide_resnet50_2: 68_883_240, wide_resnet101_2: 126_886_696,
    };
    for (const name of FACTORIES) expect(fx.models[name]!.params, name).toBe(published[name]);
  });

  for (const name of FACTORIES) {
    it(`${name}: state-dict keys and shapes in order, parameters vs buffers, parameter count`, () => {
      const ref = fx.models[name]!;
      const m = models[name]();
      const ours = Object.entries(m.stateDict()).map(([k, t]): [string, readonly number[]] => [k, t.shape]);
      expect(firstDifference(ours, ref.keys)).toBeNull();
      // parameters are exactly the non-buffer entries, in the same order (what optimizers and checkpoints rely on)
      const params = m.namedParameters();
      expect(params.map(([k]) => k)).toEqual(ref.keys.map(([k]) => k).filter((k) => !isBuffer(k)));
      expect(params.reduce((s, [, p]) => s + p.size, 0)).toBe(ref.params);
      expect(params.every(([, p]) => p.requiresGrad)).toBe(true);
    });
  }
});

describe('bad inputs and checkpoints', () => {
  it('resnet50 given a 4-channel image: ShapeError naming both channel counts and the shape', () => {
    const m = models.resnet50().eval();
    const x = zeros([2, 4, 32, 32]);
    expect(() => m.forward(x)).toThrow(ShapeError);
    expect(() => m.forward(x)).toThrow(/3 channels/);
    expect(() => m.forward(x)).toThrow(/got 4 channels/);
    expect(() => m.forward(x)).toThrow('[2, 4, 32, 32]');
  });

  it('resnet18 given a 3-D input (no batch dim): ShapeError with the shape', () => {
    const m = models.resnet18().eval();
    const x = zeros([3, 32, 32]);
    expect(() => m.forward(x)).toThrow(ShapeError);
    expect(() => m.forward(x)).toThrow(/4-D/);
    expect(() => m.forward(x)).toThrow('[3, 32, 32]');
  });

  it('resnet34 state dict into resnet18: StateDictError listing every unexpected key, nothing missing', () => {
    const m = models.resnet18();
    const sd: Record<string, Tensor> = {};
    for (const [k, shape] of fx.models.resnet34!.keys) sd[k] = zeros(shape);
    const r18 = new Set(fx.models.resnet18!.keys.map(([k]) => k));
    const extra = fx.models.resnet34!.keys.map(([k]) => k).filter((k) => !r18.has(k));
    expect(extra.length).toBeGreaterThan(0);
    expect(extra).toContain('layer1.2.conv1.weight');
    let err: unknown;
    try {
      m.loadStateDict(sd);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StateDictError);
    const msg = (err as Error).message;
    expect(msg).toContain('Unexpected key(s) in state_dict');
    for (const k of extra) expect(msg).toContain(`"${k}"`);
    expect(msg).not.toContain('Missing key(s)');
    expect(msg).not.toContain('size mismatch');
  });

  it('numClasses=10 fc into a 1000-class resnet18: size mismatch messages for fc.weight and fc.bias', () => {
    const m = models.resnet18();
    const sd = models.resnet18({ numClasses: 10 }).stateDict();
    expect(() => m.loadStateDict(sd)).toThrow(StateDictError);
    expect(() => m.loadStateDict(sd)).toThrow(
      'size mismatch for fc.weight: copying a param with shape [10, 512] from checkpoint, the shape in current model is [1000, 512].',
    );
    expect(() => m.loadStateDict(sd)).toThrow(
      'size mismatch for fc.bias: copying a param with shape [10] from checkpoint, the shape in current model is [1000].',
    );
  });
});
