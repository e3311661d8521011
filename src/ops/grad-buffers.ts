import { alloc } from '../shape.js';

// Gradient buffers of the backward pass. An op's backward takes the buffer of a gradient it returns from
// `gradBuffer` (zero-filled: backward kernels accumulate). Such a buffer is referenced only by that one returned
// gradient, so autograd knows when it dies: once the gradient has been consumed (passed to the next op's backward,
// added into another gradient, or copied into a leaf's .grad), autograd hands it back with `recycleGradBuffer`, and
// a later gradient of the same size (in this backward or the next step's) reuses it. A buffer that autograd sees
// referenced twice (an op returned it for two inputs, or passed its incoming gradient through, as add and reshape
// do) is dropped from the set with `untagGradBuffer` and left to the collector.

const gradBuffers = new WeakSet<Float32Array>();

/** Bytes of recycled gradient buffers kept for reuse, and the most kept per length. */
const POOL_CAP = 64 * 2 ** 20;
const PER_LENGTH = 4;
/** Buffers shorter than this are not kept (the allocator serves them cheaply). */
const MIN_LENGTH = 16384;
const pool = new Map<number, Float32Array[]>();
let poolBytes = 0;

/**
 * A buffer of n elements for a gradient an op's backward returns (see above): zero-filled, or with `overwrite` (the
 * kernel writes every element) as it comes.
 */
export function gradBuffer(op: string, n: number, overwrite = false): Float32Array {
  const d = pool.get(n)?.pop();
  let out: Float32Array;
  if (d === undefined) out = alloc(op, n);
  else {
    poolBytes -= d.byteLength;
    out = overwrite ? d : d.fill(0);
  }
  gradBuffers.add(out);
  return out;
}

/** Whether d came from gradBuffer and has not been recycled or untagged since. */
export function isGradBuffer(d: Float32Array): boolean {
  return gradBuffers.has(d);
}

/** d is referenced by more than one gradient, or handed to a leaf: never recycle it. */
export function untagGradBuffer(d: Float32Array): void {
  gradBuffers.delete(d);
}

/** d (from gradBuffer) is dead: keep it for the next gradBuffer/takeBuffer of its size. */
export function recycleGradBuffer(d: Float32Array): void {
  if (!gradBuffers.delete(d)) return;
  if (d.length < MIN_LENGTH || poolBytes + d.byteLength > POOL_CAP) return;
  let list = pool.get(d.length);
  if (list === undefined) pool.set(d.length, (list = []));
  if (list.length >= PER_LENGTH) return;
  // Kept buffers live in shared memory, so that worker threads use them in place (no staging copies); an ordinary
  // buffer is swapped for a shared one once, then the same shared buffers circulate. Only kept buffers are made
  // shared, so unreachable shared memory (which the collector frees late) cannot pile up.
  if (!(d.buffer instanceof SharedArrayBuffer) && typeof SharedArrayBuffer === 'function') {
    d = new Float32Array(new SharedArrayBuffer(d.byteLength));
  }
  list.push(d);
  poolBytes += d.byteLength;
}

/** Drops the kept gradient buffers. */
export function emptyGradBuffers(): void {
  pool.clear();
  poolBytes = 0;
}
