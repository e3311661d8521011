// Input and weight gradients: Winograd (input gradient of stride-1 3×3 convs) or GEMM units, col2im in float64,
// and the weight gradient's float64 sums over all images (split over images where channels give too few units).

import { dgemmAccRange, scratchLength, sgemmRange } from '../gemm.js';
import { getParallelBackend, parallelFor, registerTask, sharedFloat64 } from '../parallel.js';
import { winogradConv } from '../winograd.js';
import { config } from '../../config.js';
import { DW_KB, DW_MR, residentBackward, simdBackward, type SimdBackward } from '../wasm/backward.js';
import { residentAddress, residentMemory } from '../wasm/optim.js';
import { claimRegion, regionViews, releaseRegion, residentScratch, zeroFloats, type ScratchRegions } from '../winograd-resident.js';
import { kernelBackend } from '../wasm/features.js';
import { weightGradResident, weightGradWinograd, winogradWeightTask, type WeightGradResident } from './backward-winograd.js';
import { backwardInputShape, directBackwardInput, packDirectWeights, runDirect } from './direct.js';
import { phaseBackwardInput, phaseConv2dBackwardInput } from './phases.js';
import { strided1x1, strided1x1BackwardInput } from './strided1x1.js';
import { unitMapBackwardInput, unitMapConv2dBackwardInput } from './unit-map.js';
import { denseMapBackwardWeight, denseMapTaps, tapMapBackwardWeight, tapMapPairs } from './small-map.js';
import { stageRows } from '../copy.js';
import { col2im64, colScratch, f32Scratch, f64Scratch, gatherImages, gatherTaps, im2colRange, liveScratch } from './pack.js';
import {
  backwardInputTask, backwardInputWinograd, backwardWeightTask, COL_CAP, endValid, firstValid, isPointwise, liveTaps, type BackwardInputTask,
  type BackwardWeightTask, type Conv2dParams,
} from './plan.js';

// ---- backward input --------------------------------------------------------------------------------------------

/** Backward-input units: unit = (((imgChunk·groups + g)·chBlocks + chBlock)·colBlocks + colBlock. */
function backwardInputUnits(dx: Float32Array, dy: Float32Array, w: Float32Array, q: BackwardInputTask, u0: number, u1: number): void {
  const { p, taps } = q;
  const { n, c, h, o, kh, kw, groups, oh, ow } = p;
  const cg = c / groups, og = o / groups;
  const khw = taps ? taps.length : kh * kw, K = cg * khw, ohw = oh * ow, hw = h * p.w;
  const pointwise = isPointwise(p);
  for (let unit = u0; unit < u1; unit++) {
    const cbi = unit % q.colBlocks;
    let rest = (unit - cbi) / q.colBlocks;
    const chi = rest % q.chBlocks;
    rest = (rest - chi) / q.chBlocks;
    const g = rest % groups;
    const n0 = ((rest - g) / groups) * q.imgChunk;
    const nc = Math.min(q.imgChunk, n - n0);
    const c0 = chi * q.chBlock, c1 = Math.min(cg, c0 + q.chBlock);
    if (pointwise) {
      // w_g is stored (og × cg); op(A) = w_gᵀ (cg × og). One rounding per dx entry: dx + Σ_o.
      const dyOff = (n0 * o + g * og) * ohw, dxOff = (n0 * c + g * cg) * hw;
      const j0 = cbi * q.colBlock, j1 = Math.min(ohw, j0 + q.colBlock);
      sgemmRange(dx, w, dy, cg, ohw, og, { transA: true, aOff: g * og * K, bOff: dyOff, cOff: dxOff, accumulate: true }, c0, c1, j0, j1);
      continue;
    }
    // dcol rows [c0·khw, c1·khw) = w_gᵀ · [dy_g of the nc images side by side], in float64; then per image,
    // col2im into a float64 block of dx, added to dx once.
    const kk = nc * ohw;
    let b = dy, bOff = (n0 * o + g * og) * ohw;
    if (nc > 1) {
      b = f32Scratch(og * kk);
      gatherImages(b, dy, n0, nc, o, g * og, 0, og, ohw);
      bOff = 0;
    }
    const rows = (c1 - c0) * khw;
    const dcol = f64Scratch(0, rows * kk);
    dgemmAccRange(dcol, w, b, K, kk, og, { transA: true, aOff: g * og * K, bOff, ldb: kk, cOff: -c0 * khw * kk }, c0 * khw, c1 * khw, 0, kk);
    for (let i = 0; i < nc; i++) {
      const acc = f64Scratch(1, (c1 - c0) * hw);
      col2im64(acc, dcol, i * ohw, kk, c1 - c0, p, taps);
      const base = ((n0 + i) * c + g * cg + c0) * hw;
      for (let t = 0; t < (c1 - c0) * hw; t++) dx[base + t] = dx[base + t]! + acc[t]!;
    }
  }
}

