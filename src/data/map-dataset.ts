/**
 * Map-style datasets (torch.utils.data.Dataset with __getitem__): items made on demand, one image at a time, like
 * ImageFolder's lazily decoded files. The DataLoader batches them on this thread or in worker threads; `loadBatch`
 * is the one function both run, so a batch is the same bytes wherever it was made.
 */

import { ValueError } from '../errors.js';
import { Generator } from '../random.js';
import { DatasetError } from './dataset.js';
import { isFloatImage, toTensorImage, type ImageSample } from './image-transforms.js';

/** One item: the transformed image and its class, or the name of a bad file that was skipped. */
export type MapItem = { image: ImageSample; label: number } | { skipped: string };

/** What a worker thread needs to rebuild a dataset: a kind its worker script knows, and JSON-able fields. */
export interface WorkerSpec {
  kind: string;
  [field: string]: unknown;
}

export interface MapDataset {
  readonly length: number;
  readonly numClasses: number;
  /** Channels of the images getItem returns. */
  readonly channels: number;
  readonly classNames?: readonly string[];
  /** Item `index`, its random transforms drawn from `gen`. */
  getItem(index: number, gen: Generator): MapItem;
  /** A name for item `index` in error messages (ImageFolder: its path). */
  describe?(index: number): string;
  /** How worker threads rebuild this dataset; without it, numWorkers must be 0. */
  workerSpec?(): WorkerSpec;
  /** Told about the files skipped in a batch (whichever thread made it). */
  noteSkipped?(names: readonly string[]): void;
}

export const isMapDataset = (ds: unknown): ds is MapDataset =>
  ds !== null && typeof ds === 'object' && typeof (ds as MapDataset).getItem === 'function';

/** A batch before it becomes a Tensor: float32 (N, C, H, W), labels, the dataset indices kept, the files skipped. */
export interface RawBatch {
  data: Float32Array;
  shape: [number, number, number, number];
  labels: Int32Array;
  indices: Int32Array;
  skipped: string[];
}

/**
 * Items `indices` of `ds`, item i transformed with Generator(seeds[i]), stacked into one (N, C, H, W) batch. An item
 * still 8-bit after its transform is converted as toTensor would. Every image must have the same size.
 */
export function loadBatch(ds: MapDataset, indices: ArrayLike<number>, seeds: ArrayLike<number>): RawBatch {
  const images: Float32Array[] = [];
  const labels: number[] = [];
  const kept: number[] = [];
  const skipped: string[] = [];
  let shape: [number, number, number] | null = null;
  let first = -1;
  for (let i = 0; i < indices.length; i++) {
    const index = indices[i]!;
    const item = ds.getItem(index, new Generator(seeds[i]!));
    if ('skipped' in item) {
      skipped.push(item.skipped);
      continue;
    }
    const img = isFloatImage(item.image) ? item.image : toTensorImage(item.image);
    const s: [number, number, number] = [img.channels, img.height, img.width];
    if (shape === null) {
      shape = s;
      first = index;
    } else if (s[0] !== shape[0] || s[1] !== shape[1] || s[2] !== shape[2]) {
      const name = (k: number): string => (ds.describe ? ds.describe(k) : `item ${k}`);
      throw new DatasetError('DataLoader', `cannot batch ${name(index)} (${s.join('×')}) with ${name(first)} (${shape.join('×')}): `
        + 'images in a batch must have one size; put resize + centerCrop or randomResizedCrop in the transform');
    }
    if (!Number.isInteger(item.label) || item.label < 0 || item.label >= ds.numClasses) {
      throw new DatasetError('DataLoader', `label ${item.label} of ${ds.describe ? ds.describe(index) : `item ${index}`} is not in 0..${ds.numClasses - 1}`);
    }
    images.push(img.data);
    labels.push(item.label);
    kept.push(index);
  }
  const [c, h, w] = shape ?? [ds.channels, 0, 0];
  const per = c * h * w;
  const data = new Float32Array(images.length * per);
  images.forEach((d, i) => data.set(d, i * per));
  return { data, shape: [images.length, c, h, w], labels: Int32Array.from(labels), indices: Int32Array.from(kept), skipped };
}

/** Checks a map-style dataset's sizes (the DataLoader's constructor). */
export function checkMapDataset(ds: MapDataset): void {
  for (const k of ['length', 'numClasses', 'channels'] as const) {
    if (!Number.isSafeInteger(ds[k]) || ds[k] < 0) throw new ValueError('DataLoader', `dataset.${k} must be a non-negative integer, got ${String(ds[k])}`);
  }
}
