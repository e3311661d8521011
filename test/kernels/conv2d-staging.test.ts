/**
 * Staging copies from shared memory into a kernel's wasm memory (src/kernels/copy.ts): stageRows places the rows
 * where the byte addresses agree mod 8, and the weight-gradient kernels that stage x and dy that way give the same
 * bits wherever in its buffer a tensor starts (float offsets 0 and 1, odd and even maps), close to the float64
 * reference.
 */
import { describe, expect, it } from 'vitest';
import { conv2dBackwardWeight } from '../../src/kernels/conv2d/backward.js';
import { conv2dBackwardWeightNaive } from '../../src/kernels/conv2d/naive.js';
import { stageRows } from '../../src/kernels/copy.js';
import { conv2dOutSize, type Conv2dParams } from '../../src/kernels/conv2d.js';
import { assertClose, assertIdentical, randArray } from './compare.js';

/** values in a SharedArrayBuffer, starting `offset` floats into it. */
function sharedAt(values: Float32Array, offset: number): Float32Array {
  const a = new Float32Array(new SharedArrayBuffer(4 * (values.length + offset + 2)), 4 * offset, values.length);
  a.set(values);
  return a;
}

describe('stageRows', () => {
  for (const dstOff of [0, 1]) {
    for (const srcOff of [0, 1]) {
      for (const from of [0, 3, 4]) {
        for (const at of [8, 9]) {
          it(`dst view at float ${dstOff}, src view at float ${srcOff}, src[${from}…] → dst[${at}…]`, () => {
            const dst = new Float32Array(new ArrayBuffer(4 * 64), 4 * dstOff, 40).fill(NaN);
            const src = sharedAt(randArray(7, 20), srcOff);
            const i = stageRows(dst, at, src, from, 17);
            expect([at, at + 1]).toContain(i);
            expect((dst.byteOffset + 4 * i - (src.byteOffset + 4 * from)) % 8).toBe(0);
            expect(Array.from(dst.subarray(i, i + 17 - from))).toEqual(Array.from(src.subarray(from, 17)));
            // nothing else written
            for (let j = 0; j < dst.length; j++) if (j < i || j >= i + 17 - from) expect(dst[j]).toBeNaN();
          });
        }
      }
    }
  }
});

describe('weight gradient with x and dy at any float offset of shared memory: same bits, close to float64', () => {
  const cases: [string, number, number, number, number, number, number][] = [
    // name, n, c, h, o, stride, padding
    ['1→8 3×3 @11 (SIMD kernel, rows per output row)', 6, 1, 11, 8, 1, 1],
    ['4→8 3×3 /2 @12 (SIMD kernel, flattened maps)', 6, 4, 12, 8, 2, 1],
    ['4→8 3×3 /2 @11 (odd maps)', 6, 4, 11, 8, 2, 1],
    ['4→8 3×3 @10 (Winograd)', 8, 4, 10, 8, 1, 1],
    ['3→4 3×3 @9 (Winograd, odd maps)', 8, 3, 9, 4, 1, 1],
  ];
  for (const [name, n, c, h, o, s, pad] of cases) {
    it(name, () => {
      const oh = conv2dOutSize(h, 3, s, pad, 1);
      const p: Conv2dParams = { n, c, h, w: h, o, kh: 3, kw: 3, strideH: s, strideW: s, padH: pad, padW: pad, dilH: 1, dilW: 1, groups: 1, oh, ow: oh };
      const x = randArray(11, n * c * h * h), dy = randArray(12, n * o * p.oh * p.ow);
      const ref = new Float32Array(o * c * 9);
      conv2dBackwardWeightNaive(ref, dy, x, p);
      let first: Float32Array | null = null;
      for (const xo of [0, 1]) {
        for (const dyo of [0, 1]) {
          const dw = new Float32Array(o * c * 9);
          conv2dBackwardWeight(dw, sharedAt(dy, dyo), sharedAt(x, xo), p);
          assertClose(`${name}, x at +${xo}, dy at +${dyo}`, dw, ref);
          if (first === null) first = dw;
          else assertIdentical(`${name}, x at +${xo}, dy at +${dyo} vs both at +0`, dw, first);
        }
      }
    });
  }
});