registerTask<BackwardInputTask>('conv2d.backwardInput', (bufs, q, u0, u1) => {
  backwardInputUnits(bufs.dx as Float32Array, bufs.dy as Float32Array, bufs.w as Float32Array, q, u0, u1);
});

/** Options of conv2dBackwardInput. */
export interface BackwardInputOptions {
  /** dx = ∂L/∂x instead of dx += ∂L/∂x: dx's old contents (anything, NaN included) are not read. */
  overwrite?: boolean;
}

/**
 * dx: (N, C, H, W) += ∂L/∂x (or = with `overwrite`), given dy: (N, O, oH, oW) and w: (O, C/groups, kH, kW). Without
 * `overwrite`, the caller zeroes dx (or passes a gradient to add into). The direct and Winograd paths write dx
 * outright when overwriting; the others add into dx, zero-filled here first.
 */
export function conv2dBackwardInput(dx: Float32Array, dy: Float32Array, w: Float32Array, p: Conv2dParams, opts: BackwardInputOptions = {}): void {
  const overwrite = opts.overwrite === true;
  if (directBackwardInput(p)) {
    const d = backwardInputShape(p);
    runDirect(dx, dy, packDirectWeights(w, d, true), null, null, d, !overwrite, null);
    return;
  }
  const phases = phaseBackwardInput(p, w);
  const wp = phases ? null : backwardInputWinograd(p, dy, w, overwrite);
  // (false only when overwriting, dy or w not all finite: dx is then computed below.)
  if (wp !== null && (winogradConv(dx, dy, w, null, overwrite ? { ...wp, accumulate: false } : wp) || !overwrite)) return;
  if (overwrite) zeroFloats(dx, 0, dx.length);
  if (phases) {
    phaseConv2dBackwardInput(dx, dy, w, p);
    return;
  }
  if (strided1x1(p)) {
    strided1x1BackwardInput(dx, dy, w, p);
    return;
  }
  const taps = liveTaps(p);
  if (unitMapBackwardInput(p)) {
    unitMapConv2dBackwardInput(dx, dy, w, p);
    return;
  }
  const khw = p.kh * p.kw, rows = p.o * (p.c / p.groups);
  let wl = w;
  if (taps) gatherTaps((wl = liveScratch(0, rows * taps.length)), w, rows, khw, taps);
  const q = backwardInputTask(p, taps);
  const cost = 2 * p.n * p.o * (p.c / p.groups) * (taps ? taps.length : khw) * p.oh * p.ow;
  const units = q.imgChunks * p.groups * q.chBlocks * q.colBlocks;
  parallelFor({ kernel: 'conv2d.backwardInput', bufs: { dx, dy, w: wl }, writes: ['dx'], params: q, units, cost });
}

// ---- backward weight -------------------------------------------------------------------------------------------

/** The plan's task, and whether its SIMD units take Winograd F(3×3, 2×2) (backward-winograd.ts). */
/** resident: the Winograd units' in-place form over the resident memory (backward-winograd.ts), or null. */
/** simdResident: the direct SIMD units' in-place form (weightGradSimd), or null. */
type WeightTask = BackwardWeightTask & { winograd: boolean; resident: WeightGradResident | null; simdResident: SimdResident | null };

/**
 * Backward-weight units: unit = ((split·groups + g)·chBlocks + chBlock)·rowBlocks + rowBlock. With one split, every
 * image is summed inside the unit, images ascending then positions ascending, in one float64 running sum per dw
 * entry (the naive order, so the same bits as the naive loop). With several, unit (split s, …) sums the images of
 * split s that way into part[s·|dw| …] (float64: the SIMD units write their block of it, the others add onto zeros the caller wrote), and the caller adds the partials.
 */
