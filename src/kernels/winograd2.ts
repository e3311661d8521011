// Winograd F(2×2, 3×3) with transforms and GEMMs fused (wasm/winograd2.ts), for 3×3 stride-1 forward convolutions
// with few channels on the SIMD backend (CIFAR ResNet's 16→16 at 32×32): the plain forward and the fused eval
// forward alike.
//
//   x: (N, Ci, Hi, Wi) · w: (Co, Ci, 3, 3) → y: (N, Co, Ho, Wo); 2×2 output tiles, each from a 4×4 input patch
//
// Per unit (one image, or a block of its tile rows): x's rows are copied into the wasm memory and zero-padded, then
// one wasm call runs the input transform, the 16 GEMMs and the output transform of each group of tile rows, and
// the staged outputs leave in one copy per channel (whole images: one copy). U = G g Gᵀ is computed in float64 and
// rounded to float32 once, by each thread for each call.
//
// Numerics: float32 products, one float32 sum over the Ci ≤ 64 input channels per point, the output transform and
// the epilogue in float64, one rounding. Every output is computed the same way in any unit, so results are the same
// bits for every thread count.

import { parallelFor, registerTask, sharedFloat64 } from './parallel.js';
import { kernelBackend } from './wasm/features.js';
import { simdGemm } from './wasm/sgemm.js';
import { simdWinograd } from './wasm/winograd.js';
import { F2_M_BYTES, F2_RELU, F2_RES, F2_SCALE, F2_SHIFT, simdWinograd2 } from './wasm/winograd2.js';
import type { Epilogue, WinogradParams } from './winograd.js';

/** Most input or output channels the fused kernel takes (one float32 block of terms per sum: ≤ 64). */
export const F2_MAX_CHANNELS = 32;
/** Largest staging of a unit's outputs (bytes): a unit is a whole image when it fits. */
const STAGE_BYTES = 128 * 1024;
/** Largest V scratch (bytes) of a group of tile rows: it stays in L1/L2 while its GEMMs run. */
const V_BYTES = 64 * 1024;

/** How a call is cut: quads of 4 tiles, groups of tile rows (an even number of quads), units. */
interface F2Task {
  p: WinogradParams;
  ep: Epilogue;
  kpad: number;
  tilesH: number;
  /** Quads per tile row, tile rows per group, quads per group. */
  nq: number;
  rows: number;
  nqg: number;
  /** Tile rows per unit (a multiple of `rows`, or all of an image's), units per image. */
  unitRows: number;
  perImage: number;
}

function f2Task(p: WinogradParams, ep: Epilogue): F2Task {
  const tilesH = Math.ceil(p.ho / 2), tilesW = Math.ceil(p.wo / 2);
  const nq = Math.ceil(tilesW / 4), rows = nq % 2 === 0 ? 1 : 2, nqg = nq * rows;
  const kpad = Math.ceil(p.co / 4) * 4;
  // Tile rows per unit: the whole image if its staging fits, and at least 8 units per call (load balance).
  const rowBytes = kpad * 2 * 8 * nq * 4;
  let unitRows = Math.max(rows, Math.floor(STAGE_BYTES / rowBytes / rows) * rows);
  const want = Math.ceil(8 / p.n);
  if (want > 1) unitRows = Math.min(unitRows, Math.max(rows, Math.ceil(tilesH / want / rows) * rows));
  if (unitRows >= tilesH) unitRows = tilesH;
  return { p, ep, kpad, tilesH, nq, rows, nqg, unitRows, perImage: Math.ceil(tilesH / unitRows) };
}

/** Whether the fused F(2×2) kernel runs this Winograd call (forward, few channels, SIMD backend). */
export function winograd2Applies(p: WinogradParams): boolean {
  if (kernelBackend() !== 'simd' || p.flip || p.accumulate) return false;
  if (p.ci > F2_MAX_CHANNELS || p.co > F2_MAX_CHANNELS) return false;
  const nq = Math.ceil(Math.ceil(p.wo / 2) / 4), nqg = nq % 2 === 0 ? nq : 2 * nq;
  return 16 * p.ci * nqg * 16 <= V_BYTES;
}

/** Byte offsets of a thread's wasm memory for a call (each 16-aligned), after the SIMD GEMM's own region. */
interface F2Layout {
  u: number;
  scale: number;
  shift: number;
  tab: number;
  m: number;
  v: number;
  raw: number;
  pad: number;
  y: number;
  res: number;
  end: number;
  /** Padded plane: ph rows of pw float32; staging rows of ypitch bytes, channel planes of yplane bytes. */
  pw: number;
  ph: number;
  ypitch: number;
  yplane: number;
}

