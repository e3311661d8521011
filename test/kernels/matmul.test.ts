import { describe, it } from 'vitest';
import { sgemm, sgemmNaive } from '../../src/kernels/gemm.js';
import { matmulKernel } from '../../src/kernels/matmul.js';
import { hasSimd128, type KernelBackend } from '../../src/kernels/wasm/features.js';
import { useKernelBackend } from './backend-hooks.js';
import { assertClose, assertIdentical, randArray } from './compare.js';

// One row times a transposed matrix (a linear layer at batch 1) runs as b · aᵀ: the same products and sums as
// a · bᵀ through the GEMM, so the same bits, and close to the naive float64 loop.

const backends: KernelBackend[] = hasSimd128 ? ['simd', 'js'] : ['js'];

for (const backend of backends) {
  describe(`matmulKernel, one row × transposed b (${backend} backend)`, () => {
    useKernelBackend(backend);

    it('is bit-identical to a · bᵀ through the GEMM and close to the naive loop (k over several blocks)', () => {
      for (const [k, n, batch] of [[130, 37, 1], [2048, 12, 2], [5, 1, 1]] as const) {
        const a = randArray(k + n, batch * k), b = randArray(k + n + 1, batch * n * k);
        const y = new Float32Array(batch * n).fill(NaN), ref = new Float32Array(batch * n), naive = new Float32Array(batch * n);
        matmulKernel(y, a, b, { batch, m: 1, k, n, transB: true });
        for (let t = 0; t < batch; t++) {
          sgemm(ref, a, b, 1, n, k, { transB: true, aOff: t * k, bOff: t * k * n, cOff: t * n });
          sgemmNaive(naive, a, b, 1, n, k, { transB: true, aOff: t * k, bOff: t * k * n, cOff: t * n });
        }
        assertIdentical(`1×${k} · (${n}×${k})ᵀ ×${batch}`, y, ref);
        assertClose(`1×${k} · (${n}×${k})ᵀ ×${batch} vs naive`, y, naive);
      }
    });
  });
}
