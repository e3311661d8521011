/**
 * Winograd F(4×4, 3×3) (src/kernels/winograd.ts) against the naive float64 direct convolution: forward, input
 * gradient, and the fused epilogue. Float64 intermediates (asm.js on the js backend, f64x2 on the SIMD backend) make
 * it agree to about one float32 rounding, so the tolerance here is much tighter than the op tests' (2⁻²² relative to
 * the output scale). The exception: the SIMD backend's fused (inference) forward, whose GEMMs run in float32 (U and
 * V rounded to float32): the float32-op tolerance (atol 1e-5 + rtol 1e-4).
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  conv2dBackwardInput,
  conv2dBackwardInputNaive,
  conv2dForward,
  conv2dForwardFused,
  conv2dForwardNaive,
  setWinogradPolicy,
  type Conv2dParams,
  type WinogradPolicy,
} from '../../src/kernels/conv2d.js';
import { backwardInputWinograd, forwardWinograd } from '../../src/kernels/conv2d/plan.js';
import { winogradConv } from '../../src/kernels/winograd.js';
import { setKernelBackend, type KernelBackend } from '../../src/kernels/wasm/features.js';
import { assertClose, assertIdentical, fusedEpilogueReference, randArray, winogradLabel, winogradShapeParams } from './compare.js';
import { setConfig, type Config } from '../../src/config.js';

// Winograd against im2col + GEMM: the direct SIMD kernel (which 'never' would pick for these few channels) is off.
let oldConfig: Partial<Config>;
beforeAll(() => {
  oldConfig = setConfig({ directConv: false });
});
afterAll(() => {
  setConfig(oldConfig);
});

const TIGHT = { atol: 2 ** -22, rtol: 2 ** -22 };
const FLOAT32_OP = { atol: 1e-5, rtol: 1e-4 };
/** The tolerance of the backend under test (set by the describe below). */
let tol = TIGHT;
let tolFused = { atol: 1e-6, rtol: 1e-6 };

const params = winogradShapeParams, label = winogradLabel;

function checkForward(p: Conv2dParams, seed: number, scale = 1): void {
  const xs = p.n * p.c * p.h * p.w, ys = p.n * p.o * p.oh * p.ow;
  const x = randArray(seed, xs, -scale, scale), w = randArray(seed + 1, p.o * p.c * 9), b = randArray(seed + 2, p.o);
  for (const bias of [null, b]) {
    const y = new Float32Array(ys).fill(NaN), yr = new Float32Array(ys);
    conv2dForward(y, x, w, bias, p);
    conv2dForwardNaive(yr, x, w, bias, p);
    assertClose(`winograd fwd${bias ? '+bias' : ''} ${label(p)}`, y, yr, tol);
  }
}

function checkBackwardInput(p: Conv2dParams, seed: number): void {
  const xs = p.n * p.c * p.h * p.w, ys = p.n * p.o * p.oh * p.ow;
  const w = randArray(seed + 1, p.o * p.c * 9), dy = randArray(seed + 3, ys), dx0 = randArray(seed + 4, xs);
  const dx = dx0.slice(), dxr = dx0.slice();
  conv2dBackwardInput(dx, dy, w, p);
  conv2dBackwardInputNaive(dxr, dy, w, p);
  assertClose(`winograd bwd input ${label(p)}`, dx, dxr, tol);
}

