// Winograd F(4×4, 3×3) with the transforms and GEMMs fused (wasm/winograd-fused.ts), for the float32 (inference)
// forward of 3×3 stride-1 convolutions with few channels on the SIMD backend: CIFAR ResNet's 16→16 at 32×32.
//
//   x: (N, Ci, Hi, Wi) · w: (Co, Ci, 3, 3) → y: (N, Co, Ho, Wo); 4×4 output tiles, each from a 6×6 input patch
//
// Per unit (one image, or a block of its tile rows): x's rows are copied into the wasm memory and zero-padded, then
// one wasm call runs the input transform, the 36 GEMMs and the output transform of each group of tile rows, and the
// staged outputs leave in one copy (whole images) or one per channel. U = G g Gᵀ is computed in float64 and rounded
// to float32 once, by each thread for each call.
//
// Numerics: float32 U and V, float32 products, one float32 sum over the Ci ≤ 32 input channels per point, the output
// transform and the epilogue in float32: within 1.1× of the error of winograd.ts's float32 path (whose output
// transform runs in float64), 3e-6·max|y| against the float64 convolution at 16 and 32 channels. Every
// output is computed the same way in any unit, so results are the same bits for every thread count. Not for the
// plain (training) forward: float32 Winograd there makes a train-mode ResNet-20 step's gradients less accurate than
// test/models/numerics.test.ts allows (even F(2×2), in CIFAR's 16→16 layers alone: 2.7× below PyTorch float32's
// error instead of ≥ 3×, and element-wise worse).

import { noteFinite } from './finite.js';
import { parallelFor, registerTask, sharedFloat64 } from './parallel.js';
import { kernelBackend } from './wasm/features.js';
import { simdGemm } from './wasm/sgemm.js';
import { G_SCALE, simdWinograd } from './wasm/winograd.js';
import { FUSED_M_BYTES, FUSED_RELU, FUSED_RES, FUSED_SCALE, FUSED_SHIFT, simdFusedWinograd, type RowsFn } from './wasm/winograd-fused.js';
import type { Epilogue, WinogradParams } from './winograd.js';

/** Most input or output channels the fused kernel takes. */
export const FUSED_MAX_CHANNELS = 32;
/** Largest staging of a unit's outputs (bytes): a unit is a whole image when it fits. */
const STAGE_BYTES = 128 * 1024;
/** Largest V scratch (bytes) of a group of tile rows: it stays in L1 while its GEMMs run. */
const V_BYTES = 40 * 1024;

