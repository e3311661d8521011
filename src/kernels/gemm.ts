// Single-precision GEMM over Float32Array, row-major: C(m×n) (+)= op(A)(m×k) · op(B)(k×n).
//
// Structure (Goto/BLIS style, simplified for scalar JS):
//   for each block of NC columns of C:
//     for each block of MC rows of C:
//       for each KC-deep slice of k:     pack op(A) and op(B) into 4-wide float64 micro-panels (B once per NC block
//                                        when k ≤ KC), then the asm.js `block` (asm.ts) runs the 4×4 register tiles
//                                        into a float64 C block, continuing each sum from the previous slice
//       store the C block to C: one rounding to float32 per output
//
// Numerics and determinism: every output is the sum over p = 0..k-1, in that order, of a[i,p]·b[p,j], accumulated
// in float64 (the product of two float32 values is exact in float64; a sum that goes on across KC slices is carried
// in the float64 C block, never rounded in between), then rounded once to float32 when stored (added to the old C
// value first when accumulating). The order of each output's sum is a fixed function of k alone, whatever the
// tiling or however rows/columns are split across threads. On the asm.js backend the result is therefore
// bit-identical to `sgemmNaive`, which sums in the same order. The SIMD backend's block (wasm/sgemm.ts) sums float32
// products in float32 over runs of 64 terms and carries the runs' sums in float64: its order too is a function of k
// alone (the same bits for any split), but not `sgemmNaive`'s bits.
//
// Packing copies float32 values into float64 panels in the asm.js module's heap: the tiles then load doubles
// directly. Panels are zero-padded to whole 4×4 tiles; padded rows/columns only feed C-block entries that are never
// stored, so Inf/NaN in real data never leaks into real outputs through the padding.
//
// The heap is per thread (a worker thread gets its own module instance) and grows on demand: no allocation per call
// once warm. Its size is bounded by MC, NC and KC, not by k.
//
// Threads: `sgemm` splits C into column (or row) blocks and hands them to `parallelFor`; any split gives the same
// bits (see above). `sgemmRange` is the serial unit of work that kernels call from inside their own tasks.
//
// `dgemmAcc` is the float64-output variant used where a sum must run across several GEMM calls without rounding in
// between (conv weight gradients: over chunks of images; conv input gradients before col2im): C64 += op(A)·op(B)
// with each output's accumulator loaded from C64 first, so splitting k over calls keeps one running float64 sum.

import { asmGemm } from './asm.js';
import { parallelFor, registerTask } from './parallel.js';
import { float32Bits, reluBits } from './relu.js';
import { kernelBackend } from './wasm/features.js';
import { NR as SIMD_NR, simdGemm, STORE_EP, STORE_RELU, STORE_RES } from './wasm/sgemm.js';

/** Options of `sgemm`. Offsets are element offsets into the arrays; leading dims default to the packed row length. */
export interface GemmOpts {
  /** op(A) = Aᵀ: A is stored k×m (row-major) instead of m×k. */
  transA?: boolean;
  /** op(B) = Bᵀ: B is stored n×k instead of k×n. */
  transB?: boolean;
  /** C += op(A)·op(B) instead of C = op(A)·op(B). */
  accumulate?: boolean;
  aOff?: number;
  bOff?: number;
  cOff?: number;
  /** Row stride of A as stored: default k (or m when transA). */
  lda?: number;
  /** Row stride of B as stored: default n (or k when transB). */
  ldb?: number;
  /** Row stride of C: default n. */
  ldc?: number;
}

const MR = 4;
const NR = 4;
/** Rows of C per packed A block (multiple of MR). */
const MC = 128;
/** Columns of C per packed B block (multiple of NR): a PackB is asked for at most this many columns at a time. */
const NC = 512;
export const GEMM_NC = NC;
/**
 * Depth of one packed slice: a 4-column B micro-panel (16 KB) stays in L1 while the tiles of an A block (512 KB) go
 * by. Longer sums continue from slice to slice in the float64 C block.
 */
const KC = 512;
/**
 * SIMD backend: B's panels for all of k (every slice, side by side) are packed once per column block when they fit
 * in this many floats (4 MB), instead of once per slice and row block: a unit with 512 rows of A and k = 2048 packed
 * B four times. They then also outlive the call, for the next unit of the same task with the same B (see BKey).
 */
