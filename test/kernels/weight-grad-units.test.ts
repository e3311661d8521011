/**
 * The Winograd weight gradient's narrower output-channel blocks (conv2d/backward-winograd.ts: winogradWeightTask
 * narrows them towards 8 units where the image splits leave fewer): the same bits as the wider blocks (the target set
 * to 1: no narrowing) on 1, 2 and 3 threads, with x and dy in the resident memory (a training step's case) and on
 * plain arrays, on CIFAR's and Fashion-MNIST's shapes at smaller batches and on odd ones (a last image split and a last
 * row block shorter than the others).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setConfig, type Config } from '../../src/config.js';
import { conv2dBackwardWeight, type Conv2dParams } from '../../src/kernels/conv2d.js';
import { setWeightGradMinUnits, winogradWeightTask } from '../../src/kernels/conv2d/backward-winograd.js';
import { backwardWeightTask } from '../../src/kernels/conv2d/plan.js';
import { setMinParallelCost, setParallelBackend } from '../../src/kernels/parallel.js';
import { hasSimd128 } from '../../src/kernels/wasm/features.js';
import { residentAlloc } from '../../src/kernels/wasm/optim.js';
import { setNumThreads, setWorkerScripts } from '../../src/parallel/index.js';
import { buildPoolScripts, removePoolScripts } from '../parallel/scripts.js';
import { assertIdentical, randArray } from './compare.js';

/** A 3×3 stride-1 pad-1 conv's parameters. */
function conv(n: number, c: number, h: number, w: number, o: number): Conv2dParams {
  return { n, c, h, w, o, kh: 3, kw: 3, strideH: 1, strideW: 1, padH: 1, padW: 1, dilH: 1, dilW: 1, groups: 1, oh: h, ow: w };
}

/** A resident copy of a. */
function resident(a: Float32Array): Float32Array {
  const r = residentAlloc(a.length)!;
  r.set(a);
  return r;
}

const units = (p: Conv2dParams): number => {
  const t = winogradWeightTask(backwardWeightTask(p, null, true), false)!;
  return t.splits * t.p.groups * t.chBlocks * t.rowBlocks;
};

const shapes = [conv(8, 3, 32, 32, 16), conv(8, 16, 32, 32, 16), conv(8, 32, 16, 16, 32), conv(32, 64, 8, 8, 64), conv(16, 16, 28, 28, 16),
  conv(13, 64, 7, 7, 64), conv(7, 12, 9, 11, 20), conv(7, 5, 6, 6, 28), conv(6, 8, 10, 10, 40)];

/** dw of each shape (dw starts from a non-zero value: the kernels accumulate), x and dy resident or not. */
function grads(inPlace: boolean): Float32Array[] {
  return shapes.map((p, i) => {
    const x = randArray(20 * i + 1, p.n * p.c * p.h * p.w), dy = randArray(20 * i + 2, p.n * p.o * p.oh * p.ow);
    const dw = randArray(20 * i + 3, p.o * p.c * 9);
    conv2dBackwardWeight(dw, inPlace ? resident(dy) : dy, inPlace ? resident(x) : x, p);
    return dw;
  });
}

let old: Partial<Config>;
let oldMin = 0;
describe.runIf(hasSimd128 && typeof SharedArrayBuffer === 'function')('Winograd weight gradient: narrower row blocks', () => {
  beforeAll(() => {
    old = setConfig({ kernelBackend: 'simd' });
    setWorkerScripts(buildPoolScripts());
    oldMin = setMinParallelCost(0);
  });
  afterAll(() => {
    setWeightGradMinUnits(8);
    setMinParallelCost(oldMin);
    setNumThreads(1);
    setWorkerScripts(null);
    setParallelBackend(null);
    removePoolScripts();
    setConfig(old);
  });

  it('narrows the blocks of these shapes', () => {
    const before = shapes.map(units);
    setWeightGradMinUnits(1);
    const wide = shapes.map(units);
    setWeightGradMinUnits(8);
    shapes.forEach((p, i) => expect(before[i], `${p.c}→${p.o} @${p.h}×${p.w} n${p.n}: ${wide[i]} units unnarrowed`).toBeGreaterThan(wide[i]!));
  });

  it('the same bits as the wider blocks, on 1, 2 and 3 threads, resident or not', () => {
    setNumThreads(1);
    setWeightGradMinUnits(1);
    const want = grads(true), wantPlain = grads(false);
    setWeightGradMinUnits(8);
    for (const threads of [1, 2, 3]) {
      setNumThreads(threads);
      const got = grads(true), gotPlain = grads(false);
      shapes.forEach((p, i) => {
        const what = `${threads} thread(s) ${p.c}→${p.o} @${p.h}×${p.w} n${p.n}`;
        assertIdentical(`${what}, resident`, got[i]!, want[i]!);
        assertIdentical(`${what}, plain`, gotPlain[i]!, wantPlain[i]!);
        assertIdentical(`${what}, resident against plain`, got[i]!, wantPlain[i]!);
      });
    }
  });
});
