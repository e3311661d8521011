/**
 * resnet-ts: the public API for Node. Everything the README documents is exported here, and nothing else.
 * `resnet-ts/core` is the same without the Node-only helpers (for browsers).
 */
import './parallel/install.js';

export * from './core.js';
export { setNumThreads, getNumThreads } from './parallel/index.js';
export { stagingStats, resetStagingStats, type StagingStats } from './parallel/staging.js';
export * as data from './data/node.js';
export * as io from './io/node.js';
