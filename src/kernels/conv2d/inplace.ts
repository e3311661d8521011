// Forward GEMM units on the SIMD backend that write their outputs in place: per image and group,
// y_g (og × oHW) = w_g (og × K) · B (K × oHW), by wasm/pointwise.ts's kernel, whose register tiles round their sums
// (and apply the bias or the fused epilogue) straight into rows laid out as y's: no float64 C block stored, rounded
// and copied out row block by row block; the unit's rows are copied out once (one copy when they are whole rows).
// B is either
//   - x itself, for a 1×1 convolution without padding: x's rows copied into the wasm memory as they lie (one copy
//     when the unit takes whole rows; at a stride, the positions it meets gathered, or when all of them fit
//     PANELS_WHOLE, packed as 8-column panels straight from x) and read there; or
//   - im2col's packed 8-column panels (a PackB, as the packed GEMM's), chunk by chunk, for the other convolutions
//     whose weights fit WHOLE_A (conv1's 7×7/2, the 3×3/2 convs with few channels).
// A unit copies its rows of the weights into the wasm memory as they lie (one copy; the kernel reads them there, no
// packing), kept for the next unit of the same call, group and rows (the column blocks of one row block); x's copy
// likewise for the same call, image, group and columns (and the rows' offset).
//
// Results: the packed GEMM's bits (see wasm/pointwise.ts), so the same for any thread count or split. The kernel
// also checks what it stores: a unit says whether all its outputs are finite (for forward.ts's finiteness note).

import type { PackB } from '../gemm.js';
import { simdGemm } from '../wasm/sgemm.js';
import { PW_BIAS, PW_EP, PW_EP32, PW_MR, PW_NV, PW_RELU, PW_RES, pointwiseCheckAt, pointwiseScratch, simdPointwise } from '../wasm/pointwise.js';
import type { Epilogue } from '../winograd.js';
import { packStrided1x1 } from './pack.js';
import { COL_CAP, roundUp4, type Conv2dParams } from './plan.js';

/** Largest whole copy of a strided x (floats) held as panels (gemmForwardUnit). */
const PANELS_WHOLE = 2 ** 17;
/** Weight rows per kernel call: an A block of at most this many floats (256 KB) stays in L2 while B's columns go by. */
const A_BLOCK = 2 ** 16;
/** Largest weight block (rows × K floats) the panel path takes whole. */
const WHOLE_A = 2 ** 18;
/** Panels: at most this many floats per chunk of B (512 KB), and at most GEMM_NC (512) columns (im2col's planes). */
const B_CHUNK = 2 ** 17;
const B_COLS = 512;
/**
 * Output maps of at most this many positions (stride 1, x whole): x's rows are also packed into 8-column panels, in
 * wasm, for the kernel to read 32 contiguous bytes per k step rather than 32 of every 4·oHW (2048→512 @7, the
 * kernel calls alone, one core, interleaved: −4 to −10%).
 */
const PANEL_MAP = 64;

/**
 * Whether gemmForwardUnit takes rows × K weights with B from panels: the weights copied whole (at most WHOLE_A
 * floats, 1 MB) and chunks of ≥ 8 columns (B_CHUNK), all below SIMD_GEMM_END (where im2col's planes begin).
 */
export function panelsFit(rows: number, K: number): boolean {
  return Math.ceil(rows / PW_MR) * PW_MR * K <= WHOLE_A && 8 * K <= B_CHUNK;
}

/**
 * What this thread's memory holds: the call (task params), group and rows whose weights are copied, and x's copy
 * (with its panels or not).
 */
const heldW = { call: null as object | null, g: -1, r0: -1, r1: -1, buf: null as ArrayBuffer | null };
const heldX = { call: null as object | null, img: -1, g: -1, c0: -1, c1: -1, at: -1, panels: false, buf: null as ArrayBuffer | null };
/** Where the kernel leaves its finiteness check, in bytes from its scratch. */
const checkAt = pointwiseCheckAt(PW_MR, PW_NV);

/**
 * Rows [r0, r1) (output channels within group g) and columns [j0, j1) (output positions) of image img of
 * y = conv(x, w) (+ bias[o], rounded once with the sum), or with ep its epilogue (res: read at y's indices). K rows
 * of B: x's (pack null: a 1×1 conv without padding) or pack's panels. `call` names the call (an object shared by its
 * units): the weights' copy and x's copy are reused within it. ep32: the epilogue in float32 (wasm/pointwise.ts,
 * PW_EP32; inference only). Returns whether every output it stored is finite.
 */
