// Input gradient of a convolution where every output position meets every input position (ResNet-18's last stages
// on 32×32 images: 3×3 pad 1 on 1×1 and 2×2 maps, 3×3/2 from 2×2 to 1×1). Output position q meets input position r
// through one tap, T(q, r) (densePairTaps, small-map.ts), so with W'' (O·oH·oW × C·H·W),
//   W''[o·oHW + q, c·HW + r] = w[o, c, T(q, r)],
// dx (N × C·HW) += dy (N × O·oHW) · W'' is one plain GEMM over the batch on the tensors as they lie: no transposed
// packing of A, no float64 column matrix, no col2im, no multiply-adds with padding (im2col's 2×2 columns under 3×3
// pad 1 are 5/9 zeros); one rounding per dx entry, dx + Σ over (o, q).
//
// W'' is never formed: the GEMM's B panels are packed straight from w (packPairsB), inside the threads' units
// (256→512 3×3/2 from 2×2 to 1×1, batch 8, one core: gathering the taps on the calling thread first was 1 of its
// 1.6 CPU ms).

import { sgemmRange, type PackB } from '../gemm.js';
import { parallelFor, registerTask } from '../parallel.js';
import type { Conv2dParams } from './plan.js';
import { densePairTaps } from './small-map.js';

interface UnitMapTask {
  p: Conv2dParams;
  /** densePairTaps(p). */
  taps: Int32Array;
  /** Columns (input channels × positions) of dx per unit. */
  colBlock: number;
}

/** True when `conv2dBackwardInput` takes the one GEMM over the batch: see densePairTaps. */
export function unitMapBackwardInput(p: Conv2dParams): boolean {
  return densePairTaps(p) !== null;
}

/**
 * The GEMM's packed B panels (layout: PackB in gemm.ts) of W'' (see the file comment), read from w. Row k = o·oHW + q
 * of W'' starts at w's row o; its column j = c·HW + r at offset c·kH·kW + T(q, r) from there. Columns past the last
 * are zeros.
 */
export function packPairsB(w: Float32Array, p: Conv2dParams, taps: Int32Array): PackB {
  const khw = p.kh * p.kw, hw = p.h * p.w, ohw = p.oh * p.ow, ck = p.c * khw;
  // offs[q·ncPad + j]: column j0 + j's offset in w's row, for output position q.
  let offs = new Int32Array(0);
  return (dst, d0, j0, nc, p0, kl, nr) => {
    const full = Math.floor(nc / nr) * nr, ncPad = Math.ceil(nc / nr) * nr;
    if (offs.length < ohw * ncPad) offs = new Int32Array(ohw * ncPad);
    for (let q = 0; q < ohw; q++) {
      for (let j = 0; j < nc; j++) {
        const col = j0 + j, c = Math.floor(col / hw);
        offs[q * ncPad + j] = c * khw + taps[q * hw + col - c * hw]!;
      }
    }
    // Panels of whole channels (every panel here, as the units' and the GEMM's column blocks are multiples of 8):
    // the taps of one output position in locals, no table reads.
    const whole = nr === 8 && (hw === 4 || hw === 1) && j0 % hw === 0;
    // Row by row (w's row o is read across all panels at once), each row into every panel.
    for (let k = p0; k < p0 + kl; k++) {
      const o = Math.floor(k / ohw), s = o * ck, q = k - o * ohw, t = q * ncPad;
      let d = d0 + (k - p0) * nr, jr = 0;
      if (whole && hw === 4) {
        // 8 columns = 2 channels × 4 positions
        const t0 = taps[q * 4]!, t1 = taps[q * 4 + 1]!, t2 = taps[q * 4 + 2]!, t3 = taps[q * 4 + 3]!;
        for (let a = s + (j0 / 4) * khw; jr < full; jr += 8, d += 8 * kl, a += 2 * khw) {
          const b = a + khw;
          dst[d] = w[a + t0]!;
          dst[d + 1] = w[a + t1]!;
          dst[d + 2] = w[a + t2]!;
          dst[d + 3] = w[a + t3]!;
          dst[d + 4] = w[b + t0]!;
          dst[d + 5] = w[b + t1]!;
          dst[d + 6] = w[b + t2]!;
          dst[d + 7] = w[b + t3]!;
        }
      } else if (whole) {
        // 8 columns = 8 channels at one position
        for (let a = s + j0 * khw + taps[q]!; jr < full; jr += 8, d += 8 * kl, a += 8 * khw) {
          dst[d] = w[a]!;
          dst[d + 1] = w[a + khw]!;
          dst[d + 2] = w[a + 2 * khw]!;
          dst[d + 3] = w[a + 3 * khw]!;
          dst[d + 4] = w[a + 4 * khw]!;
          dst[d + 5] = w[a + 5 * khw]!;
          dst[d + 6] = w[a + 6 * khw]!;
          dst[d + 7] = w[a + 7 * khw]!;
        }
      } else if (nr === 8) {
        for (; jr < full; jr += 8, d += 8 * kl) {
          const f = t + jr;
          dst[d] = w[s + offs[f]!]!;
          dst[d + 1] = w[s + offs[f + 1]!]!;
          dst[d + 2] = w[s + offs[f + 2]!]!;
          dst[d + 3] = w[s + offs[f + 3]!]!;
          dst[d + 4] = w[s + offs[f + 4]!]!;
          dst[d + 5] = w[s + offs[f + 5]!]!;
          dst[d + 6] = w[s + offs[f + 6]!]!;
          dst[d + 7] = w[s + offs[f + 7]!]!;
        }
      }
      for (; jr < ncPad; jr += nr, d += nr * kl) {
        for (let j = 0; j < nr; j++) dst[d + j] = jr + j < nc ? w[s + offs[t + jr + j]!]! : 0;
      }
    }
  };
}

registerTask<UnitMapTask>('conv2d.backwardInputUnitMap', (bufs, q, u0, u1) => {
  const { n, c, o } = q.p;
  const cols = c * q.p.h * q.p.w, k = o * q.p.oh * q.p.ow;
  const j0 = u0 * q.colBlock, j1 = Math.min(cols, u1 * q.colBlock);
  const w = bufs.w as Float32Array;
  // Column ranges give the same bits as one call (sgemmRange), so any thread count gives the same dx.
  sgemmRange(bufs.dx as Float32Array, bufs.dy as Float32Array, w, n, cols, k, { accumulate: true }, 0, n, j0, j1, packPairsB(w, q.p, q.taps));
});

/** dx: (N, C, H, W) += ∂L/∂x, given dy: (N, O, oH, oW) and w: (O, C, kH, kW), where unitMapBackwardInput(p). */
export function unitMapConv2dBackwardInput(dx: Float32Array, dy: Float32Array, w: Float32Array, p: Conv2dParams): void {
  const taps = densePairTaps(p)!, cols = p.c * p.h * p.w, k = p.o * p.oh * p.ow;
  const colBlock = 64;
  const units = Math.ceil(cols / colBlock);
  parallelFor<UnitMapTask>({
    kernel: 'conv2d.backwardInputUnitMap', bufs: { dx, dy, w }, writes: ['dx'], params: { p, taps, colBlock }, units, cost: 2 * p.n * k * cols,
  });
}
