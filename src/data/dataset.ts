/**
 * The in-memory image-classification dataset shape shared by the readers, the synthetic generator and DataLoader,
 * and the error every data-reading failure throws.
 */

import { AllocationError, ResnetTsError, ValueError } from '../errors.js';
import { Generator } from '../random.js';
import { MAX_NUMEL } from '../shape.js';

/** A data file or dataset that is missing, truncated or not in the expected format. Names the file and the problem. */
export class DatasetError extends ResnetTsError {}

/**
 * N images of C×H×W bytes (0..255) with one class label each. `images` is N×C×H×W row-major (torchvision's
 * ToTensor layout before the /255), `labels[i]` in 0..numClasses-1.
 */
export interface Dataset {
  length: number;
  channels: number;
  height: number;
  width: number;
  numClasses: number;
  images: Uint8Array;
  labels: Uint8Array;
  /** Human-readable class names, where known. */
  classNames?: readonly string[];
}

export const FASHION_MNIST_CLASSES = Object.freeze([
  'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot',
]);
export const MNIST_CLASSES = Object.freeze(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
export const CIFAR10_CLASSES = Object.freeze([
  'airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck',
]);

/**
 * The first half of checkDataset: `ds` is an object whose sizes are non-negative integers and whose images and labels
 * are Uint8Arrays. Does not look at their lengths or contents. Throws DatasetError naming `what`.
 */
export function checkDatasetSizes(ds: Dataset, what = 'dataset'): void {
  if (ds === null || typeof ds !== 'object') throw new DatasetError('dataset', `${what}: expected a dataset object, got ${ds === null ? 'null' : typeof ds}`);
  const { length: n, channels: c, height: h, width: w } = ds;
  for (const [k, v] of Object.entries({ length: n, channels: c, height: h, width: w, numClasses: ds.numClasses })) {
    if (!Number.isSafeInteger(v) || v < 0) throw new DatasetError('dataset', `${what}: ${k} must be a non-negative integer, got ${String(v)}`);
  }
  for (const k of ['images', 'labels'] as const) {
    const v: unknown = ds[k];
    if (!(v instanceof Uint8Array)) {
      const got = v === null ? 'null' : typeof v === 'object' ? (v.constructor?.name ?? 'an object') : typeof v;
      throw new DatasetError('dataset', `${what}: ${k} must be a Uint8Array, got ${got}`);
    }
  }
}

/** Checks a Dataset's internal consistency (sizes and label range); throws DatasetError naming `what`. */
export function checkDataset(ds: Dataset, what = 'dataset'): void {
  checkDatasetSizes(ds, what);
  const { length: n, channels: c, height: h, width: w } = ds;
  if (ds.images.length !== n * c * h * w) {
    throw new DatasetError('dataset', `${what}: images has ${ds.images.length} bytes, expected ${n}×${c}×${h}×${w} = ${n * c * h * w}`);
  }
  if (ds.labels.length !== n) throw new DatasetError('dataset', `${what}: ${ds.labels.length} labels for ${n} images`);
  for (let i = 0; i < n; i++) {
    if (ds.labels[i]! >= ds.numClasses) {
      throw new DatasetError('dataset', `${what}: label ${ds.labels[i]} of item ${i} is not below numClasses ${ds.numClasses}`);
    }
  }
}

/** Items start..end-1 (python-style clamping), sharing the underlying bytes. */
export function subset(ds: Dataset, start: number, end = ds.length): Dataset {
  const s = Math.max(0, Math.min(ds.length, start < 0 ? ds.length + start : start));
  const e = Math.max(s, Math.min(ds.length, end < 0 ? ds.length + end : end));
  const per = ds.channels * ds.height * ds.width;
  return { ...ds, length: e - s, images: ds.images.subarray(s * per, e * per), labels: ds.labels.subarray(s, e) };
}

export interface SyntheticOptions {
  /** Number of images. */
  n: number;
  channels?: number;
  /** Height = width. */
  size?: number;
  numClasses?: number;
  seed?: number;
  /** Standard deviation of the per-pixel noise, in units of the 0..1 intensity range. Default 0.1. */
  noise?: number;
}

/**
 * A seeded, learnable toy dataset for demos and tests without downloads: class c is a sinusoidal grating at angle
 * π·c/numClasses with 2 + (c mod 3) cycles per image and a class-specific colour balance across channels; every
 * image draws its own phase (so the class is not a fixed template: a model must detect orientation and frequency, as
 * convolution + pooling can), contrast and brightness, plus per-pixel noise (triangular, standard deviation `noise`). Labels are balanced (i mod
 * numClasses) and shuffled. Same options, same bytes (all randomness from Generator(seed)).
 */
export function syntheticDataset(opts: SyntheticOptions): Dataset {
  const op = 'syntheticDataset';
  const { n, channels = 3, size = 32, numClasses = 10, seed = 0, noise = 0.1 } = opts;
  for (const [k, v] of Object.entries({ n, channels, size, numClasses })) {
    if (!Number.isInteger(v) || v < (k === 'n' ? 0 : 1)) throw new ValueError(op, `${k} must be a ${k === 'n' ? 'non-negative' : 'positive'} integer, got ${String(v)}`);
  }
  if (numClasses > 256) throw new ValueError(op, `numClasses must be at most 256 (labels are bytes), got ${numClasses}`);
  if (typeof seed !== 'number' || !Number.isFinite(seed)) throw new ValueError(op, `seed must be a finite number, got ${String(seed)}`);
  if (typeof noise !== 'number' || !(noise >= 0 && noise < Infinity)) throw new ValueError(op, `noise must be a finite number >= 0, got ${String(noise)}`);
  // refuse before allocating anything: the images (one byte per pixel), the per-class sin/cos tables (16 bytes per
  // pixel of one image) and the shuffle (an Int32Array of n indices)
  const bytes = n * channels * size * size;
  if (bytes > MAX_NUMEL) {
    throw new AllocationError(op, `${n} images of ${channels}×${size}×${size} would take ${bytes} bytes, more than the limit of 2^32 - 1`);
  }
  if (n > 2 ** 31 - 1) throw new ValueError(op, `n must be at most 2^31 - 1 (item indices are int32), got ${n}`);
  const gen = new Generator(seed);
  const labels = allocBytes(op, n, 'labels');
  const order = gen.permutation(n);
  for (let i = 0; i < n; i++) labels[order[i]!] = i % numClasses;
  const images = allocBytes(op, bytes, 'images');
  const plane = size * size;
  // sin(kx·x + ky·y + phase) = S·cos(phase) + C·sin(phase), with S, C tabulated once per class
  const tables = new Map<number, { S: Float64Array; C: Float64Array }>();
  const table = (c: number): { S: Float64Array; C: Float64Array } => {
    let t = tables.get(c);
    if (t === undefined) {
      const { kx, ky } = gratingOf(c, numClasses, size);
      try {
        t = { S: new Float64Array(plane), C: new Float64Array(plane) };
      } catch (e) {
        throw new AllocationError(op, `out of memory allocating the ${size}×${size} grating tables: ${(e as Error).message}`);
      }
      for (let y = 0; y < size; y++) {
        for (let x = 0; x < size; x++) {
          t.S[y * size + x] = Math.sin(kx * x + ky * y);
          t.C[y * size + x] = Math.cos(kx * x + ky * y);
        }
      }
      tables.set(c, t);
    }
    return t;
  };
  // triangular noise (sum of two 16-bit uniforms from one draw) scaled to standard deviation `noise`
  const noiseScale = noise * Math.sqrt(6) / 65536;
  for (let i = 0; i < n; i++) {
    const c = labels[i]!;
    const { S, C } = table(c);
    const phase = 2 * Math.PI * gen.uniform();
    const contrast = 0.6 + 0.4 * gen.uniform();
    const brightness = 0.2 * gen.uniform() - 0.1;
    const cp = Math.cos(phase);
    const sp = Math.sin(phase);
    for (let ch = 0; ch < channels; ch++) {
      const amp = 0.4 * contrast * channelWeight(c, ch, numClasses, channels);
      const a = amp * cp;
      const b = amp * sp;
      const base = (i * channels + ch) * plane;
      for (let k = 0; k < plane; k++) {
        const r = gen.nextUint32();
        const v = 0.5 + brightness + a * S[k]! + b * C[k]! + ((r & 0xffff) + (r >>> 16) - 65535) * noiseScale;
        images[base + k] = Math.round(255 * Math.min(1, Math.max(0, v)));
      }
    }
  }
  return { length: n, channels, height: size, width: size, numClasses, images, labels };
}

/** A zeroed byte array; V8's RangeError (too large, out of memory) becomes our AllocationError. */
function allocBytes(op: string, n: number, what: string): Uint8Array {
  try {
    return new Uint8Array(n);
  } catch (e) {
    throw new AllocationError(op, `out of memory allocating ${n} bytes of ${what}: ${(e as Error).message}`);
  }
}

/** Spatial angular frequencies (radians per pixel) of class c's grating in syntheticDataset. */
export function gratingOf(c: number, numClasses: number, size: number): { kx: number; ky: number } {
  const theta = (Math.PI * c) / numClasses;
  const k = (2 * Math.PI * (2 + (c % 3))) / size;
  return { kx: k * Math.cos(theta), ky: k * Math.sin(theta) };
}

function channelWeight(c: number, ch: number, numClasses: number, channels: number): number {
  if (channels === 1) return 1;
  return 0.6 + 0.4 * Math.cos(2 * Math.PI * (c / numClasses + ch / channels));
}
