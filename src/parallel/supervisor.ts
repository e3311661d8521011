// The pool's supervisor thread. It owns the compute workers so that someone whose event loop is free sees their
// 'exit' events: the main thread may be blocked in Atomics.wait for the whole life of a call, and a worker killed
// outright never gets to report anything itself. On an exit it clears ALIVE[i], counts DEAD, tells the main
// thread why over the report port, and notifies DONE (waking the main thread). See protocol.ts.

import { Worker, workerData, type MessagePort } from 'node:worker_threads';
import { ALIVE, BUSY, DEAD, DONE, HEARTBEAT, SUPERVISOR_EXITED, WORKER_UNITS, beatClock, type ExitMessage } from './protocol.js';

interface SupervisorData {
  ctrl: Int32Array;
  workerUrl: string;
  /** One port per compute worker; the other ends stay with the main thread. */
  ports: MessagePort[];
  /** Where exits are reported. */
  report: MessagePort;
  /** Control messages from the main thread (tests): { type: 'kill' | 'exit' | 'hang', worker?, afterMs, whenBusy? }. */
  control: MessagePort;
}

const { ctrl, workerUrl, ports, report, control } = workerData as SupervisorData;
const workers: Worker[] = [];
Atomics.store(ctrl, HEARTBEAT, beatClock()); // before any worker can hold a unit

ports.forEach((port, i) => {
  let lastError: string | null = null;
  const w = new Worker(new URL(workerUrl), { workerData: { ctrl, index: i, port }, transferList: [port] });
  w.on('error', (e) => {
    lastError = e instanceof Error ? (e.stack ?? e.message) : String(e);
  });
  w.on('exit', (code) => {
    Atomics.store(ctrl, ALIVE + i, 0);
    Atomics.add(ctrl, DEAD, 1);
    const m: ExitMessage = { type: 'exit', worker: i, code, error: lastError };
    report.postMessage(m);
    Atomics.notify(ctrl, DONE);
  });
  workers.push(w);
});

setInterval(() => {
  Atomics.store(ctrl, HEARTBEAT, beatClock());
}, 50);

// Its workers die with it: say so at once (a terminate() or an out-of-memory stop skips this; the heartbeat tells).
process.on('exit', () => {
  Atomics.store(ctrl, SUPERVISOR_EXITED, 1);
  Atomics.notify(ctrl, DONE);
});

control.on('message', (m: { type: string; worker: number; afterMs: number; whenBusy?: boolean }) => {
  if (m.type === 'kill' && m.whenBusy) {
    // once a worker has taken a unit after this message, and worker m.worker is inside a call
    const base = Atomics.load(ctrl, WORKER_UNITS);
    const poll = setInterval(() => {
      if (Atomics.load(ctrl, WORKER_UNITS) === base || Atomics.load(ctrl, BUSY + m.worker) === 0) return;
      clearInterval(poll);
      setTimeout(() => void workers[m.worker]?.terminate(), m.afterMs);
    }, 1);
  } else if (m.type === 'kill') setTimeout(() => void workers[m.worker]?.terminate(), m.afterMs);
  if (m.type === 'exit') setTimeout(() => process.exit(0), m.afterMs);
  if (m.type === 'hang') {
    // workers gone and nobody to say so: no exit reports, no heartbeat
    setTimeout(() => {
      for (const w of workers) void w.terminate();
      for (;;);
    }, m.afterMs);
  }
});
