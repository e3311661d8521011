/**
 * The linear layer's inference kernel at a few rows (kernels/fc.ts, wasm/fc.ts): within atol 1e-5 + rtol 1e-4 of a
 * float64 loop at odd sizes (k not a multiple of 4 or of 64-term blocks, odd feature counts, odd row counts), bit for
 * bit the documented order of operations without FMA (float32 lane sums over 64-term blocks, float64 carries), the
 * same bits on 1, 2 and 3 threads, NaN and ±Inf where the float64 loop has them, the same bits for a weight outside
 * the resident memory (copied into a private memory); linear() takes it only when the call is not recorded for
 * backward and the rows are at most FC_MAX_ROWS.
 */
import { describe, expect, it } from 'vitest';
import { noGrad } from '../../src/autograd.js';
import { withConfig } from '../../src/config.js';
import { fcRows, FC_MAX_ROWS } from '../../src/kernels/fc.js';
import { sgemm } from '../../src/kernels/gemm.js';
import { residentParam } from '../../src/kernels/optim.js';
import { hasSimd128 } from '../../src/kernels/wasm/features.js';
import { linear } from '../../src/ops/linear.js';
import { setNumThreads } from '../../src/parallel/index.js';
import { Tensor } from '../../src/tensor.js';
import { poolForTests } from '../parallel/scripts.js';
import { assertClose, assertIdentical, randArray } from './compare.js';

/** y (m×n) = x (m×k) · wᵀ + bias in float64 (ascending p, the bias last), rounded once. */
function reference(x: Float32Array, w: Float32Array, bias: Float32Array | null, m: number, n: number, k: number): Float32Array {
  const y = new Float32Array(m * n);
  for (let r = 0; r < m; r++) {
    for (let o = 0; o < n; o++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += x[r * k + p]! * w[o * k + p]!;
      y[r * n + o] = s + (bias ? bias[o]! : 0);
    }
  }
  return y;
}

/**
 * wasm/fc.ts's order written out (no FMA): per block of 64 terms from p = 0, four float32 lane sums (terms at
 * p ≡ lane mod 4 while 4 are left in the block, the rest in lane 0), widened, lanes 0 + 2 and 1 + 3 added to two
 * float64 carries; y = round((carry₀ + carry₁) + bias).
 */
function emulated(x: Float32Array, w: Float32Array, bias: Float32Array | null, m: number, n: number, k: number): Float32Array {
  const f = Math.fround;
  const y = new Float32Array(m * n);
  for (let r = 0; r < m; r++) {
    for (let o = 0; o < n; o++) {
      let c0 = 0, c1 = 0;
      for (let p0 = 0; p0 < k; p0 += 64) {
        const end = Math.min(p0 + 64, k), lanes = [0, 0, 0, 0];
        let p = p0;
        for (; p + 4 <= end; p += 4) for (let l = 0; l < 4; l++) lanes[l] = f(lanes[l]! + f(x[r * k + p + l]! * w[o * k + p + l]!));
        for (; p < end; p++) lanes[0] = f(lanes[0]! + f(x[r * k + p]! * w[o * k + p]!));
        c0 += lanes[0]! + lanes[2]!;
        c1 += lanes[1]! + lanes[3]!;
      }
      y[r * n + o] = c0 + c1 + (bias ? bias[o]! : 0);
    }
  }
  return y;
}

/** Where the kernel can run: SIMD and a shared wasm memory (the resident memory). */
const hasResident = hasSimd128 && typeof SharedArrayBuffer === 'function';

/** A resident copy of a (w must lie in the resident memory for the kernel to take it). */
function resident(a: Float32Array): Float32Array {
  const r = residentParam(a.length);
  if (r === null) throw new Error('no resident memory');
  r.set(a);
  return r;
}

/** [m, n, k]: k of 1, 3, past a 64-term block and not a multiple of 4; odd n; odd m; ResNet-50's and ResNet-18's fc. */
const shapes: [number, number, number][] = [
  [1, 1000, 2048], [2, 1000, 512], [1, 37, 130], [2, 131, 67], [1, 5, 1], [2, 67, 257], [1, 3, 2049], [2, 1, 3], [3, 65, 63],
  [FC_MAX_ROWS, 9, 70],
];

