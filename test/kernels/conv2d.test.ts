import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setConfig, type Config } from '../../src/config.js';
import {
  conv2dBackwardBias,
  conv2dBackwardInput,
  conv2dBackwardInputNaive,
  conv2dBackwardWeight,
  conv2dBackwardWeightNaive,
  conv2dForward,
  conv2dForwardFused,
  conv2dForwardNaive,
  conv2dOutSize,
  setWinogradPolicy,
  type Conv2dParams,
  type WinogradPolicy,
} from '../../src/kernels/conv2d.js';
import { setKernelBackend, type KernelBackend } from '../../src/kernels/wasm/features.js';
import { assertClose, assertIdentical, fusedEpilogueReference, randArray } from './compare.js';

interface Spec {
  n: number; c: number; h: number; w: number; o: number; kh: number; kw: number;
  sh: number; sw: number; ph: number; pw: number; dh: number; dw: number; groups: number;
}

function params(s: Spec): Conv2dParams {
  return {
    n: s.n, c: s.c, h: s.h, w: s.w, o: s.o, kh: s.kh, kw: s.kw, strideH: s.sh, strideW: s.sw, padH: s.ph, padW: s.pw,
    dilH: s.dh, dilW: s.dw, groups: s.groups,
    oh: conv2dOutSize(s.h, s.kh, s.sh, s.ph, s.dh), ow: conv2dOutSize(s.w, s.kw, s.sw, s.pw, s.dw),
  };
}

const label = (p: Conv2dParams) =>
  `x=[${p.n},${p.c},${p.h},${p.w}] w=[${p.o},${p.c / p.groups},${p.kh},${p.kw}] s=(${p.strideH},${p.strideW}) ` +
  `p=(${p.padH},${p.padW}) d=(${p.dilH},${p.dilW}) g=${p.groups} → [${p.oh},${p.ow}]`;

/** The weight gradient, fast and naive, accumulated onto the same noise (x, dy, dw₀ from seeds seed … seed + 2). */
function weightGradAndNaive(p: Conv2dParams, seed: number): { dw: Float32Array; dwr: Float32Array } {
  const xs = p.n * p.c * p.h * p.w, ws = p.o * (p.c / p.groups) * p.kh * p.kw, ys = p.n * p.o * p.oh * p.ow;
  const x = randArray(seed, xs), dy = randArray(seed + 1, ys), dw0 = randArray(seed + 2, ws);
  const dw = dw0.slice(), dwr = dw0.slice();
  conv2dBackwardWeight(dw, dy, x, p);
  conv2dBackwardWeightNaive(dwr, dy, x, p);
  return { dw, dwr };
}

/** The weight gradient of each shape within the default tolerances of the naive one (noise from `seed`). */
function checkWeightGrads(what: string, shapes: Spec[], seed: number): void {
  for (const sp of shapes) {
    const p = params(sp);
    const { dw, dwr } = weightGradAndNaive(p, seed);
    assertClose(`${what} ${label(p)}`, dw, dwr);
  }
}

/** The weight gradient with x[at] = Inf: non-finite where the naive loop's is, and close elsewhere. */
function checkWeightGradInf(what: string, p: Conv2dParams, at: number): void {
  const x = randArray(95, p.n * p.c * p.h * p.w), dy = randArray(96, p.n * p.o * p.oh * p.ow);
  x[at] = Infinity;
  const dw = new Float32Array(p.o * p.c * 9), dwr = new Float32Array(p.o * p.c * 9);
  conv2dBackwardWeight(dw, dy, x, p);
  conv2dBackwardWeightNaive(dwr, dy, x, p);
  expect(dwr.some((v) => !Number.isFinite(v))).toBe(true);
  assertClose(`${what} ${label(p)}`, dw, dwr);
}

