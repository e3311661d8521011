/**
 * Batched matrix product over contiguous buffers: y[b] = a[b] (m×k) · b[b] (k×n), row-major. Float64 accumulation
 * per output (so results do not depend on blocking). Used by matmul and linear; conv uses the GEMM in gemm.ts.
 */
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

export function matmulKernel(y: Float32Array, a: Float32Array, b: Float32Array, p: MatmulParams): void {
  const { batch, m, k, n } = p;
  const row = new Float64Array(n);
  for (let t = 0; t < batch; t++) {
    const ao = t * m * k, bo = t * k * n, yo = t * m * n;
    for (let i = 0; i < m; i++) {
      row.fill(0);
      for (let l = 0; l < k; l++) {
        const av = p.transA ? a[ao + l * m + i]! : a[ao + i * k + l]!;
        if (av === 0) continue;
        if (p.transB) for (let j = 0; j < n; j++) row[j]! += av * b[bo + j * k + l]!;
        else {
          const bl = bo + l * n;
          for (let j = 0; j < n; j++) row[j]! += av * b[bl + j]!;
        }
      }
      for (let j = 0; j < n; j++) y[yo + i * n + j] = row[j]!;
    }
  }
}
