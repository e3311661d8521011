/**
 * Data boundaries, table-driven: DataLoader settings, transforms with impossible sizes, the synthetic generator's
 * arguments, and IDX / CIFAR bytes that are not what they claim. Each row names the error class and message
 * fragments: the reader or transform in brackets and the offending size, file name, record or value.
 *
 * Not repeated here: batchSize 0 (test/data/loader.test.ts); IDX with magic 0x00010801, gzip data, type 0x0d, a
 * 10-byte header of 3 dims, a 2-byte file, a 5-byte body for 2×2×3, dims 0xffffffff×0xffffffff×9, trailing bytes;
 * CIFAR lengths 6147 / 3073-as-CIFAR-100 / 0 and label 10 (test/data/readers.test.ts); normalize's channel
 * mismatch and zero std, a crop larger than the padded image (test/data/transforms.test.ts); missing files and
 * directories, label/image count mismatches, corrupt gzip (test/data/files.test.ts).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AllocationError, data, Generator, models, ShapeError, Tensor, ValueError } from '../../src/index.js';
import { evaluate } from '../../src/train/trainer.js';
import { measured } from './alloc.js';
import { runRows, type Row } from './rows.js';

const { DataLoader, DatasetError } = data;

const dir = mkdtempSync(join(tmpdir(), 'resnet-ts-rel-data-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, bytes: Uint8Array): string => {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  return p;
};

const subdir = (name: string): string => {
  const p = join(dir, name);
  mkdirSync(p, { recursive: true });
  return p;
};

/** A consistent n-image dataset of c×h×w zeros, labels i mod 3. */
const ds = (n = 4, c = 1, h = 2, w = 2): data.Dataset => ({
  length: n, channels: c, height: h, width: w, numClasses: 3,
  images: new Uint8Array(n * c * h * w), labels: Uint8Array.from({ length: n }, (_, i) => i % 3),
});
const img = (...shape: number[]): Tensor => new Tensor(new Float32Array(shape.reduce((a, b) => a * b, 1)), shape);
const gen = new Generator(0);
/** IDX bytes: magic 0x000008NN, big-endian dims, then `body` bytes of zeros. */
const idx = (dims: number[], body: number): Uint8Array => {
  const out = new Uint8Array(4 + 4 * dims.length + body);
  const v = new DataView(out.buffer);
  v.setUint32(0, 0x800 | dims.length);
  dims.forEach((d, i) => v.setUint32(4 + 4 * i, d));
  return out;
};
/** CIFAR records: `labels[i]` is the label byte(s) of record i, then 3072 zero pixels. */
const cifar = (labels: number[][]): Uint8Array => Uint8Array.from(labels.flatMap((l) => [...l, ...new Array<number>(3072).fill(0)]));