function backwardWeightUnits(
  dw: Float32Array | null, dy: Float32Array, x: Float32Array, part: Float64Array | null, q: WeightTask, u0: number, u1: number,
): void {
  const { p, taps } = q;
  const { n, c, o, kh, kw, groups } = p;
  const cg = c / groups, og = o / groups;
  const khw = taps ? taps.length : kh * kw, K = cg * khw;
  for (let unit = u0; unit < u1; unit++) {
    const rb = unit % q.rowBlocks;
    const rest = (unit - rb) / q.rowBlocks;
    const chi = rest % q.chBlocks;
    const rest2 = (rest - chi) / q.chBlocks;
    const g = rest2 % groups, split = (rest2 - g) / groups;
    const c0 = chi * q.chBlock, c1 = Math.min(cg, c0 + q.chBlock);
    const r0 = rb * q.rowBlock, r1 = Math.min(og, r0 + q.rowBlock), m = r1 - r0;
    const kb = (c1 - c0) * khw;
    const nBegin = split * q.splitImages, nEnd = Math.min(n, nBegin + q.splitImages);
    if (q.simd) {
      // The SIMD kernel (Winograd where the task says so, unless a sum is not finite): this split's images (all of
      // them without splits) into float64 sums, then into part or dw. This unit's block of its split's partials is
      // written once, by this unit alone (runBackwardWeight).
      const at = (part !== null ? split * o * K : 0) + (g * og + r0) * K + c0 * khw;
      if (q.winograd && weightGradWinograd(dy, x, p, g, c0, c1, r0, r1, nBegin, nEnd, q.resident, { part, dw, at, ld: K })) continue;
      const sums = weightGradSimd(dy, x, p, g, c0, c1, r0, r1, nBegin, nEnd, q.simdResident);
      if (part !== null) {
        if (kb === K) part.set(sums.subarray(0, m * kb), at);
        else for (let r = 0; r < m; r++) part.set(sums.subarray(r * kb, (r + 1) * kb), at + r * K);
        continue;
      }
      addRows(dw!, at, K, sums, m, kb);
      continue;
    }
    if (part !== null) {
      // This split's partial sums, straight into its slice of part (rows of K entries, like dw).
      const at = split * o * K + (g * og + r0) * K + c0 * khw;
      for (let n0 = nBegin; n0 < nEnd; n0 += q.imgChunk) {
        const nc = Math.min(q.imgChunk, nEnd - n0);
        const { a, aOff, lda, b, bOff, ldb, kk } = weightGradOperands(dy, x, p, g, c0, c1, r0, r1, n0, nc, taps);
        dgemmAccRange(part, a, b, m, kb, kk, { transB: true, aOff, lda, bOff, ldb, cOff: at, ldc: K }, 0, m, 0, kb);
      }
      continue;
    }
    // One chunk: one GEMM straight into dw (dw + Σ, one rounding). Several: acc (m × kb) carries the float64 sums
    // from chunk to chunk, added to dw at the end. Same bits either way. (Without splits, dw is given.)
    const out = dw!;
    const direct = q.imgChunk >= n;
    const acc = direct ? null : f64Scratch(0, m * kb);
    for (let n0 = 0; n0 < n; n0 += q.imgChunk) {
      const nc = Math.min(q.imgChunk, n - n0);
      const { a, aOff, lda, b, bOff, ldb, kk } = weightGradOperands(dy, x, p, g, c0, c1, r0, r1, n0, nc, taps);
      if (acc === null) {
        sgemmRange(out, a, b, m, kb, kk, { transB: true, aOff, lda, bOff, ldb, cOff: (g * og + r0) * K + c0 * khw, ldc: K, accumulate: true }, 0, m, 0, kb);
        continue;
      }
      dgemmAccRange(acc, a, b, m, kb, kk, { transB: true, aOff, lda, bOff, ldb, ldc: kb }, 0, m, 0, kb);
    }
    if (acc === null) continue;
    for (let r = r0; r < r1; r++) {
      const dst = (g * og + r) * K + c0 * khw;
      const src = (r - r0) * kb;
      for (let j = 0; j < kb; j++) out[dst + j] = out[dst + j]! + acc[src + j]!;
    }
  }
}

/**
 * The GEMM operands of a weight-gradient chunk (images [n0, n0 + nc), group g, input channels [c0, c1), output
 * channels [r0, r1)): A = those dy rows of the nc images side by side (m × kk), B with op(B) = colᵀ (col: kb × kk).
 */
