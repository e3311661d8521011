import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  conv2dBackwardInput, conv2dBackwardInputNaive, conv2dBackwardWeight, conv2dBackwardWeightNaive, conv2dOutSize, type Conv2dParams,
} from '../../src/kernels/conv2d.js';
import { denseMapTaps } from '../../src/kernels/conv2d/small-map.js';
import { unitMapBackwardInput } from '../../src/kernels/conv2d/unit-map.js';
import { hasSimd128, setKernelBackend, type KernelBackend } from '../../src/kernels/wasm/features.js';
import { assertClose, randArray } from './compare.js';

// The input gradient on ResNet-18's smallest maps (1×1 and 2×2, padding 1) against the naive float64 loop,
// accumulated onto noise: one output position takes one GEMM over the batch (kernels/conv2d/unit-map.ts), 2×2 maps
// the GEMM path;
// and the weight gradient of dense maps with one output position (kernels/conv2d/small-map.ts).

function params(n: number, c: number, h: number, o: number, k: number, s: number, pad: number): Conv2dParams {
  const oh = conv2dOutSize(h, k, s, pad, 1);
  return { n, c, h, w: h, o, kh: k, kw: k, strideH: s, strideW: s, padH: pad, padW: pad, dilH: 1, dilW: 1, groups: 1, oh, ow: oh };
}

function check(p: Conv2dParams, seed: number): void {
  const w = randArray(seed + 1, p.o * p.c * p.kh * p.kw), dy = randArray(seed + 2, p.n * p.o * p.oh * p.ow);
  const dx0 = randArray(seed + 3, p.n * p.c * p.h * p.w), dx = dx0.slice(), dxr = dx0.slice();
  conv2dBackwardInput(dx, dy, w, p);
  conv2dBackwardInputNaive(dxr, dy, w, p);
  assertClose(`bwd input x=[${p.n},${p.c},${p.h},${p.w}] w=[${p.o},${p.c},${p.kh},${p.kw}] s=${p.strideH} p=${p.padH}`, dx, dxr);
}

const unitMaps: [number, number, number, number, number][] = [
  // n, c, o, k, pad
  [8, 512, 512, 3, 1],
  [1, 512, 512, 3, 1],
  [8, 256, 256, 3, 1],
  [3, 67, 131, 3, 1],
  [1, 5, 3, 3, 1],
  [2, 9, 70, 5, 2],
];

const smallMaps: [number, number, number, number, number, number][] = [
  // n, c, h, o, stride, pad (3×3)
  [8, 256, 2, 256, 1, 1],
  [1, 256, 2, 256, 1, 1],
  [8, 256, 2, 512, 2, 1],
  [3, 67, 2, 131, 1, 1],
];

const denseOneOutput: [number, number, number, number, number, number, number][] = [
  // n, c, h, o, k, stride, pad
  [8, 512, 1, 512, 3, 1, 1],
  [8, 256, 2, 512, 3, 2, 1],
  [3, 67, 2, 131, 3, 2, 1],
  [1, 5, 1, 3, 3, 1, 1],
  [2, 9, 3, 70, 5, 2, 1],
  [4, 6, 2, 7, 2, 1, 0],
];

