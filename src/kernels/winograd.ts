// Winograd F(4×4, 3×3) convolution (Lavin & Gray 2015, "Fast Algorithms for Convolutional Neural Networks") for
// stride-1, dilation-1, ungrouped 3×3 convolutions, forward and input gradient.
//
//   x: (N, Ci, Hi, Wi) · g: 3×3 filters (Co × Ci) → y: (N, Co, Ho, Wo), Ho = Hi + 2·padH − 2 (Wo likewise)
//
// The output is cut into 4×4 tiles; tile t reads a 6×6 input patch d (zero outside x). Per (tile, channel pair):
//   y_tile = Aᵀ [ Σ_ci (G g Gᵀ) ⊙ (Bᵀ d B) ] A
// so the 36 positions ξ of the 6×6 transformed domain give 36 independent GEMMs over channels:
//   M_ξ (Co × T) = U_ξ (Co × Ci) · V_ξ (Ci × T),   U = G g Gᵀ (weights), V = Bᵀ d B (input tiles)
// 36 multiplies per 16 outputs per channel pair instead of 144: a quarter of direct convolution's.
//
// Numerics: the transforms have entries up to 5 (B) and 8 (A) and fractions like 1/6 (G), which in float32 would
// cost several bits. Here every intermediate is float64 — U and V are packed straight into float64 GEMM panels and
// the 36 GEMMs accumulate in float64 — and each output is rounded to float32 once, at the end. The error is then
// ~1e-15 relative before that rounding, so results almost always equal the correctly rounded direct convolution.
//
// Input gradient: for a stride-1 3×3 convolution with padding p, dx = conv(dy, w') with w'[c, o] = w[o, c] rotated
// 180° and padding 2 − p (a full correlation); `flip` selects that reading of the weights.
//
// GEMMs: the 36 4×4 tiles of each 4-channel × 4-tile block run in the asm.js module (asm.ts, `wino`), on U and V
// packed into this thread's heap there.
//
// Threads: one task with units = (block of output channels) × (block of tiles), each doing its own input
// transform, GEMMs and output transform. The weights are transformed by each thread into its own heap: the whole U
// once per call, on the thread's first unit (several tile blocks), or 4 output channels at a time just before their
// GEMMs (one tile block, or a U too big to keep; on the SIMD backend's float64 path, 4 output channels × 32 input
// channels at a time, a chunk that stays in L1). Every output is computed the same way whichever unit or thread
// computes it.
//
// In place: where a SIMD float64 call's x, y (and residual) lie in the resident memory (a training step's tensors,
// wasm/optim.ts), its units run the wasm transforms over that memory, reading x's rows and writing y's where they
// lie, with their scratch in per-thread regions of it (winograd-resident.ts), instead of copying rows through the
// thread's own memory (residentCall, convUnitsSimd).

import { asmGemm, type AsmGemm } from './asm.js';
import { getParallelBackend, parallelFor, registerTask, sharedFloat64 } from './parallel.js';
import { float32Bits, reluBits } from './relu.js';
import { kernelBackend } from './wasm/features.js';
import { NR as SIMD_NR, simdGemm, type SimdGemm } from './wasm/sgemm.js';
import { fusedWinogradApplies, fusedWinogradConv, fusedWinogradCost } from './winograd-fused.js';
import { residentAddress, residentMemory } from './wasm/optim.js';
import {
  basedWinograd, CHUNK_XI, G_SCALE, KC64, OUT_ACC, OUT_RELU, OUT_RES, OUT_SCALE, OUT_SHIFT, residentWinograd, simdWinograd, U64_CHUNK_XI, type SimdWinograd,
} from './wasm/winograd.js';
import { claimRegion, nextSerial, regionHeader, releaseRegion, residentScratch, type ScratchRegions } from './winograd-resident.js';

/** Geometry of one Winograd convolution (see the file comment). */
export interface WinogradParams {
  n: number;
  /** Input channels, height, width. */
  ci: number;
  hi: number;
  wi: number;
  /** Output channels, height, width. */
  co: number;
  ho: number;
  wo: number;
  padH: number;
  padW: number;
  /** false: w is (Co, Ci, 3, 3). true: w is (Ci, Co, 3, 3) (a forward conv's weight) read transposed and rotated 180°. */
  flip: boolean;
  /** y += result (input gradients accumulate) instead of y = result. */
  accumulate: boolean;
  /**
   * SIMD backend only: U, V and the GEMMs in float32 (blocks of ≤ 64 channels summed in float32, totals in float64)
   * instead of float64: about twice as fast, and about 10× the error (the transforms amplify float32 rounding of U
   * and V). For inference (the fused eval forward); training keeps float64.
   */
  float32?: boolean;
}

/**
 * What happens to each output value v (float64) before its one rounding, in this order:
 * v·scale[c] (if scale), + shift[c] (if shift), + res[i] (if a residual buffer is given), relu (if relu).
 * With `accumulate`, the old y value is added first.
 */
export interface Epilogue {
  scale: Float64Array | null;
  shift: Float64Array | null;
  relu: boolean;
}

export const NO_EPILOGUE: Epilogue = { scale: null, shift: null, relu: false };

/** Output channels per unit (a multiple of 4). */
const OB = 64;
/** Output channels per unit when each unit transforms its own weights (local-U mode). */
const OB_LOCAL = 32;
/** Tiles per unit (a multiple of 4). */
const TB = 16;
/**
 * Largest transformed-weight buffer (bytes) a thread keeps for a whole call; beyond it, 4 channels at a time. On the
 * SIMD backend, a whole U of 128 or 256 channels (4.7 or 19 MB as float64) streams from L3 for every block of tiles,
 * which cost more than transforming each block's 4 channels again (one core, CPU time, forward: 5×256→256 @7 14.1 →
 * 6.6 ms, 1×256 @28 18.6 → 13.0, 64×128 @4 7.0 → 5.1, 1×128 @56 15.9 → 13.5; 64 channels, 1.2 MB, about even). The
 * asm.js path's slower GEMMs hide that (128 channels local were 12–18% slower there).
 */
const MAX_U_BYTES = { simd: 2 * 2 ** 20, js: 24 * 2 ** 20 };

/** Whether U (all output channels, 36 ξ-slices of float64) is too big to keep whole on this backend. */
function uTooBig(coPad: number, ci: number): boolean {
  return 36 * xiStride(coPad, ci) * 8 > MAX_U_BYTES[kernelBackend()];
}

/**
 * Distance between the 36 ξ-slices of a packed U or V buffer holding `rows` rows (channels or tiles) × ci: one
 * cache line more than the slice, so that the 36 streams a transform writes (and the GEMMs read) do not all map to
 * the same cache sets, as they would at the power-of-two strides of typical channel counts.
 */
function xiStride(rows: number, ci: number): number {
  return rows * ci + 8;
}

/** Number of 4×4 output tiles. */
export function winogradTiles(n: number, ho: number, wo: number): number {
  return n * Math.ceil(ho / 4) * Math.ceil(wo / 4);
}

/** Fitted prices (ns) of the SIMD Winograd path's parts, for one direction and precision (see winogradCost). */
interface WinogradPrices {
  /** Per multiply-add of the 36 GEMMs (4-padded output channels × input channels × padded tiles). */
  gemm: number;
  /** Per (input, output) channel pair of the weight transform, each time it runs. */
  weights: number;
  /** Per tile and input channel: x's staging and the input transform. */
  vin: number;
  /** Per GEMM call: 4 output channels × one panel of tiles, with that block's output transform. */
  call: number;
  /** Per tile block and 4 output channels: y's staging copies (and the local weight transform's call). */
  group: number;
}

/** The SIMD backend's prices: the forward (float64, training), the fused forward (float32), the input gradient. */
const SIMD_WINOGRAD: Record<'forward' | 'forward32' | 'input', WinogradPrices> = {
  forward: { gemm: 0.0942, weights: 15, vin: 50, call: 400, group: 1770 },
  forward32: { gemm: 0.0434, weights: 9.38, vin: 52, call: 1350, group: 1020 },
  input: { gemm: 0.0988, weights: 22, vin: 58, call: 350, group: 2120 },
};

/**
 * Estimated CPU time (ns, one core) of winogradConv(p), by a cost model fitted on this machine kind (process CPU
 * time); conv2d/plan.ts's im2colCost estimates the other path, and the dispatch takes the cheaper. The parts: the 36
 * GEMMs over the padded tiles, the weight transform (once, or once per tile block when each unit transforms its own
 * U), the input transform per tile and input channel, a fixed cost per GEMM call (with its block's output transform)
 * and per tile block and 4 output channels (the staging of y: what dominates at a few channels).
 * - SIMD backend: prices per direction (forward in float64, fused forward in float32, input gradient: `flip`), fitted
 *   with im2colCost's by least squares on the relative error to two runs over 82 shapes of 3×3 convs: c→c for
 *   c = 4…512 on maps 2…56 at batches 1…128 (about 10⁸ multiply-adds each), and a few c→o (4→8, 8→32, 16↔64,
 *   32↔128). Each path's rms error 22–26% (a loaded machine). The cheaper estimate is the measured faster path in all
 *   but 19, 2 and 10 of 164 measurements (forward, input gradient, fused forward); the worst miss 1.4× (8→8 @14
 *   batch 128 forward: Winograd 1.4 ms, im2col 1.9), apart from 4-channel convs (which take the direct kernel,
 *   conv2d/direct.ts). bench/policy-check.mjs checks every 3×3 stride-1 layer of four training nets (bench/README.md).
 * - The calls the fused kernel runs (fusedWinogradApplies: the float32 forward at ≤ 32 channels) are priced by
 *   winograd-fused.ts's fusedWinogradCost.
 * - js backend (asm.js tiles): GEMMs ~0.3 ns per multiply-add, the weight transform ~50 ns per pair, the input
 *   transform ~60 ns and the output transform ~85 ns per tile per channel (checked against im2col + GEMM at 0.5 ns
 *   per multiply-add: 128×1×28×28→16 im2col, 10.5 vs 11.5 ms; 8×512×2×2→512 Winograd, 29.6 vs 34.8 ms).
 */
