/**
 * The DataLoader's worker threads (Node only): `numWorkers` threads, each rebuilding the dataset from its
 * workerSpec() and making whole batches with loadBatch, the function the main thread runs when numWorkers is 0.
 *
 * The main thread stays synchronous (training is a plain `for … of`): it posts requests on one MessageChannel per
 * worker and, when it needs batch b, takes worker (b mod n)'s next message with receiveMessageOnPort, sleeping in
 * Atomics.wait on that worker's counter (bumped after every reply) until one is there. A worker replies in request
 * order, so its next message is batch b. A thread that exits sets its `dead` flag (and wakes us), so a dead worker
 * is an error, not a hang. Where the compiled worker script is missing (running from the TypeScript sources), the
 * loader makes the batches on the main thread instead, as the kernels' pool runs on one thread there: same bytes.
 */

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { ResnetTsError, ShapeError, ValueError } from '../errors.js';
import { DatasetError } from './dataset.js';
import { setWorkerBackend, type WorkerBatches } from './loader.js';
import type { RawBatch, WorkerSpec } from './map-dataset.js';

/** Main thread → worker. */
export interface BatchRequest {
  b: number;
  indices: Int32Array;
  seeds: Uint32Array;
}

/** Worker → main thread: a batch, or the error making it threw (b = −1: the worker failed to start). */
export type BatchReply = { type: 'batch'; b: number; batch: RawBatch } | { type: 'error'; b: number; name: string; op: string; message: string };

let script = new URL('./loader-worker.js', import.meta.url);

/** Points the workers at another compiled loader-worker.js (tests run from the TypeScript sources). */
export function setLoaderWorkerScript(url: URL): void {
  script = url;
}

/** Milliseconds per Atomics.wait slice: how often a waiting main thread looks at the dead flags. */
const WAIT_SLICE_MS = 100;

const ERRORS: Record<string, new (op: string, message: string) => ResnetTsError> = { DatasetError, ValueError, ShapeError };

/** The error a worker reported, as the same class with the same message. */
function rebuildError(m: Extract<BatchReply, { type: 'error' }>): Error {
  const prefix = `[${m.op}] `;
  const body = m.message.startsWith(prefix) ? m.message.slice(prefix.length) : m.message;
  const Cls = ERRORS[m.name];
  return Cls ? new Cls(m.op, body) : new ResnetTsError('DataLoader', `a worker failed: ${m.name}: ${m.message}`);
}

class ThreadBatches implements WorkerBatches {
  private readonly workers: Worker[] = [];
  private readonly ports: MessagePort[] = [];
  /** Per worker: [replies posted, dead]. */
  private readonly signal: Int32Array;

  constructor(spec: WorkerSpec, n: number) {
    let path: string;
    try {
      path = fileURLToPath(script);
    } catch {
      path = String(script);
    }
    if (!existsSync(path)) throw new ValueError('DataLoader', `the worker script ${path} is missing`);
    this.signal = new Int32Array(new SharedArrayBuffer(8 * n));
    for (let i = 0; i < n; i++) {
      const ch = new MessageChannel();
      const w = new Worker(script, { workerData: { port: ch.port2, signal: this.signal, slot: i, spec }, transferList: [ch.port2] });
      w.unref();
      this.workers.push(w);
      this.ports.push(ch.port1);
    }
  }

  request(b: number, indices: Int32Array, seeds: Uint32Array): void {
    const msg: BatchRequest = { b, indices, seeds };
    this.ports[b % this.ports.length]!.postMessage(msg, [indices.buffer as ArrayBuffer, seeds.buffer as ArrayBuffer]);
  }

  take(b: number): RawBatch {
    const w = b % this.ports.length;
    const port = this.ports[w]!;
    for (;;) {
      const seen = Atomics.load(this.signal, 2 * w);
      const got = receiveMessageOnPort(port);
      if (got !== undefined) {
        const m = got.message as BatchReply;
        if (m.type === 'error') throw rebuildError(m);
        if (m.b !== b) throw new ResnetTsError('DataLoader', `worker ${w} sent batch ${m.b} when batch ${b} was due`);
        return m.batch;
      }
      if (Atomics.load(this.signal, 2 * w + 1) !== 0) throw new ResnetTsError('DataLoader', `worker ${w} exited before it sent batch ${b}`);
      Atomics.wait(this.signal, 2 * w, seen, WAIT_SLICE_MS);
    }
  }

  close(): void {
    for (const p of this.ports) p.close();
    for (const w of this.workers) void w.terminate();
  }
}

/** Worker threads run the compiled loader-worker.js; without it (running from the TypeScript sources) there are none. */
function workerScriptExists(): boolean {
  try {
    return existsSync(fileURLToPath(script));
  } catch {
    return false;
  }
}

setWorkerBackend((spec, n) => (workerScriptExists() ? new ThreadBatches(spec, n) : null));