const WHOLE_B = 2 ** 20;
/**
 * SIMD backend: A's panels for all of a call's rows and k (every row block and slice) are packed once per call when
 * they fit in this many floats (1 MB), instead of once per column block: they then also outlive the call, for the
 * next unit of the same task with the same rows of A (see BKey).
 */
const WHOLE_A = 2 ** 18;

/**
 * The SIMD backend's regions in its wasm memory for slices of depth kc: the packed A and B panels from 0 (floats),
 * the float64 C block at cAt, the epilogue's scale and shift at sAt and its residual rows at rAt (doubles), float32
 * copies of A's and B's blocks at aRaw and bRaw, B's panels for all of k from bAll and A's for all of its rows and k
 * from aAll (floats).
 */
function simdLayout(kc: number) {
  const cAt = ((MC + NC) * kc) / 2, sAt = cAt + MC * NC, rAt = sAt + 2 * MC;
  const aRaw = 2 * rAt + MC * NC, bRaw = aRaw + MC * KC, bAll = bRaw + KC * NC;
  return { cAt, sAt, rAt, aRaw, bRaw, bAll, aAll: bAll + WHOLE_B };
}

/**
 * Float index past every region the SIMD GEMM uses: a PackB may keep its own scratch from here (sized beforehand
 * with simdGemm: growing the memory inside the GEMM would detach its views).
 */
export const SIMD_GEMM_END = simdLayout(KC).aAll + WHOLE_A;

/**
 * Length to allocate for a scratch buffer that must hold `need` elements: rounded up to 16K elements, not doubled
 * (doubling can leave half of a multi-MB buffer unused, per thread, for the life of the process).
 */
export function scratchLength(need: number): number {
  return Math.ceil(need / 16384) * 16384;
}

const EMPTY: GemmOpts = {};

/**
 * C(m×n) = op(A)(m×k) · op(B)(k×n), or C += … with `accumulate`. Row-major with leading dimensions; see GemmOpts.
 * Bit-identical to `sgemmNaive` (same per-output summation order, float64 accumulation, one rounding).
 */
export function sgemm(
  c: Float32Array,
  a: Float32Array,
  b: Float32Array,
  m: number,
  n: number,
  k: number,
  opts: GemmOpts = EMPTY,
): void {
  if (m <= 0 || n <= 0) return;
  // Split the larger of C's two dims into blocks (a multiple of the register tile) of shape-only size.
  const byCols = n >= m;
  const len = byCols ? n : m;
  const block = Math.max(byCols ? 64 : 16, Math.ceil(Math.ceil(len / 8) / 4) * 4);
  const units = Math.ceil(len / block);
  const params: SgemmTaskParams = { m, n, k, opts, byCols, block };
  // Units cover all of C: without accumulate, C is overwritten (a staging backend need not copy it in), unless
  // a leading dimension leaves gaps between rows.
  const dense = (opts.ldc ?? n) === n && !opts.accumulate;
  parallelFor({ kernel: 'sgemm', bufs: { c, a, b }, writes: ['c'], overwrites: dense && (opts.cOff ?? 0) === 0 && c.length === m * n ? ['c'] : [], params, units, cost: 2 * m * n * k });
}

interface SgemmTaskParams {
  m: number;
  n: number;
  k: number;
  opts: GemmOpts;
  byCols: boolean;
  block: number;
}

/** GemmOpts with its defaults filled in: the operand layout every GEMM entry point reads. */
function layout(opts: GemmOpts, m: number, n: number, k: number) {
  const transA = opts.transA === true;
  const transB = opts.transB === true;
  return {
    transA,
    transB,
    acc: opts.accumulate === true,
    aOff: opts.aOff ?? 0,
    bOff: opts.bOff ?? 0,
    cOff: opts.cOff ?? 0,
    lda: opts.lda ?? (transA ? m : k),
    ldb: opts.ldb ?? (transB ? k : n),
    ldc: opts.ldc ?? n,
  };
}

