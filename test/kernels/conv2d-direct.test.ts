import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  conv2dBackwardInput, conv2dBackwardInputNaive, conv2dBackwardWeight, conv2dBackwardWeightNaive, conv2dForward,
  conv2dForwardFused, conv2dForwardNaive, conv2dOutSize, type Conv2dParams,
} from '../../src/kernels/conv2d.js';
import {
  backwardInputShape, directBackwardInput, directForward, directForwardFused, forwardShape, packDirectWeights, phaseTable, runDirect,
} from '../../src/kernels/conv2d/direct.js';
import { DIRECT_V, pad2Masks, simdDirect } from '../../src/kernels/wasm/direct.js';
import { hasSimd128 } from '../../src/kernels/wasm/features.js';
import { useKernelBackend } from './backend-hooks.js';
import { assertClose, assertIdentical, fusedEpilogueReference, randArray } from './compare.js';

// The direct SIMD convolution (kernels/conv2d/direct.ts) against the naive float64 loops: forward with and without
// bias, the fused epilogue, and the input gradient (accumulated onto noise). The kernel runs on every shape here,
// also where conv2dForward would dispatch elsewhere; the dispatch itself is checked on the shapes it takes.

function params(n: number, c: number, h: number, w: number, o: number, s: number, pad: number): Conv2dParams {
  return {
    n, c, h, w, o, kh: 3, kw: 3, strideH: s, strideW: s, padH: pad, padW: pad, dilH: 1, dilW: 1, groups: 1,
    oh: conv2dOutSize(h, 3, s, pad, 1), ow: conv2dOutSize(w, 3, s, pad, 1),
  };
}

const label = (p: Conv2dParams): string =>
  `x=[${p.n},${p.c},${p.h},${p.w}] w=[${p.o},${p.c},3,3] s=${p.strideH} p=${p.padH} → [${p.oh},${p.ow}]`;

function check(p: Conv2dParams, seed: number): void {
  const xs = p.n * p.c * p.h * p.w, ws = p.o * p.c * 9, ys = p.n * p.o * p.oh * p.ow;
  const x = randArray(seed, xs), w = randArray(seed + 1, ws), bias = randArray(seed + 2, p.o), dy = randArray(seed + 3, ys);
  const name = label(p);
  const d = forwardShape(p), wp = packDirectWeights(w, d, false);
  for (const b of [null, bias]) {
    const y = new Float32Array(ys).fill(NaN), yr = new Float32Array(ys);
    runDirect(y, x, wp, b ? Float64Array.from(b) : null, null, d, false, null);
    conv2dForwardNaive(yr, x, w, b, p);
    assertClose(`fwd${b ? '+bias' : ''} ${name}`, y, yr);
  }
  const res = randArray(seed + 4, ys), scale = Float64Array.from(randArray(seed + 5, p.o)), shift = Float64Array.from(randArray(seed + 6, p.o));
  const y = new Float32Array(ys).fill(NaN), conv = new Float32Array(ys);
  runDirect(y, x, wp, null, res, d, false, { scale, shift, relu: true });
  conv2dForwardNaive(conv, x, w, null, p);
  assertClose(`fused ${name}`, y, fusedEpilogueReference(conv, scale, shift, res, p.o, p.oh * p.ow));
  // The epilogue's other forms: bias, no scale, no residual, no ReLU (negative values kept).
  const y2 = new Float32Array(ys).fill(NaN), ref2 = new Float32Array(ys);
  runDirect(y2, x, wp, Float64Array.from(bias), null, d, false, { scale: null, shift, relu: false });
  conv2dForwardNaive(ref2, x, w, bias, p);
  for (let i = 0; i < ys; i++) ref2[i] = ref2[i]! + shift[Math.floor(i / (p.oh * p.ow)) % p.o]!;
  assertClose(`fused (shift only) ${name}`, y2, ref2);
  if (p.strideH !== 1) return;
  const dx0 = randArray(seed + 7, xs), dx = dx0.slice(), dxr = dx0.slice();
  const db = backwardInputShape(p);
  runDirect(dx, dy, packDirectWeights(w, db, true), null, null, db, true, null);
  conv2dBackwardInputNaive(dxr, dy, w, p);
  assertClose(`bwd input ${name}`, dx, dxr);
  // Overwriting (with 1 output channel one float32 block: the kernel's SUM32 store, as the 1-channel stem's forward).
  const dxo = new Float32Array(xs).fill(NaN), dxor = new Float32Array(xs);
  runDirect(dxo, dy, packDirectWeights(w, db, true), null, null, db, false, null);
  conv2dBackwardInputNaive(dxor, dy, w, p);
  assertClose(`bwd input (overwrite) ${name}`, dxo, dxor);
}

