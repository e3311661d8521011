/** The fixture helpers themselves: they must fail loudly on wrong values, or every op test passes vacuously. */
import { describe, expect, it } from 'vitest';
import { add, mul, Tensor } from '../../src/index.js';
import { checkOp, decode, expectClose, loadFixtures, unravel, type Case } from '../helpers/fixtures.js';
import { gradcheck, mulberry32, uniform } from '../helpers/gradcheck.js';

describe('expectClose', () => {
  it('passes within atol + rtol·|expected|', () => {
    expect(() => expectClose([1.00005, -2], [1, -2.0001], [2], 'ok')).not.toThrow();
  });

  it('fails on a wrong value with STYLE rule 11 message (where and by how much)', () => {
    const expected = Array.from({ length: 24 }, (_, i) => i / 10);
    const actual = Float32Array.from(expected);
    actual[13] = 1.3 + 6.7e-4; // [1,0,1] in [2,3,4]
    expect(() => expectClose(actual, expected, [2, 3, 4], 'conv2d fwd')).toThrow(
      /^conv2d fwd: 1\/24 differ; worst at \[1,0,1\]: 1\.3007 vs 1\.3 \(\|Δ\|=6\.7e-4\)$/,
    );
  });

  it('reports the count and the worst offender', () => {
    const expected = [0, 0, 0, 0];
    expect(() => expectClose([0.1, 0, 0.5, 0.2], expected, [2, 2], 'x')).toThrow('x: 3/4 differ; worst at [1,0]: 0.5 vs 0');
  });

  it('NaN matches NaN only', () => {
    expect(() => expectClose([NaN, 1], [NaN, 1], [2], 'nan')).not.toThrow();
    expect(() => expectClose([0, 1], [NaN, 1], [2], 'nan')).toThrow('nan: 1/2 differ; worst at [0]: 0 vs NaN');
    expect(() => expectClose([NaN, 1], [0, 1], [2], 'nan')).toThrow('1/2 differ');
  });

  it('infinities match only themselves', () => {
    expect(() => expectClose([Infinity, -Infinity], [Infinity, -Infinity], [2], 'inf')).not.toThrow();
    expect(() => expectClose([Infinity], [-Infinity], [1], 'inf')).toThrow('1/1 differ');
    expect(() => expectClose([1e30], [Infinity], [1], 'inf')).toThrow('1/1 differ');
  });

  it('fails on a length mismatch', () => {
    expect(() => expectClose([1, 2], [1, 2, 3], [3], 'len')).toThrow('len: 2 values vs 3 expected');
  });

  it('honours atol/rtol options', () => {
    expect(() => expectClose([1.01], [1], [1], 't', { atol: 0, rtol: 0.02 })).not.toThrow();
    expect(() => expectClose([1.01], [1], [1], 't', { atol: 0, rtol: 0.005 })).toThrow('1/1 differ');
  });
});

describe('fixture loading', () => {
  it('unravel gives row-major multi-indices', () => {
    expect(unravel(0, [2, 3, 4])).toEqual([0, 0, 0]);
    expect(unravel(23, [2, 3, 4])).toEqual([1, 2, 3]);
    expect(unravel(13, [2, 3, 4])).toEqual([1, 0, 1]);
  });

  it('every fixture file is well formed (data lengths match shapes; one gradient per grad input)', () => {
    const families = ['elementwise', 'reduce', 'matmul', 'shape', 'conv2d', 'batchnorm', 'activation', 'pool', 'linear', 'loss', 'shortcut'];
    const numel = (s: number[]): number => s.reduce((a, b) => a * b, 1);
    for (const fam of families) {
      for (const [name, c] of Object.entries(loadFixtures(fam))) {
        const where = `${fam}.${name}`;
        expect(c.out.data.length, where).toBe(numel(c.out.shape));
        for (const t of c.inputs) expect(t.data.length, where).toBe(numel(t.shape));
        expect(c.grads.length, where).toBe(c.inputs.length);
        c.grads.forEach((g, i) => {
          expect(g !== null, `${where} grad[${i}]`).toBe(c.dy !== null && c.inputs[i]!.grad);
          if (g) expect(g.shape, `${where} grad[${i}]`).toEqual(c.inputs[i]!.shape);
        });
        if (c.dy) expect(c.dy.shape, where).toEqual(c.out.shape);
      }
    }
  });

  it('decodes non-finite strings', () => {
    expect(decode([1, 'NaN', 'Infinity', '-Infinity'])).toEqual([1, NaN, Infinity, -Infinity]);
  });
});

describe('checkOp', () => {
  // a hand-made case: y = a * b with a = [1, 2], b = [3, 4], dy = [1, -1] → y = [3, 8], da = [3, -4], db = [1, -2]
  const good: Case = {
    inputs: [
      { shape: [2], data: [1, 2], grad: true },
      { shape: [2], data: [3, 4], grad: true },
    ],
    params: {},
    out: { shape: [2], data: [3, 8] },
    dy: { shape: [2], data: [1, -1] },
    grads: [
      { shape: [2], data: [3, -4] },
      { shape: [2], data: [1, -2] },
    ],
  };

  it('passes on a correct op', () => {
    expect(() => checkOp(good, (a, b) => mul(a, b), 'mul')).not.toThrow();
  });

  it('fails on a wrong forward', () => {
    expect(() => checkOp({ ...good, out: { shape: [2], data: [3, 9] } }, (a, b) => mul(a, b), 'mul')).toThrow(
      'mul fwd: 1/2 differ; worst at [1]: 8 vs 9',
    );
  });

  it('fails on a wrong gradient', () => {
    const bad = { ...good, grads: [{ shape: [2], data: [3, -4] }, { shape: [2], data: [1, 2] }] };
    expect(() => checkOp(bad, (a, b) => mul(a, b), 'mul')).toThrow('mul grad[1]: 1/2 differ; worst at [1]: -2 vs 2');
  });

  it('fails on a wrong output shape', () => {
    expect(() => checkOp({ ...good, out: { shape: [1, 2], data: [3, 8] } }, (a, b) => mul(a, b), 'mul')).toThrow(
      'mul fwd: shape [2] vs expected [1, 2]',
    );
  });

  it('fails when an input that needs a gradient gets none', () => {
    expect(() => checkOp(good, (a) => mul(a, 3), 'mul')).toThrow();
  });
});

describe('gradcheck', () => {
  it('passes on a correct gradient', () => {
    const rng = mulberry32(7);
    expect(() => gradcheck((a, b) => mul(a, b), [uniform(rng, [3, 2]), uniform(rng, [3, 2])], 'mul')).not.toThrow();
  });

  it('fails on a wrong gradient', () => {
    // value 3·x, but only the mul(t, 1) branch is in the graph: analytic gradient 1, numeric 3
    const x = uniform(mulberry32(8), [4]);
    const wrong = (t: Tensor): Tensor => add(mul(t.detach(), 2), mul(t, 1));
    expect(() => gradcheck(wrong, [x], 'wrong')).toThrow(/wrong grad\[0\] vs finite differences: 4\/4 differ/);
  });
});
