// The forward convolution's GEMM with its outputs in place, in WebAssembly SIMD (emitted from this file when the
// library loads, see encoder.ts): y (M × N) = w (M × K) · B (K × N) for one image, where B is x itself (a 1×1
// conv: x's rows copied once into the wasm memory as they lie, ldb bytes apart, read 4·NV columns at a time, no
// packing) or im2col's packed panels. No float64 C block is stored, rounded and copied: each register tile's outputs go
// straight to y's rows (ldc bytes apart) once their sums are complete.
//
// Memory layout (byte offsets passed in, the GEMM's memory: see sgemm.ts):
//   A: the weights' rows as they lie (row i at pa + 4k·i; no packing: 2048→512 @7, one thread, −10%); the rows of a
//      last partial tile past M are read (the memory must hold them; their outputs are never stored);
//   B: row p at pb + p·ldb; the tile of columns from j (a multiple of 4·NV) at pb + j·cstep: x's rows as they lie
//      (cstep 4: column j at +4j), or sgemm.ts's packed 8-column B panels (NV = 2, ldb 32, cstep 4·k). The columns
//      of a last partial tile are read past N (the memory must hold them; their lanes are never stored);
//   C: row i at pc + i·ldc (holding the residual before the call with PW_RES);
//   float64 per row i: bias at sh + 8i (PW_BIAS), or scale at sc + 8i and shift at sh + 8i (PW_EP);
//   a float64 scratch of MR × 4·NV doubles at tmp, then a partial tile's staging, then the finiteness check: the
//   f32x4 at tmp + pointwiseCheckAt that the call sets to the sums (per lane) of the values it stores: NaN or ±Inf
//   when one of them is (or when a sum overflows: a false alarm only costs the next reader its own scan), for the
//   caller to note its output finite (kernels/finite.ts). One add per stored vector (ResNet-50's 1×1 convs, one
//   thread: within the noise of ±1%).
//
// `pointwise(k, m, n, pa, pb, ldb, cstep, pc, ldc, flags, sc, sh, tmp)`, k ≥ 1. Per output, as sgemm.ts's `block`
// then `store`:
//   S = Σ_blocks float64( Σ_{p in block} A[i][p]·B[p][j] in float32 ),  k cut into blocks of KB terms from p = 0,
// the float64 total added block by block in that order; then y = round_f32(S) (PW_BIAS: round_f32(S + bias[i])),
// and with PW_EP round_f32(y·scale[i] + shift[i] (+ res)) in float64, then ReLU on the bits (PW_RELU). The same
// operations in the same order as the packed GEMM followed by its store, so the same bits; the order is a function
// of k alone, so any split of y over rows, columns or threads gives the same bits too. With PW_EP32 (inference
// only) the epilogue runs in float32 instead, each step rounded: round(round(round(y·scale) + shift) + res).
// With FMA (relaxed SIMD) each step is one f32x4.relaxed_madd (last bits differ from the no-FMA build).

import {
  br, br_if, f32, f32x4, f64, f64x2, forLoop, i32, if_, local, Locals, loop, v128, ValType, type Expr, type Func,
} from './encoder.js';
import { overGemmMemory, reluLanes } from './sgemm.js';

/** Terms per float32 partial sum (sgemm.ts's KB). */
const KB = 64;

/** `pointwise`'s flags: a float64 bias per row; scale and shift per row (the fused epilogue); a residual; ReLU. */
export const PW_BIAS = 1, PW_EP = 2, PW_RES = 4, PW_RELU = 8;
/**
 * The fused epilogue in float32 instead (with PW_EP): y = round_f32(S)·f32(scale) + f32(shift) (+ res), each step
 * rounded to float32 (an inference-only form: two float64 conversions fewer per vector).
 */
export const PW_EP32 = 16;

const { i32: I32, v128: V128 } = ValType;

/**
 * The `pointwise` function for MR × 4·NV register tiles (MR·NV f32x4 accumulators, NV vectors of B per k step and
 * one splat of A: sgemm.ts's loadsplat scheme, with A read from the weights' rows, lda bytes apart, and B from x's
 * rows instead of packed panels).
 */
