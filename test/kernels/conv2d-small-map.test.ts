import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  conv2dBackwardInput, conv2dBackwardInputNaive, conv2dBackwardWeight, conv2dBackwardWeightNaive, conv2dForward,
  conv2dForwardFused, conv2dForwardNaive, conv2dOutSize, im2colRange,
  setWinogradPolicy, type Conv2dParams,
} from '../../src/kernels/conv2d.js';
import { denseMapTaps, tapMapPairs } from '../../src/kernels/conv2d/small-map.js';
import { sgemm } from '../../src/kernels/gemm.js';
import { unitMapBackwardInput } from '../../src/kernels/conv2d/unit-map.js';
import { hasSimd128, setKernelBackend, type KernelBackend } from '../../src/kernels/wasm/features.js';
import { assertClose, assertIdentical, fusedEpilogueReference, randArray, residentCopy } from './compare.js';

// The input gradient on ResNet-18's smallest maps (1×1 and 2×2, padding 1) against the naive float64 loop,
// accumulated onto noise: where every output position meets every input position (1×1 maps, 2×2 maps under 3×3
// pad 1, 2×2 → 1×1), one GEMM over the batch with B packed from w (kernels/conv2d/unit-map.ts), and the forward
// there (overwriting noise, with and without bias, and fused);
// and the weight gradient of dense maps with one output position (kernels/conv2d/small-map.ts).

function params(n: number, c: number, h: number, o: number, k: number, s: number, pad: number): Conv2dParams {
  const oh = conv2dOutSize(h, k, s, pad, 1);
  return { n, c, h, w: h, o, kh: k, kw: k, strideH: s, strideW: s, padH: pad, padW: pad, dilH: 1, dilW: 1, groups: 1, oh, ow: oh };
}

/** The input gradient (or with `weight`, the weight gradient) accumulated onto noise, against the naive loop. */
function check(p: Conv2dParams, seed: number, weight = false): void {
  const x = randArray(seed + 1, p.n * p.c * p.h * p.w), w = randArray(seed + 1, p.o * p.c * p.kh * p.kw);
  const dy = randArray(seed + 2, p.n * p.o * p.oh * p.ow);
  const out0 = randArray(seed + 3, weight ? w.length : x.length), out = out0.slice(), ref = out0.slice();
  if (weight) {
    conv2dBackwardWeight(out, dy, x, p);
    conv2dBackwardWeightNaive(ref, dy, x, p);
  } else {
    conv2dBackwardInput(out, dy, w, p);
    conv2dBackwardInputNaive(ref, dy, w, p);
  }
  assertClose(`bwd ${weight ? 'weight' : 'input'} x=[${p.n},${p.c},${p.h},${p.w}] w=[${p.o},${p.c},${p.kh},${p.kw}] s=${p.strideH} p=${p.padH}`, out, ref);
}

/**
 * The forward onto noise (NaN where bias is null, which must be overwritten), with and without bias; the fused
 * forward with and without scale, residual and ReLU.
 */