registerTask<SgemmTaskParams>('sgemm', (bufs, q, u0, u1) => {
  const c = bufs.c as Float32Array, a = bufs.a as Float32Array, b = bufs.b as Float32Array;
  const len = q.byCols ? q.n : q.m;
  const s0 = u0 * q.block, s1 = Math.min(len, u1 * q.block);
  if (q.byCols) sgemmRange(c, a, b, q.m, q.n, q.k, q.opts, 0, q.m, s0, s1);
  else sgemmRange(c, a, b, q.m, q.n, q.k, q.opts, s0, s1, 0, q.n);
});

/**
 * Writes the packed B micro-panels of columns [j0, j0 + nc) and rows [p0, p0 + kl) of op(B) at dst[d0 …], as
 * packPanelB would from a stored B (layout: see packPanelB, `nr` columns per panel; columns past the last padded
 * with zeros). Lets a caller pack B straight from data that B is a view of (a convolution's input, instead of an
 * im2col copy of it). dst is float64 on the asm.js path, float32 on the SIMD path.
 */
export type PackB = (dst: Float32Array | Float64Array, d0: number, j0: number, nc: number, p0: number, kl: number, nr: number) => void;

/**
 * Names the B operand of a GEMM within a task: units that multiply different rows of A by the same B pass the same
 * `call` (an object that lives as long as the call: the task's params) and `id` (which B of the call). A thread
 * whose last packed B had the same key and geometry skips packing it (SIMD backend, B's panels packed whole: see
 * WHOLE_B); likewise A, for the same `call` and rows of A (WHOLE_A). A task's units run one after another on a
 * thread with nothing else in between, so the panels are intact.
 */
export interface BKey {
  call: object;
  id: number;
}

/**
 * What happens to each stored output of row i (after its rounding to float32, as value v): round(v·scale[ch0 + i]
 * + shift[ch0 + i] (+ res at C's index)) in float64, then ReLU (if relu). A convolution's fused eval epilogue
 * (rows = output channels). Not with `accumulate`.
 */
export interface GemmEpilogue {
  scale: Float64Array | null;
  shift: Float64Array | null;
  relu: boolean;
  /** Read at the same indices as C (cOff, ldc). */
  res: Float32Array | null;
  ch0: number;
}

/**
 * GemmEpilogue on rows [r0, r1) (channels ch0 + r) and columns [j0, j1) of y, at y[off + r·ld + j] (res the same),
 * already stored. The JavaScript epilogue; the SIMD backend's stores do the same in wasm.
 */
export function epilogueRows(y: Float32Array, ep: GemmEpilogue, off: number, ld: number, r0: number, r1: number, j0: number, j1: number): void {
  // ReLU after the rounding, on the stored bits (branch-free): relu(round(v)) and round(relu(v)) are the same bits.
  const yb = ep.relu ? float32Bits(y) : null;
  const res = ep.res;
  for (let r = r0; r < r1; r++) {
    const ch = ep.ch0 + r;
    const scale = ep.scale ? ep.scale[ch]! : 1, shift = ep.shift ? ep.shift[ch]! : 0;
    const base = off + r * ld;
    if (res !== null) for (let j = base + j0; j < base + j1; j++) y[j] = y[j]! * scale + shift + res[j]!;
    else for (let j = base + j0; j < base + j1; j++) y[j] = y[j]! * scale + shift;
    if (yb !== null) reluBits(yb, yb, base + j0, base + j1);
  }
}

/**
 * The part of `sgemm` that computes rows [i0, i1) and columns [j0, j1) of C only. Any partition of C into such
 * ranges produces exactly the same bits as one `sgemm` call (the unit of work for a thread pool). With `packB`, B's
 * panels come from it (and `b` is not read).
 */
export function sgemmRange(
  c: Float32Array,
  a: Float32Array,
  b: Float32Array,
  m: number,
  n: number,
  k: number,
  opts: GemmOpts,
  i0: number,
  i1: number,
  j0: number,
  j1: number,
  packB: PackB | null = null,
  ep: GemmEpilogue | null = null,
  bKey: BKey | null = null,
): void {
  gemmBlocks(c, null, a, b, m, n, k, opts, i0, i1, j0, j1, packB, ep, bKey);
}

