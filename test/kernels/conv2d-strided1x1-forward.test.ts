import { describe, expect, it } from 'vitest';
import { conv2dForward, conv2dForwardFused, conv2dForwardNaive, conv2dOutSize, type Conv2dParams } from '../../src/kernels/conv2d.js';
import { packStrided1x1 } from '../../src/kernels/conv2d/pack.js';
import { forwardTask } from '../../src/kernels/conv2d/plan.js';
import { hasSimd128 } from '../../src/kernels/wasm/features.js';
import { setNumThreads } from '../../src/parallel/index.js';
import { poolForTests } from '../parallel/scripts.js';
import { assertClose, assertIdentical, fusedEpilogueReference, randArray } from './compare.js';

// The forward of 1×1 convolutions without padding at a stride on the SIMD backend (ResNet's downsampling shortcut):
// B's panels packed straight from the strided x (pack.ts, packStrided1x1), chunk by chunk when a unit runs all the
// output channels (forward.ts), or all of an image's once per thread and held for its row blocks (inplace.ts).
// Against the naive float64 loops, with the same bits on 1 and 2 threads (the pool runs the units one at a time, one
// thread merges them): odd sizes, positions that end in a partial 8-column panel, k over several 64-term blocks,
// uneven strides, groups, batch > 1.

function params(n: number, c: number, h: number, w: number, o: number, sh = 2, sw = sh, groups = 1): Conv2dParams {
  return {
    n, c, h, w, o, kh: 1, kw: 1, strideH: sh, strideW: sw, padH: 0, padW: 0, dilH: 1, dilW: 1, groups,
    oh: conv2dOutSize(h, 1, sh, 0, 1), ow: conv2dOutSize(w, 1, sw, 0, 1),
  };
}

const sharedCopy = (a: Float32Array): Float32Array => {
  const s = new Float32Array(new SharedArrayBuffer(a.length * 4));
  s.set(a);
  return s;
};

const CASES = [
  params(1, 64, 56, 56, 128), // ResNet-18's layer2.0.downsample: 28 × 28 positions, 8 row blocks
  params(1, 13, 15, 17, 11), // 8 × 9 = 72 positions
  params(1, 70, 9, 9, 6, 3, 2), // uneven strides, k = 64 + 6: 3 × 5 positions
  params(1, 130, 14, 13, 9), // k in three blocks, 7 × 7 positions (last panels of 1 and 3 positions)
  params(1, 5, 2, 3, 7), // 1 × 2 positions: one unit
  params(3, 9, 19, 18, 10), // batch 3 (the batched units, each with all rows: panels)
  params(2, 12, 18, 18, 8, 2, 2, 2), // groups, batch 2
];

/** Every case's plain (with and without bias) and fused (with and without the residual) outputs. */
function run(): Float32Array[] {
  const out: Float32Array[] = [];
  CASES.forEach((p, i) => {
    const seed = 10 * i + 1, ys = p.n * p.o * p.oh * p.ow, name = `x=[${p.n},${p.c},${p.h},${p.w}] o=${p.o} s=${p.strideH},${p.strideW} g=${p.groups}`;
    const x = sharedCopy(randArray(seed, p.n * p.c * p.h * p.w)), w = sharedCopy(randArray(seed + 1, p.o * (p.c / p.groups)));
    const bias = randArray(seed + 2, p.o);
    for (const b of [null, bias]) {
      const yr = new Float32Array(ys);
      conv2dForwardNaive(yr, x, w, b, p);
      const y = sharedCopy(new Float32Array(ys).fill(NaN));
      conv2dForward(y, x, w, b, p);
      assertClose(`fwd${b ? '+bias' : ''} ${name}`, y, yr);
      out.push(y.slice());
    }
    const res = sharedCopy(randArray(seed + 3, ys)), scale = Float64Array.from(randArray(seed + 4, p.o)), shift = Float64Array.from(randArray(seed + 5, p.o));
    const conv = new Float32Array(ys);
    conv2dForwardNaive(conv, x, w, null, p);
    for (const r of [res, null]) {
      const yf = sharedCopy(new Float32Array(ys).fill(NaN));
      conv2dForwardFused(yf, x, w, r, p, { scale, shift, relu: true });
      assertClose(`fused${r ? ' +res' : ''} relu ${name}`, yf, fusedEpilogueReference(conv, scale, shift, r ?? new Float32Array(ys), p.o, p.oh * p.ow));
      out.push(yf.slice());
    }
  });
  return out;
}

describe('packStrided1x1: 8-position panels of a strided 1×1 conv straight from x', () => {
  it('holds x at the positions the stride meets, panel by panel, zeros past the last position', () => {
    const p = params(2, 7, 11, 10, 3, 3, 2); // 4 × 5 positions
    const x = randArray(5, p.n * p.c * p.h * p.w), hw = p.h * p.w;
    // Image 1, channels [2, 7), positions [3, 16): two panels, the second of 5 positions.
    const j = 3, nc = 13, p0 = 2, kl = 5, xOff = 1 * p.c * hw, d0 = 4;
    const dst = new Float32Array(d0 + 2 * 8 * kl).fill(NaN);
    packStrided1x1(dst, d0, x, xOff, p, j, nc, p0, kl);
    const want = new Float32Array(d0 + 2 * 8 * kl).fill(NaN);
    for (let jr = 0; jr < 16; jr++) {
      for (let q = 0; q < kl; q++) {
        const pos = j + jr, oy = Math.floor(pos / p.ow), ox = pos % p.ow;
        want[d0 + Math.floor(jr / 8) * 8 * kl + 8 * q + (jr % 8)] = jr < nc ? x[xOff + (p0 + q) * hw + oy * p.strideH * p.w + ox * p.strideW]! : 0;
      }
    }
    assertIdentical('panels', dst, want);
  });
});

describe.runIf(hasSimd128 && typeof SharedArrayBuffer === 'function')('strided 1×1 forward (SIMD): panels from x', () => {
  poolForTests({ kernelBackend: 'simd' });

  it('cuts ResNet-18\'s 1×1/2 64→128 @56 into row blocks (each unit then reads the whole B: held panels)', () => {
    const q = forwardTask(CASES[0]!, null, null);
    expect(q.rowBlocks).toBeGreaterThan(1);
    expect(q.colBlocks).toBe(1);
  });

  it('matches the naive loops, with the same bits on 1 and 2 threads', () => {
    setNumThreads(1);
    const one = run();
    setNumThreads(2);
    const two = run();
    for (let i = 0; i < one.length; i++) assertIdentical(`output ${i}, 2 threads vs 1`, two[i]!, one[i]!);
  });
});
