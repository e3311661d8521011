// Thread control for the kernels (Node only): the worker pool behind src/kernels/parallel.ts's hook.
//
//   setNumThreads(n) / getNumThreads(): threads per kernel call, the caller's included (torch.set_num_threads).
//   Default: the environment variable RESNET_TS_THREADS if set, else os.availableParallelism().
//   One thread = no pool: every kernel runs inline. Where the compiled worker scripts are missing (e.g. running
//   from the TypeScript sources) or a Worker cannot be created, kernels also run on one thread.

import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { ValueError } from '../errors.js';
import { setParallelBackend, type ParallelBackend, type Task, type TaskFn } from '../kernels/parallel.js';
import { WorkerPool, type PoolOptions, type PoolScripts } from './pool.js';

let requested: number | null = null;
let scripts: PoolScripts | null = defaultScripts();
let pool: WorkerPool | null = null;
/** Pools in a row whose workers died before loading: two, and we stop trying (one thread). */
let startupFailures = 0;
let poolOptions: PoolOptions = {};

function defaultScripts(): PoolScripts | null {
  const worker = new URL('./worker.js', import.meta.url);
  const supervisor = new URL('./supervisor.js', import.meta.url);
  try {
    return existsSync(fileURLToPath(worker)) && existsSync(fileURLToPath(supervisor)) ? { worker, supervisor } : null;
  } catch {
    return null;
  }
}

function fromEnv(): number | null {
  const v = process.env.RESNET_TS_THREADS;
  if (v === undefined || v.trim() === '') return null;
  const n = Number(v);
  return Number.isInteger(n) && n >= 1 ? Math.min(n, maxThreads()) : null;
}

/** Threads a kernel call may use, the caller's included: 1 when workers are unavailable. */
export function getNumThreads(): number {
  if (scripts === null || typeof SharedArrayBuffer !== 'function') return 1;
  return requested ?? fromEnv() ?? availableParallelism();
}

/** setNumThreads caps its argument at this many threads per core (more only adds contention) and at 257 in all. */
export const THREADS_PER_CORE_CAP = 4;

/** The most threads setNumThreads accepts here: 4 × the cores this process may use, at most 257 (256 workers). */
export function maxThreads(): number {
  return Math.min(THREADS_PER_CORE_CAP * availableParallelism(), 257);
}

/**
 * Sets the threads per kernel call (torch.set_num_threads); 1 turns the pool off. Results do not depend on it.
 * A request over maxThreads() (4 per core) is capped there, with a warning.
 */
export function setNumThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new ValueError('setNumThreads', `the number of threads must be a positive integer, got ${n}`);
  const cap = maxThreads();
  if (n > cap) {
    process.emitWarning(`resnet-ts: setNumThreads(${n}) capped at ${cap} threads (4 per core, ${availableParallelism()} cores here): more threads than that only contend for the cores`, { code: 'RESNET_TS_THREADS' });
    n = cap;
  }
  requested = n;
  installParallel();
  if (pool !== null && pool.threads !== getNumThreads()) {
    pool.dispose();
    pool = null;
  }
}

/**
 * The pool for `want` threads: the current one, or a new one where it is broken or sized for another count (two
 * failed start-ups in a row and the workers are given up, with a warning). Null where no workers can run: the
 * caller then runs the work inline.
 */
function ensurePool(want: number): WorkerPool | null {
  if (pool !== null && (pool.broken || pool.threads !== want)) {
    if (!pool.startupFailed) startupFailures = 0;
    else if (++startupFailures >= 2) {
      scripts = null;
      process.emitWarning('resnet-ts: kernel worker threads fail to start; running on one thread', { code: 'RESNET_TS_THREADS' });
    }
    pool.dispose();
    pool = null;
  }
  if (pool === null && scripts !== null) {
    try {
      pool = new WorkerPool(want, scripts, poolOptions);
    } catch {
      // No workers here (e.g. a runtime without worker_threads support): run inline.
    }
  }
  return pool;
}

const backend: ParallelBackend = {
  get threads() {
    return getNumThreads();
  },
  run(task: Task, fn: TaskFn) {
    const p = ensurePool(getNumThreads());
    if (p === null) fn(task.bufs, task.params, 0, task.units);
    else p.run(task, fn);
  },
};

/**
 * Builds the worker pool now, when more than one thread is in use and none is built: its workers start (load their
 * modules) in the background while this thread goes on, instead of during the first parallel kernel call, which
 * otherwise runs mostly on this thread while they start. For a process about to run kernels (the CLI's predict
 * builds its model and reads the weights meanwhile). Returns whether a pool exists afterwards.
 */
export function startThreads(): boolean {
  return getNumThreads() > 1 && ensurePool(getNumThreads()) !== null;
}

/** Makes the kernels use the worker pool (idempotent). */
export function installParallel(): void {
  setParallelBackend(backend);
}

/**
 * For tests and unusual layouts: where the compiled worker.js and supervisor.js are (default: next to this
 * module). null makes getNumThreads() 1.
 */
export function setWorkerScripts(s: PoolScripts | null, opts: PoolOptions = {}): void {
  scripts = s;
  poolOptions = opts;
  startupFailures = 0;
  if (pool !== null) {
    pool.dispose();
    pool = null;
  }
}

/** For tests: the live pool, if one has been built. */
export function currentPoolForTest(): WorkerPool | null {
  return pool;
}
