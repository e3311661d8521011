/**
 * The fused Winograd F(4×4, 3×3) kernel (src/kernels/winograd-fused.ts: transforms and GEMMs in one wasm function,
 * the float32 inference forward with few channels) against the naive float64 direct convolution and the float64
 * epilogue: the float32-op tolerance (atol 1e-5 + rtol 1e-4), as for winograd.ts's float32 path. Every case first
 * checks that the fused kernel is the one that runs.
 */
import { describe, expect, it } from 'vitest';
import { conv2dForwardFused, conv2dForwardNaive, setWinogradPolicy, type Conv2dParams } from '../../src/kernels/conv2d.js';
import { forwardWinograd, im2colCost } from '../../src/kernels/conv2d/plan.js';
import { setMinParallelCost, setParallelBackend, type Task, type TaskFn } from '../../src/kernels/parallel.js';
import { takeFinite } from '../../src/kernels/finite.js';
import { fusedWinogradApplies, fusedWinogradConv, fusedWinogradCost } from '../../src/kernels/winograd-fused.js';
import { winogradCost } from '../../src/kernels/winograd.js';
import { assertClose, assertIdentical, fusedEpilogueReference, randArray, winogradLabel, winogradShapeParams } from './compare.js';
import { useKernelBackend } from './backend-hooks.js';

const FLOAT32_OP = { atol: 1e-5, rtol: 1e-4 };

const params = winogradShapeParams, label = winogradLabel;

/** Runs f with Winograd forced (the cost model would pick im2col for some of these small shapes). */
function always<T>(f: () => T): T {
  const old = setWinogradPolicy('always');
  try {
    return f();
  } finally {
    setWinogradPolicy(old);
  }
}

/** The fused forward's result and its float64 reference (relu(conv·scale + shift + res), one rounding). */
function run(p: Conv2dParams, seed: number, withRes = true, relu = true): { y: Float32Array; ref: Float32Array } {
  const ys = p.n * p.o * p.oh * p.ow;
  const x = randArray(seed, p.n * p.c * p.h * p.w), w = randArray(seed + 1, p.o * p.c * 9);
  const res = withRes ? randArray(seed + 2, ys) : new Float32Array(ys);
  const scale = Float64Array.from(randArray(seed + 3, p.o)), shift = Float64Array.from(randArray(seed + 4, p.o));
  const wp = always(() => forwardWinograd(p, x, true));
  expect(wp !== null && fusedWinogradApplies(wp), `fused kernel for ${label(p)}`).toBe(true);
  const y = new Float32Array(ys).fill(NaN);
  always(() => conv2dForwardFused(y, x, w, withRes ? res : null, p, { scale, shift, relu }));
  const conv = new Float32Array(ys);
  conv2dForwardNaive(conv, x, w, null, p);
  let ref = fusedEpilogueReference(conv, scale, shift, res, p.o, p.oh * p.ow);
  if (!relu) {
    ref = new Float32Array(ys);
    for (let i = 0; i < ys; i++) ref[i] = conv[i]! * scale[Math.floor(i / (p.oh * p.ow)) % p.o]! + shift[Math.floor(i / (p.oh * p.ow)) % p.o]! + res[i]!;
  }
  return { y, ref };
}