function weightGradOperands(
  dy: Float32Array, x: Float32Array, p: Conv2dParams, g: number, c0: number, c1: number, r0: number, r1: number,
  n0: number, nc: number, taps: number[] | null,
): { a: Float32Array; aOff: number; lda: number; b: Float32Array; bOff: number; ldb: number; kk: number } {
  const { c, o, groups } = p;
  const cg = c / groups, og = o / groups, m = r1 - r0, ohw = p.oh * p.ow, hw = p.h * p.w, kk = nc * ohw;
  const kb = (c1 - c0) * (taps ? taps.length : p.kh * p.kw);
  // A = dy_g rows [r0, r1) of the nc images side by side (m × kk).
  let a = dy, aOff = (n0 * o + g * og + r0) * ohw, lda = ohw;
  if (nc > 1) {
    a = f32Scratch(m * kk);
    gatherImages(a, dy, n0, nc, o, g * og, r0, r1, ohw);
    aOff = 0;
    lda = kk;
  }
  // B = colᵀ, col (kb × kk) stored row-major, so op(B) = colᵀ with ldb = kk.
  let b = x, bOff = (n0 * c + g * cg + c0) * hw, ldb = hw;
  if (!isPointwise(p) || nc > 1) {
    b = colScratch(kb * kk);
    for (let i = 0; i < nc; i++) im2colRange(b, i * ohw, kk, x, ((n0 + i) * c + g * cg) * hw, c0, c1, p, 0, ohw, taps);
    bOff = 0;
    ldb = kk;
  }
  return { a, aOff, lda, b, bOff, ldb, kk };
}

/** Entries of dw rows per `dwr` call in the flattened stride-2 path (an even number). */
const FLAT_JB = 16;

/**
 * Where weightGradSimd keeps things (floats from its memory's start, see there) for m output and cb input channels
 * of a split of `images` images, and its bytes: a function of the shape and those counts only.
 */
function simdLayout(p: Conv2dParams, m: number, cb: number, images: number) {
  const { h, w, kh, kw, oh, ow, strideH: sh, strideW: sw, dilH, dilW } = p;
  const khw = kh * kw, hw = h * w, ohw = oh * ow, kb = cb * khw;
  const flat = sw === 2 && dilW === 1 && ohw <= 4 * DW_KB;
  // The dy panel's rows per image and their width: oH rows of oW, or one row of oH·oW.
  const dyRows = flat ? 1 : oh, dyW = flat ? ohw : ow;
  const tiles = Math.ceil(m / DW_MR), vecs = Math.ceil(dyW / 4), owPad = 4 * vecs;
  // Floats of one image's x rows per entry: flat, the map and 4 more (s2rows writes them); else hp rows of owPad.
  const hp = (oh - 1) * sh + (kh - 1) * dilH + 1, xPlane = flat ? owPad + 4 : hp * owPad;
  // Flat, also the chunk's dy panel under 2^16 floats: the entries go outermost (the panel read once per entry).
  const panelCap = flat ? Math.floor(2 ** 16 / (tiles * DW_MR * owPad)) : Infinity;
  const chunk = Math.max(1, Math.min(images, Math.floor(COL_CAP / (cb * (flat ? khw : kw) * xPlane)), panelCap));
  // Memory: float64 lane sums (tiles·MR × kb × 4), then the dy panel, then the x rows (float32), then the padding
  // table (3 ints per kernel column) and one image's channels as given.
  const lanes = tiles * DW_MR * kb * 4, dyAt = 2 * lanes, dyLen = tiles * chunk * dyRows * owPad * DW_MR;
  const xAt = dyAt + dyLen, xLen = cb * (flat ? khw : kw) * chunk * xPlane, qtAt = xAt + xLen, rawAt = qtAt + 3 * kw;
  // Then one image's dy rows as given (and 4 floats that a row's last vector may read past them), the lane masks,
  // and room for the reads of `s2rows` past the last x row. (Each copy as given may start one float on: stageRows.)
  const dyRawAt = rawAt + cb * hw + 1, maskAt = dyRawAt + m * ohw + 5;
  const bytes = 4 * (maskAt + 16 + 2 * ow + 16);
  return { flat, dyRows, dyW, tiles, vecs, owPad, hp, xPlane, chunk, lanes, dyAt, xAt, qtAt, rawAt, dyRawAt, maskAt, bytes };
}

/**
 * A direct SIMD weight gradient whose x and dy lie in the resident memory (a training step's tensors with
 * config.residentSteps): its units read x's and dy's rows at their addresses there (`pad`, `s2rows`, `dypack`) with
 * their scratch in per-thread regions of that memory (winograd-resident.ts), instead of copying the rows in.
 */
