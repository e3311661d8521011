import { describe, expect, it } from 'vitest';
import { withConfig } from '../../src/config.js';
import { batchNormBackward, batchNormTrainForward } from '../../src/kernels/batchnorm.js';
import { hasSimd128, type KernelBackend } from '../../src/kernels/wasm/features.js';
import { assertClose, randArray } from './compare.js';

// The training step's fused kernels, relu(bn(x) + residual) and its backward, on both kernel backends against a
// float64 reference written from the formulas: odd channel counts, 1×1 and 7×7 planes, batch 1, plane sizes that
// leave a tail after the 4-wide vectors, a shape split into several multi-channel work units, long channels (many
// images of large planes), a mean far from 0 (the variance's cancellation), and NaN / ±Inf in different images.

function reference(x: Float32Array, w: Float32Array, b: Float32Array, res: Float32Array | null, n: number, c: number, hw: number, eps: number) {
  const z = new Float64Array(x.length), xhat = new Float64Array(x.length);
  const mean = new Float64Array(c), istd = new Float64Array(c), vu = new Float64Array(c);
  for (let ch = 0; ch < c; ch++) {
    let s = 0;
    for (let i = 0; i < n; i++) for (let j = 0; j < hw; j++) s += x[(i * c + ch) * hw + j]!;
    const m = s / (n * hw);
    let ss = 0;
    for (let i = 0; i < n; i++) for (let j = 0; j < hw; j++) ss += (x[(i * c + ch) * hw + j]! - m) ** 2;
    mean[ch] = m;
    istd[ch] = 1 / Math.sqrt(ss / (n * hw) + eps);
    vu[ch] = ss / (n * hw - 1);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < hw; j++) {
        const k = (i * c + ch) * hw + j;
        xhat[k] = (x[k]! - m) * istd[ch]!;
        z[k] = xhat[k]! * w[ch]! + b[ch]! + (res ? res[k]! : 0);
      }
    }
  }
  const y = z.map((v) => (v > 0 || Number.isNaN(v) ? v : 0));
  return { y, xhat, mean, istd, vu };
}

/** dx, dγ, dβ of Σ dy·relu(bn(x) + r) given the ReLU output's mask (float64, from the formulas). */
function referenceBackward(dy: Float32Array, out: Float32Array, xhat: Float64Array, istd: Float64Array, w: Float32Array, n: number, c: number, hw: number) {
  const g = Float64Array.from(dy, (v, k) => (out[k]! > 0 || Number.isNaN(out[k]!) ? v : 0));
  const dx = new Float64Array(dy.length), dw = new Float64Array(c), db = new Float64Array(c);
  const m = n * hw;
  for (let ch = 0; ch < c; ch++) {
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < hw; j++) {
        const k = (i * c + ch) * hw + j;
        db[ch] = db[ch]! + g[k]!;
        dw[ch] = dw[ch]! + g[k]! * xhat[k]!;
      }
    }
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < hw; j++) {
        const k = (i * c + ch) * hw + j;
        dx[k] = w[ch]! * istd[ch]! * (g[k]! - db[ch]! / m - xhat[k]! * dw[ch]! / m);
      }
    }
  }
  return { g, dx, dw, db };
}

const shapes: [number, number, number][] = [
  [1, 3, 49], // batch 1, 7×7
  [6, 1, 1], // one channel, 1×1
  [3, 3, 7], // a 3-value tail in every plane
  [3, 2, 13], // a pair of vectors, an unpaired vector and a 1-value tail in every plane
  [2, 5, 18],
  [2, 7, 5000], // several work units of 2 channels and a last one of 1
  [7, 2, 10001], // 70007 values per channel, odd planes
];

const backends: KernelBackend[] = hasSimd128 ? ['js', 'simd'] : ['js'];

