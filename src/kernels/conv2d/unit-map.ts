// Input gradient of a convolution whose output is one position that every input position meets (ResNet-18's last
// stage on 32×32 images: 3×3 pad 1 on a 1×1 map, 3×3/2 from 2×2 to 1×1). Input position r meets the output through
// one tap, tap(r) (small-map.ts), so with W' (O × C·HW), W'[o, c·HW + r] = w[o, c, tap(r)] (those taps gathered),
// dx (N × C·HW) += dy (N × O) · W' is one plain GEMM over the batch on the tensors as they lie: no transposed
// packing of A, no float64 column matrix, no col2im; one rounding per dx entry, dx + Σ_o.

import { sgemmRange } from '../gemm.js';
import { parallelFor, registerTask } from '../parallel.js';
import { gatherTaps, liveScratch } from './pack.js';
import type { Conv2dParams } from './plan.js';
import { oneOutputTaps } from './small-map.js';

interface UnitMapTask {
  p: Conv2dParams;
  /** Columns (input channels × positions) of dx per unit. */
  colBlock: number;
}

/** True when `conv2dBackwardInput` takes the one-output GEMM: see oneOutputTaps. */
export function unitMapBackwardInput(p: Conv2dParams): boolean {
  return oneOutputTaps(p) !== null;
}

registerTask<UnitMapTask>('conv2d.backwardInputUnitMap', (bufs, q, u0, u1) => {
  const { n, c, o } = q.p;
  const cols = c * q.p.h * q.p.w;
  const j0 = u0 * q.colBlock, j1 = Math.min(cols, u1 * q.colBlock);
  // Column ranges give the same bits as one call (sgemmRange), so any thread count gives the same dx.
  sgemmRange(bufs.dx as Float32Array, bufs.dy as Float32Array, bufs.w as Float32Array, n, cols, o, { accumulate: true }, 0, n, j0, j1);
});

/** dx: (N, C, H, W) += ∂L/∂x, given dy: (N, O, 1, 1) and w: (O, C, kH, kW), where unitMapBackwardInput(p). */
export function unitMapConv2dBackwardInput(dx: Float32Array, dy: Float32Array, w: Float32Array, p: Conv2dParams): void {
  const taps = [...oneOutputTaps(p)!], hw = taps.length, rows = p.o * p.c, cols = p.c * hw;
  const wl = liveScratch(0, rows * hw);
  gatherTaps(wl, w, rows, p.kh * p.kw, taps);
  const colBlock = 64;
  const units = Math.ceil(cols / colBlock);
  parallelFor({ kernel: 'conv2d.backwardInputUnitMap', bufs: { dx, dy, w: wl }, writes: ['dx'], params: { p, colBlock }, units, cost: 2 * p.n * p.o * cols });
}