export function winogradCost(p: WinogradParams): number {
  const tiles = winogradTiles(p.n, p.ho, p.wo);
  const coPad = Math.ceil(p.co / 4) * 4;
  const tooBig = uTooBig(coPad, p.ci);
  if (kernelBackend() === 'simd') {
    if (fusedWinogradApplies(p)) return fusedWinogradCost(p);
    // (the blocks before oneBlock: the dispatch between the paths stays what it was fitted on)
    const b = simdBlocksFor(p, false);
    const c = SIMD_WINOGRAD[p.flip ? 'input' : p.float32 === true ? 'forward32' : 'forward'];
    const uRepeats = b.count === 1 || !tooBig ? 1 : b.count;
    const groups = (b.count * coPad) / 4;
    return c.gemm * 36 * coPad * p.ci * b.count * b.tPad + c.weights * coPad * p.ci * uRepeats + tiles * c.vin * p.ci +
      groups * (c.call * (b.tPad / b.nr) + c.group);
  }
  const tBlocks = Math.ceil(tiles / TB);
  const padded = tBlocks === 1 ? Math.ceil(tiles / 4) * 4 : tBlocks * TB;
  const uRepeats = tBlocks === 1 || !tooBig ? 1 : tBlocks;
  return p.ci * p.co * (0.3 * 36 * padded + 50 * uRepeats) + tiles * (60 * p.ci + 85 * p.co);
}

// ---- transforms ---------------------------------------------------------------------------------------------

// Per-thread scratch for the transforms.
const tmp = new Float64Array(36);
/** One output tile's 4×4 values before the epilogue. */
const tileOut = new Float64Array(16);
const patch = new Float64Array(6);
/** The task parameters (one object per call) and heap whose U this thread has transformed, in whole-U mode. */
let uCall: ConvTaskParams | null = null;
let uHeap: Float64Array | null = null;
/**
 * The call, heap and tile block whose input transform V holds on this thread. A thread pool hands a thread one unit
 * at a time, so a thread's consecutive units of a call (e.g. the output-channel blocks of one tile block) share V
 * only through here: without it, every unit would transform its tiles again (16× at 512 channels).
 */
let vCall: ConvTaskParams | null = null;
let vHeap: Float64Array | null = null;
let vBlock = -1;

/** Whether V (this thread's, in heap h) holds tile block tb of call q; if not, the caller transforms it now. */
function vHolds(q: ConvTaskParams, h: Float64Array, tb: number): boolean {
  if (vCall === q && vHeap === h && vBlock === tb) return true;
  vCall = q;
  vHeap = h;
  vBlock = tb;
  return false;
}

/** Where `copyFilters` put the filters: filter (oc, ic) at float32 index base + (oc − oc0)·laneStep + ic·icStep. */
interface FilterCopy {
  oc0: number;
  laneStep: number;
  icStep: number;
}

/**
 * Copies the 3×3 filters of output channels [oc0, min(oc1, Co)) (all Ci input channels, as the transform reads them:
 * w itself, or w[ic, oc] when flip) into this thread's heap at float32 index `base`: one contiguous copy, or one per
 * input channel when flip picks a part of each row of w.
 */
function copyFilters(f: Float32Array, base: number, w: Float32Array, p: WinogradParams, oc0: number, oc1: number): FilterCopy {
  const { ci, co, flip } = p;
  const end = Math.min(oc1, co), n = end - oc0;
  if (!flip) {
    f.set(w.subarray(oc0 * ci * 9, end * ci * 9), base);
    return { oc0, laneStep: ci * 9, icStep: 9 };
  }
  if (n === co) f.set(w, base);
  else for (let ic = 0; ic < ci; ic++) f.set(w.subarray((ic * co + oc0) * 9, (ic * co + end) * 9), base + ic * n * 9);
  return { oc0, laneStep: 9, icStep: n * 9 };
}

/**
 * Output channels [oc0, oc1) of U (multiples of 4 from ocBase), packed as GEMM A-panels of a buffer at heap double
 * `at` holding `rows` channels from `ocBase` on: h[at + ξ·xiStride(rows, Ci) + (r>>2)·4·Ci + ic·4 + (r&3)] =
 * (G g_{oc,ic} Gᵀ)[ξ], r = oc − ocBase, ξ = 6·row + col. Padded channels (oc ≥ Co) get zeros. The filters are read
 * from the heap copy `fc` (copyFilters, at float32 index base) by the asm.js `weights` (measured 6.2 → 4.4 ms of a
 * 512→512 @7 forward on one core, against the same arithmetic as plain JS reading w). True if a filter read holds a
 * NaN or ±Inf.
 */
function weightTransform(g: AsmGemm, at: number, base: number, fc: FilterCopy, p: WinogradParams, rows: number, ocBase: number, oc0: number, oc1: number): boolean {
  const { ci, co, flip } = p;
  const sx = xiStride(rows, ci);
  let bad = 0;
  for (let pc = oc0; pc < oc1; pc += 4) {
    const src = base + (pc - fc.oc0) * fc.laneStep;
    const dst = at + ((pc - ocBase) >> 2) * 4 * ci;
    bad |= g.weights(src * 4, ci, fc.icStep * 4, fc.laneStep * 4, flip ? 1 : 0, Math.max(0, Math.min(4, co - pc)), dst * 8, sx * 8);
  }
  return bad !== 0;
}

/**
 * Input transform of tiles [t0, t1) into v[at …] (B-panels of nr tiles: v[at + ξ·xiStride(tbPad, Ci) +
 * ⌊j/nr⌋·nr·Ci + ic·nr + j mod nr], j = t − t0; float64 for the asm.js GEMM (nr = 4), float32 for the SIMD one
 * (nr = 8: V rounded once, after the float64 transform).
 * Tile t = (img·tilesH + ty)·tilesW + tx reads rows ty·4 − padH … +5 and columns tx·4 − padW … +5 of x.
 */
function inputTransform(v: Float32Array | Float64Array, at: number, x: Float32Array, p: WinogradParams, t0: number, t1: number, tbPad: number, nr: number): void {
  const { ci, hi, wi, padH, padW } = p;
  const tilesH = Math.ceil(p.ho / 4), tilesW = Math.ceil(p.wo / 4);
  const strideXi = xiStride(tbPad, ci);
  const d = tmp;
  for (let t = t0; t < t1; t++) {
    const j = t - t0;
    const tx = t % tilesW;
    const rest = (t - tx) / tilesW;
    const ty = rest % tilesH;
    const img = (rest - ty) / tilesH;
    const iy0 = ty * 4 - padH, ix0 = tx * 4 - padW;
    const inside = iy0 >= 0 && ix0 >= 0 && iy0 + 6 <= hi && ix0 + 6 <= wi;
    const jBase = at + Math.floor(j / nr) * nr * ci + (j % nr);
    for (let ic = 0; ic < ci; ic++) {
      const plane = (img * ci + ic) * hi * wi;
      // Column pass: Bᵀ applied down each of the 6 columns of the patch → d[row*6 + col].
      if (inside) {
        for (let c = 0; c < 6; c++) {
          const s = plane + iy0 * wi + ix0 + c;
          btCol(d, c, x[s]!, x[s + wi]!, x[s + 2 * wi]!, x[s + 3 * wi]!, x[s + 4 * wi]!, x[s + 5 * wi]!);
        }
      } else {
        // Border tile: the patch with zeros outside x, gathered column by column.
        const col = patch;
        for (let c = 0; c < 6; c++) {
          const ix = ix0 + c;
          for (let r = 0; r < 6; r++) {
            const iy = iy0 + r;
            col[r] = ix >= 0 && ix < wi && iy >= 0 && iy < hi ? x[plane + iy * wi + ix]! : 0;
          }
          btCol(d, c, col[0]!, col[1]!, col[2]!, col[3]!, col[4]!, col[5]!);
        }
      }
      // Row pass: Bᵀ applied along each row → V[row][col] at ξ = 6·row + col.
      const o = jBase + ic * nr;
      for (let r = 0; r < 6; r++) {
        const d0 = d[r * 6]!, d1 = d[r * 6 + 1]!, d2 = d[r * 6 + 2]!, d3 = d[r * 6 + 3]!, d4 = d[r * 6 + 4]!, d5 = d[r * 6 + 5]!;
        const row = r * 6 * strideXi + o;
        const a = d4 - 4 * d2, b = d3 - 4 * d1, s = d4 - d2, e = d3 - d1, f = 2 * e;
        v[row] = 4 * (d0 - d2) + s;
        v[row + strideXi] = a + b;
        v[row + 2 * strideXi] = a - b;
        v[row + 3 * strideXi] = s + f;
        v[row + 4 * strideXi] = s - f;
        v[row + 5 * strideXi] = d5 - d3 - 4 * e;
      }
    }
  }
}

