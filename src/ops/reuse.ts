// Buffer reuse for inference.
//
// A model's eval forward makes tens of MB of activations that die within the call (43 MB for a ResNet-50 at batch
// 1). Left to the garbage collector they are freed only every forward or two, which is what the process's peak RSS
// then shows. The models hand their dead intermediates back with `releaseForReuse`, and the inference kernels whose
// output overwrites every element (convBnAct, max pooling without gradient) take their output buffer from here
// first: a used buffer is as good as a new one. Bounded: SPARE_PER_LENGTH buffers per length and SPARE_CAP bytes in
// all; anything beyond is left to the collector.
//
// Kept buffers live in shared memory (SharedArrayBuffer, where it exists): the worker threads then read and write
// them in place, where an ordinary buffer is copied into shared staging memory and back on every kernel call. A
// released ordinary buffer is therefore swapped for a shared one of the same length (once: after that the same
// shared buffers circulate). Shared buffers are only made here, on release, never for a buffer that might escape
// unreleased on every call, so the collector's slowness with unreachable shared memory cannot pile them up.

import { alloc } from '../shape.js';
import type { Tensor } from '../tensor.js';

const SPARE_CAP = 64 * 2 ** 20;
const SPARE_PER_LENGTH = 4;
/** Buffers smaller than this are not worth keeping (the allocator serves them cheaply). */
const SPARE_MIN = 16384;
const spare = new Map<number, Float32Array[]>();
let spareBytes = 0;

/**
 * Gives the data of tensors that nobody will read again to the inference kernels' output buffers. Only for tensors
 * whose data no live tensor shares (no views): the caller owns them outright. Nulls are skipped.
 */
export function releaseForReuse(...ts: (Tensor | null)[]): void {
  for (const t of ts) if (t !== null) keep(t.data);
}

function keep(d: Float32Array): void {
  if (d.length < SPARE_MIN || spareBytes + d.byteLength > SPARE_CAP) return;
  let list = spare.get(d.length);
  if (list === undefined) spare.set(d.length, (list = []));
  if (list.length >= SPARE_PER_LENGTH || list.includes(d)) return;
  if (!(d.buffer instanceof SharedArrayBuffer) && typeof SharedArrayBuffer === 'function') {
    d = new Float32Array(new SharedArrayBuffer(d.byteLength));
  }
  list.push(d);
  spareBytes += d.byteLength;
}

/** Drops the buffers kept for reuse (memory held between inference calls: at most a few per activation size). */
export function emptyReuseCache(): void {
  spare.clear();
  spareBytes = 0;
}

/** A buffer of n elements for an output that will be overwritten entirely: a released one if there is one. */
export function takeBuffer(op: string, n: number): Float32Array {
  const d = spare.get(n)?.pop();
  if (d === undefined) return alloc(op, n);
  spareBytes -= d.byteLength;
  return d;
}

// Gradient buffers of the backward pass. An op's backward takes the buffer of a gradient it returns from
// `gradBuffer` (zero-filled: backward kernels accumulate). Such a buffer is referenced only by that one returned
// gradient, so autograd knows when it dies: once the gradient has been consumed (passed to the next op's backward,
// added into another gradient, or copied into a leaf's .grad), autograd hands it back with `recycleGradBuffer`, and
// a later gradient of the same size (in this backward or the next step's) reuses it. A buffer that autograd sees
// referenced twice (an op returned it for two inputs, or passed its incoming gradient through, as add and reshape
// do) is dropped from the set with `untagGradBuffer` and left to the collector.

const gradBuffers = new WeakSet<Float32Array>();

/**
 * A buffer of n elements for a gradient an op's backward returns (see above): zero-filled, or with `overwrite` (the
 * kernel writes every element) as it comes.
 */
export function gradBuffer(op: string, n: number, overwrite = false): Float32Array {
  const d = spare.get(n)?.pop();
  let out: Float32Array;
  if (d === undefined) out = alloc(op, n);
  else {
    spareBytes -= d.byteLength;
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
  keep(d);
}
