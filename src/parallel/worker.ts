// A compute worker of the pool (spawned by supervisor.ts). It imports the kernel modules (kernels/tasks.ts), which
// register their task functions, then runs units of each call it is told about: see protocol.ts.

import { workerData, type MessagePort } from 'node:worker_threads';
import { taskFunction, type TaskFn } from '../kernels/parallel.js';
import '../kernels/tasks.js';
import './diagnostics.js';
import { BUSY, DONE, ERR, READY, SEQ, WORKER_UNITS, drainUnits, type ErrorMessage, type RunMessage } from './protocol.js';

interface ComputeWorkerData {
  ctrl: Int32Array;
  index: number;
  port: MessagePort;
}

const { ctrl, index, port } = workerData as ComputeWorkerData;
Atomics.store(ctrl, READY + index, 1);

port.on('message', (msg: RunMessage) => {
  if (msg.type !== 'run' || Atomics.load(ctrl, SEQ) !== msg.seq) return; // a call that is already over
  const found = taskFunction(msg.kernel);
  const fn: TaskFn = found ?? (() => {
    throw new Error(`no task function registered as '${msg.kernel}' in the worker (is its module listed in kernels/tasks.ts?)`);
  });
  let reported = false;
  Atomics.store(ctrl, BUSY + index, 1);
  try {
    drainUnits(ctrl, msg.seq, msg.units, (u) => {
      Atomics.add(ctrl, WORKER_UNITS, 1);
      fn(msg.bufs, msg.params, u, u + 1);
    }, (e) => {
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
});

function describe(e: unknown): string {
  if (e instanceof Error) return e.stack ?? `${e.name}: ${e.message}`;
  return String(e);
}
