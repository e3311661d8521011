import { describe, expect, it } from 'vitest';
import { withConfig } from '../../src/config.js';
import { batchNormBackward, batchNormTrainForward } from '../../src/kernels/batchnorm.js';
import { conv2dForwardFused } from '../../src/kernels/conv2d.js';
import { noteFinite, takeFinite } from '../../src/kernels/finite.js';
import { allFinite } from '../../src/kernels/conv2d/plan.js';
import { residentBuffer } from '../../src/kernels/optim.js';
import { hasSimd128, type KernelBackend } from '../../src/kernels/wasm/features.js';
import { conv2d } from '../../src/ops/conv.js';
import { batchNormRelu2d } from '../../src/ops/norm.js';
import { Tensor } from '../../src/tensor.js';
import { randArray } from './compare.js';

// The batch norm's training kernels note whether what they stored is all finite (kernels/finite.ts), so that the
// Winograd convolution after them skips its own scan: a note only where every value is finite, taken once; and a
// non-finite value still sends the convolution to the im2col path (the direct convolution's NaN/Inf pattern). On
// the SIMD backend also with the tensors in the resident memory, where the kernels run in place.

const cases: [KernelBackend, boolean][] = hasSimd128 ? [['js', false], ['simd', false], ['simd', true]] : [['js', false]];

describe.each(cases)('finiteness notes of the batch norm training kernels, %s backend (resident tensors: %s)', (backend, resident) => {
  const n = 2, c = 3, hw = 11, len = n * c * hw, p = { n, c, hw, eps: 1e-5 };
  /** a in the resident memory (a copy), when the case asks for it */
  const place = (a: Float32Array): Float32Array => {
    if (!resident) return a;
    const r = withConfig({ kernelBackend: 'simd' }, () => residentBuffer(a.length));
    if (r === null) throw new Error('no resident memory');
    r.set(a);
    return r;
  };
  const run = () =>
    withConfig({ kernelBackend: backend }, () => {
      const x = place(randArray(1, len)), res = place(randArray(2, len)), dy = place(randArray(3, len));
      const y = place(new Float32Array(len)), mean = new Float32Array(c), invstd = new Float32Array(c), vu = new Float32Array(c);
      batchNormTrainForward(y, mean, invstd, vu, x, null, null, p, { residual: res, relu: true });
      const yNoted = takeFinite(y), yAgain = takeFinite(y);
      const dx = place(new Float32Array(len));
      batchNormBackward(dx, null, null, dy, x, mean, invstd, null, { n, c, hw }, { overwriteDx: true });
      return { yNoted, yAgain, dxNoted: takeFinite(dx) };
    });
  const simd = backend === 'simd';

  it(`finite values: ${simd ? 'noted once' : 'not noted (only the SIMD kernels check)'}`, () => {
    expect(run()).toEqual({ yNoted: simd, yAgain: false, dxNoted: simd });
  });
  for (const bad of [Infinity, -Infinity, NaN]) {
    it(`one ${bad} stored: not noted`, () => {
      const r = withConfig({ kernelBackend: backend }, () => {
        const x = place(randArray(1, len)), res = place(randArray(2, len));
        res[17] = bad; // one stored value non-finite (17: in a plane's tail, for hw = 11)
        const y = place(new Float32Array(len)), mean = new Float32Array(c), invstd = new Float32Array(c), vu = new Float32Array(c);
        batchNormTrainForward(y, mean, invstd, vu, x, null, null, p, { residual: res, relu: bad !== -Infinity }); // (relu(−Inf) is 0)
        const dy = place(randArray(3, len));
        dy[17] = bad;
        const dx = place(new Float32Array(len));
        batchNormBackward(dx, null, null, dy, x, mean, invstd, null, { n, c, hw }, { overwriteDx: true });
        return { y: takeFinite(y), dx: takeFinite(dx), stored: y[17]! - y[17]! };
      });
      expect(Number.isNaN(r.stored)).toBe(true); // the value really went out non-finite
      expect(r).toMatchObject({ y: false, dx: false });
    });
  }

  it('a BN output holding +Inf keeps the direct convolution\'s pattern under Winograd', () => {
    withConfig({ kernelBackend: backend }, () => {
      const x = new Tensor(randArray(4, 2 * 4 * 12 * 12), [2, 4, 12, 12]);
      const resData = randArray(5, x.size);
      resData[1 * 144 + 5 * 12 + 6] = Infinity; // image 0, channel 1, row 5, column 6
      const res = new Tensor(resData, x.shape);
      const w = new Tensor(randArray(6, 3 * 4 * 9), [3, 4, 3, 3]);
      const conv = (policy: 'always' | 'never') => withConfig({ winograd: policy }, () => {
        const y = batchNormRelu2d(x, null, null, null, null, { training: true, residual: res });
        return conv2d(y, w, null, { padding: 1 }).data;
      });
      const direct = conv('never'), wino = conv('always');
      const bad = (a: Float32Array) => Array.from(a, (v, i) => (Number.isFinite(v) ? -1 : i)).filter((i) => i >= 0);
      expect(bad(direct).length).toBe(3 * 9); // the 3×3 neighbourhood, in each of 3 output channels
      expect(bad(wino)).toEqual(bad(direct));
    });
  });
});

