// The weight gradient of stride-1 3×3 convolutions by Winograd F(3×3, 2×2): dw[o][c] (3×3) is the correlation of
// x[c] with dy[o] over all images. Per 2×2 tile of dy and the 4×4 input patch it meets:
//
//   dw[o][c] += Gᵀ[(A g Aᵀ) ⊙ (Bᵀ d B)]G,   g = the dy tile, d = the padded x patch,
//
// so the 16 elements ξ of the transformed tiles give 16 products (O × T)·(T × C) over the T tiles of all images,
// 16 multiply-adds per tile and (o, c) instead of 36. The transforms (wasm/backward.ts: `wx`, `wdy`) only add and
// subtract in float32; the products go through the direct kernel's `dw` (float32 products and sums of ≤ DW_KB
// vectors, float64 lane sums), and Gᵀ M G (entries 0, ±1/2, 1) is applied to the float64 sums. The rows of x and dy
// are copied into the thread's wasm memory, or, where both lie in the resident memory (a training step's tensors),
// read there in place by kernels instantiated over it (weightGradResident).

import { stageRows } from '../copy.js';
import { getParallelBackend } from '../parallel.js';
import { DW_KB, DW_MR, residentBackward, simdBackward, U_ROW } from '../wasm/backward.js';
import { residentAddress, residentMemory } from '../wasm/optim.js';
import { claimRegion, releaseRegion, residentScratch, type ScratchRegions } from '../winograd-resident.js';
import { roundUp4, type BackwardWeightTask, type Conv2dParams } from './plan.js';
import type { SimdBackward } from '../wasm/backward.js';

/** The shapes this path takes: 3×3, stride 1, no dilation (any padding). */
export function winogradWeightShape(p: Conv2dParams): boolean {
  return p.kh === 3 && p.kw === 3 && p.strideH === 1 && p.strideW === 1 && p.dilH === 1 && p.dilW === 1;
}

/** Vectors of tiles (in all, and per split over images) that Winograd takes at least. */
const MIN_VECS = 16;

/** Vectors of four tiles per image. */
const vectorsPerImage = (p: Conv2dParams): number => Math.ceil(p.oh / 2) * Math.ceil(Math.ceil(p.ow / 2) / 4);

/**
 * The Winograd task, or null where it does not apply (not 3×3 stride 1, fewer than 3 channels per group: the
 * transforms cost more than they save) or, unless `always`, does not pay: fewer than MIN_VECS vectors of tiles in
 * all. (One core, CPU time, against the kernel taken otherwise: ResNet-18 at batch 8, 64→64 @8 with 32 vectors
 * 0.73×, 128→128 @4 with 16 vectors 0.80×; 4→4 @14 batch 128 0.67×, CIFAR's 3→16 stem batch 32 0.53×.) Units: blocks of at most 64 input and 64 output channels (the transforms
 * are made once per image and block; the float64 lane sums take 16·4 doubles per dw pair), split over images as
 * well when that gives fewer than 4 units, at least DW_KB vectors per split, or 2 splits of at least MIN_VECS
 * (float64 partials added in split order): a function of the shape only.
 */
export function winogradWeightTask(q: BackwardWeightTask, always: boolean): BackwardWeightTask | null {
  const { p } = q;
  const cg = p.c / p.groups, og = p.o / p.groups, dwLen = p.o * cg * 9, vecs = p.n * vectorsPerImage(p);
  if (!winogradWeightShape(p) || cg < 3 || (!always && vecs < MIN_VECS)) return null;
  const chBlock = Math.min(cg, 64), chBlocks = Math.ceil(cg / chBlock), rowBlock = Math.min(og, 64), rowBlocks = Math.ceil(og / rowBlock);
  const base = p.groups * chBlocks * rowBlocks;
  const perSplit = Math.max(Math.floor(vecs / DW_KB), Math.min(2, Math.floor(vecs / MIN_VECS)));
  let splits = base < 4 ? Math.max(1, Math.min(p.n, Math.ceil(4 / base), perSplit, Math.floor(2 ** 20 / dwLen))) : 1;
  const splitImages = Math.ceil(p.n / splits);
  splits = Math.ceil(p.n / splitImages);
  return { ...q, chBlock, chBlocks, rowBlock, rowBlocks, splitImages, splits };
}

