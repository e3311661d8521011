// The forward convolution: Winograd where it applies and pays, else im2col + GEMM units; the fused epilogue.

import { epilogueRows, GEMM_NC, scratchLength, sgemmRange, SIMD_GEMM_END, type BKey, type GemmEpilogue, type PackB } from '../gemm.js';
import { noteFinite } from '../finite.js';
import { parallelFor, registerTask, sharedFloat64 } from '../parallel.js';
import { NO_EPILOGUE, winogradConv, type Epilogue } from '../winograd.js';
import { directForward, directForwardFused, forwardShape, packDirectWeights, runDirect } from './direct.js';
import { kernelBackend } from '../wasm/features.js';
import { simdGemm } from '../wasm/sgemm.js';
import {
  f32Scratch, gatherTaps, im2colRange, im2colSimdFloats, liveScratch, packIm2col, packIm2colSimd, packStrided1x1, tapTable,
} from './pack.js';
import { gemmForwardUnit, panelsFit } from './inplace.js';
import { unitMapConv2dForward } from './unit-map.js';
import { densePairTaps } from './small-map.js';
import { forwardTask, forwardWinograd, isPointwise, liveTaps, pointwiseSimd, type Conv2dParams, type ForwardTask } from './plan.js';

/**
 * Forward units [u0, u1): unit = ((imgChunk·colBlocks) + colBlock)·rowBlocks + rowBlock. Units of one image that run
 * here together (one thread runs them all) are one GEMM: whole column blocks side by side, or the row blocks of one
 * column block (the same bits: a GEMM's sums do not depend on how C is split). Each row copied into or out of the
 * wasm memory is then longer and B's panels are packed once (1×1 256→64 @56, one thread: −6%).
 */