/** Fast vs naive for forward (with and without bias) and all three backward kernels, accumulating onto noise. */
function checkAll(p: Conv2dParams, seed: number): void {
  const xs = p.n * p.c * p.h * p.w, ws = p.o * (p.c / p.groups) * p.kh * p.kw, ys = p.n * p.o * p.oh * p.ow;
  const x = randArray(seed, xs), w = randArray(seed + 1, ws), bias = randArray(seed + 2, p.o), dy = randArray(seed + 3, ys);
  const name = label(p);

  for (const b of [null, bias]) {
    const y = new Float32Array(ys).fill(NaN); // forward must overwrite everything
    const yr = new Float32Array(ys);
    conv2dForward(y, x, w, b, p);
    conv2dForwardNaive(yr, x, w, b, p);
    assertClose(`fwd${b ? '+bias' : ''} ${name}`, y, yr);
  }

  // Backward kernels accumulate: start both from the same non-zero contents.
  const dx0 = randArray(seed + 4, xs), dw0 = randArray(seed + 5, ws), db0 = randArray(seed + 6, p.o);
  const dx = dx0.slice(), dxr = dx0.slice();
  conv2dBackwardInput(dx, dy, w, p);
  conv2dBackwardInputNaive(dxr, dy, w, p);
  assertClose(`bwd input ${name}`, dx, dxr);

  const dw = dw0.slice(), dwr = dw0.slice();
  conv2dBackwardWeight(dw, dy, x, p);
  conv2dBackwardWeightNaive(dwr, dy, x, p);
  assertClose(`bwd weight ${name}`, dw, dwr);

  const db = db0.slice();
  conv2dBackwardBias(db, dy, p);
  const dbr = new Float64Array(p.o);
  const ohw = p.oh * p.ow;
  for (let i = 0; i < ys; i++) dbr[Math.floor(i / ohw) % p.o]! += dy[i]!;
  for (let o = 0; o < p.o; o++) dbr[o]! += db0[o]!;
  assertClose(`bwd bias ${name}`, db, dbr);
}

const named: [string, Spec][] = [
  ['3×3 s1 p1 batch 1', { n: 1, c: 3, h: 8, w: 8, o: 5, kh: 3, kw: 3, sh: 1, sw: 1, ph: 1, pw: 1, dh: 1, dw: 1, groups: 1 }],
  ['3×3 s2 p2 batch 3, odd non-square', { n: 3, c: 4, h: 9, w: 7, o: 6, kh: 3, kw: 3, sh: 2, sw: 2, ph: 2, pw: 2, dh: 1, dw: 1, groups: 1 }],
  ['groups 2 dil 4', { n: 2, c: 4, h: 13, w: 11, o: 6, kh: 3, kw: 3, sh: 1, sw: 1, ph: 4, pw: 4, dh: 4, dw: 4, groups: 2 }],
  ['dil (2,3) non-square kernel', { n: 1, c: 3, h: 10, w: 12, o: 4, kh: 2, kw: 3, sh: 1, sw: 2, ph: 1, pw: 2, dh: 2, dw: 3, groups: 1 }],
  ['groups 4, c/groups 2', { n: 3, c: 8, h: 6, w: 5, o: 12, kh: 3, kw: 3, sh: 1, sw: 1, ph: 1, pw: 1, dh: 1, dw: 1, groups: 4 }],
  ['depthwise (groups = c)', { n: 2, c: 5, h: 7, w: 6, o: 5, kh: 3, kw: 3, sh: 2, sw: 1, ph: 1, pw: 1, dh: 1, dw: 1, groups: 5 }],
  ['1×1 s1 p0 (direct GEMM path)', { n: 3, c: 7, h: 5, w: 6, o: 9, kh: 1, kw: 1, sh: 1, sw: 1, ph: 0, pw: 0, dh: 1, dw: 1, groups: 1 }],
  ['1×1 s1 p0 groups 2 (direct GEMM path with offsets)', { n: 2, c: 6, h: 3, w: 5, o: 4, kh: 1, kw: 1, sh: 1, sw: 1, ph: 0, pw: 0, dh: 1, dw: 1, groups: 2 }],
  ['1×1 s2 (ResNet downsample)', { n: 2, c: 6, h: 9, w: 8, o: 8, kh: 1, kw: 1, sh: 2, sw: 2, ph: 0, pw: 0, dh: 1, dw: 1, groups: 1 }],
  ['1×1 with padding 1', { n: 1, c: 2, h: 3, w: 4, o: 3, kh: 1, kw: 1, sh: 1, sw: 1, ph: 1, pw: 1, dh: 1, dw: 1, groups: 1 }],
  ['7×7 s2 p3 stem', { n: 1, c: 3, h: 20, w: 18, o: 8, kh: 7, kw: 7, sh: 2, sw: 2, ph: 3, pw: 3, dh: 1, dw: 1, groups: 1 }],
  // The SIMD backend packs col from padded stride-phase planes (wasm/im2col.ts): panels inside one output row and
  // across row ends, stride 2 with odd widths, a partial last panel.
  ['7×7 s2 p3 batch 2, odd sizes (conv1-like)', { n: 2, c: 3, h: 37, w: 41, o: 10, kh: 7, kw: 7, sh: 2, sw: 2, ph: 3, pw: 3, dh: 1, dw: 1, groups: 1 }],
  ['3×3 s2 p1, 5 channels @31×29', { n: 1, c: 5, h: 31, w: 29, o: 7, kh: 3, kw: 3, sh: 2, sw: 2, ph: 1, pw: 1, dh: 1, dw: 1, groups: 1 }],
  ['kernel as large as the padded input', { n: 2, c: 2, h: 3, w: 2, o: 3, kh: 5, kw: 4, sh: 1, sw: 1, ph: 1, pw: 1, dh: 1, dw: 1, groups: 1 }],
  ['stride larger than kernel', { n: 1, c: 2, h: 11, w: 10, o: 3, kh: 2, kw: 2, sh: 3, sw: 4, ph: 1, pw: 0, dh: 1, dw: 1, groups: 1 }],
  ['3×3 p1 on a 1×1 map (only the centre tap is live)', { n: 3, c: 5, h: 1, w: 1, o: 6, kh: 3, kw: 3, sh: 1, sw: 1, ph: 1, pw: 1, dh: 1, dw: 1, groups: 1 }],
  ['3×3 s2 p1 on a 2×2 map (4 of 9 taps live), groups 2', { n: 2, c: 4, h: 2, w: 2, o: 6, kh: 3, kw: 3, sh: 2, sw: 2, ph: 1, pw: 1, dh: 1, dw: 1, groups: 2 }],
  ['wide output (crosses the GEMM column block)', { n: 1, c: 2, h: 3, w: 200, o: 5, kh: 3, kw: 3, sh: 1, sw: 1, ph: 1, pw: 1, dh: 1, dw: 1, groups: 1 }],
];