/** What this thread's whole-B region holds (see BKey): the key and geometry of its last packing, or call null. */
const held = { call: null as object | null, id: 0, k: 0, jc: 0, nc: 0, at: 0, f: null as Float32Array | Float64Array | null };
/** Likewise for the whole-A region (see BKey): the call, A, its rows [i0, i1) from aOff (lda apart) and k. */
const heldA = { call: null as object | null, a: null as Float32Array | null, aOff: 0, lda: 0, i0: 0, i1: 0, k: 0, f: null as Float32Array | null };

/**
 * The blocked GEMM behind sgemmRange (c32: C is float32, rounded once per output on store) and dgemmAccRange (c64:
 * C is float64 and each sum starts from its value). See the file comment.
 */
function gemmBlocks(
  c32: Float32Array | null,
  c64: Float64Array | null,
  a: Float32Array,
  b: Float32Array,
  m: number,
  n: number,
  k: number,
  opts: GemmOpts,
  i0: number,
  i1: number,
  j0: number,
  j1: number,
  packB: PackB | null,
  ep: GemmEpilogue | null = null,
  bKey: BKey | null = null,
): void {
  const { transA, transB, acc, aOff, bOff, cOff, lda, ldb, ldc } = layout(opts, m, n, k);
  if (i1 <= i0 || j1 <= j0) return;
  if (k === 0) {
    // Empty sum: C = 0 (or unchanged when accumulating; C64 always accumulates).
    if (c32 !== null && !acc) for (let i = i0; i < i1; i++) c32.fill(0, cOff + i * ldc + j0, cOff + i * ldc + j1);
    if (c32 !== null && ep !== null) epilogueRows(c32, ep, cOff, ldc, i0, i1, j0, j1);
    return;
  }
  const kc = Math.min(k, KC);
  // Panels (A: MC × kc, B: NC × kc; float64 in the asm.js heap, float32 in the wasm memory), then the float64 C
  // block (MC × NC). Offsets in elements of the panels' type, cAt in doubles.
  const simd = kernelBackend() === 'simd';
  const nr = simd ? SIMD_NR : NR;
  const bAt = MC * kc;
  const cAt = simd ? simdLayout(kc).cAt : (MC + NC) * kc;
  let panels: Float32Array | Float64Array, h: Float64Array;
  let block: (k: number, mcPad: number, ncPad: number, pa: number, pb: number, pc: number, init: number) => void;
  let eb: number;
  let bAll = -1;
  // SIMD: A's panels for all rows and k at aAll (WHOLE_A) when they fit; aHeld: already there (BKey).
  let aAll = -1, aHeld = false;
  // SIMD, float32 C without accumulate: the wasm store rounds (and applies ep) in place; then one copy per row.
  // Its scale and shift (MC doubles each) and residual rows (MC × NC float32) follow the C block.
  let packA32: ((ic: number, mc: number, p0: number, kl: number, at: number) => void) | null = null;
  let packB32: ((bp: number, jc: number, nc: number, p0: number, kl: number) => void) | null = null;
  let store: ((c: Float32Array, ci: number, ic: number, mc: number, nc: number, ncPad: number) => void) | null = null;
  if (simd) {
    // Float32 copies of A's block (MC × KC) and B's block (KC × NC) for their wasm packing, and B's panels for all
    // of k, when they fit (WHOLE_B).
    const { sAt, rAt, aRaw, bRaw, bAll: wholeAt, aAll: wholeAAt } = simdLayout(kc);
    bAll = wholeAt;
    const ncMax = Math.min(NC, Math.ceil((j1 - j0) / nr) * nr);
    if (ncMax * k > WHOLE_B) bAll = -1;
    const mPad = Math.ceil((i1 - i0) / MR) * MR;
    if (!transA && mPad * k <= WHOLE_A) aAll = wholeAAt;
    // Otherwise, over several slices, a row block's rows for all of k are copied as one span (when they fit: into
    // the whole-A region, or the whole-B region past this call's B panels) and each slice packs from that copy: one
    // copy per row block instead of one per row and slice.
    const spanLen = (MC - 1) * lda + k, bUsed = bAll >= 0 ? ncMax * k : 0;
    const spanAt = transA || aAll >= 0 || k <= KC ? -1 : spanLen <= WHOLE_A ? wholeAAt : bUsed + spanLen <= WHOLE_B ? wholeAt + bUsed : -1;
    const aSpan = spanAt >= 0;
    const g = simdGemm((aAll >= 0 ? aAll + mPad * k : aSpan ? Math.max(spanAt + spanLen, bRaw + KC * NC + bUsed) : bRaw + KC * NC + bUsed) * 4);
    // A span over held B panels that reach it: those are no longer held.
    if (aSpan && spanAt !== wholeAAt && held.at === wholeAt && Math.ceil(held.nc / nr) * nr * held.k > bUsed) held.call = null;
    aHeld = aAll >= 0 && bKey !== null && heldA.call === bKey.call && heldA.a === a && heldA.aOff === aOff && heldA.lda === lda &&
      heldA.i0 === i0 && heldA.i1 === i1 && heldA.k === k && heldA.f?.buffer === g.f.buffer;
    panels = g.f;
    h = g.h;
    block = g.block;
    eb = 4;
    if (!transA) {
      // A's rows copied into wasm memory (one copy when they are contiguous), whole micro-panels packed there.
      const f = g.f, packA = g.packA;
      packA32 = (ic, mc, p0, kl, dst) => {
        const at = aOff + ic * lda + p0, whole = mc >> 2;
        if (aSpan) {
          if (p0 === 0) f.set(a.subarray(at, at + (mc - 1) * lda + k), spanAt);
          packA((spanAt + p0) * 4, lda * 4, whole, kl, dst * 4);
        } else {
          if (kl === lda) f.set(a.subarray(at, at + mc * kl), aRaw);
          else for (let i = 0; i < mc; i++) f.set(a.subarray(at + i * lda, at + i * lda + kl), aRaw + i * kl);
          packA(aRaw * 4, kl * 4, whole, kl, dst * 4);
        }
        if (mc > 4 * whole) packPanelA(f, dst + 4 * whole * kl, a, aOff, lda, false, ic + 4 * whole, mc - 4 * whole, p0, kl);
      };
    }
    if (!transB && packB === null) {
      // Rows of ≥ 64 columns: copied into wasm memory, whole 8-column panels packed there (1×1 256→64 @56, one
      // core: 3.57 → 2.96 ms). Shorter rows: packed in JavaScript (a subarray per row costs more than it saves).
      // A last partial panel is read whole where b has the values past column nc (they only feed columns of the C
      // block that are never stored) rather than packed in JavaScript. Rows that lie close together in b (ldb at
      // most twice the padded width: 1×1 convs on 7×7 and 14×14 maps) are copied as one span, panels packed from it.
      const f = g.f, pk = g.packB;
      packB32 = (bp, jc, nc, p0, kl) => {
        const at = bOff + p0 * ldb + jc, ncPad = Math.ceil(nc / 8) * 8, span = (kl - 1) * ldb + ncPad;
        const whole = at + span <= b.length ? ncPad >> 3 : nc >> 3, w8 = 8 * whole;
        if (w8 === ncPad && ldb < ncPad + 8 && span <= KC * NC) {
          f.set(b.subarray(at, at + span), bRaw);
          pk(bRaw * 4, ldb * 4, whole, kl, bp * 4);
          return;
        }
        if (w8 < 64) {
          packPanelB(f, bp, b, bOff, ldb, false, jc, nc, p0, kl, SIMD_NR);
          return;
        }
        if (ldb === w8) f.set(b.subarray(at, at + kl * w8), bRaw);
        else for (let p = 0; p < kl; p++) f.set(b.subarray(at + p * ldb, at + p * ldb + w8), bRaw + p * w8);
        pk(bRaw * 4, w8 * 4, whole, kl, bp * 4);
        if (nc > w8) packPanelB(f, bp + w8 * kl, b, bOff, ldb, false, jc + w8, nc - w8, p0, kl, SIMD_NR);
      };
    }
    if (c32 !== null && !acc) {
      const flags = ep === null ? 0 : STORE_EP | (ep.res !== null ? STORE_RES : 0) | (ep.relu ? STORE_RELU : 0);
      const fn = g.store[flags]!, f = g.f;
      store = (c, ci, ic, mc, nc, ncPad) => {
        if (ep !== null) {
          for (let i = 0; i < mc; i++) {
            const ch = ep.ch0 + ic + i;
            h[sAt + i] = ep.scale ? ep.scale[ch]! : 1;
            h[sAt + MC + i] = ep.shift ? ep.shift[ch]! : 0;
          }
          const res = ep.res;
          if (res !== null) for (let i = 0; i < mc; i++) f.set(res.subarray(ci + i * ldc, ci + i * ldc + nc), 2 * rAt + i * ncPad);
        }
        fn(cAt * 8, ncPad, mc, nc, sAt * 8, (sAt + MC) * 8, rAt * 8);
        // The rounded rows (at float 2·cAt, 2·ncPad apart) to C: C's rows side by side (ldc = nc: small maps, a
        // matrix-vector product) are packed together in place first, then copied in one; short rows element by
        // element (a view per row costs more than it copies).
        const at = 2 * cAt;
        if (ldc === nc) {
          for (let i = 1; i < mc; i++) f.copyWithin(at + i * nc, at + 2 * i * ncPad, at + 2 * i * ncPad + nc);
          c.set(f.subarray(at, at + mc * nc), ci);
        } else if (nc < 64) {
          for (let i = 0; i < mc; i++) for (let j = 0, s = at + 2 * i * ncPad, d = ci + i * ldc; j < nc; j++) c[d + j] = f[s + j]!;
        } else {
          for (let i = 0; i < mc; i++) c.set(f.subarray(at + 2 * i * ncPad, at + 2 * i * ncPad + nc), ci + i * ldc);
        }
      };
    }
  } else {
    const g = asmGemm(cAt + MC * NC);
    panels = h = g.h;
    block = g.block;
    eb = 8;
  }
  for (let jc = j0; jc < j1; jc += NC) {
    const nc = Math.min(NC, j1 - jc);
    const ncPad = Math.ceil(nc / nr) * nr;
    for (let ic = i0; ic < i1; ic += MC) {
      const mc = Math.min(MC, i1 - ic);
      const mcPad = Math.ceil(mc / MR) * MR;
      const ci = cOff + ic * ldc + jc;
      if (c64 !== null) loadBlock64(h, cAt, ncPad, c64, ci, ldc, mc, nc);
      // Whole B: every slice packed at the first row block (unless this thread holds it already: BKey).
      const packWhole = bAll >= 0 && ic === i0 && !holds(bKey, k, jc, nc, bAll, panels);
      for (let p0 = 0; p0 < k; p0 += KC) {
        const kl = Math.min(KC, k - p0);
        // Otherwise, with a single slice, B's panels stay packed for every row block; with several, each slice
        // replaces them.
        const bp = bAll >= 0 ? bAll + p0 * ncPad : bAt;
        if (bAll >= 0 ? packWhole : ic === i0 || k > KC) {
          if (packB !== null) packB(panels, bp, jc, nc, p0, kl, nr);
          else if (packB32 !== null) packB32(bp, jc, nc, p0, kl);
          else packPanelB(panels, bp, b, bOff, ldb, transB, jc, nc, p0, kl, nr);
        }
        // A's panels: at 0, or in the whole-A region (packed at the first column block unless held already).
        const ap = aAll >= 0 ? aAll + (ic - i0) * k + p0 * mcPad : 0;
        if (aAll < 0 || (jc === j0 && !aHeld)) {
          if (packA32 !== null) packA32(ic, mc, p0, kl, ap);
          else packPanelA(panels, 0, a, aOff, lda, transA, ic, mc, p0, kl);
        }
        block(kl, mcPad, ncPad, ap * eb, bp * eb, cAt * 8, c64 !== null || p0 > 0 ? 1 : 0);
      }
      if (packWhole) Object.assign(held, { call: bKey?.call ?? null, id: bKey?.id ?? 0, k, jc, nc, at: bAll, f: panels });
      if (aAll >= 0 && jc === j0 && ic + MC >= i1) Object.assign(heldA, { call: bKey?.call ?? null, a, aOff, lda, i0, i1, k, f: panels });
      if (c64 !== null) storeBlock64(c64, ci, ldc, h, cAt, ncPad, mc, nc);
      else if (store !== null) store(c32!, ci, ic, mc, nc, ncPad);
      else {
        storeBlock32(c32!, ci, ldc, h, cAt, ncPad, mc, nc, acc);
        if (ep !== null) epilogueRows(c32!, ep, ci - ic * ldc, ldc, ic, ic + mc, 0, nc);
      }
    }
  }
}

