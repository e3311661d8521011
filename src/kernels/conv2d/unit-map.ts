// Input gradient of a convolution whose output is one position that every input position meets (ResNet-18's last
// stage on 32×32 images: 3×3 pad 1 on a 1×1 map, 3×3/2 from 2×2 to 1×1). Input position r meets the output through
// one tap, tap(r) (small-map.ts), so with W' (O × C·HW), W'[o, c·HW + r] = w[o, c, tap(r)],
// dx (N × C·HW) += dy (N × O) · W' is one plain GEMM over the batch on the tensors as they lie: no transposed
// packing of A, no float64 column matrix, no col2im; one rounding per dx entry, dx + Σ_o.
//
// W' is never formed: the GEMM's B panels are packed straight from w at the live taps (packTapsB), inside the
// threads' units, instead of gathering W' on the calling thread first and packing from the copy (256→512 3×3/2
// from 2×2, batch 8, one core: the gather alone was 1 of 1.6 CPU ms).

import { sgemmRange, type PackB } from '../gemm.js';
import { parallelFor, registerTask } from '../parallel.js';
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

/**
 * The GEMM's packed B panels (layout: PackB in gemm.ts) of W' (O × C·HW, W'[o, c·HW + r] = w[o, c, taps[r]]), read
 * from w: column j of W' is w's row offset c·kH·kW + taps[r], j = c·HW + r. Columns past the last are zeros.
 */
export function packTapsB(w: Float32Array, p: Conv2dParams, taps: Int32Array): PackB {
  const khw = p.kh * p.kw, hw = taps.length, ck = p.c * khw;
  const at = (j: number): number => {
    const c = Math.floor(j / hw);
    return c * khw + taps[j - c * hw]!;
  };
  return (dst, d0, j0, nc, p0, kl, nr) => {
    let d = d0;
    for (let jr = 0; jr < nc; jr += nr) {
      const width = Math.min(nr, nc - jr), col = j0 + jr;
      if (width === 8) {
        const o0 = at(col), o1 = at(col + 1), o2 = at(col + 2), o3 = at(col + 3);
        const o4 = at(col + 4), o5 = at(col + 5), o6 = at(col + 6), o7 = at(col + 7);
        for (let q = 0, s = p0 * ck; q < kl; q++, s += ck, d += 8) {
          dst[d] = w[s + o0]!;
          dst[d + 1] = w[s + o1]!;
          dst[d + 2] = w[s + o2]!;
          dst[d + 3] = w[s + o3]!;
          dst[d + 4] = w[s + o4]!;
          dst[d + 5] = w[s + o5]!;
          dst[d + 6] = w[s + o6]!;
          dst[d + 7] = w[s + o7]!;
        }
        continue;
      }
      if (width === 4 && nr === 4) {
        const o0 = at(col), o1 = at(col + 1), o2 = at(col + 2), o3 = at(col + 3);
        for (let q = 0, s = p0 * ck; q < kl; q++, s += ck, d += 4) {
          dst[d] = w[s + o0]!;
          dst[d + 1] = w[s + o1]!;
          dst[d + 2] = w[s + o2]!;
          dst[d + 3] = w[s + o3]!;
        }
        continue;
      }
      const offs: number[] = [];
      for (let j = 0; j < width; j++) offs.push(at(col + j));
      for (let q = 0, s = p0 * ck; q < kl; q++, s += ck, d += nr) {
        for (let j = 0; j < nr; j++) dst[d + j] = j < width ? w[s + offs[j]!]! : 0;
      }
    }
  };
}

registerTask<UnitMapTask>('conv2d.backwardInputUnitMap', (bufs, q, u0, u1) => {
  const { n, c, o } = q.p;
  const cols = c * q.p.h * q.p.w;
  const j0 = u0 * q.colBlock, j1 = Math.min(cols, u1 * q.colBlock);
  const w = bufs.w as Float32Array;
  // Column ranges give the same bits as one call (sgemmRange), so any thread count gives the same dx.
  sgemmRange(bufs.dx as Float32Array, bufs.dy as Float32Array, w, n, cols, o, { accumulate: true }, 0, n, j0, j1, packTapsB(w, q.p, oneOutputTaps(q.p)!));
});

/** dx: (N, C, H, W) += ∂L/∂x, given dy: (N, O, 1, 1) and w: (O, C, kH, kW), where unitMapBackwardInput(p). */
export function unitMapConv2dBackwardInput(dx: Float32Array, dy: Float32Array, w: Float32Array, p: Conv2dParams): void {
  const cols = p.c * p.h * p.w;
  const colBlock = 64;
  const units = Math.ceil(cols / colBlock);
  parallelFor({ kernel: 'conv2d.backwardInputUnitMap', bufs: { dx, dy, w }, writes: ['dx'], params: { p, colBlock }, units, cost: 2 * p.n * p.o * cols });
}