function checkForward(p: Conv2dParams, seed: number): void {
  const x = randArray(seed + 1, p.n * p.c * p.h * p.w), w = randArray(seed + 2, p.o * p.c * p.kh * p.kw);
  const ys = p.n * p.o * p.oh * p.ow;
  for (const bias of [randArray(seed + 3, p.o), null]) {
    const out = bias ? randArray(seed + 4, ys) : new Float32Array(ys).fill(NaN), ref = new Float32Array(ys);
    conv2dForward(out, x, w, bias, p);
    conv2dForwardNaive(ref, x, w, bias, p);
    assertClose(`fwd${bias ? ' + bias' : ''} x=[${p.n},${p.c},${p.h},${p.w}] w=[${p.o},${p.c},${p.kh},${p.kw}] s=${p.strideH} p=${p.padH}`, out, ref);
  }
  // Fused: relu(conv·scale + shift + res), and shift only (negative values kept).
  const conv = new Float32Array(ys);
  conv2dForwardNaive(conv, x, w, null, p);
  const scale = Float64Array.from(randArray(seed + 5, p.o)), shift = Float64Array.from(randArray(seed + 6, p.o));
  const res = randArray(seed + 7, ys), yf = new Float32Array(ys).fill(NaN), yg = new Float32Array(ys).fill(NaN);
  conv2dForwardFused(yf, x, w, res, p, { scale, shift, relu: true });
  assertClose(`fused x=[${p.n},${p.c},${p.h},${p.w}] w=[${p.o},${p.c},${p.kh},${p.kw}]`, yf, fusedEpilogueReference(conv, scale, shift, res, p.o, p.oh * p.ow));
  conv2dForwardFused(yg, x, w, null, p, { scale: null, shift, relu: false });
  for (let i = 0; i < ys; i++) conv[i] = conv[i]! + shift[Math.floor(i / (p.oh * p.ow)) % p.o]!;
  assertClose(`fused (shift only) x=[${p.n},${p.c},${p.h},${p.w}] w=[${p.o},${p.c},${p.kh},${p.kw}]`, yg, conv);
}

/** Runs the enclosing describe's tests on `backend`, restoring the previous one after them. */
function useBackend(backend: KernelBackend): void {
  let old: KernelBackend;
  beforeAll(() => {
    old = setKernelBackend(backend);
  });
  afterAll(() => {
    setKernelBackend(old);
  });
}

/** fn() on the js backend, restoring the previous one after it. */
function onJs<T>(fn: () => T): T {
  const prev = setKernelBackend('js');
  try {
    return fn();
  } finally {
    setKernelBackend(prev);
  }
}

const unitMaps: [number, number, number, number, number][] = [
  // n, c, o, k, pad
  [8, 512, 512, 3, 1],
  [1, 512, 512, 3, 1],
  [8, 256, 256, 3, 1],
  [3, 67, 131, 3, 1],
  [1, 5, 3, 3, 1],
  [2, 9, 70, 5, 2],
];

const smallMaps: [number, number, number, number, number, number, boolean][] = [
  // n, c, h, o, stride, pad (3×3), whether every output position meets every input position
  [8, 256, 2, 256, 1, 1, true],
  [1, 256, 2, 256, 1, 1, true],
  [8, 256, 2, 512, 2, 1, true],
  [3, 67, 2, 131, 1, 1, true],
  [2, 5, 2, 3, 1, 1, true],
  [2, 13, 3, 7, 1, 1, false],
  [4, 24, 4, 40, 2, 1, false],
];

const denseOneOutput: [number, number, number, number, number, number, number][] = [
  // n, c, h, o, k, stride, pad
  [8, 512, 1, 512, 3, 1, 1],
  [8, 256, 2, 512, 3, 2, 1],
  [3, 67, 2, 131, 3, 2, 1],
  [1, 5, 1, 3, 3, 1, 1],
  [2, 9, 3, 70, 5, 2, 1],
  [4, 6, 2, 7, 2, 1, 0],
];

