// ReLU on float32 bit patterns (Int32Array views of Float32Array data), without data-dependent branches: about
// half the inputs of a ReLU are negative in no predictable order, and a branch on the sign mispredicts about every
// other element (measured 3–4× slower). Results are exactly PyTorch's `x > 0 || isnan(x) ? x : 0`: positives and
// every NaN (either sign) kept bit for bit, −0 and negatives (−inf included) give +0.

/** The float32 bit patterns of a, as a view (no copy). */
export function float32Bits(a: Float32Array): Int32Array {
  return new Int32Array(a.buffer, a.byteOffset, a.length);
}

/** dst[i] = relu(src[i]) for i in [i0, i1), on bit patterns; dst may be src (in place). */
export function reluBits(dst: Int32Array, src: Int32Array, i0: number, i1: number): void {
  for (let i = i0; i < i1; i++) {
    const b = src[i]!;
    const nan = (0x7f800000 - (b & 0x7fffffff)) >> 31; // −1 for a NaN, else 0
    dst[i] = b & (~(b >> 31) | nan);
  }
}
