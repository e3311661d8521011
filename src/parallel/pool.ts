// The main thread's side of the worker pool: a ParallelBackend (src/kernels/parallel.ts) that runs a task's units
// on this thread and on `threads − 1` compute workers, synchronously (it blocks in Atomics.wait until every unit
// is done). The protocol is in protocol.ts; the workers live under a supervisor thread (supervisor.ts).
//
// A call: bump SEQ, open WORD, post the task to the workers, take units here too, then wait for DONE = units.
// Units go to whichever thread asks first, so a busy core slows nobody down; which thread runs a unit never
// changes its result (the kernels' contract), so results are the same bits for every thread count.
//
// Failures: a task function that throws in a worker is caught there, reported on the worker's port, and the call
// throws a ResnetTsError once all units are done (the pool stays usable). A worker that exits (crash, process.exit,
// terminate) is reported by the supervisor, which wakes us: we close WORD, wait until no live worker holds a unit,
// tear the pool down and throw; the next call builds a new pool.
//
// Buffers that are not SharedArrayBuffer-backed are copied into shared staging buffers for the call (reused from
// call to call), and the written ones copied back. Tensors are ordinary ArrayBuffer-backed arrays (alloc() in
// shape.ts): V8 does not count SharedArrayBuffer memory as external memory when deciding to collect garbage, so
// short-lived SAB-backed activations pile up (measured: +43 MB RSS per ResNet-50 forward, unbounded), while a copy
// costs about 0.5 ns per element against ~0.25 ns per multiply-add of the kernel reading it. Layer parameters are
// the exception: long-lived, so they are allocated shared (allocShared in shape.ts) and read in place, which saves
// the staging copy of every weight on every call and a weight-sized staging buffer (~9 MB in a ResNet-50).

import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { ResnetTsError } from '../errors.js';
import type { ParallelBackend, Task, TaskFn } from '../kernels/parallel.js';
import {
  ALIVE, BELL, BUSY, CTRL_LENGTH, DEAD, DONE, ERR, HEARTBEAT, MAX_UNITS, MAX_WORKERS, READY, SEQ, SUPERVISOR_EXITED, WORD,
  TRACE_SLOTS, WORKER_UNITS, beatAge, beatClock, drainUnits, openCall, spinWhile, traceClock, type ErrorMessage,
  type ExitMessage, type RunMessage,
} from './protocol.js';
import { copyBackStaged, stageTask } from './staging.js';

/** Where the pool's scripts are (compiled .js files). */
export interface PoolScripts {
  worker: URL;
  supervisor: URL;
}

/** Milliseconds per Atomics.wait slice while waiting for a call (a bound on reaction time, not a timeout). */
const WAIT_SLICE_MS = 50;
/**
 * A supervisor silent this long while we wait on workers is taken for dead (it beats every 50 ms; one that exits
 * says so at once through SUPERVISOR_EXITED, so this only bounds the silent deaths: terminated, out of memory, stuck).
 */
const SUPERVISOR_SILENCE_MS = 1200;
/** Without a supervisor, how long to wait for live workers to finish the units they hold, counted from the last unit done. */
const ORPHAN_UNIT_MS = 250;

/**
 * One pool call as the main thread saw it, for measurements (bench/pool-calls.mjs). Times are on traceClock()
 * (ms): entry, buffers staged, messages posted, doorbell rung, this thread's last unit done, every unit done.
 * `workers` holds TRACE_SLOTS numbers per worker (see TraceSlot in protocol.ts), NaN-filled for a worker that did
 * not take the call's message before its end.
 */
export interface PoolCallTrace {
  kernel: string;
  units: number;
  mainUnits: number;
  /** Atomics.wait calls on DONE. */
  waits: number;
  start: number;
  staged: number;
  posted: number;
  rung: number;
  mainDone: number;
  done: number;
  workers: Float64Array;
}

let tracer: ((t: PoolCallTrace) => void) | null = null;

/** Installs (or with null removes) a function told about every pool call once it is done. */
export function setPoolTracer(t: ((t: PoolCallTrace) => void) | null): void {
  tracer = t;
}

export interface PoolOptions {
  /** See SUPERVISOR_SILENCE_MS (tests shorten it). */
  supervisorSilenceMs?: number;
}

export class WorkerPool implements ParallelBackend {
  readonly threads: number;
  private readonly ctrl: Int32Array;
  private readonly supervisor: Worker;
  private readonly ports: MessagePort[] = [];
  private readonly report: MessagePort;
  private readonly control: MessagePort;
  private seq = 0;
  private disposed = false;
  private supervisorGone = false;
  private readonly silenceMs: number;
  private readonly staging: SharedArrayBuffer[] = [];

