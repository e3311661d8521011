/**
 * One registry of kernel tasks (src/kernels/tasks.ts): every task name registered on the main thread, with the
 * whole library loaded, must resolve in a pool worker too. A kernel module missing from the list would otherwise
 * fail only when threads > 1.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../../src/index.js';
import { parallelFor, registeredTaskNames, setParallelBackend, type Task } from '../../src/kernels/parallel.js';
import type { DiagnosticParams } from '../../src/parallel/diagnostics.js';
import '../../src/parallel/diagnostics.js';
import { setNumThreads, setWorkerScripts } from '../../src/parallel/index.js';
import { buildPoolScripts, removePoolScripts } from './scripts.js';

const shared = (n: number) => new Float32Array(new SharedArrayBuffer(n * 4));

describe('kernel task registry', () => {
  // transpiling the worker scripts takes seconds on a busy machine
  beforeAll(() => {
    setWorkerScripts(buildPoolScripts());
    setNumThreads(2);
  }, 120_000);
  afterAll(() => {
    setWorkerScripts(null);
    setParallelBackend(null);
    removePoolScripts();
  });

  it('the main thread registers the kernels of gemm, conv2d, winograd and pool', () => {
    const names = registeredTaskNames();
    for (const n of ['sgemm', 'conv2d.forward', 'conv2d.backwardInput', 'conv2d.backwardWeight', 'winograd.conv', 'pool.maxValues']) {
      expect(names).toContain(n);
    }
  });

  it('every task name registered on the main thread resolves in a worker', () => {
    const names = registeredTaskNames();
    const inWorker = new Map<string, boolean>();
    // Units are handed out dynamically: repeat until a worker has looked up every name (each unit sleeps 1 ms).
    for (let round = 0; round < 40 && inWorker.size < names.length; round++) {
      const units = names.length * 4;
      const out = shared(units).fill(-2);
      const task: Task<DiagnosticParams> = {
        kernel: 'parallel.diagnostic',
        bufs: { out, gate: shared(1) },
        writes: ['out'],
        params: { mode: 'lookup', names, ms: 1, waitForWorker: true },
        units,
        cost: 1e12,
      };
      parallelFor(task);
      for (let u = 0; u < units; u++) {
        const name = names[u % names.length]!;
        if (out[u]! > 0) inWorker.set(name, true); // a worker's thread id: found there
        else if (out[u] === -1 && !inWorker.has(name)) inWorker.set(name, false); // looked up, missing
      }
    }
    const missing = names.filter((n) => inWorker.get(n) !== true);
    expect(missing, `task names not registered in the worker (or never looked up there): ${missing.join(', ')}`).toEqual([]);
  });
});