for (const backend of ['simd', 'js'] as KernelBackend[]) describe(`Winograd F(4×4, 3×3) vs naive, ${backend} backend`, () => {
  let old: WinogradPolicy;
  let oldBackend: KernelBackend;
  beforeAll(() => {
    old = setWinogradPolicy('always');
    oldBackend = setKernelBackend(backend);
    tol = TIGHT;
    tolFused = backend === 'js' ? { atol: 1e-6, rtol: 1e-6 } : FLOAT32_OP; // float32 GEMMs in the fused forward
  });
  afterAll(() => {
    setWinogradPolicy(old);
    setKernelBackend(oldBackend);
  });

  const shapes: [string, Conv2dParams][] = [
    ['one tile, pad 1', params(1, 1, 4, 4, 1, 1)],
    ['ragged edges 7×5, pad 1', params(2, 3, 7, 5, 5, 1)],
    ['pad 0 (valid), 10×9', params(1, 4, 10, 9, 6, 0)],
    ['pad 2 (full), 6×11', params(1, 5, 6, 11, 3, 2)],
    ['input smaller than a tile: 3×3, pad 0 → 1×1', params(3, 2, 3, 3, 2, 0)],
    ['channels not a multiple of 4, more than one output block', params(1, 7, 9, 9, 70, 1)],
    ['many tiles (several tile blocks), batch 3', params(3, 6, 18, 14, 9, 1)],
    // The SIMD path's blocks are whole tile rows, across images, or parts of a row wider than 64 tiles.
    ['1×1 images, batch 5, pad 1', params(5, 3, 1, 1, 4, 1)],
    ['2×2 images, batch 5, pad 1', params(5, 3, 2, 2, 6, 1)],
    ['7×7 images, batch 5: blocks across images', params(5, 4, 7, 7, 5, 1)],
    ['9×9 images, batch 3, pad 0', params(3, 4, 9, 9, 5, 0)],
    ['28×28 images, batch 3: float64 blocks of whole images (49 tiles)', params(3, 4, 28, 28, 5, 1)],
    ['rows of 75 tiles (parts of a row per block), pad 1', params(1, 2, 3, 300, 3, 1)],
    ['rows of 65 tiles, pad 0, batch 2', params(2, 2, 6, 262, 3, 0)],
    // Padded planes: zeros before the rows (padding 3 and 5: more than one 16-byte chunk) and after them.
    ['pad 3, 8×7, batch 2', params(2, 3, 8, 7, 4, 3)],
    ['pad 5, 5×6', params(1, 2, 5, 6, 3, 5)],
    // At most 64 tiles that whole tile rows would cut into several blocks: one block on the SIMD float64 path (its U
    // kept whole before; too big to keep, so once per block before).
    ['28×28, 49 tiles in one block', params(1, 8, 28, 28, 8, 1)],
    ['28×28, 88 channels, 49 tiles in one block', params(1, 88, 28, 28, 88, 1)],
    ['8×8 images, batch 8: 32 tiles in one block', params(8, 6, 8, 8, 5, 1)],
  ];
  for (const [name, p] of shapes) {
    it(`forward ${name}: ${label(p)}`, () => checkForward(p, 11 + p.c));
    it(`backward input ${name}: ${label(p)}`, () => checkBackwardInput(p, 13 + p.o));
  }

  it('ResNet layer shape 3×3 64→64 @56 (batch 1), forward and backward input', () => {
    const p = params(1, 64, 56, 56, 64, 1);
    checkForward(p, 5);
    checkBackwardInput(p, 6);
  });

  it('large-magnitude inputs keep their relative accuracy', () => {
    checkForward(params(1, 8, 12, 12, 8, 1), 21, 1e4);
  });

  it('NaN or ±Inf in x, w or dy: the im2col path runs instead (Winograd would smear them over whole tiles)', () => {
    const p = params(1, 2, 9, 9, 3, 1);
    const withPolicy = (policy: WinogradPolicy, f: () => void) => {
      const prev = setWinogradPolicy(policy);
      try {
        f();
      } finally {
        setWinogradPolicy(prev);
      }
    };
    const im2col = (f: () => void) => withPolicy('never', f);
    // x is checked before; w by the weight transform itself (then the forward runs again on the im2col path):
    // every tap of a filter, of the last output channel (a 4-channel panel's padded lanes follow it) and the first.
    const cases: ['x' | 'w', number, number][] = [['x', 40, NaN], ['x', 12, Infinity]];
    for (let t = 0; t < 9; t++) cases.push(['w', 36 + t, [NaN, Infinity, -Infinity][t % 3]!]);
    cases.push(['w', 0, NaN], ['w', 13, -Infinity]);
    for (const [where, idx, v] of cases) {
      const x = randArray(31, 2 * 81), w = randArray(32, 3 * 2 * 9);
      (where === 'x' ? x : w)[idx] = v;
      const y = new Float32Array(3 * 81), yr = new Float32Array(3 * 81);
      withPolicy('always', () => conv2dForward(y, x, w, null, p));
      im2col(() => conv2dForward(yr, x, w, null, p));
      assertIdentical(`fwd with ${v} in ${where}[${idx}]`, y, yr);
      expect(yr.some((t) => !Number.isFinite(t)) && yr.some((t) => Number.isFinite(t))).toBe(true);
      // fused, with a ReLU (which would turn a −Inf or a negative NaN into 0, so it cannot be checked after)
      const ep = { scale: Float64Array.of(0.5, -1, 2), shift: Float64Array.of(0.1, 0, -0.2), relu: true };
      const res = randArray(35, 3 * 81);
      withPolicy('always', () => conv2dForwardFused(y, x, w, res, p, ep));
      im2col(() => conv2dForwardFused(yr, x, w, res, p, ep));
      assertIdentical(`fused fwd with ${v} in ${where}[${idx}]`, y, yr);
    }
    const dy = randArray(33, 3 * 81), w = randArray(34, 54);
    dy[30] = NaN;
    const dx = new Float32Array(2 * 81), dxr = new Float32Array(2 * 81);
    conv2dBackwardInput(dx, dy, w, p);
    im2col(() => conv2dBackwardInput(dxr, dy, w, p));
    assertIdentical('bwd input with NaN in dy', dx, dxr);
    // and the direct conv agrees on where the NaNs are
    const dxn = new Float32Array(2 * 81);
    conv2dBackwardInputNaive(dxn, dy, w, p);
    for (let i = 0; i < dx.length; i++) expect(Number.isNaN(dx[i]!), `dx[${i}]`).toBe(Number.isNaN(dxn[i]!));
  });

  // One tile block: each group of 4 output channels transforms its U a chunk of 32 input channels at a time on the
  // SIMD backend (70: chunks of 32, 32 and 6), and the sums run on over the chunks.
  it('few tiles and 40 or 70 input channels, forward and backward input', () => {
    for (const p of [params(1, 70, 7, 7, 9, 1), params(1, 40, 5, 6, 8, 0)]) {
      checkForward(p, 91 + p.c);
      checkBackwardInput(p, 93 + p.o);
    }
  });

  it('NaN or ±Inf in any tap of w, 8 output channels: the forward falls back, winogradConv reports it', () => {
    const values = [NaN, Infinity, -Infinity];
    // one tile block (U in chunks) and several tile blocks (U transformed once per thread)
    for (const p of [params(1, 5, 7, 7, 8, 1), params(2, 3, 18, 14, 8, 1)]) {
      const x = randArray(36, p.n * p.c * p.h * p.w), ys = p.n * p.o * p.oh * p.ow;
      for (let t = 0; t < 9; t++) {
        const w = randArray(37, p.o * p.c * 9);
        w[((t % 4 + 4) * p.c + (t % p.c)) * 9 + t] = values[t % 3]!; // lane t mod 4 of the second panel, tap t
        const y = new Float32Array(ys), yr = new Float32Array(ys);
        const old = setWinogradPolicy('always');
        conv2dForward(y, x, w, null, p);
        setWinogradPolicy('never');
        conv2dForward(yr, x, w, null, p);
        setWinogradPolicy(old);
        assertIdentical(`fwd ${label(p)} with ${values[t % 3]} in tap ${t}`, y, yr);
        // the input gradient's reading of the same weights (flipped: w is (Ci, Co, 3, 3) there)
        const q = { n: p.n, ci: p.o, hi: p.oh, wi: p.ow, co: p.c, ho: p.h, wo: p.w, padH: 1, padW: 1, flip: true, accumulate: false };
        expect(winogradConv(new Float32Array(p.n * p.c * p.h * p.w), randArray(38, ys), w, null, q)).toBe(false);
      }
      const q = { n: p.n, ci: p.o, hi: p.oh, wi: p.ow, co: p.c, ho: p.h, wo: p.w, padH: 1, padW: 1, flip: true, accumulate: false };
      expect(winogradConv(new Float32Array(p.n * p.c * p.h * p.w), randArray(38, ys), randArray(37, p.o * p.c * 9), null, q)).toBe(true);
    }
  });

  // On the SIMD backend the forward leaves x's check to winogradConv (its `pad` sees every value of x): a NaN or ±Inf
  // anywhere in x (first value, a row's last column past the 4-float chunks, the last image's last value, a block in
  // the middle) makes it return false, and the forward gives the im2col path's bits.
  it('NaN or ±Inf anywhere in x: winogradConv reports it (SIMD), the forward falls back', () => {
    const values = [NaN, Infinity, -Infinity];
    for (const p of [params(2, 5, 9, 11, 6, 1), params(3, 3, 18, 14, 8, 0), params(1, 6, 7, 7, 9, 1)]) {
      const xs = p.n * p.c * p.h * p.w, ys = p.n * p.o * p.oh * p.ow;
      const w = randArray(41, p.o * p.c * 9);
      const q = { n: p.n, ci: p.c, hi: p.h, wi: p.w, co: p.o, ho: p.oh, wo: p.ow, padH: p.padH, padW: p.padW, flip: false, accumulate: false };
      expect(winogradConv(new Float32Array(ys), randArray(42, xs), w, null, q), `finite x ${label(p)}`).toBe(true);
      const at = [0, p.w - 1, xs - 1, (p.n >> 1) * p.c * p.h * p.w + (p.c >> 1) * p.h * p.w + (p.h >> 1) * p.w + 2];
      for (let t = 0; t < at.length; t++) {
        const x = randArray(42, xs);
        x[at[t]!] = values[t % 3]!;
        if (backend === 'simd') expect(winogradConv(new Float32Array(ys), x, w, null, q), `x[${at[t]}] = ${x[at[t]!]} ${label(p)}`).toBe(false);
        const y = new Float32Array(ys).fill(7), yr = new Float32Array(ys);
        conv2dForward(y, x, w, null, p);
        const old = setWinogradPolicy('never');
        conv2dForward(yr, x, w, null, p);
        setWinogradPolicy(old);
        assertIdentical(`fwd ${label(p)} with ${x[at[t]!]} in x[${at[t]}]`, y, yr);
        expect(yr.some((v) => !Number.isFinite(v))).toBe(true);
      }
    }
  });

  // The fused (float32) forward leaves x's check to winogradConv too on the SIMD backend: 40 → 16 channels on a 7×7
  // map (4 tiles: U without G's scales, `wino8x4`) and on 9×11 maps at batch 2 (several blocks of 8-tile panels).
  it('NaN or ±Inf anywhere in x, fused forward: winogradConv reports it (SIMD), the forward falls back', () => {
    const values = [NaN, Infinity, -Infinity];
    const ep = { scale: new Float64Array(16).fill(1.5), shift: new Float64Array(16).fill(0.25), relu: true };
    for (const p of [params(1, 40, 7, 7, 16, 1), params(2, 36, 9, 11, 16, 1)]) {
      const xs = p.n * p.c * p.h * p.w, ys = p.n * p.o * p.oh * p.ow;
      const w = randArray(43, p.o * p.c * 9);
      const q = { n: p.n, ci: p.c, hi: p.h, wi: p.w, co: p.o, ho: p.oh, wo: p.ow, padH: p.padH, padW: p.padW, flip: false, accumulate: false, float32: true };
      expect(winogradConv(new Float32Array(ys), randArray(44, xs), w, null, q, ep), `finite x ${label(p)}`).toBe(true);
      const at = [0, p.w - 1, xs - 1, (p.n >> 1) * p.c * p.h * p.w + (p.c >> 1) * p.h * p.w + (p.h >> 1) * p.w + 2];
      for (let t = 0; t < at.length; t++) {
        const x = randArray(44, xs);
        x[at[t]!] = values[t % 3]!;
        if (backend === 'simd') expect(winogradConv(new Float32Array(ys), x, w, null, q, ep), `x[${at[t]}] = ${x[at[t]!]} ${label(p)}`).toBe(false);
        const y = new Float32Array(ys).fill(7), yr = new Float32Array(ys);
        conv2dForwardFused(y, x, w, null, p, ep);
        const old = setWinogradPolicy('never');
        conv2dForwardFused(yr, x, w, null, p, ep);
        setWinogradPolicy(old);
        assertIdentical(`fused fwd ${label(p)} with ${x[at[t]!]} in x[${at[t]}]`, y, yr);
        expect(yr.some((v) => !Number.isFinite(v))).toBe(true);
      }
    }
  });

  // The fused forward's 4-tile mode (`pair8`: U in chunks of 64 input channels, two 4-channel panels) reports a NaN or
  // ±Inf in any filter it transforms: second panel, second chunk, any tap; the forward then gives the im2col path's bits.
  it('NaN or ±Inf in w, fused forward in 4-tile mode: winogradConv reports it (SIMD), the forward falls back', () => {
    const values = [NaN, Infinity, -Infinity];
    const p = params(1, 70, 7, 7, 16, 1), ys = p.o * p.oh * p.ow;
    const ep = { scale: new Float64Array(16).fill(1.5), shift: new Float64Array(16).fill(0.25), relu: false };
    const q = { n: 1, ci: 70, hi: 7, wi: 7, co: 16, ho: 7, wo: 7, padH: 1, padW: 1, flip: false, accumulate: false, float32: true };
    const x = randArray(45, p.c * p.h * p.w);
    expect(winogradConv(new Float32Array(ys), x, randArray(46, p.o * p.c * 9), null, q, ep)).toBe(true);
    for (let t = 0; t < 9; t++) {
      const w = randArray(46, p.o * p.c * 9);
      w[((8 + 4 + (t % 4)) * p.c + 64 + (t % 6)) * 9 + t] = values[t % 3]!; // channel 12–15, input channel 64–69, tap t
      if (backend === 'simd') expect(winogradConv(new Float32Array(ys), x, w, null, q, ep), `tap ${t}`).toBe(false);
      const y = new Float32Array(ys).fill(7), yr = new Float32Array(ys);
      conv2dForwardFused(y, x, w, null, p, ep);
      const old = setWinogradPolicy('never');
      conv2dForwardFused(yr, x, w, null, p, ep);
      setWinogradPolicy(old);
      assertIdentical(`fused fwd ${label(p)} with ${values[t % 3]} in tap ${t}`, y, yr);
    }
  });

  // Overwriting dx on the SIMD backend, the input gradient leaves dy's and w's checks to winogradConv: a NaN or ±Inf
  // in either gives the im2col path's bits (dx's old contents, NaN here, never read).
  it('input gradient overwriting dx, NaN or ±Inf in dy or w: the im2col path\'s bits', () => {
    const values = [NaN, Infinity, -Infinity];
    for (const p of [params(2, 5, 9, 11, 6, 1), params(1, 6, 7, 7, 9, 1)]) {
      const xs = p.n * p.c * p.h * p.w, ys = p.n * p.o * p.oh * p.ow;
      const spots: ['dy' | 'w', number][] = [['dy', 0], ['dy', ys - 1], ['dy', p.ow - 1], ['w', 0], ['w', p.o * p.c * 9 - 1], ['w', 9 * p.c + 4]];
      spots.forEach(([where, idx], t) => {
        const dy = randArray(51, ys), w = randArray(52, p.o * p.c * 9);
        (where === 'dy' ? dy : w)[idx] = values[t % 3]!;
        const dx = new Float32Array(xs).fill(NaN), dxr = new Float32Array(xs).fill(NaN);
        conv2dBackwardInput(dx, dy, w, p, { overwrite: true });
        const old = setWinogradPolicy('never');
        conv2dBackwardInput(dxr, dy, w, p, { overwrite: true });
        setWinogradPolicy(old);
        assertIdentical(`bwd input overwriting ${label(p)} with ${values[t % 3]} in ${where}[${idx}]`, dx, dxr);
        expect(dxr.some((v) => !Number.isFinite(v)) && dxr.some((v) => Number.isFinite(v))).toBe(true);
      });
      const dy = randArray(51, ys), w = randArray(52, p.o * p.c * 9);
      const dx = new Float32Array(xs).fill(NaN), dxn = new Float32Array(xs);
      conv2dBackwardInput(dx, dy, w, p, { overwrite: true });
      conv2dBackwardInputNaive(dxn, dy, w, p);
      assertClose(`bwd input overwriting ${label(p)}`, dx, dxn, tol);
    }
  });

  it('random shapes (fast-check), forward and backward input', () => {
    const spec = fc.record({
      n: fc.integer({ min: 1, max: 2 }),
      c: fc.integer({ min: 1, max: 9 }),
      o: fc.integer({ min: 1, max: 9 }),
      h: fc.integer({ min: 1, max: 13 }),
      w: fc.integer({ min: 1, max: 13 }),
      pad: fc.integer({ min: 0, max: 2 }),
      seed: fc.integer({ min: 0, max: 1e9 }),
    }).filter((r) => r.h + 2 * r.pad >= 3 && r.w + 2 * r.pad >= 3);
    fc.assert(
      fc.property(spec, (r) => {
        const p = params(r.n, r.c, r.h, r.w, r.o, r.pad);
        checkForward(p, r.seed);
        checkBackwardInput(p, r.seed);
      }),
      { seed: 7, numRuns: 80 },
    );
  });

  const checkFused = (p: Conv2dParams, seed: number): void => {
    const ys = p.n * p.o * p.oh * p.ow;
    const x = randArray(seed, p.n * p.c * p.h * p.w), w = randArray(seed + 1, p.o * p.c * 9), res = randArray(seed + 2, ys);
    const scale = Float64Array.from(randArray(seed + 3, p.o)), shift = Float64Array.from(randArray(seed + 4, p.o));
    const y = new Float32Array(ys);
    conv2dForwardFused(y, x, w, res, p, { scale, shift, relu: true });
    // reference: naive conv in float64 per output (recomputed here with a float64 accumulator), then the epilogue
    const conv = new Float32Array(ys);
    conv2dForwardNaive(conv, x, w, null, p);
    const ref = fusedEpilogueReference(conv, scale, shift, res, p.o, p.oh * p.ow);
    assertClose(`fused winograd ${label(p)}`, y, ref, tolFused);
    expect(ref.some((v) => v === 0) && ref.some((v) => v > 0)).toBe(true); // relu really cut something
  };

  it('fused epilogue: relu(conv·scale + shift + residual), one rounding', () => {
    checkFused(params(2, 5, 10, 11, 6, 1), 41);
    for (const [, p] of shapes.slice(-6)) checkFused(p, 71 + p.c);
  });

  // Few tiles per block: the SIMD fused forward's GEMMs then run on panels of 4 tiles (wino8x4 on 8 output channels,
  // wino4 on a last 4) instead of 8; 44 output channels: two units of channels, the second ending in a group of 4.
  it('fused epilogue on blocks of 3, 4 and 12 tiles (70 input channels: two float32 blocks of k)', () => {
    for (const p of [params(1, 70, 7, 7, 9, 1), params(1, 70, 7, 7, 44, 1), params(1, 3, 4, 12, 5, 1), params(1, 5, 4, 48, 6, 1), params(2, 66, 5, 5, 4, 1)]) checkFused(p, 81 + p.c);
    // Units of 32, 16, 8 and 8 output channels (the last 32 halved).
    checkFused(params(1, 40, 7, 7, 64, 1), 87);
  });

  it('winogradConv accumulates when asked (backward-input contract)', () => {
    const p = { n: 1, ci: 2, hi: 5, wi: 5, co: 3, ho: 5, wo: 5, padH: 1, padW: 1, flip: false, accumulate: true };
    const x = randArray(51, 50), w = randArray(52, 54), y0 = randArray(53, 75);
    const y = y0.slice();
    winogradConv(y, x, w, null, p);
    const fresh = new Float32Array(75);
    conv2dForwardNaive(fresh, x, w, null, params(1, 2, 5, 5, 3, 1));
    const ref = y0.map((v, i) => v + fresh[i]!);
    assertClose('accumulate', y, ref, tolFused);
  });
});