function forwardUnits(
  y: Float32Array,
  x: Float32Array,
  w: Float32Array,
  bias: Float32Array | null,
  res: Float32Array | null,
  q: ForwardTask,
  u0: number,
  u1: number,
  fin: Float64Array | null,
): void {
  const { p, ep, taps } = q;
  const { n, c, h, o, kh, kw, groups, oh, ow } = p;
  const cg = c / groups, og = o / groups;
  const K = cg * (taps ? taps.length : kh * kw), ohw = oh * ow, hw = h * p.w;
  const pointwise = isPointwise(p);
  const addBias = ep === null && bias !== null;
  const simd = kernelBackend() === 'simd';
  for (let unit = u0; unit < u1;) {
    const rb = unit % q.rowBlocks;
    const rest = (unit - rb) / q.rowBlocks;
    const cbi = rest % q.colBlocks;
    const n0 = ((rest - cbi) / q.colBlocks) * q.imgChunk;
    const nc = Math.min(q.imgChunk, n - n0);
    // Row blocks [rb, rbEnd) of column blocks [cbi, cbEnd) (one unit unless a run of them is merged: see above).
    let rbEnd = rb + 1, cbEnd = cbi + 1;
    if (q.imgChunk === 1 && unit + 1 < u1) {
      if (rb === 0 && u1 - unit >= q.rowBlocks) {
        rbEnd = q.rowBlocks;
        cbEnd = Math.min(q.colBlocks, cbi + Math.floor((u1 - unit) / q.rowBlocks));
      } else {
        rbEnd = Math.min(q.rowBlocks, rb + u1 - unit);
      }
    }
    unit += (rbEnd - rb) * (cbEnd - cbi);
    const r0 = rb * q.rowBlock, r1 = Math.min(og, rbEnd * q.rowBlock);
    for (let g = 0; g < groups; g++) {
      if (q.imgChunk === 1) {
        // One image, output columns [j0, j1): straight into y.
        const j0 = cbi * q.colBlock, j1 = Math.min(ohw, cbEnd * q.colBlock), nb = j1 - j0;
        if (pointwiseSimd(p) && K > 0) {
          // In wasm (conv2d/inplace.ts), x's rows read in place; at a stride, when this call runs all the rows (so no
          // other unit needs the same B) and B is small, from panels packed straight from x instead (half the cost of
          // gathering its rows: see packStrided1x1; 1×1/2 64→128 @56, one thread, −2 to −4%; at 256→512 @56, 4× the
          // size, no gain).
          // The fused (inference) epilogue in float32 (PW_EP32; 1×1/2 64→128 @56, one thread, with the panels: −5%;
          // stride 1: see bench/README).
          const strided = p.strideH !== 1 || p.strideW !== 1;
          let pack: PackB | null = null;
          if (strided && r0 === 0 && r1 === og && K * (j1 - j0) <= PANELS_MAX && panelsFit(og, K)) {
            const xOff = (n0 * c + g * cg) * hw;
            pack = (dst, d0, jc, nc, p0, kl) => packStrided1x1(dst as Float32Array, d0, x, xOff, p, j0 + jc, nc, p0, kl);
          }
          if (!gemmForwardUnit(y, x, w, bias, res, ep, p, q, n0, g, j0, j1, r0, r1, K, pack, true) && fin !== null) fin[0] = 1;
          continue;
        }
        const yOff = (n0 * o + g * og) * ohw;
        const xOff = (n0 * c + g * cg) * hw;
        // B = col (K × nb), packed straight from x: no im2col copy (see packIm2col). On the SIMD backend in wasm,
        // from padded planes past the GEMM's regions (its memory sized for them first; R18's 3×3/2 64→128 @56 and
        // conv1, one core: −16%, −19%), except for a single tap (1×1/2), whose planes would be a second pass.
        const tab = pointwise ? null : tapTable(q), nt = taps ? taps.length : kh * kw;
        let pack: PackB | null = null;
        if (!pointwise && simd && nt > 1) {
          simdGemm(4 * (SIMD_GEMM_END + im2colSimdFloats(p, cg, K, Math.min(nb, GEMM_NC))));
          pack = (dst, d0, jc, nc, p0, kl) => packIm2colSimd(dst as Float32Array, d0, x, xOff, p, tab!, nt, j0 + jc, nc, p0, kl, SIMD_GEMM_END);
        } else if (!pointwise) {
          pack = (dst, d0, jc, nc, p0, kl, nr) => packIm2col(dst, d0, x, xOff, p, tab!, nt, j0 + jc, nc, p0, kl, nr);
        }
        if (pack !== null && simd && K > 0 && panelsFit(r1 - r0, K)) {
          // The panels into wasm/pointwise.ts's kernel, outputs written in place (conv2d/inplace.ts).
          if (!gemmForwardUnit(y, x, w, bias, res, ep, p, q, n0, g, j0, j1, r0, r1, K, pack) && fin !== null) fin[0] = 1;
          continue;
        }
        // (The paths below do not check their outputs.)
        if (fin !== null) fin[0] = 1;
        // Bias goes into C first so that the GEMM's single rounding covers bias + Σ.
        if (addBias) for (let oc = r0; oc < r1; oc++) y.fill(bias[g * og + oc]!, yOff + oc * ohw + j0, yOff + oc * ohw + j1);
        // The epilogue runs in the GEMM's store (in wasm on the SIMD backend).
        const gep: GemmEpilogue | null = ep === null ? null : { ...ep, res, ch0: g * og };
        // The row blocks of one image, group and column blocks share B: a thread packs it once for all it runs (and
        // A, for all the units of a row block it runs).
        const bKey: BKey = { call: q, id: ((n0 * groups + g) * q.colBlocks + cbi) * q.colBlocks + cbEnd - 1 };
        if (pack === null) {
          sgemmRange(y, w, x, og, nb, K, { aOff: g * og * K, bOff: xOff + j0, ldb: hw, cOff: yOff + j0, ldc: ohw, accumulate: addBias }, r0, r1, 0, nb, null, gep, bKey);
        } else {
          sgemmRange(y, w, x, og, nb, K, { aOff: g * og * K, cOff: yOff + j0, ldc: ohw, accumulate: addBias }, r0, r1, 0, nb, pack, gep, bKey);
        }
        continue;
      }
      // Small maps: nc images side by side, one GEMM into a scratch C ((r1 − r0) × nc·oHW), then scattered to y.
      if (fin !== null) fin[0] = 1;
      // The column matrix (K × nc·oHW) is the same for every row block of the images and group: a thread builds it
      // once for the row blocks it runs in a row, in its own buffer (R18's 1×1/2 256→512 @2→1 at batch 8, 8 row
      // blocks: im2col took 43% of the call).
      const kk = nc * ohw, m = r1 - r0;
      if (smallCol.length < K * kk) smallCol = new Float32Array(scratchLength(K * kk));
      const col = smallCol;
      if (heldCol.call !== q || heldCol.n0 !== n0 || heldCol.g !== g || heldCol.col !== col) {
        for (let i = 0; i < nc; i++) im2colRange(col, i * ohw, kk, x, ((n0 + i) * c + g * cg) * hw, 0, cg, p, 0, ohw, taps);
        Object.assign(heldCol, { call: q, n0, g, col });
      }
      const out = f32Scratch(m * kk);
      if (addBias) for (let r = 0; r < m; r++) out.fill(bias[g * og + r0 + r]!, r * kk, (r + 1) * kk);
      sgemmRange(out, w, col, m, kk, K, { aOff: (g * og + r0) * K, accumulate: addBias }, 0, m, 0, kk);
      for (let i = 0; i < nc; i++) {
        const yOff = ((n0 + i) * o + g * og) * ohw;
        if (ohw <= SHORT_ROW) {
          // Rows of a few values: copied value by value (no subarray and set per row).
          for (let r = 0; r < m; r++) {
            const s = r * kk + i * ohw, d = yOff + (r0 + r) * ohw;
            for (let j = 0; j < ohw; j++) y[d + j] = out[s + j]!;
          }
        } else {
          for (let r = 0; r < m; r++) y.set(out.subarray(r * kk + i * ohw, r * kk + (i + 1) * ohw), yOff + (r0 + r) * ohw);
        }
        if (ep !== null) epilogueRows(y, { ...ep, res, ch0: g * og }, yOff, ohw, r0, r1, 0, ohw);
      }
    }
  }
}

