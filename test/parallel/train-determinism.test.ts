/**
 * Bitwise determinism across thread counts for the training step's other kernels: batch norm (train forward and
 * backward, plain and fused with ReLU), ReLU and its backward, add, max-pool backward and the SGD update; then whole
 * training steps of a small CIFAR ResNet, plain and in withTrainingStep (every parameter after three SGD steps, and
 * the running statistics; and the SIMD Winograd convolution's forward, input and weight gradients in place over the
 * resident memory, against plain arrays at 1 thread. The inline threshold is 0 so that even small problems are split; the 1-thread results
 * are the reference. (That the kernels are right at all is tested against PyTorch fixtures in test/ops and
 * test/kernels.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { batchNormBackward, batchNormTrainForward } from '../../src/kernels/batchnorm.js';
import { addForward, reluBackward, reluForward } from '../../src/kernels/elementwise.js';
import { isResident, residentBuffer, sgdUpdate } from '../../src/kernels/optim.js';
import { parallelFor, setMinParallelCost, setParallelBackend } from '../../src/kernels/parallel.js';
import { maxPool2dBackward, maxPool2dForward, poolOutSize } from '../../src/kernels/pool.js';
import { manualSeed, models, nn, optim, randn, withConfig, withTrainingStep } from '../../src/index.js';
import { hasSimd128, kernelBackend, setKernelBackend } from '../../src/kernels/wasm/features.js';
import { winogradConv, winogradInPlaceCalls, type WinogradParams } from '../../src/kernels/winograd.js';
import { conv2dBackwardWeight } from '../../src/kernels/conv2d.js';
import { weightGradInPlaceCalls } from '../../src/kernels/conv2d/backward-winograd.js';
import '../../src/parallel/diagnostics.js';
import { currentPoolForTest, setNumThreads, setWorkerScripts } from '../../src/parallel/index.js';
import { assertIdentical, randArray, winogradShapeParams } from '../kernels/compare.js';
import { buildPoolScripts, removePoolScripts } from './scripts.js';

/**
 * Where the kernels' arrays live: ordinary memory (the pool stages them), SharedArrayBuffers, or the resident shared
 * wasm memory of a training step (the SIMD batch norm then runs on them in place).
 */
type Memory = 'ordinary' | 'shared' | 'resident';
let memory: Memory = 'ordinary';
const buf = (src: Float32Array): Float32Array => {
  if (memory === 'ordinary') return src.slice();
  const a = (memory === 'resident' ? residentBuffer(src.length) : null) ?? new Float32Array(new SharedArrayBuffer(src.length * 4));
  a.set(src);
  return a;
};

function kernels(): Record<string, Float32Array[]> {
  const res: Record<string, Float32Array[]> = {};
  // (N, C, HW): channels grouped into units, and channels bigger than a unit; odd HW (the 2-way tails).
  for (const [n, c, hw, seed] of [[4, 37, 25, 1], [3, 3, 12001, 2], [16, 12, 1024, 3], [32, 24, 63, 4]] as const) {
    const size = n * c * hw;
    const x = buf(randArray(seed, size, -2, 3)), dy = buf(randArray(seed + 10, size));
    const w = buf(randArray(seed + 20, c, 0.5, 1.5)), b = buf(randArray(seed + 30, c));
    for (const fuse of ['', 'relu', 'relu (mask recomputed from x)', 'residual + relu']) {
      const relu = fuse !== '';
      const residual = fuse === 'residual + relu' ? buf(randArray(seed + 70, size)) : null;
      const affine = fuse.startsWith('relu (') ? new Float64Array(2 * c) : null;
      const y = buf(new Float32Array(size)), mean = buf(new Float32Array(c)), invstd = buf(new Float32Array(c)), vu = buf(new Float32Array(c));
      batchNormTrainForward(y, mean, invstd, vu, x, w, b, { n, c, hw, eps: 1e-5 }, { relu, residual, affine });
      const dx = buf(randArray(seed + 40, size)), dw = buf(randArray(seed + 50, c)), db = buf(randArray(seed + 60, c));
      const dres = residual ? buf(new Float32Array(size)) : null;
      batchNormBackward(dx, dw, db, dy, x, mean, invstd, w, { n, c, hw }, { reluOut: relu ? y : null, affine, dresidual: dres });
      const out = [y, mean, invstd, vu, dx, dw, db, ...(dres ? [dres] : [])];
      // the float64 map as float32 pairs of bits
      res[`batch norm [${n},${c},${hw}] ${fuse}`] = affine ? [...out, new Float32Array(affine.buffer)] : out;
    }
    // the input gradient written over x, and the output over the residual (the kernels may not run in place then)
    const xa = buf(x), ra = buf(randArray(seed + 80, size)), mean = new Float32Array(c), invstd = new Float32Array(c);
    batchNormTrainForward(ra, mean, invstd, new Float32Array(c), xa, w, b, { n, c, hw, eps: 1e-5 }, { relu: true, residual: ra });
    const xBefore = xa.slice();
    batchNormBackward(xa, null, null, buf(dy), xa, mean, invstd, w, { n, c, hw }, { reluOut: ra, overwriteDx: true });
    res[`batch norm [${n},${c},${hw}] outputs over inputs`] = [ra, xBefore, xa];
  }
  const n = 140_001;
  const a = buf(randArray(70, n)), b2 = buf(randArray(71, n)), y = buf(new Float32Array(n)), s = buf(new Float32Array(n)), g = buf(new Float32Array(n));
  reluForward(y, a);
  addForward(s, a, b2);
  reluBackward(g, b2, y);
  // In place (the output is an input): autograd adds gradients this way.
  const acc = buf(randArray(72, n)), r = buf(randArray(73, n));
  addForward(acc, acc, b2);
  reluForward(r, r);
  res['relu / add / relu backward'] = [y, s, g, acc, r];
  const oh = poolOutSize(33, 3, 2, 1, 1, false);
  const p = { n: 2, c: 40, h: 33, w: 33, kh: 3, kw: 3, strideH: 2, strideW: 2, padH: 1, padW: 1, dilH: 1, dilW: 1, oh, ow: oh };
  const px = randArray(80, p.n * p.c * 33 * 33), py = new Float32Array(p.n * p.c * oh * oh), am = new Int32Array(py.length);
  maxPool2dForward(py, am, px, p);
  const pdx = buf(randArray(81, px.length));
  maxPool2dBackward(pdx, buf(randArray(82, py.length)), am, p);
  res['max pool backward'] = [pdx];
  for (const [mu, first, nesterov, wd] of [[0, false, false, 1e-3], [0.9, true, false, 1e-4], [0.9, false, false, 5e-4], [0.9, false, true, 0]] as const) {
    const x = buf(randArray(90, n)), grad = buf(randArray(91, n)), mom = mu ? buf(randArray(92, n)) : null;
    sgdUpdate(x, mom, grad, { negLr: Math.fround(-0.1), wd: Math.fround(wd), mu: Math.fround(mu), damp: 1, nesterov, maximize: false, first });
    res[`sgd mu=${mu} first=${first} nesterov=${nesterov}`] = mom ? [x, mom] : [x];
  }
  return res;
}