// The SIMD forward GEMM units that write in place (conv2d/inplace.ts, wasm/pointwise.ts) check what they store: a
// conv whose every unit ran there notes its output (conv2d/forward.ts), so that a Winograd conv reading it skips its
// scan; a NaN or ±Inf stored anywhere (a whole tile or a last partial one) leaves no note. Thread counts do not
// matter (one shared flag); here one thread.
describe.runIf(hasSimd128)('finiteness notes of the in-place forward GEMM (SIMD backend)', () => {
  const conv = (c: number, hw: number, o: number, k = 1, stride = 1, pad = 0) => {
    const oh = Math.floor((hw + 2 * pad - k) / stride) + 1;
    return { n: 1, c, h: hw, w: hw, o, kh: k, kw: k, strideH: stride, strideW: stride, padH: pad, padW: pad, dilH: 1, dilW: 1, groups: 1, oh, ow: oh };
  };
  const ep = (o: number, relu: boolean) => ({ scale: new Float64Array(o).fill(1.5), shift: new Float64Array(o).fill(-0.25), relu });
  // 1×1 @7 (49 positions: six whole 8-column tiles and a partial one) with a residual; 1×1/2; a 3×3/2 on im2col's
  // panels (more than the direct kernel's 64 channels).
  const shapes = [
    { name: '1×1 40→12 @7 + residual', p: conv(40, 7, 12), res: true },
    { name: '1×1/2 16→24 @9', p: conv(16, 9, 24, 1, 2), res: false },
    { name: '3×3/2 72→16 @10 (panels)', p: conv(72, 10, 16, 3, 2, 1), res: false },
  ];
  for (const { name, p, res } of shapes) {
    const len = p.o * p.oh * p.ow;
    const run = (x: Float32Array, r: Float32Array | null, relu: boolean) =>
      withConfig({ kernelBackend: 'simd' }, () => {
        const y = new Float32Array(len);
        conv2dForwardFused(y, x, randArray(12, p.o * p.c * p.kh * p.kw), r, p, ep(p.o, relu));
        return { y, noted: takeFinite(y), again: takeFinite(y) };
      });
    it(`${name}: finite outputs noted once`, () => {
      const r = run(randArray(10, p.c * p.h * p.w), res ? randArray(11, len) : null, true);
      expect(r.y.every((v) => Number.isFinite(v))).toBe(true);
      expect([r.noted, r.again]).toEqual([true, false]);
    });
    for (const bad of [Infinity, -Infinity, NaN]) {
      // At the last input position: the last output column (a partial tile where the map has one).
      it(`${name}: ${bad} stored at the last output position: not noted`, () => {
        const x = randArray(10, p.c * p.h * p.w);
        x[p.c * p.h * p.w - 1] = bad;
        const r = run(x, res ? randArray(11, len) : null, false);
        expect(r.y.some((v) => !Number.isFinite(v))).toBe(true);
        expect(r.noted).toBe(false);
      });
    }
    if (res) {
      it(`${name}: a residual's ${-Infinity} stored in a whole tile, no ReLU: not noted`, () => {
        const r0 = randArray(11, len);
        r0[5 * p.oh * p.ow + 3] = -Infinity;
        const r = run(randArray(10, p.c * p.h * p.w), r0, false);
        expect(r.y[5 * p.oh * p.ow + 3]).toBe(-Infinity);
        expect(r.noted).toBe(false);
      });
    }
  }

  it('a 1×1 output holding +Inf keeps the direct convolution\'s pattern under the Winograd conv that reads it', () => {
    withConfig({ kernelBackend: 'simd' }, () => {
      const p1 = conv(8, 12, 16), p3 = conv(16, 12, 8, 3, 1, 1);
      const x = randArray(20, 8 * 144);
      x[3 * 144 + 5 * 12 + 6] = Infinity; // channel 3, row 5, column 6: every output channel's (5, 6) is ±Inf or NaN
      const w1 = randArray(21, 16 * 8), w3 = randArray(22, 8 * 16 * 9);
      const out = (policy: 'always' | 'never') => withConfig({ winograd: policy }, () => {
        const y1 = new Float32Array(16 * 144), y3 = new Float32Array(8 * 144);
        conv2dForwardFused(y1, x, w1, null, p1, ep(16, false));
        conv2dForwardFused(y3, y1, w3, null, p3, ep(8, false));
        return y3;
      });
      const bad = (a: Float32Array) => Array.from(a, (v, i) => (Number.isFinite(v) ? -1 : i)).filter((i) => i >= 0);
      const direct = out('never'), wino = out('always');
      expect(bad(direct).length).toBe(8 * 9); // the 3×3 neighbourhood, in each of 8 output channels
      expect(bad(wino)).toEqual(bad(direct));
    });
  });
});

describe('allFinite (the Winograd plans\' scan)', () => {
  // Lengths around the scan's four-lane loop and its tail, and a 64→64 3×3 weight's 36,864.
  const lengths = [0, 1, 3, 4, 5, 7, 8, 9, 36864, 36867];

  it('true for finite values (−0, subnormals and ±max included)', () => {
    for (const n of lengths) {
      const a = randArray(n + 1, n);
      if (n > 3) a.set([-0, 1e-45, 3.4028234663852886e38, -3.4028234663852886e38], n - 4);
      expect(allFinite(a), `length ${n}`).toBe(true);
    }
  });

  it('false for one NaN, +Inf or −Inf at the first, a middle, and each of the last five positions', () => {
    for (const n of lengths.filter((l) => l > 0)) {
      const at = new Set([0, n >> 1, n - 1, n - 2, n - 3, n - 4, n - 5].filter((i) => i >= 0));
      for (const i of at) {
        for (const bad of [NaN, Infinity, -Infinity]) {
          const a = randArray(7, n);
          a[i] = bad;
          expect(allFinite(a), `length ${n}, ${bad} at ${i}`).toBe(false);
        }
      }
    }
  });

  it('takes a note instead of scanning, once: the next call scans', () => {
    const a = randArray(3, 37);
    a[5] = NaN; // a false note (no kernel would make one): shows the note is taken, not the values
    noteFinite(a, true);
    expect(allFinite(a)).toBe(true);
    expect(allFinite(a)).toBe(false);
  });
});