// Bᵀ·(d0 … d5)ᵀ written down column `c` of a 6×6 array: the rows of Bᵀ (4 0 −5 0 1 0), (0 −4 −4 1 1 0),
// (0 4 −4 −1 1 0), (0 −2 −1 2 1 0), (0 2 −1 −2 1 0), (0 4 0 −5 0 1) with their common parts shared (17 operations
// instead of 24; the row pass does the same). The multiplications by 2 and 4 are exact.
function btCol(d: Float64Array, c: number, d0: number, d1: number, d2: number, d3: number, d4: number, d5: number): void {
  const a = d4 - 4 * d2, b = d3 - 4 * d1, s = d4 - d2, e = d3 - d1, f = 2 * e;
  d[c] = 4 * (d0 - d2) + s;
  d[6 + c] = a + b;
  d[12 + c] = a - b;
  d[18 + c] = s + f;
  d[24 + c] = s - f;
  d[30 + c] = d5 - d3 - 4 * e;
}

interface ConvTaskParams {
  p: WinogradParams;
  ep: Epilogue;
  coPad: number;
  /** Output channels per unit (the most, with `bounds`). */
  ob: number;
  oBlocks: number;
  /** Output-channel block ob covers [bounds[ob], bounds[ob + 1]) (tailBounds), or null: [ob·ob, …+ob). */
  bounds: number[] | null;
  tiles: number;
  /** U is transformed 4 output channels at a time, just before their GEMMs (one tile block, or U too big to keep). */
  localU: boolean;
  /** The SIMD backend's tile blocks (null on the js backend, whose blocks are TB tiles). */
  blocks: SimdBlocks | null;
  /**
   * SIMD float64: G's row scales go into V (`w64Int`, `vin64s`) rather than U (`w64`, `vin64`), when V has fewer
   * values to scale than U (fewer tiles than output channels times the weight transform's repeats).
   */
  scaleV: boolean;
  /** The SIMD float64 path in place over the resident memory (see residentCall), or null. */
  resident: ResidentCall | null;
  /**
   * SIMD float32 in `wino8x4` mode (groupChannels 8): U without G's row scales (`wchunk`), which V takes instead
   * (`vin32x4s`): V has 4 tiles or fewer per input channel where U has every output channel (3×3 512→512 @7 at batch
   * 1: the weight transform without its 36 scalings per filter).
   */
  intU: boolean;
}

/**
 * A call whose x, y (and residual) lie in the resident memory (wasm/optim.ts: a training step's tensors with
 * config.residentSteps): its units read x's rows and write y's at their byte addresses there, with their scratch in
 * per-thread regions of that memory (winograd-resident.ts), instead of copying them through the thread's own memory.
 */
interface ResidentCall {
  s: ScratchRegions;
  serial: number;
  x: number;
  y: number;
  /** The residual's address minus y's (0 without one). */
  resDelta: number;
}

/** Units [u0, u1): unit = tb·oBlocks + ob covers output channels [ob·OB, …+OB) and tiles [tb·TB, …+TB). */
function convUnits(
  y: Float32Array, x: Float32Array, w: Float32Array, res: Float32Array | null, flag: Float64Array, q: ConvTaskParams, u0: number, u1: number,
): void {
  const { p, ep, coPad, oBlocks, tiles, localU } = q;
  const { ci, ho, wo } = p;
  const tilesH = Math.ceil(ho / 4), tilesW = Math.ceil(wo / 4);
  const tbPad = TB;
  // Heap layout (doubles): U (36 slices of 4 or coPad channels × Ci) | V (36 slices of TB tiles × Ci) | M (36 × 16)
  // | the float32 filters of a unit's (local U) or all (whole U) output channels, for the weight transform.
  const uXi = xiStride(localU ? 4 : coPad, ci), vXi = xiStride(tbPad, ci);
  const vAt = 36 * uXi, mAt = vAt + 36 * vXi, fAt = mAt + 36 * 16;
  const g = asmGemm(fAt + Math.ceil(((localU ? q.ob : coPad) * ci * 9) / 2));
  const h = g.h, base = 2 * fAt;
  if (!localU && (uCall !== q || uHeap !== h)) {
    if (weightTransform(g, 0, base, copyFilters(g.f, base, w, p, 0, coPad), p, coPad, 0, 0, coPad)) flag[0] = 1;
    uCall = q;
    uHeap = h;
  }
  const yb = ep.relu ? float32Bits(y) : null;
  for (let unit = u0; unit < u1; unit++) {
    const ob = unit % oBlocks, tb = (unit - ob) / oBlocks;
    const t0 = tb * TB, t1 = Math.min(tiles, t0 + TB);
    if (!vHolds(q, h, tb)) inputTransform(h, vAt, x, p, t0, t1, tbPad, 4);
    const o0 = ob * q.ob, o1 = Math.min(coPad, o0 + q.ob);
    const fc = localU ? copyFilters(g.f, base, w, p, o0, o1) : null;
    for (let oc0 = o0; oc0 < o1; oc0 += 4) {
      // Local U: the 4 channels' transformed weights, just before their GEMMs (36·4·Ci doubles, 590 KB at Ci = 512,
      // stay in L2).
      if (fc !== null && weightTransform(g, 0, base, fc, p, 4, oc0, oc0, oc0 + 4)) flag[0] = 1;
      const uPanel = localU ? 0 : oc0 * ci;
      for (let j0 = 0; j0 < t1 - t0; j0 += 4) {
        const vPanel = vAt + (j0 >> 2) * 4 * ci;
        g.wino(ci, uPanel * 8, uXi * 8, vPanel * 8, vXi * 8, mAt * 8);
        outputBlock(y, yb, res, h, mAt, p, ep, oc0, t0 + j0, Math.min(4, t1 - t0 - j0), tilesH, tilesW, 4, 16);
      }
    }
  }
}

/**
 * The SIMD path's tile blocks: whole tile rows (consecutive in the flat tile order, across images), so that a block's
 * outputs are whole rows of y and leave the wasm memory in one copy per (image, channel); rows of more than 64 tiles
 * are cut into parts of one row instead. Rows per block: at least 16 tiles, at most 64, the count that fills the
 * GEMM's panels of nr tiles best (the last panel of a block is padded).
 */
interface SimdBlocks {
  /** Tile rows per block; 0: each block is a part of one tile row, `chunk` tiles (`perRow` parts per row). */
  rows: number;
  chunk: number;
  perRow: number;
  count: number;
  /** The most tiles in a block, rounded up to nr. */
  tPad: number;
  /** Tiles per GEMM panel: 4 (float64 `wino64`, float32 `wino4`) or 8 (float32 `wino`). */
  nr: number;
}

function simdBlocks(n: number, tilesH: number, tilesW: number, nr: number): SimdBlocks {
  const tileRows = n * tilesH;
  const fill = (t: number): number => t / (Math.ceil(t / nr) * nr);
  if (tilesW <= 64) {
    const kMin = Math.ceil(16 / tilesW);
    let k = kMin;
    for (let c = kMin + 1; c * tilesW <= 64; c++) if (fill(c * tilesW) > fill(k * tilesW) + 1e-9) k = c;
    k = Math.min(k, tileRows);
    return { rows: k, chunk: 0, perRow: 0, count: Math.ceil(tileRows / k), tPad: Math.ceil((k * tilesW) / nr) * nr, nr };
  }
  const chunk = Math.ceil(Math.ceil(tilesW / Math.ceil(tilesW / 32)) / nr) * nr;
  const perRow = Math.ceil(tilesW / chunk);
  return { rows: 0, chunk, perRow, count: tileRows * perRow, tPad: chunk, nr };
}

/**
 * The SIMD blocks of a call: panels of 4 tiles for float64; for float32, panels of 8 tiles (`wino`, 4×8 register
 * tiles) unless padding the blocks to 8 would waste more than `wino4`'s 4×4 register tiles lose per multiply-add
 * (3×3 512→512 @7 at batch 1: 4 tiles, half of an 8-tile panel). merge: float64 blocks as oneBlock makes them (the
 * calls run so; winogradCost prices the blocks before, which its prices were fitted on).
 */
function simdBlocksFor(p: WinogradParams, merge = true): SimdBlocks {
  const tilesH = Math.ceil(p.ho / 4), tilesW = Math.ceil(p.wo / 4);
  if (p.float32 !== true) {
    const b = wholeImageBlocks(simdBlocks(p.n, tilesH, tilesW, 4), p.n, tilesH, tilesW);
    return merge ? oneBlock(b, p, tilesH, tilesW) : b;
  }
  const b8 = simdBlocks(p.n, tilesH, tilesW, SIMD_NR), b4 = simdBlocks(p.n, tilesH, tilesW, 4);
  return WINO4_COST * b4.count * b4.tPad < b8.count * b8.tPad ? b4 : b8;
}

/**
 * The float64 blocks b as one block of all the call's tiles, when they are at most 64 and b cuts them into several
 * blocks whose panels hold no fewer tiles in all, and where that keeps V's scaling (scaleV) as it was; else b. With
 * one block, each unit transforms only its own output channels' U, once, where several blocks over a U too big to
 * keep transform it once per block (3×3 128→128 @28 at batch 1: 2 blocks of 28 and 21 tiles, the same 52 padded
 * tiles as one block of 49). Every output is computed the same way in either partition.
 */
function oneBlock(b: SimdBlocks, p: WinogradParams, tilesH: number, tilesW: number): SimdBlocks {
  const tiles = p.n * tilesH * tilesW, tPad = Math.ceil(tiles / 4) * 4;
  if (b.count === 1 || tiles > 64 || tPad > b.count * b.tPad) return b;
  const coPad = Math.ceil(p.co / 4) * 4;
  const scaleV = tiles < coPad * (uTooBig(coPad, p.ci) ? b.count : 1);
  if (scaleV !== tiles < coPad) return b;
  return { rows: p.n * tilesH, chunk: 0, perRow: 0, count: 1, tPad, nr: b.nr };
}

