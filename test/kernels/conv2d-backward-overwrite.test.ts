import { describe, expect, it } from 'vitest';
import { type Config } from '../../src/config.js';
import { conv2dBackwardInput, conv2dBackwardInputNaive, conv2dOutSize, type Conv2dParams } from '../../src/kernels/conv2d.js';
import { directBackwardInput } from '../../src/kernels/conv2d/direct.js';
import { phaseBackwardInput } from '../../src/kernels/conv2d/phases.js';
import { backwardInputWinograd } from '../../src/kernels/conv2d/plan.js';
import { strided1x1 } from '../../src/kernels/conv2d/strided1x1.js';
import { unitMapBackwardInput } from '../../src/kernels/conv2d/unit-map.js';
import { hasSimd128, type KernelBackend } from '../../src/kernels/wasm/features.js';
import { useKernelBackend } from './backend-hooks.js';
import { assertClose, assertIdentical, randArray } from './compare.js';

// conv2dBackwardInput with `overwrite` against the same call adding onto zeros: every element of a dx full of garbage
// (NaN, or 7s) written, with the same bits (zeros' signs included, also where dy is all or mostly zeros); and without it, still dx += (onto 7s, against the naive loop).

type Path = 'direct' | 'phases' | 'winograd' | 'strided1x1' | 'unit-map' | 'im2col';

function params(n: number, c: number, h: number, o: number, k: number, s: number, pad: number): Conv2dParams {
  const oh = conv2dOutSize(h, k, s, pad, 1);
  return { n, c, h, w: h, o, kh: k, kw: k, strideH: s, strideW: s, padH: pad, padW: pad, dilH: 1, dilW: 1, groups: 1, oh, ow: oh };
}

/** The path conv2dBackwardInput takes for p (its dispatch order). */
function pathOf(p: Conv2dParams, dy: Float32Array, w: Float32Array): Path {
  if (directBackwardInput(p)) return 'direct';
  if (phaseBackwardInput(p, w)) return 'phases';
  if (backwardInputWinograd(p, dy, w) !== null) return 'winograd';
  if (strided1x1(p)) return 'strided1x1';
  if (unitMapBackwardInput(p)) return 'unit-map';
  return 'im2col';
}

const cases: [Path, Conv2dParams, Partial<Config>, KernelBackend[]][] = [
  ['winograd', params(2, 8, 12, 8, 3, 1, 1), { winograd: 'always', directConv: false }, ['js', 'simd']],
  ['winograd', params(3, 5, 9, 6, 3, 1, 0), { winograd: 'always', directConv: false }, ['js', 'simd']],
  ['direct', params(2, 3, 10, 8, 3, 1, 1), { winograd: 'auto', directConv: true }, ['simd']],
  ['phases', params(2, 16, 28, 32, 3, 2, 1), { winograd: 'auto', directConv: true }, ['simd']],
  ['strided1x1', params(2, 16, 9, 32, 1, 2, 0), { winograd: 'never', directConv: false }, ['js', 'simd']],
  ['unit-map', params(4, 8, 2, 8, 3, 1, 1), { winograd: 'never', directConv: false }, ['js', 'simd']],
  ['im2col', params(2, 6, 11, 10, 3, 1, 1), { winograd: 'never', directConv: false }, ['js', 'simd']],
  ['im2col', params(2, 6, 11, 10, 3, 2, 1), { winograd: 'never', directConv: false }, ['js', 'simd']],
  ['im2col', params(2, 12, 7, 20, 1, 1, 0), { winograd: 'never', directConv: false }, ['js', 'simd']],
];

for (const backend of ['js', 'simd'] as const) {
  describe.runIf(backend === 'js' || hasSimd128)(`conv2dBackwardInput overwrite (${backend})`, () => {
    for (const [path, p, config, backends] of cases) {
      if (!backends.includes(backend)) continue;
      describe(`${path}: x=[${p.n},${p.c},${p.h},${p.w}] ${p.o} ${p.kh}×${p.kw}/${p.strideH} pad ${p.padH}`, () => {
        useKernelBackend(backend, config);
        const xs = p.n * p.c * p.h * p.w;
        const w = randArray(1, p.o * p.c * p.kh * p.kw), dy = randArray(2, p.n * p.o * p.oh * p.ow);

        it('takes that path', () => {
          expect(pathOf(p, dy, w)).toBe(path);
        });

        it('overwrites every element of a dx of NaN or 7s with the gradient added onto zeros', () => {
          const ref = new Float32Array(xs);
          conv2dBackwardInput(ref, dy, w, p);
          for (const garbage of [NaN, 7]) {
            const dx = new Float32Array(xs).fill(garbage);
            conv2dBackwardInput(dx, dy, w, p, { overwrite: true });
            assertIdentical(`overwrite onto ${garbage}`, dx, ref);
          }
        });

        it('with dy all zeros or mostly zeros, the same bits (no −0 for +0)', () => {
          const dz = dy.map((v, i) => (i % 3 === 0 ? v : 0)).map((v) => (v < 0 ? 0 : v));
          const z = new Float32Array(dy.length);
          for (const d of [z, dz]) {
            const ref = new Float32Array(xs);
            conv2dBackwardInput(ref, d, w, p);
            const dx = new Float32Array(xs).fill(NaN);
            conv2dBackwardInput(dx, d, w, p, { overwrite: true });
            assertIdentical(`zero dy`, dx, ref);
          }
        });

        it('adds onto dx without overwrite', () => {
          const dx = new Float32Array(xs).fill(7), dxr = dx.slice();
          conv2dBackwardInput(dx, dy, w, p);
          conv2dBackwardInputNaive(dxr, dy, w, p);
          assertClose('accumulate onto 7s', dx, dxr);
        });
      });
    }
  });
}