describe('Winograd float64 path: the SIMD backend gives the js backend\'s bits', () => {
  // Both sum the 36 GEMMs in float64 in the same order and transform in float64 (the SIMD backend's in wasm, its
  // weight transform as an integer G' and row scales: float64 roundings apart, ~1e-16 relative), so every output of
  // these shapes rounds to the same float32, epilogue included.
  const runBoth = (f: () => Float32Array): [Float32Array, Float32Array] => {
    const old = setKernelBackend('simd');
    try {
      const simd = f();
      setKernelBackend('js');
      return [simd, f()];
    } finally {
      setKernelBackend(old);
    }
  };
  it('forward with and without bias, backward input (accumulating), winogradConv with scale, shift, residual and ReLU', () => {
    const oldPolicy = setWinogradPolicy('always');
    try {
      for (const p of [params(1, 16, 13, 13, 20, 1), params(2, 8, 9, 10, 9, 0), params(3, 16, 28, 28, 16, 1)]) {
        const ys = p.n * p.o * p.oh * p.ow, xs = p.n * p.c * p.h * p.w;
        const x = randArray(61, xs), w = randArray(62, p.o * p.c * 9), b = randArray(63, p.o), dy = randArray(64, ys);
        const [y, yj] = runBoth(() => {
          const y = new Float32Array(ys);
          conv2dForward(y, x, w, b, p);
          return y;
        });
        assertIdentical(`fwd ${label(p)}`, y, yj);
        const [y0, y0j] = runBoth(() => {
          const y = new Float32Array(ys);
          conv2dForward(y, x, w, null, p);
          return y;
        });
        assertIdentical(`fwd without bias ${label(p)}`, y0, y0j);
        const [dx, dxj] = runBoth(() => {
          const dx = randArray(65, xs);
          conv2dBackwardInput(dx, dy, w, p);
          return dx;
        });
        assertIdentical(`bwd input ${label(p)}`, dx, dxj);
        const scale = Float64Array.from(randArray(66, p.o)), shift = Float64Array.from(randArray(67, p.o)), res = randArray(68, ys);
        const q = { n: p.n, ci: p.c, hi: p.h, wi: p.w, co: p.o, ho: p.oh, wo: p.ow, padH: p.padH, padW: p.padW, flip: false };
        for (const [accumulate, r, relu] of [[false, res, true], [false, null, true], [true, null, false], [true, res, true]] as const) {
          const [e, ej] = runBoth(() => {
            const y = randArray(69, ys);
            winogradConv(y, x, w, r, { ...q, accumulate }, { scale, shift, relu });
            return y;
          });
          assertIdentical(`winogradConv accumulate=${accumulate} res=${r !== null} relu=${relu} ${label(p)}`, e, ej);
          expect(e.some((v) => v === 0)).toBe(relu);
        }
      }
    } finally {
      setWinogradPolicy(oldPolicy);
    }
  });
});

