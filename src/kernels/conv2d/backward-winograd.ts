// The weight gradient of stride-1 3×3 convolutions by Winograd F(3×3, 2×2): dw[o][c] (3×3) is the correlation of
// x[c] with dy[o] over all images. Per 2×2 tile of dy and the 4×4 input patch it meets:
//
//   dw[o][c] += Gᵀ[(A g Aᵀ) ⊙ (Bᵀ d B)]G,   g = the dy tile, d = the padded x patch,
//
// so the 16 elements ξ of the transformed tiles give 16 products (O × T)·(T × C) over the T tiles of all images,
// 16 multiply-adds per tile and (o, c) instead of 36. The transforms (wasm/backward.ts: `wx`, `wdy`) only add and
// subtract in float32; the products go through the direct kernel's `dw` (float32 products and sums of ≤ DW_KB
// vectors, float64 lane sums), and Gᵀ M G (entries 0, ±1/2, 1) is applied to the float64 sums.

import { DW_KB, DW_MR, simdBackward } from '../wasm/backward.js';
import { roundUp4, type BackwardWeightTask, type Conv2dParams } from './plan.js';

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

let sumsBuf = new Float64Array(0);

/**
 * The weight gradient of images [n0, n1), group g, input channels [c0, c1), output channels [r0, r1): float64 sums
 * (r1 − r0) × (c1 − c0)·9, row-major, in a scratch valid until the next call; null when a sum is not finite (then
 * the caller takes the direct kernel, whose NaN and Inf follow the naive loop's). Images go in chunks of whole
 * images (a function of the shape), each chunk's tiles in segments of ≤ DW_KB vectors (four tiles each).
 */
export function weightGradWinograd(
  dy: Float32Array, x: Float32Array, p: Conv2dParams, g: number, c0: number, c1: number, r0: number, r1: number, n0: number, n1: number,
): Float64Array | null {
  const { c, o, h, w, oh, ow, padH, padW } = p;
  const cg = c / p.groups, og = o / p.groups, hw = h * w, ohw = oh * ow;
  const m = r1 - r0, cb = c1 - c0, tiles = Math.ceil(m / DW_MR), mPad = tiles * DW_MR;
  const tilesY = Math.ceil(oh / 2), txPad = roundUp4(Math.ceil(ow / 2)), vecs = txPad / 4, vpi = vectorsPerImage(p);
  // Images per chunk (up to DW_KB vectors of tiles, so that each float32 block is as long as it may be), and the
  // chunk's vectors in rows of seg ≤ DW_KB (zero vectors pad the last row).
  const nc = Math.max(1, Math.min(n1 - n0, Math.floor(DW_KB / vpi), Math.floor(CHUNK_BYTES / (256 * (mPad + cb) * vpi))));
  const tc = nc * vpi, rowsT = Math.ceil(tc / DW_KB), seg = Math.ceil(tc / rowsT), tcPad = rowsT * seg;
  // Memory (floats): float64 lane sums [ξ][o < mPad][c][4], U [ξ][tile][vector][4 rows][4], V [ξ][c][vector][4],
  // one image's x phase planes [c][φ < 2][hx rows][txPad + 4] and 4 floats (`s2rows` writes them; column j: input
  // column 2j + φ − pW, so that plane k of the transform is phase k & 1 shifted by k >> 1), the raw channels copied
  // from x or dy (`wdy` reads dy there).
  const hx = 2 * tilesY + 2, wqx = txPad + 4;
  // Byte strides of U (an o tile, a ξ block) and V (a channel, a ξ block), each 64 bytes longer than the data: strides
  // of a multiple of 4 KB put the 16 stores of a transform into one cache set (64→64 @7: dy transform 2.4× slower).
  const uTile = 64 * tcPad + 64, uXi = tiles * uTile + 64, vCh = 16 * tcPad + 64, vXi = cb * vCh + 64;
  const lanes = 16 * mPad * cb * 4, uAt = 2 * lanes, uLen = 4 * uXi, vAt = uAt + uLen, vLen = 4 * vXi;
  const xpAt = vAt + vLen, xPlane = 4 * (hx * wqx + 4);
  const rawAt = xpAt + (cb * 2 * xPlane) / 4, sumAt = roundUp4(rawAt + Math.max(cb * hw, m * ohw));
  // (`s2rows` and `wdy` read up to 2·wqx + 10 floats past a row's start: slack after the sums.)
  const k = simdBackward(4 * sumAt + 8 * m * cb * 9 + 4 * (2 * wqx + 12));
  const { f, h: f64 } = k;
  f64.fill(0, 0, lanes);
  for (let i0 = n0; i0 < n1; i0 += nc) {
    const ni = Math.min(nc, n1 - i0);
    // Rows past m, vectors past the chunk's images: zero.
    if (m < mPad || ni * vpi < tcPad) f.fill(0, uAt, uAt + uLen + vLen);
    for (let img = 0; img < ni; img++) {
      const xc = ((i0 + img) * c + g * cg + c0) * hw;
      f.set(x.subarray(xc, xc + cb * hw), rawAt);
      k.s2rows[1](4 * rawAt, 4 * hw, cb, h, w, 4 * xpAt, 2 * xPlane, xPlane, hx, wqx, 1, -padH, -padW);
      k.wx(4 * xpAt, xPlane, 4 * wqx, cb, tilesY, vecs, 4 * vAt + 16 * img * vpi, vXi, vCh);
      const dc = ((i0 + img) * o + g * og + r0) * ohw;
      f.set(dy.subarray(dc, dc + m * ohw), rawAt);
      k.wdy(4 * rawAt, oh, ow, m, tilesY, vecs, 4 * uAt + 64 * img * vpi, uXi, uTile);
    }
    for (let xi = 0; xi < 16; xi++) {
      for (let t = 0; t < tiles; t++) {
        const u = 4 * uAt + xi * uXi + t * uTile, out = 32 * (xi * mPad + t * DW_MR) * cb;
        // Channel pairs in one call, then the odd last channel.
        const v = 4 * vAt + xi * vXi, pairs = cb >> 1;
        if (pairs > 0) k.dwr[1](u, v, vCh, 1, 0, rowsT, 16 * seg, seg, out, 32 * cb, 32, pairs);
        if (cb & 1) k.dwr[0](u, v + (cb - 1) * vCh, vCh, 1, 0, rowsT, 16 * seg, seg, out + 32 * (cb - 1), 32 * cb, 32, 1);
      }
    }
  }
  // M[ξ] = the lane sums added in a fixed order, then dw (3×3) = Gᵀ M G, G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1] (`wcomb`,
  // into the float64s at sumAt).
  const kb = cb * 9;
  if (sumsBuf.length < m * kb) sumsBuf = new Float64Array(m * kb);
  if (!Number.isFinite(k.wcomb(0, 32 * mPad * cb, m * cb, 4 * sumAt))) return null;
  const sums = sumsBuf;
  sums.set(k.h.subarray(sumAt / 2, sumAt / 2 + m * kb));
  return sums;
}