const backends: KernelBackend[] = hasSimd128 ? ['simd', 'js'] : ['js'];
for (const backend of backends) {
  describe(`conv input gradient on 1×1 and 2×2 maps, ${backend} backend, vs naive float64`, () => {
    useBackend(backend);

    for (const [n, c, o, k, pad] of unitMaps) {
      const p = params(n, c, 1, o, k, 1, pad);
      it(`1×1 map, ${c}→${o}, ${k}×${k} pad ${pad}, batch ${n} (one GEMM over the batch)`, () => {
        expect(unitMapBackwardInput(p)).toBe(true);
        check(p, n + c + o);
      });
    }
    for (const [n, c, h, o, s, pad, dense] of smallMaps) {
      const p = params(n, c, h, o, 3, s, pad);
      it(`${h}×${h} map, ${c}→${o}, 3×3/${s} pad ${pad}, batch ${n}${dense ? ' (one GEMM over the batch)' : ''}`, () => {
        expect(unitMapBackwardInput(p)).toBe(dense);
        check(p, n + c + h + o);
      });
    }
    for (const [n, c, h, o, k, s, pad] of denseOneOutput) {
      const p = params(n, c, h, o, k, s, pad);
      it(`${h}×${h} map → 1×1, ${c}→${o}, ${k}×${k}/${s} pad ${pad}, batch ${n} (one GEMM over the batch)`, () => {
        expect(unitMapBackwardInput(p)).toBe(true);
        check(p, n + c + h + o);
      });
    }
    it('5×5 pad 2 on 2×2 (every pair, through 9 different taps) takes the one GEMM', () => {
      const p = params(3, 10, 2, 12, 5, 1, 2);
      expect(unitMapBackwardInput(p)).toBe(true);
      check(p, 17);
    });
    it('1×1/2 on 2×2 (an input position that meets no tap) takes another path', () => {
      const p = params(8, 64, 2, 96, 1, 2, 0);
      expect(unitMapBackwardInput(p)).toBe(false);
      check(p, 5);
    });
  });
}

for (const backend of backends) {
  describe(`conv forward on 1×1 and 2×2 maps, ${backend} backend, vs naive float64`, () => {
    useBackend(backend);

    for (const [n, c, o, k, pad] of unitMaps) {
      const p = params(n, c, 1, o, k, 1, pad);
      it(`1×1 map, ${c}→${o}, ${k}×${k} pad ${pad}, batch ${n}`, () => checkForward(p, n + c + o));
    }
    for (const [n, c, h, o, s, pad] of smallMaps) {
      const p = params(n, c, h, o, 3, s, pad);
      it(`${h}×${h} map, ${c}→${o}, 3×3/${s} pad ${pad}, batch ${n}`, () => checkForward(p, n + c + h + o));
    }
    for (const [n, c, h, o, k, s, pad] of denseOneOutput) {
      const p = params(n, c, h, o, k, s, pad);
      it(`${h}×${h} map → 1×1, ${c}→${o}, ${k}×${k}/${s} pad ${pad}, batch ${n}`, () => checkForward(p, n + c + h + o));
    }
    it('5×5 pad 2 on 2×2, and 3×3/2 from 2×2 at odd channels, batch 1 and 3', () => {
      checkForward(params(3, 10, 2, 12, 5, 1, 2), 17);
      checkForward(params(1, 13, 2, 21, 3, 2, 1), 18);
      checkForward(params(3, 13, 2, 21, 3, 2, 1), 19);
    });
  });
}

// The weight gradient where the output is one position and every input position meets a tap (a dense map): one
// GEMM over the batch (kernels/conv2d/small-map.ts).
describe('conv weight gradient with one output position on a dense map, simd backend, vs naive float64', () => {
  useBackend(hasSimd128 ? 'simd' : 'js');
  for (const [n, c, h, o, k, s, pad] of denseOneOutput) {
    const p = params(n, c, h, o, k, s, pad);
    it(`${h}×${h} map → 1×1, ${c}→${o}, ${k}×${k}/${s} pad ${pad}, batch ${n}`, () => {
      expect(p.oh * p.ow).toBe(1);
      if (hasSimd128) expect(denseMapTaps(p)).not.toBeNull();
      check(p, n + c + h + o, true);
    });
  }
  it('takes no map with an input position that meets no tap, nor the js backend', () => {
    // 1×1/2 on 2×2: only the top-left pixel meets the kernel.
    expect(denseMapTaps(params(8, 256, 2, 512, 1, 2, 0))).toBeNull();
    expect(onJs(() => denseMapTaps(params(8, 512, 1, 512, 3, 1, 1)))).toBeNull();
  });
  it('keeps NaN and ±Inf where the naive loop puts them', () => {
    const p = params(3, 20, 2, 24, 3, 2, 1);
    const x = randArray(5, p.n * p.c * p.h * p.w), dy = randArray(6, p.n * p.o);
    x[7] = Infinity;
    x[30] = NaN;
    dy[3] = -Infinity;
    const dw = new Float32Array(p.o * p.c * 9), dwr = new Float32Array(dw.length);
    conv2dBackwardWeight(dw, dy, x, p);
    conv2dBackwardWeightNaive(dwr, dy, x, p);
    assertClose('bwd weight with non-finite inputs', dw, dwr);
  });
});