/**
 * Blocks of b.nr-tile panels that hold whole images when their last panel wastes at most 10% (fmnist 16@28: 7 tile
 * rows of 49 tiles instead of 4 rows of 28), else b. A block's staged outputs leave the wasm memory in one copy per
 * part of an image and 4 channels, so whole images take one copy where parts of images take one per channel.
 */
function wholeImageBlocks(b: SimdBlocks, n: number, tilesH: number, tilesW: number): SimdBlocks {
  const perImage = tilesH * tilesW;
  if (b.rows === 0 || b.rows % tilesH === 0 || n === 1 || perImage > 64) return b;
  const k = Math.min(n * tilesH, Math.ceil(16 / perImage) * tilesH);
  const tPad = Math.ceil((k * tilesW) / b.nr) * b.nr;
  if (k * tilesW > 64 || k * tilesW < 0.9 * tPad) return b;
  return { rows: k, chunk: 0, perRow: 0, count: Math.ceil((n * tilesH) / k), tPad, nr: b.nr };
}

/**
 * Output channels per GEMM group on the SIMD path: 8 (`wino8x4`, two 4-channel U panels) for float32 blocks of
 * 4-tile panels whose U is transformed per unit, else 4.
 */
function groupChannels(q: ConvTaskParams): number {
  return q.intU ? 8 : 4;
}

/** Largest staging of a unit's outputs (bytes) that `unitStaged` allows. */
const UNIT_STAGE_BYTES = 128 * 1024;

/**
 * Whether the SIMD float64 path stages a unit's outputs for all its channels at once (copied in and out of the wasm
 * memory once per unit, in runs over whole channels: 64→64 @7 at batch 128 takes one copy per block of 4 images
 * instead of one per image and 4 channels), rather than 4 channels at a time; when that staging fits in
 * UNIT_STAGE_BYTES (it stays in L2 while the unit's GEMMs run).
 */
function unitStaged(q: ConvTaskParams): boolean {
  const b = q.blocks;
  return b !== null && q.p.float32 !== true && 16 * Math.min(q.ob, q.coPad) * (b.rows > 0 ? b.rows : 1) * q.p.wo <= UNIT_STAGE_BYTES;
}

/** Output channels of a block's staging rows: a unit's (unitStaged) or a GEMM group's. */
function stageChannels(q: ConvTaskParams): number {
  return unitStaged(q) ? Math.min(q.ob, q.coPad) : groupChannels(q);
}

/** Time per multiply-add of `wino4` against `wino`'s. */
const WINO4_COST = 1.25;

/** Tiles [t0, t1) of SIMD block tb. */
function simdBlockRange(b: SimdBlocks, tb: number, tilesW: number, tiles: number): [number, number] {
  if (b.rows > 0) {
    const t0 = tb * b.rows * tilesW;
    return [t0, Math.min(tiles, t0 + b.rows * tilesW)];
  }
  const row = Math.floor(tb / b.perRow), c = tb % b.perRow;
  return [row * tilesW + c * b.chunk, row * tilesW + Math.min(tilesW, (c + 1) * b.chunk)];
}

/**
 * Where the SIMD path keeps things in the thread's wasm memory (bytes, each 16-aligned) after U, V, M, the filters
 * and the NaN flag: x's NaN flag, the tile tables of a block, scale and shift, the staging rows of y (and of the residual, at
 * + resDelta), the output transform's scratch, x's rows as copied, and x's padded planes.
 */
interface SimdLayout {
  /** 4 float32 that `pad` adds v − v into for every value of x it copies (nonzero: x holds a NaN or ±Inf). */
  xBad: number;
  inTab: number;
  outTab: number;
  /** The same table for output channels 4 … 7 (their addresses 4 channels on), for `wino8x4`'s second panel. */
  outTab4: number;
  scale: number;
  shift: number;
  yStage: number;
  resDelta: number;
  /** 384 bytes (rounded to 1 KB) for the output transform's column-pass results (see wasm/winograd.ts's vout). */
  scratch: number;
  raw: number;
  padded: number;
  end: number;
  /** Padded plane: ph rows of pw float32 (pw a multiple of 4). */
  ph: number;
  pw: number;
}

function simdLayout(at: number, q: ConvTaskParams, b: SimdBlocks): SimdLayout {
  const { ci, wi, wo } = q.p;
  const tilesW = Math.ceil(wo / 4), tilesH = Math.ceil(q.p.ho / 4);
  const a16 = (v: number): number => Math.ceil(v / 16) * 16;
  const segRows = b.rows > 0 ? Math.min(b.rows, tilesH) : 1, segs = b.rows > 0 ? b.rows + 1 : 1;
  const ph = 4 * segRows + 2, pw = Math.ceil((4 * tilesW + 2) / 4) * 4;
  const yBytes = a16(4 * stageChannels(q) * 4 * (b.rows > 0 ? b.rows : 1) * wo + 16);
  const xBad = at, inTab = a16(at + 16), outTab = inTab + a16(4 * b.tPad), outTab4 = outTab + 16 * b.tPad, scale = outTab4 + 16 * b.tPad;
  const shift = scale + a16(8 * q.coPad);
  const yStage = shift + a16(8 * q.coPad), scratch = yStage + 2 * yBytes, raw = scratch + 1024, padded = raw + a16(4 * ci * wi * ph);
  return { xBad, inTab, outTab, outTab4, scale, shift, yStage, resDelta: yBytes, scratch, raw, padded, end: padded + 4 * segs * ci * ph * pw, ph, pw };
}

/** A block's parts in one image each (this thread's, for the block whose V it holds). */
interface Segment {
  img: number;
  /** First output row, output rows, first and last tile column. */
  oy: number;
  rows: number;
  txA: number;
  txB: number;
  /** Float32 offset of its staging rows from the y staging area: channel i's at + i·rows·wo. */
  stage: number;
}
const segments: Segment[] = [];
let i32view: Int32Array | null = null;
let i32viewOf: Float32Array | null = null;

/**
 * Stages tiles [t0, t1) for the wasm input transform and runs it into V: per image, x's rows under those tiles
 * copied into wasm memory (one copy for whole images, else one per channel), padded by `pad`; the tables of the
 * tiles' patches (for vin) and of their outputs in the y staging rows (for vout); `segments`.
 * In place (rc, the scratch at byte `base` of the resident memory): `pad` reads x's rows where they lie, and the
 * output table addresses y's channel 0 itself.
 * True if the rows of x it read hold a NaN or ±Inf (seen by `pad`, which copies each of them; the rows of all blocks
 * together are the whole of x).
 */
function stageBlock(
  g: Heap, wg: SimdWinograd, lay: SimdLayout, x: Float32Array, q: ConvTaskParams, t0: number, t1: number, vAtB: number, vXiB: number,
  rc: ResidentCall | null = null, base = 0,
): boolean {
  const { ci, co, hi, wi, ho, wo, padH, padW } = q.p;
  const tilesH = Math.ceil(ho / 4), tilesW = Math.ceil(wo / 4), tpi = tilesH * tilesW;
  const f = g.f;
  if (i32viewOf !== f) {
    i32view = new Int32Array(f.buffer, f.byteOffset, f.length);
    i32viewOf = f;
  }
  const iv = i32view!;
  const pwB = 4 * lay.pw, planeB = lay.ph * pwB, rawF = lay.raw / 4, b4 = (lay.outTab4 - lay.outTab) / 16;
  segments.length = 0;
  const h = g.h, bad = lay.xBad / 8;
  h[bad] = 0;
  h[bad + 1] = 0;
  let stage = 0;
  for (let t = t0; t < t1;) {
    const img = Math.floor(t / tpi), end = Math.min(t1, (img + 1) * tpi);
    const la = t - img * tpi, lb = end - 1 - img * tpi;
    const tyA = Math.floor(la / tilesW), tyB = Math.floor(lb / tilesW);
    const iyA = Math.max(0, 4 * tyA - padH), iyB = Math.min(hi, 4 * tyB + 6 - padH), rows = iyB - iyA;
    const xImg = img * ci * hi * wi;
    const segPad = lay.padded + segments.length * ci * planeB;
    if (rc !== null) wg.pad(rc.x + 4 * (xImg + iyA * wi), 4 * hi * wi, wi, rows, ci, segPad, planeB, pwB, lay.ph, iyA + padH - 4 * tyA, 4 * padW, lay.xBad);
    else {
      if (rows === hi) f.set(x.subarray(xImg, xImg + ci * hi * wi), rawF);
      else for (let ic = 0; ic < ci; ic++) {
        const s = xImg + (ic * hi + iyA) * wi;
        f.set(x.subarray(s, s + rows * wi), rawF + ic * rows * wi);
      }
      wg.pad(lay.raw, 4 * rows * wi, wi, rows, ci, segPad, planeB, pwB, lay.ph, iyA + padH - 4 * tyA, 4 * padW, lay.xBad);
    }
    const oy = 4 * tyA, oRows = Math.min(ho, 4 * tyB + 4) - oy;
    segments.push({ img, oy, rows: oRows, txA: la % tilesW, txB: lb % tilesW, stage });
    for (let k = t; k < end; k++) {
      const l = k - img * tpi, ty = Math.floor(l / tilesW), tx = l % tilesW, j = k - t0;
      iv[lay.inTab / 4 + j] = base + segPad + 4 * ((ty - tyA) * 4 * lay.pw + 4 * tx);
      const e = lay.outTab / 4 + 4 * j;
      if (rc !== null) {
        iv[e] = rc.y + 4 * ((img * co * ho + 4 * ty) * wo + 4 * tx);
        iv[e + 1] = 4 * ho * wo;
      } else {
        iv[e] = lay.yStage + 4 * (stage + (4 * ty - oy) * wo + 4 * tx);
        iv[e + 1] = 4 * oRows * wo;
      }
      iv[e + 2] = Math.min(4, ho - 4 * ty);
      iv[e + 3] = Math.min(4, wo - 4 * tx);
      const e4 = e + 4 * b4;
      iv[e4] = iv[e]! + 4 * iv[e + 1]!;
      iv[e4 + 1] = iv[e + 1]!;
      iv[e4 + 2] = iv[e + 2]!;
      iv[e4 + 3] = iv[e + 3]!;
    }
    stage += stageChannels(q) * oRows * wo;
    t = end;
  }
  (q.p.float32 !== true ? (q.scaleV ? wg.vin64s : wg.vin64) : q.intU ? wg.vin32x4s : q.blocks!.nr === 4 ? wg.vin32x4 : wg.vin32x8)(lay.inTab, t1 - t0, ci, planeB, pwB, vAtB, vXiB);
  return h[bad] !== 0 || h[bad + 1] !== 0;
}

