/**
 * Mini-batches from an in-memory Dataset or a map-style dataset (ImageFolder), like torch.utils.data.DataLoader with
 * a seeded RandomSampler — but with the shuffle made a pure function of (seed, epoch), so resuming training at epoch k
 * reproduces epoch k's order and augmentation exactly (the role DistributedSampler.set_epoch plays in PyTorch).
 *
 * A map-style dataset's items are made one by one, item at position p of epoch k with its own Generator seeded from
 * (seed, k, p); with `numWorkers` > 0 whole batches are made in worker threads (Node only: the backend lives in
 * loader-workers.ts and registers itself here), batch b by worker b mod numWorkers, at most numWorkers × prefetch
 * batches ahead of the one being consumed. Which thread made a batch never changes its bytes.
 */

import { AllocationError, ValueError } from '../errors.js';
import { Generator } from '../random.js';
import { alloc, fmt, MAX_NUMEL } from '../shape.js';
import { Tensor } from '../tensor.js';
import { checkDataset, checkDatasetSizes, type Dataset } from './dataset.js';
import { checkMapDataset, isMapDataset, loadBatch, type MapDataset, type RawBatch, type WorkerSpec } from './map-dataset.js';
import type { Transform } from './transforms.js';

export interface Batch {
  /** float32 (N, C, H, W): the bytes times `scale` (default 1/255, torchvision ToTensor), then the transform. */
  x: Tensor;
  /** Class labels, length N. */
  y: Int32Array;
  /** The dataset indices of the batch's items, in batch order. */
  indices: Int32Array;
}

export interface DataLoaderOptions {
  batchSize: number;
  /** Reshuffle every epoch (order a function of seed and epoch). Default false: dataset order. */
  shuffle?: boolean;
  /** Drop the last incomplete batch. Default false. */
  dropLast?: boolean;
  /** Seed of the shuffle and of the transform's randomness. Default 0. */
  seed?: number;
  /** Applied to each batch (N, C, H, W) with this epoch's augmentation generator. */
  transform?: Transform;
  /** Multiplier from bytes to floats. Default 1/255 (computed as byte / 255 in float32, like ToTensor). */
  scale?: number;
  /** Worker threads that make the batches of a map-style dataset (Node only). Default 0: this thread. */
  numWorkers?: number;
  /** Batches each worker works ahead (torch's prefetch_factor). Default 2. */
  prefetch?: number;
}

/** Requests batches from worker threads and hands them back in request order, blocking (loader-workers.ts). */
export interface WorkerBatches {
  /** Asks for a batch (worker `b mod numWorkers` makes it). */
  request(b: number, indices: Int32Array, seeds: Uint32Array): void;
  /** Batch `b`, waiting for it; rethrows the error a worker hit making it. */
  take(b: number): RawBatch;
  close(): void;
}

/** Starts the workers; null when they cannot run here (the loader then makes the batches on this thread). */
export type WorkerBackend = (spec: WorkerSpec, numWorkers: number) => WorkerBatches | null;

let workerBackend: WorkerBackend | null = null;

/** Installs the worker-thread backend (done by the Node entry's data module). */
export function setWorkerBackend(b: WorkerBackend | null): void {
  workerBackend = b;
}

