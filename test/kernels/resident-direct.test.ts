/**
 * The direct kernels in place over the resident memory (kernels/wasm/optim.ts: a training step's tensors read and
 * written at their addresses there, scratch in per-thread resident regions) against the same calls on plain and
 * SharedArrayBuffer arrays (rows copied through the thread's own wasm memory): the same bits, for the direct forward
 * (conv2d/direct.ts: stride 1 and 2, with and without bias, x or y alone resident), the direct input gradient
 * (accumulating), the stride-phase input gradient (conv2d/phases.ts: overwriting and accumulating) and the direct
 * SIMD weight gradient (conv2d/backward.ts: flat stride-2 rows and per-row panels, x or dy alone resident), on odd
 * sizes and batches other than a training step's.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setConfig, type Config } from '../../src/config.js';
import { conv2dBackwardInput, conv2dBackwardWeight, conv2dForward, type Conv2dParams } from '../../src/kernels/conv2d.js';
import { weightGradSimdInPlaceCalls } from '../../src/kernels/conv2d/backward.js';
import { directInPlaceCalls } from '../../src/kernels/conv2d/direct.js';
import { phasesInPlaceCalls } from '../../src/kernels/conv2d/phases.js';
import { hasSimd128 } from '../../src/kernels/wasm/features.js';
import { residentMemory } from '../../src/kernels/wasm/optim.js';
import { assertIdentical, randArray, residentCopy } from './compare.js';

let old: Partial<Config>;
beforeAll(() => {
  old = setConfig({ kernelBackend: 'simd', directConv: true });
});
afterAll(() => {
  setConfig(old);
});

/** A SharedArrayBuffer copy of a (shared, but not resident: its rows are copied). */
function shared(a: Float32Array): Float32Array {
  const r = new Float32Array(new SharedArrayBuffer(4 * a.length));
  r.set(a);
  return r;
}

/** A k×k conv's parameters (square stride and padding). */
function conv(n: number, c: number, h: number, w: number, o: number, k: number, stride: number, pad: number): Conv2dParams {
  const oh = Math.floor((h + 2 * pad - k) / stride) + 1, ow = Math.floor((w + 2 * pad - k) / stride) + 1;
  return { n, c, h, w, o, kh: k, kw: k, strideH: stride, strideW: stride, padH: pad, padW: pad, dilH: 1, dilW: 1, groups: 1, oh, ow };
}

const name = (what: string, p: Conv2dParams): string => `${what} n${p.n} ${p.c}→${p.o} @${p.h}×${p.w} ${p.kh}×${p.kw}/${p.strideH} pad ${p.padH}`;
const xLen = (p: Conv2dParams): number => p.n * p.c * p.h * p.w;
const yLen = (p: Conv2dParams): number => p.n * p.o * p.oh * p.ow;

