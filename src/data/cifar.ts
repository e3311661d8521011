/**
 * The CIFAR binary formats (https://www.cs.toronto.edu/~kriz/cifar.html): fixed-size records of label byte(s) then
 * 3072 pixel bytes (1024 red, 1024 green, 1024 blue, each 32×32 row-major, i.e. already C×H×W).
 *   CIFAR-10  (data_batch_1..5.bin, test_batch.bin): 1 label byte (0..9) + 3072 = 3073 bytes per record
 *   CIFAR-100 (train.bin, test.bin): coarse label (0..19), fine label (0..99), 3072 pixels = 3074 bytes per record
 */

import { CIFAR10_CLASSES, DatasetError, type Dataset } from './dataset.js';

export interface CifarOptions {
  /** The file is CIFAR-100 (2 label bytes per record). Implied by `coarse`. */
  cifar100?: boolean;
  /** CIFAR-100 only: return the 20 coarse (superclass) labels instead of the 100 fine ones. */
  coarse?: boolean;
  /** For error messages (e.g. the file path). */
  name?: string;
}

const PIXELS = 3 * 32 * 32;

/**
 * Parses one CIFAR binary batch into a Dataset (3×32×32, 10, 100 or 20 classes). Throws DatasetError, naming the
 * file and its length, when the length is not a positive multiple of the record size, and when a label is out of
 * range (usually a CIFAR-100 file read as CIFAR-10 or the reverse).
 */
export function readCifarBatch(bytes: Uint8Array, opts: CifarOptions = {}): Dataset {
  const op = 'readCifarBatch';
  const cifar100 = opts.cifar100 === true || opts.coarse === true;
  const name = opts.name ?? 'CIFAR data';
  const labelBytes = cifar100 ? 2 : 1;
  const record = labelBytes + PIXELS;
  const format = cifar100 ? `CIFAR-100 record (2 label bytes + ${PIXELS} pixel bytes)` : `CIFAR-10 record (1 label byte + ${PIXELS} pixel bytes)`;
  if (bytes.length === 0 || bytes.length % record !== 0) {
    throw new DatasetError(op, `${name}: length ${bytes.length} is not a positive multiple of the ${record}-byte ${format}`);
  }
  const n = bytes.length / record;
  const numClasses = cifar100 ? (opts.coarse ? 20 : 100) : 10;
  const which = cifar100 ? (opts.coarse ? 0 : 1) : 0;
  const images = new Uint8Array(n * PIXELS);
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const off = i * record;
    const label = bytes[off + which]!;
    if (label >= numClasses) {
      throw new DatasetError(op, `${name}: record ${i} has ${cifar100 ? (opts.coarse ? 'coarse ' : 'fine ') : ''}label ${label}, expected 0..${numClasses - 1} (is this a ${cifar100 ? 'CIFAR-100' : 'CIFAR-10'} file?)`);
    }
    labels[i] = label;
    images.set(bytes.subarray(off + labelBytes, off + record), i * PIXELS);
  }
  const ds: Dataset = { length: n, channels: 3, height: 32, width: 32, numClasses, images, labels };
  if (!cifar100) ds.classNames = CIFAR10_CLASSES;
  return ds;
}

/** Concatenates datasets of the same image size and class count (e.g. CIFAR-10's five training batches). */
export function concatDatasets(parts: readonly Dataset[]): Dataset {
  if (parts.length === 0) throw new DatasetError('concatDatasets', 'no datasets to concatenate');
  const first = parts[0]!;
  for (const p of parts) {
    if (p.channels !== first.channels || p.height !== first.height || p.width !== first.width || p.numClasses !== first.numClasses) {
      throw new DatasetError('concatDatasets', `cannot concatenate ${p.channels}×${p.height}×${p.width} (${p.numClasses} classes) with ${first.channels}×${first.height}×${first.width} (${first.numClasses} classes)`);
    }
  }
  const length = parts.reduce((a, p) => a + p.length, 0);
  const images = new Uint8Array(parts.reduce((a, p) => a + p.images.length, 0));
  const labels = new Uint8Array(length);
  let io = 0;
  let lo = 0;
  for (const p of parts) {
    images.set(p.images, io);
    labels.set(p.labels, lo);
    io += p.images.length;
    lo += p.labels.length;
  }
  return { ...first, length, images, labels };
}
