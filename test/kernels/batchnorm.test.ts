import { describe, expect, it } from 'vitest';
import {
  batchNormBackward,
  batchNormEvalBackward,
  batchNormEvalForward,
  batchNormTrainForward,
} from '../../src/kernels/batchnorm.js';
import { assertClose, randArray } from './compare.js';

// Straightforward float64 batch norm on plain arrays: the reference, differentiated numerically below.
function bnTrain64(x: ArrayLike<number>, w: ArrayLike<number> | null, b: ArrayLike<number> | null, n: number, c: number, hw: number, eps: number) {
  const y = new Float64Array(n * c * hw), mean = new Float64Array(c), vb = new Float64Array(c), vu = new Float64Array(c);
  for (let ch = 0; ch < c; ch++) {
    const vals: number[] = [];
    for (let i = 0; i < n; i++) for (let j = 0; j < hw; j++) vals.push(x[(i * c + ch) * hw + j]!);
    const m = vals.reduce((s, v) => s + v, 0) / vals.length;
    const ss = vals.reduce((s, v) => s + (v - m) ** 2, 0);
    mean[ch] = m;
    vb[ch] = ss / vals.length;
    vu[ch] = ss / (vals.length - 1);
    for (let i = 0; i < n; i++)
      for (let j = 0; j < hw; j++) {
        const k = (i * c + ch) * hw + j;
        y[k] = ((x[k]! - m) / Math.sqrt(vb[ch]! + eps)) * (w ? w[ch]! : 1) + (b ? b[ch]! : 0);
      }
  }
  return { y, mean, vb, vu };
}

/** d/dv of L(v) = Σ f(v)·dy by central differences in float64, for each entry of v. */
function numGrad(v: ArrayLike<number>, f: (v: Float64Array) => Float64Array, dy: ArrayLike<number>): Float64Array {
  const h = 1e-4;
  const base = Float64Array.from(v as ArrayLike<number>);
  const g = new Float64Array(base.length);
  const L = (arr: Float64Array) => f(arr).reduce((s, yv, i) => s + yv * dy[i]!, 0);
  for (let i = 0; i < base.length; i++) {
    const orig = base[i]!;
    base[i] = orig + h;
    const lp = L(base);
    base[i] = orig - h;
    const lm = L(base);
    base[i] = orig;
    g[i] = (lp - lm) / (2 * h);
  }
  return g;
}

const shapes: [number, number, number][] = [
  [2, 3, 5],
  [1, 2, 9], // batch 1
  [3, 4, 1], // hw 1 (BatchNorm after global pooling / BatchNorm1d)
  [4, 1, 6],
];

describe('batchNormTrainForward vs float64', () => {
  for (const [n, c, hw] of shapes) {
    for (const affine of [true, false]) {
      it(`n=${n} c=${c} hw=${hw} ${affine ? 'affine' : 'no affine'}`, () => {
        const eps = 1e-5;
        const x = randArray(n * 100 + c, n * c * hw, -2, 3);
        const w = affine ? randArray(7, c, 0.5, 1.5) : null, b = affine ? randArray(8, c) : null;
        const y = new Float32Array(x.length).fill(NaN), mean = new Float32Array(c), invstd = new Float32Array(c), vu = new Float32Array(c);
        batchNormTrainForward(y, mean, invstd, vu, x, w, b, { n, c, hw, eps });
        const ref = bnTrain64(x, w, b, n, c, hw, eps);
        assertClose('y', y, ref.y);
        assertClose('mean', mean, ref.mean);
        assertClose('invstd', invstd, Array.from(ref.vb, (v) => 1 / Math.sqrt(v + eps)));
        assertClose('var unbiased', vu, ref.vu);
      });
    }
  }

  it('two-pass variance survives a large mean (x = 1e4 + small noise)', () => {
    const n = 2, c = 1, hw = 50;
    const noise = randArray(5, n * hw);
    const x = noise.map((v) => 1e4 + v);
    const y = new Float32Array(x.length), mean = new Float32Array(1), invstd = new Float32Array(1), vu = new Float32Array(1);
    batchNormTrainForward(y, mean, invstd, vu, x, null, null, { n, c, hw, eps: 0 });
    const ref = bnTrain64(x, null, null, n, c, hw, 0);
    assertClose('var', vu, ref.vu, { atol: 0, rtol: 1e-5 });
    assertClose('y', y, ref.y);
  });
});