/** The small-map path's column matrix (this thread's), and the call (task params), images and group it holds. */
let smallCol = new Float32Array(0);
const heldCol = { call: null as object | null, n0: -1, g: -1, col: null as Float32Array | null };

/**
 * Longest output row (positions) that the small-map path scatters value by value rather than by subarray and set:
 * a set into shared memory costs ~80 ns a call (4096 rows into a SharedArrayBuffer, node 20: 16 values a row 345 →
 * 235 µs, 1 value 200 → 10 µs; 32 values 345 → 465 µs).
 */
const SHORT_ROW = 16;

/** Largest B (floats) that a strided 1×1 unit packs as panels (forwardUnits). */
const PANELS_MAX = 2 ** 17;

registerTask<ForwardTask>('conv2d.forward', (bufs, q, u0, u1) => {
  forwardUnits(
    bufs.y as Float32Array, bufs.x as Float32Array, bufs.w as Float32Array, bufs.bias as Float32Array | null,
    bufs.res as Float32Array | null, q, u0, u1, bufs.fin as Float64Array | null,
  );
});

/** y: (N, O, oH, oW), overwritten. x: (N, C, H, W) · w: (O, C/groups, kH, kW) · bias: (O) or null. */
export function conv2dForward(
  y: Float32Array,
  x: Float32Array,
  w: Float32Array,
  bias: Float32Array | null,
  p: Conv2dParams,
): void {
  if (densePairTaps(p) !== null) {
    unitMapConv2dForward(y, x, w, bias, p);
    return;
  }
  if (directForward(p)) {
    const d = forwardShape(p);
    runDirect(y, x, packDirectWeights(w, d, false), bias ? Float64Array.from(bias) : null, null, d, false, null);
    return;
  }
  const wp = forwardWinograd(p, x);
  if (wp !== null && winogradConv(y, x, w, null, wp, bias ? { scale: null, shift: Float64Array.from(bias), relu: false } : NO_EPILOGUE)) return;
  runForward(y, x, w, bias, null, p, null);
}

/**
 * Forward with an epilogue, for inference fusion: y = relu?(conv(x, w)·scale[o] + shift[o] + res), each output
 * rounded to float32 once on the Winograd path (twice on the im2col and unit-map paths: the GEMM result, then the
 * epilogue; the direct path computes it all in float32, and so does a 1×1 conv's epilogue (no padding, one image's
 * GEMM at a time) on the SIMD backend: round(round(round(v·scale) + shift) + res)).
 * res: (N, O, oH, oW) or null. No bias argument: fold it into shift. On the SIMD backend its Winograd GEMMs run in
 * float32 (inference speed; see WinogradParams.float32).
 */
export function conv2dForwardFused(
  y: Float32Array,
  x: Float32Array,
  w: Float32Array,
  res: Float32Array | null,
  p: Conv2dParams,
  ep: Epilogue,
): void {
  if (densePairTaps(p) !== null) {
    unitMapConv2dForward(y, x, w, null, p, res, ep);
    return;
  }
  if (directForwardFused(p)) {
    const d = forwardShape(p);
    runDirect(y, x, packDirectWeights(w, d, false), null, res, d, false, ep);
    return;
  }
  const wp = forwardWinograd(p, x, true);
  if (wp !== null && winogradConv(y, x, w, res, wp, ep)) return;
  runForward(y, x, w, null, res, p, ep);
}

function runForward(
  y: Float32Array,
  x: Float32Array,
  w: Float32Array,
  bias: Float32Array | null,
  res: Float32Array | null,
  p: Conv2dParams,
  ep: Epilogue | null,
): void {
  const taps = liveTaps(p);
  const khw = p.kh * p.kw, rows = p.o * (p.c / p.groups);
  let wl = w;
  if (taps) gatherTaps((wl = liveScratch(0, rows * taps.length)), w, rows, khw, taps);
  const q = forwardTask(p, ep, taps);
  const cost = 2 * p.n * p.o * (p.c / p.groups) * (taps ? taps.length : khw) * p.oh * p.ow;
  const units = q.imgChunks * q.colBlocks * q.rowBlocks;
  const whole = y.length === p.n * p.o * p.oh * p.ow;
  finiteFlag[0] = 0;
  parallelFor({ kernel: 'conv2d.forward', bufs: { y, x, w: wl, bias, res, fin: finiteFlag }, writes: ['y', 'fin'], overwrites: whole ? ['y'] : [], params: q, units, cost });
  // Units whose kernel checked every value it stored (wasm/pointwise.ts) leave the flag at 0: the next conv's
  // Winograd check (plan.ts, allFinite) then takes this note instead of a pass over y (ResNet-50 eval: 13 passes,
  // 1.2 M values, ~2 ms on the calling thread).
  if (whole) noteFinite(y, finiteFlag[0] === 0 && units > 0);
}

/** Set to 1 by a forward unit that stored a NaN or ±Inf, or whose path does not check. Shared: workers write it. */
const finiteFlag = sharedFloat64(1);

