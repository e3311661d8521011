/**
 * The worker pool itself: work really goes to workers, non-shared buffers work, and a worker that throws, exits
 * or is terminated mid-call surfaces as an error on the caller (never a hang), after which the next call works.
 * Uses the 'parallel.diagnostic' task (src/parallel/diagnostics.ts), whose units record the thread that ran them.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ResnetTsError } from '../../src/errors.js';
import { getParallelBackend, parallelFor, setParallelBackend, type Task } from '../../src/kernels/parallel.js';
import type { DiagnosticParams } from '../../src/parallel/diagnostics.js';
import '../../src/parallel/diagnostics.js';
import { currentPoolForTest, getNumThreads, setNumThreads, setWorkerScripts } from '../../src/parallel/index.js';
import { buildPoolScripts, removePoolScripts } from './scripts.js';

const shared = (n: number) => new Float32Array(new SharedArrayBuffer(n * 4));

function diag(out: Float32Array, units: number, params: Partial<DiagnosticParams>): Task<DiagnosticParams> {
  return {
    kernel: 'parallel.diagnostic',
    bufs: { out, gate: shared(1) },
    writes: ['out'],
    params: { mode: 'mark', ms: 0, waitForWorker: false, ...params },
    units,
    cost: 1e12,
  };
}

/** Runs a marking call: every unit must be marked, and (waitForWorker) at least one by a worker thread. */
function markAll(out: Float32Array): void {
  const units = out.length;
  out.fill(-1);
  parallelFor(diag(out, units, { mode: 'mark', ms: 2, waitForWorker: true }));
  const missing = Array.from(out).filter((v) => v < 0).length;
  expect(missing, `${missing}/${units} units did not run`).toBe(0);
  expect(Array.from(out).some((v) => v > 0), `no unit ran on a worker: ${Array.from(out)}`).toBe(true);
}

