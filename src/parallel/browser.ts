// Thread control for the kernels in a browser: a pool of Web Workers behind src/kernels/parallel.ts's hook, with
// the Node pool's shared-memory protocol (protocol.ts). Browser-safe: no node: imports.
//
// The kernels' API is synchronous, so a call blocks in Atomics.wait until the workers' units are done, and
// browsers allow Atomics.wait only off the main thread. Several threads therefore need both:
//   - cross-origin isolation (the page served with Cross-Origin-Opener-Policy: same-origin and
//     Cross-Origin-Embedder-Policy: require-corp), without which there is no SharedArrayBuffer;
//   - resnet-ts running in a dedicated Worker, which starts the kernel workers (browser-worker.js) itself.
// Anywhere else kernels run on the calling thread, and the first kernel that could have used threads says why,
// once, with console.warn. Results are the same bits either way (the kernels' determinism contract).
//
// A browser starts a worker only when the thread that created it returns to its event loop, and a blocked thread
// receives no messages: `await initThreads()` (or any pause of the caller) lets the workers start, and until they
// have, this thread simply takes every unit itself. Failures: a task function that throws in a worker makes the
// call throw once all units are done (its message travels through shared memory); a worker that stops taking part
// (its script failed to load, or it died holding a unit) is noticed when no unit finishes for STALL_MS, and the
// call throws; the next call builds a new pool, and after two pools whose workers never loaded, one thread.

import { ResnetTsError, ValueError } from '../errors.js';
import { setParallelBackend, type ParallelBackend, type Task, type TaskFn } from '../kernels/parallel.js';
import {
  BUSY, CTRL_LENGTH, DONE, ERR, MAX_UNITS, MAX_WORKERS, READY, WORD, WORKER_UNITS, drainUnits, openCall,
  type RunMessage,
} from './protocol.js';
import { copyBackStaged, stageTask } from './staging.js';

/** The parts of the Web Worker API used here (the project compiles without the DOM library). */
interface WebWorker {
  postMessage(message: unknown): void;
  terminate(): void;
  onerror: ((e: { message?: string }) => void) | null;
  onmessage: ((e: { data: unknown }) => void) | null;
}
interface BrowserGlobals {
  Worker?: new (url: URL, options: { type: 'module'; name: string }) => WebWorker;
  DedicatedWorkerGlobalScope?: unknown;
  crossOriginIsolated?: boolean;
  navigator?: { hardwareConcurrency?: number };
  console: { warn(...args: unknown[]): void };
}
const g = globalThis as unknown as BrowserGlobals;

/** Message from the pool to a new worker: its index and the shared control words. */
export interface InitMessage {
  type: 'init';
  index: number;
  ctrl: Int32Array;
  /** Int32 byte count, then UTF-8 text: the first error a task function threw in the current call. */
  error: Uint8Array;
}

/** A call during which no unit finishes for this long fails (a worker died holding a unit, or never loaded). */
const STALL_MS = 30_000;
/** Milliseconds per Atomics.wait slice while waiting for the workers' units. */
const WAIT_SLICE_MS = 50;
const ERROR_BYTES = 4096;

let requested: number | null = null;
let pool: BrowserPool | null = null;
let startupFailures = 0;
let workerScript: URL | null = new URL('./browser-worker.js', import.meta.url);
let warned = false;

/** Why kernels here run on one thread, or null when this context can run a worker pool. */
export function singleThreadReason(): string | null {
  if (typeof SharedArrayBuffer !== 'function' || g.crossOriginIsolated === false) {
    return 'the page is not cross-origin isolated (serve it with the headers Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp), so there is no SharedArrayBuffer';
  }
  if (g.DedicatedWorkerGlobalScope === undefined) {
    return 'resnet-ts is not running in a dedicated Worker (browsers allow the blocking Atomics.wait only there); run it in a Worker to use several threads';
  }
  if (typeof g.Worker !== 'function') return 'this worker cannot start workers of its own';
  if (workerScript === null) return 'the kernel workers failed to load twice';
  return null;
}

function warnOnce(reason: string): void {
  if (warned) return;
  warned = true;
  g.console.warn(`resnet-ts: kernels run on one thread: ${reason}.`);
}