/**
 * Copies between a buffer shaped like y (y itself, or the residual) and this block's staging rows at float32 index
 * `at`, for output channels [oc0, oc0 + nc): toStage true copies in, false copies out. Runs contiguous on both sides
 * are merged (whole images: one copy for all nc channels).
 */
function copyRuns(a: Float32Array, f: Float32Array, at: number, toStage: boolean, p: WinogradParams, oc0: number, nc: number): void {
  const { co, ho, wo } = p;
  const tilesW = Math.ceil(wo / 4);
  let ya = -1, sa = 0, len = 0;
  const flush = (): void => {
    if (len === 0) return;
    if (toStage) f.set(a.subarray(ya, ya + len), sa);
    else a.set(f.subarray(sa, sa + len), ya);
  };
  const run = (y0: number, s0: number, n: number): void => {
    if (len > 0 && ya + len === y0 && sa + len === s0) len += n;
    else {
      flush();
      ya = y0;
      sa = s0;
      len = n;
    }
  };
  for (const s of segments) {
    const whole = s.txA === 0 && s.txB === tilesW - 1;
    for (let i = 0; i < nc; i++) {
      const yc = ((s.img * co + oc0 + i) * ho + s.oy) * wo, sc = at + s.stage + i * s.rows * wo;
      if (whole) run(yc, sc, s.rows * wo);
      else for (let r = 0; r < s.rows; r++) run(yc + r * wo + 4 * s.txA, sc + r * wo + 4 * s.txA, Math.min(wo, 4 * s.txB + 4) - 4 * s.txA);
    }
  }
  flush();
}

/** The float32 and float64 views of a thread's scratch, from its start (the wasm functions' address 0, or a base). */
type Heap = Pick<SimdGemm, 'f' | 'h'>;

/** This thread's views and functions of the resident region it used last (convUnitsSimd in place). */
let place: { buf: ArrayBufferLike; at: number; bytes: number; r: SimdWinograd; g: Heap; wg: SimdWinograd; head: Int32Array } | null = null;

/** Where convUnitsSimd keeps things in its scratch (see there), and how many bytes that takes (lay.end). */
function simdPlan(q: ConvTaskParams): { gc: number; uXi: number; vXi: number; vAt: number; mAt: number; fAt: number; badAt: number; lay: SimdLayout } {
  const { coPad, localU } = q;
  const { ci } = q.p;
  const blocks = q.blocks!;
  const f32 = q.p.float32 === true;
  const nr = blocks.nr, eb = f32 ? 4 : 8;
  // Memory layout (in elements of U and V's type): U (36 slices of 4 or coPad channels × Ci) | V (36 slices of tPad
  // tiles × Ci) | M (float64: 36 blocks of 4 × nr, at double mAt).
  const gc = groupChannels(q);
  const uXi = xiStride(localU ? gc : coPad, ci), vXi = xiStride(blocks.tPad, ci);
  // Then the filters' float32 copy (at float32 index fAt, for the wasm weight transform), 2 doubles at badAt, and
  // simdLayout's parts.
  // (In `wino8x4` mode, U chunks of CHUNK_XI bytes per ξ, and M blocks for every 4-tile panel of the block.)
  const vAt = 36 * Math.max(uXi, gc === 8 ? CHUNK_XI / eb : 0, f32 ? 0 : U64_CHUNK_XI / 8), mAt = Math.ceil(((vAt + 36 * vXi) * eb) / 8);
  // (float64: an M block for every 4-tile panel, which chunkGemms64 fills chunk by chunk.)
  const fAt = 2 * (mAt + (gc === 8 ? 2 : f32 ? 0 : 1) * 36 * 16 * (blocks.tPad / 4) + (f32 && gc === 4 ? 36 * 4 * nr : 0)), fLen = (localU ? Math.min(q.ob, coPad) : coPad) * ci * 9;
  const badAt = Math.ceil((fAt + fLen) / 2);
  return { gc, uXi, vXi, vAt, mAt, fAt, badAt, lay: simdLayout(8 * (badAt + 2), q, blocks) };
}

/**
 * The SIMD path's units: the same transforms in float64 (the weight transform as an integer G' and row scales, see
 * wasm/winograd.ts's G_SCALE), all in this thread's wasm memory (wasm/winograd.ts), over tile blocks of whole tile
 * rows (simdBlocks). float64 (the default): U and V as doubles in asm.ts's layout (4-channel and 4-tile panels), the
 * 36 GEMMs of each 4 × 4 block by the wasm `wino64` (f64x2; `gemm64c` over chunks of U when U is local).
 * float32 (q.p.float32, inference): U and V rounded to float32, V in 8-tile panels, and the 36 GEMMs of each
 * 4-channel × 8-tile block by the wasm `wino` (float32 products, float32 sums over ≤ 64 channels, float64 total).
 * See wasm/sgemm.ts. Per block, x's rows are copied in once; per 4 output channels, the outputs go to staging rows
 * (with y's old values first when accumulating, and the residual's beside them), copied out to y in whole runs.
 * In place (`slot` ≥ 0: region `slot` of q.resident's scratch, float64 only), x's rows are read and y's written
 * where they lie in the resident memory, and the scratch is laid out from the region's start as it is here from 0.
 */
