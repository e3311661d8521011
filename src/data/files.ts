/**
 * Loading datasets from disk (Node only: the one file in src/data that imports node:fs and node:zlib).
 * Files may be gzipped (detected by the 1f 8b magic bytes, whatever their name).
 */

import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { concatDatasets, readCifarBatch } from './cifar.js';
import { DatasetError, FASHION_MNIST_CLASSES, MNIST_CLASSES, type Dataset } from './dataset.js';
import { readIdx } from './idx.js';

/** Reads a file, gunzipping it if it starts with the gzip magic bytes. Missing or unreadable → DatasetError. */
export function readDataFile(path: string): Uint8Array {
  let raw: Uint8Array;
  try {
    raw = readFileSync(path);
  } catch (e) {
    throw new DatasetError('readDataFile', `cannot read ${path}: ${(e as Error).message}`);
  }
  if (raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b) {
    try {
      return gunzipSync(raw);
    } catch (e) {
      throw new DatasetError('readDataFile', `${path}: corrupt gzip data: ${(e as Error).message}`);
    }
  }
  return raw;
}

function checkDir(op: string, dir: string, expected: string): void {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new DatasetError(op, `dataset directory ${dir} does not exist; expected it to hold ${expected}`);
  }
}

/** The first existing path among `dir/name` for the candidate names; else DatasetError listing what was tried. */
function findFile(op: string, dir: string, names: readonly string[], what: string): string {
  for (const n of names) {
    const p = join(dir, n);
    if (existsSync(p)) return p;
  }
  throw new DatasetError(op, `missing ${what} in ${dir}: expected one of ${names.map((n) => join(dir, n)).join(', ')}`);
}

/** IDX file names as distributed (with .gz, and the "train-images.idx3-ubyte" spelling some mirrors use). */
function idxNames(prefix: 'train' | 't10k', kind: 'images' | 'labels'): string[] {
  const d = kind === 'images' ? 3 : 1;
  const names = [`${prefix}-${kind}-idx${d}-ubyte`, `${prefix}-${kind}.idx${d}-ubyte`];
  return names.flatMap((n) => [n, `${n}.gz`]);
}

/** An images IDX file (N, H, W) and a labels IDX file (N) as a 1-channel Dataset. */
export function loadIdxPair(imagesPath: string, labelsPath: string, numClasses = 10, op = 'loadIdxPair'): Dataset {
  const im = readIdx(readDataFile(imagesPath), imagesPath);
  const lb = readIdx(readDataFile(labelsPath), labelsPath);
  if (im.dims.length !== 3) throw new DatasetError(op, `${imagesPath}: expected images with 3 dims (N, rows, cols), got ${im.dims.join('×')}`);
  if (lb.dims.length !== 1) throw new DatasetError(op, `${labelsPath}: expected labels with 1 dim (N), got ${lb.dims.join('×')}`);
  const [n, h, w] = im.dims as [number, number, number];
  if (lb.dims[0] !== n) throw new DatasetError(op, `${imagesPath} has ${n} images but ${labelsPath} has ${lb.dims[0]} labels`);
  for (let i = 0; i < n; i++) {
    if (lb.data[i]! >= numClasses) throw new DatasetError(op, `${labelsPath}: label ${lb.data[i]} of item ${i} is not below ${numClasses}`);
  }
  return { length: n, channels: 1, height: h, width: w, numClasses, images: im.data, labels: lb.data };
}

function loadMnistLike(op: string, dir: string, title: string, classNames: readonly string[]): { train: Dataset; test: Dataset } {
  const all = ['train', 't10k'].flatMap((p) => ['images', 'labels'].map((k) => idxNames(p as 'train', k as 'images')[0]!));
  checkDir(op, dir, `the ${title} IDX files ${all.join(', ')} (optionally .gz)`);
  const split = (prefix: 'train' | 't10k'): Dataset => {
    const images = findFile(op, dir, idxNames(prefix, 'images'), `${title} ${prefix} images`);
    const labels = findFile(op, dir, idxNames(prefix, 'labels'), `${title} ${prefix} labels`);
    return { ...loadIdxPair(images, labels, 10, op), classNames };
  };
  return { train: split('train'), test: split('t10k') };
}

/** Fashion-MNIST (60000 train + 10000 test, 1×28×28, 10 classes) from the IDX files in `dir`. */
export function loadFashionMnist(dir = '/usr/share/datasets/fashion-mnist'): { train: Dataset; test: Dataset } {
  return loadMnistLike('loadFashionMnist', dir, 'Fashion-MNIST', FASHION_MNIST_CLASSES);
}

/** MNIST (60000 train + 10000 test, 1×28×28, 10 classes) from the IDX files in `dir`. */
export function loadMnist(dir = '/usr/share/datasets/mnist'): { train: Dataset; test: Dataset } {
  return loadMnistLike('loadMnist', dir, 'MNIST', MNIST_CLASSES);
}

/** `dir` itself, or its standard subdirectory from the tarball, whichever holds `probe`. */
function resolveCifarDir(dir: string, sub: string, probe: string): string {
  if (existsSync(join(dir, probe)) || existsSync(join(dir, `${probe}.gz`))) return dir;
  const inner = join(dir, sub);
  return existsSync(join(inner, probe)) || existsSync(join(inner, `${probe}.gz`)) ? inner : dir;
}

/**
 * CIFAR-10 binary version (50000 train from data_batch_1..5.bin, 10000 test from test_batch.bin; 3×32×32) from `dir`
 * or `dir/cifar-10-batches-bin`.
 */
export function loadCifar10(dir: string): { train: Dataset; test: Dataset } {
  const op = 'loadCifar10';
  const files = ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin', 'test_batch.bin'];
  checkDir(op, dir, `the CIFAR-10 binary files ${files.join(', ')}`);
  const d = resolveCifarDir(dir, 'cifar-10-batches-bin', 'test_batch.bin');
  const read = (f: string): Dataset => {
    const p = findFile(op, d, [f, `${f}.gz`], `CIFAR-10 batch ${f}`);
    return readCifarBatch(readDataFile(p), { name: p });
  };
  const train = concatDatasets(files.slice(0, 5).map(read));
  return { train, test: read('test_batch.bin') };
}

/**
 * CIFAR-100 binary version (train.bin 50000, test.bin 10000; 3×32×32) from `dir` or `dir/cifar-100-binary`, with the
 * 100 fine labels, or the 20 coarse ones if `coarse`.
 */
export function loadCifar100(dir: string, opts: { coarse?: boolean } = {}): { train: Dataset; test: Dataset } {
  const op = 'loadCifar100';
  checkDir(op, dir, 'the CIFAR-100 binary files train.bin, test.bin');
  const d = resolveCifarDir(dir, 'cifar-100-binary', 'test.bin');
  const read = (f: string): Dataset => {
    const p = findFile(op, d, [f, `${f}.gz`], `CIFAR-100 ${f}`);
    return readCifarBatch(readDataFile(p), { cifar100: true, coarse: opts.coarse === true, name: p });
  };
  return { train: read('train.bin'), test: read('test.bin') };
}