function f2Layout(q: F2Task): F2Layout {
  const { ci, wi } = q.p;
  const a16 = (v: number): number => Math.ceil(v / 16) * 16;
  const groupsMax = Math.ceil(q.unitRows / q.rows);
  const ph = 2 * groupsMax * q.rows + 2, pw = 8 * q.nq + 4;
  const ypitch = 32 * q.nq, yplane = 2 * groupsMax * q.rows * ypitch;
  const u = 0, scale = u + a16(16 * ci * q.kpad * 4), shift = scale + a16(8 * q.kpad), tab = shift + a16(8 * q.kpad);
  const m = tab + a16(8 * q.nqg), v = m + F2_M_BYTES, raw = v + a16(16 * ci * q.nqg * 16), pad = raw + a16(4 * ci * ph * wi);
  const y = pad + a16(4 * ci * ph * pw), res = y + a16(q.kpad * yplane);
  return { u, scale, shift, tab, m, v, raw, pad, y, res, end: res + a16(q.kpad * yplane), pw, ph, ypitch, yplane };
}

/** The call whose U (and tables) this thread's memory holds. */
let uCall: F2Task | null = null;
let uMem: ArrayBuffer | null = null;

/**
 * U(ξ)[k][c] = (G g_{k,c} Gᵀ)[ξ] in float64, rounded to float32, at float32 index at + (ξ·Ci + c)·kpad + k (zeros
 * for k ≥ Co), G = (1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1). True if a filter holds a NaN or ±Inf.
 */
function weightTransform2(f: Float32Array, at: number, w: Float32Array, ci: number, co: number, kpad: number): boolean {
  let bad = 0;
  const xs = ci * kpad;
  for (let k = 0; k < kpad; k++) {
    for (let c = 0; c < ci; c++) {
      const d = at + c * kpad + k;
      if (k >= co) {
        for (let e = 0; e < 16; e++) f[d + e * xs] = 0;
        continue;
      }
      const s = (k * ci + c) * 9;
      // G g: 4 rows × 3 columns.
      const t = gg;
      for (let j = 0; j < 3; j++) {
        const a = w[s + j]!, b = w[s + 3 + j]!, cc = w[s + 6 + j]!;
        bad += (a + b + cc) * 0;
        t[j] = a;
        t[3 + j] = (a + b + cc) * 0.5;
        t[6 + j] = (a - b + cc) * 0.5;
        t[9 + j] = cc;
      }
      // (G g) Gᵀ: row r of G g times G's rows.
      for (let r = 0; r < 4; r++) {
        const a = t[3 * r]!, b = t[3 * r + 1]!, cc = t[3 * r + 2]!;
        const o = d + 4 * r * xs;
        f[o] = a;
        f[o + xs] = (a + b + cc) * 0.5;
        f[o + 2 * xs] = (a - b + cc) * 0.5;
        f[o + 3 * xs] = cc;
      }
    }
  }
  return bad !== 0;
}
const gg = new Float64Array(12);

/**
 * Copies between a buffer shaped like y and the staging planes at float32 index `at` (channel k's plane yplane/4
 * floats on, rows ypitch/4 apart) for output rows [oy0, oy1) of image img, channels [0, Co): one copy when both
 * sides are contiguous, else one per channel or per row.
 */
function copyStage(a: Float32Array, f: Float32Array, at: number, toStage: boolean, p: WinogradParams, lay: F2Layout, img: number, oy0: number, oy1: number): void {
  const { co, ho, wo } = p;
  const rows = oy1 - oy0, pitch = lay.ypitch / 4, plane = lay.yplane / 4;
  const move = (ai: number, si: number, n: number): void => {
    if (toStage) f.set(a.subarray(ai, ai + n), si);
    else a.set(f.subarray(si, si + n), ai);
  };
  const y0 = (img * co * ho + oy0) * wo;
  if (pitch === wo && rows === ho && plane === ho * wo) {
    move(y0, at, co * ho * wo);
    return;
  }
  for (let k = 0; k < co; k++) {
    const yk = y0 + k * ho * wo, sk = at + k * plane;
    if (pitch === wo) move(yk, sk, rows * wo);
    else for (let r = 0; r < rows; r++) move(yk + r * wo, sk + r * pitch, wo);
  }
}

