import { describe, expect, it } from 'vitest';
import { readIdx, writeIdx, readCifarBatch, concatDatasets, DatasetError } from '../../src/data/index.js';
import { ResnetTsError } from '../../src/index.js';

/** Captures the error `fn` throws (so one call can be checked for class and text). */
function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a throw');
}

describe('readIdx', () => {
  it('labels 0x00000801: 3 labels', () => {
    const bytes = Uint8Array.from([0, 0, 8, 1, 0, 0, 0, 3, 7, 0, 9]);
    const r = readIdx(bytes);
    expect(r.dims).toEqual([3]);
    expect(Array.from(r.data)).toEqual([7, 0, 9]);
  });
  it('images 0x00000803: 2 images of 2×3 (big-endian dims), data is a view', () => {
    const body = [1, 2, 3, 4, 5, 6, 10, 20, 30, 40, 50, 60];
    const bytes = Uint8Array.from([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3, ...body]);
    const r = readIdx(bytes);
    expect(r.dims).toEqual([2, 2, 3]);
    expect(Array.from(r.data)).toEqual(body);
    expect(r.data.buffer).toBe(bytes.buffer);
  });
  it('a dim ≥ 256 uses all four big-endian bytes (0x00000104 = 260)', () => {
    const bytes = new Uint8Array(8 + 260);
    bytes.set([0, 0, 8, 1, 0, 0, 1, 4]);
    expect(readIdx(bytes).dims).toEqual([260]);
  });
  it('wrong magic → DatasetError naming the file and the number', () => {
    const e = thrown(() => readIdx(Uint8Array.from([0, 1, 8, 1, 0, 0, 0, 0]), 'x.idx'));
    expect(e).toBeInstanceOf(DatasetError);
    expect(e).toBeInstanceOf(ResnetTsError);
    expect(e.message).toBe('[readIdx] x.idx: bad magic number 0x00010801, expected 0x00000801 (labels) or 0x00000803 (images)');
  });
  it('gzip data is recognised in the message', () => {
    expect(thrown(() => readIdx(Uint8Array.from([0x1f, 0x8b, 8, 0, 0, 0]))).message).toContain('this is gzip data: gunzip it first');
  });
  it('non-byte data type → DatasetError', () => {
    expect(thrown(() => readIdx(Uint8Array.from([0, 0, 0x0d, 1, 0, 0, 0, 0]))).message).toContain('has data type 0x0d; only 0x08 (unsigned byte) is supported');
  });
  it('truncated header → DatasetError', () => {
    const e = thrown(() => readIdx(Uint8Array.from([0, 0, 8, 3, 0, 0, 0, 2, 0, 0])));
    expect(e).toBeInstanceOf(DatasetError);
    expect(e.message).toContain('truncated header: 3 dims need a 16-byte header, the data has 10 bytes');
  });
  it('too short for a magic number → DatasetError', () => {
    expect(thrown(() => readIdx(Uint8Array.from([0, 0]))).message).toContain('2 bytes is too short');
  });
  it('truncated body (dims product exceeds the bytes) → DatasetError', () => {
    const bytes = Uint8Array.from([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5]);
    const e = thrown(() => readIdx(bytes, 'train-images-idx3-ubyte'));
    expect(e).toBeInstanceOf(DatasetError);
    expect(e.message).toBe('[readIdx] train-images-idx3-ubyte: truncated body: dims 2×2×3 need 12 bytes after the 16-byte header, found 5');
  });
  it('huge dims (product far beyond the bytes) → DatasetError, not an allocation', () => {
    const bytes = Uint8Array.from([0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 9, 1]);
    expect(thrown(() => readIdx(bytes)).message).toContain('truncated body: dims 4294967295×4294967295×9');
  });
  it('trailing bytes → DatasetError', () => {
    expect(thrown(() => readIdx(Uint8Array.from([0, 0, 8, 1, 0, 0, 0, 1, 5, 6]))).message).toContain('trailing bytes: dims 1 need 1 bytes after the 8-byte header, found 2');
  });
  it('writeIdx writes the same bytes as the hand-built header', () => {
    expect(Array.from(writeIdx([2, 1, 2], Uint8Array.from([9, 8, 7, 6])))).toEqual([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2, 9, 8, 7, 6]);
    expect(() => writeIdx([3], new Uint8Array(2))).toThrow(DatasetError);
  });
});

/** One CIFAR record: label byte(s) then 3072 pixels where pixel k = (k * mul + add) & 255. */
function record(labels: number[], mul: number, add: number): number[] {
  const px = Array.from({ length: 3072 }, (_, k) => (k * mul + add) & 255);
  return [...labels, ...px];
}

describe('readCifarBatch', () => {
  it('CIFAR-10: two records (label + 3072 pixels, CHW order kept)', () => {
    const bytes = Uint8Array.from([...record([3], 1, 0), ...record([9], 7, 5)]);
    const ds = readCifarBatch(bytes);
    expect([ds.length, ds.channels, ds.height, ds.width, ds.numClasses]).toEqual([2, 3, 32, 32, 10]);
    expect(Array.from(ds.labels)).toEqual([3, 9]);
    // record 1, green channel (c=1), row 2, col 5: pixel k = 1024 + 2·32 + 5
    const k = 1024 + 2 * 32 + 5;
    expect(ds.images[3072 + k]).toBe((k * 7 + 5) & 255);
    expect(ds.images[k]).toBe(k & 255);
    expect(ds.classNames?.[3]).toBe('cat');
  });
  it('CIFAR-100: fine labels by default, coarse on request', () => {
    const bytes = Uint8Array.from([...record([4, 77], 3, 1), ...record([19, 99], 5, 2)]);
    const fine = readCifarBatch(bytes, { cifar100: true });
    expect(fine.numClasses).toBe(100);
    expect(Array.from(fine.labels)).toEqual([77, 99]);
    const coarse = readCifarBatch(bytes, { coarse: true });
    expect(coarse.numClasses).toBe(20);
    expect(Array.from(coarse.labels)).toEqual([4, 19]);
    expect(coarse.images[3072 + 10]).toBe((10 * 5 + 2) & 255);
  });
  it('length not a multiple of the record → DatasetError naming the file and length', () => {
    const e = thrown(() => readCifarBatch(new Uint8Array(3073 * 2 + 1), { name: 'data_batch_1.bin' }));
    expect(e).toBeInstanceOf(DatasetError);
    expect(e.message).toBe('[readCifarBatch] data_batch_1.bin: length 6147 is not a positive multiple of the 3073-byte CIFAR-10 record (1 label byte + 3072 pixel bytes)');
    expect(thrown(() => readCifarBatch(new Uint8Array(3073), { cifar100: true, name: 'train.bin' })).message).toContain('train.bin: length 3073 is not a positive multiple of the 3074-byte CIFAR-100 record');
    expect(thrown(() => readCifarBatch(new Uint8Array(0))).message).toContain('length 0');
  });
  it('out-of-range label → DatasetError', () => {
    expect(thrown(() => readCifarBatch(Uint8Array.from(record([10], 1, 0)))).message).toContain('record 0 has label 10, expected 0..9');
  });
  it('concatDatasets joins batches in order', () => {
    const a = readCifarBatch(Uint8Array.from(record([1], 1, 0)));
    const b = readCifarBatch(Uint8Array.from([...record([2], 2, 0), ...record([3], 3, 0)]));
    const c = concatDatasets([a, b]);
    expect(c.length).toBe(3);
    expect(Array.from(c.labels)).toEqual([1, 2, 3]);
    expect(c.images[2 * 3072 + 5]).toBe(15);
  });
});
