// Batched matrix product over contiguous buffers: y[b] = op(a[b]) (m×k) · op(b[b]) (k×n), row-major, through the
// packed GEMM (gemm.ts): per output a float64 sum over k in ascending order, rounded once, so results do not depend
// on blocking or on the thread count. Used by matmul and linear.

import { sgemm } from './gemm.js';

export interface MatmulParams {
  batch: number;
  m: number;
  k: number;
  n: number;
  /** a is stored transposed: (k×m) per batch. */
  transA?: boolean;
  /** b is stored transposed: (n×k) per batch. */
  transB?: boolean;
}

/** y (batch × m × n) = op(a) · op(b) per batch; y is overwritten. */
export function matmulKernel(y: Float32Array, a: Float32Array, b: Float32Array, p: MatmulParams): void {
  const { batch, m, k, n } = p;
  const transA = p.transA === true, transB = p.transB === true;
  for (let t = 0; t < batch; t++) {
    if (m === 1 && transB && !transA) {
      // One row times a transposed b (a linear layer at batch 1): yᵀ (n × 1) = b (n × k) · aᵀ, b read as stored (the
      // GEMM's A, packed fast) instead of transposed into B panels element by element. The same products and sums.
      sgemm(y, b, a, n, 1, k, { aOff: t * k * n, bOff: t * m * k, cOff: t * m * n });
      continue;
    }
    sgemm(y, a, b, m, n, k, { transA, transB, aOff: t * m * k, bOff: t * k * n, cOff: t * m * n });
  }
}