function f2Units(y: Float32Array, x: Float32Array, w: Float32Array, res: Float32Array | null, flag: Float64Array, q: F2Task, u0: number, u1: number): void {
  const { p, ep } = q;
  const { ci, hi, wi, co, ho, padH, padW } = p;
  const lay = f2Layout(q);
  const g = simdGemm(lay.end);
  const pad = simdWinograd().pad, f2 = simdWinograd2(ci, q.kpad, q.nqg);
  const f = g.f;
  if (uCall !== q || uMem !== f.buffer) {
    if (weightTransform2(f, lay.u / 4, w, ci, co, q.kpad)) flag[0] = 1;
    if (ep.scale !== null) g.h.set(ep.scale, lay.scale / 8);
    if (ep.shift !== null) g.h.set(ep.shift, lay.shift / 8);
    const iv = new Int32Array(f.buffer, lay.tab, 2 * q.nqg);
    for (let qq = 0; qq < q.nqg; qq++) {
      const r = Math.floor(qq / q.nq), c = qq % q.nq;
      iv[2 * qq] = 2 * r * 4 * lay.pw + 32 * c;
      iv[2 * qq + 1] = 2 * r * lay.ypitch + 32 * c;
    }
    uCall = q;
    uMem = f.buffer as ArrayBuffer;
  }
  const flags = (ep.scale !== null ? F2_SCALE : 0) | (ep.shift !== null ? F2_SHIFT : 0) | (res !== null ? F2_RES : 0) | (ep.relu ? F2_RELU : 0);
  const planeB = 4 * lay.ph * lay.pw;
  for (let unit = u0; unit < u1; unit++) {
    const blk = unit % q.perImage, img = (unit - blk) / q.perImage;
    const ty0 = blk * q.unitRows, ty1 = Math.min(q.tilesH, ty0 + q.unitRows);
    const groups = Math.ceil((ty1 - ty0) / q.rows);
    // Padded plane row 0 is input row 2·ty0 − padH; the rows of x it holds, copied in and padded.
    const iy0 = 2 * ty0 - padH;
    const iyA = Math.max(0, iy0), iyB = Math.min(hi, iy0 + 2 * groups * q.rows + 2), rows = Math.max(0, iyB - iyA);
    const xImg = img * ci * hi * wi, rawF = lay.raw / 4;
    if (rows === hi) f.set(x.subarray(xImg, xImg + ci * hi * wi), rawF);
    else for (let c = 0; c < ci; c++) {
      const s = xImg + (c * hi + iyA) * wi;
      f.set(x.subarray(s, s + rows * wi), rawF + c * rows * wi);
    }
    pad(lay.raw, 4 * rows * wi, wi, rows, ci, lay.pad, planeB, 4 * lay.pw, lay.ph, iyA - iy0, 4 * padW);
    const oy0 = 2 * ty0, oy1 = Math.min(ho, 2 * ty1);
    if (res !== null) copyStage(res, f, lay.res / 4, true, p, lay, img, oy0, oy1);
    f2(lay.pad, 4 * lay.pw, planeB, groups, lay.tab, lay.u, lay.v, lay.m, lay.y, lay.ypitch, lay.yplane, flags,
      lay.scale, lay.shift, lay.res - lay.y, 2 * q.rows * 4 * lay.pw, 2 * q.rows * lay.ypitch);
    copyStage(y, f, lay.y / 4, false, p, lay, img, oy0, oy1);
  }
}

registerTask<F2Task>('winograd2.conv', (bufs, q, u0, u1) => {
  f2Units(bufs.y as Float32Array, bufs.x as Float32Array, bufs.w as Float32Array, bufs.res as Float32Array | null, bufs.flag as Float64Array, q, u0, u1);
});

/** Set to 1 by any thread whose weight transform read a NaN or ±Inf (shared, so workers write it in place). */
const flag = sharedFloat64(1);

/**
 * y = epilogue(conv(x, w)) by the fused F(2×2) kernel (winograd2Applies(p) must hold; x finite). Returns false if w
 * holds a NaN or ±Inf (y is then not the direct convolution's pattern: the caller computes it another way).
 */
export function winograd2Conv(y: Float32Array, x: Float32Array, w: Float32Array, res: Float32Array | null, p: WinogradParams, ep: Epilogue): boolean {
  const q = f2Task(p, ep);
  const tiles = p.n * q.tilesH * Math.ceil(p.wo / 2);
  flag[0] = 0;
  parallelFor({
    kernel: 'winograd2.conv', bufs: { y, x, w, res, flag }, writes: ['y', 'flag'], overwrites: y.length === p.n * p.co * p.ho * p.wo ? ['y'] : [], params: q, units: p.n * q.perImage,
    cost: 2 * 16 * tiles * p.ci * q.kpad,
  });
  return flag[0] === 0;
}
