/**
 * Bitwise determinism across thread counts: every threaded kernel gives the same bits with 1, 2 and 3 threads, on
 * random shapes, forward (plain, Winograd and fused) and backward (input and weight), and sgemm. The inline
 * threshold is set to 0 so that even small problems are split. The results with 1 thread are the reference; that
 * the kernels are right at all is tested against the naive kernels in test/kernels.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  conv2dBackwardInput,
  conv2dBackwardWeight,
  conv2dForward,
  conv2dForwardFused,
  conv2dOutSize,
  setWinogradPolicy,
  type Conv2dParams,
  type WinogradPolicy,
} from '../../src/kernels/conv2d.js';
import { sgemm, type GemmOpts } from '../../src/kernels/gemm.js';
import { maxPool2dForward, maxPool2dForwardValues, poolOutSize } from '../../src/kernels/pool.js';
import { parallelFor, setMinParallelCost, setParallelBackend } from '../../src/kernels/parallel.js';
import { kernelBackend, setKernelBackend } from '../../src/kernels/wasm/features.js';
import '../../src/parallel/diagnostics.js';
import { currentPoolForTest, setNumThreads, setWorkerScripts } from '../../src/parallel/index.js';
import { assertIdentical, mulberry32, randArray } from '../kernels/compare.js';
import { buildPoolScripts, removePoolScripts } from './scripts.js';

/** Inputs and outputs as SharedArrayBuffer-backed arrays (used in place) or ordinary ones (staged by the pool). */
let useShared = false;
const shared = (src: Float32Array) => {
  if (!useShared) return src.slice();
  const a = new Float32Array(new SharedArrayBuffer(src.length * 4));
  a.set(src);
  return a;
};

interface ConvCase {
  name: string;
  p: Conv2dParams;
  policy: WinogradPolicy;
  seed: number;
}

