/**
 * Property tests (fast-check, fixed seeds): algebraic facts that must hold for any shapes, checked against
 * independent reference computations written here (naive index loops, the numpy broadcasting rule).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { add, cat, mul, narrow, nn, permute, reshape, ShapeError, sum, Tensor } from '../../src/index.js';
import { expectClose, unravel } from '../helpers/fixtures.js';
import { mulberry32, uniform } from '../helpers/gradcheck.js';

const F = nn.functional;
const RUNS = { seed: 42, numRuns: 60 };
const numelOf = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);

/** numpy's rule, written independently of src/shape.ts: right-align, dims equal or one of them 1. */
function numpyBroadcast(a: number[], b: number[]): number[] | null {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const da = i < n - a.length ? 1 : a[i - (n - a.length)]!;
    const db = i < n - b.length ? 1 : b[i - (n - b.length)]!;
    if (da !== db && da !== 1 && db !== 1) return null;
    out.push(Math.max(da, db) === 1 ? 1 : da === 1 ? db : da);
  }
  return out;
}

/** Flat index into a (right-aligned, broadcast) operand of shape s for a multi-index of the result. */
function sourceIndex(idx: number[], s: number[]): number {
  const off = idx.length - s.length;
  let flat = 0;
  for (let d = 0; d < s.length; d++) flat = flat * s[d]! + (s[d] === 1 ? 0 : idx[d + off]!);
  return flat;
}

/** A result shape and two operand shapes that broadcast to it (suffixes with some dims set to 1). */
const broadcastPair = fc
  .array(fc.integer({ min: 1, max: 4 }), { minLength: 0, maxLength: 4 })
  .chain((out) =>
    fc.tuple(
      fc.constant(out),
      fc.integer({ min: 0, max: out.length }),
      fc.integer({ min: 0, max: out.length }),
      fc.array(fc.boolean(), { minLength: out.length, maxLength: out.length }),
      fc.array(fc.boolean(), { minLength: out.length, maxLength: out.length }),
      fc.integer({ min: 1, max: 2 ** 31 - 1 }),
    ),
  )
  .map(([out, la, lb, ones_a, ones_b, seed]) => {
    const a = out.slice(out.length - la).map((d, i) => (ones_a[i] ? 1 : d));
    const b = out.slice(out.length - lb).map((d, i) => (ones_b[i] ? 1 : d));
    return { a, b, seed };
  });

describe('broadcasting', () => {
  it('result shape follows the numpy rule, values follow the index rule, and add is commutative', () => {
    fc.assert(
      fc.property(broadcastPair, ({ a, b, seed }) => {
        const rng = mulberry32(seed);
        const ta = uniform(rng, a, -1, 1, false);
        const tb = uniform(rng, b, -1, 1, false);
        const want = numpyBroadcast(a, b)!;
        const ab = add(ta, tb);
        const ba = add(tb, ta);
        expect(ab.shape).toEqual(want);
        expect(ba.shape).toEqual(want);
        expect(Array.from(ab.data)).toEqual(Array.from(ba.data));
        for (let i = 0; i < ab.size; i++) {
          const idx = unravel(i, want);
          expect(ab.data[i]).toBe(Math.fround(ta.data[sourceIndex(idx, a)]! + tb.data[sourceIndex(idx, b)]!));
        }
      }),
      RUNS,
    );
  });

  it('mismatched non-1 dims throw ShapeError naming both sizes', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 3 }), { maxLength: 3 }),
        fc.integer({ min: 2, max: 5 }),
        fc.integer({ min: 2, max: 5 }),
        (rest, p, q) => {
          fc.pre(p !== q);
          const a = [p, ...rest];
          const b = [q, ...rest];
          expect(numpyBroadcast(a, b)).toBeNull();
          expect(() => add(new Tensor(new Float32Array(numelOf(a)), a), new Tensor(new Float32Array(numelOf(b)), b))).toThrow(ShapeError);
          expect(() => add(new Tensor(new Float32Array(numelOf(a)), a), new Tensor(new Float32Array(numelOf(b)), b))).toThrow(
            `The size of tensor a (${p}) must match the size of tensor b (${q})`,
          );
        },
      ),
      RUNS,
    );
  });

  it('grad of sum(a + b) w.r.t. a broadcast a counts its broadcast copies; grad of sum(a·b) sums b over them', () => {
    fc.assert(
      fc.property(broadcastPair, ({ a, b, seed }) => {
        const rng = mulberry32(seed);
        const out = numpyBroadcast(a, b)!;
        const ta = uniform(rng, a);
        const tb = uniform(rng, out); // b takes the full result shape
        sum(add(ta, tb)).backward();
        const copies = numelOf(out) / numelOf(a);
        expect(Array.from(ta.grad!.data)).toEqual(new Array(numelOf(a)).fill(copies));
        expect(Array.from(tb.grad!.data)).toEqual(new Array(numelOf(out)).fill(1));

        ta.grad = null;
        sum(mul(ta, tb)).backward();
        const want = new Array<number>(numelOf(a)).fill(0);
        for (let i = 0; i < numelOf(out); i++) want[sourceIndex(unravel(i, out), a)]! += tb.data[i]!;
        expectClose(ta.grad!.data, want, a, 'd sum(a·b) / da');
      }),
      RUNS,
    );
  });
});