function convUnitsSimd(
  y: Float32Array, x: Float32Array, w: Float32Array, res: Float32Array | null, flag: Float64Array, q: ConvTaskParams, u0: number, u1: number,
  slot = -1,
): void {
  const { p, ep, coPad, oBlocks, tiles, localU } = q;
  const { ci, co, wo } = p;
  const blocks = q.blocks!;
  const f32 = p.float32 === true;
  const nr = blocks.nr, eb = f32 ? 4 : 8;
  const tilesW = Math.ceil(wo / 4);
  const { gc, uXi, vXi, vAt, mAt, fAt, badAt, lay } = simdPlan(q);
  const rc = slot >= 0 ? q.resident : null;
  let g: Heap, wg: SimdWinograd, own: SimdGemm | null = null;
  /** Whether this thread's scratch holds V of tile block tb (else the caller transforms it now), and U. */
  let vHeld: (tb: number) => boolean, uHeld: () => boolean;
  if (rc !== null) {
    // In place: the scratch (laid out as in the thread's own memory) in region `slot`, its header telling which
    // call's V and U it holds. (Views and functions kept while the thread's units find the same region.)
    const at = rc.s.at[slot]!, buf = rc.s.mem.buffer, bytes = rc.s.bytes;
    const r = residentWinograd(rc.s);
    if (place === null || place.buf !== buf || place.at !== at || place.bytes !== bytes || place.r !== r) {
      place = {
        buf, at, bytes, r, g: { f: new Float32Array(buf, at, bytes / 4), h: new Float64Array(buf, at, bytes / 8) }, wg: basedWinograd(r, at),
        head: regionHeader(rc.s, slot),
      };
    }
    g = place.g;
    wg = place.wg;
    const head = place.head;
    vHeld = (tb) => {
      if (head[0] === rc.serial && head[1] === tb) return true;
      head[0] = rc.serial;
      head[1] = tb;
      return false;
    };
    uHeld = () => {
      if (head[2] === rc.serial) return true;
      head[2] = rc.serial;
      return false;
    };
  } else {
    const sg = (own = simdGemm(lay.end));
    g = sg;
    wg = simdWinograd();
    vHeld = (tb) => vHolds(q, sg.h, tb);
    uHeld = () => {
      if (uCall === q && uHeap === sg.h) return true;
      uCall = q;
      uHeap = sg.h;
      return false;
    };
  }
  const uv = f32 ? g.f : g.h, h = g.h;
  const vout = nr === 8 ? wg.vout8 : wg.vout4;
  // If U is whole: transformed once per call into the scratch that holds it (its filter check sets the flag then).
  if (!localU && !uHeld()) {
    if (weightTransformWasm(g, wg, uv, fAt, badAt, copyFilters(g.f, fAt, w, p, 0, coPad), w, q, coPad, 0, 0, coPad)) flag[0] = 1;
  }
  if (ep.scale !== null) h.set(ep.scale, lay.scale / 8);
  if (ep.shift !== null) h.set(ep.shift, lay.shift / 8);
  const flags = (p.accumulate ? OUT_ACC : 0) | (ep.scale !== null ? OUT_SCALE : 0) | (ep.shift !== null ? OUT_SHIFT : 0) |
    (res !== null ? OUT_RES : 0) | (ep.relu ? OUT_RELU : 0);
  const yStageF = lay.yStage / 4;
  // In place, the outputs go straight to y (the tables address channel 0; c0 the absolute channel), else to the
  // staging rows (a unit's channels, or a group's) copied out after.
  const unitStage = rc === null && unitStaged(q), staged = rc === null;
  const resDelta = rc !== null ? rc.resDelta : lay.resDelta;
  const c0Of = (oc0: number, o0: number): number => (rc !== null ? oc0 : unitStage ? oc0 - o0 : 0);
  for (let unit = u0; unit < u1; unit++) {
    const ob = unit % oBlocks, tb = (unit - ob) / oBlocks;
    const [t0, t1] = simdBlockRange(blocks, tb, tilesW, tiles);
    if (!vHeld(tb) && stageBlock(g, wg, lay, x, q, t0, t1, vAt * eb, vXi * eb, rc, rc !== null ? rc.s.at[slot]! : 0)) flag[0] = 1;
    const o0 = q.bounds !== null ? q.bounds[ob]! : ob * q.ob, o1 = q.bounds !== null ? q.bounds[ob + 1]! : Math.min(coPad, o0 + q.ob);
    const fc = localU ? copyFilters(g.f, fAt, w, p, o0, o1) : null;
    // The unit's channels staged together: y's old values (and the residual) in once, the outputs out once.
    const ncUnit = Math.min(o1, co) - o0;
    if (unitStage && p.accumulate) copyRuns(y, g.f, yStageF, true, p, o0, ncUnit);
    if (unitStage && res !== null) copyRuns(res, g.f, yStageF + lay.resDelta / 4, true, p, o0, ncUnit);
    for (let oc0 = o0; oc0 < o1;) {
      // 8 channels (two U panels) at a time in `wino8x4` mode, U transformed and used in chunks of KB input channels;
      // 4 at a time for a last group of 4 or one with channels ≥ Co.
      const pair = gc === 8 && oc0 + 8 <= Math.min(o1, co);
      const oEnd = pair ? oc0 + 8 : oc0 + 4;
      if (pair) {
        if (p.accumulate) copyRuns(y, g.f, yStageF, true, p, oc0, 8);
        if (res !== null) copyRuns(res, g.f, yStageF + lay.resDelta / 4, true, p, oc0, 8);
        pairGemms(own!, wg, fAt, badAt, fc!, q, oc0, vAt, vXi, mAt, t1 - t0, flag);
        for (let j0 = 0; j0 < t1 - t0; j0 += 4) {
          for (let hf = 0; hf < 2; hf++) {
            vout(mAt * 8 + 2 * 36 * 128 * (j0 / 4) + 36 * 128 * hf, Math.min(4, t1 - t0 - j0), (hf === 0 ? lay.outTab : lay.outTab4) + 16 * j0, 4, flags,
              lay.scale + 8 * (oc0 + 4 * hf), lay.shift + 8 * (oc0 + 4 * hf), lay.resDelta, 4 * wo, 0, lay.scratch);
          }
        }
        copyRuns(y, g.f, yStageF, false, p, oc0, 8);
        oc0 = oEnd;
        continue;
      }
      // float64 with local U: U a chunk of input channels at a time, each chunk's GEMMs straight after (whole
      // groups of 4 channels < Co).
      const chunked = !f32 && fc !== null && oEnd <= co;
      if (chunked) chunkGemms64(g, wg, fAt, badAt, fc, q, oc0, vAt, vXi, mAt, (t1 - t0 + 3) >> 2, flag);
      else if (fc !== null && weightTransformWasm(g, wg, uv, fAt, badAt, fc, w, q, gc, oc0, oc0, oEnd)) flag[0] = 1;
      const uPanel = localU ? 0 : oc0 * ci;
      const nc = Math.min(oEnd, co) - oc0;
      if (staged && !unitStage && p.accumulate) copyRuns(y, g.f, yStageF, true, p, oc0, nc);
      if (staged && !unitStage && res !== null) copyRuns(res, g.f, yStageF + lay.resDelta / 4, true, p, oc0, nc);
      if (chunked) {
        for (let j0 = 0; j0 < t1 - t0; j0 += 4) {
          wg.vout4(mAt * 8 + 36 * 128 * (j0 / 4), Math.min(4, t1 - t0 - j0), lay.outTab + 16 * j0, nc, flags, lay.scale + 8 * oc0, lay.shift + 8 * oc0,
            resDelta, 4 * wo, c0Of(oc0, o0), lay.scratch);
        }
      } else if (!f32) {
        // float64: the block's panels in one call (wino64 then vout4 per panel, in the wasm module).
        wg.panels64((t1 - t0 + 3) >> 2, t1 - t0, ci, uPanel * 8, uXi * 8, vAt * 8, vXi * 8, mAt * 8, lay.outTab, nc, flags,
          lay.scale + 8 * oc0, lay.shift + 8 * oc0, resDelta, 4 * wo, c0Of(oc0, o0), lay.scratch);
      } else for (let j0 = 0; j0 < t1 - t0; j0 += nr) {
        const nt = Math.min(nr, t1 - t0 - j0);
        (nr === 4 ? own!.wino4 : own!.wino)(ci, uPanel * eb, uXi * eb, (vAt + j0 * ci) * eb, vXi * eb, mAt * 8);
        vout(mAt * 8, nt, lay.outTab + 16 * j0, nc, flags, lay.scale + 8 * oc0, lay.shift + 8 * oc0, lay.resDelta, 4 * wo, 0, lay.scratch);
      }
      if (staged && !unitStage) copyRuns(y, g.f, yStageF, false, p, oc0, nc);
      oc0 = oEnd;
    }
    if (unitStage) copyRuns(y, g.f, yStageF, false, p, o0, ncUnit);
  }
}

/**
 * The 36 GEMMs of output channels [oc0, oc0 + 8) (all < Co) × the block's nt tiles in `wino8x4` mode, into float64
 * M blocks at byte 8·mAt + (2·j0/4 + h)·36·128 (4-tile panel from tile j0, channels oc0 + 4h …): per chunk of KB
 * input channels, U of the 8 channels × that chunk by `wchunk` (from the filters' copy fc) at the start of the
 * memory, then the chunk's GEMMs, all in one wasm call (`pair8`). The chunks are wino8x4's KB-term blocks of k, so
 * every sum is the whole-k one.
 */
function pairGemms(
  g: SimdGemm, wg: SimdWinograd, fAt: number, badAt: number, fc: FilterCopy, q: ConvTaskParams, oc0: number, vAt: number, vXi: number,
  mAt: number, nt: number, flag: Float64Array,
): void {
  const { ci } = q.p;
  const h = g.h;
  h[badAt] = 0;
  h[badAt + 1] = 0;
  wg.pair8((fAt + (oc0 - fc.oc0) * fc.laneStep) * 4, ci, fc.icStep * 4, fc.laneStep * 4, (nt + 3) >> 2, vAt * 4, vXi * 4, mAt * 8, badAt * 8);
  if (h[badAt] !== 0 || h[badAt + 1] !== 0) flag[0] = 1;
}

/**
 * The 36 float64 GEMMs of output channels [oc0, oc0 + 4) (all < Co) × the block's np 4-tile panels, into float64 M
 * blocks at double mAt + j·36·16 (panel j): per chunk of KC64 input channels, U of the 4 channels × that chunk by
 * `w64` (from the filters' copy fc) at the start of the memory, then the chunk's GEMMs (`gemm64c`, continuing each
 * sum). The same bits as the whole U and `wino64`.
 */
function chunkGemms64(
  g: Heap, wg: SimdWinograd, fAt: number, badAt: number, fc: FilterCopy, q: ConvTaskParams, oc0: number, vAt: number, vXi: number,
  mAt: number, np: number, flag: Float64Array,
): void {
  const { ci, flip } = q.p;
  const h = g.h;
  const w64 = wg.w64[4 + 2 * +q.scaleV + +flip]!;
  const xiU = U64_CHUNK_XI;
  h[badAt] = 0;
  h[badAt + 1] = 0;
  for (let kc = 0; kc < ci; kc += KC64) {
    const n = Math.min(KC64, ci - kc);
    w64((fAt + (oc0 - fc.oc0) * fc.laneStep + kc * fc.icStep) * 4, n, fc.icStep * 4, fc.laneStep * 4, 0, xiU, badAt * 8);
    wg.gemm64c(np, n, 0, xiU, (vAt + kc * 4) * 8, 32 * ci, vXi * 8, mAt * 8, kc === 0 ? 0 : 1);
  }
  if (h[badAt] !== 0 || h[badAt + 1] !== 0) flag[0] = 1;
}

/**
 * weightTransformSimd's result by the wasm `w64` (float64, scaled unless q.scaleV: then `w64Int`, whose scales
 * `vin64s` puts into V) or `weights32` (float32), from the filters' copy `fc` (copyFilters at float32 index fAt);
 * panels with channels ≥ Co by weightTransformSimd. True if a filter read holds a NaN or ±Inf.
 */