/**
 * Three SGD steps of a small CIFAR ResNet from a fixed seed: every parameter and buffer afterwards. `arena`: each
 * step inside withTrainingStep (its activations and gradients in reused shared buffers the workers use in place).
 * `setToNone` false: gradients zeroed in place, as the trainer does (on the SIMD backend they move into the
 * optimizer's resident memory, where the update reads them).
 */
function trainSteps(arena = false, setToNone = true): Record<string, Float32Array> {
  manualSeed(5);
  const model = models.resnet20({ widths: [8, 16, 16] }).train();
  const x = randn([8, 3, 32, 32]);
  const target = [0, 1, 2, 3, 4, 5, 6, 7];
  const opt = new optim.SGD(model.parameters(), { lr: 0.05, momentum: 0.9, weightDecay: 1e-4 });
  const step = () => {
    opt.zeroGrad(setToNone);
    nn.functional.crossEntropy(model.forward(x), target).backward();
    opt.step();
  };
  for (let s = 0; s < 3; s++) {
    if (arena) withTrainingStep({ model, optimizer: opt }, step);
    else step();
  }
  const out: Record<string, Float32Array> = {};
  for (const [k, t] of Object.entries(model.stateDict())) out[k] = t.data.slice();
  return out;
}

/**
 * SIMD Winograd calls of a training step's shapes (forward with the epilogue and a residual, input gradient
 * accumulating, weight gradient) on plain or resident arrays (`memory`): their outputs.
 */
function winogradCalls(): Float32Array[] {
  const out: Float32Array[] = [];
  for (const [n, c, hw, seed] of [[16, 16, 28, 1], [8, 32, 14, 2], [16, 64, 7, 3]] as const) {
    const p: WinogradParams = { n, ci: c, hi: hw, wi: hw, co: c, ho: hw, wo: hw, padH: 1, padW: 1, flip: false, accumulate: false };
    const size = n * c * hw * hw;
    const x = buf(randArray(seed, size)), w = buf(randArray(seed + 1, c * c * 9)), res = buf(randArray(seed + 2, size));
    const scale = Float64Array.from(randArray(seed + 3, c)), shift = Float64Array.from(randArray(seed + 4, c));
    const y = buf(new Float32Array(size));
    winogradConv(y, x, w, res, p, { scale, shift, relu: true });
    const dx = buf(randArray(seed + 5, size));
    winogradConv(dx, y, w, null, { ...p, flip: true, accumulate: true });
    const dw = buf(new Float32Array(c * c * 9));
    conv2dBackwardWeight(dw, y, x, winogradShapeParams(n, c, hw, hw, c, 1));
    out.push(y, dx, dw);
  }
  return out;
}

function warmUp(): void {
  const out = new Float32Array(new SharedArrayBuffer(16));
  parallelFor({
    kernel: 'parallel.diagnostic', bufs: { out, gate: new Float32Array(new SharedArrayBuffer(4)) }, writes: ['out'],
    params: { mode: 'mark', ms: 1, waitForWorker: true }, units: 4, cost: 1e12,
  });
}