// The weight gradient on output maps of at most 16 positions with many channels: one GEMM per tap over its live
// pairs (kernels/conv2d/small-map.ts), accumulated onto noise.
const tapMaps: [number, number, number, number, number, number, number][] = [
  // n, c, h, o, k, stride, pad
  [8, 256, 2, 256, 3, 1, 1],
  [8, 128, 4, 128, 3, 1, 1],
  [8, 64, 8, 128, 3, 2, 1],
  [8, 128, 4, 256, 3, 2, 1],
  [8, 128, 4, 256, 1, 2, 0],
  [8, 64, 2, 96, 1, 2, 0],
  [3, 67, 2, 131, 3, 1, 1],
  [2, 5, 2, 3, 5, 1, 2],
  // 3×3/2 pad 2 on 1×1: only the four corner taps meet the map (the others get dw + 0)
  [3, 6, 1, 10, 3, 2, 2],
];

describe('conv weight gradient tap by tap on maps of ≤ 16 output positions, simd backend, vs naive float64', () => {
  useBackend(hasSimd128 ? 'simd' : 'js');
  for (const [n, c, h, o, k, s, pad] of tapMaps) {
    const p = params(n, c, h, o, k, s, pad);
    it(`${h}×${h} map → ${p.oh}×${p.ow}, ${c}→${o}, ${k}×${k}/${s} pad ${pad}, batch ${n}`, () => {
      expect(p.oh * p.ow).toBeLessThanOrEqual(16);
      if (hasSimd128) expect(tapMapPairs(p)).not.toBeNull();
      check(p, n + c + h + o, true);
    });
  }
  it('keeps NaN and ±Inf where the naive loop puts them, and gives dead taps dw + 0', () => {
    const p = params(3, 6, 1, 10, 3, 2, 2);
    const x = randArray(5, p.n * p.c * p.h * p.w), dy = randArray(6, p.n * p.o * p.oh * p.ow);
    x[4] = Infinity;
    dy[7] = NaN;
    const dw = new Float32Array(p.o * p.c * 9).fill(-0), dwr = dw.slice();
    conv2dBackwardWeight(dw, dy, x, p);
    conv2dBackwardWeightNaive(dwr, dy, x, p);
    assertClose('tap map with non-finite inputs', dw, dwr);
    // tap 1 (ky 0, kx 1) meets no output position: −0 + 0 = +0
    expect(Object.is(dw[1], 0)).toBe(true);
    expect(Object.is(dwr[1], 0)).toBe(true);
  });
  it("leaves 4×4 maps to Winograd under the 'always' policy", () => {
    const p = params(8, 64, 4, 64, 3, 1, 1);
    const x = randArray(3, p.n * p.c * p.h * p.w), dy = randArray(4, p.n * p.o * p.oh * p.ow);
    const grad = (policy: 'always' | 'auto'): Float32Array => {
      const old = setWinogradPolicy(policy);
      try {
        const dw = new Float32Array(p.o * p.c * 9);
        conv2dBackwardWeight(dw, dy, x, p);
        return dw;
      } finally {
        setWinogradPolicy(old);
      }
    };
    const tap = grad('auto'), wino = grad('always'), ref = new Float32Array(tap.length);
    conv2dBackwardWeightNaive(ref, dy, x, p);
    assertClose('tap map', tap, ref);
    assertClose('Winograd', wino, ref);
    // Winograd's sums round differently somewhere: the policy really took the other path.
    if (hasSimd128) expect(tap.some((v, i) => v !== wino[i])).toBe(true);
  });
  it('takes maps of more than 16 output positions, few channels, or the js backend elsewhere', () => {
    expect(tapMapPairs(params(8, 64, 8, 64, 3, 1, 1))).toBeNull();
    expect(tapMapPairs(params(8, 64, 4, 64, 3, 1, 1))).not.toBeNull();
    expect(tapMapPairs(params(128, 16, 4, 16, 3, 1, 1))).toBeNull();
    expect(onJs(() => tapMapPairs(params(8, 256, 2, 256, 3, 1, 1)))).toBeNull();
  });
});