describe('batchNormBackward vs numerical derivative of the float64 forward', () => {
  for (const [n, c, hw] of shapes) {
    for (const affine of [true, false]) {
      it(`n=${n} c=${c} hw=${hw} ${affine ? 'affine' : 'no affine'} (accumulating into non-zero buffers)`, () => {
        const eps = 1e-3;
        const x = randArray(n * 10 + c, n * c * hw, -2, 2);
        const w = affine ? randArray(17, c, 0.5, 1.5) : null, b = affine ? randArray(18, c) : null;
        const dy = randArray(19, x.length);
        const y = new Float32Array(x.length), mean = new Float32Array(c), invstd = new Float32Array(c), vu = new Float32Array(c);
        batchNormTrainForward(y, mean, invstd, vu, x, w, b, { n, c, hw, eps });

        const dx0 = randArray(20, x.length), dw0 = randArray(21, c), db0 = randArray(22, c);
        const dx = dx0.slice(), dw = dw0.slice(), db = db0.slice();
        batchNormBackward(dx, affine ? dw : null, affine ? db : null, dy, x, mean, invstd, w, { n, c, hw });

        const gx = numGrad(x, (v) => bnTrain64(v, w, b, n, c, hw, eps).y, dy);
        assertClose('dx', dx, gx.map((g, i) => g + dx0[i]!), { atol: 1e-5, rtol: 1e-3 });
        if (affine) {
          const gw = numGrad(w!, (v) => bnTrain64(x, v, b, n, c, hw, eps).y, dy);
          const gb = numGrad(b!, (v) => bnTrain64(x, w, v, n, c, hw, eps).y, dy);
          assertClose('dweight', dw, gw.map((g, i) => g + dw0[i]!), { atol: 1e-5, rtol: 1e-3 });
          assertClose('dbias', db, gb.map((g, i) => g + db0[i]!), { atol: 1e-5, rtol: 1e-3 });
        }
      });
    }
  }

  it('overwriteDx: dx is the gradient alone, old contents ignored (same bits as accumulating into zeros)', () => {
    const n = 3, c = 4, hw = 7;
    const x = randArray(5, n * c * hw, -2, 2), dy = randArray(6, x.length), w = randArray(7, c, 0.5, 1.5);
    const y = new Float32Array(x.length), mean = new Float32Array(c), invstd = new Float32Array(c), vu = new Float32Array(c);
    batchNormTrainForward(y, mean, invstd, vu, x, w, null, { n, c, hw, eps: 1e-5 }, { relu: true });
    const zeroed = new Float32Array(x.length);
    batchNormBackward(zeroed, null, null, dy, x, mean, invstd, w, { n, c, hw }, { reluOut: y });
    const overwritten = randArray(8, x.length);
    batchNormBackward(overwritten, null, null, dy, x, mean, invstd, w, { n, c, hw }, { reluOut: y, overwriteDx: true });
    expect(Array.from(overwritten)).toEqual(Array.from(zeroed));
    expect(zeroed.some((v) => v !== 0)).toBe(true);
  });

  it('null dx computes only the parameter gradients', () => {
    const n = 2, c = 2, hw = 3;
    const x = randArray(1, 12), dy = randArray(2, 12), w = randArray(3, 2);
    const y = new Float32Array(12), mean = new Float32Array(2), invstd = new Float32Array(2), vu = new Float32Array(2);
    batchNormTrainForward(y, mean, invstd, vu, x, w, null, { n, c, hw, eps: 1e-5 });
    const dw = new Float32Array(2), db = new Float32Array(2);
    batchNormBackward(null, dw, db, dy, x, mean, invstd, w, { n, c, hw });
    const sumDy = [0, 0];
    for (let i = 0; i < 12; i++) sumDy[Math.floor(i / hw) % c]! += dy[i]!;
    assertClose('dbias = Σdy', db, sumDy);
    const ref = bnTrain64(x, null, null, n, c, hw, 1e-5); // x̂ = the normalized x
    const sumDyXhat = [0, 0];
    for (let i = 0; i < 12; i++) sumDyXhat[Math.floor(i / hw) % c]! += dy[i]! * ref.y[i]!;
    assertClose('dweight = Σdy·x̂', dw, sumDyXhat);
  });
});

describe('batchNorm eval mode', () => {
  const n = 2, c = 3, hw = 4, eps = 1e-5;
  const x = randArray(31, n * c * hw, -2, 2), w = randArray(32, c, 0.5, 1.5), b = randArray(33, c);
  const rm = randArray(34, c), rv = randArray(35, c, 0.2, 2);
  const evalRef = (xv: ArrayLike<number>, wv: ArrayLike<number> | null, bv: ArrayLike<number> | null) => {
    const y = new Float64Array(n * c * hw);
    for (let i = 0; i < y.length; i++) {
      const ch = Math.floor(i / hw) % c;
      y[i] = ((xv[i]! - rm[ch]!) / Math.sqrt(rv[ch]! + eps)) * (wv ? wv[ch]! : 1) + (bv ? bv[ch]! : 0);
    }
    return y;
  };

  it('forward is (x − running_mean)/√(running_var + eps)·γ + β', () => {
    const y = new Float32Array(x.length);
    batchNormEvalForward(y, x, rm, rv, w, b, { n, c, hw, eps });
    assertClose('eval y', y, evalRef(x, w, b));
    batchNormEvalForward(y, x, rm, rv, null, null, { n, c, hw, eps });
    assertClose('eval y (no affine)', y, evalRef(x, null, null));
  });

  it('backward (dx, dweight, dbias) vs numerical derivative, accumulating', () => {
    const dy = randArray(36, x.length);
    const dx = new Float32Array(x.length).fill(1), dw = new Float32Array(c).fill(2), db = new Float32Array(c).fill(3);
    batchNormEvalBackward(dx, dw, db, dy, x, rm, rv, w, { n, c, hw, eps });
    assertClose('dx', dx, numGrad(x, (v) => evalRef(v, w, b), dy).map((g) => g + 1), { atol: 1e-5, rtol: 1e-3 });
    assertClose('dweight', dw, numGrad(w, (v) => evalRef(x, v, b), dy).map((g) => g + 2), { atol: 1e-5, rtol: 1e-3 });
    assertClose('dbias', db, numGrad(b, (v) => evalRef(x, w, v), dy).map((g) => g + 3), { atol: 1e-5, rtol: 1e-3 });
  });

  it('weight null means γ = 1 in the backward', () => {
    const dy = randArray(37, x.length);
    const dx = new Float32Array(x.length);
    batchNormEvalBackward(dx, null, null, dy, x, rm, rv, null, { n, c, hw, eps });
    assertClose('dx', dx, numGrad(x, (v) => evalRef(v, null, null), dy), { atol: 1e-5, rtol: 1e-3 });
    expect(dx.some((v) => v !== 0)).toBe(true);
  });
});
