import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dgemmAcc, sgemm, sgemmNaive, sgemmRange, type GemmEpilogue, type GemmOpts } from '../../src/kernels/gemm.js';
import { hasSimd128, kernelBackend, setKernelBackend, type KernelBackend } from '../../src/kernels/wasm/features.js';
import { assertClose, assertIdentical, randArray } from './compare.js';

// Case: op(A) m×k, op(B) k×n, stored with optional transposes, leading dims ≥ the row length, and offsets.
interface Case {
  m: number;
  n: number;
  k: number;
  transA: boolean;
  transB: boolean;
  accumulate: boolean;
  padA: number; // extra elements per stored row of A (lda = rowLen + padA)
  padB: number;
  padC: number;
  aOff: number;
  bOff: number;
  cOff: number;
  seed: number;
}

function setup(cs: Case) {
  const { m, n, k, transA, transB, padA, padB, padC, aOff, bOff, cOff, seed } = cs;
  const lda = (transA ? m : k) + padA, ldb = (transB ? k : n) + padB, ldc = n + padC;
  const aRows = transA ? k : m, bRows = transB ? n : k;
  const a = randArray(seed, aOff + aRows * lda);
  const b = randArray(seed + 1, bOff + bRows * ldb);
  const c0 = randArray(seed + 2, cOff + m * ldc);
  const opts: GemmOpts = { transA, transB, accumulate: cs.accumulate, aOff, bOff, cOff, lda, ldb, ldc };
  return { a, b, c0, opts };
}

const caseArb = (maxDim: number) =>
  fc.record({
    m: fc.integer({ min: 1, max: maxDim }),
    n: fc.integer({ min: 1, max: maxDim }),
    k: fc.integer({ min: 1, max: maxDim }),
    transA: fc.boolean(),
    transB: fc.boolean(),
    accumulate: fc.boolean(),
    padA: fc.integer({ min: 0, max: 3 }),
    padB: fc.integer({ min: 0, max: 3 }),
    padC: fc.integer({ min: 0, max: 3 }),
    aOff: fc.integer({ min: 0, max: 5 }),
    bOff: fc.integer({ min: 0, max: 5 }),
    cOff: fc.integer({ min: 0, max: 5 }),
    seed: fc.integer({ min: 0, max: 1e9 }),
  });

describe('sgemmNaive (the reference itself)', () => {
  it('2×3 · 3×2 by hand', () => {
    const a = Float32Array.from([1, 2, 3, 4, 5, 6]); // [[1,2,3],[4,5,6]]
    const b = Float32Array.from([7, 8, 9, 10, 11, 12]); // [[7,8],[9,10],[11,12]]
    const c = new Float32Array(4);
    sgemmNaive(c, a, b, 2, 2, 3);
    expect(Array.from(c)).toEqual([58, 64, 139, 154]);
  });
  it('Aᵀ·Bᵀ with accumulate by hand', () => {
    const a = Float32Array.from([1, 4, 2, 5, 3, 6]); // stored 3×2, op(A) = [[1,2,3],[4,5,6]]
    const b = Float32Array.from([7, 9, 11, 8, 10, 12]); // stored 2×3, op(B) = [[7,8],[9,10],[11,12]]
    const c = Float32Array.from([1, 1, 1, 1]);
    sgemmNaive(c, a, b, 2, 2, 3, { transA: true, transB: true, accumulate: true });
    expect(Array.from(c)).toEqual([59, 65, 140, 155]);
  });
});

it('Node ≥ 20 validates WebAssembly SIMD128 (so the default backend is simd)', () => {
  expect(hasSimd128).toBe(true);
});

