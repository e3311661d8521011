import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { conv2dBackwardInput, conv2dBackwardInputNaive, conv2dOutSize, type Conv2dParams } from '../../src/kernels/conv2d.js';
import { phaseBackwardInput } from '../../src/kernels/conv2d/phases.js';
import { strided1x1 } from '../../src/kernels/conv2d/strided1x1.js';
import { hasSimd128, type KernelBackend } from '../../src/kernels/wasm/features.js';
import { useKernelBackend } from './backend-hooks.js';
import { assertClose, randArray } from './compare.js';

// The input gradient of strided convolutions against the naive float64 loop, accumulated onto noise: by stride phases
// (kernels/conv2d/phases.ts; every shape of that describe is one the phase path takes, checked, except where said),
// and 1×1 convs with a stride or padding as one GEMM onto the dx pixels dy meets (kernels/conv2d/strided1x1.ts).

interface Spec {
  n: number; c: number; h: number; w: number; o: number; kh: number; kw: number; sh: number; sw: number; ph: number; pw: number;
}

function params(s: Spec, groups = 1): Conv2dParams {
  return {
    n: s.n, c: s.c, h: s.h, w: s.w, o: s.o, kh: s.kh, kw: s.kw, strideH: s.sh, strideW: s.sw, padH: s.ph, padW: s.pw,
    dilH: 1, dilW: 1, groups, oh: conv2dOutSize(s.h, s.kh, s.sh, s.ph, 1), ow: conv2dOutSize(s.w, s.kw, s.sw, s.pw, 1),
  };
}

const label = (p: Conv2dParams): string =>
  `x=[${p.n},${p.c},${p.h},${p.w}] w=[${p.o},${p.c / p.groups},${p.kh},${p.kw}] s=(${p.strideH},${p.strideW}) ` +
  `p=(${p.padH},${p.padW}) g=${p.groups} → [${p.oh},${p.ow}]`;

/** dx0 + the fast input gradient against dx0 + the naive one; w as given or from the seed. */
function check(p: Conv2dParams, seed: number, w?: Float32Array): void {
  const xs = p.n * p.c * p.h * p.w, ys = p.n * p.o * p.oh * p.ow;
  const wt = w ?? randArray(seed + 1, p.o * (p.c / p.groups) * p.kh * p.kw), dy = randArray(seed + 2, ys);
  const dx0 = randArray(seed + 3, xs), dx = dx0.slice(), dxr = dx0.slice();
  conv2dBackwardInput(dx, dy, wt, p);
  conv2dBackwardInputNaive(dxr, dy, wt, p);
  assertClose(`bwd input ${label(p)}`, dx, dxr);
}

const K3 = { kh: 3, kw: 3 }, K1 = { kh: 1, kw: 1 };
const shapes: [string, Spec][] = [
  ['Fashion-MNIST 16→32/2 @28', { n: 2, c: 16, h: 28, w: 28, o: 32, ...K3, sh: 2, sw: 2, ph: 1, pw: 1 }],
  ['Fashion-MNIST 32→64/2 @14 (phases 7 wide)', { n: 2, c: 32, h: 14, w: 14, o: 64, ...K3, sh: 2, sw: 2, ph: 1, pw: 1 }],
  ['CIFAR 16→32/2 @32', { n: 1, c: 16, h: 32, w: 32, o: 32, ...K3, sh: 2, sw: 2, ph: 1, pw: 1 }],
  ['3×3/2 pad 0, odd sizes (the last row and column meet no output)', { n: 3, c: 5, h: 9, w: 11, o: 7, ...K3, sh: 2, sw: 2, ph: 0, pw: 0 }],
  ['3×3/2 pad 2, odd non-square', { n: 2, c: 4, h: 9, w: 7, o: 6, ...K3, sh: 2, sw: 2, ph: 2, pw: 2 }],
  ['3×3/2 pad 1 on a 2×2 map', { n: 2, c: 4, h: 2, w: 2, o: 6, ...K3, sh: 2, sw: 2, ph: 1, pw: 1 }],
  ['3×3/2 pad 1 on a 1×1 map', { n: 2, c: 3, h: 1, w: 1, o: 5, ...K3, sh: 2, sw: 2, ph: 1, pw: 1 }],
  ['1×1/2 shortcut, even size', { n: 2, c: 16, h: 8, w: 8, o: 32, ...K1, sh: 2, sw: 2, ph: 0, pw: 0 }],
  ['1×1/2 shortcut, odd size, 64 channels', { n: 3, c: 64, h: 15, w: 13, o: 64, ...K1, sh: 2, sw: 2, ph: 0, pw: 0 }],
  ['1×1/2 with padding 1', { n: 1, c: 3, h: 6, w: 7, o: 5, ...K1, sh: 2, sw: 2, ph: 1, pw: 1 }],
  ['stride (2, 1), padding (0, 1)', { n: 2, c: 7, h: 13, w: 11, o: 9, ...K3, sh: 2, sw: 1, ph: 0, pw: 1 }],
  ['stride (3, 4) above the 2×2 kernel (phases without taps)', { n: 1, c: 2, h: 11, w: 10, o: 3, kh: 2, kw: 2, sh: 3, sw: 4, ph: 1, pw: 0 }],
  ['7×7/2 pad 3', { n: 1, c: 3, h: 20, w: 18, o: 8, kh: 7, kw: 7, sh: 2, sw: 2, ph: 3, pw: 3 }],
  ['wide rows: several column tiles per phase', { n: 1, c: 6, h: 5, w: 75, o: 10, ...K3, sh: 2, sw: 2, ph: 1, pw: 1 }],
];