/** How a call is cut: quads of 4 tiles side by side, groups of tile rows (an even number of quads), units. */
interface FusedTask {
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

function quads(wo: number): { tilesW: number; nq: number; nqg: number } {
  const tilesW = Math.ceil(wo / 4), nq = Math.ceil(tilesW / 4);
  return { tilesW, nq, nqg: nq % 2 === 0 ? nq : 2 * nq };
}

function fusedTask(p: WinogradParams, ep: Epilogue): FusedTask {
  const tilesH = Math.ceil(p.ho / 4);
  const { nq, nqg } = quads(p.wo), rows = nqg / nq;
  const kpad = Math.ceil(p.co / 4) * 4;
  // Tile rows per unit: the whole image if its staging fits, and at least 8 units per call (load balance).
  const rowBytes = kpad * 4 * 16 * nq * 4;
  let unitRows = Math.max(rows, Math.floor(STAGE_BYTES / rowBytes / rows) * rows);
  const want = Math.ceil(8 / p.n);
  if (want > 1) unitRows = Math.min(unitRows, Math.max(rows, Math.ceil(tilesH / want / rows) * rows));
  if (unitRows >= tilesH) unitRows = tilesH;
  return { p, ep, kpad, tilesH, nq, rows, nqg, unitRows, perImage: Math.ceil(tilesH / unitRows) };
}

/**
 * Whether the fused kernel runs this Winograd call: a float32 forward (inference) on the SIMD backend with at most
 * FUSED_MAX_CHANNELS channels, whose tile rows fill at least 3/4 of their quads (8×8 maps would leave half of every
 * quad empty) and whose V fits V_BYTES.
 */
export function fusedWinogradApplies(p: WinogradParams): boolean {
  if (kernelBackend() !== 'simd' || p.float32 !== true || p.flip || p.accumulate) return false;
  if (p.ci > FUSED_MAX_CHANNELS || p.co > FUSED_MAX_CHANNELS) return false;
  const { tilesW, nq, nqg } = quads(p.wo);
  return 4 * tilesW >= 3 * 4 * nq && 36 * p.ci * nqg * 16 <= V_BYTES;
}

/** Fitted prices (ns, one core) of the fused kernel's parts (see fusedWinogradCost). */
const FUSED_PRICES = { gemm: 0.062, vin: 21, vout: 32, weights: 66 };

/**
 * Estimated CPU time (ns, one core) of fusedWinogradConv(p) (fusedWinogradApplies(p) holds), on the scale of
 * winogradCost and conv2d/plan.ts's im2colCost, which the dispatch compares it with: the 36 GEMMs over every group's
 * tiles (quads padded), the input transform with x's copy and padding per padded tile and input channel, the output
 * transform and staging per padded tile and 4-padded output channel, and the weight transform per filter. Fitted by
 * non-negative least squares to process CPU time on one thread against im2col's (fused time ÷ im2col time ×
 * im2colCost) over 116 shapes (8–32 channels, 14–56 maps, batch 1–128); priced as the unfused float32 path, the fused
 * kernel was taken for 1.4–1.6× dearer than it is, and 8-channel 14×14 maps went to im2col, 1.7× slower.
 */
export function fusedWinogradCost(p: WinogradParams): number {
  const q = fusedTask(p, NO_EPILOGUE_FUSED);
  let groups = 0;
  for (let b = 0; b < q.perImage; b++) {
    const t0 = b * q.unitRows;
    groups += Math.ceil((Math.min(q.tilesH, t0 + q.unitRows) - t0) / q.rows);
  }
  const tiles = p.n * groups * q.nqg * 4, c = FUSED_PRICES;
  return c.gemm * 36 * p.ci * q.kpad * tiles + c.vin * tiles * p.ci + c.vout * tiles * q.kpad + c.weights * p.ci * q.kpad;
}

const NO_EPILOGUE_FUSED: Epilogue = { scale: null, shift: null, relu: false };

/** Byte offsets of a thread's wasm memory for a call (each 16-aligned). */
interface FusedLayout {
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
  /** Staged rows in y's layout (see copyStage). */
  flat: number;
  /** Eight float32: the kernel's checks of what it stored and of x (see fconv's `bad`). */
  bad: number;
  end: number;
  /** Padded plane: ph rows of pw float32; staging rows of ypitch bytes, channel planes of yplane bytes. */
  pw: number;
  ph: number;
  ypitch: number;
  yplane: number;
}

function fusedLayout(q: FusedTask): FusedLayout {
  const { ci, wi, co, wo } = q.p;
  const a16 = (v: number): number => Math.ceil(v / 16) * 16;
  const outRows = 4 * Math.ceil(q.unitRows / q.rows) * q.rows;
  const ph = outRows + 2, pw = 16 * q.nq + 4;
  const ypitch = 64 * q.nq, yplane = outRows * ypitch;
  const u = 0, scale = u + a16(36 * ci * q.kpad * 4), shift = scale + a16(4 * q.kpad), tab = shift + a16(4 * q.kpad);
  const m = tab + a16(8 * q.nqg), v = m + FUSED_M_BYTES, raw = v + a16(36 * ci * q.nqg * 16), pad = raw + a16(4 * ci * ph * wi);
  const y = pad + a16(4 * ci * ph * pw), res = y + a16(q.kpad * yplane), flat = res + a16(q.kpad * yplane);
  const bad = flat + a16(4 * co * outRows * wo);
  return { u, scale, shift, tab, m, v, raw, pad, y, res, flat, bad, end: bad + 32, pw, ph, ypitch, yplane };
}

/** The call whose U, scale, shift and tables this thread's memory holds. */
let uCall: FusedTask | null = null;
let uMem: ArrayBuffer | null = null;
/** G g of the filter being transformed (6 rows × 3 columns). */
const gg = new Float64Array(18);

/**
 * U(ξ)[k][c] = (G g_{k,c} Gᵀ)[ξ] in float64 (G = diag(G_SCALE)·G', G' = (1 0 0; 1 1 1; 1 −1 1; 1 2 4; 1 −2 4;
 * 0 0 1), winograd.ts's filter transform), rounded to float32, in fconv's panels of 4 output channels from float32
 * index at: at + (((k/4)·36 + ξ)·Ci + c)·4 + k mod 4, ξ = 6·row + column (zeros for k ≥ Co). True if a filter holds
 * a NaN or ±Inf.
 */
function weightTransform4(f: Float32Array, at: number, w: Float32Array, ci: number, co: number, kpad: number): boolean {
  let bad = 0;
  const xs = 4 * ci, t = gg, sc = G_SCALE;
  for (let k = 0; k < kpad; k++) {
    for (let c = 0; c < ci; c++) {
      const d = at + ((k >> 2) * 36 * ci + c) * 4 + (k & 3);
      if (k >= co) {
        for (let e = 0; e < 36; e++) f[d + e * xs] = 0;
        continue;
      }
      const s = (k * ci + c) * 9;
      // G g: 6 rows × 3 columns.
      for (let j = 0; j < 3; j++) {
        const a = w[s + j]!, b = w[s + 3 + j]!, cc = w[s + 6 + j]!;
        bad += (a + b + cc) * 0;
        const u = a + cc, v = a + 4 * cc, m2 = b + b;
        t[j] = a * sc[0];
        t[3 + j] = (u + b) * sc[1];
        t[6 + j] = (u - b) * sc[2];
        t[9 + j] = (v + m2) * sc[3];
        t[12 + j] = (v - m2) * sc[4];
        t[15 + j] = cc;
      }
      // (G g) Gᵀ: row r of G g along G's rows.
      for (let r = 0; r < 6; r++) {
        const a = t[3 * r]!, b = t[3 * r + 1]!, cc = t[3 * r + 2]!;
        const u = a + cc, v = a + 4 * cc, m2 = b + b, o = d + 6 * r * xs;
        f[o] = a * sc[0];
        f[o + xs] = (u + b) * sc[1];
        f[o + 2 * xs] = (u - b) * sc[2];
        f[o + 3 * xs] = (v + m2) * sc[3];
        f[o + 4 * xs] = (v - m2) * sc[4];
        f[o + 5 * xs] = cc;
      }
    }
  }
  return bad !== 0;
}

/**
 * Copies between a buffer shaped like y (y, or the residual) and the staging planes at byte `at` (channel k's plane
 * yplane bytes on, rows ypitch apart), for output rows [oy0, oy1) of image img, channels [0, Co). Staging rows longer
 * than y's go through the `flat` area in y's layout (wasm `rows`), so that one copy moves every channel (whole
 * images) or one per channel (16→16 @28, one core: 3.4 → 1.8 ms against a copy per row).
 */
function copyStage(a: Float32Array, f: Float32Array, rows: RowsFn, at: number, toStage: boolean, p: WinogradParams, lay: FusedLayout, img: number, oy0: number, oy1: number): void {
  const { co, ho, wo } = p;
  const n = oy1 - oy0, rowB = 4 * wo;
  const direct = lay.ypitch === rowB;
  const base = direct ? at : lay.flat, plane = direct ? lay.yplane : n * rowB;
  const y0 = (img * co * ho + oy0) * wo;
  if (!direct && !toStage) rows(at, lay.yplane, lay.ypitch, lay.flat, plane, rowB, rowB, n, co);
  if (plane === ho * rowB) {
    if (toStage) f.set(a.subarray(y0, y0 + co * ho * wo), base / 4);
    else a.set(f.subarray(base / 4, base / 4 + co * ho * wo), y0);
  } else {
    for (let k = 0; k < co; k++) {
      const yk = y0 + k * ho * wo, sk = (base + k * plane) / 4;
      if (toStage) f.set(a.subarray(yk, yk + n * wo), sk);
      else a.set(f.subarray(sk, sk + n * wo), yk);
    }
  }
  if (!direct && toStage) rows(lay.flat, plane, rowB, at, lay.yplane, lay.ypitch, rowB, n, co);
}

function fusedUnits(y: Float32Array, x: Float32Array, w: Float32Array, res: Float32Array | null, flag: Float64Array, q: FusedTask, u0: number, u1: number): void {
  const { p, ep } = q;
  const { ci, hi, wi, co, ho, padH, padW } = p;
  const lay = fusedLayout(q);
  const g = simdGemm(lay.end);
  const pad = simdWinograd().pad, { fconv, rows: rowsFn } = simdFusedWinograd(ci, q.kpad, q.nqg);
  const f = g.f;
  if (uCall !== q || uMem !== f.buffer) {
    if (weightTransform4(f, lay.u / 4, w, ci, co, q.kpad)) flag[0] = 1;
    // Channels ≥ Co get scale and shift 0 (their outputs, never copied out, then stay finite for the check).
    if (ep.scale !== null) f.fill(0, lay.scale / 4, lay.scale / 4 + q.kpad).set(ep.scale, lay.scale / 4);
    if (ep.shift !== null) f.fill(0, lay.shift / 4, lay.shift / 4 + q.kpad).set(ep.shift, lay.shift / 4);
    // Quad Q of a group: tile row ⌊Q/nq⌋ of the group, quad column Q mod nq (16 columns each).
    const iv = new Int32Array(f.buffer, lay.tab, 2 * q.nqg);
    for (let qq = 0; qq < q.nqg; qq++) {
      const r = Math.floor(qq / q.nq), c = qq % q.nq;
      iv[2 * qq] = 4 * r * 4 * lay.pw + 64 * c;
      iv[2 * qq + 1] = 4 * r * lay.ypitch + 64 * c;
    }
    uCall = q;
    uMem = f.buffer as ArrayBuffer;
  }
  const flags = (ep.scale !== null ? FUSED_SCALE : 0) | (ep.shift !== null ? FUSED_SHIFT : 0) | (res !== null ? FUSED_RES : 0) |
    (ep.relu ? FUSED_RELU : 0);
  const planeB = 4 * lay.ph * lay.pw;
  f.fill(0, lay.bad / 4, lay.bad / 4 + 8);
  for (let unit = u0; unit < u1; unit++) {
    const blk = unit % q.perImage, img = (unit - blk) / q.perImage;
    const ty0 = blk * q.unitRows, ty1 = Math.min(q.tilesH, ty0 + q.unitRows);
    const groups = Math.ceil((ty1 - ty0) / q.rows);
    // Padded plane row 0 is input row 4·ty0 − padH; the rows of x it holds, copied in and padded.
    const iy0 = 4 * ty0 - padH;
    const iyA = Math.max(0, iy0), iyB = Math.min(hi, iy0 + 4 * groups * q.rows + 2), rows = Math.max(0, iyB - iyA);
    const xImg = img * ci * hi * wi, rawF = lay.raw / 4;
    if (rows === hi) f.set(x.subarray(xImg, xImg + ci * hi * wi), rawF);
    else for (let c = 0; c < ci; c++) {
      const s = xImg + (c * hi + iyA) * wi;
      f.set(x.subarray(s, s + rows * wi), rawF + c * rows * wi);
    }
    // (pad's finiteness sum goes to the flag of non-finite transformed values, which a non-finite x sets anyway.)
    pad(lay.raw, 4 * rows * wi, wi, rows, ci, lay.pad, planeB, 4 * lay.pw, lay.ph, iyA - iy0, 4 * padW, lay.bad + 16);
    const oy0 = 4 * ty0, oy1 = Math.min(ho, 4 * ty1);
    if (res !== null) copyStage(res, f, rowsFn, lay.res, true, p, lay, img, oy0, oy1);
    fconv(lay.pad, 4 * lay.pw, planeB, groups, lay.tab, lay.u, lay.v, lay.m, lay.y, lay.ypitch, lay.yplane, flags,
      lay.scale, lay.shift, lay.res - lay.y, 4 * q.rows * 4 * lay.pw, 4 * q.rows * lay.ypitch, lay.bad);
    copyStage(y, f, rowsFn, lay.y, false, p, lay, img, oy0, oy1);
  }
  const b = lay.bad / 4;
  if (f[b]! + f[b + 1]! + f[b + 2]! + f[b + 3]! !== 0) flag[1] = 1;
  if (f[b + 4]! + f[b + 5]! + f[b + 6]! + f[b + 7]! !== 0) flag[2] = 1;
}

registerTask<FusedTask>('winograd.fused', (bufs, q, u0, u1) => {
  fusedUnits(bufs.y as Float32Array, bufs.x as Float32Array, bufs.w as Float32Array, bufs.res as Float32Array | null, bufs.flag as Float64Array, q, u0, u1);
});

/**
 * [0]: set to 1 by any thread whose weight transform read a NaN or ±Inf; [1]: by any thread that stored a NaN or
 * ±Inf (or saw one in the staging rows' padding: a check that can only err towards "not all finite"); [2]: by any
 * thread whose transformed values before the epilogue held one (x not all finite, or a transform overflowed).
 * Shared, so workers write it in place.
 */
const flag = sharedFloat64(3);

/**
 * y = epilogue(conv(x, w)) by the fused kernel (fusedWinogradApplies(p) must hold). Returns false if w or x holds a
 * NaN or ±Inf (y is then not the direct convolution's pattern: the caller computes it another way), so x needs no
 * check before the call.
 */
export function fusedWinogradConv(y: Float32Array, x: Float32Array, w: Float32Array, res: Float32Array | null, p: WinogradParams, ep: Epilogue): boolean {
  const q = fusedTask(p, ep);
  const tiles = p.n * q.tilesH * Math.ceil(p.wo / 4);
  flag.fill(0);
  parallelFor({
    kernel: 'winograd.fused', bufs: { y, x, w, res, flag }, writes: ['y', 'flag'], overwrites: y.length === p.n * p.co * p.ho * p.wo ? ['y'] : [],
    params: q, units: p.n * q.perImage, cost: 2 * 36 * tiles * p.ci * q.kpad,
  });
  if (flag[0] !== 0 || flag[2] !== 0) return false;
  // The next conv's Winograd check (conv2d/plan.ts, allFinite) then takes this note instead of a pass over y.
  if (y.length === p.n * p.co * p.ho * p.wo) noteFinite(y, flag[1] === 0);
  return true;
}