describe('summation: float32 only within blocks of 64 terms, the total carried in float64', () => {
  // a = 1…1, b = (1, 2⁻²⁴, 2⁻²⁴, …): in float32, 1 + 2⁻²⁴ rounds back to 1, so a float32 sum over all of k loses
  // every small term (1), a float64 sum keeps them all (1 + 4095·2⁻²⁴). Blocks of 64 lose at most the 63 of the
  // first block: 1 + 4032·2⁻²⁴ on the SIMD backend (exactly representable in float32), the exact sum on js.
  const k = 4096;
  const a = new Float32Array(k).fill(1), b = new Float32Array(k).fill(2 ** -24);
  b[0] = 1;
  for (const [backend, want] of [['simd', 1 + 4032 * 2 ** -24], ['js', Math.fround(1 + 4095 * 2 ** -24)]] as const) {
    it(`${backend}: 1×1 GEMM over k = ${k} gives ${want}`, () => {
      const old = setKernelBackend(backend);
      try {
        const c = new Float32Array(1);
        sgemm(c, a, b, 1, 1, k);
        expect(c[0]).toBe(want);
        const c64 = new Float64Array(1);
        dgemmAcc(c64, a, b, 1, 1, k);
        expect(c64[0]).toBe(backend === 'js' ? 1 + 4095 * 2 ** -24 : want);
      } finally {
        setKernelBackend(old);
      }
    });
  }
});