/** Whether the whole-B region at float index `at` of `f` holds what this call would pack there (see BKey). */
function holds(key: BKey | null, k: number, jc: number, nc: number, at: number, f: Float32Array | Float64Array): boolean {
  return key !== null && held.call === key.call && held.id === key.id && held.k === k && held.jc === jc && held.nc === nc && held.at === at && held.f?.buffer === f.buffer;
}

// Packed A at dst[d0 …]: for each MR-row micro-panel, kl groups of MR values:
// dst[d0 + ir·kl + p·MR + i] = op(A)[i0 + ir + i, p0 + p].
function packPanelA(
  dst: Float32Array | Float64Array,
  d0: number,
  a: Float32Array,
  aOff: number,
  lda: number,
  transA: boolean,
  i0: number,
  mc: number,
  p0: number,
  kl: number,
): void {
  let d = d0;
  for (let ir = 0; ir < mc; ir += MR) {
    const mr = Math.min(MR, mc - ir);
    const row = i0 + ir;
    if (mr === MR) {
      if (transA) {
        // op(A)[i, p] = a[p*lda + i]: 4 consecutive values per p.
        let s = aOff + p0 * lda + row;
        for (let p = 0; p < kl; p++, s += lda, d += 4) {
          dst[d] = a[s]!;
          dst[d + 1] = a[s + 1]!;
          dst[d + 2] = a[s + 2]!;
          dst[d + 3] = a[s + 3]!;
        }
      } else {
        // op(A)[i, p] = a[i*lda + p]: 4 row streams.
        const s0 = aOff + row * lda + p0;
        const s1 = s0 + lda;
        const s2 = s1 + lda;
        const s3 = s2 + lda;
        for (let p = 0; p < kl; p++, d += 4) {
          dst[d] = a[s0 + p]!;
          dst[d + 1] = a[s1 + p]!;
          dst[d + 2] = a[s2 + p]!;
          dst[d + 3] = a[s3 + p]!;
        }
      }
    } else {
      for (let p = p0; p < p0 + kl; p++, d += MR) {
        for (let i = 0; i < MR; i++) {
          dst[d + i] = i < mr ? (transA ? a[aOff + p * lda + row + i]! : a[aOff + (row + i) * lda + p]!) : 0;
        }
      }
    }
  }
}