describe('DataLoader and transforms', () => {
  const rows: Row[] = [
    ...([-1, 1.5, NaN, Infinity] as const).map((b): Row => [`DataLoader batchSize ${b}`, () => new DataLoader(ds(), { batchSize: b }), ValueError,
      ['[DataLoader]', `batch_size=${b}`]]),
    ["DataLoader batchSize '2' (a string)", () => new DataLoader(ds(), { batchSize: '2' as unknown as number }), ValueError, ['[DataLoader]', 'batch_size=2']],
    ['DataLoader without batchSize', () => new DataLoader(ds(), {} as data.DataLoaderOptions), ValueError, ['[DataLoader]', 'batch_size=undefined']],
    ['DataLoader seed NaN', () => new DataLoader(ds(), { batchSize: 2, seed: NaN }), ValueError, ['[DataLoader]', 'seed', 'NaN']],
    ['DataLoader seed Infinity', () => new DataLoader(ds(), { batchSize: 2, seed: Infinity }), ValueError, ['[DataLoader]', 'seed', 'Infinity']],
    ...([0, -1, 1.5, NaN] as const).map((s): Row => [`randomCrop size ${s}`, () => data.randomCrop(s), ValueError, ['[randomCrop]', 'size', String(s)]]),
    ['randomCrop size [2, 0]', () => data.randomCrop([2, 0]), ValueError, ['[randomCrop]', 'size', '2,0']],
    ...([-1, 1.5, NaN] as const).map((p): Row => [`randomCrop padding ${p}`, () => data.randomCrop(2, p), ValueError, ['[randomCrop]', 'padding', String(p)]]),
    ['randomCrop given a 2-D tensor [4,4]', () => data.randomCrop(2)(img(4, 4), gen), ShapeError, ['[randomCrop]', '[4, 4]']],
    ['randomCrop given a 5-D tensor', () => data.randomCrop(2)(img(1, 1, 1, 4, 4), gen), ShapeError, ['[randomCrop]', '[1, 1, 1, 4, 4]']],
    ['randomCrop([3, 5], 1) of a batch of 2×2 images: width 5 > 4', () => data.randomCrop([3, 5], 1)(img(2, 1, 2, 2), gen), ShapeError,
      ['[randomCrop]', 'Required crop size (3, 5)', '(4, 4)']],
    ...([-0.1, 1.5, NaN] as const).map((p): Row => [`randomHorizontalFlip p ${p}`, () => data.randomHorizontalFlip(p), ValueError,
      ['[randomHorizontalFlip]', String(p)]]),
    ['randomHorizontalFlip given a 2-D tensor', () => data.randomHorizontalFlip(1)(img(4, 4), gen), ShapeError, ['[randomHorizontalFlip]', '[4, 4]']],
    ['normalize with 2 means and 1 std', () => data.normalize([0, 0], [1]), ValueError, ['[normalize]', 'mean has 2 values but std has 1']],
    ['normalize std 1e-50 (zero in float32)', () => data.normalize([0], [1e-50]), ValueError, ['[normalize]', 'std', '1e-50']],
    ['normalize given a 2-D tensor', () => data.normalize([0], [1])(img(2, 2), gen), ShapeError, ['[normalize]', '[2, 2]']],
    ['normalize with 3 channel stats given 1 channel', () => data.normalize([0, 0, 0], [1, 1, 1])(img(2, 1, 4, 4), gen), ShapeError,
      ['[normalize]', '3 values', '1 channels', '[2, 1, 4, 4]']],
    // issue 10: DataLoader checks its dataset and options at construction
    ['D1 DataLoader over images 5 bytes for 4×1×2×2', () => new DataLoader({ ...ds(), images: new Uint8Array(5) }, { batchSize: 4 }), DatasetError,
      ['images has 5 bytes', '4×1×2×2']],
    ['D1b DataLoader over 2 labels for 4 images', () => new DataLoader({ ...ds(), labels: new Uint8Array(2) }, { batchSize: 4 }), DatasetError, ['2 labels for 4 images']],
    ['D1c DataLoader over label 9 of 3 classes', () => new DataLoader({ ...ds(), labels: Uint8Array.from([0, 1, 9, 2]) }, { batchSize: 4 }), DatasetError, ['label 9']],
    ['D2 DataLoader shuffle over an empty dataset', () => new DataLoader(ds(0), { batchSize: 2, shuffle: true }), ValueError, ['[DataLoader]', 'num_samples=0']],
    ['D3 DataLoader scale NaN', () => new DataLoader(ds(), { batchSize: 2, scale: NaN }), ValueError, ['[DataLoader]', 'scale', 'NaN']],
    ['D4 DataLoader transform returning a number', () => [...new DataLoader(ds(), { batchSize: 4, transform: () => 5 as unknown as Tensor })], ValueError,
      ['[DataLoader]', 'transform']],
    ['DataLoader transform returning one image for a batch of 4', () => [...new DataLoader(ds(), { batchSize: 4, transform: () => img(1, 2, 2) })], ValueError,
      ['[DataLoader]', 'transform', 'N = 4', '[1, 2, 2]']],
    ["DataLoader transform 'flip' (a string)", () => new DataLoader(ds(), { batchSize: 2, transform: 'flip' as unknown as data.Transform }), ValueError,
      ['[DataLoader]', 'transform', 'string']],
    ['DataLoader over images given as a plain array', () => new DataLoader({ ...ds(), images: [0, 0] as unknown as Uint8Array }, { batchSize: 2 }), DatasetError,
      ['images must be a Uint8Array', 'Array']],
    ['D5 normalize std NaN', () => data.normalize([0], [NaN]), ValueError, ['[normalize]', 'std', 'NaN']],
    ['D5b normalize mean NaN', () => data.normalize([NaN], [1]), ValueError, ['[normalize]', 'mean', 'NaN']],
    ['randomCrop(2, 2^40) of a 4×4 image: 2^41 crop positions (gen.randint would never return)', () => data.randomCrop(2, 2 ** 40)(img(1, 1, 4, 4), gen),
      ValueError, ['[randomCrop]', 'padding 1099511627776', '[1, 1, 4, 4]']],
  ];
  runRows(rows);
});