describe('reshape / permute round trips', () => {
  const shapeAndPerm = fc
    .array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 4 })
    .chain((s) => fc.tuple(fc.constant(s), fc.shuffledSubarray(s.map((_, i) => i), { minLength: s.length, maxLength: s.length })));

  it('permute then the inverse permutation gives back the tensor; the permuted values follow the index rule', () => {
    fc.assert(
      fc.property(shapeAndPerm, fc.integer({ min: 1, max: 1e9 }), ([s, perm], seed) => {
        const x = uniform(mulberry32(seed), s, -1, 1, false);
        const y = permute(x, perm);
        expect(y.shape).toEqual(perm.map((p) => s[p]));
        for (let i = 0; i < y.size; i++) {
          const idx = unravel(i, y.shape);
          const src = new Array<number>(s.length);
          perm.forEach((p, k) => (src[p] = idx[k]!));
          expect(y.data[i]).toBe(x.data[sourceIndex(src, s)]);
        }
        const inv = new Array<number>(perm.length);
        perm.forEach((p, k) => (inv[p] = k));
        const back = permute(y, inv);
        expect(back.shape).toEqual(s);
        expect(Array.from(back.data)).toEqual(Array.from(x.data));
      }),
      RUNS,
    );
  });

  it('reshape to [-1] and to any factorization and back is the identity on data (row-major order kept)', () => {
    fc.assert(
      fc.property(shapeAndPerm, fc.integer({ min: 1, max: 1e9 }), ([s, perm], seed) => {
        const x = uniform(mulberry32(seed), s, -1, 1, false);
        const flat = reshape(x, [-1]);
        expect(flat.shape).toEqual([x.size]);
        expect(Array.from(flat.data)).toEqual(Array.from(x.data));
        const other = perm.map((p) => s[p]!); // same element count, other shape
        const y = reshape(reshape(x, other), s);
        expect(y.shape).toEqual(s);
        expect(Array.from(y.data)).toEqual(Array.from(x.data));
      }),
      RUNS,
    );
  });
});

describe('conv2d', () => {
  it('grouped conv equals the concatenation of per-group convs (forward and input gradient)', () => {
    const cfg = fc.record({
      n: fc.integer({ min: 1, max: 2 }),
      groups: fc.integer({ min: 1, max: 3 }),
      cinPer: fc.integer({ min: 1, max: 2 }),
      coutPer: fc.integer({ min: 1, max: 2 }),
      k: fc.integer({ min: 1, max: 3 }),
      h: fc.integer({ min: 3, max: 6 }),
      w: fc.integer({ min: 3, max: 6 }),
      stride: fc.integer({ min: 1, max: 2 }),
      padding: fc.integer({ min: 0, max: 1 }),
      seed: fc.integer({ min: 1, max: 1e9 }),
    });
    fc.assert(
      fc.property(cfg, ({ n, groups, cinPer, coutPer, k, h, w, stride, padding, seed }) => {
        const rng = mulberry32(seed);
        const x = uniform(rng, [n, groups * cinPer, h, w]);
        const wt = uniform(rng, [groups * coutPer, cinPer, k, k]);
        const b = uniform(rng, [groups * coutPer]);
        const y = F.conv2d(x, wt, b, { stride, padding, groups });
        const x2 = new Tensor(x.data.slice(), x.shape).requiresGrad_();
        const parts = Array.from({ length: groups }, (_, g) =>
          F.conv2d(narrow(x2, 1, g * cinPer, cinPer), narrow(wt, 0, g * coutPer, coutPer), narrow(b, 0, g * coutPer, coutPer), { stride, padding }),
        );
        const y2 = cat(parts, 1);
        expect(y.shape).toEqual(y2.shape);
        expectClose(y.data, Array.from(y2.data), y.shape, 'grouped conv fwd');
        const r = uniform(rng, [...y.shape], -1, 1, false);
        y.backward(r);
        y2.backward(r);
        expectClose(x.grad!.data, Array.from(x2.grad!.data), x.shape, 'grouped conv dx');
      }),
      { seed: 7, numRuns: 40 },
    );
  });
});

describe('softmax / crossEntropy', () => {
  const shapeDim = fc
    .array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 3 })
    .chain((s) => fc.tuple(fc.constant(s), fc.integer({ min: 0, max: s.length - 1 }), fc.integer({ min: 1, max: 1e9 })));

  it('softmax sums to 1 along its dim and is positive', () => {
    fc.assert(
      fc.property(shapeDim, ([s, dim, seed]) => {
        const x = uniform(mulberry32(seed), s, -10, 10, false);
        const y = F.softmax(x, dim);
        for (const v of y.data) expect(v).toBeGreaterThan(0);
        const total = sum(y, dim);
        expectClose(total.data, new Array(total.size).fill(1), total.shape, 'softmax row sums');
      }),
      RUNS,
    );
  });

  it('crossEntropy is unchanged by adding a constant to every logit', () => {
    const cfg = fc.record({
      n: fc.integer({ min: 1, max: 5 }),
      c: fc.integer({ min: 2, max: 6 }),
      shift: fc.double({ min: -50, max: 50, noNaN: true }),
      smoothing: fc.constantFrom(0, 0.1),
      seed: fc.integer({ min: 1, max: 1e9 }),
    });
    fc.assert(
      fc.property(cfg, ({ n, c, shift, smoothing, seed }) => {
        const rng = mulberry32(seed);
        const x = uniform(rng, [n, c], -3, 3, false);
        const target = Array.from({ length: n }, () => Math.floor(rng() * c));
        const shifted = new Tensor(Float32Array.from(x.data, (v) => v + shift), x.shape);
        const l0 = F.crossEntropy(x, target, { labelSmoothing: smoothing }).item();
        const l1 = F.crossEntropy(shifted, target, { labelSmoothing: smoothing }).item();
        // float32 rounding of x + shift moves each logit by up to ulp(|shift|)/2 ≈ 2e-6 at |shift| = 50
        expectClose([l1], [l0], [1], `crossEntropy shift ${shift}`, { atol: 2e-5, rtol: 1e-5 });
      }),
      RUNS,
    );
  });
});
