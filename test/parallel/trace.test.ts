/**
 * The measurement hooks (bench/pool-calls.mjs): setParallelTracer sees every parallelFor, pooled or inline, and
 * setPoolTracer every pool call with the main thread's and the worker's share of its units and times in order.
 * Uses the 'parallel.diagnostic' task (src/parallel/diagnostics.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parallelFor, setParallelBackend, setParallelTracer, type Task } from '../../src/kernels/parallel.js';
import type { DiagnosticParams } from '../../src/parallel/diagnostics.js';
import '../../src/parallel/diagnostics.js';
import { setNumThreads, setWorkerScripts } from '../../src/parallel/index.js';
import { setPoolTracer, type PoolCallTrace } from '../../src/parallel/pool.js';
import { TRACE_SLOTS, TraceSlot } from '../../src/parallel/protocol.js';
import { buildPoolScripts, removePoolScripts } from './scripts.js';

const shared = (n: number) => new Float32Array(new SharedArrayBuffer(n * 4));

function diag(units: number, cost: number, waitForWorker: boolean): Task<DiagnosticParams> {
  return {
    kernel: 'parallel.diagnostic',
    bufs: { out: shared(units).fill(-1), gate: shared(1) },
    writes: ['out'],
    params: { mode: 'mark', ms: 1, waitForWorker },
    units,
    cost,
  };
}

describe('pool tracing', () => {
  beforeAll(() => {
    setWorkerScripts(buildPoolScripts());
    setNumThreads(2);
  });
  afterAll(() => {
    setParallelTracer(null);
    setPoolTracer(null);
    setWorkerScripts(null);
    setParallelBackend(null);
    removePoolScripts();
  });

  it('parallelFor calls are reported as pooled or inline; pool calls with both threads\' units and ordered times', () => {
    const seen: { kernel: string; pooled: boolean; ms: number }[] = [];
    const calls: PoolCallTrace[] = [];
    setParallelTracer((task, pooled, t0, t1) => seen.push({ kernel: task.kernel, pooled, ms: t1 - t0 }));
    setPoolTracer((r) => calls.push(r));
    parallelFor(diag(4, 1e12, true)); // pooled, the worker takes part
    parallelFor(diag(4, 1, false)); // below config.minParallelCost: inline
    parallelFor(diag(1, 1e12, false)); // one unit: inline
    setParallelTracer(null);
    setPoolTracer(null);
    parallelFor(diag(4, 1e12, false)); // not traced

    expect(seen.map((s) => s.pooled)).toEqual([true, false, false]);
    expect(seen.every((s) => s.kernel === 'parallel.diagnostic' && s.ms >= 0.9)).toBe(true);
    expect(calls).toHaveLength(1);
    const c = calls[0]!;
    expect(c.kernel).toBe('parallel.diagnostic');
    expect(c.units).toBe(4);
    expect(c.workers).toHaveLength(TRACE_SLOTS);
    const workerUnits = c.workers[TraceSlot.Units]!;
    expect(workerUnits).toBeGreaterThanOrEqual(1);
    expect(c.mainUnits + workerUnits).toBe(4);
    const order = [c.start, c.staged, c.posted, c.rung, c.mainDone, c.done];
    expect(order.every((t, i) => Number.isFinite(t) && (i === 0 || t >= order[i - 1]!)), `${order}`).toBe(true);
    // the worker's first unit started after the call did, and its last ended before the call's end
    const first = c.workers[TraceSlot.FirstUnit]!, last = c.workers[TraceSlot.LastUnit]!;
    expect(first).toBeGreaterThanOrEqual(c.start);
    expect(last).toBeGreaterThanOrEqual(first);
    expect(last).toBeLessThanOrEqual(c.done);
    expect(c.workers[TraceSlot.UnitMs]!).toBeGreaterThanOrEqual(workerUnits * 0.9); // each unit sleeps 1 ms
  });
});
