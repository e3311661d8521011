// Staging copies from shared memory (a training step's tensors, which the worker threads read in place) into a
// kernel's wasm memory.
//
// V8 copies a typed array into or out of a SharedArrayBuffer with relaxed atomic accesses: 8 bytes at a time where
// the source and destination addresses agree mod 8, one byte at a time where they do not (Node 20, 50 KB rows from
// shared memory into wasm memory: 0.7–1.2 GB/s misaligned, 4–13 GB/s aligned; aligned, Fashion-MNIST's 16→32 /2
// weight gradient at batch 128 went from 10.5 to 7.5 ms). A kernel that copies rows of a tensor into its own memory
// places them where the addresses agree, at most one float past where it would, so its area needs one float of slack.

/**
 * Copies src[from, to) into dst at index `at` or `at + 1`, whichever agrees with src[from]'s byte address mod 8,
 * and returns that index. dst needs one float of slack after the to − from it receives.
 */
export function stageRows(dst: Float32Array, at: number, src: Float32Array, from: number, to: number): number {
  const i = at + ((((src.byteOffset - dst.byteOffset) >> 2) + from - at) & 1);
  dst.set(src.subarray(from, to), i);
  return i;
}
