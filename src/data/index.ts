/**
 * Datasets, readers, DataLoader and transforms — the browser-safe part. The file loaders (loadFashionMnist,
 * loadMnist, loadCifar10, loadCifar100, readDataFile) live in './files.js', which needs node:fs and node:zlib.
 */
export { DatasetError, checkDataset, subset, syntheticDataset, FASHION_MNIST_CLASSES, MNIST_CLASSES, CIFAR10_CLASSES } from './dataset.js';
export type { Dataset, SyntheticOptions } from './dataset.js';
export { readIdx, writeIdx } from './idx.js';
export type { IdxArray } from './idx.js';
export { readCifarBatch, concatDatasets } from './cifar.js';
export type { CifarOptions } from './cifar.js';
export { DataLoader } from './loader.js';
export type { Batch, DataLoaderOptions } from './loader.js';
export { isMapDataset } from './map-dataset.js';
export type { MapDataset, MapItem } from './map-dataset.js';
export * as imageTransforms from './image-transforms.js';
export { normalize, randomCrop, randomHorizontalFlip, compose, cifarTrainTransform, CIFAR10_MEAN, CIFAR10_STD } from './transforms.js';
export type { Transform } from './transforms.js';
