/**
 * The SIMD Winograd convolution's float64 path in place over the resident memory (kernels/wasm/optim.ts: x read and
 * y written at their addresses there, scratch in per-thread resident regions) against the same call on plain arrays
 * (x and y copied through the thread's own wasm memory): the same bits, for the forward (with accumulation, the
 * epilogue and a residual) and the input gradient (flip), on shapes with one and several tile blocks, whole and
 * local U, maps whose width is not a multiple of 4 and tiles cut by the output's edge. Likewise the Winograd weight
 * gradient (conv2d/backward-winograd.ts: x's and dy's rows read in place), with and without splits over images.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setConfig, type Config } from '../../src/config.js';
import { conv2dBackwardWeight, type Conv2dParams } from '../../src/kernels/conv2d.js';
import { weightGradInPlaceCalls } from '../../src/kernels/conv2d/backward-winograd.js';
import { hasSimd128 } from '../../src/kernels/wasm/features.js';
import { residentMemory } from '../../src/kernels/wasm/optim.js';
import { winogradConv, winogradInPlaceCalls, type Epilogue, type WinogradParams } from '../../src/kernels/winograd.js';
import { assertIdentical, randArray, winogradShapeParams, residentCopy } from './compare.js';

let old: Partial<Config>;
beforeAll(() => {
  old = setConfig({ kernelBackend: 'simd' });
});
afterAll(() => {
  setConfig(old);
});

function geometry(n: number, ci: number, hw: [number, number], co: number, pad: number, flip = false, accumulate = false): WinogradParams {
  const [hi, wi] = hw;
  return { n, ci, hi, wi, co, ho: hi + 2 * pad - 2, wo: wi + 2 * pad - 2, padH: pad, padW: pad, flip, accumulate };
}

/** winogradConv on plain arrays and on resident ones from the same values: the same y bits and the same result. */
function check(p: WinogradParams, seed: number, ep?: Epilogue, withRes = false): void {
  const xs = p.n * p.ci * p.hi * p.wi, ys = p.n * p.co * p.ho * p.wo;
  const x = randArray(seed, xs), w = randArray(seed + 1, p.co * p.ci * 9), y0 = randArray(seed + 2, ys);
  const res = withRes ? randArray(seed + 3, ys) : null;
  const y = y0.slice();
  const ok = winogradConv(y, x, w, res, p, ep);
  const yr = residentCopy(y0);
  const before = winogradInPlaceCalls();
  const okR = winogradConv(yr, residentCopy(x), residentCopy(w), res !== null ? residentCopy(res) : null, p, ep);
  const what = `${p.flip ? 'input gradient' : 'forward'} n${p.n} ${p.ci}→${p.co} @${p.hi}×${p.wi} pad ${p.padH}${p.accumulate ? ' +=' : ''}${ep ? ' epilogue' : ''}${res ? ' residual' : ''}`;
  expect(winogradInPlaceCalls() - before, `${what}: ran in place`).toBe(1);
  expect(okR, what).toBe(ok);
  assertIdentical(what, yr, y);
}

describe.runIf(hasSimd128 && typeof SharedArrayBuffer === 'function')('Winograd in place over the resident memory', () => {
  it('has a resident memory', () => {
    expect(residentMemory()).not.toBeNull();
  });

  it('forward: one and several tile blocks, whole and local U, edge tiles; the same bits as through copies', () => {
    check(geometry(8, 16, [28, 28], 16, 1), 1);
    check(geometry(3, 8, [14, 14], 12, 1), 11);
    check(geometry(2, 5, [13, 10], 7, 1), 21);
    check(geometry(1, 70, [7, 7], 9, 1), 31);
    check(geometry(2, 6, [9, 11], 6, 0), 41);
    check(geometry(16, 64, [7, 7], 64, 1), 51);
  });

  it('forward with accumulation, the epilogue (scale, shift, residual, ReLU)', () => {
    const co = 12;
    const scale = Float64Array.from(randArray(5, co)), shift = Float64Array.from(randArray(6, co));
    const ep: Epilogue = { scale, shift, relu: true };
    check(geometry(4, 8, [14, 14], co, 1), 61, ep, true);
    check(geometry(2, 3, [10, 9], co, 1, false, true), 71, ep, true);
    check(geometry(3, 16, [7, 7], co, 1, false, true), 81);
  });

  it('input gradient (flipped weights), overwriting and accumulating', () => {
    check(geometry(4, 16, [14, 14], 8, 1, true), 91);
    check(geometry(2, 9, [11, 6], 5, 1, true, true), 101);
    check(geometry(8, 32, [7, 7], 16, 1, true, true), 111);
  });

  it('NaN in w: reported as on plain arrays', () => {
    const p = geometry(2, 4, [8, 8], 8, 1);
    const x = randArray(3, p.n * p.ci * p.hi * p.wi), w = randArray(4, p.co * p.ci * 9);
    w[40] = NaN;
    const y = residentCopy(new Float32Array(p.n * p.co * p.ho * p.wo));
    const before = winogradInPlaceCalls();
    expect(winogradConv(y, residentCopy(x), residentCopy(w), null, p)).toBe(false);
    expect(winogradInPlaceCalls() - before).toBe(1);
  });
});

describe.runIf(hasSimd128 && typeof SharedArrayBuffer === 'function')('Winograd weight gradient in place over the resident memory', () => {
  /** conv2dBackwardWeight on plain and on resident x, dy: the same dw bits, and the resident call ran in place. */
  function checkWeight(p: Conv2dParams, seed: number): void {
    const x = randArray(seed, p.n * p.c * p.h * p.w), dy = randArray(seed + 1, p.n * p.o * p.oh * p.ow);
    const dw0 = randArray(seed + 2, p.o * p.c * 9);
    const dw = dw0.slice(), dwr = dw0.slice();
    conv2dBackwardWeight(dw, dy, x, p);
    const before = weightGradInPlaceCalls();
    conv2dBackwardWeight(dwr, residentCopy(dy), residentCopy(x), p);
    const what = `weight gradient n${p.n} ${p.c}→${p.o} @${p.h}×${p.w} pad ${p.padH}`;
    expect(weightGradInPlaceCalls() - before, `${what}: ran in place`).toBe(1);
    assertIdentical(what, dwr, dw);
  }

  it('small and large maps, odd widths, one and several channel blocks and splits: the same bits as through copies', () => {
    checkWeight(winogradShapeParams(16, 16, 28, 28, 16, 1), 201);
    checkWeight(winogradShapeParams(4, 8, 14, 14, 12, 1), 211);
    checkWeight(winogradShapeParams(2, 5, 13, 11, 7, 1), 221);
    checkWeight(winogradShapeParams(8, 64, 7, 7, 64, 1), 231);
    checkWeight(winogradShapeParams(2, 3, 40, 40, 4, 1), 241);
    checkWeight(winogradShapeParams(4, 80, 9, 9, 70, 0), 251);
  });
});