// im2col on maps whose output rows are at most 4 wide (through a table of input offsets, small-map.ts), against
// the definition: col[r·ldc + j − j0] = x[ci][iy][ix] for row r = (ci − c0)·T + t, 0 where (iy, ix) is padding.
describe('im2colRange on small maps (output rows ≤ 4 wide) vs the definition', () => {
  const cases: [string, Conv2dParams, number, number, number, number, number[] | null][] = [
    // name, params, c0, c1, j0, j1, taps
    ['3×3 pad 1 on 2×2', params(1, 5, 2, 4, 3, 1, 1), 0, 5, 0, 4, null],
    ['3×3/2 pad 1 from 4×4, channels 2..6, positions 1..3', params(1, 7, 4, 4, 3, 2, 1), 2, 6, 1, 3, null],
    ['3×3/2 pad 1 from 2×2, live taps', params(1, 3, 2, 4, 3, 2, 1), 0, 3, 0, 1, [4, 5, 7, 8]],
    ['5×5 dilation 2 pad 3 on 3×5', { ...params(1, 2, 3, 4, 5, 1, 3), w: 5, dilH: 2, dilW: 2, oh: 1, ow: 3 }, 0, 2, 0, 3, null],
  ];
  for (const [name, p, c0, c1, j0, j1, taps] of cases) {
    it(name, () => {
      expect(p.ow).toBeLessThanOrEqual(4);
      const x = randArray(3, p.c * p.h * p.w), nt = taps ? taps.length : p.kh * p.kw, ldc = j1 - j0 + 3;
      const col = new Float32Array((c1 - c0) * nt * ldc + 5).fill(7), ref = col.slice();
      im2colRange(col, 2, ldc, x, 0, c0, c1, p, j0, j1, taps);
      for (let ci = c0; ci < c1; ci++) {
        for (let t = 0; t < nt; t++) {
          const tap = taps ? taps[t]! : t, ky = Math.floor(tap / p.kw), kx = tap % p.kw;
          for (let j = j0; j < j1; j++) {
            const oy = Math.floor(j / p.ow), ox = j % p.ow;
            const iy = oy * p.strideH - p.padH + ky * p.dilH, ix = ox * p.strideW - p.padW + kx * p.dilW;
            const inside = iy >= 0 && iy < p.h && ix >= 0 && ix < p.w;
            ref[2 + ((ci - c0) * nt + t) * ldc + j - j0] = inside ? x[(ci * p.h + iy) * p.w + ix]! : 0;
          }
        }
      }
      assertIdentical(`im2col ${name}`, col, ref);
    });
  }
});

// The forward on maps of < 64 positions (images side by side in one GEMM, then each image's rows scattered into y:
// rows of ≤ 16 values value by value, longer ones by set; the column matrix built once for a thread's row blocks of
// the same images), 1×1 convolutions at stride 1 and 2, batch
// > 1, odd sizes: bitwise the same GEMM (sgemm, C prefilled with the bias and accumulated) over a column matrix and
// a scatter written out here, into plain arrays and into the resident shared memory alike; and close to the naive
// float64 loop.
const smallForward: [number, number, number, number, number, number, number][] = [
  // n, c, h, o, k, stride, pad: output maps of 16, 4, 1, 9, 9, 25, 16 and 49 positions (R18's three 1×1/2 at
  // 8×3×32×32 first)
  [8, 64, 8, 128, 1, 2, 0],
  [8, 128, 4, 256, 1, 2, 0],
  [8, 256, 2, 512, 1, 2, 0],
  [3, 7, 5, 9, 1, 2, 0],
  [5, 13, 3, 11, 1, 1, 0],
  [2, 5, 9, 6, 1, 2, 0],
  [3, 5, 4, 7, 1, 1, 0],
  // 7×7 outputs: two chunks of images (5 + 3), two row blocks each (the column matrix built once per chunk)
  [8, 6, 13, 70, 1, 2, 0],
];