/**
 * The training forward's numerics, written out (wasm/direct.ts): per output, the (ci, tap) terms in row-major order
 * cut into blocks of cblk whole channels, each a float32 running sum of float32 products (the first product starts
 * it), added one after the other to a float64 sum that starts from 0, rounded to float32 once.
 */
function blockedReference(x: Float32Array, w: Float32Array, p: Conv2dParams, cblk: number): Float32Array {
  const y = new Float32Array(p.n * p.o * p.oh * p.ow);
  const f = Math.fround;
  for (let b = 0; b < p.n; b++) for (let o = 0; o < p.o; o++) for (let oy = 0; oy < p.oh; oy++) for (let ox = 0; ox < p.ow; ox++) {
    let s64 = 0;
    for (let c0 = 0; c0 < p.c; c0 += cblk) {
      let s32 = 0, first = true;
      for (let c = c0; c < Math.min(p.c, c0 + cblk); c++) for (let ky = 0; ky < 3; ky++) for (let kx = 0; kx < 3; kx++) {
        const iy = oy * p.strideH + ky - p.padH, ix = ox * p.strideW + kx - p.padW;
        const xv = iy < 0 || iy >= p.h || ix < 0 || ix >= p.w ? 0 : x[((b * p.c + c) * p.h + iy) * p.w + ix]!;
        const t = f(xv * w[((o * p.c + c) * 3 + ky) * 3 + kx]!);
        s32 = first ? t : f(s32 + t);
        first = false;
      }
      s64 += s32;
    }
    y[((b * p.o + o) * p.oh + oy) * p.ow + ox] = s64;
  }
  return y;
}