/** Bytes of transformed tiles (U and V of all 16 ξ) per image chunk at most. */
const CHUNK_BYTES = 2 ** 22;
/** Tiles per segment at most (a row of DW_KB vectors of the `dwu` panels). */
const SEG_TILES = 4 * DW_KB;

/**
 * How a split's images go through the kernels: chunks of `nc` images, each in `segs` segments of at most `vecs`
 * vectors of four tiles. The tiles are flattened (tile rows of tilesX tiles one after another, images one after
 * another), not padded per row to whole vectors: on the 28×28 and 14×14 maps that is 1/8 fewer products. Small maps
 * (one image's tiles fit a segment): one segment of nc whole images (nc·tiles a multiple of 4 where one of at least
 * half the largest nc is; else a zero tail). Larger maps: one image per chunk, in segments of whole tile rows.
 */
function chunking(p: Conv2dParams, images: number, mPad: number, cb: number): { nc: number; segs: number; rowsPerSeg: number; vecs: number } {
  const tilesY = Math.ceil(p.oh / 2), tilesX = Math.ceil(p.ow / 2), tpi = tilesY * tilesX;
  if (tpi > SEG_TILES) {
    const rowsPerSeg = Math.floor(SEG_TILES / tilesX);
    return { nc: 1, segs: Math.ceil(tilesY / rowsPerSeg), rowsPerSeg, vecs: Math.ceil((rowsPerSeg * tilesX) / 4) };
  }
  const most = Math.max(1, Math.min(images, Math.floor(SEG_TILES / tpi), Math.floor(CHUNK_BYTES / (64 * (mPad + cb) * tpi))));
  let nc = most;
  for (let k = most; k >= Math.max(1, Math.ceil(most / 2)); k--) {
    if ((k * tpi) % 4 === 0) {
      nc = k;
      break;
    }
  }
  return { nc, segs: 1, rowsPerSeg: tilesY, vecs: Math.ceil((nc * tpi) / 4) };
}

/**
 * A weight gradient whose x and dy lie in the resident memory (wasm/optim.ts: a training step's tensors with
 * config.residentSteps): its units read x's and dy's rows at their byte addresses there, with their scratch in
 * per-thread regions of that memory (winograd-resident.ts), instead of copying the rows into the thread's own memory.
 */
export interface WeightGradResident {
  s: ScratchRegions;
  x: number;
  dy: number;
}

/** Where weightGradWinograd keeps things in its scratch (floats, from its start; see there), and its bytes. */
function gradLayout(p: Conv2dParams, m: number, cb: number) {
  const { h, w, oh, ow } = p;
  const hw = h * w, ohw = oh * ow;
  const tiles = Math.ceil(m / DW_MR), mPad = tiles * DW_MR;
  const tilesY = Math.ceil(oh / 2), txPad = roundUp4(Math.ceil(ow / 2));
  const segs = chunkSegs(p);
  // Memory (floats): float64 lane sums [ξ][o < mPad][c][4]; U [ξ][o tile][segment][row < 4][U_ROW bytes];
  // V [ξ][c][segment][SEG_TILES]; one image's x phase planes [c][φ < 2][hx rows][txPad + 4] and 4 floats (`s2rows`
  // writes them; column j: input column 2j + φ − pW, so that plane k of the transform is phase k & 1 shifted by
  // k >> 1); the raw channels copied from x or dy (`wdy` reads dy there; a copy may start one float on: stageRows).
  const hx = 2 * tilesY + 2, wqx = txPad + 4;
  // Byte strides of U (an o tile, a ξ block) and V (a channel, a ξ block), each 64 bytes longer than the data: strides
  // of a multiple of 4 KB put the 16 stores of a transform into one cache set (64→64 @7: dy transform 2.4× slower).
  // (The slack also takes the last tile row's vector past a segment's tiles.)
  const segU = 4 * U_ROW, segV = 4 * SEG_TILES;
  const uTile = segs * segU + 64, uXi = tiles * uTile + 64, vCh = segs * segV + 64, vXi = cb * vCh + 64;
  const lanes = 16 * mPad * cb * 4, uAt = 2 * lanes, uLen = 4 * uXi, vAt = uAt + uLen, vLen = 4 * vXi;
  const xpAt = vAt + vLen, xPlane = 4 * (hx * wqx + 4);
  const rawAt = xpAt + (cb * 2 * xPlane) / 4, sumAt = roundUp4(rawAt + 1 + Math.max(cb * hw, m * ohw));
  // (`s2rows` and `wdy` read up to 2·wqx + 10 floats past a row's start: slack after the sums.)
  const bytes = 4 * sumAt + 8 * m * cb * 9 + 4 * (2 * wqx + 12);
  return { tiles, mPad, hx, wqx, segU, segV, uTile, uXi, vCh, vXi, lanes, uAt, uLen, vAt, xpAt, xPlane, rawAt, sumAt, bytes };
}

