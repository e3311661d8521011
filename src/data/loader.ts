/**
 * Mini-batches from an in-memory Dataset, like torch.utils.data.DataLoader over a map-style dataset with a seeded
 * RandomSampler — but with the shuffle made a pure function of (seed, epoch), so resuming training at epoch k
 * reproduces epoch k's order and augmentation exactly (the role DistributedSampler.set_epoch plays in PyTorch).
 */

import { ValueError } from '../errors.js';
import { Generator } from '../random.js';
import { Tensor } from '../tensor.js';
import type { Dataset } from './dataset.js';
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
  readonly dataset: Dataset;
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;
  readonly seed: number;
  readonly transform: Transform | undefined;
  readonly scale: number;
  /** The epoch the next `for … of` will run. */
  epoch = 0;

  constructor(dataset: Dataset, opts: DataLoaderOptions) {
    const { batchSize } = opts;
    if (!Number.isInteger(batchSize) || batchSize <= 0) {
      throw new ValueError('DataLoader', `batch_size should be a positive integer value, but got batch_size=${batchSize}`);
    }
    const seed = opts.seed ?? 0;
    if (!Number.isFinite(seed)) throw new ValueError('DataLoader', `seed must be a finite number, got ${seed}`);
    this.dataset = dataset;
    this.batchSize = batchSize;
    this.shuffle = opts.shuffle ?? false;
    this.dropLast = opts.dropLast ?? false;
    this.seed = Math.floor(seed) >>> 0;
    this.transform = opts.transform;
    this.scale = opts.scale ?? 1 / 255;
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

  /** The batches of `epoch`, lazily (one batch in memory at a time). Does not change `this.epoch`. */
  *epochBatches(epoch: number): IterableIterator<Batch> {
    const ds = this.dataset;
    const order = this.order(epoch);
    const per = ds.channels * ds.height * ds.width;
    const aug = new Generator(epochSeed(this.seed, epoch, 1));
    const byteScale = this.scale === 1 / 255;
    for (let b = 0; b < this.length; b++) {
      const start = b * this.batchSize;
      const indices = order.slice(start, Math.min(start + this.batchSize, order.length));
      const n = indices.length;
      const data = new Float32Array(n * per);
      const y = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const src = indices[i]! * per;
        const dst = i * per;
        if (byteScale) for (let k = 0; k < per; k++) data[dst + k] = ds.images[src + k]! / 255;
        else for (let k = 0; k < per; k++) data[dst + k] = ds.images[src + k]! * this.scale;
        y[i] = ds.labels[indices[i]!]!;
      }
      let x = new Tensor(data, [n, ds.channels, ds.height, ds.width]);
      if (this.transform) x = this.transform(x, aug);
      yield { x, y, indices };
    }
  }

  [Symbol.iterator](): Iterator<Batch> {
    const e = this.epoch++;
    return this.epochBatches(e);
  }
}