  /** Starts `threads − 1` workers (asynchronously: calls made before they are up run mostly on this thread). */
  constructor(threads: number, scripts: PoolScripts, opts: PoolOptions = {}) {
    this.silenceMs = opts.supervisorSilenceMs ?? SUPERVISOR_SILENCE_MS;
    const workers = Math.min(threads - 1, MAX_WORKERS);
    if (!(workers >= 1)) throw new ResnetTsError('parallel', `a pool needs at least 2 threads, got ${threads}`);
    this.threads = workers + 1;
    this.ctrl = new Int32Array(new SharedArrayBuffer(CTRL_LENGTH * 4));
    Atomics.store(this.ctrl, HEARTBEAT, beatClock());
    const remote: MessagePort[] = [];
    for (let i = 0; i < workers; i++) {
      const ch = new MessageChannel();
      this.ports.push(ch.port1);
      remote.push(ch.port2);
      Atomics.store(this.ctrl, ALIVE + i, 1);
    }
    const rep = new MessageChannel();
    const ctl = new MessageChannel();
    this.report = rep.port1;
    this.control = ctl.port1;
    this.supervisor = new Worker(scripts.supervisor, {
      // It only relays exit events: a small heap.
      resourceLimits: { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 8 },
      workerData: { ctrl: this.ctrl, workerUrl: scripts.worker.href, ports: remote, report: rep.port2, control: ctl.port2 },
      transferList: [...remote, rep.port2, ctl.port2],
    });
    // Seen only when this thread's event loop runs (between synchronous calls): mark the pool for a rebuild.
    this.supervisor.on('error', () => (this.supervisorGone = true));
    this.supervisor.on('exit', () => (this.supervisorGone = true));
    // Nothing here may keep the process alive.
    this.supervisor.unref();
    for (const p of [...this.ports, this.report, this.control]) p.unref();
  }

  /** True once a worker or the supervisor has exited, or the pool was disposed: the owner should build a new one. */
  get broken(): boolean {
    return this.disposed || this.supervisorGone || Atomics.load(this.ctrl, DEAD) > 0;
  }

  /** True when a worker exited before it had loaded its modules (e.g. a broken install of the worker script). */
  get startupFailed(): boolean {
    for (let i = 0; i < this.ports.length; i++) {
      if (Atomics.load(this.ctrl, ALIVE + i) === 0 && Atomics.load(this.ctrl, READY + i) === 0) return true;
    }
    return false;
  }

  /** Stops the supervisor and with it the workers. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    void this.supervisor.terminate();
    for (const p of [...this.ports, this.report, this.control]) p.close();
  }

  /**
   * For tests: the supervisor terminates worker `worker` after `afterMs` milliseconds, counted from now, or with
   * `whenBusy` from the moment a worker takes a unit while worker `worker` is inside a call.
   */
  killWorkerForTest(worker: number, afterMs: number, whenBusy = false): void {
    this.control.postMessage({ type: 'kill', worker, afterMs, whenBusy });
  }

  /** For tests: the supervisor stops running (no exit event, no heartbeat) after `afterMs` milliseconds. */
  hangSupervisorForTest(afterMs: number): void {
    this.control.postMessage({ type: 'hang', afterMs });
  }

  /** For tests: the supervisor exits (taking its workers with it) after `afterMs` milliseconds. */
  exitSupervisorForTest(afterMs: number): void {
    this.control.postMessage({ type: 'exit', afterMs });
  }

  /** For tests: units run by worker threads (not this one) since the pool started. */
  workerUnitsForTest(): number {
    return Atomics.load(this.ctrl, WORKER_UNITS);
  }

  /** For tests: workers that have loaded their modules and wait for calls. */
  readyWorkersForTest(): number {
    let n = 0;
    for (let i = 0; i < this.ports.length; i++) n += Atomics.load(this.ctrl, READY + i);
    return n;
  }

  run(task: Task, fn: TaskFn): void {
    if (tracer === null) return this.call(task, fn, undefined);
    const t = tracer;
    const trace = new Float64Array(new SharedArrayBuffer(TRACE_SLOTS * this.ports.length * 8)).fill(NaN);
    const rec: PoolCallTrace = {
      kernel: task.kernel, units: task.units, mainUnits: 0, waits: 0, start: traceClock(), staged: NaN, posted: NaN, rung: NaN,
      mainDone: NaN, done: NaN, workers: trace,
    };
    try {
      this.call(task, fn, rec);
    } finally {
      if (Number.isNaN(rec.done)) rec.done = traceClock();
      rec.workers = trace.slice();
      t(rec);
    }
  }