describe.each(backends)('fused batch norm training kernels, %s backend', (backend) => {
  for (const [n, c, hw] of shapes) {
    for (const withRes of [false, true]) {
      it(`n=${n} c=${c} hw=${hw}${withRes ? ' + residual' : ''}: relu(bn(x) + r) and its gradients vs float64`, () => {
        withConfig({ kernelBackend: backend }, () => {
          const eps = 1e-5, len = n * c * hw;
          const x = randArray(n * 31 + c * 7 + hw, len, -1.5, 2.5);
          const w = randArray(41, c, 0.5, 1.5), b = randArray(42, c, -0.5, 0.5);
          const res = withRes ? randArray(43, len) : null;
          if (res) res[len >> 1] = NaN; // relu keeps a NaN, and its backward passes dy there
          const y = new Float32Array(len).fill(7), mean = new Float32Array(c), invstd = new Float32Array(c), vu = new Float32Array(c);
          batchNormTrainForward(y, mean, invstd, vu, x, w, b, { n, c, hw, eps }, { residual: res, relu: true });
          const ref = reference(x, w, b, res, n, c, hw, eps);
          assertClose('y', y, ref.y);
          assertClose('mean', mean, ref.mean);
          assertClose('invstd', invstd, ref.istd);
          if (n * hw > 1) assertClose('unbiased var', vu, ref.vu);
          expect(y.some((v) => v === 0) && y.some((v) => v > 0)).toBe(true);
          expect(y.some((v) => Object.is(v, -0))).toBe(false);

          const dy = randArray(44, len);
          const want = referenceBackward(dy, y, ref.xhat, ref.istd, w, n, c, hw);
          const dx = new Float32Array(len).fill(3), dw = new Float32Array(c), db = new Float32Array(c);
          const dres = withRes ? new Float32Array(len).fill(5) : null;
          batchNormBackward(dx, dw, db, dy, x, mean, invstd, w, { n, c, hw }, { reluOut: y, dresidual: dres, overwriteDx: true });
          assertClose('dx', dx, want.dx);
          assertClose('dweight', dw, want.dw);
          assertClose('dbias', db, want.db);
          if (dres) expect(Array.from(dres)).toEqual(Array.from(want.g));

          // Accumulating: dx += the same gradient, onto non-zero contents.
          const dx0 = randArray(45, len), dxAcc = dx0.slice();
          batchNormBackward(dxAcc, null, null, dy, x, mean, invstd, w, { n, c, hw }, { reluOut: y });
          assertClose('dx accumulated', dxAcc, Array.from(want.dx, (v, k) => v + dx0[k]!));
        });
      });
    }
  }

  it('relu(bn(x)) backward with the mask recomputed from x: the same bits as with the output mask, NaN and ±Inf', () => {
    withConfig({ kernelBackend: backend }, () => {
      for (const [n, c, hw] of [[3, 5, 7], [2, 6, 1], [4, 3, 33]] as const) {
        const len = n * c * hw, eps = 1e-5;
        const x = randArray(61 + hw, len, -2, 2), w = randArray(62, c, -1.5, 1.5), b = randArray(63, c);
        // channel 1: a NaN (its whole channel's statistics and outputs are NaN); channel 2: +Inf and −Inf
        x[hw + 1] = NaN;
        x[2 * hw] = Infinity;
        x[2 * hw + (hw > 1 ? 1 : c * hw)] = -Infinity; // (with 1×1 planes: image 1's channel 2)
        w[0] = -w[0]!; // a negative γ flips which side the ReLU keeps
        const y = new Float32Array(len), mean = new Float32Array(c), invstd = new Float32Array(c), vu = new Float32Array(c);
        const affine = new Float64Array(2 * c);
        batchNormTrainForward(y, mean, invstd, vu, x, w, b, { n, c, hw, eps }, { relu: true, affine });
        const y2 = new Float32Array(len);
        batchNormTrainForward(y2, mean.slice(), invstd.slice(), vu.slice(), x, w, b, { n, c, hw, eps }, { relu: true });
        expect(Array.from(y2)).toEqual(Array.from(y));
        for (let ch = 0; ch < c; ch++) {
          // y = relu(x·α + β) with the returned map, rounded once
          const got = Array.from({ length: n * hw }, (_, k) => y[(Math.floor(k / hw) * c + ch) * hw + (k % hw)]!);
          const want = got.map((_, k) => {
            const v = Math.fround(x[(Math.floor(k / hw) * c + ch) * hw + (k % hw)]! * affine[2 * ch]! + affine[2 * ch + 1]!);
            return v > 0 || Number.isNaN(v) ? v : 0;
          });
          expect(got).toEqual(want);
        }
        const dy = randArray(64, len);
        const run = (aff: Float64Array | null): Float32Array[] => {
          const dx = new Float32Array(len), dw = new Float32Array(c), db = new Float32Array(c);
          batchNormBackward(dx, dw, db, dy, x, mean, invstd, w, { n, c, hw }, { reluOut: y, affine: aff, overwriteDx: true });
          return [dx, dw, db];
        };
        const [fromOut, fromX] = [run(null), run(affine)];
        for (let k = 0; k < 3; k++) expect(Array.from(fromX[k]!)).toEqual(Array.from(fromOut[k]!));
        expect(fromOut[0]!.some((v) => Number.isNaN(v)) && fromOut[0]!.some((v) => v !== 0 && Number.isFinite(v))).toBe(true);
      }
    });
  });

  it('a mean 1000 standard deviations from 0: statistics and gradients vs float64', () => {
    withConfig({ kernelBackend: backend }, () => {
      const n = 7, c = 2, hw = 10001, len = n * c * hw, eps = 1e-5;
      const x = randArray(71, len, -1, 1).map((v, k) => v * 1e-3 + (Math.floor(k / hw) % c === 0 ? 1 : -3));
      const w = randArray(72, c, 0.5, 1.5), b = randArray(73, c);
      const y = new Float32Array(len), mean = new Float32Array(c), invstd = new Float32Array(c), vu = new Float32Array(c);
      batchNormTrainForward(y, mean, invstd, vu, x, w, b, { n, c, hw, eps }, { relu: true });
      const ref = reference(x, w, b, null, n, c, hw, eps);
      assertClose('mean', mean, ref.mean);
      assertClose('invstd', invstd, ref.istd);
      assertClose('unbiased var', vu, ref.vu, { rtol: 1e-6, atol: 0 });
      assertClose('y', y, ref.y);
      const dy = randArray(74, len);
      const want = referenceBackward(dy, y, ref.xhat, ref.istd, w, n, c, hw);
      const dx = new Float32Array(len), dw = new Float32Array(c), db = new Float32Array(c);
      batchNormBackward(dx, dw, db, dy, x, mean, invstd, w, { n, c, hw }, { reluOut: y, overwriteDx: true });
      assertClose('dx', dx, want.dx);
      assertClose('dweight', dw, want.dw);
      assertClose('dbias', db, want.db);
    });
  });

  it('NaN and ±Inf in different images: the channel statistics are NaN (an Inf mean with one +Inf), as PyTorch', () => {
    withConfig({ kernelBackend: backend }, () => {
      const n = 8, c = 3, hw = 8192, len = n * c * hw, eps = 1e-5;
      const x = randArray(81, len, -1, 1);
      x[(0 * c + 0) * hw + 5] = Infinity; // channel 0: +Inf in image 0 only
      x[(1 * c + 1) * hw + 7] = Infinity; // channel 1: +Inf in image 1, −Inf in image 6
      x[(6 * c + 1) * hw + 9] = -Infinity;
      x[(7 * c + 2) * hw] = NaN; // channel 2: NaN in the last image
      const w = randArray(82, c, 0.5, 1.5), b = randArray(83, c);
      const y = new Float32Array(len), mean = new Float32Array(c), invstd = new Float32Array(c), vu = new Float32Array(c);
      batchNormTrainForward(y, mean, invstd, vu, x, w, b, { n, c, hw, eps }, { relu: true });
      expect(Array.from(mean)).toEqual([Infinity, NaN, NaN]);
      expect(Array.from(vu)).toEqual([NaN, NaN, NaN]);
      expect(Array.from(invstd)).toEqual([NaN, NaN, NaN]);
      expect(y.every((v) => Number.isNaN(v))).toBe(true);
    });
  });

  it('without ReLU: y = bn(x) + r, dx from the unmasked dy, dresidual = dy', () => {
    withConfig({ kernelBackend: backend }, () => {
      const n = 2, c = 3, hw = 9, len = n * c * hw, eps = 1e-5;
      const x = randArray(51, len, -2, 2), w = randArray(52, c, 0.5, 1.5), b = randArray(53, c), res = randArray(54, len);
      const y = new Float32Array(len), mean = new Float32Array(c), invstd = new Float32Array(c), vu = new Float32Array(c);
      batchNormTrainForward(y, mean, invstd, vu, x, w, b, { n, c, hw, eps }, { residual: res });
      const ref = reference(x, w, b, res, n, c, hw, eps);
      const z = Array.from(ref.xhat, (v, k) => v * w[Math.floor(k / hw) % c]! + b[Math.floor(k / hw) % c]! + res[k]!);
      assertClose('y', y, z);
      const dy = randArray(55, len);
      const allPass = new Float32Array(len).fill(1);
      const want = referenceBackward(dy, allPass, ref.xhat, ref.istd, w, n, c, hw);
      const dx = new Float32Array(len), dres = new Float32Array(len);
      batchNormBackward(dx, null, null, dy, x, mean, invstd, w, { n, c, hw }, { dresidual: dres, overwriteDx: true });
      assertClose('dx', dx, want.dx);
      expect(Array.from(dres)).toEqual(Array.from(dy));
    });
  });
});