describe('fused Winograd F(4×4, 3×3), SIMD backend, float32 forward', () => {
  useKernelBackend('simd', { directConv: false });

  const shapes: [string, Conv2dParams][] = [
    ['CIFAR 16→16 @32, batch 2 (whole images per unit)', params(2, 16, 32, 32, 16, 1)],
    ['batch 1 (units of tile rows), 13×30: partial last tiles in both directions', params(1, 8, 13, 30, 8, 1)],
    ['@28: staged rows longer than y’s (16 columns per quad, 28 in y)', params(2, 16, 28, 28, 16, 1)],
    ['@12: one quad per tile row, tile rows in pairs', params(3, 6, 12, 12, 9, 1)],
    ['channels not multiples of 4: 5 → 7, pad 0, 18×17', params(2, 5, 18, 17, 7, 0)],
    ['pad 2, 11×14, 32 → 3 channels', params(1, 32, 11, 14, 3, 2)],
    ['1 input channel, 3 outputs, 16×64 (4 quads per tile row)', params(2, 1, 16, 64, 3, 1)],
    ['32 → 32 @16', params(2, 32, 16, 16, 32, 1)],
  ];
  for (const [name, p] of shapes) {
    it(`${name}: ${label(p)}`, () => {
      const { y, ref } = run(p, 11 + p.c + p.o);
      assertClose(`fused winograd ${label(p)}`, y, ref, FLOAT32_OP);
      expect(ref.some((v) => v === 0) && ref.some((v) => v > 0)).toBe(true); // the ReLU really cut something
    });
  }

  it('without a residual or ReLU, and with large inputs (relative accuracy)', () => {
    const p = params(2, 16, 20, 24, 16, 1);
    const { y, ref } = run(p, 5, false, false);
    assertClose(`fused winograd no res/relu ${label(p)}`, y, ref, FLOAT32_OP);
    const big = randArray(6, p.n * p.c * p.h * p.w, -1e4, 1e4), w = randArray(7, p.o * p.c * 9), ys = p.n * p.o * p.oh * p.ow;
    const ones = new Float64Array(p.o).fill(1), zeros = new Float64Array(p.o);
    const yb = new Float32Array(ys), refb = new Float32Array(ys);
    always(() => conv2dForwardFused(yb, big, w, null, p, { scale: ones, shift: zeros, relu: false }));
    conv2dForwardNaive(refb, big, w, null, p);
    assertClose(`fused winograd ×1e4 ${label(p)}`, yb, refb, { atol: 1e-5 * 1e4, rtol: 1e-4 });
  });

  it('NaN or ±Inf in w or x: the kernel reports it and the forward falls back to im2col', () => {
    const p = params(1, 4, 16, 16, 6, 1), ys = p.o * p.oh * p.ow;
    // x[255]: the last input value (it reaches only the last tile), x[240]: the first of the last row.
    const cases = [['w', 0, NaN], ['w', 5 * 36 + 8, Infinity], ['w', 17, -Infinity], ['x', 100, NaN], ['x', 3, Infinity], ['x', 255, -Infinity], ['x', 3 * 256 + 240, Infinity]] as const;
    for (const relu of [false, true]) for (const [where, idx, v] of cases) {
      const ep = { scale: Float64Array.of(0.5, -1, 2, 1, 1, 3), shift: Float64Array.of(0.1, 0, -0.2, 0, 0, 1), relu };
      const x = randArray(31, p.c * p.h * p.w), w = randArray(32, p.o * p.c * 9);
      (where === 'x' ? x : w)[idx] = v;
      const wp = { n: 1, ci: p.c, hi: p.h, wi: p.w, co: p.o, ho: p.oh, wo: p.ow, padH: 1, padW: 1, flip: false, accumulate: false, float32: true };
      expect(fusedWinogradApplies(wp)).toBe(true);
      expect(fusedWinogradConv(new Float32Array(ys), x, w, null, wp, ep), `${v} in ${where}[${idx}], relu ${relu}`).toBe(false);
      const y = new Float32Array(ys), yr = new Float32Array(ys);
      always(() => conv2dForwardFused(y, x, w, null, p, ep));
      const old = setWinogradPolicy('never');
      conv2dForwardFused(yr, x, w, null, p, ep);
      setWinogradPolicy(old);
      assertIdentical(`fused forward with ${v} in ${where}[${idx}], relu ${relu}`, y, yr);
      expect(yr.some((t) => !Number.isFinite(t)) && yr.some((t) => Number.isFinite(t))).toBe(true);
    }
  });

  it('the same bits however the units are split and ordered (what threads do)', () => {
    // A backend that runs the units in reverse, in runs of 1, 2, 3, … units, on this thread.
    const backend = {
      threads: 3,
      run(task: Task, fn: TaskFn) {
        let end = task.units, len = 1;
        while (end > 0) {
          const u0 = Math.max(0, end - len);
          fn(task.bufs, task.params, u0, end);
          end = u0;
          len++;
        }
      },
    };
    const oldCost = setMinParallelCost(0);
    for (const p of [params(1, 16, 32, 32, 16, 1), params(5, 16, 12, 24, 12, 1)]) {
      const { y: y1 } = run(p, 41);
      setParallelBackend(backend);
      try {
        const { y: y2 } = run(p, 41);
        assertIdentical(`fused winograd units reversed ${label(p)}`, y2, y1);
      } finally {
        setParallelBackend(null);
      }
    }
    setMinParallelCost(oldCost);
  });

  it('notes an all-finite output for the next conv (kernels/finite.ts), and not one holding ±Inf or NaN', () => {
    const p = params(2, 8, 16, 16, 6, 1), ys = p.n * p.o * p.oh * p.ow;
    const x = randArray(61, p.n * p.c * p.h * p.w), w = randArray(62, p.o * p.c * 9);
    const ep = { scale: Float64Array.from(randArray(63, p.o)), shift: Float64Array.from(randArray(64, p.o)), relu: false };
    for (const [where, v] of [['none', 0], ['res', Infinity], ['res', NaN], ['shift', -Infinity]] as const) {
      const res = randArray(65, ys), e = { ...ep, shift: ep.shift.slice() };
      if (where === 'res') res[ys - 7] = v;
      if (where === 'shift') e.shift[5] = v;
      const y = new Float32Array(ys);
      always(() => conv2dForwardFused(y, x, w, res, p, e));
      expect(takeFinite(y), `${v} in ${where}`).toBe(y.every((t) => Number.isFinite(t)));
      expect(y.every((t) => Number.isFinite(t))).toBe(where === 'none');
    }
  });

  it('does not take the plain forward, the input gradient, 8×8 maps or more than 32 channels', () => {
    const base = { n: 2, ci: 16, hi: 32, wi: 32, co: 16, ho: 32, wo: 32, padH: 1, padW: 1, flip: false, accumulate: false };
    expect(fusedWinogradApplies({ ...base, float32: true })).toBe(true);
    expect(fusedWinogradApplies(base)).toBe(false);
    expect(fusedWinogradApplies({ ...base, float32: true, flip: true, accumulate: true })).toBe(false);
    expect(fusedWinogradApplies({ ...base, float32: true, hi: 8, wi: 8, ho: 8, wo: 8 })).toBe(false);
    expect(fusedWinogradApplies({ ...base, float32: true, ci: 64, co: 64 })).toBe(false);
  });

  it('the dispatch prices the fused kernel, not the unfused float32 path (8→8 @14, batch 32: fused 1.7× faster than im2col)', () => {
    // Priced as the unfused path, Winograd cost more than im2col here; measured (one core, CPU ms) fused 0.22, im2col
    // 0.37. The plain (float64) forward of the same shape is not fused, and keeps its own price.
    const p = params(32, 8, 14, 14, 8, 1);
    const x = randArray(3, p.n * p.c * p.h * p.w);
    const q = forwardWinograd(p, x, true);
    expect(q !== null && fusedWinogradApplies(q), label(p)).toBe(true);
    expect(fusedWinogradCost(q!)).toBeLessThan(im2colCost(p, 'forward', true));
    expect(winogradCost(q!)).toBe(fusedWinogradCost(q!));
    expect(winogradCost({ ...q!, float32: false })).not.toBe(fusedWinogradCost(q!));
  });
});