/** Threads a kernel call may use, the caller's included: 1 where workers are unavailable (singleThreadReason). */
export function getNumThreads(): number {
  if (singleThreadReason() !== null) return 1;
  return Math.min(requested ?? g.navigator?.hardwareConcurrency ?? 1, MAX_WORKERS + 1);
}

/** Sets the threads per kernel call (torch.set_num_threads); 1 turns the pool off. Results do not depend on it. */
export function setNumThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new ValueError('setNumThreads', `the number of threads must be a positive integer, got ${n}`);
  requested = n;
  if (pool !== null && pool.threads !== getNumThreads()) {
    pool.dispose();
    pool = null;
  }
}

/**
 * Starts the kernel workers and waits until they have loaded (a browser starts them only while this thread is
 * free). Returns the number of threads kernels will use: 1, with a console warning saying why, where workers are
 * unavailable.
 */
export async function initThreads(n?: number): Promise<number> {
  if (n !== undefined) setNumThreads(n);
  installBrowserParallel();
  const reason = singleThreadReason();
  if (reason !== null) {
    warnOnce(reason);
    return 1;
  }
  if (getNumThreads() === 1) return 1;
  if (pool === null || pool.broken) pool = new BrowserPool(getNumThreads(), workerScript!);
  const p = pool;
  if (!(await p.ready)) {
    p.dispose();
    if (pool === p) pool = null;
    if (++startupFailures >= 2) workerScript = null;
    const again = singleThreadReason();
    if (again !== null) {
      warnOnce(again);
      return 1;
    }
    return initThreads();
  }
  return p.threads;
}

const backend: ParallelBackend = {
  get threads() {
    const reason = singleThreadReason();
    if (reason !== null) warnOnce(reason);
    return getNumThreads();
  },
  run(task: Task, fn: TaskFn) {
    if (pool !== null && (pool.broken || pool.threads !== getNumThreads())) {
      if (pool.neverReady && ++startupFailures >= 2) workerScript = null;
      pool.dispose();
      pool = null;
    }
    if (singleThreadReason() !== null || getNumThreads() === 1) {
      fn(task.bufs, task.params, 0, task.units);
      return;
    }
    pool ??= new BrowserPool(getNumThreads(), workerScript!);
    pool.run(task, fn);
  },
};

/** Makes the kernels use the Web Worker pool (idempotent; the browser entry calls it on import). */
export function installBrowserParallel(): void {
  setParallelBackend(backend);
}

/** For tests and unusual layouts: where the compiled browser-worker.js is (default: next to this module). */
export function setBrowserWorkerScript(url: URL): void {
  workerScript = url;
  startupFailures = 0;
  pool?.dispose();
  pool = null;
}

/** The live pool's threads and the kernel units its workers (not the calling thread) have run; null without one. */
export function poolStats(): { threads: number; workerUnits: number } | null {
  return pool === null ? null : { threads: pool.threads, workerUnits: pool.workerUnits };
}

class BrowserPool implements ParallelBackend {
  readonly threads: number;
  /** Resolves true once every worker has loaded its modules, false if one failed to (or 10 s passed). */
  readonly ready: Promise<boolean>;
  private readonly ctrl: Int32Array;
  private readonly error: Uint8Array;
  private readonly workers: WebWorker[] = [];
  private readonly staging: SharedArrayBuffer[] = [];
  private seq = 0;
  private failed = false;
  private disposed = false;

  constructor(threads: number, script: URL) {
    const n = Math.min(threads - 1, MAX_WORKERS);
    this.threads = n + 1;
    this.ctrl = new Int32Array(new SharedArrayBuffer(CTRL_LENGTH * 4));
    this.error = new Uint8Array(new SharedArrayBuffer(ERROR_BYTES));
    let loaded = 0;
    let settle: (ok: boolean) => void = () => {};
    this.ready = new Promise<boolean>((resolve) => {
      settle = resolve;
      setTimeout(() => resolve(false), 10_000);
    });
    for (let i = 0; i < n; i++) {
      const w = new g.Worker!(script, { type: 'module', name: `resnet-ts kernels ${i + 1}` });
      w.onmessage = (e) => {
        if ((e.data as { type?: string }).type === 'ready' && ++loaded === n) settle(true);
      };
      // Seen only while this thread is free (between calls): a script that fails to load, or an uncaught error.
      w.onerror = () => {
        this.failed = true;
        settle(false);
      };
      const init: InitMessage = { type: 'init', index: i, ctrl: this.ctrl, error: this.error };
      w.postMessage(init);
      this.workers.push(w);
    }
  }

