/**
 * resnet-ts/browser: resnet-ts/core plus the kernels' thread pool for browsers (Web Workers over
 * SharedArrayBuffer, see parallel/browser.ts). Run it in a dedicated Worker of a cross-origin-isolated page to
 * use several threads; anywhere else it runs on one thread and says so once.
 */
import { installBrowserParallel } from './parallel/browser.js';

installBrowserParallel();

export * from './core.js';
export { initThreads, setNumThreads, getNumThreads, singleThreadReason, poolStats } from './parallel/browser.js';
