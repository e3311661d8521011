import { describe, expect, it } from 'vitest';
import { Tensor, Generator, ShapeError, ValueError } from '../../src/index.js';
import { normalize, randomCrop, randomHorizontalFlip, compose, cifarTrainTransform } from '../../src/data/index.js';

const T = (data: number[], shape: number[]) => new Tensor(Float32Array.from(data), shape);

describe('normalize', () => {
  it('(x − mean_c)/std_c per channel, hand-computed', () => {
    const x = T([1, 2, 3, 4, 10, 20, 30, 40], [2, 2, 2]); // C=2, 2×2
    const y = normalize([1, 10], [2, 5])(x, new Generator(0));
    expect(y.shape).toEqual([2, 2, 2]);
    expect(Array.from(y.data)).toEqual([0, 0.5, 1, 1.5, 0, 2, 4, 6]);
  });
  it('batch: the same per-channel statistics for every image', () => {
    const x = T([0.5, 0.25, 0.5, 0.25], [2, 2, 1, 1]);
    expect(Array.from(normalize([0.5, 0.25], [0.5, 0.25])(x, new Generator(0)).data)).toEqual([0, 0, 0, 0]);
  });
  it('float32 rounding as torch: (x − m) rounded, then / s rounded', () => {
    const x = T([0.7], [1, 1, 1]);
    const want = Math.fround(Math.fround(Math.fround(0.7) - Math.fround(0.4914)) / Math.fround(0.247));
    expect(normalize([0.4914], [0.247])(x, new Generator(0)).data[0]).toBe(want);
  });
  it('channel count mismatch → ShapeError; zero std → ValueError', () => {
    expect(() => normalize([0, 0], [1, 1])(T([1, 2, 3], [3, 1, 1]), new Generator(0))).toThrow(ShapeError);
    expect(() => normalize([0], [0])).toThrow(ValueError);
  });
});

describe('randomCrop', () => {
  it('size = input, padding 0: identity (only one possible window)', () => {
    const x = T([1, 2, 3, 4, 5, 6], [1, 2, 3]);
    expect(Array.from(randomCrop([2, 3])(x, new Generator(5)).data)).toEqual([1, 2, 3, 4, 5, 6]);
  });
  it('zero-pads then crops the window the generator picks (top then left, per image)', () => {
    // two 1×3×3 images; padding 1 → 5×5; crop 3×3 → offsets in 0..2
    const img = (b: number) => Array.from({ length: 9 }, (_, k) => b + k + 1);
    const x = T([...img(0), ...img(100)], [2, 1, 3, 3]);
    const seed = 11;
    const y = randomCrop(3, 1)(x, new Generator(seed));
    expect(y.shape).toEqual([2, 1, 3, 3]);
    const g = new Generator(seed);
    for (let n = 0; n < 2; n++) {
      const top = g.randint(3);
      const left = g.randint(3);
      // naive reference: materialize the padded 5×5 image, cut the window
      const padded = Array.from({ length: 25 }, (_, k) => {
        const r = Math.floor(k / 5) - 1;
        const c = (k % 5) - 1;
        return r >= 0 && r < 3 && c >= 0 && c < 3 ? x.data[n * 9 + r * 3 + c]! : 0;
      });
      const want = Array.from({ length: 9 }, (_, k) => padded[(top + Math.floor(k / 3)) * 5 + left + (k % 3)]!);
      expect(Array.from(y.data.subarray(n * 9, n * 9 + 9)), `image ${n} top ${top} left ${left}`).toEqual(want);
    }
  });
  it('hand-computed corner windows of a 2×2 image padded by 1, cropped to 2×2', () => {
    const x = T([1, 2, 3, 4], [1, 2, 2]);
    const seen = new Map<string, number[]>();
    const gen = new Generator(3);
    for (let i = 0; i < 200; i++) {
      const d = Array.from(randomCrop(2, 1)(x, gen).data);
      seen.set(d.join(','), d);
    }
    // the 9 windows of [[0,0,0,0],[0,1,2,0],[0,3,4,0],[0,0,0,0]]
    const want = ['0,0,0,1', '0,0,1,2', '0,0,2,0', '0,1,0,3', '1,2,3,4', '2,0,4,0', '0,3,0,0', '3,4,0,0', '4,0,0,0'];
    expect([...seen.keys()].sort()).toEqual(want.sort());
  });
  it('crop larger than the padded image → ShapeError', () => {
    expect(() => randomCrop(5, 1)(T([1, 2, 3, 4], [1, 2, 2]), new Generator(0))).toThrow('Required crop size (5, 5) is larger than input image size (4, 4)');
  });
});

describe('randomHorizontalFlip', () => {
  const x = T([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], [2, 1, 2, 3]);
  it('p = 1 flips every image, p = 0 none', () => {
    expect(Array.from(randomHorizontalFlip(1)(x, new Generator(0)).data)).toEqual([3, 2, 1, 6, 5, 4, 9, 8, 7, 12, 11, 10]);
    expect(Array.from(randomHorizontalFlip(0)(x, new Generator(0)).data)).toEqual(Array.from(x.data));
  });
  it('p = 0.5 flips image n iff the n-th uniform draw < 0.5', () => {
    for (const seed of [1, 2, 3, 4]) {
      const g = new Generator(seed);
      const flips = [g.uniform() < 0.5, g.uniform() < 0.5];
      const want = [...(flips[0] ? [3, 2, 1, 6, 5, 4] : [1, 2, 3, 4, 5, 6]), ...(flips[1] ? [9, 8, 7, 12, 11, 10] : [7, 8, 9, 10, 11, 12])];
      expect(Array.from(randomHorizontalFlip(0.5)(x, new Generator(seed)).data), `seed ${seed}`).toEqual(want);
    }
  });
});

describe('compose', () => {
  it('applies left to right with one generator: flip(p=1) then normalize', () => {
    const x = T([1, 2, 3], [1, 1, 3]);
    const y = compose(randomHorizontalFlip(1), normalize([1], [2]))(x, new Generator(0));
    expect(Array.from(y.data)).toEqual([1, 0.5, 0]);
  });
  it('cifarTrainTransform is deterministic for a seed and keeps 3×32×32', () => {
    const x = new Tensor(Float32Array.from({ length: 2 * 3 * 32 * 32 }, (_, i) => (i % 251) / 251), [2, 3, 32, 32]);
    const t = cifarTrainTransform();
    const a = t(x, new Generator(9));
    const b = t(x, new Generator(9));
    const c = t(x, new Generator(10));
    expect(a.shape).toEqual([2, 3, 32, 32]);
    expect(Array.from(a.data)).toEqual(Array.from(b.data));
    expect(Array.from(a.data)).not.toEqual(Array.from(c.data));
  });
});