describe.runIf(hasSimd128 && typeof SharedArrayBuffer === 'function')('direct kernels in place over the resident memory', () => {
  it('has a resident memory', () => {
    expect(residentMemory()).not.toBeNull();
  });

  it('forward (stride 1 stems, stride 2), with and without bias, x or y alone resident: the same bits', () => {
    const shapes = [conv(8, 16, 28, 28, 32, 3, 2, 1), conv(3, 5, 13, 11, 8, 3, 2, 1), conv(5, 1, 28, 28, 16, 3, 1, 1), conv(3, 3, 17, 15, 16, 3, 1, 1),
      conv(1, 7, 9, 10, 12, 3, 2, 0), conv(2, 32, 7, 7, 64, 3, 2, 1)];
    shapes.forEach((p, i) => {
      const x = randArray(10 * i + 1, xLen(p)), w = randArray(10 * i + 2, p.o * p.c * 9), b = randArray(10 * i + 3, p.o);
      for (const bias of [null, b]) {
        const y = new Float32Array(yLen(p));
        conv2dForward(y, shared(x), w, bias, p);
        const what = name(bias ? 'forward + bias' : 'forward', p);
        const before = directInPlaceCalls();
        const yr = residentCopy(new Float32Array(yLen(p)).fill(NaN));
        conv2dForward(yr, residentCopy(x), w, bias, p);
        const yx = residentCopy(new Float32Array(yLen(p)).fill(NaN));
        conv2dForward(yx, x, w, bias, p);
        const yy = shared(new Float32Array(yLen(p)));
        conv2dForward(yy, residentCopy(x), w, bias, p);
        expect(directInPlaceCalls() - before, `${what}: ran in place`).toBe(3);
        assertIdentical(`${what}, x and y resident`, yr, y);
        assertIdentical(`${what}, y resident`, yx, y);
        assertIdentical(`${what}, x resident`, yy, y);
      }
    });
  });

  it('forward with output channels not filling the last register tile: through copies, the same bits', () => {
    const p = conv(3, 6, 11, 9, 7, 3, 2, 1);
    const x = randArray(71, xLen(p)), w = randArray(72, p.o * p.c * 9);
    const y = new Float32Array(yLen(p));
    conv2dForward(y, x, w, null, p);
    const before = directInPlaceCalls();
    const yr = residentCopy(new Float32Array(yLen(p)));
    conv2dForward(yr, residentCopy(x), w, null, p);
    expect(directInPlaceCalls() - before).toBe(0);
    assertIdentical(name('forward', p), yr, y);
  });

  it('direct input gradient (stride 1, few channels), accumulating and overwriting', () => {
    for (const [i, p] of [conv(5, 4, 17, 15, 16, 3, 1, 1), conv(2, 4, 12, 13, 8, 3, 1, 1)].entries()) {
      const dy = randArray(20 * i + 1, yLen(p)), w = randArray(20 * i + 2, p.o * p.c * 9), dx0 = randArray(20 * i + 3, xLen(p));
      for (const overwrite of [false, true]) {
        const dx = shared(dx0);
        conv2dBackwardInput(dx, shared(dy), w, p, { overwrite });
        const before = directInPlaceCalls();
        const dxr = residentCopy(dx0);
        conv2dBackwardInput(dxr, residentCopy(dy), w, p, { overwrite });
        expect(directInPlaceCalls() - before).toBe(1);
        assertIdentical(name(overwrite ? 'input gradient =' : 'input gradient +=', p), dxr, dx);
      }
    }
  });

  it('stride-phase input gradient (3×3/2, 1×1/2, 3×3/3, odd sizes), accumulating and overwriting', () => {
    const shapes = [conv(8, 16, 28, 28, 32, 3, 2, 1), conv(3, 5, 13, 11, 8, 3, 2, 1), conv(1, 7, 9, 10, 12, 3, 2, 0), conv(3, 6, 11, 9, 7, 3, 2, 1),
      conv(4, 16, 16, 16, 32, 1, 2, 0), conv(2, 9, 15, 17, 10, 3, 3, 1)];
    shapes.forEach((p, i) => {
      const dy = randArray(30 * i + 1, yLen(p)), w = randArray(30 * i + 2, p.o * p.c * p.kh * p.kw), dx0 = randArray(30 * i + 3, xLen(p));
      for (const overwrite of [false, true]) {
        const dx = shared(dx0);
        conv2dBackwardInput(dx, shared(dy), w, p, { overwrite });
        const before = phasesInPlaceCalls();
        const dxr = residentCopy(dx0);
        conv2dBackwardInput(dxr, residentCopy(dy), w, p, { overwrite });
        const what = name(overwrite ? 'phases =' : 'phases +=', p);
        expect(phasesInPlaceCalls() - before, `${what}: ran in place`).toBe(1);
        assertIdentical(what, dxr, dx);
      }
    });
  });

  it('direct SIMD weight gradient (stride 2 flat and per row, stride 1 stems), x or dy alone resident', () => {
    const shapes = [conv(8, 16, 28, 28, 32, 3, 2, 1), conv(3, 5, 13, 11, 8, 3, 2, 1), conv(5, 1, 28, 28, 16, 3, 1, 1), conv(3, 2, 40, 37, 6, 3, 2, 1),
      conv(2, 32, 12, 12, 64, 3, 2, 1), conv(6, 2, 19, 21, 16, 3, 1, 1)];
    shapes.forEach((p, i) => {
      const x = randArray(40 * i + 1, xLen(p)), dy = randArray(40 * i + 2, yLen(p)), dw0 = randArray(40 * i + 3, p.o * p.c * 9);
      const dw = dw0.slice();
      conv2dBackwardWeight(dw, shared(dy), shared(x), p);
      const what = name('weight gradient', p);
      const before = weightGradSimdInPlaceCalls();
      const both = dw0.slice(), xOnly = dw0.slice(), dyOnly = dw0.slice();
      conv2dBackwardWeight(both, residentCopy(dy), residentCopy(x), p);
      conv2dBackwardWeight(xOnly, dy, residentCopy(x), p);
      conv2dBackwardWeight(dyOnly, residentCopy(dy), x, p);
      expect(weightGradSimdInPlaceCalls() - before, `${what}: ran in place`).toBe(3);
      assertIdentical(`${what}, x and dy resident`, both, dw);
      assertIdentical(`${what}, x resident`, xOnly, dw);
      assertIdentical(`${what}, dy resident`, dyOnly, dw);
    });
  });
});
