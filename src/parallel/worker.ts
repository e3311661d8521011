// A compute worker of the pool (spawned by supervisor.ts). It imports the kernel modules (kernels/tasks.ts), which
// register their task functions, then runs units of each call it is told about: see protocol.ts.
//
// A call's message arrives through the event loop; after it, the worker waits for the next one on the doorbell (BELL,
// rung by the main thread after it posts: spinning for SPIN_MS, then in Atomics.wait) and takes it off its port
// directly, for up to HOT_MS, then goes back to the event loop. A training step's calls come back to back, and a
// futex wake reaches the worker sooner than a message through the event loop, so it joins a call while units are
// still left to take.

import { receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { taskFunction, type TaskFn } from '../kernels/parallel.js';
import '../kernels/tasks.js';
import './diagnostics.js';
import {
  BELL, BUSY, DONE, ERR, READY, SEQ, TRACE_SLOTS, TraceSlot, WORKER_UNITS, drainUnits, spinWhile, traceClock, type ErrorMessage,
  type RunMessage,
} from './protocol.js';

interface ComputeWorkerData {
  ctrl: Int32Array;
  index: number;
  port: MessagePort;
}

/** How long a worker waits on the doorbell for the next call before it returns to its event loop (ms). */
const HOT_MS = 20;

const { ctrl, index, port } = workerData as ComputeWorkerData;
Atomics.store(ctrl, READY + index, 1);

/**
 * Traces only: when this worker began to look for the message it takes next: the return of its Atomics.wait on the
 * doorbell, or the end of its previous call when it found the message without waiting (NaN: the event loop).
 */
let woke = NaN;

port.on('message', (msg: RunMessage) => {
  woke = NaN;
  run(msg);
  woke = traceClock();
  for (;;) {
    const bell = Atomics.load(ctrl, BELL);
    // (the main thread posts before it rings: a message posted before `bell` was read is on the port now)
    const next = receiveMessageOnPort(port);
    if (next !== undefined) {
      run(next.message as RunMessage);
      woke = traceClock();
    } else if (spinWhile(ctrl, BELL, bell) || Atomics.wait(ctrl, BELL, bell, HOT_MS) !== 'timed-out') woke = traceClock();
    else return;
  }
});

function run(msg: RunMessage): void {
  if (msg.type !== 'run' || Atomics.load(ctrl, SEQ) !== msg.seq) return; // a call that is already over
  const found = taskFunction(msg.kernel);
  const fn: TaskFn = found ?? (() => {
    throw new Error(`no task function registered as '${msg.kernel}' in the worker (is its module listed in kernels/tasks.ts?)`);
  });
  let reported = false;
  const unit = msg.trace === undefined ? (u: number) => {
    Atomics.add(ctrl, WORKER_UNITS, 1);
    fn(msg.bufs, msg.params, u, u + 1);
  } : tracedUnit(msg, fn, msg.trace);
  Atomics.store(ctrl, BUSY + index, 1);
  try {
    drainUnits(ctrl, msg.seq, msg.units, unit, (e) => {
      if (reported) return;
      reported = true;
      const m: ErrorMessage = { type: 'error', seq: msg.seq, worker: index, message: describe(e) };
      port.postMessage(m);
      Atomics.store(ctrl, ERR, 1);
    });
  } finally {
    Atomics.store(ctrl, BUSY + index, 0);
    Atomics.notify(ctrl, DONE);
  }
}

// A unit runner that records what this worker does in the call in `trace` (see TraceSlot).
function tracedUnit(msg: RunMessage, fn: TaskFn, trace: Float64Array): (u: number) => void {
  const at = TRACE_SLOTS * index;
  trace[at + TraceSlot.Woke] = woke;
  trace[at + TraceSlot.Received] = traceClock();
  let units = 0, ms = 0;
  return (u) => {
    const t0 = traceClock();
    if (units === 0) trace[at + TraceSlot.FirstUnit] = t0;
    Atomics.add(ctrl, WORKER_UNITS, 1);
    try {
      fn(msg.bufs, msg.params, u, u + 1);
    } finally {
      const t1 = traceClock();
      ms += t1 - t0;
      trace[at + TraceSlot.LastUnit] = t1;
      trace[at + TraceSlot.Units] = ++units;
      trace[at + TraceSlot.UnitMs] = ms;
    }
  };
}

function describe(e: unknown): string {
  if (e instanceof Error) return e.stack ?? `${e.name}: ${e.message}`;
  return String(e);
}