describe('worker pool', () => {
  beforeAll(() => {
    setWorkerScripts(buildPoolScripts());
    setNumThreads(2);
  });
  afterAll(() => {
    setWorkerScripts(null);
    setParallelBackend(null);
    removePoolScripts();
  });

  it('setNumThreads / getNumThreads, and bad values are refused', () => {
    expect(getNumThreads()).toBe(2);
    expect(getParallelBackend()).not.toBeNull();
    expect(() => setNumThreads(0)).toThrow(/positive integer/);
    expect(() => setNumThreads(1.5)).toThrow(/positive integer/);
    expect(getNumThreads()).toBe(2);
  });

  it('units run on the main thread and on a worker, each exactly once', () => {
    markAll(shared(12));
  });

  // After a call a worker waits on the doorbell for the next one (worker.ts), then falls back to its event loop.
  it('back-to-back calls, some over before the worker wakes: later calls still reach a worker, on either path', async () => {
    for (let rep = 0; rep < 50; rep++) {
      const out = shared(2).fill(-1);
      parallelFor(diag(out, 2, {}));
      expect(Array.from(out).every((v) => v >= 0), `call ${rep}: ${Array.from(out)}`).toBe(true);
    }
    markAll(shared(4)); // the doorbell path (the last call was just now)
    await new Promise((r) => setTimeout(r, 60)); // longer than a worker waits on the doorbell
    markAll(shared(4)); // the event loop's path
    markAll(shared(4));
  });

  it('ordinary (non-shared) Float32Arrays are staged into shared memory and copied back', () => {
    markAll(new Float32Array(12));
  });

  it('three threads: work reaches more than one worker over a few calls', () => {
    setNumThreads(3);
    const seen = new Set<number>();
    for (let rep = 0; rep < 20 && seen.size < 2; rep++) {
      const out = shared(24).fill(-1);
      parallelFor(diag(out, 24, { ms: 3, waitForWorker: true }));
      expect(Array.from(out).every((v) => v >= 0)).toBe(true);
      for (const v of out) if (v > 0) seen.add(v);
    }
    expect(seen.size, `worker thread ids seen: ${[...seen]}`).toBe(2);
    setNumThreads(2);
  });

  it('a task that throws in a worker throws on the caller, and the pool keeps working', () => {
    const out = shared(12);
    let err: unknown;
    try {
      parallelFor(diag(out, 12, { mode: 'throw', waitForWorker: true }));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ResnetTsError);
    expect(String((err as Error).message)).toMatch(/failed in a worker thread.*diagnostic failure in unit/s);
    const pool = currentPoolForTest();
    markAll(out);
    expect(currentPoolForTest()).toBe(pool); // same pool: a thrown error does not cost a rebuild
  });

  it('a worker that exits mid-call (process.exit) is an error, not a hang; the next call gets a new pool', () => {
    const out = shared(12);
    const pool = currentPoolForTest();
    const t0 = performance.now();
    expect(() => parallelFor(diag(out, 12, { mode: 'exit', waitForWorker: true }))).toThrow(/worker thread died.*exited with code 7/);
    expect(performance.now() - t0).toBeLessThan(10_000);
    markAll(out);
    expect(currentPoolForTest()).not.toBe(pool);
  });

  it('a worker terminated from outside while it holds a unit is an error, not a hang', () => {
    const out = shared(16);
    markAll(out); // workers up
    const pool = currentPoolForTest()!;
    pool.killWorkerForTest(0, 5, true); // 5 ms after the worker has taken a unit: it holds one (each takes 40 ms)
    expect(() => parallelFor(diag(out, 16, { mode: 'sleep', ms: 40, waitForWorker: true }))).toThrow(/worker thread died/);
    markAll(out);
    expect(currentPoolForTest()).not.toBe(pool);
  });

  it('a worker that dies while idle costs no error: the next call simply gets a new pool', () => {
    const out = shared(12);
    markAll(out);
    const pool = currentPoolForTest()!;
    pool.killWorkerForTest(0, 0);
    const cell = new Int32Array(new SharedArrayBuffer(4));
    for (let i = 0; i < 100 && !pool.broken; i++) Atomics.wait(cell, 0, 0, 20); // the supervisor reports the exit
    expect(pool.broken).toBe(true);
    markAll(out);
    expect(currentPoolForTest()).not.toBe(pool);
  });

  it('workers that cannot start: calls still complete, then the pool falls back to one thread', () => {
    const dir = mkdtempSync(join(tmpdir(), 'resnet-ts-badworker-'));
    const bad = join(dir, 'worker.mjs');
    writeFileSync(bad, "throw new Error('broken worker install');\n");
    setWorkerScripts({ worker: pathToFileURL(bad), supervisor: buildPoolScripts().supervisor });
    const warn = process.emitWarning;
    const warnings: string[] = [];
    process.emitWarning = ((w: string | Error) => void warnings.push(String(w))) as typeof process.emitWarning;
    try {
      const cell = new Int32Array(new SharedArrayBuffer(4));
      // a worker that throws at load dies within milliseconds on an idle machine; allow a loaded one 20 s
      const deadline = performance.now() + 20_000;
      while (getNumThreads() > 1 && performance.now() < deadline) {
        const out = shared(8).fill(-1);
        parallelFor(diag(out, 8, { ms: 1 }));
        expect(Array.from(out)).toEqual([0, 0, 0, 0, 0, 0, 0, 0]); // all on this thread, all done
        Atomics.wait(cell, 0, 0, 150); // let the worker die
      }
      expect(getNumThreads()).toBe(1);
      expect(warnings.join()).toMatch(/fail to start/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      process.emitWarning = warn;
      setWorkerScripts(buildPoolScripts());
      setNumThreads(2);
    }
  });

  it('a supervisor that exits mid-call (workers with it) is an error within 2 s (default settings), not a hang', () => {
    setWorkerScripts(buildPoolScripts());
    const out = shared(16);
    markAll(out);
    const pool = currentPoolForTest()!;
    pool.exitSupervisorForTest(30);
    const t0 = performance.now();
    expect(() => parallelFor(diag(out, 16, { mode: 'sleep', ms: 60, waitForWorker: true }))).toThrow(/supervisor thread exited/);
    expect(performance.now() - t0).toBeLessThan(2_000);
    markAll(out);
    expect(currentPoolForTest()).not.toBe(pool);
  });

  it('a supervisor that stops running silently (no exit event) is an error within 2 s once its heartbeat stops', () => {
    setWorkerScripts(buildPoolScripts());
    const out = shared(16);
    markAll(out);
    const pool = currentPoolForTest()!;
    pool.hangSupervisorForTest(30);
    const t0 = performance.now();
    expect(() => parallelFor(diag(out, 16, { mode: 'sleep', ms: 60, waitForWorker: true }))).toThrow(/supervisor thread has not run for 1.2 s/);
    expect(performance.now() - t0).toBeLessThan(2_000);
    markAll(out);
    expect(currentPoolForTest()).not.toBe(pool);
  });

  it('cheap tasks run inline (no pool needed)', () => {
    setWorkerScripts(buildPoolScripts()); // drops the pool
    const out = shared(4).fill(-1);
    parallelFor({ ...diag(out, 4, {}), cost: 10 });
    expect(Array.from(out)).toEqual([0, 0, 0, 0]);
    expect(currentPoolForTest()).toBeNull();
  });

  it('one thread: everything inline', () => {
    setNumThreads(1);
    const out = shared(8).fill(-1);
    parallelFor(diag(out, 8, {}));
    expect(Array.from(out)).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    setNumThreads(2);
  });
});
