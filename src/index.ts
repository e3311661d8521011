/**
 * resnet-ts: the public API for Node. Everything the README documents is exported here, and nothing else.
 * `resnet-ts/core` is the same without the Node-only helpers (for browsers).
 */
import { optimizeWasmFromEnv } from './wasm-tiering.js';
import './parallel/install.js';

optimizeWasmFromEnv();

export * from './core.js';
export { setNumThreads, getNumThreads } from './parallel/index.js';
export { stagingStats, resetStagingStats, type StagingStats } from './parallel/staging.js';
export * as data from './data/node.js';
export * as io from './io/node.js';
export { optimizeWasmEagerly, wasmOptimizedEagerly } from './wasm-tiering.js';