const backends: KernelBackend[] = hasSimd128 ? ['simd', 'js'] : ['js'];
for (const backend of backends) {
  describe(`conv input gradient on 1×1 and 2×2 maps, ${backend} backend, vs naive float64`, () => {
    let old: KernelBackend;
    beforeAll(() => {
      old = setKernelBackend(backend);
    });
    afterAll(() => {
      setKernelBackend(old);
    });

    for (const [n, c, o, k, pad] of unitMaps) {
      const p = params(n, c, 1, o, k, 1, pad);
      it(`1×1 map, ${c}→${o}, ${k}×${k} pad ${pad}, batch ${n} (one GEMM over the batch)`, () => {
        expect(unitMapBackwardInput(p)).toBe(true);
        check(p, n + c + o);
      });
    }
    for (const [n, c, h, o, s, pad] of smallMaps) {
      const p = params(n, c, h, o, 3, s, pad);
      it(`${h}×${h} map, ${c}→${o}, 3×3/${s} pad ${pad}, batch ${n}`, () => {
        expect(unitMapBackwardInput(p)).toBe(p.oh === 1);
        check(p, n + c + h + o);
      });
    }
    for (const [n, c, h, o, k, s, pad] of denseOneOutput) {
      const p = params(n, c, h, o, k, s, pad);
      it(`${h}×${h} map → 1×1, ${c}→${o}, ${k}×${k}/${s} pad ${pad}, batch ${n} (one GEMM over the batch)`, () => {
        expect(unitMapBackwardInput(p)).toBe(true);
        check(p, n + c + h + o);
      });
    }
    it('1×1/2 on 2×2 (an input position that meets no tap) takes another path', () => {
      const p = params(8, 64, 2, 96, 1, 2, 0);
      expect(unitMapBackwardInput(p)).toBe(false);
      check(p, 5);
    });
  });
}

// The weight gradient where the output is one position and every input position meets a tap (a dense map): one
// GEMM over the batch (kernels/conv2d/small-map.ts), accumulated onto noise, against the naive float64 loop.
function checkWeight(p: Conv2dParams, seed: number): void {
  const x = randArray(seed + 1, p.n * p.c * p.h * p.w), dy = randArray(seed + 2, p.n * p.o * p.oh * p.ow);
  const dw0 = randArray(seed + 3, p.o * p.c * p.kh * p.kw), dw = dw0.slice(), dwr = dw0.slice();
  conv2dBackwardWeight(dw, dy, x, p);
  conv2dBackwardWeightNaive(dwr, dy, x, p);
  assertClose(`bwd weight x=[${p.n},${p.c},${p.h},${p.w}] w=[${p.o},${p.c},${p.kh},${p.kw}] s=${p.strideH} p=${p.padH}`, dw, dwr);
}


describe('conv weight gradient with one output position on a dense map, simd backend, vs naive float64', () => {
  let old: KernelBackend;
  beforeAll(() => {
    old = setKernelBackend(hasSimd128 ? 'simd' : 'js');
  });
  afterAll(() => {
    setKernelBackend(old);
  });
  for (const [n, c, h, o, k, s, pad] of denseOneOutput) {
    const p = params(n, c, h, o, k, s, pad);
    it(`${h}×${h} map → 1×1, ${c}→${o}, ${k}×${k}/${s} pad ${pad}, batch ${n}`, () => {
      expect(p.oh * p.ow).toBe(1);
      if (hasSimd128) expect(denseMapTaps(p)).not.toBeNull();
      checkWeight(p, n + c + h + o);
    });
  }
  it('takes no map with an input position that meets no tap, nor the js backend', () => {
    // 1×1/2 on 2×2: only the top-left pixel meets the kernel.
    expect(denseMapTaps(params(8, 256, 2, 512, 1, 2, 0))).toBeNull();
    const prev = setKernelBackend('js');
    try {
      expect(denseMapTaps(params(8, 512, 1, 512, 3, 1, 1))).toBeNull();
    } finally {
      setKernelBackend(prev);
    }
  });
  it('keeps NaN and ±Inf where the naive loop puts them', () => {
    const p = params(3, 20, 2, 24, 3, 2, 1);
    const x = randArray(5, p.n * p.c * p.h * p.w), dy = randArray(6, p.n * p.o);
    x[7] = Infinity;
    x[30] = NaN;
    dy[3] = -Infinity;
    const dw = new Float32Array(p.o * p.c * 9), dwr = new Float32Array(dw.length);
    conv2dBackwardWeight(dw, dy, x, p);
    conv2dBackwardWeightNaive(dwr, dy, x, p);
    assertClose('bwd weight with non-finite inputs', dw, dwr);
  });
});