describe('Winograd dispatch', () => {
  const P = (n: number, c: number, h: number, o: number): Conv2dParams => ({
    n, c, h, w: h, o, kh: 3, kw: 3, strideH: 1, strideW: 1, padH: 1, padW: 1, dilH: 1, dilW: 1, groups: 1, oh: h, ow: h,
  });
  /** Whether the dispatch ('auto') takes Winograd for the forward (float32: the fused one) or the input gradient. */
  const picks = (p: Conv2dParams, dir: 'forward' | 'fused' | 'input'): boolean => {
    const old = setWinogradPolicy('auto');
    try {
      const y = new Float32Array(p.n * p.o * p.oh * p.ow), w = new Float32Array(p.o * p.c * 9);
      if (dir === 'input') return backwardInputWinograd(p, y, w) !== null;
      return forwardWinograd(p, new Float32Array(p.n * p.c * p.h * p.w), dir === 'fused') !== null;
    } finally {
      setWinogradPolicy(old);
    }
  };

  // Shapes whose faster path was measured ahead by ≥ 2× (one core, process CPU time, Winograd vs im2col + GEMM).
  it('the cost model (SIMD backend) takes the path measured faster by a wide margin', () => {
    expect(picks(P(128, 8, 7, 8), 'forward')).toBe(true); // 0.37 vs 1.43 ms
    expect(picks(P(128, 8, 7, 8), 'input')).toBe(true); // 0.40 vs 3.00
    expect(picks(P(128, 16, 2, 16), 'forward')).toBe(true); // 0.42 vs 1.17
    expect(picks(P(128, 16, 28, 16), 'input')).toBe(true); // 11.0 vs 97.4
    expect(picks(P(128, 64, 4, 64), 'fused')).toBe(true); // 1.58 vs 8.65
    expect(picks(P(1, 512, 2, 512), 'forward')).toBe(false); // 6.0 vs 1.6
    expect(picks(P(1, 256, 4, 256), 'forward')).toBe(false); // 1.45 vs 0.64
    expect(picks(P(8, 512, 1, 512), 'forward')).toBe(false); // 9.2 vs 1.4 (3×3 pad 1 on 1×1: one live tap)
    expect(picks(P(8, 512, 1, 512), 'input')).toBe(false); // 11.0 vs 0.7
  });

  it('the cost model on the js backend (asm.js tiles)', () => {
    const old = setKernelBackend('js');
    try {
      expect(picks(P(1, 64, 56, 64), 'forward')).toBe(true);
      expect(picks(P(8, 512, 2, 512), 'forward')).toBe(true); // measured 29.6 vs 34.8 ms im2col
      expect(picks(P(1, 16, 4, 16), 'forward')).toBe(false);
    } finally {
      setKernelBackend(old);
    }
  });
});