// Each backend against the reference: the asm.js/JS kernels sum in the reference's order in float64, so they give
// the same bits; the SIMD kernels sum blocks of ≤ 64 float32 products in float32 and carry the total in float64,
// so they are checked to the float32-op tolerance (atol 1e-5·max|ref| + rtol 1e-4).
for (const backend of ['js', 'simd'] as KernelBackend[]) {
describe(`${backend} backend`, () => {
  let old: KernelBackend;
  beforeAll(() => {
    old = setKernelBackend(backend);
    expect(kernelBackend()).toBe(backend);
  });
  afterAll(() => void setKernelBackend(old));
  const matches = backend === 'js' ? assertIdentical : (what: string, got: ArrayLike<number>, ref: ArrayLike<number>) => assertClose(what, got, ref);

describe('sgemm vs sgemmNaive', () => {
  // Same per-output summation order and one rounding, so the results are bit-identical, not merely close.
  it('random small shapes, transposes, leading dims, offsets, accumulate', () => {
    fc.assert(
      fc.property(caseArb(23), (cs) => {
        const { a, b, c0, opts } = setup(cs);
        const got = c0.slice(), ref = c0.slice();
        sgemm(got, a, b, cs.m, cs.n, cs.k, opts);
        sgemmNaive(ref, a, b, cs.m, cs.n, cs.k, opts);
        matches(`sgemm ${JSON.stringify(cs)}`, got, ref);
      }),
      { seed: 42, numRuns: 200 },
    );
  });

  it('shapes crossing the MC=128 / NC=512 block edges (m=133 n=517 k=9, all transposes)', () => {
    for (const [transA, transB] of [[false, false], [true, false], [false, true], [true, true]] as const) {
      const cs: Case = { m: 133, n: 517, k: 9, transA, transB, accumulate: false, padA: 1, padB: 2, padC: 3, aOff: 1, bOff: 2, cOff: 3, seed: 7 };
      const { a, b, c0, opts } = setup(cs);
      const got = c0.slice(), ref = c0.slice();
      sgemm(got, a, b, cs.m, cs.n, cs.k, opts);
      sgemmNaive(ref, a, b, cs.m, cs.n, cs.k, opts);
      matches(`sgemm tA=${transA} tB=${transB}`, got, ref);
    }
  });

  it('long k (m=9 n=6 k=1500) is close to a float64 dot product', () => {
    const m = 9, n = 6, k = 1500;
    const a = randArray(1, m * k), b = randArray(2, k * n);
    const c = new Float32Array(m * n);
    sgemm(c, a, b, m, n, k);
    const ref = new Float64Array(m * n);
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += a[i * k + p]! * b[p * n + j]!;
      ref[i * n + j] = s;
    }
    assertClose('sgemm k=1500', c, ref);
  });

  it('only the ldc-strided m×n block of C is written', () => {
    const m = 5, n = 6, k = 4, ldc = 9;
    const a = randArray(3, m * k), b = randArray(4, k * n);
    const c = new Float32Array(2 + m * ldc).fill(-7);
    sgemm(c, a, b, m, n, k, { cOff: 2, ldc });
    for (let i = 0; i < c.length; i++) {
      const inside = i >= 2 && (i - 2) % ldc < n && i < 2 + m * ldc;
      if (!inside) expect(c[i], `c[${i}]`).toBe(-7);
    }
  });

  it('k=0: C = 0, or unchanged when accumulating', () => {
    const c = Float32Array.from([1, 2, 3, 4, 5, 6]);
    sgemm(c, new Float32Array(0), new Float32Array(0), 2, 3, 0, { accumulate: true });
    expect(Array.from(c)).toEqual([1, 2, 3, 4, 5, 6]);
    sgemm(c, new Float32Array(0), new Float32Array(0), 2, 3, 0);
    expect(Array.from(c)).toEqual([0, 0, 0, 0, 0, 0]);
  });

  it('Inf/NaN in A or B reach only the outputs that use them (zero padding of edge tiles never leaks)', () => {
    const m = 5, n = 7, k = 3; // neither a multiple of the 4×4 tile
    const a = randArray(5, m * k), b = randArray(6, k * n);
    a[4 * k + 1] = Infinity; // row 4 of A
    b[2 * n + 6] = NaN; // column 6 of B
    const got = new Float32Array(m * n), ref = new Float32Array(m * n);
    sgemm(got, a, b, m, n, k);
    sgemmNaive(ref, a, b, m, n, k);
    matches('sgemm with Inf/NaN', got, ref);
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
      expect(Number.isFinite(got[i * n + j]!), `c[${i},${j}]`).toBe(i !== 4 && j !== 6);
    }
  });
});

describe('sgemmRange: panels read past the range, panels kept between calls (BKey)', () => {
  it('a last partial panel of B read past column j1: Inf/NaN there never reach C; at the end of b, padded', () => {
    // B's rows are copied whole 8-column panels at a time where b holds the columns past j1 (they feed C-block
    // columns that are never stored), else the partial panel is padded with zeros.
    const m = 6, n = 203, k = 70, ldb = n;
    const a = randArray(20, m * k), b = randArray(21, k * ldb);
    for (let p = 0; p < k; p++) {
      b[p * ldb + 131] = NaN; // just past the first range's last column (130)
      b[p * ldb + 133] = Infinity;
    }
    for (const [j0, j1] of [[0, 131], [134, 203], [3, 77]] as const) {
      const got = new Float32Array(m * n).fill(-3), ref = new Float32Array(m * n).fill(-3);
      sgemmRange(got, a, b, m, n, k, {}, 0, m, j0, j1);
      for (let i = 0; i < m; i++) {
        const one = new Float32Array(j1 - j0);
        sgemmNaive(one, a, b, 1, j1 - j0, k, { aOff: i * k, bOff: j0, ldb, ldc: j1 - j0 });
        ref.set(one, i * n + j0);
      }
      matches(`columns [${j0}, ${j1})`, got, ref);
      for (let i = 0; i < m; i++) for (let j = j0; j < j1; j++) expect(Number.isFinite(got[i * n + j]!), `c[${i},${j}]`).toBe(true);
    }
  });

  it('short rows packed from one span of b (7×7 maps): the next row\'s Inf/NaN in the padded panel never reach C', () => {
    const m = 9, n = 49, k = 130;
    const a = randArray(22, m * k), b = randArray(23, k * n + 8); // b runs on past the last row: one span
    for (let p = 0; p < k; p += 3) b[p * n + 2] = p % 2 === 0 ? NaN : -Infinity; // read again as columns 49–55 of the row before
    const got = new Float32Array(m * n), ref = new Float32Array(m * n);
    sgemmRange(got, a, b, m, n, k, {}, 0, m, 0, n);
    sgemmNaive(ref, a, b, m, n, k);
    matches('7×7 span', got, ref);
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) expect(Number.isFinite(got[i * n + j]!), `c[${i},${j}]`).toBe(j !== 2);
  });

  it('A too large to pack whole, deep k: each row block copied once as a span (odd rows, lda > k, offsets)', () => {
    const m = 301, n = 21, k = 1030, lda = k + 3, aOff = 5;
    const a = randArray(24, aOff + m * lda), b = randArray(25, k * n);
    a[aOff + 300 * lda + 700] = NaN; // the last row, in the second slice
    for (const accumulate of [false, true]) {
      const got = randArray(26, m * n), ref = got.slice();
      sgemmRange(got, a, b, m, n, k, { aOff, lda, accumulate }, 0, m, 0, n);
      sgemmNaive(ref, a, b, m, n, k, { aOff, lda, accumulate });
      matches(`301×21×1030${accumulate ? ' accumulate' : ''}`, got, ref);
      expect(got.slice(0, 300 * n).every(Number.isFinite)).toBe(true);
      expect(got.slice(300 * n).every(Number.isNaN)).toBe(true);
    }
  });

  it('units of one call (one key) reuse the packed A and B; another call, another A or other rows repack', () => {
    const m = 24, n = 150, k = 90;
    const a = randArray(30, m * k), a2 = randArray(31, m * k), b = randArray(32, k * n);
    const ref = (aa: Float32Array) => {
      const c = new Float32Array(m * n);
      sgemmNaive(c, aa, b, m, n, k);
      return c;
    };
    const call = {};
    const got = new Float32Array(m * n);
    // Column blocks of one call share A (rows 0–23), row blocks share B.
    sgemmRange(got, a, b, m, n, k, {}, 0, m, 0, 70, null, null, { call, id: 0 });
    sgemmRange(got, a, b, m, n, k, {}, 0, m, 70, n, null, null, { call, id: 1 });
    matches('two column blocks, one key', got, ref(a));
    sgemmRange(got, a, b, m, n, k, {}, 0, 8, 0, n, null, null, { call, id: 2 });
    sgemmRange(got, a, b, m, n, k, {}, 8, m, 0, n, null, null, { call, id: 2 });
    matches('two row blocks, one key', got, ref(a));
    // The same key with another A (a caller's mistake, but not a wrong result), then A changed in place for a new call.
    sgemmRange(got, a, b, m, n, k, {}, 0, m, 0, n, null, null, { call, id: 2 });
    sgemmRange(got, a2, b, m, n, k, {}, 0, m, 0, n, null, null, { call, id: 2 });
    matches('another A', got, ref(a2));
    a2.set(a);
    sgemmRange(got, a2, b, m, n, k, {}, 0, m, 0, n, null, null, { call: {}, id: 2 });
    matches('A changed, a new call', got, ref(a));
  });

  it('deep A too large for the whole-A region: its span goes to the whole-B region, and B panels it reaches are repacked', () => {
    // k = 2304: a 128-row span is 294,912 floats (more than the whole-A region). B1 (300 columns) is packed whole and
    // held; B2 (500 columns) is too large for that, so A2's span goes where B1's panels are; B3 (37 columns) is
    // packed whole and A3's span goes past it.
    const k = 2304, m1 = 8, n1 = 300, m2 = 301, n2 = 500;
    const a1 = randArray(40, m1 * k), b1 = randArray(41, k * n1), a2 = randArray(42, m2 * k), b2 = randArray(43, k * n2);
    const ref = (aa: Float32Array, bb: Float32Array, m: number, n: number) => {
      const c = new Float32Array(m * n);
      sgemmNaive(c, aa, bb, m, n, k);
      return c;
    };
    const call = {};
    const got1 = new Float32Array(m1 * n1), got2 = new Float32Array(m2 * n2);
    // B1 packed whole and held (key call/0); then a call whose A span covers most of the whole-B region.
    sgemmRange(got1, a1, b1, m1, n1, k, {}, 0, m1, 0, n1, null, null, { call, id: 0 });
    matches('8×300×2304', got1, ref(a1, b1, m1, n1));
    sgemmRange(got2, a2, b2, m2, n2, k, {}, 0, m2, 0, n2, null, null, { call: {}, id: 0 });
    matches('301×500×2304 (A span over held B panels)', got2, ref(a2, b2, m2, n2));
    // The first key again: its B panels were overwritten by the span, so they are packed anew.
    got1.fill(0);
    sgemmRange(got1, a1, b1, m1, n1, k, {}, 0, m1, 0, n1, null, null, { call, id: 0 });
    matches('8×300×2304 again, one key', got1, ref(a1, b1, m1, n1));
    const b3 = b2.subarray(0, k * 37), got3 = new Float32Array(m2 * 37);
    sgemmRange(got3, a2, b3, m2, 37, k, {}, 0, m2, 0, 37, null, null, { call, id: 1 });
    matches('301×37×2304 (A span past B)', got3, ref(a2, b3, m2, 37));
  });

  it('stored rows: C\'s rows side by side (ldc = n, n = 1 and n = 49), short rows with gaps, long rows', () => {
    for (const [m, n, k, padC] of [[1000, 1, 64, 0], [130, 49, 300, 0], [130, 30, 70, 3], [70, 100, 70, 5], [9, 600, 20, 0]] as const) {
      const ldc = n + padC, a = randArray(50 + n, m * k), b = randArray(51 + n, k * n);
      const got = randArray(52, 2 + m * ldc), ref = got.slice();
      sgemmRange(got, a, b, m, n, k, { cOff: 2, ldc }, 0, m, 0, n);
      sgemmNaive(ref, a, b, m, n, k, { cOff: 2, ldc });
      matches(`${m}×${n}×${k} ldc ${ldc}`, got, ref);
    }
  });
});

