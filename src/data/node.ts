/** The data namespace for Node: the browser-safe part plus the file loaders (node:fs, node:zlib). */
export * from './index.js';
export { readDataFile, loadIdxPair, loadFashionMnist, loadMnist, loadCifar10, loadCifar100 } from './files.js';
export { ImageFolder, IMG_EXTENSIONS } from './imagefolder.js';
export type { ImageFolderOptions } from './imagefolder.js';
