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
    sgemm(y, a, b, m, n, k, { transA, transB, aOff: t * m * k, bOff: t * k * n, cOff: t * m * n });
  }
}