export function gemmForwardUnit(
  y: Float32Array, x: Float32Array, w: Float32Array, bias: Float32Array | null, res: Float32Array | null, ep: Epilogue | null,
  p: Conv2dParams, call: object, img: number, g: number, j0: number, j1: number, r0: number, r1: number, K: number, pack: PackB | null,
  ep32 = false,
): boolean {
  const cg = p.c / p.groups, og = p.o / p.groups, hw = p.h * p.w, ohw = p.oh * p.ow;
  const rows = r1 - r0, mPad = Math.ceil(rows / PW_MR) * PW_MR;
  const cols = 4 * PW_NV;
  // x's copy (pointwise) holds all the image's positions when they fit in COL_CAP floats: a thread copies it once
  // (one copy) for all the column blocks it runs, rather than each block's part row by row (256→64 @56, its 8 units
  // run one by one on one thread: +21% → +4% over all at once).
  const xWhole = pack === null && K * ohw <= COL_CAP;
  const xPanels = xWhole && ohw <= PANEL_MAP && p.strideH === 1 && p.strideW === 1 && j0 === 0 && j1 === ohw;
  const panels = Math.ceil(ohw / 8);
  // At a stride, a whole copy of at most PANELS_WHOLE floats is held as 8-column panels packed straight from x at xAt
  // (packStrided1x1: about half the cost of gathering x's rows at the stride), read by the kernel as panels.
  const sPanels = xWhole && (p.strideH !== 1 || p.strideW !== 1) && K * ohw <= PANELS_WHOLE && j0 % 8 === 0;
  // Columns per pass: x's copy (pointwise, unless whole) and y's rows at most COL_CAP floats each; panel chunks
  // within a pass.
  const pass = Math.max(cols, Math.floor(COL_CAP / (pack === null && !xWhole ? Math.max(K, rows) : rows) / cols) * cols);
  const chunk = Math.min(B_COLS, Math.max(cols, Math.floor(B_CHUNK / K / cols) * cols));
  const xOff = (img * p.c + g * cg) * hw, yOff = (img * p.o + g * og) * ohw;
  const flags = ep === null ? (bias !== null ? PW_BIAS : 0) : PW_EP | (res !== null ? PW_RES : 0) | (ep32 ? PW_EP32 : 0) | (ep.relu ? PW_RELU : 0);
  const mc = Math.max(PW_MR, Math.floor(A_BLOCK / K / PW_MR) * PW_MR);
  let finite = true;
  for (let c0 = j0; c0 < j1; c0 += pass) {
    const c1 = Math.min(j1, c0 + pass), nb = c1 - c0;
    // Floats: A, the weights' rows (mPad × K, zero past rows) | B: x's rows (K × nb) or a chunk of panels (K × chunk)
    // | y's rows | then doubles: scale (or unused), shift (or bias), the kernel's scratch. 16 floats of slack after B
    // and y: a last partial tile reads up to 4·NV − 1 columns past a row.
    // With xPanels, x's panels (K × 8 per panel) follow x's rows; with sPanels, they are x's copy.
    const xAt = mPad * K, panelAt = xAt + roundUp4((xWhole ? K * (sPanels ? 8 * panels : ohw) : pack === null ? K * nb : K * chunk) + 16);
    const yAt = xPanels ? panelAt + 8 * K * panels + 16 : panelAt;
    const dAt = Math.ceil((yAt + rows * nb + 16) / 2), tmpAt = dAt + 2 * rows;
    const gm = simdGemm(8 * tmpAt + pointwiseScratch(PW_MR, PW_NV));
    const f = gm.f, h = gm.h, buf = f.buffer as ArrayBuffer;
    if (heldW.call !== call || heldW.g !== g || heldW.r0 !== r0 || heldW.r1 !== r1 || heldW.buf !== buf) {
      // The rows of w_g as they lie (one copy), then zero rows up to a whole tile.
      const wOff = (g * og + r0) * K;
      f.set(w.subarray(wOff, wOff + rows * K), 0);
      f.fill(0, rows * K, mPad * K);
      Object.assign(heldW, { call, g, r0, r1, buf });
    }
    // x's copy: positions [x0, x1), rows xn apart. (Panels overwrite it: a strided 1×1 call's units may take either.)
    const x0 = xWhole ? 0 : c0, x1 = xWhole ? ohw : c1, xn = x1 - x0;
    if (pack !== null) heldX.call = null;
    if (pack === null && (heldX.call !== call || heldX.img !== img || heldX.g !== g || heldX.c0 !== x0 || heldX.c1 !== x1 || heldX.at !== xAt || heldX.panels !== xPanels || heldX.buf !== buf)) {
      if (sPanels) packStrided1x1(f, xAt, x, xOff, p, 0, ohw, 0, K);
      else if (p.strideH !== 1 || p.strideW !== 1) gatherStrided(f, xAt, x, xOff, p, K, x0, x1);
      else if (xn === hw) f.set(x.subarray(xOff, xOff + K * hw), xAt);
      else for (let q = 0; q < K; q++) f.set(x.subarray(xOff + q * hw + x0, xOff + q * hw + x1), xAt + q * xn);
      // The last panel's columns past oHW are read past a row's end (the next row's, or the 16 floats of slack).
      if (xPanels) gm.packB(4 * xAt, 4 * ohw, panels, K, 4 * panelAt);
      Object.assign(heldX, { call, img, g, c0: x0, c1: x1, at: xAt, panels: xPanels, buf });
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
    const fn = simdPointwise(K);
    // Columns [b0, b0 + bn) of this pass from B at pb (bytes; its row p ldb bytes apart, tiles cstep bytes per column).
    const run = (b0: number, bn: number, pb: number, ldb: number, cstep: number): void => {
      for (let i = 0; i < rows; i += mc) {
        const m = Math.min(rows - i, mc);
        fn(K, m, bn, 4 * i * K, pb, ldb, cstep, 4 * (yAt + i * nb + b0), 4 * nb, flags, 8 * (dAt + i), 8 * (dAt + rows + i), 8 * tmpAt);
        // The call's check: four finite sums when all it stored is finite (v − v is NaN for NaN and ±Inf).
        const c = (8 * tmpAt + checkAt) >> 2;
        if (f[c]! - f[c]! + (f[c + 1]! - f[c + 1]!) + (f[c + 2]! - f[c + 2]!) + (f[c + 3]! - f[c + 3]!) !== 0) finite = false;
      }
    };
    if (xPanels) run(0, nb, 4 * panelAt, 32, 4 * K);
    else if (sPanels) run(0, nb, 4 * (xAt + c0 * K), 32, 4 * K);
    else if (pack === null) run(0, nb, 4 * (xAt + c0 - x0), 4 * xn, 4);
    else {
      for (let b0 = 0; b0 < nb; b0 += chunk) {
        const bn = Math.min(chunk, nb - b0);
        pack(f, xAt, c0 - j0 + b0, bn, 0, K, 8);
        run(b0, bn, 4 * xAt, 32, 4 * K);
      }
    }
    moveRows(f, yAt, y, yOff, r0, rows, ohw, c0, nb, false);
  }
  return finite;
}

/** x's values at output positions [c0, c1) of K channels (x_g at xOff) at the stride, into rows at f[at …]. */
function gatherStrided(f: Float32Array, at: number, x: Float32Array, xOff: number, p: Conv2dParams, K: number, c0: number, c1: number): void {
  const { w, ow, strideH: sh, strideW: sw } = p, hw = p.h * w;
  const oy0 = Math.floor(c0 / ow), sw2 = 2 * sw, sw3 = 3 * sw, sw4 = 4 * sw;
  for (let q = 0, d = at; q < K; q++) {
    const base = xOff + q * hw;
    for (let oy = oy0, j = c0; j < c1; oy++) {
      const ox0 = j - oy * ow, len = Math.min(ow - ox0, c1 - j), e = d + len;
      let s = base + oy * sh * w + ox0 * sw;
      // Four at a time (1×1/2 64→128 @56, one thread: 70 → 40 µs).
      for (; d + 4 <= e; d += 4, s += sw4) {
        f[d] = x[s]!;
        f[d + 1] = x[s + sw]!;
        f[d + 2] = x[s + sw2]!;
        f[d + 3] = x[s + sw3]!;
      }
      for (; d < e; d++, s += sw) f[d] = x[s]!;
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
