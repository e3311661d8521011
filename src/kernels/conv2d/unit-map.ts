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
// 1.6 CPU ms); on the SIMD backend, where every tap of w is live, by a wasm gather from a copy of w's rows in the
// GEMM's memory (packPairsSimd).
//
// The forward is the transpose: y (N × O·oHW) = x (N × C·HW) · W''ᵀ (+ bias[o] put into y first, so that one
// rounding covers bias + Σ), B panels packed from w likewise (packPairsBT). A fused epilogue runs on each unit's
// columns after its GEMM (two roundings, as on the im2col path).

import { epilogueRows, sgemmRange, SIMD_GEMM_END, type PackB } from '../gemm.js';
import { parallelFor, registerTask } from '../parallel.js';
import { kernelBackend } from '../wasm/features.js';
import { simdGather } from '../wasm/pairs.js';
import { simdGemm } from '../wasm/sgemm.js';
import type { Epilogue } from '../winograd.js';
import type { Conv2dParams } from './plan.js';
import { densePairTaps } from './small-map.js';

interface UnitMapTask {
  p: Conv2dParams;
  /** densePairTaps(p). */
  taps: Int32Array;
  /**
   * Columns of the GEMM's C per unit: dx's (input channels × positions), or y's (output channels × positions, whole
   * channels).
   */
  colBlock: number;
  /** The forward's fused epilogue, or null. */
  ep?: Epilogue | null;
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

/**
 * The GEMM's packed B panels of W''ᵀ (C·HW × O·oHW; see the file comment), read from w: entry [c·HW + r, o·oHW + q]
 * is w[o·C·kH·kW + c·kH·kW + T(q, r)]. Panel by panel (each panel's columns read a few rows of w from start to end).
 * Columns past the last are zeros.
 */
export function packPairsBT(w: Float32Array, p: Conv2dParams, taps: Int32Array): PackB {
  const khw = p.kh * p.kw, hw = p.h * p.w, ohw = p.oh * p.ow, ck = p.c * khw;
  // offs[r·nr + j]: the offset in w of the current panel's column j at input position r and channel 0.
  let offs = new Int32Array(0);
  return (dst, d0, j0, nc, p0, kl, nr) => {
    if (offs.length < hw * nr) offs = new Int32Array(hw * nr);
    for (let jr = 0, d = d0; jr < nc; jr += nr, d += nr * kl) {
      const jn = Math.min(nr, nc - jr);
      for (let j = 0; j < jn; j++) {
        const col = j0 + jr + j, o = Math.floor(col / ohw), q = col - o * ohw;
        for (let r = 0; r < hw; r++) offs[r * nr + j] = o * ck + taps[q * hw + r]!;
      }
      const c0 = Math.floor(p0 / hw);
      let r = p0 - c0 * hw, a = c0 * khw, e = d;
      if (jn === 8 && ohw === 1) {
        // 8 output channels at the one output position: 8 rows of w, the taps' offsets in locals.
        const b0 = offs[0]! - taps[0]!, b1 = b0 + ck, b2 = b1 + ck, b3 = b2 + ck, b4 = b3 + ck, b5 = b4 + ck, b6 = b5 + ck, b7 = b6 + ck;
        for (let k = 0; k < kl; k++, e += 8) {
          const f = a + taps[r]!;
          dst[e] = w[b0 + f]!;
          dst[e + 1] = w[b1 + f]!;
          dst[e + 2] = w[b2 + f]!;
          dst[e + 3] = w[b3 + f]!;
          dst[e + 4] = w[b4 + f]!;
          dst[e + 5] = w[b5 + f]!;
          dst[e + 6] = w[b6 + f]!;
          dst[e + 7] = w[b7 + f]!;
          if (++r === hw) (r = 0), (a += khw);
        }
      } else if (jn === 8 && hw === 4 && ohw === 4 && r === 0 && kl % 4 === 0 && (j0 + jr) % 4 === 0) {
        // 2 output channels × 4 output positions, whole input channels (4 rows): the 16 taps in locals.
        const s0 = offs[0]! - taps[0]!, s1 = s0 + ck;
        const t00 = taps[0]!, t01 = taps[4]!, t02 = taps[8]!, t03 = taps[12]!;
        const t10 = taps[1]!, t11 = taps[5]!, t12 = taps[9]!, t13 = taps[13]!;
        const t20 = taps[2]!, t21 = taps[6]!, t22 = taps[10]!, t23 = taps[14]!;
        const t30 = taps[3]!, t31 = taps[7]!, t32 = taps[11]!, t33 = taps[15]!;
        for (let k = 0; k < kl; k += 4, e += 32, a += khw) {
          const u = s0 + a, v = s1 + a;
          dst[e] = w[u + t00]!;
          dst[e + 1] = w[u + t01]!;
          dst[e + 2] = w[u + t02]!;
          dst[e + 3] = w[u + t03]!;
          dst[e + 4] = w[v + t00]!;
          dst[e + 5] = w[v + t01]!;
          dst[e + 6] = w[v + t02]!;
          dst[e + 7] = w[v + t03]!;
          dst[e + 8] = w[u + t10]!;
          dst[e + 9] = w[u + t11]!;
          dst[e + 10] = w[u + t12]!;
          dst[e + 11] = w[u + t13]!;
          dst[e + 12] = w[v + t10]!;
          dst[e + 13] = w[v + t11]!;
          dst[e + 14] = w[v + t12]!;
          dst[e + 15] = w[v + t13]!;
          dst[e + 16] = w[u + t20]!;
          dst[e + 17] = w[u + t21]!;
          dst[e + 18] = w[u + t22]!;
          dst[e + 19] = w[u + t23]!;
          dst[e + 20] = w[v + t20]!;
          dst[e + 21] = w[v + t21]!;
          dst[e + 22] = w[v + t22]!;
          dst[e + 23] = w[v + t23]!;
          dst[e + 24] = w[u + t30]!;
          dst[e + 25] = w[u + t31]!;
          dst[e + 26] = w[u + t32]!;
          dst[e + 27] = w[u + t33]!;
          dst[e + 28] = w[v + t30]!;
          dst[e + 29] = w[v + t31]!;
          dst[e + 30] = w[v + t32]!;
          dst[e + 31] = w[v + t33]!;
        }
      } else if (jn === 8) {
        for (let k = 0; k < kl; k++, e += 8) {
          const f = r * 8;
          dst[e] = w[a + offs[f]!]!;
          dst[e + 1] = w[a + offs[f + 1]!]!;
          dst[e + 2] = w[a + offs[f + 2]!]!;
          dst[e + 3] = w[a + offs[f + 3]!]!;
          dst[e + 4] = w[a + offs[f + 4]!]!;
          dst[e + 5] = w[a + offs[f + 5]!]!;
          dst[e + 6] = w[a + offs[f + 6]!]!;
          dst[e + 7] = w[a + offs[f + 7]!]!;
          if (++r === hw) (r = 0), (a += khw);
        }
      } else {
        for (let k = 0; k < kl; k++, e += nr) {
          for (let j = 0; j < nr; j++) dst[e + j] = j < jn ? w[a + offs[r * nr + j]!]! : 0;
          if (++r === hw) (r = 0), (a += khw);
        }
      }
    }
  };
}

/**
 * Floats of w that packPairsSimd copies at most (2.4 MB: all of a 256→256 3×3 layer's weights; the GEMM's memory
 * keeps its size for the process, on every thread).
 */
const MAX_COPY = 256 * 256 * 9;

/**
 * packPairsB or packPairsBT (`forward`) on the SIMD backend for a unit whose GEMM has columns [j0, j1), the same
 * values; else `js`. The rows of w that the unit's panels read are copied once into the GEMM's memory, past
 * SIMD_GEMM_END (the memory sized for them first): the forward's output channels, whole rows, in one copy; the input
 * gradient's input channels, a span of every row. wasm/pairs.ts's `gather` then packs each call's whole 8-column
 * panels from that copy, through a table of the taps' byte offsets that is the same for every panel (panels of whole
 * channels: the positions on the panels' side divide 8). Only where every tap of w is live (2×2 maps under 3×3 pad 1),
 * as the copy moves all of them: 1×1 maps (one live tap of 9) and 3×3/2 from 2×2 (4 of 9) are left to `js`, and so
 * is any other packing (partial panels, columns that start inside a channel, copies of more than MAX_COPY floats).
 */
export function packPairsSimd(w: Float32Array, p: Conv2dParams, taps: Int32Array, forward: boolean, js: PackB, j0: number, j1: number): PackB {
  const khw = p.kh * p.kw, hw = p.h * p.w, ohw = p.oh * p.ow, ck = p.c * khw;
  // Positions per channel on the panels' side and on the rows' side (the table's period).
  const cpos = forward ? ohw : hw, rpos = forward ? hw : ohw;
  const live = new Set(taps).size === khw;
  if (!live || 8 % cpos !== 0 || j0 % cpos !== 0) return js;
  // The copy: w's rows [oa, ob), floats [x0, x0 + len) of each, len apart.
  const ca = j0 / cpos, cb = Math.ceil(j1 / cpos);
  const [oa, ob, x0, len] = forward ? [ca, cb, 0, ck] : [0, p.o, ca * khw, (cb - ca) * khw];
  if ((ob - oa) * len > MAX_COPY) return js;
  const tabAt = SIMD_GEMM_END, sAt = tabAt + Math.ceil((8 * rpos) / 16) * 16;
  const f = simdGemm(4 * (sAt + (ob - oa) * len)).f;
  if (len === ck) f.set(w.subarray(oa * ck, ob * ck), sAt);
  else for (let o = oa; o < ob; o++) f.set(w.subarray(o * ck + x0, o * ck + x0 + len), sAt + (o - oa) * len);
  // tab[r·8 + j]: a panel's column j's byte offset from the panel's base at row position r.
  const tab = new Int32Array(f.buffer, f.byteOffset + 4 * tabAt, rpos * 8);
  for (let r = 0; r < rpos; r++) {
    for (let j = 0; j < 8; j++) {
      const jc = Math.floor(j / cpos), jq = j - jc * cpos;
      tab[r * 8 + j] = 4 * (forward ? jc * len + taps[jq * hw + r]! : jc * khw + taps[r * hw + jq]!);
    }
  }
  // Per panel: 8 / cpos channels on (copy rows forward, channels of a row backward); per wrap of r: the next channel
  // of the rows' side (a tap group forward, a copy row backward).
  const panelStep = forward ? (8 / cpos) * len : (8 / cpos) * khw, rowStep = forward ? khw : len;
  const gather = simdGather();
  return (dst, d0, jc, nc, p0, kl, nr) => {
    if (nr !== 8 || nc % 8 !== 0 || jc % cpos !== 0 || dst.buffer !== f.buffer) {
      js(dst, d0, jc, nc, p0, kl, nr);
      return;
    }
    // The first panel's base: its first channel on the panels' side, the rows' side's channel of row p0.
    const kc = Math.floor(p0 / rpos), pc = jc / cpos;
    const base = sAt + (forward ? (pc - oa) * len + kc * khw : kc * len + (pc - ca) * khw);
    gather(4 * base, 4 * tabAt, rpos, p0 - kc * rpos, kl, 4 * rowStep, nc / 8, 4 * panelStep, 4 * d0);
  };
}

registerTask<UnitMapTask>('conv2d.forwardUnitMap', (bufs, q, u0, u1) => {
  const { n, c, o } = q.p;
  const cols = o * q.p.oh * q.p.ow, k = c * q.p.h * q.p.w, ohw = q.p.oh * q.p.ow;
  const j0 = u0 * q.colBlock, j1 = Math.min(cols, u1 * q.colBlock);
  const y = bufs.y as Float32Array, w = bufs.w as Float32Array, bias = bufs.bias as Float32Array | null;
  // Bias into C first (one rounding covers bias + Σ): the unit's columns are whole output channels.
  if (bias !== null) {
    for (let i = 0; i < n; i++) for (let ch = j0 / ohw; ch < j1 / ohw; ch++) y.fill(bias[ch]!, i * cols + ch * ohw, i * cols + (ch + 1) * ohw);
  }
  let pack = packPairsBT(w, q.p, q.taps);
  if (kernelBackend() === 'simd') {
    pack = packPairsSimd(w, q.p, q.taps, true, pack, j0, j1);
  }
  sgemmRange(y, bufs.x as Float32Array, w, n, cols, k, { accumulate: bias !== null }, 0, n, j0, j1, pack);
  if (q.ep) {
    const ep = { ...q.ep, res: bufs.res as Float32Array | null, ch0: 0 };
    for (let i = 0; i < n; i++) epilogueRows(y, ep, i * cols, ohw, j0 / ohw, j1 / ohw, 0, ohw);
  }
});

registerTask<UnitMapTask>('conv2d.backwardInputUnitMap', (bufs, q, u0, u1) => {
  const { n, c, o } = q.p;
  const cols = c * q.p.h * q.p.w, k = o * q.p.oh * q.p.ow;
  const j0 = u0 * q.colBlock, j1 = Math.min(cols, u1 * q.colBlock);
  const w = bufs.w as Float32Array;
  // Column ranges give the same bits as one call (sgemmRange), so any thread count gives the same dx.
  let pack = packPairsB(w, q.p, q.taps);
  if (kernelBackend() === 'simd') {
    pack = packPairsSimd(w, q.p, q.taps, false, pack, j0, j1);
  }
  sgemmRange(bufs.dx as Float32Array, bufs.dy as Float32Array, w, n, cols, k, { accumulate: true }, 0, n, j0, j1, pack);
});

/**
 * y: (N, O, oH, oW), overwritten, = conv(x, w) + bias, then the epilogue with res: (N, O, oH, oW) if given, where
 * unitMapBackwardInput(p) (see the file comment).
 */
export function unitMapConv2dForward(
  y: Float32Array,
  x: Float32Array,
  w: Float32Array,
  bias: Float32Array | null,
  p: Conv2dParams,
  res: Float32Array | null = null,
  ep: Epilogue | null = null,
): void {
  const taps = densePairTaps(p)!, ohw = p.oh * p.ow, cols = p.o * ohw, k = p.c * p.h * p.w;
  const colBlock = ohw * Math.ceil(64 / ohw);
  const units = Math.ceil(cols / colBlock);
  parallelFor<UnitMapTask>({
    kernel: 'conv2d.forwardUnitMap', bufs: { y, x, w, bias, res }, writes: ['y'], overwrites: ['y'], params: { p, taps, colBlock, ep }, units, cost: 2 * p.n * k * cols,
  });
}

/** dx: (N, C, H, W) += ∂L/∂x, given dy: (N, O, oH, oW) and w: (O, C, kH, kW), where unitMapBackwardInput(p). */
export function unitMapConv2dBackwardInput(dx: Float32Array, dy: Float32Array, w: Float32Array, p: Conv2dParams): void {
  const taps = densePairTaps(p)!, cols = p.c * p.h * p.w, k = p.o * p.oh * p.ow;
  const colBlock = 64;
  const units = Math.ceil(cols / colBlock);
  parallelFor<UnitMapTask>({
    kernel: 'conv2d.backwardInputUnitMap', bufs: { dx, dy, w }, writes: ['dx'], params: { p, taps, colBlock }, units, cost: 2 * p.n * k * cols,
  });
}