/** Segments per image chunk (chunking's `segs`: a function of the shape only). */
function chunkSegs(p: Conv2dParams): number {
  const tilesY = Math.ceil(p.oh / 2), tilesX = Math.ceil(p.ow / 2);
  return tilesY * tilesX > SEG_TILES ? Math.ceil(tilesY / Math.floor(SEG_TILES / tilesX)) : 1;
}

/** Bytes of resident memory that `s2rows` and `wdy` may read past x's and dy's ends (see gradLayout). */
const readPast = (p: Conv2dParams): number => 4 * (2 * (roundUp4(Math.ceil(p.ow / 2)) + 4) + 12) + 4 * Math.max(p.w, p.ow);

/**
 * The in-place form of task q's Winograd units where x and dy lie in the resident memory, with a scratch region per
 * thread for them; else null (they copy rows into their threads' memories). Main thread.
 */
export function weightGradResident(q: BackwardWeightTask, dy: Float32Array, x: Float32Array): WeightGradResident | null {
  const xa = residentAddress(x), da = residentAddress(dy);
  if (xa < 0 || da < 0) return null;
  const threads = Math.max(1, getParallelBackend()?.threads ?? 1);
  const s = residentScratch(threads, gradLayout(q.p, q.rowBlock, q.chBlock).bytes);
  const end = Math.max(xa + x.byteLength, da + dy.byteLength) + readPast(q.p);
  if (s === null || end > residentMemory()!.mem.buffer.byteLength) return null;
  inPlaceCalls++;
  return { s, x: xa, dy: da };
}

let inPlaceCalls = 0;

/** How many weight gradients have run in place over the resident memory (for tests). */
export function weightGradInPlaceCalls(): number {
  return inPlaceCalls;
}

/**
 * Where a weight-gradient unit's sums go: the rows (stride `ld`) from `at` of a split's float64 partials (`part`,
 * set), or of dw (float32, each entry dw + sum rounded once) where `part` is null.
 */
export interface GradRows {
  part: Float64Array | null;
  dw: Float32Array | null;
  at: number;
  ld: number;
}

/**
 * The weight gradient of images [n0, n1), group g, input channels [c0, c1), output channels [r0, r1): float64 sums
 * (r1 − r0) × (c1 − c0)·9, row-major, stored (or added) into `to` straight from the kernels' memory; false, with
 * nothing stored, when a sum is not finite (then the caller takes the direct kernel, whose NaN and Inf follow the
 * naive loop's). Images go in chunks (`chunking`, a function of the shape), each segment's tiles in one row of
 * ≤ DW_KB vectors of the `dwu` kernel.
 */