function weightTransformWasm(
  g: Heap & Partial<Pick<SimdGemm, 'weights32' | 'weights32Flip'>>, wg: SimdWinograd, u: Float32Array | Float64Array, fAt: number, badAt: number, fc: FilterCopy, w: Float32Array, q: ConvTaskParams,
  rows: number, ocBase: number, oc0: number, oc1: number,
): boolean {
  const { p } = q;
  const { ci, co, flip } = p;
  const f32 = u instanceof Float32Array, eb = f32 ? 4 : 8;
  const sx = xiStride(rows, ci);
  const fn = wg.w64[2 * +q.scaleV + +flip]!;
  let bad = false;
  for (let pc = oc0; pc < oc1; pc += 4) {
    // (intU: the rare group of 4 channels in `wino8x4` mode, unscaled, in JavaScript.)
    if (pc + 4 > co || q.intU) {
      bad = weightTransformSimd(u, 0, w, p, rows, ocBase, pc, pc + 4, !q.scaleV && !q.intU) || bad;
      continue;
    }
    const src = fAt + (pc - fc.oc0) * fc.laneStep;
    const h = g.h;
    h[badAt] = 0;
    h[badAt + 1] = 0;
    if (f32) (flip ? g.weights32Flip! : g.weights32!)(src * 4, ci, fc.icStep * 4, fc.laneStep * 4, ((pc - ocBase) >> 2) * 4 * ci * 4, sx * 4, badAt * 8);
    else fn(src * 4, ci, fc.icStep * 4, fc.laneStep * 4, ((pc - ocBase) >> 2) * 4 * ci * eb, sx * eb, badAt * 8);
    if (h[badAt] !== 0 || h[badAt + 1] !== 0) bad = true;
  }
  return bad;
}

/**
 * The wasm `w64`'s arithmetic in plain JavaScript, reading w itself, into the SIMD path's A-panels (float64, or each
 * value rounded to float32): u[at + ξ·xiStride(rows, Ci) + (r>>2)·4·Ci + ic·4 + (r&3)], r = oc − ocBase, for output
 * channels [oc0, oc1) (multiples of 4 from ocBase; channels ≥ Co get zeros): U = G g Gᵀ (scaled), or G' g G'ᵀ
 * without G's row scales (see wasm/winograd.ts's G_SCALE). True if a filter read holds a NaN or ±Inf.
 */
function weightTransformSimd(
  u: Float32Array | Float64Array, at: number, w: Float32Array, p: WinogradParams, rows: number, ocBase: number, oc0: number, oc1: number, scaled: boolean,
): boolean {
  const { ci, co, flip } = p;
  const sx = xiStride(rows, ci);
  const gg = gRows;
  let bad = 0;
  for (let pc = oc0; pc < oc1; pc += 4) {
    const panel = at + ((pc - ocBase) >> 2) * 4 * ci;
    for (let ic = 0; ic < ci; ic++) {
      for (let lane = 0; lane < 4; lane++) {
        const oc = pc + lane;
        let d = panel + ic * 4 + lane;
        if (oc >= co) {
          for (let e = 0; e < 36; e++, d += sx) u[d] = 0;
          continue;
        }
        // Filter (oc, ic): w[oc, ic] or, flipped, w[ic, oc] rotated 180°.
        const s = flip ? (ic * co + oc) * 9 + 8 : (oc * ci + ic) * 9, t = flip ? -1 : 1;
        for (let k = 0; k < 9; k++) bad += w[s + k * t]! * 0;
        // Columns of g (taps j, j + 3, j + 6), then the rows of G' g.
        for (let j = 0; j < 3; j++) gPrime(gg, j, 3, w[s + j * t]!, w[s + (j + 3) * t]!, w[s + (j + 6) * t]!, scaled);
        for (let r = 0; r < 6; r++) gPrime(u, d + 6 * r * sx, sx, gg[3 * r]!, gg[3 * r + 1]!, gg[3 * r + 2]!, scaled);
      }
    }
  }
  return bad !== 0;
}

/** G' g (6 rows × 3 columns, row-major) of the filter being transformed. */
const gRows = new Float64Array(18);

// G' applied to (a, b, c): the 6 values at out[o + i·stride], times G_SCALE[i] when scaled (w64's steps).
function gPrime(out: Float32Array | Float64Array, o: number, stride: number, a: number, b: number, c: number, scaled: boolean): void {
  const s = a + c, t = a + 4 * c, m = b + b;
  const v0 = a, v1 = s + b, v2 = s - b, v3 = t + m, v4 = t - m;
  out[o] = scaled ? v0 * G_SCALE[0] : v0;
  out[o + stride] = scaled ? v1 * G_SCALE[1] : v1;
  out[o + 2 * stride] = scaled ? v2 * G_SCALE[2] : v2;
  out[o + 3 * stride] = scaled ? v3 * G_SCALE[3] : v3;
  out[o + 4 * stride] = scaled ? v4 * G_SCALE[4] : v4;
  out[o + 5 * stride] = c;
}

/**
 * Aᵀ M A for the 4 channels [oc0, oc0 + 4) × `nt` tiles from tb0 whose 36 GEMM results are m[at + ξ·xs + rs·i + jj]
 * (asm.js: 4×4 blocks, rs = 4, xs = 16; SIMD: 4×8 blocks, rs = 8, xs = 32),
 * then the epilogue, one rounding, and the store of the part of each 4×4 tile that lies inside the output.
 * (One call per 4×4 block rather than per (channel, tile): measured 4% faster on CIFAR's 16-channel layers.)
 */
function outputBlock(
  y: Float32Array,
  yb: Int32Array | null,
  res: Float32Array | null,
  m: Float64Array,
  at: number,
  p: WinogradParams,
  ep: Epilogue,
  oc0: number,
  tb0: number,
  nt: number,
  tilesH: number,
  tilesW: number,
  rs: number,
  xs: number,
): void {
  const { ho, wo, co } = p;
  const acc = p.accumulate, hasScale = ep.scale !== null, hasShift = ep.shift !== null;
  const o = tileOut;
  for (let i = 0; i < 4; i++) {
    const oc = oc0 + i;
    if (oc >= co) break;
    const scale = ep.scale !== null ? ep.scale[oc]! : 1;
    const shift = ep.shift !== null ? ep.shift[oc]! : 0;
    for (let jj = 0; jj < nt; jj++) {
      const tile = tb0 + jj;
      const tx = tile % tilesW;
      const rest = (tile - tx) / tilesW;
      const ty = rest % tilesH;
      const img = (rest - ty) / tilesH;
      const oy0 = ty * 4, ox0 = tx * 4;
      const lane = at + i * rs + jj;
      // Column pass: Aᵀ (4×6) down each of the 6 columns → t{row}{col} (locals, rows 0..3).
      const m00 = m[lane]!, m10 = m[6 * xs + lane]!, m20 = m[12 * xs + lane]!, m30 = m[18 * xs + lane]!, m40 = m[24 * xs + lane]!, m50 = m[30 * xs + lane]!;
      const s0 = m10 + m20, d0 = m10 - m20, u0 = m30 + m40, e0 = m30 - m40;
      const t00 = m00 + s0 + u0, t10 = d0 + 2 * e0, t20 = s0 + 4 * u0, t30 = d0 + 8 * e0 + m50;
      const m01 = m[xs + lane]!, m11 = m[7 * xs + lane]!, m21 = m[13 * xs + lane]!, m31 = m[19 * xs + lane]!, m41 = m[25 * xs + lane]!, m51 = m[31 * xs + lane]!;
      const s1 = m11 + m21, d1 = m11 - m21, u1 = m31 + m41, e1 = m31 - m41;
      const t01 = m01 + s1 + u1, t11 = d1 + 2 * e1, t21 = s1 + 4 * u1, t31 = d1 + 8 * e1 + m51;
      const m02 = m[2 * xs + lane]!, m12 = m[8 * xs + lane]!, m22 = m[14 * xs + lane]!, m32 = m[20 * xs + lane]!, m42 = m[26 * xs + lane]!, m52 = m[32 * xs + lane]!;
      const s2 = m12 + m22, d2 = m12 - m22, u2 = m32 + m42, e2 = m32 - m42;
      const t02 = m02 + s2 + u2, t12 = d2 + 2 * e2, t22 = s2 + 4 * u2, t32 = d2 + 8 * e2 + m52;
      const m03 = m[3 * xs + lane]!, m13 = m[9 * xs + lane]!, m23 = m[15 * xs + lane]!, m33 = m[21 * xs + lane]!, m43 = m[27 * xs + lane]!, m53 = m[33 * xs + lane]!;
      const s3 = m13 + m23, d3 = m13 - m23, u3 = m33 + m43, e3 = m33 - m43;
      const t03 = m03 + s3 + u3, t13 = d3 + 2 * e3, t23 = s3 + 4 * u3, t33 = d3 + 8 * e3 + m53;
      const m04 = m[4 * xs + lane]!, m14 = m[10 * xs + lane]!, m24 = m[16 * xs + lane]!, m34 = m[22 * xs + lane]!, m44 = m[28 * xs + lane]!, m54 = m[34 * xs + lane]!;
      const s4 = m14 + m24, d4 = m14 - m24, u4 = m34 + m44, e4 = m34 - m44;
      const t04 = m04 + s4 + u4, t14 = d4 + 2 * e4, t24 = s4 + 4 * u4, t34 = d4 + 8 * e4 + m54;
      const m05 = m[5 * xs + lane]!, m15 = m[11 * xs + lane]!, m25 = m[17 * xs + lane]!, m35 = m[23 * xs + lane]!, m45 = m[29 * xs + lane]!, m55 = m[35 * xs + lane]!;
      const s5 = m15 + m25, d5 = m15 - m25, u5 = m35 + m45, e5 = m35 - m45;
      const t05 = m05 + s5 + u5, t15 = d5 + 2 * e5, t25 = s5 + 4 * u5, t35 = d5 + 8 * e5 + m55;
      // Row pass: Aᵀ along each row → the tile's 4×4 values in float64 (o, row-major); then the epilogue and one
      // rounding for those inside the output.
      { const s12 = t01 + t02, d12 = t01 - t02, s34 = t03 + t04, d34 = t03 - t04;
        o[0] = t00 + s12 + s34; o[1] = d12 + 2 * d34; o[2] = s12 + 4 * s34; o[3] = d12 + 8 * d34 + t05; }
      { const s12 = t11 + t12, d12 = t11 - t12, s34 = t13 + t14, d34 = t13 - t14;
        o[4] = t10 + s12 + s34; o[5] = d12 + 2 * d34; o[6] = s12 + 4 * s34; o[7] = d12 + 8 * d34 + t15; }
      { const s12 = t21 + t22, d12 = t21 - t22, s34 = t23 + t24, d34 = t23 - t24;
        o[8] = t20 + s12 + s34; o[9] = d12 + 2 * d34; o[10] = s12 + 4 * s34; o[11] = d12 + 8 * d34 + t25; }
      { const s12 = t31 + t32, d12 = t31 - t32, s34 = t33 + t34, d34 = t33 - t34;
        o[12] = t30 + s12 + s34; o[13] = d12 + 2 * d34; o[14] = s12 + 4 * s34; o[15] = d12 + 8 * d34 + t35; }
      const plane = (img * co + oc) * ho * wo;
      const rows = Math.min(4, ho - oy0), cols = Math.min(4, wo - ox0);
      for (let r = 0; r < rows; r++) {
        const row = plane + (oy0 + r) * wo + ox0;
        // Four columns written out (7% faster than the loop on CIFAR's 16-channel layers; the epilogue's tests do
        // not change within a call, so they predict well), or the loop where the output's right edge cuts the tile.
        if (cols === 4) {
          const a = 4 * r;
          let v0 = o[a]!, v1 = o[a + 1]!, v2 = o[a + 2]!, v3 = o[a + 3]!;
          if (acc) { v0 = y[row]! + v0; v1 = y[row + 1]! + v1; v2 = y[row + 2]! + v2; v3 = y[row + 3]! + v3; }
          if (hasScale) { v0 *= scale; v1 *= scale; v2 *= scale; v3 *= scale; }
          if (hasShift) { v0 += shift; v1 += shift; v2 += shift; v3 += shift; }
          if (res !== null) { v0 += res[row]!; v1 += res[row + 1]!; v2 += res[row + 2]!; v3 += res[row + 3]!; }
          y[row] = v0; y[row + 1] = v1; y[row + 2] = v2; y[row + 3] = v3;
        } else for (let c = 0; c < cols; c++) {
          let val = o[4 * r + c]!;
          const idx = row + c;
          if (acc) val = y[idx]! + val;
          if (hasScale) val *= scale;
          if (hasShift) val += shift;
          if (res !== null) val += res[idx]!;
          y[idx] = val;
        }
        // ReLU on the stored bits, branch-free (relu(round(v)) = round(relu(v)), see relu.ts).
        if (yb !== null) reluBits(yb, yb, row, row + cols);
      }
    }
  }
}

