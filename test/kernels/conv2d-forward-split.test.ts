import { describe, expect, it } from 'vitest';
import { conv2dForward, conv2dForwardFused, conv2dForwardNaive, conv2dOutSize, type Conv2dParams } from '../../src/kernels/conv2d.js';
import { forwardTask } from '../../src/kernels/conv2d/plan.js';
import { hasSimd128 } from '../../src/kernels/wasm/features.js';
import { residentAlloc } from '../../src/kernels/wasm/optim.js';
import { setNumThreads } from '../../src/parallel/index.js';
import { poolForTests } from '../parallel/scripts.js';
import { assertClose, assertIdentical, fusedEpilogueReference, randArray } from './compare.js';

// The im2col forward's units at batch 1 on the SIMD backend (conv2d/plan.ts, forwardTask): up to 8 column blocks of
// ≥ 64 positions before row blocks, each unit run on its own by the pool. Against the naive float64 loops, and the
// same bits on 1 and 2 threads (the pool runs the units one at a time, one thread merges them): 3×3/2 shapes with
// odd channel counts, column blocks that are not multiples of 8, batch 1 and 2, weights in the resident memory or not.

function params(n: number, c: number, h: number, w: number, o: number): Conv2dParams {
  return {
    n, c, h, w, o, kh: 3, kw: 3, strideH: 2, strideW: 2, padH: 1, padW: 1, dilH: 1, dilW: 1, groups: 1,
    oh: conv2dOutSize(h, 3, 2, 1, 1), ow: conv2dOutSize(w, 3, 2, 1, 1),
  };
}

const sharedCopy = (a: Float32Array): Float32Array => {
  const s = new Float32Array(new SharedArrayBuffer(a.length * 4));
  s.set(a);
  return s;
};

const CASES = [
  { p: params(1, 5, 47, 45, 70), seed: 1 }, // 24 × 23 = 552 positions: 8 column blocks of 72, one row block
  { p: params(1, 7, 40, 40, 130), seed: 11 }, // 400 positions: 6 column blocks of 68, 2 row blocks (130 = 2·64 + 2)
  { p: params(1, 3, 21, 19, 9), seed: 21 }, // 110 positions: one column block
  { p: params(2, 5, 33, 35, 9), seed: 31 }, // batch 2
];

/** Every case's plain and fused outputs (plain without and with bias; fused with the residual and ReLU). */
function run(residentWeights: boolean): Float32Array[] {
  const out: Float32Array[] = [];
  for (const { p, seed } of CASES) {
    const ys = p.n * p.o * p.oh * p.ow, name = `x=[${p.n},${p.c},${p.h},${p.w}] o=${p.o}${residentWeights ? ' (w resident)' : ''}`;
    const x = sharedCopy(randArray(seed, p.n * p.c * p.h * p.w)), bias = randArray(seed + 2, p.o);
    const w0 = randArray(seed + 1, p.o * p.c * 9);
    let w = sharedCopy(w0);
    if (residentWeights) {
      const r = residentAlloc(w0.length);
      expect(r).not.toBeNull();
      r!.set(w0);
      w = r!;
    }
    const yr = new Float32Array(ys);
    conv2dForwardNaive(yr, x, w0, bias, p);
    const y = sharedCopy(new Float32Array(ys).fill(NaN));
    conv2dForward(y, x, w, bias, p);
    assertClose(`fwd+bias ${name}`, y, yr);
    out.push(y.slice());
    const res = sharedCopy(randArray(seed + 3, ys)), scale = Float64Array.from(randArray(seed + 4, p.o)), shift = Float64Array.from(randArray(seed + 5, p.o));
    const conv = new Float32Array(ys);
    conv2dForwardNaive(conv, x, w0, null, p);
    const yf = sharedCopy(new Float32Array(ys).fill(NaN));
    conv2dForwardFused(yf, x, w, res, p, { scale, shift, relu: true });
    assertClose(`fused +res relu ${name}`, yf, fusedEpilogueReference(conv, scale, shift, res, p.o, p.oh * p.ow));
    out.push(yf.slice());
  }
  return out;
}

describe.runIf(hasSimd128 && typeof SharedArrayBuffer === 'function')('im2col forward units at batch 1: column blocks first (SIMD)', () => {
  // (The direct kernel off: it would take these 3×3/2 shapes with few channels.)
  poolForTests({ kernelBackend: 'simd', directConv: false });

  it('splits one image into column blocks of ≥ 64 positions before row blocks', () => {
    const q0 = forwardTask(CASES[0]!.p, null, null), q1 = forwardTask(CASES[1]!.p, null, null);
    expect([q0.colBlocks, q0.colBlock, q0.rowBlocks]).toEqual([8, 72, 1]);
    expect([q1.colBlocks, q1.colBlock, q1.rowBlocks]).toEqual([6, 68, 2]);
  });

  it('matches the naive loops, with the same bits on 1 and 2 threads, weights resident or not', () => {
    setNumThreads(1);
    const one = run(false);
    setNumThreads(2);
    const two = run(false), twoResident = run(true);
    for (let i = 0; i < one.length; i++) {
      assertIdentical(`output ${i}, 2 threads vs 1`, two[i]!, one[i]!);
      assertIdentical(`output ${i}, 2 threads (w resident) vs 1`, twoResident[i]!, one[i]!);
    }
  });
});