export function pointwiseFunc(mr: number, nv: number, fma: boolean, lda: number): Func {
  const [k, m, n, pa, pb, ldb, cstep, pc, ldc, flags, sc, sh, tmp] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
  const L = new Locals(13);
  const jr = L.add(I32), ir = L.add(I32), a = L.add(I32), b = L.add(I32), p = L.add(I32), end = L.add(I32);
  const first = L.add(I32), row = L.add(I32), rem = L.add(I32), j = L.add(I32), scr = L.add(I32), full = L.add(I32);
  const bv = L.addMany(V128, nv), va = L.add(V128), acc = L.addMany(V128, mr * nv);
  const lo = L.add(V128), hi = L.add(V128), v = L.add(V128), s1 = L.add(V128), s2 = L.add(V128), chk = L.add(V128);
  const s1f = L.add(V128), s2f = L.add(V128);
  const get = local.get;
  const madd = (x: Expr, y: Expr, s: Expr): Expr => (fma ? f32x4.relaxed_madd(x, y, s) : f32x4.add(s, f32x4.mul(x, y)));
  // The float64 scratch: row i, vector q, half h (lanes 2h, 2h + 1) at tmp + 8·(i·4·NV + 4q + 2h).
  const tmpOff = (i: number, q: number, h: number): number => 8 * (i * 4 * nv + 4 * q + 2 * h);
  const half = (x: Expr, h: number): Expr => f64x2.promote_low_f32x4(h === 0 ? x : f32x4.high(x));
  const rounded = (lo_: Expr, hi_: Expr): Expr => f32x4.join_low(f32x4.demote_f64x2_zero(lo_), f32x4.demote_f64x2_zero(hi_));

  /** A tile of MR rows × 4·w columns (w ≤ NV vectors) at (ir, jr): its k loop, then its outputs to y. */
  const tile = (w: number): Expr[] => {
    const A = (i: number, q: number): number => acc[i * w + q]!;
    // One k step: acc[i][q] += A[i][p] · B[p][4q..4q+4].
    const step: Expr[] = [];
    for (let q = 0; q < w; q++) step.push(local.set(bv[q]!, v128.load(get(b), 16 * q)));
    for (let i = 0; i < mr; i++) {
      step.push(local.set(va, v128.load32_splat(get(a), lda * i)));
      for (let q = 0; q < w; q++) step.push(local.set(A(i, q), madd(get(va), get(bv[q]!), get(A(i, q)))));
    }
    step.push(local.set(a, i32.add(get(a), i32.const(4))), local.set(b, i32.add(get(b), get(ldb))));

    // After a block that is not the last: the widened sums stored (first block) or added to the scratch.
    const flush = (add: boolean): Expr[] => {
      const out: Expr[] = [];
      for (let i = 0; i < mr; i++) {
        for (let q = 0; q < w; q++) {
          for (let h = 0; h < 2; h++) {
            const o = tmpOff(i, q, h), x = half(get(A(i, q)), h);
            out.push(v128.store(get(tmp), add ? f64x2.add(v128.load(get(tmp), o), x) : x, o));
          }
        }
      }
      return out;
    };

    // After the last block: row i's outputs, S (the scratch plus this block's sums, or only these when this block
    // is the first), rounded (after the bias), the epilogue, stored to y's row (whole vectors, or lane by lane
    // through the staging past the scratch when fewer than 4·w columns are left).
    const finishRow = (i: number, withTmp: boolean): Expr[] => {
      const out: Expr[] = [
        local.set(row, i32.add(get(pc), i32.add(i32.mul(i32.add(get(ir), i32.const(i)), get(ldc)), i32.shl(get(jr), i32.const(2))))),
        local.set(s1, f64x2.splat(f64.load(i32.add(get(sc), i32.shl(i32.add(get(ir), i32.const(i)), i32.const(3)))))),
        local.set(s2, f64x2.splat(f64.load(i32.add(get(sh), i32.shl(i32.add(get(ir), i32.const(i)), i32.const(3)))))),
        if_(i32.and(get(flags), i32.const(PW_EP32)), [
          local.set(s1f, f32x4.demote_f64x2_zero(get(s1))),
          local.set(s1f, f32x4.join_low(get(s1f), get(s1f))),
          local.set(s2f, f32x4.demote_f64x2_zero(get(s2))),
          local.set(s2f, f32x4.join_low(get(s2f), get(s2f))),
        ]),
      ];
      for (let q = 0; q < w; q++) {
        const sum = (h: number): Expr => (withTmp ? f64x2.add(v128.load(get(tmp), tmpOff(i, q, h)), half(get(A(i, q)), h)) : half(get(A(i, q)), h));
        out.push(
          // S rounded (after the bias). A single block's S is its float32 sums widened: without a bias, they are
          // its rounding already (the 1×1 convs with K = 64, one thread: −2 to −4%).
          ...(withTmp
            ? [
              local.set(lo, sum(0)),
              local.set(hi, sum(1)),
              if_(i32.and(get(flags), i32.const(PW_BIAS)), [local.set(lo, f64x2.add(get(lo), get(s2))), local.set(hi, f64x2.add(get(hi), get(s2)))]),
              local.set(v, rounded(get(lo), get(hi))),
            ]
            : [
              if_(i32.and(get(flags), i32.const(PW_BIAS)), [
                local.set(v, rounded(f64x2.add(sum(0), get(s2)), f64x2.add(sum(1), get(s2)))),
              ], [local.set(v, get(A(i, q)))]),
            ]),
          if_(i32.and(get(flags), i32.const(PW_EP32)), [
            local.set(v, f32x4.add(f32x4.mul(get(v), get(s1f)), get(s2f))),
            if_(i32.and(get(flags), i32.const(PW_RES)), [local.set(v, f32x4.add(get(v), v128.load(get(row), 16 * q)))]),
          ], [if_(i32.and(get(flags), i32.const(PW_EP)), [
            local.set(lo, f64x2.add(f64x2.mul(half(get(v), 0), get(s1)), get(s2))),
            local.set(hi, f64x2.add(f64x2.mul(half(get(v), 1), get(s1)), get(s2))),
            if_(i32.and(get(flags), i32.const(PW_RES)), [
              local.set(va, v128.load(get(row), 16 * q)),
              local.set(lo, f64x2.add(get(lo), half(get(va), 0))),
              local.set(hi, f64x2.add(get(hi), half(get(va), 1))),
            ]),
            local.set(v, rounded(get(lo), get(hi))),
          ])]),
          if_(i32.and(get(flags), i32.const(PW_RELU)), [local.set(v, reluLanes(get(v)))]),
          if_(get(full), [
            v128.store(get(row), get(v), 16 * q),
            local.set(chk, f32x4.add(get(chk), get(v))),
          ], [v128.store(get(scr), get(v), 16 * q)]),
        );
      }
      // A partial tile's stored values one by one (each added in lane 0: the lanes past the row are not stored).
      out.push(if_(i32.eqz(get(full)), [
        forLoop(j, i32.const(0), get(rem), 1,
          local.set(lo, v128.load32_zero(i32.add(get(scr), i32.shl(get(j), i32.const(2))))),
          f32.store(i32.add(get(row), i32.shl(get(j), i32.const(2))), f32.load(i32.add(get(scr), i32.shl(get(j), i32.const(2))))),
          local.set(chk, f32x4.add(get(chk), get(lo)))),
      ]));
      return [if_(i32.lt_s(i32.add(get(ir), i32.const(i)), get(m)), out)];
    };
    const finish = (withTmp: boolean): Expr[] => {
      const out: Expr[] = [];
      for (let i = 0; i < mr; i++) out.push(...finishRow(i, withTmp));
      return out;
    };

    // p = 0; first = 1; blocks of KB steps; after each, flush (more to come) or finish, and leave.
    return [
      local.set(full, i32.ge_s(get(rem), i32.const(4 * w))),
      local.set(p, i32.const(0)),
      local.set(first, i32.const(1)),
      loop(
        local.set(end, i32.add(get(p), i32.const(KB))),
        if_(i32.gt_s(get(end), get(k)), [local.set(end, get(k))]),
        ...acc.slice(0, mr * w).map((x) => local.set(x, v128.zero())),
        loop(
          ...step,
          local.set(p, i32.add(get(p), i32.const(1))),
          br_if(0, i32.lt_s(get(p), get(end))),
        ),
        if_(i32.lt_s(get(p), get(k)), [
          if_(get(first), flush(false), flush(true)),
          local.set(first, i32.const(0)),
          br(1),
        ]),
        if_(get(first), finish(false), finish(true)),
      ),
    ];
  };

  // For each column tile (a last one of at most 4 columns one vector wide), for each row tile.
  const rows = (w: number): Expr => forLoop(ir, i32.const(0), get(m), mr,
    local.set(a, i32.add(get(pa), i32.shl(i32.mul(get(ir), get(k)), i32.const(2)))),
    local.set(b, i32.add(get(pb), i32.mul(get(jr), get(cstep)))),
    ...tile(w));
  return {
    name: 'pointwise',
    params: new Array<ValType>(13).fill(I32),
    results: [],
    locals: L.types,
    body: [
      local.set(scr, i32.add(get(tmp), i32.const(8 * mr * 4 * nv))),
      local.set(chk, v128.zero()),
      forLoop(jr, i32.const(0), get(n), 4 * nv,
        local.set(rem, i32.sub(get(n), get(jr))),
        if_(i32.gt_s(get(rem), i32.const(4)), [rows(nv)], [rows(1)])),
      v128.store(get(tmp), get(chk), pointwiseCheckAt(mr, nv)),
    ],
  };
}

