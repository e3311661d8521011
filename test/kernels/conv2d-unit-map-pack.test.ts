import { describe, expect, it } from 'vitest';
import { conv2dBackwardInput, conv2dForward, conv2dOutSize, type Conv2dParams } from '../../src/kernels/conv2d.js';
import { sgemm, type PackB } from '../../src/kernels/gemm.js';
import { densePairTaps } from '../../src/kernels/conv2d/small-map.js';
import { packPairsB, packPairsBT, packPairsSimd } from '../../src/kernels/conv2d/unit-map.js';
import { hasSimd128, setKernelBackend } from '../../src/kernels/wasm/features.js';
import { simdGemm } from '../../src/kernels/wasm/sgemm.js';
import { assertIdentical, randArray } from './compare.js';

// The unit-map convolutions' B panels gathered in wasm (packPairsSimd, wasm/pairs.ts) against the JavaScript packers
// (packPairsB, packPairsBT), value for value, for column and row ranges that start inside a channel and end at any
// row; and whole forwards and input gradients on the simd backend against one sgemm with W'' formed from its
// definition (the same GEMM sums, so the same bits; both directions are checked against the naive float64 loop in
// conv2d-small-map.test.ts).

function params(n: number, c: number, h: number, o: number, k: number, s: number, pad: number): Conv2dParams {
  const oh = conv2dOutSize(h, k, s, pad, 1);
  return { n, c, h, w: h, o, kh: k, kw: k, strideH: s, strideW: s, padH: pad, padW: pad, dilH: 1, dilW: 1, groups: 1, oh, ow: oh };
}

const shapes: [string, Conv2dParams][] = [
  ['2×2 256→256 3×3 pad 1', params(8, 256, 2, 256, 3, 1, 1)],
  ['2×2 13→21 3×3 pad 1 (odd channels)', params(1, 13, 2, 21, 3, 1, 1)],
  ['2×2 → 1×1 67→131 3×3/2 pad 1', params(3, 67, 2, 131, 3, 2, 1)],
  ['2×2 10→12 5×5 pad 2', params(3, 10, 2, 12, 5, 1, 2)],
  ['3×3 → 1×1 9→70 3×3 pad 0 (9 positions)', params(2, 9, 3, 70, 3, 1, 0)],
  ['1×1 5→3 3×3 pad 1 (left to JavaScript)', params(1, 5, 1, 3, 3, 1, 1)],
];

/** Panels of columns [j0, j0 + nc) and rows [p0, p0 + kl), from `pack`, into f at 0 (f's first floats overwritten). */
function panels(pack: PackB, f: Float32Array, j0: number, nc: number, p0: number, kl: number): Float32Array {
  f.fill(NaN, 0, Math.ceil(nc / 8) * 8 * kl);
  pack(f, 0, j0, nc, p0, kl, 8);
  return f.slice(0, Math.ceil(nc / 8) * 8 * kl);
}

describe.runIf(hasSimd128)('unit-map B panels gathered in wasm vs the JavaScript packers', () => {
  for (const [name, p] of shapes) {
    it(name, () => {
      const prev = setKernelBackend('simd');
      try {
        const taps = densePairTaps(p)!;
        expect(taps).not.toBe(null);
        const w = randArray(p.o + p.c, p.o * p.c * p.kh * p.kw);
        const ref = new Float32Array(2 ** 20);
        const hw = p.h * p.w, ohw = p.oh * p.ow;
        for (const forward of [true, false]) {
          const cols = forward ? p.o * ohw : p.c * hw, k = forward ? p.c * hw : p.o * ohw;
          const js = forward ? packPairsBT(w, p, taps) : packPairsB(w, p, taps);
          const simd = packPairsSimd(w, p, taps, forward, js, 0, cols);
          const f = simdGemm(0).f;
          // Whole, a column block inside (8 columns on, whole panels and a partial one), rows from inside a channel.
          const ranges: [number, number, number, number][] = [[0, cols, 0, k], [8, Math.min(16, cols - 8), 3, Math.min(k - 3, 37)], [0, Math.min(cols, 64), 1, k - 1], [0, cols, k - 1, 1]];
          for (const [j0, nc, p0, kl] of ranges) {
            if (nc <= 0 || kl <= 0) continue;
            const want = panels(js, ref, j0, nc, p0, kl);
            const got = panels(simd, f, j0, nc, p0, kl);
            assertIdentical(`${name} ${forward ? 'forward' : 'input gradient'} columns ${j0}+${nc} rows ${p0}+${kl}`, got, want);
          }
        }
      } finally {
        setKernelBackend(prev);
      }
    });
  }

  it('forward and input gradient = one sgemm with W\'\' formed, bit for bit', () => {
    const prev = setKernelBackend('simd');
    try {
      for (const [name, p] of shapes) {
        const hw = p.h * p.w, ohw = p.oh * p.ow, k = p.c * hw, cols = p.o * ohw;
        const x = randArray(1, p.n * k), w = randArray(2, p.o * p.c * p.kh * p.kw), dy = randArray(3, p.n * cols);
        const bias = randArray(4, p.o), dx0 = randArray(5, x.length);
        // W'' (O·oHW × C·HW): [o·oHW + q, c·HW + r] = w[o, c, ky, kx], the tap from output position q to input r.
        const wpp = new Float32Array(cols * k);
        for (let o = 0; o < p.o; o++) for (let q = 0; q < ohw; q++) for (let c = 0; c < p.c; c++) for (let r = 0; r < hw; r++) {
          const oy = Math.floor(q / p.ow), ox = q % p.ow, iy = Math.floor(r / p.w), ix = r % p.w;
          const ky = iy - oy * p.strideH + p.padH, kx = ix - ox * p.strideW + p.padW;
          wpp[(o * ohw + q) * k + c * hw + r] = w[((o * p.c + c) * p.kh + ky) * p.kw + kx]!;
        }
        const y = new Float32Array(p.n * cols), yRef = new Float32Array(p.n * cols);
        for (let i = 0; i < p.n * cols; i++) yRef[i] = bias[Math.floor(i / ohw) % p.o]!;
        conv2dForward(y, x, w, bias, p);
        sgemm(yRef, x, wpp, p.n, cols, k, { transB: true, accumulate: true });
        assertIdentical(`${name} forward`, y, yRef);
        const dx = dx0.slice(), dxRef = dx0.slice();
        conv2dBackwardInput(dx, dy, w, p);
        sgemm(dxRef, dy, wpp, p.n, k, cols, { accumulate: true });
        assertIdentical(`${name} input gradient`, dx, dxRef);
      }
    } finally {
      setKernelBackend(prev);
    }
  });
});