describe('sgemmRange with an epilogue (the fused eval store)', () => {
  // Reference: the plain GEMM's stored values, then round(v·scale + shift (+ res)) in float64, then ReLU (a set
  // sign bit gives +0), written out here.
  function check(cs: Case, withRes: boolean, relu: boolean, withScale: boolean, ch0: number): void {
    const { a, b, c0, opts } = setup({ ...cs, accumulate: false });
    const ldc = opts.ldc!, cOff = opts.cOff!;
    const ref = c0.slice();
    sgemm(ref, a, b, cs.m, cs.n, cs.k, opts);
    const scale = withScale ? Float64Array.from(randArray(cs.seed + 5, ch0 + cs.m)) : null;
    const shift = Float64Array.from(randArray(cs.seed + 6, ch0 + cs.m));
    const res = withRes ? randArray(cs.seed + 7, c0.length) : null;
    for (let i = 0; i < cs.m; i++) {
      for (let j = 0; j < cs.n; j++) {
        const at = cOff + i * ldc + j;
        let v = Math.fround(ref[at]! * (scale ? scale[ch0 + i]! : 1) + shift[ch0 + i]! + (res ? res[at]! : 0));
        if (relu && (v < 0 || Object.is(v, -0))) v = 0;
        ref[at] = v;
      }
    }
    const ep: GemmEpilogue = { scale, shift, relu, res, ch0 };
    const got = c0.slice();
    const i = cs.m >> 1, j = cs.n >> 1;
    sgemmRange(got, a, b, cs.m, cs.n, cs.k, opts, 0, i, 0, cs.n, null, ep);
    sgemmRange(got, a, b, cs.m, cs.n, cs.k, opts, i, cs.m, 0, j, null, ep);
    sgemmRange(got, a, b, cs.m, cs.n, cs.k, opts, i, cs.m, j, cs.n, null, ep);
    assertIdentical(`epilogue res=${withRes} relu=${relu} ${JSON.stringify(cs)}`, got, ref);
  }
  it('random shapes, residual or not, ReLU or not: the same bits as store, then the epilogue', () => {
    fc.assert(
      fc.property(caseArb(23), fc.boolean(), fc.boolean(), fc.boolean(), fc.integer({ min: 0, max: 5 }), (cs, r, relu, sc, ch0) => check(cs, r, relu, sc, ch0)),
      { seed: 42, numRuns: 60 },
    );
  });
  it('crossing the MC=128 / NC=512 block edges (m=133 n=517 k=70)', () => {
    const cs: Case = { m: 133, n: 517, k: 70, transA: false, transB: false, accumulate: false, padA: 1, padB: 2, padC: 3, aOff: 1, bOff: 2, cOff: 3, seed: 9 };
    check(cs, true, true, true, 2);
    check(cs, false, false, true, 0);
  });
});

