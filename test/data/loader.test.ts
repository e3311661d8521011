import { describe, expect, it } from 'vitest';
import { Generator, ValueError } from '../../src/index.js';
import { DataLoader, syntheticDataset, subset, checkDataset, randomHorizontalFlip, type Dataset } from '../../src/data/index.js';
import { gratingOf } from '../../src/data/dataset.js';

/** n 1×1×2 images; image i holds bytes [i, 255 − i], label i mod 3. */
function tiny(n: number): Dataset {
  const images = new Uint8Array(n * 2);
  for (let i = 0; i < n; i++) {
    images[2 * i] = i;
    images[2 * i + 1] = 255 - i;
  }
  return { length: n, channels: 1, height: 1, width: 2, numClasses: 3, images, labels: Uint8Array.from({ length: n }, (_, i) => i % 3) };
}

const collect = (it: Iterable<{ indices: Int32Array }>) => Array.from(it, (b) => Array.from(b.indices));

describe('DataLoader', () => {
  it('no shuffle: dataset order, x = bytes/255 (float32) as N×C×H×W, y = labels', () => {
    const dl = new DataLoader(tiny(5), { batchSize: 2 });
    expect(dl.length).toBe(3);
    const batches = [...dl];
    expect(batches.map((b) => b.x.shape)).toEqual([[2, 1, 1, 2], [2, 1, 1, 2], [1, 1, 1, 2]]);
    expect(Array.from(batches[1]!.x.data)).toEqual([2 / 255, 253 / 255, 3 / 255, 252 / 255].map(Math.fround));
    expect(Array.from(batches[1]!.y)).toEqual([2, 0]);
    expect(batches[2]!.y).toBeInstanceOf(Int32Array);
  });
  it('dropLast drops the incomplete batch; length = floor(N / batch)', () => {
    const dl = new DataLoader(tiny(5), { batchSize: 2, dropLast: true });
    expect(dl.length).toBe(2);
    expect(collect(dl)).toEqual([[0, 1], [2, 3]]);
    expect(new DataLoader(tiny(4), { batchSize: 2, dropLast: true }).length).toBe(2);
    expect(new DataLoader(tiny(1), { batchSize: 2, dropLast: true }).length).toBe(0);
  });
  it('shuffle: same seed → same batches; each epoch a permutation; epochs differ', () => {
    const a = new DataLoader(tiny(50), { batchSize: 8, shuffle: true, seed: 7 });
    const b = new DataLoader(tiny(50), { batchSize: 8, shuffle: true, seed: 7 });
    const e0 = collect(a);
    expect(collect(b)).toEqual(e0);
    expect(e0.flat().sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    const e1 = collect(a); // second for-of: epoch 1
    expect(a.epoch).toBe(2);
    expect(e1).not.toEqual(e0);
    expect(e1.flat().sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(collect(new DataLoader(tiny(50), { batchSize: 8, shuffle: true, seed: 8 }))).not.toEqual(e0);
  });
  it('epoch k depends only on (seed, k): resuming at epoch 3 reproduces it', () => {
    const a = new DataLoader(tiny(40), { batchSize: 16, shuffle: true, seed: 1 });
    for (let e = 0; e < 3; e++) collect(a);
    const third = collect(a);
    const resumed = new DataLoader(tiny(40), { batchSize: 16, shuffle: true, seed: 1 });
    resumed.epoch = 3;
    expect(collect(resumed)).toEqual(third);
    expect(collect(resumed.epochBatches(3))).toEqual(third);
    expect(resumed.epoch).toBe(4);
  });
  it('batch items match the dataset items they index', () => {
    const ds = syntheticDataset({ n: 30, channels: 2, size: 4, numClasses: 3, seed: 2 });
    const dl = new DataLoader(ds, { batchSize: 7, shuffle: true, seed: 3 });
    for (const { x, y, indices } of dl) {
      indices.forEach((idx, i) => {
        expect(y[i]).toBe(ds.labels[idx]);
        for (let k = 0; k < 32; k++) expect(x.data[i * 32 + k]).toBe(Math.fround(ds.images[idx * 32 + k]! / 255));
      });
    }
  });
  it('transform gets a per-epoch seeded generator: augmentation reproducible per epoch, different across epochs', () => {
    const ds = tiny(64);
    const mk = () => new DataLoader(ds, { batchSize: 64, seed: 5, transform: randomHorizontalFlip(0.5) });
    const flipsOf = (dl: DataLoader, epoch: number) => {
      const [b] = [...dl.epochBatches(epoch)];
      return Array.from({ length: 64 }, (_, i) => b!.x.data[2 * i]! > b!.x.data[2 * i + 1]!); // flipped: 255−i first
    };
    const f0 = flipsOf(mk(), 0);
    expect(flipsOf(mk(), 0)).toEqual(f0);
    expect(flipsOf(mk(), 1)).not.toEqual(f0);
    expect(f0.filter(Boolean).length).toBeGreaterThan(10);
    expect(f0.filter(Boolean).length).toBeLessThan(54);
  });
  it('bad batch size → ValueError with torch text', () => {
    expect(() => new DataLoader(tiny(3), { batchSize: 0 })).toThrow(ValueError);
    expect(() => new DataLoader(tiny(3), { batchSize: 0 })).toThrow('batch_size should be a positive integer value, but got batch_size=0');
  });
});

describe('syntheticDataset', () => {
  it('shapes, balanced labels, consistent dataset', () => {
    const ds = syntheticDataset({ n: 100, channels: 3, size: 16, numClasses: 10, seed: 1 });
    expect([ds.length, ds.channels, ds.height, ds.width, ds.numClasses]).toEqual([100, 3, 16, 16, 10]);
    expect(ds.images.length).toBe(100 * 3 * 16 * 16);
    const counts = new Array(10).fill(0);
    for (const l of ds.labels) counts[l]++;
    expect(counts).toEqual(new Array(10).fill(10));
    expect(() => checkDataset(ds)).not.toThrow();
  });
  it('seeded: same seed same bytes, another seed other bytes', () => {
    const a = syntheticDataset({ n: 20, size: 8, seed: 4 });
    const b = syntheticDataset({ n: 20, size: 8, seed: 4 });
    const c = syntheticDataset({ n: 20, size: 8, seed: 5 });
    expect(Array.from(a.images)).toEqual(Array.from(b.images));
    expect(Array.from(a.labels)).toEqual(Array.from(b.labels));
    expect(Array.from(a.images)).not.toEqual(Array.from(c.images));
  });
  it('learnable: a phase-invariant matched filter (|Σ x·e^{−ik·r}| per class grating) classifies ≥ 90%', () => {
    const size = 32;
    const K = 10;
    const ds = syntheticDataset({ n: 300, channels: 3, size, numClasses: K, seed: 123 });
    let correct = 0;
    for (let i = 0; i < ds.length; i++) {
      let best = -1;
      let bestScore = -Infinity;
      for (let c = 0; c < K; c++) {
        const { kx, ky } = gratingOf(c, K, size);
        let re = 0;
        let im = 0;
        for (let ch = 0; ch < 3; ch++) {
          for (let y = 0; y < size; y++) {
            for (let x = 0; x < size; x++) {
              const v = ds.images[((i * 3 + ch) * size + y) * size + x]! - 127.5;
              re += v * Math.cos(kx * x + ky * y);
              im += v * Math.sin(kx * x + ky * y);
            }
          }
        }
        const s = Math.hypot(re, im);
        if (s > bestScore) {
          bestScore = s;
          best = c;
        }
      }
      if (best === ds.labels[i]) correct++;
    }
    expect(correct / ds.length).toBeGreaterThanOrEqual(0.9);
  });
  it('not solvable by a fixed template: the class-mean image is nearly flat (random phase)', () => {
    const ds = syntheticDataset({ n: 400, channels: 1, size: 16, numClasses: 4, seed: 9 });
    const mean = new Float64Array(256);
    let count = 0;
    for (let i = 0; i < ds.length; i++) {
      if (ds.labels[i] !== 0) continue;
      count++;
      for (let k = 0; k < 256; k++) mean[k]! += ds.images[i * 256 + k]!;
    }
    let maxDev = 0;
    for (let k = 0; k < 256; k++) maxDev = Math.max(maxDev, Math.abs(mean[k]! / count - 127.5));
    expect(maxDev).toBeLessThan(30); // a single image swings ±~75 around 127.5
  });
  it('subset shares bytes and clamps like python slices', () => {
    const ds = syntheticDataset({ n: 10, channels: 1, size: 2, numClasses: 2, seed: 0 });
    const s = subset(ds, 2, 5);
    expect(s.length).toBe(3);
    expect(Array.from(s.labels)).toEqual(Array.from(ds.labels.subarray(2, 5)));
    expect(s.images.buffer).toBe(ds.images.buffer);
    expect(subset(ds, -3).length).toBe(3);
    expect(subset(ds, 8, 100).length).toBe(2);
  });
  it('invalid sizes → ValueError', () => {
    expect(() => syntheticDataset({ n: 2, size: 0 })).toThrow(ValueError);
    expect(() => syntheticDataset({ n: 2, numClasses: 300 })).toThrow(ValueError);
  });
  it('uses the library Generator: permutation of labels follows Generator(seed)', () => {
    const ds = syntheticDataset({ n: 12, channels: 1, size: 2, numClasses: 4, seed: 77 });
    const order = new Generator(77).permutation(12);
    const want = new Uint8Array(12);
    for (let i = 0; i < 12; i++) want[order[i]!] = i % 4;
    expect(Array.from(ds.labels)).toEqual(Array.from(want));
  });
});