interface SimdResident {
  s: ScratchRegions;
  /** x's and dy's byte addresses in the resident memory, or −1 for one that is not there (its rows are copied in). */
  x: number;
  dy: number;
}

/**
 * Bytes of resident memory that `dypack` (a row's last vector) and `s2rows` / `pad` may read past x's and dy's ends
 * at most (the slack simdLayout leaves after the rows it copies: 2·oW + 32 floats).
 */
const simdReadPast = (p: Conv2dParams): number => 4 * (2 * Math.max(p.w, p.ow) + 32);

let simdInPlace = 0;

/** How many direct SIMD weight gradients have run in place over the resident memory (for tests). */
export function weightGradSimdInPlaceCalls(): number {
  return simdInPlace;
}

/**
 * The in-place form of task q's direct SIMD units where x or dy (or both) are resident (the stem's x, the batch, is
 * not), else null. Main thread.
 */
function simdResident(q: BackwardWeightTask, dy: Float32Array, x: Float32Array): SimdResident | null {
  const xa = residentAddress(x), da = residentAddress(dy);
  if (xa < 0 && da < 0) return null;
  const threads = Math.max(1, getParallelBackend()?.threads ?? 1);
  const s = residentScratch(threads, simdLayout(q.p, q.rowBlock, q.chBlock, q.splitImages).bytes);
  const end = Math.max(xa < 0 ? 0 : xa + x.byteLength, da < 0 ? 0 : da + dy.byteLength) + simdReadPast(q.p);
  if (s === null || end > residentMemory()!.mem.buffer.byteLength) return null;
  simdInPlace++;
  return { s, x: xa, dy: da };
}

/**
 * The weight gradient of images [n0, n1), group g, input channels [c0, c1), output channels [r0, r1) with the SIMD
 * kernel (wasm/backward.ts): float64 sums (r1 − r0) × (c1 − c0)·kH·kW, row-major, in a scratch (valid until the next
 * call). Images go in chunks (a function of the shape: the x rows of a chunk stay under COL_CAP floats); each entry
 * is the sum of its four float64 lane sums, (l0 + l1) + (l2 + l3). Stride 2 (column stride 2, no column dilation, at
 * most 4·DW_KB output positions) takes each output map as one row of oH·oW positions: the x rows of every tap
 * flattened the same way (`s2rows`), so no vector is padded per output row and the kernel's loops run a whole map
 * (Fashion-MNIST's 16→32 /2 and 32→64 /2 at batch 128, one core, CPU time: 0.68–0.78× and 0.71–0.72× the rows per
 * output row). With rs, in place over the resident memory in a claimed region of it (else through this thread's
 * own memory, x's and dy's rows copied in).
 */
function weightGradSimd(
  dy: Float32Array, x: Float32Array, p: Conv2dParams, g: number, c0: number, c1: number, r0: number, r1: number, n0: number, n1: number,
  rs: SimdResident | null,
): Float64Array {
  const slot = rs !== null ? claimRegion(rs.s) : -1;
  if (slot < 0) return simdUnit(dy, x, p, g, c0, c1, r0, r1, n0, n1, null, 0);
  try {
    return simdUnit(dy, x, p, g, c0, c1, r0, r1, n0, n1, rs, slot);
  } finally {
    releaseRegion(rs!.s, slot);
  }
}