  get broken(): boolean {
    return this.disposed || this.failed;
  }

  /** True when some worker has not loaded its modules. */
  get neverReady(): boolean {
    for (let i = 0; i < this.workers.length; i++) if (Atomics.load(this.ctrl, READY + i) === 0) return true;
    return false;
  }

  get workerUnits(): number {
    return Atomics.load(this.ctrl, WORKER_UNITS);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const w of this.workers) w.terminate();
  }

  run(task: Task, fn: TaskFn): void {
    if (task.units > MAX_UNITS) throw new ResnetTsError('parallel', `task '${task.kernel}' has ${task.units} units, more than ${MAX_UNITS}`);
    const { bufs, copyBack } = stageTask(task, this.staging);
    const ctrl = this.ctrl;
    const seq = (this.seq = (this.seq + 1) | 0);
    const units = task.units;
    openCall(ctrl, seq, units);
    const msg: RunMessage = { type: 'run', seq, kernel: task.kernel, bufs, params: task.params, units };
    const helpers = Math.min(this.workers.length, units - 1);
    for (let i = 0; i < helpers; i++) this.workers[i]!.postMessage(msg);

    let localError: unknown = undefined;
    drainUnits(ctrl, seq, units, (u) => fn(bufs, task.params, u, u + 1), (e) => {
      if (localError === undefined) localError = e;
    });

    let done = Atomics.load(ctrl, DONE);
    let progressAt = performance.now();
    while (done < units) {
      Atomics.wait(ctrl, DONE, done, WAIT_SLICE_MS);
      const now = Atomics.load(ctrl, DONE);
      if (now !== done) {
        done = now;
        progressAt = performance.now();
      } else if (performance.now() - progressAt > STALL_MS) {
        this.failOnStall(task, helpers);
      }
    }
    if (localError !== undefined) throw localError;
    if (Atomics.load(ctrl, ERR) !== 0) {
      throw new ResnetTsError('parallel', `task '${task.kernel}' failed in a worker: ${readError(this.error) || '(no message)'}`);
    }
    copyBackStaged(copyBack);
  }

  // No unit has finished for STALL_MS: stop handing out units, and give up on the pool (terminating its workers,
  // so none can write into the caller's buffers after we return).
  private failOnStall(task: Task, helpers: number): never {
    const ctrl = this.ctrl;
    Atomics.store(ctrl, WORD, (Atomics.load(ctrl, WORD) & ~MAX_UNITS) | MAX_UNITS);
    const holding: number[] = [];
    for (let i = 0; i < helpers; i++) if (Atomics.load(ctrl, BUSY + i) === 1) holding.push(i + 1);
    this.dispose();
    throw new ResnetTsError(
      'parallel',
      `no unit of task '${task.kernel}' finished for ${STALL_MS / 1000} s (workers holding units: ${holding.join(', ') || 'none'}; units run by workers so far: ${Atomics.load(ctrl, WORKER_UNITS)}); the pool will be rebuilt on the next call`,
    );
  }
}

/** Writes a worker's error text into the shared error buffer (byte count first); used by browser-worker.ts. */
export function writeError(buf: Uint8Array, text: string): void {
  const bytes = new TextEncoder().encode(text).subarray(0, buf.length - 4);
  buf.set(bytes, 4);
  new DataView(buf.buffer, buf.byteOffset).setInt32(0, bytes.length, true);
}

function readError(buf: Uint8Array): string {
  const n = new DataView(buf.buffer, buf.byteOffset).getInt32(0, true);
  // TextDecoder refuses views of shared memory: copy first.
  return new TextDecoder().decode(buf.slice(4, 4 + Math.max(0, Math.min(n, buf.length - 4))));
}
