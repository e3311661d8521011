/** matmul (issue 2) against PyTorch fixtures: test/fixtures/ops/matmul.json. */
import { describe, expect, it } from 'vitest';
import { setKernelBackend } from '../../src/kernels/wasm/features.js';
import { manualSeed, matmul, nn, randn, tensor } from '../../src/index.js';
import { fixtureSuite } from '../helpers/fixtures.js';

fixtureSuite('matmul', {
  matmul_1d_1d: ['matmul a=[4] b=[4] (dot)', (a, b) => matmul(a, b)],
  matmul_1d_2d: ['matmul a=[3] b=[3,5]', (a, b) => matmul(a, b)],
  matmul_2d_1d: ['matmul a=[3,4] b=[4]', (a, b) => matmul(a, b)],
  matmul_2d_2d: ['matmul a=[3,4] b=[4,5]', (a, b) => matmul(a, b)],
  matmul_3d_3d: ['matmul a=[2,3,4] b=[2,4,5]', (a, b) => matmul(a, b)],
  matmul_bcast_2x1x3x4_5x4x2: ['matmul a=[2,1,3,4] b=[5,4,2] (broadcast batch)', (a, b) => matmul(a, b)],
  matmul_3d_2d: ['matmul a=[2,3,4] b=[4,5]', (a, b) => matmul(a, b)],
  matmul_1d_3d: ['matmul a=[4] b=[2,4,5]', (a, b) => matmul(a, b)],
  matmul_3d_1d: ['matmul a=[2,3,4] b=[4]', (a, b) => matmul(a, b)],
});

describe('matmul and linear: IEEE special values as in PyTorch', () => {
  it('0 · inf is NaN (no zero-skipping), and a large linear (parallel GEMM) equals a float64 loop', () => {
    const y = matmul(tensor([[0, 1]]), tensor([[Infinity], [2]]));
    expect(Number.isNaN(y.data[0])).toBe(true);
    const lin = nn.functional.linear(tensor([[0, 0, 1]]), tensor([[Infinity, 1, 3]]), null);
    expect(Number.isNaN(lin.data[0])).toBe(true);
    // fc-sized: 3×512 · (1000×512)ᵀ, big enough to be split across threads. The js kernels sum in float64 in the
    // loop's order (the same bits); the SIMD kernels sum float32 blocks of ≤ 64 terms into a float64 total (within
    // the float32-op tolerance).
    manualSeed(5);
    const x = randn([3, 512]), w = randn([1000, 512]);
    for (const backend of ['js', 'simd'] as const) {
      const old = setKernelBackend(backend);
      const out = nn.functional.linear(x, w, null);
      setKernelBackend(old);
      let worst = 0;
      for (let i = 0; i < 3; i++) {
        for (let j = 0; j < 1000; j += 37) {
          let s = 0;
          for (let p = 0; p < 512; p++) s += x.data[i * 512 + p]! * w.data[j * 512 + p]!;
          worst = Math.max(worst, Math.abs(out.data[i * 1000 + j]! - Math.fround(s)) / (1e-5 + 1e-4 * Math.abs(s)));
        }
      }
      if (backend === 'js') expect(worst).toBe(0);
      else expect(worst).toBeLessThan(1);
    }
  });
});