/** weightGradSimd's work, through this thread's memory (rs null) or in region `slot` of rs. */
function simdUnit(
  dy: Float32Array, x: Float32Array, p: Conv2dParams, g: number, c0: number, c1: number, r0: number, r1: number, n0: number, n1: number,
  rs: SimdResident | null, slot: number,
): Float64Array {
  const { c, o, h, w, kh, kw, oh, ow, strideH: sh, strideW: sw, padH, padW, dilH, dilW } = p;
  const cg = c / p.groups, og = o / p.groups, khw = kh * kw, hw = h * w, ohw = oh * ow;
  const m = r1 - r0, cb = c1 - c0, kb = cb * khw;
  const L = simdLayout(p, m, cb, n1 - n0);
  const { flat, dyRows, dyW, tiles, vecs, owPad, hp, xPlane, chunk, lanes, dyAt, xAt, qtAt, rawAt, dyRawAt, maskAt } = L;
  // B: the scratch's byte address for the wasm functions (0 in the thread's own memory); f, f64, ints: views from there.
  let k: Pick<SimdBackward, 'dypack' | 'pad' | 's2rows' | 'dw' | 'dwr' | 'zero'>, f: Float32Array, f64: Float64Array, ints: Int32Array, B = 0;
  if (rs !== null) {
    B = rs.s.at[slot]!;
    k = residentBackward(rs.s);
    ({ f, h: f64, i: ints } = regionViews(rs.s, slot));
  } else {
    const own = simdBackward(L.bytes);
    k = own;
    ({ f, h: f64, i: ints } = own);
  }
  k.zero(B, 8 * lanes);
  for (let c = 0; c < 4; c++) for (let l = 0; l < 4; l++) ints[maskAt + 4 * c + l] = l < c ? -1 : 0;
  // x row of kernel column kx, column ox: input column start + ox·sW (start = kx·dW − pW), inside x for ox in [ox0, ox1).
  for (let kx = 0; kx < kw; kx++) {
    const start = kx * dilW - padW;
    const ox0 = Math.min(firstValid(start, sw), ow), ox1 = Math.max(endValid(start, sw, w, ow), ox0);
    ints[qtAt + 3 * kx] = ox0;
    ints[qtAt + 3 * kx + 1] = ox1;
    ints[qtAt + 3 * kx + 2] = start + ox0 * sw;
  }
  const at = (floats: number): number => B + 4 * floats;
  for (let i0 = n0; i0 < n1; i0 += chunk) {
    const nc = Math.min(chunk, n1 - i0);
    // dy panel: [tile][image][row < dyRows][v][row i][4], zero past the row and past r1: per image, its rows (in
    // place, or copied once) packed in wasm.
    for (let img = 0; img < nc; img++) {
      const base = ((i0 + img) * o + g * og + r0) * ohw;
      const dyRow = rs !== null && rs.dy >= 0 ? rs.dy + 4 * base : B + 4 * stageRows(f, dyRawAt, dy, base, base + m * ohw);
      for (let t = 0; t < tiles; t++) {
        const rows = Math.min(DW_MR, m - t * DW_MR);
        k.dypack(dyRow + 4 * t * DW_MR * ohw, 4 * ohw, rows, dyRows, dyW, vecs, at(dyAt + (t * nc + img) * dyRows * owPad * DW_MR), at(maskAt));
      }
    }
    // x rows, per image its channels (in place, or copied once), then in wasm: flat, [channel][ky][kx][image][oy·oW
    // + ox] = x[oy·sH + ky·dH − pH][2·ox + kx − pW]; else [channel][kx][image][iyp < hp][ox < owPad] =
    // x[iyp − pH][ox·sW + kx·dW − pW]; 0 outside (and for ox ≥ oW).
    for (let img = 0; img < nc; img++) {
      const xc = ((i0 + img) * c + g * cg + c0) * hw;
      const xRow = rs !== null && rs.x >= 0 ? rs.x + 4 * xc : B + 4 * stageRows(f, rawAt, x, xc, xc + cb * hw);
      if (!flat) {
        k.pad(xRow, 4 * hw, cb, h, w, at(xAt + img * xPlane), 4 * nc * xPlane, owPad, hp, sw, kw, -padH, at(qtAt));
        continue;
      }
      for (let ky = 0; ky < kh; ky++) {
        // Kernel columns kx … kx + 2 are the phases of one split.
        for (let kx = 0; kx < kw; kx += 3) {
          k.s2rows[Math.min(3, kw - kx) - 1]!(xRow, 4 * hw, cb, h, w, at(xAt + ((ky * kw + kx) * nc + img) * xPlane), 4 * khw * nc * xPlane,
            4 * nc * xPlane, oh, ow, sh, ky * dilH - padH, kx - padW);
        }
      }
    }
    // Entries j, j + 1 of the dw rows (j = ci·kH·kW + ky·kW + kx) two at a time; xTap: the second's x rows − the first's.
    const xImg = 4 * xPlane, xOy = flat ? 0 : 4 * sh * owPad, outRow = 32 * kb;
    const rowsOf = (j: number): number => {
      if (flat) return at(xAt + j * nc * xPlane);
      const ci = Math.floor(j / khw), tap = j - ci * khw, ky = Math.floor(tap / kw), kx = tap - ky * kw;
      return at(xAt + ((ci * kw + kx) * nc * hp + ky * dilH) * owPad);
    };
    const run = (t: number, j: number): void => {
      const kt = Math.min(2, kb - j), xa = rowsOf(j);
      k.dw[kt - 1]!(at(dyAt + t * nc * dyRows * owPad * DW_MR), xa, kt === 2 ? rowsOf(j + 1) - xa : 0, nc, xImg, dyRows, xOy, vecs, B + 32 * (t * DW_MR * kb + j), outRow, 32);
    };
    if (!flat) {
      for (let t = 0; t < tiles; t++) for (let j = 0; j < kb; j += 2) run(t, j);
      continue;
    }
    // Flat: entries' x rows are evenly spaced (rowsOf(j) is linear in j), so one `dwr` call runs FLAT_JB entries of a
    // tile; every tile before the next block of entries (the block's x rows stay in cache).
    const xTap = 4 * nc * xPlane;
    for (let j0 = 0; j0 < kb; j0 += FLAT_JB) {
      const pairs = Math.min(FLAT_JB, kb - j0) >> 1, odd = j0 + 2 * pairs < Math.min(kb, j0 + FLAT_JB);
      for (let t = 0; t < tiles; t++) {
        const dyT = at(dyAt + t * nc * owPad * DW_MR), out = B + 32 * (t * DW_MR * kb + j0);
        if (pairs > 0) k.dwr[1](dyT, rowsOf(j0), xTap, nc, xImg, 1, 0, vecs, out, outRow, 32, pairs);
        if (odd) k.dw[0](dyT, rowsOf(j0 + 2 * pairs), 0, nc, xImg, 1, 0, vecs, out + 64 * pairs, outRow, 32);
      }
    }
  }
  const sums = f64Scratch(1, m * kb);
  addLanes(sums, f64, m * kb);
  return sums;
}