describe('syntheticDataset and Dataset consistency', () => {
  const rows: Row[] = [
    ['syntheticDataset n -1', () => data.syntheticDataset({ n: -1 }), ValueError, ['[syntheticDataset]', 'n', '-1']],
    ['syntheticDataset n 1.5', () => data.syntheticDataset({ n: 1.5 }), ValueError, ['[syntheticDataset]', 'n', '1.5']],
    ['syntheticDataset channels 0', () => data.syntheticDataset({ n: 2, channels: 0 }), ValueError, ['[syntheticDataset]', 'channels', '0']],
    ['syntheticDataset size 1.5', () => data.syntheticDataset({ n: 2, size: 1.5 }), ValueError, ['[syntheticDataset]', 'size', '1.5']],
    ['syntheticDataset numClasses 0', () => data.syntheticDataset({ n: 2, numClasses: 0 }), ValueError, ['[syntheticDataset]', 'numClasses', '0']],
    ['syntheticDataset numClasses 257 (labels are bytes)', () => data.syntheticDataset({ n: 2, numClasses: 257 }), ValueError,
      ['[syntheticDataset]', 'numClasses', '257']],
    ['D6 syntheticDataset noise NaN', () => data.syntheticDataset({ n: 2, noise: NaN }), ValueError, ['[syntheticDataset]', 'noise', 'NaN']],
    ['D6b syntheticDataset noise -1', () => data.syntheticDataset({ n: 2, noise: -1 }), ValueError, ['[syntheticDataset]', 'noise', '-1']],
    ['D6c syntheticDataset seed NaN', () => data.syntheticDataset({ n: 2, seed: NaN }), ValueError, ['[syntheticDataset]', 'seed', 'NaN']],
    ['D7 evaluate on an empty dataset', () => evaluate(models.resnet20({ widths: [4, 8, 8] }), { length: 0, channels: 3, height: 2, width: 2, numClasses: 3, images: new Uint8Array(0), labels: new Uint8Array(0) }), ValueError, ['[evaluate]', 'empty']],
    ['checkDataset: images 5 bytes for 4×1×2×2', () => data.checkDataset({ ...ds(), images: new Uint8Array(5) }, 'train'), DatasetError,
      ['[dataset]', 'train', 'images has 5 bytes', '4×1×2×2 = 16']],
    ['checkDataset: 2 labels for 4 images', () => data.checkDataset({ ...ds(), labels: new Uint8Array(2) }), DatasetError, ['[dataset]', '2 labels for 4 images']],
    ['checkDataset: label 9 with 3 classes', () => data.checkDataset({ ...ds(), labels: Uint8Array.from([0, 1, 9, 2]) }), DatasetError,
      ['[dataset]', 'label 9 of item 2', 'numClasses 3']],
    ['checkDataset: length 2.5', () => data.checkDataset({ ...ds(), length: 2.5 }), DatasetError, ['[dataset]', 'length', '2.5']],
    ['concatDatasets of nothing', () => data.concatDatasets([]), DatasetError, ['[concatDatasets]', 'no datasets']],
    ['concatDatasets of 1×2×2 and 3×2×2 images', () => data.concatDatasets([ds(1, 1), ds(1, 3)]), DatasetError,
      ['[concatDatasets]', '3×2×2', '1×2×2']],
  ];
  runRows(rows);

  // Run under the allocation meter: before the up-front check, this call asked for ~10 GB (labels, a permutation of
  // 2^31 int32s, then the images) before failing.
  for (const [name, opts, cls, fragments] of [
    ['syntheticDataset({ n: 2^31, size: 2^16 }): 2.8e19 bytes of images', { n: 2 ** 31, size: 2 ** 16 }, AllocationError,
      ['[syntheticDataset]', '2147483648 images of 3×65536×65536']],
    ['syntheticDataset({ n: 2^31, channels: 1, size: 1 }): 2^31 bytes fit, but item indices are int32', { n: 2 ** 31, channels: 1, size: 1 }, ValueError,
      ['[syntheticDataset]', 'n must be at most 2^31 - 1', '2147483648']],
  ] as const) {
    it(`${name}: refused before allocating anything`, () => {
      const m = measured(() => data.syntheticDataset(opts));
      expect(m.error).toBeInstanceOf(cls);
      for (const f of fragments) expect((m.error as Error).message).toContain(f);
      expect(m.bytes, 'bytes requested before the error').toBe(0);
    });
  }
});

