import { describe, expect, it } from 'vitest';
import { tensor, randn, manualSeed, sum, matmul, cat, pad, AutogradError } from '../../src/index.js';

describe('core smoke', () => {
  it('add broadcast + backward', () => {
    const a = tensor([[1, 2, 3]], [1, 3], { requiresGrad: true });
    const b = tensor([[10], [20]], [2, 1], { requiresGrad: true });
    const y = a.add(b).mul(a);
    expect(y.shape).toEqual([2, 3]);
    y.sum().backward();
    // d/da sum((a+b)*a) = sum over rows of (2a + b)
    expect(Array.from(a.grad!.data)).toEqual([2 * 1 * 2 + 30, 2 * 2 * 2 + 30, 2 * 3 * 2 + 30]);
    expect(Array.from(b.grad!.data)).toEqual([6, 6]);
    expect(() => y.sum().backward()).toThrow(AutogradError);
  });
  it('matmul, cat, pad, print', () => {
    manualSeed(1);
    const a = randn([2, 3]);
    const b = randn([3, 4]);
    const y = matmul(a, b);
    expect(y.shape).toEqual([2, 4]);
    const want = a.data[0]! * b.data[0]! + a.data[1]! * b.data[4]! + a.data[2]! * b.data[8]!;
    expect(y.data[0]).toBeCloseTo(want, 5);
    expect(cat([a, a], 1).shape).toEqual([2, 6]);
    expect(pad(a, [1, 1]).shape).toEqual([2, 5]);
    expect(sum(a).shape).toEqual([]);
    expect(String(tensor([[1, 2], [3, 4]]))).toBe('tensor([[1., 2.],\n        [3., 4.]])');
  });
});