// The long loops over dw below are functions of their own: inside the large functions that call them once per call,
// V8 ran them unoptimized (64→64 3×3 @7 batch 128, the partials of 4 splits: 2.4 ms per call, 0.13 ms on their own).

/** sums[e] = (l0 + l1) + (l2 + l3) of the four float64 lane sums at lanes[4e …] (e < n). */
function addLanes(sums: Float64Array, lanes: Float64Array, n: number): void {
  for (let e = 0; e < n; e++) {
    const l = 4 * e;
    sums[e] = lanes[l]! + lanes[l + 1]! + (lanes[l + 2]! + lanes[l + 3]!);
  }
}

/** dw[at + r·ld + j] += sums[r·kb + j] for r < m, j < kb (one rounding each). */
function addRows(dw: Float32Array, at: number, ld: number, sums: Float64Array, m: number, kb: number): void {
  for (let r = 0; r < m; r++) {
    for (let j = 0; j < kb; j++) dw[at + r * ld + j] = dw[at + r * ld + j]! + sums[r * kb + j]!;
  }
}

/** dw[i] += the splits' partials part[s·len + i] added in split order (s < splits), one rounding. */
function addPartials(dw: Float32Array, part: Float64Array, len: number, splits: number): void {
  // The usual split counts unrolled (the same sums in the same order): 1.7× faster than the loop over splits.
  if (splits === 2) {
    for (let i = 0; i < len; i++) dw[i] = dw[i]! + (0 + part[i]! + part[len + i]!);
    return;
  }
  if (splits === 4) {
    const l2 = 2 * len, l3 = 3 * len;
    for (let i = 0; i < len; i++) dw[i] = dw[i]! + (0 + part[i]! + part[len + i]! + part[l2 + i]! + part[l3 + i]!);
    return;
  }
  for (let i = 0; i < len; i++) {
    let sum = 0 + part[i]!; // (+0 for a −0 partial, as when the units added onto zeros)
    for (let sp = 1; sp < splits; sp++) sum += part[sp * len + i]!;
    dw[i] = dw[i]! + sum;
  }
}

registerTask<WeightTask>('conv2d.backwardWeight', (bufs, q, u0, u1) => {
  backwardWeightUnits(bufs.dw as Float32Array | null, bufs.dy as Float32Array, bufs.x as Float32Array, bufs.part as Float64Array | null, q, u0, u1);
});

let partBuf: Float64Array = new Float64Array(0);

/**
 * The weight gradient's units into dw (which they accumulate onto), split over images where the task says so:
 * the splits' partial sums are then added in split order, and dw + that sum is rounded once.
 */