function convCases(): ConvCase[] {
  const r = mulberry32(2024);
  const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  const out: ConvCase[] = [];
  for (let i = 0; i < 36; i++) {
    const groups = i % 6 === 5 ? 2 : 1;
    const k = i % 3 === 0 ? 1 : 3;
    const stride = i % 4 === 3 ? 2 : 1;
    const pad = k === 3 ? int(0, 2) : 0;
    const n = int(1, 3), cg = int(1, 24), og = int(1, 40), h = int(k, 20), w = int(k, 20);
    const p: Conv2dParams = {
      n, c: cg * groups, h, w, o: og * groups, kh: k, kw: k, strideH: stride, strideW: stride, padH: pad, padW: pad,
      dilH: 1, dilW: 1, groups, oh: conv2dOutSize(h, k, stride, pad, 1), ow: conv2dOutSize(w, k, stride, pad, 1),
    };
    const policy: WinogradPolicy = (['auto', 'always', 'never'] as const)[i % 3]!;
    out.push({ name: `#${i} x=[${n},${p.c},${h},${w}] w=[${p.o},${cg},${k},${k}] s=${stride} p=${pad} g=${groups} ${policy}`, p, policy, seed: 100 + i });
  }
  // ResNet-like sizes, where blocks really split (several column / channel / tile blocks).
  const big = (n: number, c: number, h: number, o: number, k: number, s: number, pad: number): Conv2dParams => ({
    n, c, h, w: h, o, kh: k, kw: k, strideH: s, strideW: s, padH: pad, padW: pad, dilH: 1, dilW: 1, groups: 1,
    oh: conv2dOutSize(h, k, s, pad, 1), ow: conv2dOutSize(h, k, s, pad, 1),
  });
  out.push({ name: 'R 3x3 32→48 @30', p: big(1, 32, 30, 48, 3, 1, 1), policy: 'always', seed: 7 });
  out.push({ name: 'R 3x3 32→48 @30 im2col', p: big(1, 32, 30, 48, 3, 1, 1), policy: 'never', seed: 8 });
  // Winograd with several output-channel blocks per tile block (a thread's units then share its input transform):
  // one tile block (each unit transforms its own weights) and two (each thread transforms all weights once).
  out.push({ name: 'R 3x3 48→80 @12 Winograd, one tile block', p: big(1, 48, 12, 80, 3, 1, 1), policy: 'always', seed: 12 });
  out.push({ name: 'R 3x3 24→136 @20 Winograd, two tile blocks', p: big(1, 24, 20, 136, 3, 1, 1), policy: 'always', seed: 13 });
  // 4 tiles: the fused forward's float32 GEMMs on panels of 4 tiles, k = 72 in two float32 blocks.
  out.push({ name: 'R 3x3 72→40 @7 Winograd, 4 tiles', p: big(1, 72, 7, 40, 3, 1, 1), policy: 'always', seed: 16 });
  // The same mode (U without G's scales, V with them) ending in a group of 4 channels (transformed in JavaScript).
  out.push({ name: 'R 3x3 40→44 @7 Winograd, 4 tiles, last group of 4', p: big(1, 40, 7, 44, 3, 1, 1), policy: 'always', seed: 27 });
  // ... and units of 32, 16, 8 and 8 output channels (the last 32 halved: tailBounds).
  out.push({ name: 'R 3x3 24→64 @7 Winograd, 4 tiles, halved last units', p: big(1, 24, 7, 64, 3, 1, 1), policy: 'always', seed: 28 });
  // CIFAR's 16→16 @32: the fused forward's transforms and GEMMs in one kernel (winograd-fused.ts), whole images and,
  // at batch 1, blocks of tile rows per unit.
  out.push({ name: 'R 3x3 16→16 @32 Winograd, batch 3', p: big(3, 16, 32, 16, 3, 1, 1), policy: 'always', seed: 17 });
  out.push({ name: 'R 3x3 16→12 @28 Winograd, batch 1', p: big(1, 16, 28, 12, 3, 1, 1), policy: 'always', seed: 18 });
  out.push({ name: 'R 1x1 96→72 @20', p: big(2, 96, 20, 72, 1, 1, 0), policy: 'auto', seed: 9 });
  out.push({ name: 'R 3x3/2 40→80 @24', p: big(1, 40, 24, 80, 3, 2, 1), policy: 'auto', seed: 10 });
  // conv1-like: col packed from padded planes (SIMD backend) per column block, panels across output rows.
  out.push({ name: 'R 7x7/2 3→24 @45', p: big(1, 3, 45, 24, 7, 2, 3), policy: 'auto', seed: 16 });
  // Small maps with k > 512 and several row blocks: a thread packs B once for all the row blocks it runs.
  out.push({ name: 'R 1x1 600→200 @5', p: big(1, 600, 5, 200, 1, 1, 0), policy: 'auto', seed: 14 });
  out.push({ name: 'R 3x3 70→150 @6 im2col', p: big(1, 70, 6, 150, 3, 1, 1), policy: 'never', seed: 15 });
  // Few channels, many images: the weight gradient splits over images as well (partial sums in fixed order).
  out.push({ name: 'R 3x3 3→16 @32 batch 8', p: big(8, 3, 32, 16, 3, 1, 1), policy: 'auto', seed: 11 });
  // The SIMD weight gradient's units: 16→20 @28 batch 6 (channel blocks, image splits, a partial row tile).
  out.push({ name: 'R 3x3 16→20 @28 batch 6', p: big(6, 16, 28, 20, 3, 1, 1), policy: 'auto', seed: 12 });
  // The Winograd weight gradient: 9→7 on 13×11 at batch 12 (splits over images, odd channels, partial vectors).
  out.push({ name: 'R 3x3 9→7 13×11 batch 12 Winograd weight', p: { ...big(12, 9, 13, 7, 3, 1, 1), w: 11, ow: 11 }, policy: 'auto', seed: 16 });
  // The Winograd weight gradient on 4×4 maps: 8→8 at batch 64 (128 vectors of tiles: 2 splits over images).
  out.push({ name: 'R 3x3 8→8 @4 batch 64 Winograd weight', p: big(64, 8, 4, 8, 3, 1, 1), policy: 'auto', seed: 18 });
  // The direct SIMD kernel (Winograd off): units of output rows (batch 2), and whole images at stride 2 (batch 9).
  out.push({ name: 'R 3x3 16→16 @27 batch 2 direct', p: big(2, 16, 27, 16, 3, 1, 1), policy: 'never', seed: 14 });
  out.push({ name: 'R 3x3/2 16→32 @15 batch 9 direct', p: big(9, 16, 15, 32, 3, 2, 1), policy: 'auto', seed: 15 });
  // A 3-channel stem on the direct kernel (its fused forward: one float32 sum per output, wasm/direct-eval.ts).
  out.push({ name: 'R 3x3 3→16 @21 batch 3 direct stem', p: big(3, 3, 21, 16, 3, 1, 1), policy: 'auto', seed: 19 });
  // The stride-2 weight gradient with its images split 4 ways and 2 channel blocks (partials written block by block).
  out.push({ name: 'R 3x3/2 16→32 @14 batch 16 weight splits', p: big(16, 16, 14, 32, 3, 2, 1), policy: 'auto', seed: 19 });
  // 1×1 maps, padding 1: the input gradient and the forward as one GEMM over the batch (kernels/conv2d/unit-map.ts),
  // 3 column blocks.
  out.push({ name: 'R 3x3 150→130 @1 batch 5 unit map', p: big(5, 150, 1, 130, 3, 1, 1), policy: 'auto', seed: 17 });
  // 2×2 maps, padding 1: the same GEMMs with K = channels × 4 positions (B packed from w pair by pair), 5 / 4 column blocks.
  out.push({ name: 'R 3x3 75→60 @2 batch 3 pair map', p: big(3, 75, 2, 60, 3, 1, 1), policy: 'auto', seed: 21 });
  // One output position that every input position meets: the weight gradient as one GEMM over the batch (conv2d/small-map.ts), units
  // of output channels: 3×3/2 from 2×2 (four live taps) and 3×3 on 1×1 (the centre tap).
  out.push({ name: 'R 3x3/2 70→90 @2 batch 5 dense map', p: big(5, 70, 2, 90, 3, 2, 1), policy: 'auto', seed: 19 });
  out.push({ name: 'R 3x3 40→52 @1 batch 3 dense map', p: big(3, 40, 1, 52, 3, 1, 1), policy: 'auto', seed: 20 });
  // Small output maps, many channels: the weight gradient as one GEMM per tap over its live pairs (small-map.ts),
  // units of output channels: 3×3 on 2×2 and 4×4, 3×3/2 from 4×4.
  out.push({ name: 'R 3x3 70→90 @2 batch 5 tap map', p: big(5, 70, 2, 90, 3, 1, 1), policy: 'auto', seed: 22 });
  out.push({ name: 'R 3x3 48→40 @4 batch 2 tap map', p: big(2, 48, 4, 40, 3, 1, 1), policy: 'auto', seed: 24 });
  out.push({ name: 'R 3x3/2 40→72 @4 batch 3 tap map', p: big(3, 40, 4, 72, 3, 2, 1), policy: 'auto', seed: 23 });
  // The strided input gradient by stride phases (one image per unit): 3×3/2 pad 0 on odd maps, and a 1×1/2 shortcut.
  out.push({ name: 'R 3x3/2 p0 24→40 @17 batch 5 phases', p: big(5, 24, 17, 40, 3, 2, 0), policy: 'auto', seed: 16 });
  out.push({ name: 'R 1x1/2 32→64 @13 batch 6 phases', p: big(6, 32, 13, 64, 1, 2, 0), policy: 'auto', seed: 17 });
  // A strided 1×1 conv with more than 64 channels: one GEMM onto the strided pixels, images side by side.
  out.push({ name: 'R 1x1/2 96→160 @9 batch 4', p: big(4, 96, 9, 160, 1, 2, 0), policy: 'auto', seed: 18 });
  // Batch-1 1×1 convs with row blocks of unequal length (5 × 12 and 6 channels: the weights' rows and x's copy at other
  // offsets in a thread's wasm memory from unit to unit), with and without a stride.
  out.push({ name: 'R 1x1 200→66 @8 row blocks', p: big(1, 200, 8, 66, 1, 1, 0), policy: 'auto', seed: 25 });
  out.push({ name: 'R 1x1/2 301→70 @17 row blocks', p: big(1, 301, 17, 70, 1, 2, 0), policy: 'auto', seed: 26 });
  return out;
}