// Packed B at dst[d0 …]: for each nr-column micro-panel (4 on the asm.js path, 8 on the SIMD path), kl groups of nr
// values: dst[d0 + jr·kl + p·nr + j] = op(B)[p0 + p, j0 + jr + j].
function packPanelB(
  dst: Float32Array | Float64Array,
  d0: number,
  b: Float32Array,
  bOff: number,
  ldb: number,
  transB: boolean,
  j0: number,
  nc: number,
  p0: number,
  kl: number,
  nr: number,
): void {
  let d = d0;
  for (let jr = 0; jr < nc; jr += nr) {
    const w = Math.min(nr, nc - jr);
    const col = j0 + jr;
    if (w === nr && !transB) {
      let s = bOff + p0 * ldb + col;
      if (nr === 8) {
        for (let p = 0; p < kl; p++, s += ldb, d += 8) {
          dst[d] = b[s]!;
          dst[d + 1] = b[s + 1]!;
          dst[d + 2] = b[s + 2]!;
          dst[d + 3] = b[s + 3]!;
          dst[d + 4] = b[s + 4]!;
          dst[d + 5] = b[s + 5]!;
          dst[d + 6] = b[s + 6]!;
          dst[d + 7] = b[s + 7]!;
        }
      } else {
        for (let p = 0; p < kl; p++, s += ldb, d += 4) {
          dst[d] = b[s]!;
          dst[d + 1] = b[s + 1]!;
          dst[d + 2] = b[s + 2]!;
          dst[d + 3] = b[s + 3]!;
        }
      }
    } else if (w === nr) {
      // op(B)[p, j] = b[j*ldb + p]: nr row streams, one column of the panel at a time.
      for (let j = 0; j < nr; j++) {
        const s = bOff + (col + j) * ldb + p0;
        for (let p = 0, dd = d + j; p < kl; p++, dd += nr) dst[dd] = b[s + p]!;
      }
      d += nr * kl;
    } else {
      for (let p = p0; p < p0 + kl; p++, d += nr) {
        for (let j = 0; j < nr; j++) {
          dst[d + j] = j < w ? (transB ? b[bOff + (col + j) * ldb + p]! : b[bOff + p * ldb + col + j]!) : 0;
        }
      }
    }
  }
}

