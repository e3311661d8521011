import { describe, expect, it } from 'vitest';
import { withConfig } from '../../src/config.js';
import { batchNormBackward, batchNormTrainForward } from '../../src/kernels/batchnorm.js';
import { takeFinite } from '../../src/kernels/finite.js';
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
