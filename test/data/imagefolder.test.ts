// ImageFolder against torchvision.datasets.ImageFolder (test/fixtures/gen_imagefolder.py), and the DataLoader over
// it: lazy decoding, bad files, worker threads giving the same batches as the main thread.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DatasetError } from '../../src/data/dataset.js';
import * as T from '../../src/data/image-transforms.js';
import { ImageFolder } from '../../src/data/imagefolder.js';
import { DataLoader } from '../../src/data/loader.js';
import { Generator } from '../../src/random.js';
import { removeCompiledLoaderWorkers, useCompiledLoaderWorkers } from './loader-scripts.js';

const DIR = join(__dirname, '..', 'fixtures', 'imagefolder');
const ROOT = join(DIR, 'folder');
const M = JSON.parse(readFileSync(join(DIR, 'imagefolder.json'), 'utf8')) as {
  classes: string[]; class_to_idx: Record<string, number>; samples: [string, number][]; targets: number[];
  pipeline: { items: { file: string; label: number; x: { shape: number[]; data: string } }[] };
};
const MEAN = [0.485, 0.456, 0.406];
const STD = [0.229, 0.224, 0.225];
const rel = (p: string): string => p.slice(ROOT.length + 1).split('\\').join('/');

let tmp: string;
beforeAll(() => {
  useCompiledLoaderWorkers();
  tmp = mkdtempSync(join(tmpdir(), 'resnet-ts-imagefolder-'));
}, 60_000); // transpiling the worker's modules takes seconds on a loaded machine
afterAll(() => {
  removeCompiledLoaderWorkers();
  rmSync(tmp, { recursive: true, force: true });
});

/** A copy of the fixture folder with one corrupt JPEG added to class 'dog'. */
function folderWithBadFile(): { root: string; bad: string } {
  const root = join(tmp, `bad-${Math.random().toString(36).slice(2)}`);
  cpSync(ROOT, root, { recursive: true });
  const bad = join(root, 'dog', 'd0_truncated.jpg');
  writeFileSync(bad, readFileSync(join(ROOT, 'cat', 'c1.jpg')).subarray(0, 300));
  return { root, bad };
}