interface Results {
  [name: string]: Float32Array[];
}

/** Every kernel on every case, with the current thread setting. */
function runAll(cases: ConvCase[]): Results {
  const res: Results = {};
  for (const { name, p, policy, seed } of cases) {
    const old = setWinogradPolicy(policy);
    try {
      const xs = p.n * p.c * p.h * p.w, ws = p.o * (p.c / p.groups) * p.kh * p.kw, ys = p.n * p.o * p.oh * p.ow;
      const x = shared(randArray(seed, xs)), w = shared(randArray(seed + 1, ws)), b = shared(randArray(seed + 2, p.o));
      const dy = shared(randArray(seed + 3, ys)), resid = shared(randArray(seed + 4, ys));
      const y = shared(new Float32Array(ys)), yf = shared(new Float32Array(ys));
      conv2dForward(y, x, w, b, p);
      const scale = Float64Array.from(randArray(seed + 5, p.o)), shift = Float64Array.from(randArray(seed + 6, p.o));
      conv2dForwardFused(yf, x, w, resid, p, { scale, shift, relu: true });
      const dx = shared(randArray(seed + 7, xs)), dw = shared(randArray(seed + 8, ws));
      conv2dBackwardInput(dx, dy, w, p);
      conv2dBackwardWeight(dw, dy, x, p);
      res[name] = [y, yf, dx, dw];
    } finally {
      setWinogradPolicy(old);
    }
  }
  const gemms: [number, number, number, GemmOpts][] = [
    [37, 300, 50, {}],
    [300, 9, 64, { transA: true }],
    [64, 130, 700, { transB: true, accumulate: true }],
    [5, 1000, 33, { transA: true, transB: true }],
  ];
  gemms.forEach(([m, n, k, opts], i) => {
    const a = shared(randArray(500 + i, m * k)), b = shared(randArray(600 + i, k * n)), c = shared(randArray(700 + i, m * n));
    sgemm(c, a, b, m, n, k, opts);
    res[`sgemm ${m}x${n}x${k} ${JSON.stringify(opts)}`] = [c];
  });
  // Max pooling (values only, threaded over planes): the ResNet stem's 3×3/2 and a dilated ceil-mode one.
  const pools: [number, number, number, number, number, number, number, boolean][] = [
    [2, 40, 37, 3, 2, 1, 1, false],
    [1, 70, 23, 2, 2, 0, 2, true],
  ];
  pools.forEach(([n, c, h, k, s, pad, dil, ceil], i) => {
    const oh = poolOutSize(h, k, s, pad, dil, ceil);
    const p = { n, c, h, w: h, kh: k, kw: k, strideH: s, strideW: s, padH: pad, padW: pad, dilH: dil, dilW: dil, oh, ow: oh };
    const x = shared(randArray(800 + i, n * c * h * h)), y = shared(new Float32Array(n * c * oh * oh));
    maxPool2dForwardValues(y, x, p);
    res[`max pool ${JSON.stringify(p)}`] = [y];
    // with the argmax (training), threaded over planes likewise; the argmax compared as its float32 bit pattern
    const y2 = shared(new Float32Array(n * c * oh * oh)), am = new Int32Array(n * c * oh * oh);
    maxPool2dForward(y2, am, x, p);
    res[`max pool with argmax ${JSON.stringify(p)}`] = [y2, new Float32Array(am.buffer)];
  });
  return res;
}