describe('IDX and CIFAR bytes', () => {
  const le = Uint8Array.from([3, 8, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9, 9]); // a little-endian header
  const rows: Row[] = [
    ['IDX declaring 0 dims', () => data.readIdx(Uint8Array.from([0, 0, 8, 0]), 'x.idx'), DatasetError, ['[readIdx]', 'x.idx', '0x00000800', '0 dimensions']],
    ['IDX declaring 255 dims in a 4-byte file', () => data.readIdx(Uint8Array.from([0, 0, 8, 255]), 'x.idx'), DatasetError,
      ['[readIdx]', 'truncated header', '1024-byte header', '4 bytes']],
    ['IDX written little-endian (magic 0x03080000)', () => data.readIdx(le, 'train-images-idx3-ubyte'), DatasetError,
      ['[readIdx]', 'train-images-idx3-ubyte', 'bad magic number 0x03080000']],
    ['IDX labels claiming 2^31 items with a 1-byte body: fails before allocating', () => data.readIdx(idx([2 ** 31], 1), 'labels.idx'), DatasetError,
      ['[readIdx]', 'labels.idx', 'truncated body', 'need 2147483648 bytes', 'found 1']],
    ['IDX dims 65536×65536 (product 2^32, not wrapped to 0) with an empty body', () => data.readIdx(idx([65536, 65536], 0)), DatasetError,
      ['[readIdx]', 'truncated body', '65536×65536', '4294967296']],
    ['IDX images 2×28×28 cut at 1000 of 1568 body bytes', () => data.readIdx(idx([2, 28, 28], 1000), 't10k-images-idx3-ubyte'), DatasetError,
      ['t10k-images-idx3-ubyte', 'truncated body', '2×28×28', 'need 1568', 'found 1000']],
    ['loadIdxPair: an images file with 2 dims', () => data.loadIdxPair(file('flat-images', idx([4, 4], 16)), file('labels-ok', idx([4], 4))), DatasetError,
      ['[loadIdxPair]', 'flat-images', '3 dims', '4×4']],
    ['loadIdxPair: a labels file with 3 dims', () => data.loadIdxPair(file('images-ok', idx([1, 2, 2], 4)), file('cube-labels', idx([1, 1, 1], 1))), DatasetError,
      ['[loadIdxPair]', 'cube-labels', '1 dim', '1×1×1']],
    ['loadIdxPair: the labels file given as images', () => data.loadIdxPair(file('labels-as-images', idx([3], 3)), file('labels-3', idx([3], 3))), DatasetError,
      ['[loadIdxPair]', 'labels-as-images', '3 dims']],
    ['readDataFile of a directory', () => data.readDataFile(subdir('a-dir')), DatasetError,
      ['[readDataFile]', 'a-dir']],
    ['CIFAR-10 record without its label byte (3072 bytes)', () => data.readCifarBatch(new Uint8Array(3072), { name: 'data_batch_1.bin' }), DatasetError,
      ['[readCifarBatch]', 'data_batch_1.bin', 'length 3072', '3073-byte CIFAR-10 record']],
    ['two CIFAR-100 records read as CIFAR-10 (6148 bytes)', () => data.readCifarBatch(cifar([[3, 40], [1, 2]]), { name: 'train.bin' }), DatasetError,
      ['[readCifarBatch]', 'train.bin', 'length 6148', '3073-byte']],
    ['CIFAR-10 label 255 in record 1', () => data.readCifarBatch(cifar([[1], [255]]), { name: 'test_batch.bin' }), DatasetError,
      ['[readCifarBatch]', 'test_batch.bin', 'record 1 has label 255', '0..9']],
    ['CIFAR-100 fine label 100', () => data.readCifarBatch(cifar([[0, 100]]), { cifar100: true, name: 'train.bin' }), DatasetError,
      ['[readCifarBatch]', 'train.bin', 'record 0 has fine label 100', '0..99']],
    ['CIFAR-100 coarse label 20', () => data.readCifarBatch(cifar([[19, 5], [20, 5]]), { coarse: true, name: 'test.bin' }), DatasetError,
      ['[readCifarBatch]', 'test.bin', 'record 1 has coarse label 20', '0..19']],
  ];
  runRows(rows);
});
