/**
 * startThreads(): the pool is built and its workers load their modules before any kernel call (while this thread
 * is idle), the first kernel call uses that pool, and its results are the same bits as with one thread.
 */
import { describe, expect, it } from 'vitest';
import { sgemm } from '../../src/kernels/gemm.js';
import { currentPoolForTest, setNumThreads, startThreads } from '../../src/parallel/index.js';
import { assertIdentical, randArray } from '../kernels/compare.js';
import { poolForTests } from './scripts.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('startThreads', () => {
  poolForTests({});

  it('builds no pool for one thread', () => {
    setNumThreads(1);
    expect(startThreads()).toBe(false);
    expect(currentPoolForTest()).toBeNull();
  });

  it('starts the workers before the first call, which uses them and gives the one-thread bits', async () => {
    const m = 256, n = 192, k = 64;
    const a = randArray(1, m * k), b = randArray(2, k * n);
    setNumThreads(1);
    const ref = new Float32Array(m * n);
    sgemm(ref, a, b, m, n, k);

    setNumThreads(2);
    expect(currentPoolForTest()).toBeNull();
    expect(startThreads()).toBe(true);
    const pool = currentPoolForTest();
    expect(pool).not.toBeNull();
    expect(startThreads()).toBe(true);
    expect(currentPoolForTest()).toBe(pool);
    // No kernel call yet: the worker loads its modules on its own thread.
    for (let t = 0; t < 400 && pool!.readyWorkersForTest() < 1; t++) await sleep(25);
    expect(pool!.readyWorkersForTest()).toBe(1);
    expect(pool!.workerUnitsForTest()).toBe(0);

    // Units go to whichever thread asks first: on a busy machine this thread may take a call's every unit, so call
    // until the worker has run some (every result checked).
    const t0 = performance.now();
    for (let i = 0; i === 0 || (pool!.workerUnitsForTest() === 0 && performance.now() - t0 < 10_000); i++) {
      const got = new Float32Array(m * n);
      sgemm(got, a, b, m, n, k);
      assertIdentical(`sgemm call ${i} after startThreads, 2 threads vs 1`, got, ref);
      if (pool!.workerUnitsForTest() === 0) await sleep(1);
    }
    expect(currentPoolForTest()).toBe(pool);
    expect(pool!.workerUnitsForTest()).toBeGreaterThan(0);
  });
});
