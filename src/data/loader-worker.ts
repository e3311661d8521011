/**
 * One DataLoader worker thread (see loader-workers.ts): rebuilds the dataset from its spec, then answers each batch
 * request with loadBatch's result (buffers transferred, not copied) or with the error it threw, and bumps its counter.
 */

import { workerData, type MessagePort } from 'node:worker_threads';
import type { BatchReply, BatchRequest } from './loader-workers.js';
import type { MapDataset, WorkerSpec } from './map-dataset.js';

const { port, signal, slot, spec } = workerData as { port: MessagePort; signal: Int32Array; slot: number; spec: WorkerSpec };

function wake(): void {
  Atomics.add(signal, 2 * slot, 1);
  Atomics.notify(signal, 2 * slot);
}

function errorReply(b: number, e: unknown): BatchReply {
  const err = e instanceof Error ? e : new Error(String(e));
  return { type: 'error', b, name: err.name, op: (err as { op?: string }).op ?? 'DataLoader', message: err.message };
}

process.on('exit', () => {
  Atomics.store(signal, 2 * slot + 1, 1);
  Atomics.notify(signal, 2 * slot);
});

try {
  const { ImageFolder } = await import('./imagefolder.js');
  const { loadBatch } = await import('./map-dataset.js');
  if (spec.kind !== 'ImageFolder') throw new Error(`unknown dataset kind '${spec.kind}'`);
  const ds: MapDataset = ImageFolder.fromWorkerSpec(spec);
  port.on('message', (m: BatchRequest) => {
    let reply: BatchReply;
    try {
      reply = { type: 'batch', b: m.b, batch: loadBatch(ds, m.indices, m.seeds) };
    } catch (e) {
      reply = errorReply(m.b, e);
    }
    if (reply.type === 'batch') port.postMessage(reply, [reply.batch.data.buffer as ArrayBuffer, reply.batch.labels.buffer as ArrayBuffer, reply.batch.indices.buffer as ArrayBuffer]);
    else port.postMessage(reply);
    wake();
  });
} catch (e) {
  port.postMessage(errorReply(-1, e));
  wake();
}