export function weightGradWinograd(
  dy: Float32Array, x: Float32Array, p: Conv2dParams, g: number, c0: number, c1: number, r0: number, r1: number, n0: number, n1: number,
  rs: WeightGradResident | null, to: GradRows,
): boolean {
  const slot = rs !== null ? claimRegion(rs.s) : -1;
  if (slot < 0) return gradUnit(dy, x, p, g, c0, c1, r0, r1, n0, n1, null, 0, to);
  try {
    return gradUnit(dy, x, p, g, c0, c1, r0, r1, n0, n1, rs, slot, to);
  } finally {
    releaseRegion(rs!.s, slot);
  }
}

/** This thread's views of the resident region it used last (kept while its units find the same region). */
let views: { f: Float32Array; h: Float64Array } | null = null;

/**
 * weightGradWinograd's work through this thread's memory (rs null), or in place over the resident memory with the
 * scratch in region `slot` of rs (its wasm addresses offset by the region's; x's and dy's rows read where they lie).
 */
function gradUnit(
  dy: Float32Array, x: Float32Array, p: Conv2dParams, g: number, c0: number, c1: number, r0: number, r1: number, n0: number, n1: number,
  rs: WeightGradResident | null, slot: number, to: GradRows,
): boolean {
  const { c, o, h, w, oh, ow, padH, padW } = p;
  const cg = c / p.groups, og = o / p.groups, hw = h * w, ohw = oh * ow;
  const m = r1 - r0, cb = c1 - c0;
  const tilesY = Math.ceil(oh / 2), tilesX = Math.ceil(ow / 2), tpi = tilesY * tilesX, rowVecs = roundUp4(tilesX) / 4;
  const L = gradLayout(p, m, cb);
  const { tiles, mPad, wqx, segU, segV, uTile, uXi, vCh, vXi, lanes, uAt, uLen, vAt, xpAt, xPlane, rawAt, sumAt } = L;
  const { nc, segs, rowsPerSeg, vecs } = chunking(p, n1 - n0, mPad, cb);
  // B: the scratch's byte address for the wasm functions (0 in the thread's own memory); f, f64 views from there.
  let k: Pick<SimdBackward, 's2rows' | 'wx' | 'wdy' | 'dwu' | 'wcomb' | 'zero'>, f: Float32Array, f64: Float64Array, B = 0;
  if (rs !== null) {
    B = rs.s.at[slot]!;
    k = residentBackward(rs.s);
    const buf = rs.s.mem.buffer, bytes = rs.s.bytes;
    if (views === null || views.f.buffer !== buf || views.f.byteOffset !== B || views.f.byteLength !== bytes) {
      views = { f: new Float32Array(buf, B, bytes / 4), h: new Float64Array(buf, B, bytes / 8) };
    }
    f = views.f;
    f64 = views.h;
  } else {
    const own = simdBackward(L.bytes);
    k = own;
    f = own.f;
    f64 = own.h;
  }
  k.zero(B, 8 * lanes);
  // Rows past m: zero (never written below).
  if (m < mPad) k.zero(B + 4 * uAt, 4 * uLen);
  for (let i0 = n0; i0 < n1; i0 += nc) {
    const ni = Math.min(nc, n1 - i0);
    for (let img = 0; img < ni; img++) {
      const xc = ((i0 + img) * c + g * cg + c0) * hw;
      const xRow = rs !== null ? rs.x + 4 * xc : 4 * stageRows(f, rawAt, x, xc, xc + cb * hw);
      k.s2rows[1](xRow, 4 * hw, cb, h, w, B + 4 * xpAt, 2 * xPlane, xPlane, L.hx, wqx, 1, -padH, -padW);
      for (let s = 0; s < segs; s++) {
        const ty0 = s * rowsPerSeg, ty1 = Math.min(tilesY, ty0 + rowsPerSeg);
        k.wx(B + 4 * xpAt, xPlane, 4 * wqx, cb, ty0, ty1, rowVecs, B + 4 * vAt + s * segV + 4 * img * tpi, vXi, vCh, 4 * tilesX);
      }
      const dc = ((i0 + img) * o + g * og + r0) * ohw;
      const dyRow = rs !== null ? rs.dy + 4 * dc : 4 * stageRows(f, rawAt, dy, dc, dc + m * ohw);
      for (let s = 0; s < segs; s++) {
        const ty0 = s * rowsPerSeg, ty1 = Math.min(tilesY, ty0 + rowsPerSeg);
        k.wdy(dyRow, oh, ow, m, ty0, ty1, rowVecs, B + 4 * uAt + s * segU + 4 * img * tpi, uXi, uTile, 4 * tilesX);
      }
    }
    // Tiles past a segment's own, up to its last vector: zero.
    for (let s = 0; s < segs; s++) {
      const own = segs === 1 ? ni * tpi : (Math.min(tilesY, (s + 1) * rowsPerSeg) - s * rowsPerSeg) * tilesX;
      if (own < 4 * vecs) zeroTails(f, own, 4 * vecs, uAt + (s * segU) / 4, uXi / 4, uTile / 4, m, vAt + (s * segV) / 4, vXi / 4, vCh / 4, cb);
    }
    for (let xi = 0; xi < 16; xi++) {
      for (let t = 0; t < tiles; t++) {
        const u = B + 4 * uAt + xi * uXi + t * uTile, out = B + 32 * (xi * mPad + t * DW_MR) * cb;
        // Channel pairs in one call, then the odd last channel.
        const v = B + 4 * vAt + xi * vXi, pairs = cb >> 1;
        if (pairs > 0) k.dwu[1](u, v, vCh, segs, segV, 1, 0, vecs, out, 32 * cb, 32, pairs);
        if (cb & 1) k.dwu[0](u, v + (cb - 1) * vCh, vCh, segs, segV, 1, 0, vecs, out + 32 * (cb - 1), 32 * cb, 32, 1);
      }
    }
  }
  // M[ξ] = the lane sums added in a fixed order, then dw (3×3) = Gᵀ M G, G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1] (`wcomb`,
  // into the float64s at sumAt).
  const kb = cb * 9;
  if (!Number.isFinite(k.wcomb(B, 32 * mPad * cb, m * cb, B + 4 * sumAt))) return false;
  if (to.part !== null) setRows(to.part, to.at, to.ld, f64, sumAt / 2, m, kb);
  else addRows(to.dw!, to.at, to.ld, f64, sumAt / 2, m, kb);
  return true;
}