/** splitmix32 finalizer: a well-mixed uint32 from a uint32. */
function mix32(v: number): number {
  let z = (v + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** The seed of stream `stream` (0 = shuffle, 1 = augmentation) of `epoch` under `seed`. */
function epochSeed(seed: number, epoch: number, stream: number): number {
  return mix32(mix32(mix32(seed >>> 0) ^ epoch) ^ stream);
}

/**
 * `for (const { x, y } of loader)` runs one epoch: epoch `loader.epoch`, which then advances by one. Set
 * `loader.epoch = k` (or call `loader.epochBatches(k)`) to replay or resume epoch k.
 */
export class DataLoader implements Iterable<Batch> {
  readonly dataset: Dataset | MapDataset;
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;
  readonly seed: number;
  readonly transform: Transform | undefined;
  readonly scale: number;
  readonly numWorkers: number;
  readonly prefetch: number;
  /** The epoch the next `for … of` will run. */
  epoch = 0;
  private workers: WorkerBatches | null = null;
  /** Most batches requested from workers and not yet consumed, over this loader's life (≤ numWorkers × prefetch). */
  maxInFlight = 0;

  /**
   * Checks everything up front (DataLoader is where a bad dataset or option would otherwise fail mid-epoch):
   * ValueError for bad options, DatasetError (checkDataset) for an inconsistent dataset, AllocationError when one
   * batch would be over 2^32 − 1 elements.
   */
  constructor(dataset: Dataset | MapDataset, opts: DataLoaderOptions) {
    const op = 'DataLoader';
    if (opts === null || typeof opts !== 'object') throw new ValueError(op, `expected an options object with batchSize, got ${String(opts)}`);
    const { batchSize } = opts;
    if (!Number.isInteger(batchSize) || batchSize <= 0) {
      throw new ValueError(op, `batch_size should be a positive integer value, but got batch_size=${batchSize}`);
    }
    const seed = opts.seed ?? 0;
    if (!Number.isFinite(seed)) throw new ValueError(op, `seed must be a finite number, got ${seed}`);
    const shuffle = opts.shuffle ?? false;
    const dropLast = opts.dropLast ?? false;
    if (typeof shuffle !== 'boolean') throw new ValueError(op, `shuffle must be true or false, got ${String(shuffle)}`);
    if (typeof dropLast !== 'boolean') throw new ValueError(op, `dropLast must be true or false, got ${String(dropLast)}`);
    const scale = opts.scale ?? 1 / 255;
    if (typeof scale !== 'number' || !Number.isFinite(scale)) throw new ValueError(op, `scale must be a finite number, got ${String(scale)}`);
    if (opts.transform !== undefined && typeof opts.transform !== 'function') {
      throw new ValueError(op, `transform must be a function (x, gen) => Tensor, got ${typeof opts.transform}`);
    }
    const numWorkers = opts.numWorkers ?? 0;
    const prefetch = opts.prefetch ?? 2;
    if (!Number.isInteger(numWorkers) || numWorkers < 0) throw new ValueError(op, `numWorkers must be a non-negative integer, got ${String(numWorkers)}`);
    if (!Number.isInteger(prefetch) || prefetch < 1) throw new ValueError(op, `prefetch must be a positive integer, got ${String(prefetch)}`);
    if (isMapDataset(dataset)) {
      checkMapDataset(dataset);
      if (numWorkers > 0 && typeof dataset.workerSpec !== 'function') {
        throw new ValueError(op, 'numWorkers > 0 needs a dataset that worker threads can rebuild (ImageFolder); this one has no workerSpec()');
      }
    } else {
      if (numWorkers > 0) throw new ValueError(op, 'numWorkers > 0 needs a map-style dataset (ImageFolder); an in-memory dataset is batched on this thread');
      // the largest batch must be allocatable: checked before the byte counts, as it fails whatever the bytes are
      checkDatasetSizes(dataset, 'DataLoader dataset');
      const n = dataset.length;
      const largest = dropLast ? (n >= batchSize ? batchSize : 0) : Math.min(batchSize, n);
      const shape = [largest, dataset.channels, dataset.height, dataset.width];
      const numel = largest * dataset.channels * dataset.height * dataset.width;
      if (numel > MAX_NUMEL) {
        throw new AllocationError(op, `a batch of shape ${fmt(shape)} would have ${numel} elements, more than the limit of 2^32 - 1; use a smaller batchSize`);
      }
      checkDataset(dataset, 'DataLoader dataset');
    }
    // torch's RandomSampler refuses an empty dataset
    if (shuffle && dataset.length === 0) throw new ValueError(op, 'num_samples should be a positive integer value, but got num_samples=0 (shuffle over an empty dataset)');
    this.dataset = dataset;
    this.batchSize = batchSize;
    this.shuffle = shuffle;
    this.dropLast = dropLast;
    this.seed = Math.floor(seed) >>> 0;
    this.transform = opts.transform;
    this.scale = scale;
    this.numWorkers = numWorkers;
    this.prefetch = prefetch;
  }

  /** Number of batches per epoch. */
  get length(): number {
    const n = this.dataset.length;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** The item order of `epoch` (identity without shuffle). */
  order(epoch: number): Int32Array {
    const n = this.dataset.length;
    if (!this.shuffle) return Int32Array.from({ length: n }, (_, i) => i);
    return new Generator(epochSeed(this.seed, epoch, 0)).permutation(n);
  }

  /**
   * The batches of `epoch`, lazily (one batch in memory at a time). Does not change `this.epoch`. With `start` > 0
   * the first `start` batches are skipped, their augmentation drawn and discarded, so that batch `start` and after
   * are the very batches a full pass yields (resuming mid-epoch).
   */
  epochBatches(epoch: number, start = 0): IterableIterator<Batch> {
    if (!Number.isInteger(start) || start < 0) throw new ValueError('DataLoader', `start must be a non-negative integer batch index, got ${String(start)}`);
    const ds = this.dataset;
    return isMapDataset(ds) ? this.mapBatches(ds, epoch, start) : this.tensorBatches(ds, epoch, start);
  }

  /** Dataset indices and per-item seeds of batch b of an epoch whose order and seed stream are given. */
  private batchPlan(order: Int32Array, itemSeed: number, b: number): { indices: Int32Array; seeds: Uint32Array } {
    const start = b * this.batchSize;
    const end = Math.min(start + this.batchSize, order.length);
    const seeds = new Uint32Array(end - start);
    for (let p = start; p < end; p++) seeds[p - start] = mix32(itemSeed ^ mix32(p));
    return { indices: order.slice(start, end), seeds };
  }

  private *mapBatches(ds: MapDataset, epoch: number, start: number): IterableIterator<Batch> {
    const order = this.order(epoch);
    const itemSeed = epochSeed(this.seed, epoch, 1);
    const aug = new Generator(epochSeed(this.seed, epoch, 2));
    const total = this.length;
    let workers: WorkerBatches | null = null;
    if (this.numWorkers > 0 && total > 0) {
      if (workerBackend === null) {
        throw new ValueError('DataLoader', "numWorkers > 0 needs Node's worker threads: import the DataLoader from 'resnet-ts' (not 'resnet-ts/core')");
      }
      // the workers outlive the epoch (torch's persistent_workers): warm JIT, no start-up cost per epoch
      this.workers ??= workerBackend(ds.workerSpec!(), this.numWorkers);
      workers = this.workers; // null: no worker threads here, so this thread makes the batches
    }
    const ahead = this.numWorkers * this.prefetch;
    // skipped batches are loaded only where a batch transform has augmentation draws to replay
    const first = this.transform ? 0 : Math.min(start, total);
    let requested = first;
    let taken = first;
    try {
      for (let b = first; b < total; b++) {
        let raw: RawBatch;
        if (workers !== null) {
          for (; requested < Math.min(total, b + ahead); requested++) {
            const plan = this.batchPlan(order, itemSeed, requested);
            workers.request(requested, plan.indices, plan.seeds);
          }
          this.maxInFlight = Math.max(this.maxInFlight, requested - b);
          raw = workers.take(b);
          taken = b + 1;
        } else {
          const plan = this.batchPlan(order, itemSeed, b);
          raw = loadBatch(ds, plan.indices, plan.seeds);
        }
        if (raw.skipped.length) ds.noteSkipped?.(raw.skipped);
        if (raw.shape[0] === 0) continue; // every file of the batch was skipped
        if (b < start) {
          this.transform!(new Tensor(raw.data, raw.shape), aug);
          continue;
        }
        yield this.finish(new Tensor(raw.data, raw.shape), raw.labels, raw.indices, aug);
      }
    } finally {
      // left mid-epoch or failed: requests may still be queued, so these workers cannot serve the next epoch
      if (workers !== null && taken < requested) this.close();
    }
  }

  /** Stops the worker threads (they are also unref'd: an idle loader never keeps the process alive). */
  close(): void {
    this.workers?.close();
    this.workers = null;
  }

  /** Applies the batch transform (if any) and checks what it returns. */
  private finish(x: Tensor, y: Int32Array, indices: Int32Array, aug: Generator): Batch {
    const n = y.length;
    if (this.transform) {
      x = this.transform(x, aug);
      if (!(x instanceof Tensor) || x.shape.length !== 4 || x.shape[0] !== n) {
        const got = x instanceof Tensor ? `a Tensor of shape ${fmt(x.shape)}` : x === null ? 'null' : typeof x;
        throw new ValueError('DataLoader', `transform must return a batch Tensor (N, C, H, W) with N = ${n}, got ${got}`);
      }
    }
    return { x, y, indices };
  }

  private *tensorBatches(ds: Dataset, epoch: number, start: number): IterableIterator<Batch> {
    const order = this.order(epoch);
    const per = ds.channels * ds.height * ds.width;
    const aug = new Generator(epochSeed(this.seed, epoch, 1));
    const byteScale = this.scale === 1 / 255;
    for (let b = 0; b < this.length; b++) {
      if (b < start && !this.transform) continue; // nothing random to replay
      const first = b * this.batchSize;
      const indices = order.slice(first, Math.min(first + this.batchSize, order.length));
      const n = indices.length;
      const data = alloc('DataLoader', n * per);
      const y = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const src = indices[i]! * per;
        const dst = i * per;
        if (byteScale) for (let k = 0; k < per; k++) data[dst + k] = ds.images[src + k]! / 255;
        else for (let k = 0; k < per; k++) data[dst + k] = ds.images[src + k]! * this.scale;
        y[i] = ds.labels[indices[i]!]!;
      }
      const x = new Tensor(data, [n, ds.channels, ds.height, ds.width]);
      if (b < start) {
        // the transform draws from `aug` image by image: run it so the generator is where a full pass leaves it
        if (this.transform) this.transform(x, aug);
        continue;
      }
      yield this.finish(x, y, indices, aug);
    }
  }

  [Symbol.iterator](): Iterator<Batch> {
    const e = this.epoch++;
    return this.epochBatches(e);
  }
}
