// The forward of a 1×1 convolution without padding on the SIMD backend: per image and group,
// y_g (og × oHW) = w_g (og × cg) · x_g (cg × oHW, the positions the stride meets), by wasm/pointwise.ts's kernel.
// x's rows are copied into the wasm memory as they lie (one copy when a unit takes whole rows; at a stride, the
// positions it meets gathered) and read there as the GEMM's B: no packed B panels, no float64 C block; the outputs
// are written to rows laid out as y's and copied out (again one copy for whole rows).
// A unit packs its rows of the weights into A panels, kept for the next unit of the same call, group and rows (the
// column blocks of one row block); x's copy likewise for the same call, image, group and columns.
//
// Results: the packed GEMM's bits (see wasm/pointwise.ts), so the same for any thread count or split.

import { simdGemm } from '../wasm/sgemm.js';
import { PW_BIAS, PW_EP, PW_MR, PW_NV, PW_RELU, PW_RES, pointwiseScratch, simdPointwise } from '../wasm/pointwise.js';
import type { Epilogue } from '../winograd.js';
import { COL_CAP, type Conv2dParams } from './plan.js';

/** Weight rows per kernel call: an A block of at most this many floats (256 KB) stays in L2 while x's columns go by. */
const A_BLOCK = 2 ** 16;

/** What this thread's memory holds: the call (task params) and group whose weights are packed, and x's copy. */
const heldW = { call: null as object | null, g: -1, r0: -1, r1: -1, buf: null as ArrayBuffer | null };
const heldX = { call: null as object | null, img: -1, g: -1, c0: -1, c1: -1, buf: null as ArrayBuffer | null };

/**
 * Rows [r0, r1) (output channels within group g) and columns [j0, j1) (positions) of image img of y = conv(x, w)
 * (+ bias[o], rounded once with the sum), or with ep its epilogue (res: read at y's indices), for a pointwise p.
 * `call` names the call (an object shared by its units): packed weights and x's copy are reused within it.
 */