// The mc×nc part of the C block (ncPad doubles per row, at h[at]) to C at ci: one rounding to float32 per output,
// after adding the old C value when accumulating.
function storeBlock32(c: Float32Array, ci: number, ldc: number, h: Float64Array, at: number, ncPad: number, mc: number, nc: number, acc: boolean): void {
  for (let i = 0; i < mc; i++) {
    const row = ci + i * ldc, src = at + i * ncPad;
    if (acc) for (let j = 0; j < nc; j++) c[row + j] = c[row + j]! + h[src + j]!;
    else for (let j = 0; j < nc; j++) c[row + j] = h[src + j]!;
  }
}

// C64's mc×nc block at ci → the C block (the sums continue from these values), and back.
function loadBlock64(h: Float64Array, at: number, ncPad: number, c: Float64Array, ci: number, ldc: number, mc: number, nc: number): void {
  for (let i = 0; i < mc; i++) {
    const row = ci + i * ldc, dst = at + i * ncPad;
    for (let j = 0; j < nc; j++) h[dst + j] = c[row + j]!;
  }
}

function storeBlock64(c: Float64Array, ci: number, ldc: number, h: Float64Array, at: number, ncPad: number, mc: number, nc: number): void {
  for (let i = 0; i < mc; i++) {
    const row = ci + i * ldc, src = at + i * ncPad;
    for (let j = 0; j < nc; j++) c[row + j] = h[src + j]!;
  }
}

