/**
 * The SIMD batch-norm training kernels in place over the resident memory (kernels/batchnorm-simd.ts: work units are
 * blocks of channels, one pass per channel) against the same calls on plain arrays (blocks of images copied through
 * the thread's own wasm memory, two passes): the same bits for every output, on 1 and 2 threads. Forward with and
 * without the residual and the ReLU (and the affine map the backward recomputes the mask from); backward unmasked,
 * masked by the ReLU output and by the recomputed mask, with and without the residual's gradient. Shapes with one
 * and several image units, channel counts below, at and above the number of channel blocks, planes with a tail
 * after the 4-wide vectors, and a NaN and an Inf in the input.
 */
import { describe, expect, it } from 'vitest';
import { batchNormBackward, batchNormTrainForward } from '../../src/kernels/batchnorm.js';
import { batchNormInPlaceCalls } from '../../src/kernels/batchnorm-simd.js';
import { hasSimd128 } from '../../src/kernels/wasm/features.js';
import { residentAlloc, residentMemory } from '../../src/kernels/wasm/optim.js';
import { setNumThreads } from '../../src/parallel/index.js';
import { poolForTests } from '../parallel/scripts.js';
import { assertIdentical, randArray } from './compare.js';

/** A resident copy of a. */
function resident(a: Float32Array): Float32Array {
  const r = residentAlloc(a.length)!;
  r.set(a);
  return r;
}

type Arrays = Record<string, Float32Array | Float64Array>;

/** Forward then backward of one case, on resident tensors or plain arrays; every output. */
function run(n: number, c: number, hw: number, withRes: boolean, relu: boolean, mask: 'out' | 'x' | null, withDres: boolean, seed: number, inPlace: boolean): Arrays {
  const len = n * c * hw;
  const put = (a: Float32Array) => (inPlace ? resident(a) : a.slice());
  const xv = randArray(seed, len, -2, 3);
  if (seed % 2 === 1) xv[len - 1] = Number.NaN;
  if (seed % 3 === 2) xv[(n - 1) * c * hw + hw] = Number.POSITIVE_INFINITY;
  const x = put(xv), y = put(new Float32Array(len)), res = withRes ? put(randArray(seed + 1, len)) : null;
  const w = randArray(seed + 2, c, 0.5, 1.5), b = randArray(seed + 3, c);
  const mean = new Float32Array(c), invstd = new Float32Array(c), vu = new Float32Array(c), aff = new Float64Array(2 * c);
  batchNormTrainForward(y, mean, invstd, vu, x, w, b, { n, c, hw, eps: 1e-5 }, { residual: res, relu, affine: aff });
  const dy = put(randArray(seed + 4, len)), dx = put(randArray(seed + 5, len)), dres = withDres ? put(randArray(seed + 6, len)) : null;
  const dw = randArray(seed + 7, c), db = randArray(seed + 8, c);
  batchNormBackward(dx, dw, db, dy, x, mean, invstd, w, { n, c, hw }, {
    reluOut: mask !== null ? y : null, affine: mask === 'x' ? aff : null, dresidual: dres, overwriteDx: true,
  });
  const out: Arrays = { y: y.slice(), mean, invstd, vu, aff, dx: dx.slice(), dw, db };
  if (dres) out.dres = dres.slice();
  return out;
}

const SHAPES: [number, number, number][] = [[1, 1, 1], [3, 5, 7], [16, 3, 50], [16, 16, 49], [32, 20, 64], [8, 9, 1030]];

function checkAll(threads: number): void {
  let seed = 1;
  for (const [n, c, hw] of SHAPES) {
    for (const [withRes, relu, mask, withDres] of [
      [false, false, null, false], [true, false, null, true], [false, true, 'out', false], [false, true, 'x', true],
      [true, true, 'out', true], [true, true, 'out', false],
    ] as const) {
      seed += 10;
      const what = `${threads} thread(s) ${n}×${c}×${hw}${withRes ? ' residual' : ''}${relu ? ' relu' : ''} mask ${mask}${withDres ? ' dres' : ''}`;
      const ref = run(n, c, hw, withRes, relu, mask, withDres, seed, false);
      const before = batchNormInPlaceCalls();
      const got = run(n, c, hw, withRes, relu, mask, withDres, seed, true);
      expect(batchNormInPlaceCalls() - before, `${what}: ran in place`).toBe(2);
      for (const [k, v] of Object.entries(ref)) assertIdentical(`${what} ${k}`, got[k]!, v);
    }
  }
}

describe.runIf(hasSimd128 && typeof SharedArrayBuffer === 'function')('batch norm in place over the resident memory', () => {
  poolForTests({ kernelBackend: 'simd' });

  it('has a resident memory', () => {
    expect(residentMemory()).not.toBeNull();
  });

  it('1 thread: the same bits as through copies', () => {
    setNumThreads(1);
    checkAll(1);
  });

  it('2 threads: the same bits as through copies', () => {
    setNumThreads(2);
    checkAll(2);
  });

  it('tensors that overlap in the resident memory run through copies (y = x, and y inside x shifted by one plane)', () => {
    setNumThreads(1);
    const [n, c, hw] = [4, 3, 20], len = n * c * hw;
    const xv = randArray(91, len, -2, 3), w = randArray(92, c, 0.5, 1.5), b = randArray(93, c);
    const forward = (x: Float32Array, y: Float32Array) => {
      const mean = new Float32Array(c), invstd = new Float32Array(c), vu = new Float32Array(c);
      batchNormTrainForward(y, mean, invstd, vu, x, w, b, { n, c, hw, eps: 1e-5 }, { residual: null, relu: true, affine: null });
      return { y: y.slice(), mean, invstd, vu };
    };
    const ref = forward(xv.slice(), new Float32Array(len));
    const same = resident(xv);
    const big = residentAlloc(len + hw)!;
    big.set(xv);
    for (const [what, x, y] of [['y = x', same, same], ['y one plane on', big.subarray(0, len), big.subarray(hw, hw + len)]] as const) {
      const before = batchNormInPlaceCalls();
      const got = forward(x, y);
      expect(batchNormInPlaceCalls() - before, `${what}: not in place`).toBe(0);
      if (what === 'y = x') for (const [k, v] of Object.entries(ref)) assertIdentical(`${what} ${k}`, got[k as keyof typeof got], v);
    }
  });
});