registerTask<ConvTaskParams>('winograd.conv', (bufs, q, u0, u1) => {
  const args = [bufs.y as Float32Array, bufs.x as Float32Array, bufs.w as Float32Array, bufs.res as Float32Array | null, bufs.flag as Float64Array, q, u0, u1] as const;
  if (kernelBackend() !== 'simd') return convUnits(...args);
  // In place where the call is resident and a scratch region is free (one per thread: always, unless a thread pool
  // runs more threads than the caller counted), else through this thread's own memory: the same bits either way.
  const slot = q.resident !== null ? claimRegion(q.resident.s) : -1;
  if (slot < 0) return convUnitsSimd(...args);
  try {
    convUnitsSimd(...args, slot);
  } finally {
    releaseRegion(q.resident!.s, slot);
  }
});

/**
 * Output-channel bounds of a one-tile-block call in `wino8x4` mode: blocks of ob channels, the last ob (or fewer)
 * halved down to 8 (512: 15 × 32, then 16, 8, 8; one block up to ob), multiples of 8 apart, so that the thread that ends a call ends it
 * with a small unit (3×3 512→512 @7, 2 threads: the two threads ended up to a 32-channel unit, ~0.18 ms, apart).
 * Every output is computed the same way in any partition (the 8-channel groups stay where they were).
 */
function tailBounds(coPad: number, ob: number): number[] {
  if (coPad <= ob) return [0, coPad];
  const b = [0];
  let at = 0;
  while (coPad - at > ob) b.push((at += ob));
  while (coPad - at > 8) b.push((at += Math.ceil((coPad - at) / 16) * 8));
  b.push(coPad);
  return b;
}

/** Bytes of resident memory past y (and the residual) that vout may read (a 4-float load from a tile's last column). */
const READ_PAST = 16;

/**
 * The in-place form of a SIMD float64 call whose x, y and residual (if any) lie in the resident memory, apart from
 * each other, with per-thread scratch regions for it; else null (the call copies through the threads' memories).
 */
function residentCall(y: Float32Array, x: Float32Array, res: Float32Array | null, q: Omit<ConvTaskParams, 'resident'>): ResidentCall | null {
  if (q.blocks === null || q.p.float32 === true) return null;
  const ya = residentAddress(y), xa = residentAddress(x), ra = res !== null ? residentAddress(res) : ya;
  if (ya < 0 || xa < 0 || ra < 0) return null;
  const mem = residentMemory()!.mem;
  const apart = (a: number, an: number, b: number, bn: number): boolean => a + an <= b || b + bn <= a;
  if (!apart(ya, y.byteLength, xa, x.byteLength) || (res !== null && (!apart(ya, y.byteLength, ra, res.byteLength) || !apart(xa, x.byteLength, ra, res.byteLength)))) return null;
  const end = Math.max(ya + y.byteLength, res !== null ? ra + res.byteLength : 0) + READ_PAST;
  const threads = Math.max(1, getParallelBackend()?.threads ?? 1);
  const s = residentScratch(threads, simdPlan(q as ConvTaskParams).lay.end);
  // (the scratch is allocated first: it may grow the memory past y's end)
  if (s === null || end > mem.buffer.byteLength) return null;
  return { s, serial: nextSerial(), x: xa, y: ya, resDelta: ra - ya };
}

/**
 * The Winograd convolution: y (= or +=) conv(x, w) with the epilogue applied. See WinogradParams for the layouts.
 * Callers check applicability (3×3, stride 1, dilation 1, groups 1) before, and that x holds no NaN or ±Inf (on the
 * js backend; on the SIMD backend a caller that overwrites y may leave x's check to this function, see below).
 * Returns false if w holds a NaN or ±Inf (seen by the weight transform, which reads every filter anyway), or, on the
 * SIMD backend, x does (seen by `pad`, which copies every value of x into the padded planes): y is then not the
 * direct convolution's NaN/Inf pattern, and the caller computes it another way (so a caller that accumulates into y
 * must check w and x itself, before).
 */
export function winogradConv(
  y: Float32Array,
  x: Float32Array,
  w: Float32Array,
  res: Float32Array | null,
  p: WinogradParams,
  ep: Epilogue = NO_EPILOGUE,
): boolean {
  if (fusedWinogradApplies(p)) return fusedWinogradConv(y, x, w, res, p, ep);
  const coPad = Math.ceil(p.co / 4) * 4;
  const tiles = winogradTiles(p.n, p.ho, p.wo);
  const blocks = kernelBackend() === 'simd' ? simdBlocksFor(p) : null;
  const tBlocks = blocks !== null ? blocks.count : Math.ceil(tiles / TB);
  // One tile block: every unit needs only its own channels' U, so it transforms those (same total work). Several:
  // each thread transforms all of U once (unless it is too big to keep), then reuses it for all its units.
  const localU = tBlocks === 1 || uTooBig(coPad, p.ci);
  const ob = localU ? OB_LOCAL : OB;
  const scaleV = blocks !== null && p.float32 !== true && tiles < coPad * (localU ? tBlocks : 1);
  const intU = blocks !== null && p.float32 === true && !p.flip && blocks.nr === 4 && localU;
  const bounds = intU && tBlocks === 1 ? tailBounds(coPad, ob) : null;
  const oBlocks = bounds !== null ? bounds.length - 1 : Math.ceil(coPad / ob);
  const base = { p, ep, coPad, ob, oBlocks, bounds, tiles, localU, blocks, scaleV, intU };
  const q: ConvTaskParams = { ...base, resident: residentCall(y, x, res, base) };
  if (q.resident !== null) inPlaceCalls++;
  const cost = 72 * coPad * p.ci * (blocks !== null ? blocks.count * blocks.tPad : tBlocks * TB) + 330 * coPad * p.ci * (localU ? tBlocks : 1);
  const overwrites = p.accumulate || y.length !== p.n * p.co * p.ho * p.wo ? [] : ['y'];
  flag[0] = 0;
  parallelFor({ kernel: 'winograd.conv', bufs: { y, x, w, res, flag }, writes: ['y', 'flag'], overwrites, params: q, units: oBlocks * tBlocks, cost });
  return flag[0] === 0;
}

let inPlaceCalls = 0;

/** How many calls have run in place over the resident memory (for tests). */
export function winogradInPlaceCalls(): number {
  return inPlaceCalls;
}

/** Set to 1 by any thread whose weight transform read a NaN or ±Inf (shared, so workers write it in place). */
const flag = sharedFloat64(1);