function warmUp(): void {
  // Workers start asynchronously: wait until one has run a unit, so the calls below really are shared.
  const out = new Float32Array(new SharedArrayBuffer(16));
  parallelFor({
    kernel: 'parallel.diagnostic', bufs: { out, gate: new Float32Array(new SharedArrayBuffer(4)) }, writes: ['out'],
    params: { mode: 'mark', ms: 1, waitForWorker: true }, units: 4, cost: 1e12,
  });
}

describe('bitwise identical results for 1, 2 and 3 threads', () => {
  let oldMin = 0;
  beforeAll(() => {
    setWorkerScripts(buildPoolScripts());
    oldMin = setMinParallelCost(0);
  });
  afterAll(() => {
    setMinParallelCost(oldMin);
    setWorkerScripts(null);
    setParallelBackend(null);
    removePoolScripts();
  });

  // Default backend (WebAssembly SIMD): 1, 2 (ordinary and shared buffers) and 3 threads. The JS backend, set on
  // the main thread only: 1 and 2 threads, which also shows that workers run the caller's backend (the two
  // backends' results differ in the last bits, so a worker on the other backend would break the identity).
  it.each([['simd', [[2, false], [2, true], [3, false]]], ['js', [[2, false]]]] as const)('%s backend: conv2d forward / fused / backward input / backward weight and sgemm', (backend, runs) => {
    const old = setKernelBackend(backend);
    expect(kernelBackend()).toBe(backend);
    const cases = convCases();
    setNumThreads(1);
    const ref = runAll(cases);
    for (const [threads, sharedBufs] of runs) {
      setNumThreads(threads);
      useShared = sharedBufs;
      warmUp();
      const before = currentPoolForTest()!.workerUnitsForTest();
      const got = runAll(cases);
      const workerUnits = currentPoolForTest()!.workerUnitsForTest() - before;
      const how = `${threads} threads, ${sharedBufs ? 'shared' : 'ordinary (staged)'} buffers`;
      expect(workerUnits, `${how}: no unit of the kernels ran on a worker`).toBeGreaterThan(20);
      for (const [name, arrs] of Object.entries(ref)) {
        const what = ['forward', 'fused', 'backward input', 'backward weight'];
        arrs.forEach((r, i) => assertIdentical(`${how}, ${name}, ${name.startsWith('sgemm') || name.startsWith('max') ? 'out' : what[i]}`, got[name]![i]!, r));
      }
    }
    useShared = false;
    setKernelBackend(old);
  });
});