describe('training-step kernels: bitwise identical results for 1, 2 and 3 threads', () => {
  let oldMin = 0;
  beforeAll(() => {
    setWorkerScripts(buildPoolScripts());
    oldMin = setMinParallelCost(0);
  }, 60_000);
  afterAll(() => {
    setMinParallelCost(oldMin);
    setWorkerScripts(null);
    setParallelBackend(null);
    removePoolScripts();
  });

  it('batch norm, relu, add, max-pool backward, SGD', () => {
    setNumThreads(1);
    const ref = kernels();
    const runs: [number, Memory][] = [[2, 'ordinary'], [2, 'shared'], [3, 'ordinary'], [1, 'resident'], [2, 'resident']];
    for (const [threads, where] of runs) {
      setNumThreads(threads);
      memory = where;
      if (threads > 1) warmUp();
      // On a loaded host a worker may wake too late to take a unit of these small calls: then they run again (up to 5
      // times; every run's bits are checked) until a worker has taken part.
      for (let attempt = 1; ; attempt++) {
        const before = currentPoolForTest()?.workerUnitsForTest() ?? 0;
        const got = kernels();
        const how = `${threads} thread(s), ${where} buffers, run ${attempt}`;
        if (where === 'resident') expect(isResident(got['batch norm [4,37,25] relu']![0]!), `${how}: the SIMD backend's arrays are resident`).toBe(kernelBackend() === 'simd');
        for (const [name, arrs] of Object.entries(ref)) arrs.forEach((r, i) => assertIdentical(`${how}, ${name} [${i}]`, got[name]![i]!, r));
        const onWorker = threads > 1 ? currentPoolForTest()!.workerUnitsForTest() - before : 0;
        if (threads === 1 || onWorker > 5) break;
        if (attempt === 5) expect(onWorker, `${how}: no unit ran on a worker`).toBeGreaterThan(5);
      }
    }
    memory = 'ordinary';
  });

  it.runIf(hasSimd128 && typeof SharedArrayBuffer === 'function')('SIMD Winograd in place over the resident memory: the bits of plain arrays, 1–3 threads', () => {
    const old = setKernelBackend('simd');
    try {
      setNumThreads(1);
      memory = 'ordinary';
      const ref = winogradCalls();
      for (const threads of [1, 2, 3]) {
        setNumThreads(threads);
        memory = 'resident';
        if (threads > 1) warmUp();
        // (as above: rerun until a worker has taken part)
        for (let attempt = 1; ; attempt++) {
          const before = [winogradInPlaceCalls(), weightGradInPlaceCalls(), currentPoolForTest()?.workerUnitsForTest() ?? 0];
          const got = winogradCalls();
          const how = `${threads} thread(s), resident, run ${attempt}`;
          expect(winogradInPlaceCalls() - before[0]!, `${how}: convolutions in place`).toBe(6);
          expect(weightGradInPlaceCalls() - before[1]!, `${how}: weight gradients in place`).toBe(3);
          ref.forEach((r, i) => assertIdentical(`${how}: output ${i}`, got[i]!, r));
          const onWorker = threads > 1 ? currentPoolForTest()!.workerUnitsForTest() - before[2]! : 0;
          if (threads === 1 || onWorker > 5) break;
          if (attempt === 5) expect(onWorker, `${how}: units run on a worker`).toBeGreaterThan(5);
        }
      }
    } finally {
      memory = 'ordinary';
      setKernelBackend(old);
    }
  });

  // On each kernel backend. The SIMD kernels finish this small net's units so fast that the main thread takes most
  // of them before a worker wakes up (measured: 8–10 of the step's units on the worker, against > 20 with js).
  it.each([['js', 20], ['simd', 0]] as const)('%s backend: three SGD steps of a small ResNet-20: same parameters and running statistics', (backend, minWorkerUnits) => {
    const old = setKernelBackend(backend);
    try {
      setNumThreads(1);
      const ref = trainSteps();
      setNumThreads(2);
      warmUp();
      const before = currentPoolForTest()!.workerUnitsForTest();
      const got = trainSteps();
      expect(currentPoolForTest()!.workerUnitsForTest() - before, 'units run on a worker').toBeGreaterThan(minWorkerUnits);
      for (const [k, r] of Object.entries(ref)) assertIdentical(`2 threads: ${k}`, got[k]!, r);
      const inArena = trainSteps(true);
      for (const [k, r] of Object.entries(ref)) assertIdentical(`2 threads, withTrainingStep: ${k}`, inArena[k]!, r);
      const zeroed = trainSteps(true, false);
      for (const [k, r] of Object.entries(ref)) assertIdentical(`2 threads, withTrainingStep, zeroGrad(false): ${k}`, zeroed[k]!, r);
      for (const residentSteps of [false, true]) {
        const steps = withConfig({ residentSteps }, () => trainSteps(true, false));
        for (const [k, r] of Object.entries(ref)) assertIdentical(`2 threads, withTrainingStep, residentSteps ${residentSteps}: ${k}`, steps[k]!, r);
      }
    } finally {
      setKernelBackend(old);
    }
  });
});