describe('sgemmRange (determinism under any split)', () => {
  it('any partition of C into row/column ranges gives the same bits as one call', () => {
    fc.assert(
      fc.property(
        caseArb(40),
        fc.integer({ min: 0, max: 40 }),
        fc.integer({ min: 0, max: 40 }),
        (cs, si, sj) => {
          const { a, b, c0, opts } = setup(cs);
          const whole = c0.slice(), parts = c0.slice();
          sgemm(whole, a, b, cs.m, cs.n, cs.k, opts);
          const i = Math.min(si, cs.m), j = Math.min(sj, cs.n);
          sgemmRange(parts, a, b, cs.m, cs.n, cs.k, opts, 0, i, 0, j);
          sgemmRange(parts, a, b, cs.m, cs.n, cs.k, opts, i, cs.m, 0, j);
          sgemmRange(parts, a, b, cs.m, cs.n, cs.k, opts, 0, i, j, cs.n);
          sgemmRange(parts, a, b, cs.m, cs.n, cs.k, opts, i, cs.m, j, cs.n);
          assertIdentical(`split at (${i}, ${j})`, parts, whole);
        },
      ),
      { seed: 42, numRuns: 60 },
    );
  });
});

describe('deep k (257 … 1300)', () => {
  it('bit-identical to sgemmNaive for random deep shapes, transposes, offsets, accumulate', () => {
    fc.assert(
      fc.property(caseArb(20), fc.integer({ min: 257, max: 1300 }), (cs, k) => {
        const c = { ...cs, k };
        const { a, b, c0, opts } = setup(c);
        const got = c0.slice(), ref = c0.slice();
        sgemm(got, a, b, c.m, c.n, k, opts);
        sgemmNaive(ref, a, b, c.m, c.n, k, opts);
        matches(`sgemm deep ${JSON.stringify(c)}`, got, ref);
      }),
      { seed: 3, numRuns: 25 },
    );
  });

  it('crossing MC / NC edges with k = 600 (m=133, n=517)', () => {
    const cs: Case = { m: 133, n: 517, k: 600, transA: true, transB: false, accumulate: true, padA: 1, padB: 0, padC: 2, aOff: 3, bOff: 1, cOff: 2, seed: 9 };
    const { a, b, c0, opts } = setup(cs);
    const got = c0.slice(), ref = c0.slice();
    sgemm(got, a, b, cs.m, cs.n, cs.k, opts);
    sgemmNaive(ref, a, b, cs.m, cs.n, cs.k, opts);
    matches('deep crossing', got, ref);
  });
});