describe('conv2dOutSize', () => {
  it('PyTorch formula examples', () => {
    expect(conv2dOutSize(224, 7, 2, 3, 1)).toBe(112); // ResNet stem
    expect(conv2dOutSize(56, 3, 1, 1, 1)).toBe(56);
    expect(conv2dOutSize(56, 1, 2, 0, 1)).toBe(28);
    expect(conv2dOutSize(9, 3, 2, 2, 1)).toBe(6); // floor((9 + 4 − 2 − 1)/2) + 1
    expect(conv2dOutSize(13, 3, 1, 4, 4)).toBe(13); // dilated: 13 + 8 − 8 − 1 + 1
    expect(conv2dOutSize(10, 2, 1, 1, 2)).toBe(10); // 10 + 2 − 2 − 1 + 1
  });
});

describe('conv2d naive references (checked by hand and by the adjoint identity)', () => {
  it('forward by hand: 1×1×3×3 input, 2×2 kernel, pad 1, stride 2, bias', () => {
    const x = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const w = Float32Array.from([1, 10, 100, 1000]);
    const p = params({ n: 1, c: 1, h: 3, w: 3, o: 1, kh: 2, kw: 2, sh: 2, sw: 2, ph: 1, pw: 1, dh: 1, dw: 1, groups: 1 });
    expect([p.oh, p.ow]).toEqual([2, 2]);
    const y = new Float32Array(4);
    conv2dForwardNaive(y, x, w, Float32Array.from([0.5]), p);
    // windows (top-left at (−1,−1), (−1,1), (1,−1), (1,1)); w row-major [[1,10],[100,1000]]
    // (0,0): only x[0,0]=1 under w[1,1]=1000 → 1000; (0,1): x[0,1]=2·100 + x[0,2]=3·1000 → 3200
    // (1,0): x[1,0]=4·10 + x[2,0]=7·1000 → 7040; (1,1): 5·1 + 6·10 + 8·100 + 9·1000 → 9865
    expect(Array.from(y)).toEqual([1000.5, 3200.5, 7040.5, 9865.5]);
  });

  it('groups: each output channel sees only its group of input channels', () => {
    // 2 groups, 1 channel each, 1×1 kernel: y[0] = 2·x[0], y[1] = 3·x[1]
    const x = Float32Array.from([1, 2, 10, 20]);
    const w = Float32Array.from([2, 3]);
    const p = params({ n: 1, c: 2, h: 1, w: 2, o: 2, kh: 1, kw: 1, sh: 1, sw: 1, ph: 0, pw: 0, dh: 1, dw: 1, groups: 2 });
    const y = new Float32Array(4);
    conv2dForwardNaive(y, x, w, null, p);
    expect(Array.from(y)).toEqual([2, 4, 30, 60]);
    conv2dForward(y.fill(0), x, w, null, p);
    expect(Array.from(y)).toEqual([2, 4, 30, 60]);
  });

  it('⟨conv(x, w), dy⟩ = ⟨x, ∂x⟩ = ⟨w, ∂w⟩ for the naive backward kernels', () => {
    for (const [name, s] of named) {
      const p = params(s);
      const xs = p.n * p.c * p.h * p.w, ws = p.o * (p.c / p.groups) * p.kh * p.kw, ys = p.n * p.o * p.oh * p.ow;
      const x = randArray(11, xs), w = randArray(12, ws), dy = randArray(13, ys);
      const y = new Float32Array(ys), dx = new Float32Array(xs), dw = new Float32Array(ws);
      conv2dForwardNaive(y, x, w, null, p);
      conv2dBackwardInputNaive(dx, dy, w, p);
      conv2dBackwardWeightNaive(dw, dy, x, p);
      let yy = 0, xx = 0, wwSum = 0, mag = 0;
      for (let i = 0; i < ys; i++) { yy += y[i]! * dy[i]!; mag += Math.abs(y[i]! * dy[i]!); }
      for (let i = 0; i < xs; i++) xx += x[i]! * dx[i]!;
      for (let i = 0; i < ws; i++) wwSum += w[i]! * dw[i]!;
      const tol = 1e-5 * Math.max(1, mag);
      expect(Math.abs(xx - yy), `${name}: ⟨x,dx⟩=${xx} vs ⟨y,dy⟩=${yy}`).toBeLessThan(tol);
      expect(Math.abs(wwSum - yy), `${name}: ⟨w,dw⟩=${wwSum} vs ⟨y,dy⟩=${yy}`).toBeLessThan(tol);
    }
  });
});

