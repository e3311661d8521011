/**
 * The datasets `--data` names: Fashion-MNIST and MNIST (IDX files), CIFAR-10/100 (binary version), the synthetic
 * set, or a directory of such files.
 */
import { existsSync, readdirSync } from 'node:fs';
import { ResnetTsError } from '../errors.js';
import { syntheticDataset, type Dataset } from '../data/dataset.js';
import { loadCifar10, loadCifar100, loadFashionMnist, loadMnist } from '../data/files.js';
import { UsageError } from './args.js';

export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

export interface LoadedData {
  name: string;
  train: Dataset;
  test: Dataset;
  mean: number[];
  std: number[];
  /** Said to the user: where the data came from, or why the synthetic set is used. */
  note: string;
}

export const looksLikeIdxDir = (dir: string): boolean => readdirSync(dir).some((f) => f.startsWith('train-images-idx3-ubyte'));
export const looksLikeCifarDir = (dir: string): boolean => readdirSync(dir).some((f) => f === 'data_batch_1.bin' || f === 'train.bin');

/** Resolves --data to datasets. fashion-mnist falls back to the synthetic set (and says so) when it is not installed. */
export function loadData(data: string, dataDir?: string, seed = 0): LoadedData {
  const synthetic = (note: string): LoadedData => {
    const train = syntheticDataset({ n: 6000, channels: 1, size: 28, numClasses: 10, seed });
    const test = syntheticDataset({ n: 1000, channels: 1, size: 28, numClasses: 10, seed: seed + 1 });
    return { name: 'synthetic', train, test, mean: [0.5], std: [0.5], note };
  };
  if (data === 'synthetic') return synthetic('synthetic data: 6000 train / 1000 test seeded 28×28 images, 10 classes');
  if (data === 'fashion-mnist' || data === 'mnist') {
    const dir = dataDir ?? (data === 'fashion-mnist' ? FASHION_MNIST_DIR : '/usr/share/datasets/mnist');
    if (!existsSync(dir)) {
      if (dataDir) throw new ResnetTsError('train', `--data-dir ${dir} does not exist`);
      return synthetic(`${data} not found in ${dir} (install Debian's dataset-${data} package or pass --data DIR); using the synthetic set instead`);
    }
    const { train, test } = data === 'fashion-mnist' ? loadFashionMnist(dir) : loadMnist(dir);
    return data === 'fashion-mnist'
      ? { name: data, train, test, mean: [0.286], std: [0.353], note: `Fashion-MNIST from ${dir}` }
      : { name: data, train, test, mean: [0.1307], std: [0.3081], note: `MNIST from ${dir}` };
  }
  if (data === 'cifar10' || data === 'cifar100') {
    if (!dataDir) throw new UsageError(`--data ${data} needs --data-dir DIR (the extracted binary version, e.g. cifar-10-batches-bin)`);
    const { train, test } = data === 'cifar10' ? loadCifar10(dataDir) : loadCifar100(dataDir);
    return { name: data, train, test, mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616], note: `${data} from ${dataDir}` };
  }
  if (existsSync(data)) {
    if (looksLikeIdxDir(data)) return loadData('fashion-mnist', data);
    if (looksLikeCifarDir(data)) return loadData(readdirSync(data).includes('train.bin') ? 'cifar100' : 'cifar10', data);
    throw new UsageError(`--data ${data}: no train-images-idx3-ubyte(.gz) (MNIST format) or data_batch_1.bin (CIFAR-10 binary) found there`);
  }
  throw new UsageError(`--data must be fashion-mnist, mnist, cifar10, cifar100, synthetic or an existing directory, got '${data}'`);
}