describe.runIf(hasSimd128)('strided conv input gradient by stride phases (SIMD) vs naive float64', () => {
  useKernelBackend('simd', { directConv: true });

  for (const [name, s] of shapes) {
    const p = params(s);
    it(`${name}: ${label(p)}`, () => {
      expect(phaseBackwardInput(p, new Float32Array(1))).toBe(true);
      check(p, 10 + p.c + p.o);
    });
  }

  it('groups, non-finite weights and more than 64 channels take the GEMM path, and agree too', () => {
    const g = params({ n: 2, c: 8, h: 9, w: 9, o: 12, ...K3, sh: 2, sw: 2, ph: 1, pw: 1 }, 4);
    expect(phaseBackwardInput(g, new Float32Array(1))).toBe(false);
    check(g, 41);
    // An Inf weight: the naive loop never multiplies it by dy's padding, so dx is NaN-free where it is.
    const p = params({ n: 2, c: 4, h: 7, w: 7, o: 5, ...K3, sh: 2, sw: 2, ph: 1, pw: 1 });
    const w = randArray(42, p.o * p.c * 9);
    w[3 * 9] = Infinity; // w[0][3][0][0]
    expect(phaseBackwardInput(p, w)).toBe(false);
    check(p, 43, w);
    const wide = params({ n: 1, c: 65, h: 6, w: 6, o: 8, ...K3, sh: 2, sw: 2, ph: 1, pw: 1 });
    expect(phaseBackwardInput(wide, new Float32Array(1))).toBe(false);
    check(wide, 44);
  });

  it('random shapes (fast-check)', () => {
    const spec = fc
      .record({
        n: fc.integer({ min: 1, max: 3 }), c: fc.integer({ min: 1, max: 20 }), o: fc.integer({ min: 1, max: 20 }),
        h: fc.integer({ min: 1, max: 17 }), w: fc.integer({ min: 1, max: 17 }), kh: fc.integer({ min: 1, max: 5 }),
        kw: fc.integer({ min: 1, max: 5 }), sh: fc.integer({ min: 1, max: 4 }), sw: fc.integer({ min: 2, max: 4 }),
        ph: fc.integer({ min: 0, max: 3 }), pw: fc.integer({ min: 0, max: 3 }), seed: fc.integer({ min: 0, max: 1e9 }),
      })
      .filter((r) => r.h + 2 * r.ph >= r.kh && r.w + 2 * r.pw >= r.kw);
    fc.assert(
      fc.property(spec, (r) => {
        const p = params(r);
        expect(phaseBackwardInput(p, new Float32Array(1))).toBe(true);
        check(p, r.seed);
      }),
      { seed: 17, numRuns: 150 },
    );
  });
});

for (const backend of ['simd', 'js'] as KernelBackend[]) {
  describe(`strided / padded 1×1 conv input gradient (GEMM onto the pixels dy meets), ${backend} backend, vs naive float64`, () => {
    // directConv off: the phase path would take the shapes with at most 64 channels.
    useKernelBackend(backend, { directConv: false });

    const cases: [string, Spec, number][] = [
      ['ResNet-18 64→128/2 @8 (images side by side)', { n: 3, c: 64, h: 8, w: 8, o: 128, ...K1, sh: 2, sw: 2, ph: 0, pw: 0 }, 1],
      ['odd sizes, 70 dx channels (several channel blocks)', { n: 2, c: 70, h: 9, w: 7, o: 36, ...K1, sh: 2, sw: 2, ph: 0, pw: 0 }, 1],
      ['stride (3, 2), one image, a large map', { n: 1, c: 5, h: 31, w: 40, o: 6, ...K1, sh: 3, sw: 2, ph: 0, pw: 0 }, 1],
      ['groups 2', { n: 2, c: 12, h: 6, w: 5, o: 8, ...K1, sh: 2, sw: 2, ph: 0, pw: 0 }, 2],
      ['stride larger than the map (1×1 output)', { n: 4, c: 3, h: 2, w: 3, o: 4, ...K1, sh: 4, sw: 4, ph: 0, pw: 0 }, 1],
      ['1×1 pad 1 (the border positions meet no pixel)', { n: 2, c: 5, h: 4, w: 3, o: 6, ...K1, sh: 1, sw: 1, ph: 1, pw: 1 }, 1],
      ['1×1/2 pad 1, groups 3', { n: 2, c: 6, h: 7, w: 6, o: 9, ...K1, sh: 2, sw: 2, ph: 1, pw: 1 }, 3],
    ];
    for (const [name, s, groups] of cases) {
      const p = params(s, groups);
      it(`${name}: ${label(p)}`, () => {
        expect(strided1x1(p)).toBe(true);
        check(p, 20 + p.c + p.o);
      });
    }
  });
}
