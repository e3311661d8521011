/**
 * nn.init.withoutRandomInit: no random draws inside (weights left zero, the generator's state untouched), normal
 * draws again after it, even when the builder throws; constant initializations (BatchNorm's 1s) still happen.
 */
import { describe, expect, it } from 'vitest';
import { BatchNorm2d, Conv2d, Linear } from '../../src/nn/layers.js';
import { normal_, uniform_, withoutRandomInit } from '../../src/nn/init.js';
import { defaultGenerator, manualSeed } from '../../src/random.js';
import { Tensor } from '../../src/tensor.js';

const zeros = (n: number) => new Tensor(new Float32Array(n), [n]);

describe('withoutRandomInit', () => {
  it('draws nothing: layers keep zero weights and the generator gives the same next number', () => {
    manualSeed(7);
    const expected = defaultGenerator.uniform();
    manualSeed(7);
    const [conv, fc, bn] = withoutRandomInit(() => [new Conv2d(3, 8, 3), new Linear(16, 4), new BatchNorm2d(8)] as const);
    expect(defaultGenerator.uniform()).toBe(expected);
    expect(conv.weight.data.every((v) => v === 0)).toBe(true);
    expect(fc.weight.data.every((v) => v === 0)).toBe(true);
    expect(fc.bias!.data.every((v) => v === 0)).toBe(true);
    expect(bn.weight!.data.every((v) => v === 1)).toBe(true);
  });

  it('draws again afterwards, also after the builder threw', () => {
    expect(() => withoutRandomInit(() => {
      throw new Error('boom');
    })).toThrow('boom');
    const t = uniform_(zeros(64), -1, 1), u = normal_(zeros(64));
    expect(t.data.some((v) => v !== 0)).toBe(true);
    expect(u.data.some((v) => v !== 0)).toBe(true);
    expect(new Conv2d(3, 8, 3).weight.data.some((v) => v !== 0)).toBe(true);
  });
});