describe.runIf(hasResident)('fcRows (SIMD)', () => {
  poolForTests({ kernelBackend: 'simd' });

  it('within atol 1e-5 + rtol 1e-4 of float64, the same bits on 1, 2 and 3 threads, with and without bias', () => {
    for (const [m, n, k] of shapes) {
      for (const withBias of [true, false]) {
        const what = `${m}×${k} · (${n}×${k})ᵀ${withBias ? ' + bias' : ''}`;
        const x = randArray(m + n + k, m * k), w = resident(randArray(m * n + k, n * k, -0.05, 0.05));
        const bias = withBias ? randArray(n + 1, n) : null;
        const ref = reference(x, w, bias, m, n, k);
        let first: Float32Array | null = null;
        for (const threads of [1, 2, 3]) {
          setNumThreads(threads);
          const y = new Float32Array(m * n).fill(NaN);
          expect(fcRows(y, x, w, bias, m, k, n), what).toBe(true);
          assertClose(`${what}, ${threads} thread(s)`, y, ref);
          if (first === null) first = y;
          else assertIdentical(`${what}, ${threads} threads vs 1`, y, first);
        }
      }
    }
    setNumThreads(1);
  });

  it('without FMA: the documented order of operations bit for bit', () => {
    withConfig({ fma: false }, () => {
      for (const threads of [1, 2]) {
        setNumThreads(threads);
        for (const [m, n, k] of shapes) {
          const x = randArray(3 * k + 1, m * k), w = resident(randArray(5 * n + 2, n * k)), bias = randArray(7, n);
          const y = new Float32Array(m * n).fill(NaN);
          expect(fcRows(y, x, w, bias, m, k, n)).toBe(true);
          assertIdentical(`${m}×${k} · (${n}×${k})ᵀ, ${threads} thread(s)`, y, emulated(x, w, bias, m, n, k));
        }
      }
    });
    setNumThreads(1);
  });

  it('NaN and ±Inf where the float64 loop has them', () => {
    const [m, n, k] = [2, 70, 131];
    const x = randArray(31, m * k), wd = randArray(32, n * k);
    x[5] = NaN; // row 0: every output NaN
    x[k + 7] = Infinity; // row 1: ±Inf by the sign of w[o, 7], unless another Inf meets it
    wd[3 * k + 7] = 0; // … NaN at o = 3 (∞ · 0)
    wd[10 * k + 100] = -Infinity; // row 1, o = 10: +∞ · … + (−∞ · x) : NaN or ±Inf by x's sign
    wd[20 * k + 7] = Infinity;
    const w = resident(wd), bias = randArray(33, n);
    bias[40] = Infinity;
    const ref = reference(x, w, bias, m, n, k);
    expect(ref.some(Number.isNaN) && ref.some((v) => v === Infinity) && ref.some((v) => v === -Infinity)).toBe(true);
    for (const threads of [1, 2]) {
      setNumThreads(threads);
      const y = new Float32Array(m * n);
      expect(fcRows(y, x, w, bias, m, k, n)).toBe(true);
      for (let i = 0; i < m * n; i++) {
        if (!Number.isFinite(ref[i]!) || !Number.isFinite(y[i]!)) expect(y[i], `output ${i}, ${threads} thread(s)`).toBe(ref[i]);
      }
      assertClose(`${threads} thread(s)`, y, ref);
    }
    setNumThreads(1);
  });

  it('a weight outside the resident memory: the same bits, through the private memory, on 1 and 2 threads', () => {
    for (const [m, n, k] of [[1, 1000, 2048], [3, 37, 131], [16, 9, 67]] as const) {
      const w = randArray(51 + k, n * k, -0.05, 0.05), x = randArray(52 + m, m * k), bias = randArray(53, n);
      const want = new Float32Array(m * n);
      setNumThreads(1);
      expect(fcRows(want, x, resident(w), bias, m, k, n)).toBe(true);
      for (const t of [1, 2]) {
        setNumThreads(t);
        const got = new Float32Array(m * n);
        expect(fcRows(got, x, w, bias, m, k, n)).toBe(true);
        assertIdentical(`${m}×${k} → ${n}, plain w, ${t} thread(s)`, got, want);
        const none = new Float32Array(m * n);
        expect(fcRows(none, x, w, null, m, k, n)).toBe(true);
        assertClose(`${m}×${k} → ${n}, plain w, no bias, vs float64`, none, reference(x, w, null, m, n, k));
      }
    }
    setNumThreads(1);
  });

  it('does not apply (false, y untouched): more than FC_MAX_ROWS rows, k or n of 0, the js backend', () => {
    const [n, k] = [9, 20];
    const w = randArray(41, n * k), wr = resident(w), x = randArray(42, (FC_MAX_ROWS + 1) * k);
    const y = new Float32Array((FC_MAX_ROWS + 1) * n).fill(7);
    expect(fcRows(y, x, wr, null, FC_MAX_ROWS + 1, k, n)).toBe(false);
    expect(fcRows(y, x, wr, null, 1, 0, n)).toBe(false);
    expect(withConfig({ kernelBackend: 'js' }, () => fcRows(y, x, wr, null, 1, k, n))).toBe(false);
    expect(y.every((v) => v === 7)).toBe(true);
  });
});