function runBackwardWeight(dw: Float32Array, dy: Float32Array, x: Float32Array, q: WeightTask, cost: number): void {
  const units = q.splits * q.p.groups * q.chBlocks * q.rowBlocks;
  if (q.splits === 1) {
    parallelFor({ kernel: 'conv2d.backwardWeight', bufs: { dw, dy, x, part: null }, writes: ['dw'], params: q, units, cost });
    return;
  }
  const len = dw.length, need = q.splits * len;
  if (partBuf.length < need) partBuf = sharedFloat64(scratchLength(need));
  const part = partBuf;
  // The SIMD units write every partial once; the GEMM units add theirs chunk by chunk onto zeros.
  if (!q.simd) part.fill(0, 0, need);
  // dw is not read by split units (no staging copy of it): only the partials are written.
  parallelFor({ kernel: 'conv2d.backwardWeight', bufs: { dw: null, dy, x, part }, writes: ['part'], params: q, units, cost });
  addPartials(dw, part, len, q.splits);
}

/** dw: (O, C/groups, kH, kW) += ∂L/∂w, given dy: (N, O, oH, oW) and x: (N, C, H, W). Caller zeroes dw. */
export function conv2dBackwardWeight(dw: Float32Array, dy: Float32Array, x: Float32Array, p: Conv2dParams): void {
  // One output position that every input position meets: one GEMM over the batch (small-map.ts).
  const dense = denseMapTaps(p);
  if (dense !== null) {
    denseMapBackwardWeight(dw, dy, x, p, dense);
    return;
  }
  // Small output maps, many channels: one GEMM per kernel tap over its live pairs (small-map.ts), unless the
  // Winograd policy is 'always' on a map Winograd takes.
  const pairs = config.winograd === 'always' && p.ow >= 3 ? null : tapMapPairs(p);
  if (pairs !== null) {
    tapMapBackwardWeight(dw, dy, x, p, pairs);
    return;
  }
  const taps = liveTaps(p);
  const khw = p.kh * p.kw, rows = p.o * (p.c / p.groups);
  // Winograd F(3×3, 2×2) on the SIMD kernel's units for stride-1 3×3 convs (oW ≥ 3: from 2 tiles per row of 4
  // lanes), unless the policy says 'never'; else the direct SIMD kernel where its rows of 4 columns waste little
  // (oW ≥ 5), else im2col + GEMM. On 4×4 maps Winograd is 4–5× faster than either (16→16 batch 128, one core, CPU
  // time: 0.5 ms, GEMM 2.2, direct 3.9); on 2×2 maps (one tile in 4 lanes) GEMM is 2× faster than it.
  const simdOk = kernelBackend() === 'simd' && taps === null && p.ow <= 4 * DW_KB;
  const wino = simdOk && p.ow >= 3 && config.winograd !== 'never'
    ? winogradWeightTask(backwardWeightTask(p, taps, true), config.winograd === 'always')
    : null;
  const plain = wino ? null : backwardWeightTask(p, taps, simdOk && p.ow > 4);
  const q: WeightTask = wino
    ? { ...wino, winograd: true, resident: weightGradResident(wino, dy, x), simdResident: null }
    : { ...plain!, winograd: false, resident: null, simdResident: plain!.simd ? simdResident(plain!, dy, x) : null };
  const cost = 2 * p.n * p.o * (p.c / p.groups) * (taps ? taps.length : khw) * p.oh * p.ow;
  if (taps === null) {
    runBackwardWeight(dw, dy, x, q, cost);
    return;
  }
  // Live taps: accumulate onto a gathered copy of their dw entries, scatter back; dead taps get dw + 0 (what the
  // naive loop does with its empty sum).
  const nt = taps.length;
  const dwl = liveScratch(1, rows * nt);
  gatherTaps(dwl, dw, rows, khw, taps);
  runBackwardWeight(dwl, dy, x, q, cost);
  for (let r = 0; r < rows; r++) {
    for (let t = 0; t < khw; t++) dw[r * khw + t] = dw[r * khw + t]! + 0;
    for (let t = 0; t < nt; t++) dw[r * khw + taps[t]!] = dwl[r * nt + t]!;
  }
}

/** db: (O) += Σ over (N, oH, oW) of dy (float64 sum per channel, one rounding). Caller zeroes db. */
export function conv2dBackwardBias(db: Float32Array, dy: Float32Array, p: Conv2dParams): void {
  const { n, o, oh, ow } = p;
  const ohw = oh * ow;
  for (let oc = 0; oc < o; oc++) {
    let s = 0;
    for (let ni = 0; ni < n; ni++) {
      const off = (ni * o + oc) * ohw;
      for (let j = 0; j < ohw; j++) s += dy[off + j]!;
    }
    db[oc] = db[oc]! + s;
  }
}