describe('ImageFolder follows torchvision', () => {
  const ds = new ImageFolder(ROOT);
  it('classes, classToIdx, samples (sorted, recursive, extension filter case-insensitive), targets', () => {
    expect(ds.classes).toEqual(M.classes);
    expect({ ...ds.classToIdx }).toEqual(M.class_to_idx);
    expect(ds.samples.map(([p, c]) => [rel(p), c])).toEqual(M.samples);
    expect(ds.targets).toEqual(M.targets);
    expect(ds.length).toBe(8);
    expect(ds.numClasses).toBe(3);
  });
  it('Resize(14) CenterCrop(12) ToTensor Normalize: every item equals torchvision within float32 rounding', () => {
    const t = T.compose([T.resize(14), T.centerCrop(12), T.toTensor(), T.normalize(MEAN, STD)]);
    const tds = new ImageFolder(ROOT, { transform: t });
    let worst = 0;
    for (let i = 0; i < tds.length; i++) {
      const want = M.pipeline.items[i]!;
      const item = tds.getItem(i, new Generator(0));
      if ('skipped' in item) throw new Error('skipped');
      const img = item.image as T.FloatImage;
      expect([rel(tds.describe(i)), item.label]).toEqual([want.file, want.label]);
      expect([img.channels, img.height, img.width]).toEqual(want.x.shape);
      const ref = new Float32Array(new Uint8Array(Buffer.from(want.x.data, 'base64')).buffer);
      for (let k = 0; k < ref.length; k++) worst = Math.max(worst, Math.abs(img.data[k]! - ref[k]!) / Math.max(1, Math.abs(ref[k]!)));
    }
    // one float32 ulp near 1 is 1.2e-7; the bytes before ToTensor are equal, so any difference is the last bit
    expect(worst).toBeLessThan(2.4e-7);
  });
  it('a missing root, a root without class folders, a class without images: DatasetError naming them', () => {
    expect(() => new ImageFolder(join(tmp, 'nope'))).toThrow(/\[ImageFolder\] .*nope is not a directory/);
    expect(() => new ImageFolder(join(ROOT, 'zebra'))).toThrow(/Couldn't find any class folder in .*zebra/);
    expect(() => new ImageFolder(ROOT, { extensions: ['.bmp'] })).toThrow(/Found no valid file for the classes cat, dog, zebra/);
    expect(() => new ImageFolder(ROOT, { classes: ['cat', 'dog'] })).toThrow(/folders 'zebra' that are not among the given classes/);
  });
  it('classes option: a validation folder indexed like the training one', () => {
    const v = new ImageFolder(ROOT, { classes: ['ant', 'cat', 'dog', 'zebra'] });
    expect(v.targets).toEqual(M.targets.map((c) => c + 1));
    expect(v.numClasses).toBe(4);
  });
});

describe('bad files', () => {
  it('decoding is lazy: the folder opens; the batch holding the bad file throws DatasetError naming it', () => {
    const { root, bad } = folderWithBadFile();
    const ds = new ImageFolder(root, { transform: T.compose([T.resize([8, 8]), T.toTensor()]) });
    expect(ds.length).toBe(9);
    const loader = new DataLoader(ds, { batchSize: 4 });
    expect(() => [...loader.epochBatches(0)]).toThrow(DatasetError);
    expect(() => [...loader.epochBatches(0)]).toThrow(`[ImageFolder] ${bad}: [jpeg]`);
  });
  it('skipBadFiles leaves it out of its batch and lists it in skipped', () => {
    const { root, bad } = folderWithBadFile();
    const ds = new ImageFolder(root, { transform: T.compose([T.resize([8, 8]), T.toTensor()]), skipBadFiles: true });
    const batches = [...new DataLoader(ds, { batchSize: 4 }).epochBatches(0)];
    expect(batches.map((b) => b.y.length)).toEqual([4, 3, 1]);
    expect([...ds.skipped]).toEqual([bad]);
  });
  it('a file that fails in a worker surfaces as the same DatasetError', () => {
    const { root, bad } = folderWithBadFile();
    const ds = new ImageFolder(root, { transform: T.compose([T.resize([8, 8]), T.toTensor()]) });
    let main: unknown;
    let worker: unknown;
    try { [...new DataLoader(ds, { batchSize: 4 }).epochBatches(0)]; } catch (e) { main = e; }
    try { [...new DataLoader(ds, { batchSize: 4, numWorkers: 2 }).epochBatches(0)]; } catch (e) { worker = e; }
    expect(worker).toBeInstanceOf(DatasetError);
    expect((worker as Error).message).toBe((main as Error).message);
    expect((worker as Error).message).toContain(bad);
  });
  it('images of different sizes in one batch: DatasetError naming both files', () => {
    const ds = new ImageFolder(ROOT, { transform: T.toTensor() });
    expect(() => [...new DataLoader(ds, { batchSize: 2 }).epochBatches(0)]).toThrow(/cannot batch .*c2_progressive\.jpg \(3×52×37\) with .*c1\.jpg \(3×33×41\)/);
  });
});

describe('DataLoader over ImageFolder', () => {
  const train = T.compose([T.randomResizedCrop(10), T.randomHorizontalFlip(), T.colorJitter({ brightness: 0.4, contrast: 0.4, saturation: 0.4 }), T.toTensor(), T.normalize(MEAN, STD)]);
  const ds = new ImageFolder(ROOT, { transform: train });
  const epoch = (o: { numWorkers?: number; prefetch?: number; seed?: number }, k: number) =>
    [...new DataLoader(ds, { batchSize: 3, shuffle: true, seed: o.seed ?? 7, numWorkers: o.numWorkers, prefetch: o.prefetch }).epochBatches(k)]
      .map((b) => ({ x: Array.from(b.x.data), shape: b.x.shape, y: Array.from(b.y), indices: Array.from(b.indices) }));

  it('batches and order are identical for numWorkers 0, 1 and 2', () => {
    const e0 = epoch({ numWorkers: 0 }, 1);
    expect(e0.map((b) => b.shape)).toEqual([[3, 3, 10, 10], [3, 3, 10, 10], [2, 3, 10, 10]]);
    expect(epoch({ numWorkers: 1 }, 1)).toEqual(e0);
    expect(epoch({ numWorkers: 2, prefetch: 1 }, 1)).toEqual(e0);
  });
  it('one loader with workers, reused over epochs (and after an epoch left early), equals numWorkers 0', () => {
    const loader = new DataLoader(ds, { batchSize: 3, shuffle: true, seed: 7, numWorkers: 2 });
    const flat = (k: number) => [...loader.epochBatches(k)].map((b) => ({ x: Array.from(b.x.data), shape: b.x.shape, y: Array.from(b.y), indices: Array.from(b.indices) }));
    expect(flat(1)).toEqual(epoch({ numWorkers: 0 }, 1));
    for (const b of loader.epochBatches(5)) if (b) break; // leaves requests in flight: the workers are replaced
    expect(flat(2)).toEqual(epoch({ numWorkers: 0 }, 2));
    loader.close();
  });
  it('epoch k depends only on (seed, k): replayable, and other epochs or seeds differ', () => {
    const a = epoch({}, 2);
    expect(epoch({}, 2)).toEqual(a);
    expect(epoch({}, 3)).not.toEqual(a);
    expect(epoch({ seed: 8 }, 2)).not.toEqual(a);
  });
  it('at most numWorkers × prefetch batches are in flight', () => {
    const big = ImageFolder.fromSamples(ROOT, ds.classes, [...ds.samples, ...ds.samples, ...ds.samples], { transform: train });
    const loader = new DataLoader(big, { batchSize: 2, numWorkers: 2, prefetch: 2 });
    let n = 0;
    for (const b of loader) n += b.y.length;
    expect(n).toBe(24);
    expect(loader.maxInFlight).toBe(4);
  });
  it('a worker that cannot rebuild the dataset is an error in the loop, not a hang', () => {
    const odd = { length: 4, numClasses: 2, channels: 3, getItem: () => ({ skipped: 'x' }), workerSpec: () => ({ kind: 'Nope' }) };
    expect(() => [...new DataLoader(odd, { batchSize: 2, numWorkers: 1 }).epochBatches(0)]).toThrow(/a worker failed: Error: unknown dataset kind 'Nope'/);
  });
  it('bad options: ValueError', () => {
    expect(() => new DataLoader(ds, { batchSize: 2, numWorkers: -1 })).toThrow(/numWorkers must be a non-negative integer/);
    expect(() => new DataLoader(ds, { batchSize: 2, prefetch: 0 })).toThrow(/prefetch must be a positive integer/);
    const mem = { length: 1, channels: 1, height: 1, width: 1, numClasses: 1, images: new Uint8Array(1), labels: new Uint8Array(1) };
    expect(() => new DataLoader(mem, { batchSize: 1, numWorkers: 1 })).toThrow(/numWorkers > 0 needs a map-style dataset/);
  });
});