// ---- float64 output ------------------------------------------------------------------------------------------

const EMPTY_ACC: GemmOpts = {};

/**
 * C64(m×n) += op(A)(m×k) · op(B)(k×n) for rows [i0, i1) and columns [j0, j1), with C64 in float64. Each output's
 * accumulator starts from its C64 value and adds a[i,p]·b[p,j] for p ascending, so consecutive calls over
 * consecutive k ranges (e.g. chunks of images) give one running float64 sum: exactly a naive float64 loop's result.
 * `opts.accumulate` is ignored (always accumulates); `ldc` defaults to n.
 */
export function dgemmAccRange(
  c: Float64Array,
  a: Float32Array,
  b: Float32Array,
  m: number,
  n: number,
  k: number,
  opts: GemmOpts,
  i0: number,
  i1: number,
  j0: number,
  j1: number,
): void {
  gemmBlocks(null, c, a, b, m, n, k, opts, i0, i1, j0, j1, null);
}

/** dgemmAccRange over the whole of C. */
export function dgemmAcc(c: Float64Array, a: Float32Array, b: Float32Array, m: number, n: number, k: number, opts: GemmOpts = EMPTY_ACC): void {
  dgemmAccRange(c, a, b, m, n, k, opts, 0, m, 0, n);
}

/**
 * Reference GEMM: triple loop, float64 accumulator, same arguments and summation order as `sgemm`
 * (sum over p ascending, then one rounding; `accumulate` adds the sum to the old C value).
 */
export function sgemmNaive(
  c: Float32Array,
  a: Float32Array,
  b: Float32Array,
  m: number,
  n: number,
  k: number,
  opts: GemmOpts = EMPTY,
): void {
  const { transA, transB, acc, aOff, bOff, cOff, lda, ldb, ldc } = layout(opts, m, n, k);
  if (k === 0 && acc) return;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) {
        const av = transA ? a[aOff + p * lda + i]! : a[aOff + i * lda + p]!;
        const bv = transB ? b[bOff + j * ldb + p]! : b[bOff + p * ldb + j]!;
        s += av * bv;
      }
      const ci = cOff + i * ldc + j;
      c[ci] = acc ? c[ci]! + s : s;
    }
  }
}