export function pointwiseUnit(
  y: Float32Array, x: Float32Array, w: Float32Array, bias: Float32Array | null, res: Float32Array | null, ep: Epilogue | null,
  p: Conv2dParams, call: object, img: number, g: number, j0: number, j1: number, r0: number, r1: number,
): void {
  const cg = p.c / p.groups, og = p.o / p.groups, hw = p.h * p.w, ohw = p.oh * p.ow, K = cg;
  const strided = p.strideH !== 1 || p.strideW !== 1;
  const mPad = Math.ceil((r1 - r0) / PW_MR) * PW_MR;
  const cols = 4 * PW_NV;
  // Columns per pass: x's copy at most COL_CAP floats (a multiple of the tile's width).
  const chunk = Math.max(cols, Math.floor(COL_CAP / K / cols) * cols);
  const xOff = (img * p.c + g * cg) * hw, yOff = (img * p.o + g * og) * ohw;
  const flags = ep === null ? (bias !== null ? PW_BIAS : 0) : PW_EP | (res !== null ? PW_RES : 0) | (ep.relu ? PW_RELU : 0);
  for (let c0 = j0; c0 < j1; c0 += chunk) {
    const c1 = Math.min(j1, c0 + chunk), nb = c1 - c0, rows = r1 - r0;
    // Floats: A panels (mPad × K) | x's rows (K × nb, or the weights' rows while they are packed) | y's rows |
    // then doubles: scale (or unused), shift (or bias), the kernel's scratch. 16 floats of slack after x and y: a last
    // partial tile reads up to 4·NV − 1 columns past a row.
    const xAt = mPad * K, yAt = xAt + Math.max(K * nb, rows * K) + 16, dAt = Math.ceil((yAt + rows * nb + 16) / 2);
    const tmpAt = dAt + 2 * rows;
    const gm = simdGemm(8 * tmpAt + pointwiseScratch(PW_MR, PW_NV));
    const f = gm.f, h = gm.h, buf = f.buffer as ArrayBuffer;
    if (heldW.call !== call || heldW.g !== g || heldW.r0 !== r0 || heldW.r1 !== r1 || heldW.buf !== buf) {
      // The rows of w_g as they lie, then whole 4-row panels packed in wasm, a last partial panel (zero rows) here.
      const wOff = (g * og + r0) * K, whole = rows >> 2;
      f.set(w.subarray(wOff, wOff + rows * K), xAt);
      gm.packA(4 * xAt, 4 * K, whole, K, 0);
      for (let i = 4 * whole; i < mPad; i++) {
        for (let q = 0; q < K; q++) f[4 * whole * K + q * 4 + (i - 4 * whole)] = i < rows ? w[wOff + i * K + q]! : 0;
      }
      Object.assign(heldW, { call, g, r0, r1, buf });
      heldX.call = null;
    }
    if (heldX.call !== call || heldX.img !== img || heldX.g !== g || heldX.c0 !== c0 || heldX.c1 !== c1 || heldX.buf !== buf) {
      if (strided) gatherStrided(f, xAt, x, xOff, p, K, c0, c1);
      else if (nb === hw) f.set(x.subarray(xOff, xOff + K * hw), xAt);
      else for (let q = 0; q < K; q++) f.set(x.subarray(xOff + q * hw + c0, xOff + q * hw + c1), xAt + q * nb);
      Object.assign(heldX, { call, img, g, c0, c1, buf });
    }
    // Per row of the unit: scale (1 where none) and shift, or the bias.
    for (let i = 0; i < rows; i++) {
      const ch = g * og + r0 + i;
      if (ep !== null) {
        h[dAt + i] = ep.scale ? ep.scale[ch]! : 1;
        h[dAt + rows + i] = ep.shift ? ep.shift[ch]! : 0;
      } else if (bias !== null) {
        h[dAt + rows + i] = bias[ch]!;
      }
    }
    if (res !== null) moveRows(f, yAt, res, yOff, r0, rows, ohw, c0, nb, true);
    const fn = simdPointwise();
    const mc = Math.max(PW_MR, Math.floor(A_BLOCK / K / PW_MR) * PW_MR);
    for (let i0 = r0; i0 < r1; i0 += mc) {
      const m = Math.min(r1, i0 + mc) - i0;
      const i = i0 - r0;
      fn(K, m, nb, 4 * i * K, 4 * xAt, 4 * nb, 4 * (yAt + i * nb), 4 * nb, flags, 8 * (dAt + i), 8 * (dAt + rows + i), 8 * tmpAt);
    }
    moveRows(f, yAt, y, yOff, r0, rows, ohw, c0, nb, false);
  }
}

/** x's values at output positions [c0, c1) of K channels (x_g at xOff) at the stride, into rows at f[at …]. */
function gatherStrided(f: Float32Array, at: number, x: Float32Array, xOff: number, p: Conv2dParams, K: number, c0: number, c1: number): void {
  const { w, ow, strideH: sh, strideW: sw } = p, hw = p.h * w;
  const oy0 = Math.floor(c0 / ow);
  for (let q = 0, d = at; q < K; q++) {
    const base = xOff + q * hw;
    for (let oy = oy0, j = c0; j < c1; oy++) {
      const ox0 = j - oy * ow, len = Math.min(ow - ox0, c1 - j);
      for (let s = base + oy * sh * w + ox0 * sw, e = d + len; d < e; d++, s += sw) f[d] = x[s]!;
      j += len;
    }
  }
}

/**
 * Rows [r0, r0 + rows) of a (channels of hw values from off), columns [c0, c0 + nb), and the staging rows at f[at …]
 * (nb apart): into the staging (toWasm) or back. One copy when the rows are whole.
 */
function moveRows(f: Float32Array, at: number, a: Float32Array, off: number, r0: number, rows: number, hw: number, c0: number, nb: number, toWasm: boolean): void {
  if (nb === hw) {
    const s = off + r0 * hw;
    if (toWasm) f.set(a.subarray(s, s + rows * hw), at);
    else a.set(f.subarray(at, at + rows * hw), s);
    return;
  }
  for (let i = 0; i < rows; i++) {
    const s = off + (r0 + i) * hw + c0;
    if (toWasm) f.set(a.subarray(s, s + nb), at + i * nb);
    else a.set(f.subarray(at + i * nb, at + (i + 1) * nb), s);
  }
}
