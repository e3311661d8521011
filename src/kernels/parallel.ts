// The kernels' hook for running work on several threads, without knowing what a thread is.
//
// A kernel that can split its work describes it as a Task: a registered function name, the typed arrays it reads
// and writes, plain parameters, and a count of independent work units. `parallelFor(task)` runs every unit exactly
// once. The default runs them all inline, in order, on the calling thread; a backend installed with
// `setParallelBackend` (the Node worker pool in src/parallel/) may run them on several threads. Workers cannot be
// sent closures, so a task names its function: each thread imports the same kernel modules (the list in tasks.ts),
// and these register their task functions here at load time.
//
// Determinism contract (what lets results be bitwise identical for every thread count): a kernel must split its
// work only into units whose outputs are disjoint and whose values do not depend on which units ran before or on
// which thread: same arithmetic, same summation order. Unit boundaries must be a function of the problem shape only
// (never of the thread count). Scratch buffers are per thread (module-level: a worker has its own module instance).
//
// This file is browser-safe: no Node imports.

import { config, setConfig } from '../config.js';
import { applyKernelSettings, kernelSettings, type KernelSettings } from './wasm/features.js';

/** A buffer a task reads or writes. */
export type TaskBuffer = Float32Array | Float64Array;

/** A unit of parallel work: see the file comment. `params` must be structured-cloneable plain data. */
export interface Task<P = unknown> {
  /** Name the task function was registered under (e.g. 'conv2d.forward'). */
  kernel: string;
  /** The typed arrays the task function reads or writes, by name; null for an absent optional buffer. */
  bufs: Record<string, TaskBuffer | null>;
  /** Names of the bufs the task writes (a backend that must copy buffers into shared memory copies these back). */
  writes: readonly string[];
  /** Of `writes`, those the units together overwrite entirely without reading them (need no copying in). */
  overwrites?: readonly string[];
  params: P;
  /** Number of independent units: the task function is called on sub-ranges of [0, units). */
  units: number;
  /** Rough work of the whole task in flops; below `config.minParallelCost` it runs inline (no thread overhead). */
  cost: number;
}

/** Runs units [u0, u1) of a task on the calling thread. */
export type TaskFn<P = unknown> = (bufs: Record<string, TaskBuffer | null>, params: P, u0: number, u1: number) => void;

/** What a thread pool implements. `run` returns when every unit has run, or throws. */
export interface ParallelBackend {
  /** Threads a task may use, the caller's included. */
  readonly threads: number;
  run(task: Task, fn: TaskFn): void;
}

const registry = new Map<string, TaskFn>();
/** The same functions taking { kernels, params }: what other threads run, so they use the caller's kernel backend. */
const remote = new Map<string, TaskFn>();

/** What a thread hands to the others with every task: the kernel backend (threads start with the default one). */
interface RemoteParams {
  kernels: KernelSettings;
  params: unknown;
}

/** Makes a task function callable by name on every thread that imports the registering module. */
export function registerTask<P>(name: string, fn: TaskFn<P>): void {
  registry.set(name, fn as TaskFn);
  remote.set(name, (bufs, q, u0, u1) => {
    const r = q as RemoteParams;
    applyKernelSettings(r.kernels);
    fn(bufs, r.params as P, u0, u1);
  });
}

/** Every task name registered on this thread, sorted. */
export function registeredTaskNames(): string[] {
  return [...registry.keys()].sort();
}

/**
 * The function that runs task `name`'s units on a thread of a backend: it takes the params that `parallelFor`
 * hands to the backend ({ kernels, params }), or undefined.
 */
export function taskFunction(name: string): TaskFn | undefined {
  return remote.get(name);
}

let backend: ParallelBackend | null = null;
/** True while a backend runs a task on this thread: a nested parallelFor runs inline. */
let busy = false;

/**
 * Told about every parallelFor on this thread once it returns (for measurements: bench/pool-calls.mjs): the task,
 * whether it went to the backend, and its start and end on performance.now().
 */
export type ParallelTracer = (task: Task, pooled: boolean, t0: number, t1: number) => void;
let tracer: ParallelTracer | null = null;

/** Installs (or with null removes) the tracer. */
export function setParallelTracer(t: ParallelTracer | null): void {
  tracer = t;
}

/** Installs (or with null removes) the backend that `parallelFor` hands tasks to. */
export function setParallelBackend(b: ParallelBackend | null): void {
  backend = b;
}

/** The installed backend, if any. */
export function getParallelBackend(): ParallelBackend | null {
  return backend;
}

/**
 * Sets config.minParallelCost, the inline threshold (flops): handing work to another thread costs tens of
 * microseconds, which a few hundred thousand multiply-adds repay. Returns the previous value. For tests and tuning.
 */
export function setMinParallelCost(flops: number): number {
  return setConfig({ minParallelCost: flops }).minParallelCost!;
}

/** Runs every unit of `task` once: inline, or on the installed backend's threads. */
export function parallelFor<P>(task: Task<P>): void {
  if (tracer !== null) {
    const t = tracer;
    const t0 = performance.now();
    const pooled = runTask(task);
    t(task as Task, pooled, t0, performance.now());
  } else runTask(task);
}

/** parallelFor's body: returns whether the task went to the backend. */
function runTask<P>(task: Task<P>): boolean {
  const fn = registry.get(task.kernel);
  if (fn === undefined) throw new Error(`[parallel] no task function registered as '${task.kernel}'`);
  if (task.units <= 0) return false;
  if (backend === null || busy || task.units === 1 || task.cost < config.minParallelCost || backend.threads <= 1) {
    fn(task.bufs, task.params, 0, task.units);
    return false;
  }
  busy = true;
  try {
    const params: RemoteParams = { kernels: kernelSettings(), params: task.params };
    backend.run({ ...task, params } as Task, remote.get(task.kernel)!);
  } finally {
    busy = false;
  }
  return true;
}

/**
 * Whether every buffer is in shared memory (null counts as shared), so a thread pool uses them in place. A
 * memory-bound kernel runs inline otherwise: the pool's staging copies, made on the calling thread, cost about what
 * the kernel does.
 */
export function allShared(...bufs: (TaskBuffer | null)[]): boolean {
  return typeof SharedArrayBuffer === 'function' && bufs.every((b) => b === null || b.buffer instanceof SharedArrayBuffer);
}

/** A Float64Array that worker threads can see (SharedArrayBuffer-backed where that exists), zero-filled. */
export function sharedFloat64(n: number): Float64Array {
  return typeof SharedArrayBuffer === 'function' ? new Float64Array(new SharedArrayBuffer(n * 8)) : new Float64Array(n);
}