describe.runIf(hasResident)('linear() takes fcRows only when not recorded and rows ≤ FC_MAX_ROWS', () => {
  poolForTests({ kernelBackend: 'simd' });

  const [n, k] = [1000, 2048];
  const wd = randArray(22, n * k, -0.05, 0.05), bd = randArray(23, n);
  /** The GEMM's result, then the bias added in float32 (linear's other path). */
  const gemmPath = (xd: Float32Array, m: number): Float32Array => {
    const y = new Float32Array(m * n);
    sgemm(y, xd, wd, m, n, k, { transB: true });
    for (let r = 0; r < m; r++) for (let o = 0; o < n; o++) y[r * n + o]! += bd[o]!;
    return y;
  };
  const fcPath = (xd: Float32Array, m: number): Float32Array => {
    const y = new Float32Array(m * n);
    expect(fcRows(y, xd, resident(wd), bd, m, k, n)).toBe(true);
    return y;
  };

  it('recorded: the GEMM; noGrad: fcRows, for a resident and a plain w alike; both within tolerance of float64', () => {
    for (const m of [1, 2]) {
      const xd = randArray(21 + m, m * k);
      const w = new Tensor(resident(wd), [n, k]), b = new Tensor(Float32Array.from(bd), [n]);
      w.requiresGrad = true;
      const x = new Tensor(Float32Array.from(xd), [m, k]);
      const gemm = gemmPath(xd, m), fc = fcPath(xd, m);
      // (the two paths' bits differ somewhere: the test tells them apart)
      expect(Array.from(gemm).some((v, i) => !Object.is(v, fc[i]))).toBe(true);
      const recorded = linear(x, w, b);
      expect(recorded.requiresGrad).toBe(true);
      assertIdentical(`${m} row(s), recorded`, recorded.data, gemm);
      assertIdentical(`${m} row(s), noGrad`, noGrad(() => linear(x, w, b)).data, fc);
      const plainW = new Tensor(Float32Array.from(wd), [n, k]);
      assertIdentical(`${m} row(s), noGrad, plain w`, noGrad(() => linear(x, plainW, b)).data, fc);
      const ref = reference(xd, wd, bd, m, n, k);
      assertClose(`${m} row(s), fc vs float64`, fc, ref);
      assertClose(`${m} row(s), GEMM vs float64`, gemm, ref);
    }
  });

  it(`${FC_MAX_ROWS + 1} rows under noGrad: the GEMM`, () => {
    const m = FC_MAX_ROWS + 1, xd = randArray(29, m * k);
    const w = new Tensor(resident(wd), [n, k]), b = new Tensor(Float32Array.from(bd), [n]);
    const y = noGrad(() => linear(new Tensor(xd, [m, k]), w, b));
    assertIdentical(`${m} rows`, y.data, gemmPath(xd, m));
  });
});