/** dst[at + r·ld + j] = src[from + r·kb + j] for r < m, j < kb. */
function setRows(dst: Float64Array, at: number, ld: number, src: Float64Array, from: number, m: number, kb: number): void {
  if (kb === ld) {
    dst.set(src.subarray(from, from + m * kb), at);
    return;
  }
  for (let r = 0; r < m; r++) dst.set(src.subarray(from + r * kb, from + (r + 1) * kb), at + r * ld);
}

/** dw[at + r·ld + j] += src[from + r·kb + j] for r < m, j < kb (one rounding each). */
function addRows(dw: Float32Array, at: number, ld: number, src: Float64Array, from: number, m: number, kb: number): void {
  for (let r = 0; r < m; r++) {
    for (let j = 0; j < kb; j++) dw[at + r * ld + j] = dw[at + r * ld + j]! + src[from + r * kb + j]!;
  }
}

/** Floats [from, to) of every U row (< m) and V row (< cb) of one segment, for all 16 ξ (strides in floats): 0. */
function zeroTails(
  f: Float32Array, from: number, to: number, u: number, uXi: number, uTile: number, m: number, v: number, vXi: number, vCh: number, cb: number,
): void {
  for (let xi = 0; xi < 16; xi++) {
    for (let r = 0; r < m; r++) {
      const at = u + xi * uXi + (r >> 2) * uTile + (r & 3) * (U_ROW / 4);
      f.fill(0, at + from, at + to);
    }
    for (let ch = 0; ch < cb; ch++) f.fill(0, v + xi * vXi + ch * vCh + from, v + xi * vXi + ch * vCh + to);
  }
}
