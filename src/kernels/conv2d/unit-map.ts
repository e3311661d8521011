// Input gradient of a convolution on a 1×1 map (ResNet-18's last stage on 32×32 images): with one input and one
// output position, only one tap of the kernel meets the input, and dx (N × C) += dy (N × O) · w_tap (O × C) is one
// plain GEMM over the batch: no transposed packing of A, no col2im, one rounding per dx entry like the pointwise path.

import { sgemmRange } from '../gemm.js';
import { parallelFor, registerTask } from '../parallel.js';
import { gatherTaps, liveScratch } from './pack.js';
import type { Conv2dParams } from './plan.js';

interface UnitMapTask {
  p: Conv2dParams;
  /** Columns (input channels) of dx per unit. */
  colBlock: number;
}

/** True when `conv2dBackwardInput` takes the 1×1-map GEMM: one group, 1×1 input and output, one live tap. */
export function unitMapBackwardInput(p: Conv2dParams, taps: readonly number[] | null): boolean {
  return p.groups === 1 && p.h === 1 && p.w === 1 && p.oh === 1 && p.ow === 1 && taps !== null && taps.length === 1;
}

registerTask<UnitMapTask>('conv2d.backwardInputUnitMap', (bufs, q, u0, u1) => {
  const { n, c, o } = q.p;
  const j0 = u0 * q.colBlock, j1 = Math.min(c, u1 * q.colBlock);
  // Column ranges of C give the same bits as one call (sgemmRange), so any thread count gives the same dx.
  sgemmRange(bufs.dx as Float32Array, bufs.dy as Float32Array, bufs.w as Float32Array, n, c, o, { accumulate: true }, 0, n, j0, j1);
});

/** dx: (N, C, 1, 1) += ∂L/∂x, given dy: (N, O, 1, 1), w: (O, C, kH, kW) and the one live tap (unitMapBackwardInput). */
export function unitMapConv2dBackwardInput(dx: Float32Array, dy: Float32Array, w: Float32Array, p: Conv2dParams, tap: number): void {
  const rows = p.o * p.c;
  const wl = liveScratch(0, rows);
  gatherTaps(wl, w, rows, p.kh * p.kw, [tap]);
  const colBlock = 64;
  const units = Math.ceil(p.c / colBlock);
  parallelFor({ kernel: 'conv2d.backwardInputUnitMap', bufs: { dx, dy, w: wl }, writes: ['dx'], params: { p, colBlock }, units, cost: 2 * p.n * p.o * p.c });
}