  private call(task: Task, fn: TaskFn, rec: PoolCallTrace | undefined): void {
    if (this.broken) throw new ResnetTsError('parallel', 'the worker pool is not usable (a worker exited); build a new one');
    if (task.units > MAX_UNITS) throw new ResnetTsError('parallel', `task '${task.kernel}' has ${task.units} units, more than ${MAX_UNITS}`);
    const { bufs, copyBack } = stageTask(task, this.staging);
    const ctrl = this.ctrl;
    const seq = (this.seq = (this.seq + 1) | 0);
    const units = task.units;
    openCall(ctrl, seq, units);
    const msg: RunMessage = { type: 'run', seq, kernel: task.kernel, bufs, params: task.params, units };
    if (rec !== undefined) {
      msg.trace = rec.workers;
      rec.staged = traceClock();
    }
    const helpers = Math.min(this.ports.length, units - 1);
    for (let i = 0; i < helpers; i++) this.ports[i]!.postMessage(msg);
    if (rec !== undefined) rec.posted = traceClock();
    if (helpers > 0) {
      Atomics.add(ctrl, BELL, 1);
      Atomics.notify(ctrl, BELL);
    }
    if (rec !== undefined) rec.rung = traceClock();

    let localError: unknown = undefined;
    drainUnits(ctrl, seq, units, (u) => {
      if (rec !== undefined) rec.mainUnits++;
      fn(bufs, task.params, u, u + 1);
    }, (e) => {
      if (localError === undefined) localError = e;
    });
    if (rec !== undefined) rec.mainDone = traceClock();

    // Wait for the workers' units; a worker's exit (reported by the supervisor) also wakes us. A worker that died
    // idle lost nothing (every unit it never took was taken here); one that died holding a unit fails the call.
    for (;;) {
      const done = Atomics.load(ctrl, DONE);
      if (done >= units) break;
      if (Atomics.load(ctrl, DEAD) > 0 && this.deadHolder(helpers)) this.failOnExit(task, helpers, null);
      if (Atomics.load(ctrl, SUPERVISOR_EXITED) !== 0) {
        this.supervisorGone = true;
        this.failOnExit(task, helpers, "the pool's supervisor thread exited, and its workers with it");
      }
      if (spinWhile(ctrl, DONE, done)) continue;
      if (rec !== undefined) rec.waits++;
      Atomics.wait(ctrl, DONE, done, WAIT_SLICE_MS);
      // (the supervisor stores its first beat before it starts the workers, so any wait here sees a real beat)
      if (beatAge(Atomics.load(ctrl, HEARTBEAT)) > this.silenceMs) {
        this.supervisorGone = true;
        this.failOnExit(task, helpers, `the pool's supervisor thread has not run for ${this.silenceMs / 1000} s`);
      }
    }
    if (rec !== undefined) rec.done = traceClock();
    if (localError !== undefined) throw localError;
    if (Atomics.load(ctrl, ERR) !== 0) {
      const reports = this.drainErrors(seq);
      throw new ResnetTsError('parallel', `task '${task.kernel}' failed in a worker thread: ${reports.join('\n') || '(no message)'}`);
    }
    copyBackStaged(copyBack);
  }

  private deadHolder(helpers: number): boolean {
    for (let i = 0; i < helpers; i++) {
      if (Atomics.load(this.ctrl, ALIVE + i) === 0 && Atomics.load(this.ctrl, BUSY + i) === 1) return true;
    }
    return false;
  }

  // A worker exited holding a unit: stop handing out units, wait until no live worker holds one (so nobody writes
  // into the caller's buffers after we return), tear down, throw.
  private failOnExit(task: Task, helpers: number, reason: string | null): never {
    const ctrl = this.ctrl;
    for (;;) {
      const v = Atomics.load(ctrl, WORD);
      const closed = (v & ~MAX_UNITS) | MAX_UNITS;
      if (v === closed || Atomics.compareExchange(ctrl, WORD, v, closed) === v) break;
    }
    let lastDone = Atomics.load(ctrl, DONE), lastAt = performance.now();
    for (;;) {
      let holding = false;
      for (let i = 0; i < helpers; i++) {
        if (Atomics.load(ctrl, ALIVE + i) === 1 && Atomics.load(ctrl, BUSY + i) === 1) holding = true;
      }
      // (Without a supervisor nobody reports exits: give live workers a bounded time to finish their unit.)
      if (!holding) break;
      const d = Atomics.load(ctrl, DONE);
      if (d !== lastDone) {
        lastDone = d;
        lastAt = performance.now();
      } else if (reason !== null && performance.now() - lastAt > Math.min(ORPHAN_UNIT_MS, this.silenceMs)) break;
      Atomics.wait(ctrl, DONE, d, 5);
    }
    const exits: string[] = [];
    for (;;) {
      const r = receiveMessageOnPort(this.report);
      if (r === undefined) break;
      const m = r.message as ExitMessage;
      exits.push(`worker ${m.worker} exited with code ${m.code}${m.error ? `: ${m.error}` : ''}`);
    }
    this.dispose();
    throw new ResnetTsError(
      'parallel',
      `a worker thread died while running task '${task.kernel}' (${reason ?? (exits.join('; ') || 'no exit report yet')}); the pool will be rebuilt on the next call`,
    );
  }

  private drainErrors(seq: number): string[] {
    const out: string[] = [];
    for (const port of this.ports) {
      for (;;) {
        const r = receiveMessageOnPort(port);
        if (r === undefined) break;
        const m = r.message as ErrorMessage;
        if (m.type === 'error' && m.seq === seq) out.push(`worker ${m.worker}: ${m.message}`);
      }
    }
    return out;
  }
}
