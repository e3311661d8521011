import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { DatasetError } from '../../src/data/index.js';
import { loadFashionMnist, loadMnist, loadCifar10, loadCifar100, readDataFile } from '../../src/data/files.js';

const root = mkdtempSync(join(tmpdir(), 'resnet-ts-data-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Hand-built IDX bytes: magic 0x000008NN, big-endian uint32 dims, data. */
function idx(dims: number[], data: number[]): Uint8Array {
  const head: number[] = [0, 0, 8, dims.length];
  for (const d of dims) head.push((d >>> 24) & 255, (d >>> 16) & 255, (d >>> 8) & 255, d & 255);
  return Uint8Array.from([...head, ...data]);
}

/** n images of 2×3 where pixel k of image i = 10·i + k; labels given. */
function writeSplit(dir: string, prefix: string, labels: number[], gz: boolean): void {
  const n = labels.length;
  const px = Array.from({ length: n * 6 }, (_, k) => 10 * Math.floor(k / 6) + (k % 6));
  const put = (name: string, bytes: Uint8Array) => writeFileSync(join(dir, gz ? `${name}.gz` : name), gz ? gzipSync(bytes) : bytes);
  put(`${prefix}-images-idx3-ubyte`, idx([n, 2, 3], px));
  put(`${prefix}-labels-idx1-ubyte`, idx([n], labels));
}

describe('loadFashionMnist / loadMnist on small IDX files written to a temp dir', () => {
  it('gzipped files: train 3 images, test 2, 1×2×3, labels and pixels as written', () => {
    const dir = join(root, 'fm-gz');
    mkdirSync(dir);
    writeSplit(dir, 'train', [9, 0, 4], true);
    writeSplit(dir, 't10k', [1, 2], true);
    const { train, test } = loadFashionMnist(dir);
    expect([train.length, train.channels, train.height, train.width, train.numClasses]).toEqual([3, 1, 2, 3, 10]);
    expect(test.length).toBe(2);
    expect(Array.from(train.labels)).toEqual([9, 0, 4]);
    expect(Array.from(test.labels)).toEqual([1, 2]);
    expect(Array.from(train.images.subarray(6, 12))).toEqual([10, 11, 12, 13, 14, 15]);
    expect(train.classNames?.[9]).toBe('Ankle boot');
  });
  it('uncompressed files work too (loadMnist)', () => {
    const dir = join(root, 'mnist-raw');
    mkdirSync(dir);
    writeSplit(dir, 'train', [5], false);
    writeSplit(dir, 't10k', [7, 3], false);
    const { train, test } = loadMnist(dir);
    expect(Array.from(train.labels)).toEqual([5]);
    expect(Array.from(test.images.subarray(6))).toEqual([10, 11, 12, 13, 14, 15]);
  });
  it('missing directory → DatasetError naming it and the expected files', () => {
    const missing = join(root, 'no-such-dir');
    expect(() => loadFashionMnist(missing)).toThrow(DatasetError);
    expect(() => loadFashionMnist(missing)).toThrow(`dataset directory ${missing} does not exist; expected it to hold the Fashion-MNIST IDX files train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (optionally .gz)`);
  });
  it('missing file → DatasetError naming the paths tried', () => {
    const dir = join(root, 'fm-partial');
    mkdirSync(dir);
    writeSplit(dir, 'train', [1], true);
    expect(() => loadFashionMnist(dir)).toThrow(`missing Fashion-MNIST t10k images in ${dir}: expected one of ${join(dir, 't10k-images-idx3-ubyte')}`);
  });
  it('image/label count mismatch and out-of-range labels → DatasetError', () => {
    const dir = join(root, 'fm-bad');
    mkdirSync(dir);
    writeSplit(dir, 'train', [1, 2], true);
    writeFileSync(join(dir, 'train-labels-idx1-ubyte.gz'), gzipSync(idx([3], [1, 2, 3])));
    writeSplit(dir, 't10k', [1], true);
    expect(() => loadFashionMnist(dir)).toThrow('has 2 images but');
    writeFileSync(join(dir, 'train-labels-idx1-ubyte.gz'), gzipSync(idx([2], [1, 12])));
    expect(() => loadFashionMnist(dir)).toThrow('label 12 of item 1 is not below 10');
  });
  it('a truncated gzipped IDX file → DatasetError from readIdx naming the path', () => {
    const dir = join(root, 'fm-trunc');
    mkdirSync(dir);
    writeSplit(dir, 'train', [1, 2], true);
    writeSplit(dir, 't10k', [1], true);
    writeFileSync(join(dir, 't10k-images-idx3-ubyte.gz'), gzipSync(idx([1, 2, 3], [1, 2, 3])));
    expect(() => loadFashionMnist(dir)).toThrow(`${join(dir, 't10k-images-idx3-ubyte.gz')}: truncated body`);
  });
  it('corrupt gzip → DatasetError', () => {
    const p = join(root, 'corrupt.gz');
    writeFileSync(p, Uint8Array.from([0x1f, 0x8b, 8, 0, 1, 2, 3]));
    expect(() => readDataFile(p)).toThrow(DatasetError);
  });
});

function cifarRecord(labels: number[], fill: number): number[] {
  return [...labels, ...new Array(3072).fill(fill)];
}

describe('loadCifar10 / loadCifar100', () => {
  it('CIFAR-10: five training batches concatenated in order, test batch, found in cifar-10-batches-bin/', () => {
    const dir = join(root, 'c10');
    const inner = join(dir, 'cifar-10-batches-bin');
    mkdirSync(inner, { recursive: true });
    for (let b = 1; b <= 5; b++) writeFileSync(join(inner, `data_batch_${b}.bin`), Uint8Array.from([...cifarRecord([b], b), ...cifarRecord([b + 4 > 9 ? 0 : b + 4], 100 + b)]));
    writeFileSync(join(inner, 'test_batch.bin'), Uint8Array.from(cifarRecord([3], 42)));
    const { train, test } = loadCifar10(dir);
    expect(train.length).toBe(10);
    expect(Array.from(train.labels)).toEqual([1, 5, 2, 6, 3, 7, 4, 8, 5, 9]);
    expect(train.images[3 * 3072]).toBe(102);
    expect(test.length).toBe(1);
    expect(test.images[3071]).toBe(42);
  });
  it('CIFAR-10: a missing batch → DatasetError naming it', () => {
    const dir = join(root, 'c10-missing');
    mkdirSync(dir);
    writeFileSync(join(dir, 'test_batch.bin'), Uint8Array.from(cifarRecord([3], 42)));
    expect(() => loadCifar10(dir)).toThrow(`missing CIFAR-10 batch data_batch_1.bin in ${dir}`);
    expect(() => loadCifar10(join(root, 'nope'))).toThrow('does not exist');
  });
  it('CIFAR-10: a bad length → DatasetError naming the file and length', () => {
    const dir = join(root, 'c10-bad');
    mkdirSync(dir);
    for (let b = 1; b <= 5; b++) writeFileSync(join(dir, `data_batch_${b}.bin`), Uint8Array.from(cifarRecord([1], 0)));
    writeFileSync(join(dir, 'test_batch.bin'), new Uint8Array(100));
    expect(() => loadCifar10(dir)).toThrow(`${join(dir, 'test_batch.bin')}: length 100 is not a positive multiple of the 3073-byte`);
  });
  it('CIFAR-100: fine and coarse labels', () => {
    const dir = join(root, 'c100');
    mkdirSync(dir);
    writeFileSync(join(dir, 'train.bin'), Uint8Array.from([...cifarRecord([11, 55], 1), ...cifarRecord([2, 99], 2)]));
    writeFileSync(join(dir, 'test.bin'), gzipSync(Uint8Array.from(cifarRecord([19, 0], 3))));
    writeFileSync(join(dir, 'test.bin.gz'), gzipSync(Uint8Array.from(cifarRecord([19, 0], 3))));
    const fine = loadCifar100(dir);
    expect(Array.from(fine.train.labels)).toEqual([55, 99]);
    expect(fine.train.numClasses).toBe(100);
    const coarse = loadCifar100(dir, { coarse: true });
    expect(Array.from(coarse.train.labels)).toEqual([11, 2]);
    expect(Array.from(coarse.test.labels)).toEqual([19]);
  });
});