for (const backend of ['simd', 'js'] as KernelBackend[]) for (const policy of ['never', 'always'] as const) {
  // 'never': every shape through im2col + GEMM; 'always': stride-1 3×3 shapes through Winograd. The direct SIMD
  // kernel (3×3 with few channels) is off here: conv2d-direct.test.ts checks it.
  describe(`conv2d fast vs naive, ${backend} backend, Winograd ${policy}`, () => {
    let old: WinogradPolicy;
    let oldBackend: KernelBackend;
    let oldConfig: Partial<Config>;
    beforeAll(() => {
      old = setWinogradPolicy(policy);
      oldBackend = setKernelBackend(backend);
      oldConfig = setConfig({ directConv: false });
    });
    afterAll(() => {
      setWinogradPolicy(old);
      setKernelBackend(oldBackend);
      setConfig(oldConfig);
    });

    for (const [name, s] of named) {
      const p = params(s);
      it(`${name}: ${label(p)}`, () => checkAll(p, 1000 + p.c * 31 + p.o));
    }

    it('batch and channel blocks: 1×1 and 3×3 with many units per direction', () => {
      checkAll(params({ n: 1, c: 70, h: 12, w: 13, o: 75, kh: 3, kw: 3, sh: 1, sw: 1, ph: 1, pw: 1, dh: 1, dw: 1, groups: 1 }), 77);
      checkAll(params({ n: 2, c: 66, h: 9, w: 17, o: 40, kh: 1, kw: 1, sh: 1, sw: 1, ph: 0, pw: 0, dh: 1, dw: 1, groups: 1 }), 78);
      checkAll(params({ n: 1, c: 40, h: 15, w: 15, o: 36, kh: 3, kw: 3, sh: 2, sw: 2, ph: 1, pw: 1, dh: 1, dw: 1, groups: 2 }), 79);
    });

    it('forward on small maps with k > 512 and several row blocks (B packed once per thread), twice on one buffer', () => {
      // 1×1 600→200 @5, 3×3 70→150 @6 (k = 630; every 8-column panel straddles output rows) and 3×3/2 70→150 @13:
      // the units of one call share B's packing; a second call with new values in the same x buffer must not reuse
      // the first's.
      const shapes: Spec[] = [
        { n: 1, c: 600, h: 5, w: 5, o: 200, kh: 1, kw: 1, sh: 1, sw: 1, ph: 0, pw: 0, dh: 1, dw: 1, groups: 1 },
        { n: 1, c: 70, h: 6, w: 6, o: 150, kh: 3, kw: 3, sh: 1, sw: 1, ph: 1, pw: 1, dh: 1, dw: 1, groups: 1 },
        { n: 1, c: 70, h: 13, w: 13, o: 150, kh: 3, kw: 3, sh: 2, sw: 2, ph: 1, pw: 1, dh: 1, dw: 1, groups: 1 },
      ];
      for (const sp of shapes) {
        const p = params(sp);
        const x = randArray(81, p.n * p.c * p.h * p.w), w = randArray(82, p.o * p.c * p.kh * p.kw);
        for (const seed of [83, 84]) {
          x.set(randArray(seed, x.length));
          const y = new Float32Array(p.n * p.o * p.oh * p.ow).fill(NaN), yr = new Float32Array(y.length);
          conv2dForward(y, x, w, null, p);
          conv2dForwardNaive(yr, x, w, null, p);
          assertClose(`fwd (x seed ${seed}) ${label(p)}`, y, yr);
        }
      }
    });

    it('backward weight of few channels over many images is split over images (partial float64 sums in fixed order)', () => {
      // CIFAR's 3→16 stem at batch 16 and a pointwise 1×1 4→8: one channel block each, so the images are split
      // too. Not the naive order any more: each output is Σ of per-split float64 sums, rounded once, so within a
      // float32 rounding or two of the naive loop. Bits across thread counts: test/parallel/determinism.test.ts.
      const shapes: Spec[] = [
        { n: 16, c: 3, h: 32, w: 32, o: 16, kh: 3, kw: 3, sh: 1, sw: 1, ph: 1, pw: 1, dh: 1, dw: 1, groups: 1 },
        { n: 16, c: 4, h: 72, w: 72, o: 8, kh: 1, kw: 1, sh: 1, sw: 1, ph: 0, pw: 0, dh: 1, dw: 1, groups: 1 },
      ];
      for (const sp of shapes) {
        const p = params(sp);
        const { dw, dwr } = weightGradAndNaive(p, 71);
        assertClose(`bwd weight (split) ${label(p)}`, dw, dwr, backend === 'js' ? { atol: 2 ** -20, rtol: 2 ** -22 } : {});
      }
    });

    // The direct SIMD weight-gradient kernel (the 'always' policy takes Winograd for the stride-1 shapes): once per backend.
    if (policy === 'never') it('backward weight on ResNet-like maps: long rows, several image chunks, partial row tiles, non-finite x', () => {
      // 16→16 3×3 @32 batch 4 (CIFAR's first stage: float32 sums flushed every 64 steps, many rows); 32→5 3×3 on a
      // 40×200 map, batch 6 (the SIMD kernel's x rows of 8 channels take two image chunks, 5 + 1; 5 rows = one full
      // tile and one of a single row); 8→12 3×3/2 @15 (stride 2, oW = 8); 16→32 3×3/2 @14 batch 16 (images split 4
      // ways × 2 channel blocks: each unit writes its block of the float64 partials row by row).
      const shapes: Spec[] = [
        { n: 4, c: 16, h: 32, w: 32, o: 16, kh: 3, kw: 3, sh: 1, sw: 1, ph: 1, pw: 1, dh: 1, dw: 1, groups: 1 },
        { n: 6, c: 32, h: 40, w: 200, o: 5, kh: 3, kw: 3, sh: 1, sw: 1, ph: 1, pw: 1, dh: 1, dw: 1, groups: 1 },
        { n: 5, c: 8, h: 15, w: 15, o: 12, kh: 3, kw: 3, sh: 2, sw: 2, ph: 1, pw: 1, dh: 1, dw: 1, groups: 1 },
        { n: 16, c: 16, h: 14, w: 14, o: 32, kh: 3, kw: 3, sh: 2, sw: 2, ph: 1, pw: 1, dh: 1, dw: 1, groups: 1 },
      ];
      checkWeightGrads('bwd weight', shapes, 91);
      // An Inf in x: NaN/Inf only where the naive loop has them (padding and the columns past oW add 0, not 0·Inf).
      const p = params(shapes[2]!);
      checkWeightGradInf('bwd weight, Inf in x', p, (2 * p.c + 3) * p.h * p.w + 7 * p.w + 14);
      // Stride 2 with oW = 7 (each map one row of 49 positions): Inf in the last column, which a row's last vector
      // carries past the row's end before the next row overwrites it.
      const q = params(shapes[3]!);
      checkWeightGradInf('bwd weight (stride 2, odd oW), Inf in x', q, (9 * q.c + 5) * q.h * q.w + 5 * q.w + 13);
    });

    // The SIMD backend's Winograd F(3×3, 2×2) weight gradient (stride-1 3×3, ≥ 3 channels per group, oW ≥ 3).
    if (policy === 'always' && backend === 'simd') it('backward weight by Winograd: odd maps, padding 0 and 2, groups, image splits, odd channels', () => {
      // Few channels: 3→5 on 9×7, groups 2 of 4 channels each; tiny maps: 16→12 @4 batch 9, 10→9 on 5×6 without
      // padding (3×4 out: an odd number of tile rows), 8→6 on 4×3 (oW 3, the narrowest map Winograd takes); batch 1
      // on 7×9; 9→7 without padding (oW 11: a vector of four tiles half empty); groups 2 with 9 channels each and
      // padding 2; 16→10 @14 batch 16 (split over images, a partial row tile); 8→6 on 40×38 (100 vectors of tiles per
      // image: two rows of the float32 blocks).
      const shapes: Spec[] = [
        { n: 4, c: 3, h: 9, w: 7, o: 5, kh: 3, kw: 3, sh: 1, sw: 1, ph: 1, pw: 1, dh: 1, dw: 1, groups: 1 },
        { n: 3, c: 8, h: 6, w: 6, o: 6, kh: 3, kw: 3, sh: 1, sw: 1, ph: 1, pw: 1, dh: 1, dw: 1, groups: 2 },
        { n: 9, c: 16, h: 4, w: 4, o: 12, kh: 3, kw: 3, sh: 1, sw: 1, ph: 1, pw: 1, dh: 1, dw: 1, groups: 1 },
        { n: 5, c: 10, h: 5, w: 6, o: 9, kh: 3, kw: 3, sh: 1, sw: 1, ph: 0, pw: 0, dh: 1, dw: 1, groups: 1 },
        { n: 3, c: 8, h: 4, w: 3, o: 6, kh: 3, kw: 3, sh: 1, sw: 1, ph: 1, pw: 1, dh: 1, dw: 1, groups: 1 },
        { n: 1, c: 8, h: 7, w: 9, o: 5, kh: 3, kw: 3, sh: 1, sw: 1, ph: 1, pw: 1, dh: 1, dw: 1, groups: 1 },
        { n: 3, c: 9, h: 11, w: 13, o: 7, kh: 3, kw: 3, sh: 1, sw: 1, ph: 0, pw: 0, dh: 1, dw: 1, groups: 1 },
        { n: 2, c: 18, h: 10, w: 10, o: 6, kh: 3, kw: 3, sh: 1, sw: 1, ph: 2, pw: 2, dh: 1, dw: 1, groups: 2 },
        { n: 16, c: 16, h: 14, w: 14, o: 10, kh: 3, kw: 3, sh: 1, sw: 1, ph: 1, pw: 1, dh: 1, dw: 1, groups: 1 },
        { n: 2, c: 8, h: 40, w: 38, o: 6, kh: 3, kw: 3, sh: 1, sw: 1, ph: 1, pw: 1, dh: 1, dw: 1, groups: 1 },
      ];
      checkWeightGrads('bwd weight (Winograd)', shapes, 97);
      // The path is really taken (on 14×14 and on 4×4 maps): the direct kernel's or GEMM's sums round differently somewhere.
      for (const at of [8, 2]) {
        const q = params(shapes[at]!);
        const { dw } = weightGradAndNaive(q, 97);
        const old = setWinogradPolicy('never');
        const other = weightGradAndNaive(q, 97).dw;
        setWinogradPolicy(old);
        expect(dw.some((v, i) => v !== other[i])).toBe(true);
      }
      const p = params(shapes[8]!);
      // An Inf in x: the Winograd sums are not finite, so the unit falls back to the direct kernel (the naive NaN/Inf).
      checkWeightGradInf('bwd weight (Winograd), Inf in x', p, (5 * p.c + 3) * p.h * p.w + 7 * p.w + 6);
    });

    it(backend === 'js' ? 'backward weight is bit-identical to the naive float64 loop (same summation order)'
      : 'backward weight is close to the naive float64 loop (float32 blocks of ≤ 64 terms, float64 total)', () => {
      for (const [, s] of named) {
        const p = params(s);
        const { dw, dwr } = weightGradAndNaive(p, 61);
        if (backend === 'js') assertIdentical(`bwd weight ${label(p)}`, dw, dwr);
        else assertClose(`bwd weight ${label(p)}`, dw, dwr);
      }
    });

    it('fused forward (scale, shift, residual, relu) matches conv then epilogue', () => {
      for (const [, s] of named) {
        const p = params(s);
        const xs = p.n * p.c * p.h * p.w, ws = p.o * (p.c / p.groups) * p.kh * p.kw, ys = p.n * p.o * p.oh * p.ow;
        const x = randArray(71, xs), w = randArray(72, ws), res = randArray(73, ys);
        const scale = Float64Array.from(randArray(74, p.o)), shift = Float64Array.from(randArray(75, p.o));
        const y = new Float32Array(ys).fill(NaN), conv = new Float32Array(ys);
        conv2dForwardFused(y, x, w, res, p, { scale, shift, relu: true });
        conv2dForwardNaive(conv, x, w, null, p);
        assertClose(`fused ${label(p)}`, y, fusedEpilogueReference(conv, scale, shift, res, p.o, p.oh * p.ow));
      }
    });

    it('random shapes (fast-check)', () => {
      const spec = fc
        .record({
          n: fc.integer({ min: 1, max: 3 }),
          groups: fc.constantFrom(1, 1, 2, 3, 4),
          cg: fc.integer({ min: 1, max: 3 }),
          og: fc.integer({ min: 1, max: 3 }),
          h: fc.integer({ min: 1, max: 11 }),
          w: fc.integer({ min: 1, max: 11 }),
          kh: fc.integer({ min: 1, max: 4 }),
          kw: fc.integer({ min: 1, max: 4 }),
          sh: fc.integer({ min: 1, max: 3 }),
          sw: fc.integer({ min: 1, max: 3 }),
          ph: fc.integer({ min: 0, max: 3 }),
          pw: fc.integer({ min: 0, max: 3 }),
          dh: fc.integer({ min: 1, max: 4 }),
          dw: fc.integer({ min: 1, max: 4 }),
          seed: fc.integer({ min: 0, max: 1e9 }),
        })
        .filter((r) => r.h + 2 * r.ph >= r.dh * (r.kh - 1) + 1 && r.w + 2 * r.pw >= r.dw * (r.kw - 1) + 1);
      fc.assert(
        fc.property(spec, (r) => {
          const p = params({ ...r, c: r.cg * r.groups, o: r.og * r.groups });
          checkAll(p, r.seed);
        }),
        { seed: 42, numRuns: 150 },
      );
    });
  });
}