describe.runIf(hasSimd128)('direct 3×3 convolution (SIMD) vs naive float64', () => {
  useKernelBackend('simd', { directConv: true });

  it('conv2dForward / conv2dBackwardInput dispatch here for the stems and stride 2, and agree with the naive loops', () => {
    for (const p of [params(2, 3, 9, 11, 16, 1, 1), params(3, 16, 9, 9, 32, 2, 1)]) {
      expect(directForward(p), label(p)).toBe(true);
      const xs = p.n * p.c * p.h * p.w, ys = p.n * p.o * p.oh * p.ow;
      const x = randArray(20, xs), w = randArray(21, p.o * p.c * 9), dy = randArray(22, ys);
      const y = new Float32Array(ys).fill(NaN), yr = new Float32Array(ys);
      conv2dForward(y, x, w, null, p);
      conv2dForwardNaive(yr, x, w, null, p);
      assertClose(`fwd ${label(p)}`, y, yr);
      if (!directBackwardInput(p)) continue;
      const dx = new Float32Array(xs), dxr = new Float32Array(xs);
      conv2dBackwardInput(dx, dy, w, p);
      conv2dBackwardInputNaive(dxr, dy, w, p);
      assertClose(`bwd input ${label(p)}`, dx, dxr);
    }
    expect(directForward(params(2, 16, 8, 8, 16, 1, 1))).toBe(false);
  });

  it('CIFAR and Fashion-MNIST shapes: stems, 16/32/64 channels, stride 1 and 2', () => {
    check(params(2, 3, 32, 32, 16, 1, 1), 1);
    check(params(2, 1, 28, 28, 16, 1, 1), 2);
    check(params(2, 16, 14, 14, 32, 2, 1), 3);
    check(params(1, 64, 7, 7, 64, 1, 1), 4);
    check(params(3, 32, 8, 8, 64, 2, 1), 5);
  });

  it('the training forward is bit for bit its blocked float32/float64 sums (two blocks: 3, 4 channels; 16 at stride 2)', () => {
    // 3 and 4 channels make two blocks (the kernel adds them in float32: SUM2); 16 channels eight (float64 flushes).
    // Partial tiles (widths 13, 5) go through the scratch.
    for (const [p, seed] of [[params(2, 3, 12, 13, 6, 1, 1), 50], [params(2, 4, 9, 16, 5, 1, 0), 51], [params(2, 16, 9, 5, 4, 2, 1), 52], [params(2, 4, 11, 11, 8, 2, 1), 53]] as const) {
      const x = randArray(seed, p.n * p.c * p.h * p.w), w = randArray(seed + 1, p.o * p.c * 9);
      // Image 0 all −0 and output channel 0's weights positive: its sums away from the (+0) padding are all −0, their
      // float64 total +0.
      for (let i = 0; i < x.length; i += 7) x[i] = -0;
      x.fill(-0, 0, p.c * p.h * p.w);
      for (let i = 0; i < p.c * 9; i++) w[i] = Math.abs(w[i]!) + 0.01;
      const y = new Float32Array(p.n * p.o * p.oh * p.ow).fill(NaN);
      conv2dForward(y, x, w, null, p);
      const ref = blockedReference(x, w, p, 2);
      assertIdentical(`fwd ${label(p)}`, y, ref);
      expect(directForward(p) && Object.is(ref[p.ow + 1], 0) && ref.some((v) => v < 0), label(p)).toBe(true);
    }
  });

  it('several float32 blocks (18 terms: two channels) per output, an odd channel last (9, 15, 22 channels)', () => {
    check(params(1, 9, 5, 6, 5, 1, 1), 6);
    check(params(2, 15, 6, 9, 7, 1, 0), 7);
    check(params(1, 22, 5, 5, 3, 2, 2), 8);
  });

  it('fused forward (float32 conv32): every flag combination, partial tiles, 3 to 64 channels, through conv2dForwardFused', () => {
    const cases = [
      params(3, 3, 10, 13, 16, 1, 1), params(3, 15, 9, 11, 10, 2, 1), params(2, 64, 7, 6, 9, 2, 0), params(1, 4, 12, 32, 6, 1, 2),
    ];
    let seed = 40;
    for (const p of cases) {
      expect(directForward(p), label(p)).toBe(true);
      const ys = p.n * p.o * p.oh * p.ow, hw = p.oh * p.ow;
      const x = randArray(seed, p.n * p.c * p.h * p.w), w = randArray(seed + 1, p.o * p.c * 9), r = randArray(seed + 2, ys);
      const scale = Float64Array.from(randArray(seed + 3, p.o)), shift = Float64Array.from(randArray(seed + 4, p.o));
      seed += 5;
      const conv = new Float32Array(ys);
      conv2dForwardNaive(conv, x, w, null, p);
      for (const res of [null, r]) {
        for (const relu of [false, true]) {
          const y = new Float32Array(ys).fill(NaN);
          conv2dForwardFused(y, x, w, res, p, { scale, shift, relu });
          const ref = new Float32Array(ys);
          for (let i = 0; i < ys; i++) {
            const o = Math.floor(i / hw) % p.o, v = conv[i]! * scale[o]! + shift[o]! + (res ? res[i]! : 0);
            ref[i] = relu && !(v > 0) ? 0 : v;
          }
          assertClose(`fused res=${res !== null} relu=${relu} ${label(p)}`, y, ref);
        }
      }
    }
  });

  it('fused 7×7 stride-2 stems (conv1-like: 3 channels, padding 3, odd sizes, batch 2, row-split units)', () => {
    const p7 = (n: number, c: number, h: number, w: number, o: number, pad: number): Conv2dParams => ({
      n, c, h, w, o, kh: 7, kw: 7, strideH: 2, strideW: 2, padH: pad, padW: pad, dilH: 1, dilW: 1, groups: 1,
      oh: conv2dOutSize(h, 7, 2, pad, 1), ow: conv2dOutSize(w, 7, 2, pad, 1),
    });
    let seed = 60;
    for (const p of [p7(2, 3, 45, 37, 24, 3), p7(1, 3, 64, 64, 64, 3), p7(1, 1, 9, 30, 5, 2), p7(3, 4, 7, 7, 3, 0)]) {
      const name = `x=[${p.n},${p.c},${p.h},${p.w}] w=[${p.o},${p.c},7,7] s=2 p=${p.padH}`;
      expect(directForwardFused(p), name).toBe(true);
      expect(directForward(p), name).toBe(false);
      const ys = p.n * p.o * p.oh * p.ow, hw = p.oh * p.ow;
      const x = randArray(seed, p.n * p.c * p.h * p.w), w = randArray(seed + 1, p.o * p.c * 49), res = randArray(seed + 2, ys);
      const scale = Float64Array.from(randArray(seed + 3, p.o)), shift = Float64Array.from(randArray(seed + 4, p.o));
      seed += 5;
      const y = new Float32Array(ys).fill(NaN), conv = new Float32Array(ys);
      conv2dForwardFused(y, x, w, res, p, { scale, shift, relu: true });
      conv2dForwardNaive(conv, x, w, null, p);
      assertClose(`fused ${name}`, y, fusedEpilogueReference(conv, scale, shift, res, p.o, hw));
    }
    // More input channels than a stem: the GEMM path.
    expect(directForwardFused({ ...p7(1, 8, 20, 20, 8, 3) })).toBe(false);
  });

  it('widths below one vector, odd widths, padding 0/1/2, one output channel', () => {
    check(params(1, 2, 3, 3, 1, 1, 0), 9);
    check(params(2, 3, 4, 1, 2, 1, 1), 10);
    check(params(1, 4, 2, 2, 6, 2, 2), 11);
    check(params(3, 5, 7, 13, 9, 1, 2), 12);
    check(params(1, 1, 1, 1, 1, 1, 1), 13);
  });

  it('stride 2 on wide odd rows (the padding copy takes 8 input columns at a time): forward and weight gradient', () => {
    for (const [w, pad, seed] of [[9, 0, 30], [10, 1, 31], [17, 1, 32], [23, 2, 33], [32, 1, 34], [33, 0, 35]] as const) {
      const p = params(2, 5, 7, w, 6, 2, pad);
      check(p, seed);
      // The weight gradient splits x rows the same way (`s2rows`: each tap's rows flattened per map, stride 2).
      const x = randArray(seed + 10, p.n * p.c * p.h * p.w), dy = randArray(seed + 11, p.n * p.o * p.oh * p.ow);
      const dw = new Float32Array(p.o * p.c * 9), dwr = new Float32Array(dw.length);
      conv2dBackwardWeight(dw, dy, x, p);
      conv2dBackwardWeightNaive(dwr, dy, x, p);
      assertClose(`bwd weight ${label(p)}`, dw, dwr);
    }
  });

  it('pad2 writes the same stride-2 planes as pad (padding 0/1/2, odd widths, split rows, image edges)', () => {
    for (const [ci, hi, wi, padW, rows, row0] of [
      [1, 1, 1, 1, 1, -1], [2, 5, 7, 0, 2, 0], [3, 9, 9, 1, 4, -1], [5, 7, 16, 1, 3, 1], [4, 12, 17, 2, 5, -2], [16, 32, 32, 1, 16, -1],
      [2, 6, 33, 0, 2, 3], [3, 8, 10, 2, 4, 4],
    ] as const) {
      const wo = Math.floor((wi + 2 * padW - 3) / 2) + 1, cols = 4 * DIRECT_V, tiles = Math.ceil(wo / cols);
      const hp = (rows - 1) * 2 + 3, wq = 4 * Math.ceil((tiles * cols + 1) / 4), plane = hp * wq, len = ci * 2 * plane;
      // Memory (floats): 64 of slack, the image, the phase table, the masks, then the two outputs (NaN first).
      const srcAt = 64, qtAt = srcAt + ci * hi * wi + 16, maskAt = qtAt + 8, outA = maskAt + 2 * wq + 64, outB = outA + len + 64;
      const k = simdDirect(4 * (outB + len + 64));
      k.f.set(randArray(ci + hi + wi, ci * hi * wi), srcAt);
      phaseTable(k.i, qtAt, 2, wq, wi, padW);
      const qv = pad2Masks(k.i, maskAt, wq, wi, padW);
      k.f.fill(NaN, outA, outB + len);
      k.pad(4 * srcAt, 4 * hi * wi, ci, hi, wi, 4 * outA, 4 * plane, wq, hp, 2, 2, row0, 4 * qtAt);
      k.pad2(4 * srcAt, 4 * hi * wi, ci, hi, wi, 4 * outB, 4 * plane, wq, hp, row0, padW, 4 * maskAt, qv);
      const name = `ci=${ci} ${hi}×${wi} padW=${padW} rows ${row0}…${row0 + hp - 1}`;
      assertIdentical(name, k.f.subarray(outB, outB + len), k.f.slice(outA, outA + len));
      expect(k.f.subarray(outB, outB + len).some((v) => Number.isNaN(v)), name).toBe(false);
    }
  });

  it('random shapes (fast-check)', () => {
    const spec = fc.record({
      n: fc.integer({ min: 1, max: 3 }),
      c: fc.integer({ min: 1, max: 20 }),
      o: fc.integer({ min: 1, max: 20 }),
      h: fc.integer({ min: 1, max: 12 }),
      w: fc.integer({ min: 1, max: 21 }),
      s: fc.integer({ min: 1, max: 2 }),
      pad: fc.integer({ min: 0, max: 2 }),
      seed: fc.integer({ min: 0, max: 1e9 }),
    }).filter((r) => r.h + 2 * r.pad >= 3 && r.w + 2 * r.pad >= 3);
    fc.assert(fc.property(spec, (r) => check(params(r.n, r.c, r.h, r.w, r.o, r.s, r.pad), r.seed)), { seed: 7, numRuns: 120 });
  });
});