/**
 * Bytes of `pointwise`'s scratch at tmp for MR × 4·NV tiles (the float64 sums, then a partial tile's staging, then
 * the finiteness check's f32x4).
 */
export const pointwiseScratch = (mr: number, nv: number): number => 8 * mr * 4 * nv + 16 * nv + 16;

/** Byte offset from tmp of the f32x4 in which a `pointwise` call leaves its finiteness check (file comment). */
export const pointwiseCheckAt = (mr: number, nv: number): number => 8 * mr * 4 * nv + 16 * nv;

// ---- the per-thread instance ------------------------------------------------------------------------------------

/**
 * Register tile: rows × 4·NV columns. V8 (Node 20, x64) emits all of a k step's loads (NV vectors of B, MR splats of A)
 * before its multiply-adds, so a tile needs MR·NV accumulators + NV + MR + 1 (a product) of the 15 vector registers
 * it allocates: 4 × 8 and 2 × 16 fit (and tie); 5 × 8, 6 × 8 and 3 × 12 spill (1.3–1.9× slower), as does a k loop
 * unrolled by two (V8 already unrolls this one 4×).
 */
export const PW_MR = 4, PW_NV = 2;

export type PointwiseFn = (
  k: number, m: number, n: number, pa: number, pb: number, ldb: number, cstep: number, pc: number, ldc: number, flags: number, sc: number,
  sh: number, tmp: number,
) => void;

const byDepth = new Map<number, () => PointwiseFn>();

/**
 * This thread's `pointwise` for k-term sums over the memory of its SIMD GEMM (call simdGemm first, which sizes that
 * memory): A's row stride (4k bytes) is compiled into the loads' offsets, one module per k (an i32.add per load
 * instead: +4–7% on ResNet-50's 1×1 convs).
 */
export function simdPointwise(k: number): PointwiseFn {
  let get = byDepth.get(k);
  if (get === undefined) {
    get = overGemmMemory((fma) => [pointwiseFunc(PW_MR, PW_NV, fma, 4 * k)], (e) => e.pointwise as PointwiseFn);
    byDepth.set(k, get);
  }
  return get();
}
