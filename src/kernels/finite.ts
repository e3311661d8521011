// Arrays a kernel has just filled with finite values only, noted by that kernel for the next reader that would
// otherwise scan them for ±Inf and NaN: the batch norm's training kernels check what they store in the same pass
// (wasm/batchnorm.ts), and conv2d's Winograd plan (conv2d/plan.ts, allFinite) takes the note instead of a pass
// over its input (the BN's output forward, the BN's input gradient backward: about 30 ms of a Fashion-MNIST
// ResNet-20 step at batch 128). A note is taken once, and whoever writes into a noted array forgets it first: the
// arena handing a buffer out again (fusion/arena.ts), autograd adding a gradient into a pending one (autograd.ts).

const noted = new WeakSet<Float32Array>();

/** a's values were all just written by a kernel: note whether all are finite. */
export function noteFinite(a: Float32Array, finite: boolean): void {
  if (finite) noted.add(a);
  else noted.delete(a);
}

/** a is about to be written: its note, if any, no longer holds. */
export function forgetFinite(a: Float32Array): void {
  noted.delete(a);
}

/** Whether a carries a note that all its values are finite; the note is used up. */
export function takeFinite(a: Float32Array): boolean {
  return noted.delete(a);
}
