// A task for testing the pool itself (not a kernel): it records which thread ran each unit, and can make a worker
// throw, exit, or take its time. Registered on every thread that imports this module (the workers always do).

import { isMainThread, threadId } from 'node:worker_threads';
import { registerTask, taskFunction } from '../kernels/parallel.js';

export interface DiagnosticParams {
  /**
   * mark: out[u] = thread id (0 on the main thread). throw / exit: a worker throws / exits in its first unit.
   * lookup: unit u looks up task names[u % names.length]: out[u] = thread id if it is registered there, else −1.
   */
  mode: 'mark' | 'throw' | 'exit' | 'sleep' | 'lookup';
  /** Task names for mode 'lookup'. */
  names?: string[];
  /** Milliseconds each unit takes (sleeping), besides its mode's effect. */
  ms: number;
  /** The main thread's units first wait (up to 10 s) until some worker has started a unit. */
  waitForWorker: boolean;
}

const sleepCell = new Int32Array(new SharedArrayBuffer(4));

registerTask<DiagnosticParams>('parallel.diagnostic', (bufs, q, u0, u1) => {
  const out = bufs.out as Float32Array;
  const g = bufs.gate as Float32Array;
  const gate = new Int32Array(g.buffer, g.byteOffset, 1);
  for (let u = u0; u < u1; u++) {
    if (!isMainThread) {
      Atomics.store(gate, 0, 1);
      Atomics.notify(gate, 0);
    } else if (q.waitForWorker) {
      Atomics.wait(gate, 0, 0, 10_000);
    }
    if (q.ms > 0) Atomics.wait(sleepCell, 0, 0, q.ms);
    if (!isMainThread && q.mode === 'throw') throw new Error(`diagnostic failure in unit ${u}`);
    if (!isMainThread && q.mode === 'exit') process.exit(7);
    if (q.mode === 'lookup') {
      const names = q.names ?? [];
      out[u] = taskFunction(names[u % names.length]!) ? threadId : -1;
    } else {
      out[u] = threadId;
    }
  }
});
