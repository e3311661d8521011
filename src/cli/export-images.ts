/**
 * `resnet-ts export-images DATASET DIR`: writes an in-memory dataset (Fashion-MNIST, MNIST, CIFAR-10, synthetic) as
 * PNG files in ImageFolder's layout, DIR/<split>/<class>/<index>.png, so the image-folder workflow (training,
 * fine-tuning, predict) can be tried without a download.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { syntheticDataset, type Dataset } from '../data/dataset.js';
import { loadCifar10, loadFashionMnist, loadMnist } from '../data/files.js';
import { encodePng } from '../io/png-encode.js';
import { intFlag, parse, UsageError } from './args.js';
import type { Command } from './commands.js';
import { FASHION_MNIST_DIR } from './data.js';

export interface ExportOptions {
  dataset: string;
  out: string;
  dataDir?: string;
  /** Class indices to export (default all). */
  classes?: number[];
  /** At most this many images per class and split (default all). */
  perClass?: number;
  splits?: ('train' | 'test')[];
}

/** Folder name of class i: its index (zero-padded, so folders sort in label order) and its name, file-name-safe. */
export function classFolder(i: number, numClasses: number, name: string | undefined): string {
  const idx = String(i).padStart(String(numClasses - 1).length, '0');
  return name === undefined ? idx : `${idx}_${name.replace(/[^A-Za-z0-9._-]+/g, '_')}`;
}

function load(dataset: string, dataDir: string | undefined): { train: Dataset; test: Dataset } {
  switch (dataset) {
    case 'fashion-mnist': return loadFashionMnist(dataDir ?? FASHION_MNIST_DIR);
    case 'mnist': return loadMnist(dataDir ?? '/usr/share/datasets/mnist');
    case 'cifar10':
      if (!dataDir) throw new UsageError('cifar10 needs --data-dir DIR (the extracted binary version)');
      return loadCifar10(dataDir);
    case 'synthetic':
      return {
        train: syntheticDataset({ n: 600, channels: 3, size: 32, numClasses: 10, seed: 0 }),
        test: syntheticDataset({ n: 200, channels: 3, size: 32, numClasses: 10, seed: 1 }),
      };
    default:
      throw new UsageError(`DATASET must be fashion-mnist, mnist, cifar10 or synthetic, got '${dataset}'`);
  }
}

/** Writes the PNG folders; returns the number of files written per split. */
export function exportImages(o: ExportOptions): Record<string, number> {
  const data = load(o.dataset, o.dataDir);
  const splits = o.splits ?? ['train', 'test'];
  const written: Record<string, number> = {};
  for (const split of splits) {
    const ds = data[split];
    const keep = new Set(o.classes ?? Array.from({ length: ds.numClasses }, (_, i) => i));
    for (const c of keep) {
      if (!(Number.isInteger(c) && c >= 0 && c < ds.numClasses)) throw new UsageError(`--classes: ${c} is not a class index of ${o.dataset} (0..${ds.numClasses - 1})`);
    }
    const count = new Map<number, number>();
    const { channels: C, height: H, width: W } = ds;
    const plane = H * W;
    let n = 0;
    for (let i = 0; i < ds.length; i++) {
      const c = ds.labels[i]!;
      if (!keep.has(c) || (count.get(c) ?? 0) >= (o.perClass ?? Infinity)) continue;
      count.set(c, (count.get(c) ?? 0) + 1);
      // CHW bytes → HWC
      const hwc = new Uint8Array(C * plane);
      const base = i * C * plane;
      for (let k = 0; k < plane; k++) for (let ch = 0; ch < C; ch++) hwc[k * C + ch] = ds.images[base + ch * plane + k]!;
      const dir = join(o.out, split, classFolder(c, ds.numClasses, ds.classNames?.[c]));
      if (count.get(c) === 1) mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, `${String(i).padStart(5, '0')}.png`), encodePng({ width: W, height: H, channels: C as 1 | 3, data: hwc }));
      n++;
    }
    written[split] = n;
  }
  return written;
}

export const exportImagesCommand: Command = {
  summary: 'write a dataset (fashion-mnist, mnist, cifar10, synthetic) as PNG folders, one per class',
  help: `Usage: resnet-ts export-images DATASET DIR [options]

Writes DATASET as PNG files in torchvision's ImageFolder layout: DIR/train/<class>/<index>.png and
DIR/test/<class>/<index>.png, class folders named <label>_<name> (so they sort in label order).

  DATASET             fashion-mnist (/usr/share/datasets/fashion-mnist), mnist, cifar10 (needs --data-dir), synthetic
  --data-dir DIR      where the dataset's files are
  --classes LIST      comma-separated class indices to export, e.g. 0,1,2,3,4 (default: all)
  --per-class N       at most N images per class and split (default: all)
  --split S           train, test or both (default both)`,
  run(argv) {
    const { values, positionals } = parse(argv, {
      'data-dir': { type: 'string' }, classes: { type: 'string' }, 'per-class': { type: 'string' }, split: { type: 'string' },
    });
    if (positionals.length !== 2) throw new UsageError('expected DATASET and DIR');
    const split = (values.split as string | undefined) ?? 'both';
    if (!['train', 'test', 'both'].includes(split)) throw new UsageError(`--split must be train, test or both, got '${split}'`);
    const classes = values.classes === undefined ? undefined : String(values.classes).split(',').map((s) => {
      const v = Number(s.trim());
      if (!Number.isInteger(v) || v < 0) throw new UsageError(`--classes must be comma-separated class indices, got '${String(values.classes)}'`);
      return v;
    });
    const t0 = performance.now();
    const n = exportImages({
      dataset: positionals[0]!, out: positionals[1]!, dataDir: values['data-dir'] as string | undefined, classes,
      perClass: values['per-class'] === undefined ? undefined : intFlag(values, 'per-class', 1),
      splits: split === 'both' ? ['train', 'test'] : [split as 'train' | 'test'],
    });
    const parts = Object.entries(n).map(([s, k]) => `${k} ${s}`).join(' + ');
    console.log(`wrote ${parts} PNG files under ${positionals[1]} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  },
};
