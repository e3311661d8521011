// A kernel worker of the browser pool (started by browser.ts as a module Worker). It imports the kernel task registry,
// then runs units of each call it is told about: see protocol.ts.

import { taskFunction, type TaskFn } from '../kernels/parallel.js';
import '../kernels/tasks.js';
import { writeError, type InitMessage } from './browser.js';
import { BUSY, DONE, ERR, READY, SEQ, WORKER_UNITS, drainUnits, type RunMessage } from './protocol.js';

interface WorkerScope {
  onmessage: ((e: { data: InitMessage | RunMessage }) => void) | null;
  postMessage(message: unknown): void;
}
const scope = globalThis as unknown as WorkerScope;

let ctrl: Int32Array | null = null;
let errorBuf: Uint8Array | null = null;
let index = -1;

scope.onmessage = (e) => {
  const msg = e.data;
  if (msg.type === 'init') {
    ({ ctrl, index, error: errorBuf } = msg);
    Atomics.store(ctrl, READY + index, 1);
    scope.postMessage({ type: 'ready', index });
    return;
  }
  const c = ctrl;
  if (c === null || msg.type !== 'run' || Atomics.load(c, SEQ) !== msg.seq) return; // a call that is already over
  const fn: TaskFn = taskFunction(msg.kernel) ?? (() => {
    throw new Error(`no task function registered as '${msg.kernel}' in the browser worker (is its module listed in kernels/tasks.ts?)`);
  });
  Atomics.store(c, BUSY + index, 1);
  try {
    drainUnits(c, msg.seq, msg.units, (u) => {
      Atomics.add(c, WORKER_UNITS, 1);
      fn(msg.bufs, msg.params, u, u + 1);
    }, (err) => {
      // The first worker to fail writes its message; it is read after DONE completes (drainUnits counts the unit
      // after this returns).
      if (Atomics.compareExchange(c, ERR, 0, 1) === 0) writeError(errorBuf!, `worker ${index + 1}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    });
  } finally {
    Atomics.store(c, BUSY + index, 0);
    Atomics.notify(c, DONE);
  }
};
