import { setNumThreads } from '../parallel/index.js';

/** --threads N: the threads per kernel call (the pool's size); results do not depend on it. */
export function applyThreads(n: number): void {
  setNumThreads(n);
}