describe('dgemmAcc (float64 C, one running sum across calls; bit for bit on js)', () => {
  it('two calls over consecutive k ranges = one float64 loop over all of k', () => {
    fc.assert(
      fc.property(caseArb(24), fc.integer({ min: 1, max: 700 }), fc.integer({ min: 0, max: 700 }), (cs, k, split) => {
        const { m, n, transA, transB } = cs;
        const s = Math.min(split, k);
        const a = randArray(cs.seed, m * k), b = randArray(cs.seed + 1, k * n);
        const c0 = Float64Array.from(randArray(cs.seed + 2, m * n));
        // reference: plain float64 loop, p ascending, starting from c0
        const ref = c0.slice();
        for (let i = 0; i < m; i++) {
          for (let j = 0; j < n; j++) {
            let acc = ref[i * n + j]!;
            for (let p = 0; p < k; p++) acc += (transA ? a[p * m + i]! : a[i * k + p]!) * (transB ? b[j * k + p]! : b[p * n + j]!);
            ref[i * n + j] = acc;
          }
        }
        const got = c0.slice();
        // first s terms, then the rest (offsets into A and B select the k range)
        const lda = transA ? m : k, ldb = transB ? k : n;
        dgemmAcc(got, a, b, m, n, s, { transA, transB, lda, ldb });
        dgemmAcc(got, a, b, m, n, k - s, {
          transA, transB, lda, ldb, aOff: transA ? s * m : s, bOff: transB ? s : s * n,
        });
        matches(`dgemmAcc ${m}x${n}x${k} split ${s}`, got, ref);
      }),
      { seed: 5, numRuns: 40 },
    );
  });
});
});
}