/**
 * conv(x, w) + bias as one GEMM over all images side by side: col (K × n·oHW, rows (channel, tap), zeros at the
 * padding) built here, C (o × n·oHW) filled with the bias and accumulated by sgemm, then scattered to (n, o, oH, oW).
 */
function batchedGemmForward(x: Float32Array, w: Float32Array, bias: Float32Array | null, p: Conv2dParams): Float32Array {
  const ohw = p.oh * p.ow, kk = p.n * ohw, T = p.kh * p.kw, K = p.c * T;
  const col = new Float32Array(K * kk);
  for (let img = 0; img < p.n; img++)
    for (let k = 0; k < K; k++) {
      const ci = Math.floor(k / T), t = k % T, ky = Math.floor(t / p.kw), kx = t % p.kw;
      for (let oy = 0; oy < p.oh; oy++)
        for (let ox = 0; ox < p.ow; ox++) {
          const iy = oy * p.strideH - p.padH + ky, ix = ox * p.strideW - p.padW + kx;
          if (iy >= 0 && iy < p.h && ix >= 0 && ix < p.w) col[k * kk + img * ohw + oy * p.ow + ox] = x[((img * p.c + ci) * p.h + iy) * p.w + ix]!;
        }
    }
  const out = new Float32Array(p.o * kk);
  if (bias) for (let oc = 0; oc < p.o; oc++) out.fill(bias[oc]!, oc * kk, (oc + 1) * kk);
  sgemm(out, w, col, p.o, kk, K, { accumulate: bias !== null });
  const y = new Float32Array(p.n * p.o * ohw);
  for (let img = 0; img < p.n; img++)
    for (let oc = 0; oc < p.o; oc++)
      for (let j = 0; j < ohw; j++) y[(img * p.o + oc) * ohw + j] = out[oc * kk + img * ohw + j]!;
  return y;
}

for (const backend of backends) {
  describe(`conv forward on small maps, ${backend} backend: the batched GEMM's bits scattered into y`, () => {
    useBackend(backend);
    for (const [n, c, h, o, k, s, pad] of smallForward) {
      const p = params(n, c, h, o, k, s, pad);
      const label = `${h}×${h} → ${p.oh}×${p.ow}, ${c}→${o}, ${k}×${k}/${s} pad ${pad}, batch ${n}`;
      it(label, () => {
        expect(p.oh * p.ow).toBeLessThan(64);
        const seed = n + c + h + o + k;
        const x = randArray(seed, p.n * p.c * p.h * p.w), w = randArray(seed + 1, p.o * p.c * k * k);
        const ys = p.n * p.o * p.oh * p.ow;
        for (const bias of [randArray(seed + 2, p.o), null]) {
          const what = `${label}${bias ? ' + bias' : ''}`;
          const ref = batchedGemmForward(x, w, bias, p), naive = new Float32Array(ys);
          conv2dForwardNaive(naive, x, w, bias, p);
          assertClose(`${what} (batched GEMM vs naive)`, ref, naive);
          const y = new Float32Array(ys).fill(NaN);
          conv2dForward(y, x, w, bias, p);
          assertIdentical(what, y, ref);
          if (backend === 'simd' && typeof SharedArrayBuffer !== 'undefined') {
            const yr = residentCopy(new Float32Array(ys).fill(NaN));
            conv2dForward(yr, residentCopy(x), residentCopy(w), bias, p);
            assertIdentical(`${what}, resident`, yr, ref);
          }
        }
      });
    }
  });
}
