// Direct convolution in WebAssembly SIMD, emitted from this file when the library loads (see encoder.ts): no im2col,
// no GEMM packing. For convolutions with few channels (CIFAR's and Fashion-MNIST's 16/32/64) im2col writes kH·kW
// times the output and the packing outweighs the GEMM; here every multiply-add reads the input in place.
//
// Memory layout (byte offsets passed in; one wasm memory per thread):
//   input:   one image, padded once (`pad`), as s phase planes per channel (s = stride): plane ph of channel ci holds,
//            at row r and column q, xpad[ci][r][q·s + ph] (xpad: the input with its zero border). Output column ox of
//            tap kx then reads plane kx mod s at column ox + ⌊kx/s⌋: four output columns are one unaligned v128
//            load, for any stride. A table gives each tap's byte offset within a channel (kernel row ky: ky rows
//            down); channels are chx bytes apart, output rows rowStep bytes (s rows).
//   weights: one tile of R output channels: float32 [ci][tap][r] (zeros for channels past the last).
//   output:  float32 [r][oy − oy0][ow] (outCh bytes per channel), the caller's rows of the R channels.
//
// `conv(xp, rowStep, chx, cin, cblk, taps, tab, wp, oy0, oy1, tiles, ow, out, outCh, acc, bias, accum)` computes
// output rows [oy0, oy1) of the R channels, `tiles` column tiles of 4V columns each (V f32x4 vectors; the last tile
// may pass ow: its extra columns read the padded input and are not stored). Per output element:
//   y = round_f32( start + Σ_blocks float64( Σ_{(ci, tap) in block} x·w in float32 ) )
// over (ci, tap) in row-major order, cut into blocks of cblk whole channels from ci = 0 (DIRECT_KB terms at most):
// float32 products and a float32 running sum per lane, then the lanes widened (exact) and added to a float64 running
// sum (the R × 4V doubles at `acc`) that starts from the channel's float64 bias (at `bias`), or with accum ≠ 0 from
// the output's own value (an accumulating input gradient: dx + Σ, rounded once). The order is a function of the
// shape alone: any split of the output over rows, channels or threads gives the same bits.
// With FMA (relaxed SIMD) each step is one f32x4.relaxed_madd: the last bits differ from the no-FMA build.
// With the flag SUM32 (one block: cin ≤ cblk; no bias, no epilogue, no accum) the float32 sums are stored as they are:
// round_f32(0 + Σ) is Σ, so only the sign of an all-(−0) sum differs from the float64 path (−0 here, +0 there).
// With the flag SUM2 (two blocks, cblk < cin ≤ 2·cblk; no bias, no epilogue, no accum; CIFAR's 3-channel stem) the
// kernel computes round_f32((A + 0) + B) of the blocks' float32 sums A and B in float32: the same bits as the float64
// path's round_f32(float64(float64(0 + A) + B)), as a float64 sum of two float32 values rounded to float32 is their
// float32 sum (53 ≥ 2·24 + 2 bits: double rounding is innocuous), and 0 + A is exact in both (−0 becomes +0).
//
// Register tile: R output channels × V vectors = R·V f32x4 accumulators, V input vectors per tap, one weight splat
// (v128.load32_splat). See DIRECT_R / DIRECT_V for the measured choice.

import {
  block, br, br_if, encodeModule, f32, f32x4, f64, f64x2, forLoop, i32, if_, local, Locals, loop, v128, ValType, type Expr, type Func,
} from './encoder.js';
import { directEvalFunc, directTap, directTiles } from './direct-eval.js';
import { growTo, newMemory, overResident, usesFma, wasm, type WasmMemory } from './features.js';
import { reluLanes } from './sgemm.js';
import { OUT_RELU, OUT_RES } from './winograd.js';

/**
 * Terms per float32 partial sum at most (whole channels of kH·kW taps: two channels of a 3×3 kernel). Each block
 * ends in a flush (two widenings and two float64 adds per accumulator vector), about a quarter of the work of a
 * 9-term block: 18 terms cost 5–12% less CPU time than 9 on CIFAR's stem and stride-2 convs (one core). The price is
 * accuracy: a train-mode ResNet-20 step's worst gradient error (test/models/numerics.test.ts) is 4.2× below PyTorch
 * float32's with 18 terms, 4.6× with 9; 63 terms (7 channels) ran 1.3× faster than 9 but left only 2.1×.
 */
export const DIRECT_KB = 18;
/**
 * Terms per output at most for which all input channels make one block (a 1-channel stem, as Fashion-MNIST's, has 9):
 * with no bias the kernel then stores the float32 sums as they are (SUM32); Fashion-MNIST's 1→16 @28 batch 128 takes
 * 0.79–0.86× the time of the float64 stores (one core, CPU time). 27 (CIFAR's 3-channel stem in one block) ran that
 * stem in 0.81–0.89× the time of 18 + 9 terms, but a train-mode ResNet-20 step's worst gradient error
 * (numerics.test.ts) fell from 4.2× to 4.0× below PyTorch float32's, and element by element from 4.5e-1 to 8.6e-1,
 * worse than PyTorch float32's 5.7e-1.
 */
export const DIRECT_KB_STEM = 9;
/** Output channels per register tile. */
export const DIRECT_R = 4;
/** f32x4 vectors of output columns per register tile (4·V columns). */
export const DIRECT_V = 2;
/** `conv`'s flag (beside the epilogue's OUT_* flags): store the one block's float32 sums as they are (file comment). */
export const SUM32 = 32;
/** `conv`'s flag: two blocks, no bias, no epilogue, no accum: y = (A + 0) + B in float32 (file comment). */
export const SUM2 = 64;

const { i32: I32, v128: V128 } = ValType;

/** `conv` with tiles of r channels × v vectors (the file comment). */
export function directFunc(r: number, v: number, fma: boolean): Func {
  const [xp, rowStep, chx, cin, cblk, taps, tab, wp, oy0, oy1, tiles, ow, out, outCh, acc, bias, accum, flags, scale, shift] =
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19];
  const L = new Locals(20);
  const oy = L.add(I32), jt = L.add(I32), ci = L.add(I32), cend = L.add(I32), cb = L.add(I32), wq = L.add(I32);
  const addr = L.add(I32), outRow = L.add(I32), nv = L.add(I32), j = L.add(I32), t = L.add(I32), tabEnd = L.add(I32);
  const accs = L.addMany(V128, r * v), inp = L.addMany(V128, v), sw = L.add(V128);
  const lo = L.add(V128), hi = L.add(V128), sc = L.add(V128), shf = L.add(V128);
  const get = local.get;
  const cols = 4 * v;

  const tapCode = (first: boolean): Expr[] => directTap({ addr, cb, t, wq, sw, inp, accs }, r, v, fma, first);
  const tap = tapCode(false);
  const channel: Expr[] = [
    local.set(t, get(tab)),
    loop(...tap, br_if(0, i32.lt_s(get(t), get(tabEnd)))),
    local.set(cb, i32.add(get(cb), get(chx))),
    local.set(ci, i32.add(get(ci), i32.const(1))),
  ];
  // One block of cblk channels (cend: its end), then `after` (a flush).
  const blockBody = (after: Expr[]): Expr[] => [
    local.set(cend, i32.add(get(ci), get(cblk))),
    if_(i32.gt_s(get(cend), get(cin)), [local.set(cend, get(cin))]),
    // The block's first channel: its first tap, then the others.
    local.set(t, get(tab)),
    ...tapCode(true),
    block(loop(br_if(1, i32.ge_s(get(t), get(tabEnd))), ...tap, br(0))),
    local.set(cb, i32.add(get(cb), get(chx))),
    local.set(ci, i32.add(get(ci), i32.const(1))),
    block(loop(br_if(1, i32.ge_s(get(ci), get(cend))), ...channel, br(0))),
    ...after,
  ];
  /** The blocks from channel ci to cin. */
  const blocks = (after: Expr[]): Expr => block(loop(br_if(1, i32.ge_s(get(ci), get(cin))), ...blockBody(after), br(0)));
  // After a block: acc[i][4e .. 4e + 4] (float64) += the lanes of accs[i][e], widened.
  const flush: Expr[] = [];
  for (let i = 0; i < r; i++) {
    for (let e = 0; e < v; e++) {
      const a = accs[i * v + e]!, off = 8 * (i * cols + 4 * e);
      flush.push(v128.store(get(acc), f64x2.add(v128.load(get(acc), off), f64x2.promote_low_f32x4(get(a))), off));
      flush.push(v128.store(get(acc), f64x2.add(v128.load(get(acc), off + 16), f64x2.promote_low_f32x4(f32x4.high(get(a)))), off + 16));
    }
  }
  // The float64 sums start from the biases (flushFirst: bias + the first block, the same value as the bias stored
  // first and added to), or (accum) from the output's values (the columns past ow of a partial tile read whatever
  // follows and are never stored).
  const flushFirst: Expr[] = [];
  for (let i = 0; i < r; i++) {
    flushFirst.push(local.set(sw, f64x2.splat(f64.load(get(bias), 8 * i))));
    for (let e = 0; e < v; e++) {
      const a = accs[i * v + e]!, off = 8 * (i * cols + 4 * e);
      flushFirst.push(v128.store(get(acc), f64x2.add(get(sw), f64x2.promote_low_f32x4(get(a))), off));
      flushFirst.push(v128.store(get(acc), f64x2.add(get(sw), f64x2.promote_low_f32x4(f32x4.high(get(a)))), off + 16));
    }
  }
  const initOut: Expr[] = [];
  for (let i = 0; i < r; i++) {
    initOut.push(local.set(addr, i32.add(get(outRow), i32.mul(get(outCh), i32.const(i)))));
    for (let e = 0; e < v; e++) {
      const off = 8 * (i * cols + 4 * e);
      initOut.push(local.set(sw, v128.load(get(addr), 16 * e)));
      initOut.push(v128.store(get(acc), f64x2.promote_low_f32x4(get(sw)), off));
      initOut.push(v128.store(get(acc), f64x2.promote_low_f32x4(f32x4.high(get(sw))), off + 16));
    }
  }
  // Rounded to float32: whole tiles as vectors, the last partial tile value by value. With the epilogue (flags ≠ 0),
  // channel i's float64 sums v become round_f32(v·scale[i] + shift[i] (+ the output's float32 value: the residual,
  // OUT_RES)), then ReLU on the bits (OUT_RELU): the same values as winograd.ts's vout.
  const epChannel = (i: number): Expr[] => [
    local.set(sc, f64x2.splat(f64.load(get(scale), 8 * i))),
    local.set(shf, f64x2.splat(f64.load(get(shift), 8 * i))),
  ];
  /** Vector e of channel i (output at addr) with the epilogue, into inp[0]. */
  const epVector = (i: number, e: number): Expr[] => {
    const off = 8 * (i * cols + 4 * e);
    return [
      local.set(lo, f64x2.add(f64x2.mul(v128.load(get(acc), off), get(sc)), get(shf))),
      local.set(hi, f64x2.add(f64x2.mul(v128.load(get(acc), off + 16), get(sc)), get(shf))),
      if_(i32.and(get(flags), i32.const(OUT_RES)), [
        local.set(sw, v128.load(get(addr), 16 * e)),
        local.set(lo, f64x2.add(get(lo), f64x2.promote_low_f32x4(get(sw)))),
        local.set(hi, f64x2.add(get(hi), f64x2.promote_low_f32x4(f32x4.high(get(sw))))),
      ]),
      local.set(inp[0]!, f32x4.join_low(f32x4.demote_f64x2_zero(get(lo)), f32x4.demote_f64x2_zero(get(hi)))),
      if_(i32.and(get(flags), i32.const(OUT_RELU)), [local.set(inp[0]!, reluLanes(get(inp[0]!)))]),
    ];
  };
  const chAddr = (i: number): Expr => local.set(addr, i32.add(get(outRow), i32.mul(get(outCh), i32.const(i))));
  const storeFull: Expr[] = [];
  const storeFullEp: Expr[] = [];
  for (let i = 0; i < r; i++) {
    storeFull.push(chAddr(i));
    storeFullEp.push(chAddr(i), ...epChannel(i));
    for (let e = 0; e < v; e++) {
      const off = 8 * (i * cols + 4 * e);
      storeFull.push(v128.store(get(addr), f32x4.join_low(
        f32x4.demote_f64x2_zero(v128.load(get(acc), off)), f32x4.demote_f64x2_zero(v128.load(get(acc), off + 16))), 16 * e));
      storeFullEp.push(...epVector(i, e), v128.store(get(addr), get(inp[0]!), 16 * e));
    }
  }
  // The partial tile with the epilogue: each vector's float32 results over its own (already read) float64 sums,
  // at acc + 8·i·4V + 16e, then copied value by value (the residual's columns past ow are read, never stored).
  const storePart: Expr[] = [];
  for (let i = 0; i < r; i++) {
    const outAt = i32.add(i32.add(get(outRow), i32.mul(get(outCh), i32.const(i))), i32.shl(get(j), i32.const(2)));
    storePart.push(if_(get(flags), [
      chAddr(i), ...epChannel(i),
      ...Array.from({ length: v }, (_, e) => [...epVector(i, e), v128.store(get(acc), get(inp[0]!), 8 * i * cols + 16 * e)]).flat(),
      forLoop(j, i32.const(0), get(nv), 1, f32.store(outAt, f32.load(i32.add(get(acc), i32.shl(get(j), i32.const(2))), 8 * i * cols))),
    ], [
      forLoop(j, i32.const(0), get(nv), 1,
        f32.store(outAt, f32.demote_f64(f64.load(i32.add(get(acc), i32.shl(get(j), i32.const(3))), 8 * i * cols)))),
    ]));
  }
  // SUM32: the one block's float32 sums, whole tiles as vectors; a partial tile's through the acc scratch (as
  // storePart's epilogue branch), value by value.
  const sum32Full: Expr[] = [], sum32Part: Expr[] = [];
  for (let i = 0; i < r; i++) {
    sum32Full.push(chAddr(i));
    for (let e = 0; e < v; e++) {
      sum32Full.push(v128.store(get(addr), get(accs[i * v + e]!), 16 * e));
      sum32Part.push(v128.store(get(acc), get(accs[i * v + e]!), 8 * i * cols + 16 * e));
    }
    const outAt = i32.add(i32.add(get(outRow), i32.mul(get(outCh), i32.const(i))), i32.shl(get(j), i32.const(2)));
    sum32Part.push(forLoop(j, i32.const(0), get(nv), 1, f32.store(outAt, f32.load(i32.add(get(acc), i32.shl(get(j), i32.const(2))), 8 * i * cols))));
  }
  const firstFlush = if_(i32.and(get(flags), i32.const(SUM32)), [if_(i32.ge_s(get(nv), i32.const(cols)), sum32Full, sum32Part)], flushFirst);
  // SUM2: the first block's sums A to the acc scratch (where sum32Part puts them), then (A + 0) + B: whole tiles
  // to the output rows, a partial one into the scratch and then value by value.
  const sum2A: Expr[] = [], sum2Full: Expr[] = [], sum2Part: Expr[] = [];
  for (let i = 0; i < r; i++) {
    sum2Full.push(chAddr(i));
    for (let e = 0; e < v; e++) {
      const off = 8 * i * cols + 16 * e, a = accs[i * v + e]!;
      sum2A.push(v128.store(get(acc), get(a), off));
      const ab = f32x4.add(f32x4.add(v128.load(get(acc), off), v128.zero()), get(a));
      sum2Full.push(v128.store(get(addr), ab, 16 * e));
      sum2Part.push(v128.store(get(acc), ab, off));
    }
    const outAt = i32.add(i32.add(get(outRow), i32.mul(get(outCh), i32.const(i))), i32.shl(get(j), i32.const(2)));
    sum2Part.push(forLoop(j, i32.const(0), get(nv), 1, f32.store(outAt, f32.load(i32.add(get(acc), i32.shl(get(j), i32.const(2))), 8 * i * cols))));
  }
  return {
    name: 'conv',
    params: new Array<ValType>(20).fill(I32),
    results: [],
    locals: L.types,
    body: directTiles({ xp, rowStep, taps, tab, wp, oy0, oy1, tiles, ow, out, oy, jt, outRow, wq, cb, nv, tabEnd }, v, [
      local.set(ci, i32.const(0)),
      // With accum every block adds to the output's values; else the first block starts from the biases (or, with
      // SUM32, is the only one and stores its sums).
      if_(get(accum), [...initOut, blocks(flush)], [
        if_(i32.and(get(flags), i32.const(SUM2)),
          [...blockBody(sum2A), ...blockBody([if_(i32.ge_s(get(nv), i32.const(cols)), sum2Full, sum2Part)])],
          [...blockBody([firstFlush]), blocks(flush)]),
      ]),
      if_(i32.and(get(flags), i32.const(SUM32 | SUM2)), [],
        [if_(i32.ge_s(get(nv), i32.const(cols)), [if_(get(flags), storeFullEp, storeFull)], storePart)]),
    ]),
  };
}

/**
 * `pad(src, srcCh, ci, hi, wi, dst, plane, wq, hp, s, planes, row0, qt)`: zero-padded, column-strided copies of one
 * image (float32 channels of hi × wi at src, srcCh bytes apart), `planes` per channel: plane ph of channel c at
 * dst + (c·planes + ph)·plane bytes, hp rows of wq floats (wq a multiple of 4), row r from input row row0 + r (0
 * outside [0, hi)), column q of plane ph from input column e_ph + (q − q0_ph)·s for q in [q0_ph, q1_ph), else 0.
 * Per plane, at qt + 12·ph: q0, q1, e. The direct convolution's stride-phase planes (planes = s), and the weight
 * gradient's x rows (wasm/backward.ts: one plane per kernel column).
 */
export function padFunc(): Func {
  const [src, srcCh, ci, hi, wi, dst, plane, wq, hp, s, planes, row0, qt] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
  const L = new Locals(13);
  const c = L.add(I32), ph = L.add(I32), r = L.add(I32), q = L.add(I32), iy = L.add(I32), d = L.add(I32), e = L.add(I32);
  const q0 = L.add(I32), q1 = L.add(I32), q4 = L.add(I32), rowBytes = L.add(I32), sb = L.add(I32);
  const get = local.get;
  // Zeros over whole vectors of the row from column `from` (a multiple of 4) to `to`, rounded up to a multiple of 4
  // (≤ wq): before the row's values, which then overwrite the columns they own.
  const zeroVectors = (from: Expr, to: Expr): Expr =>
    forLoop(q, from, to, 4, v128.store(i32.add(get(d), i32.shl(get(q), i32.const(2))), v128.zero()));
  return {
    name: 'pad',
    params: new Array<ValType>(13).fill(I32),
    results: [],
    locals: L.types,
    body: [
      local.set(rowBytes, i32.shl(get(wq), i32.const(2))),
      local.set(sb, i32.shl(get(s), i32.const(2))),
      forLoop(c, i32.const(0), get(ci), 1,
        forLoop(ph, i32.const(0), get(planes), 1,
          local.set(e, i32.add(get(qt), i32.mul(get(ph), i32.const(12)))),
          local.set(q0, i32.load(get(e))),
          local.set(q1, i32.load(get(e), 4)),
          local.set(e, i32.load(get(e), 8)),
          local.set(d, i32.add(get(dst), i32.mul(i32.add(i32.mul(get(c), get(planes)), get(ph)), get(plane)))),
          forLoop(r, i32.const(0), get(hp), 1,
            local.set(iy, i32.add(get(row0), get(r))),
            if_(i32.or(i32.lt_s(get(iy), i32.const(0)), i32.ge_s(get(iy), get(hi))),
              [forLoop(q, i32.const(0), get(rowBytes), 16, v128.store(i32.add(get(d), get(q)), v128.zero()))],
              [
                zeroVectors(i32.const(0), get(q0)),
                zeroVectors(i32.and(get(q1), i32.const(-4)), get(wq)),
                // Input address of column q0, then s·4 bytes per column.
                local.set(iy, i32.add(i32.add(get(src), i32.mul(get(c), get(srcCh))), i32.shl(i32.add(i32.mul(get(iy), get(wi)), get(e)), i32.const(2)))),
                local.set(q, get(q0)),
                if_(i32.eq(get(s), i32.const(1)), [
                  local.set(q4, i32.sub(get(q1), i32.const(3))),
                  block(loop(
                    br_if(1, i32.ge_s(get(q), get(q4))),
                    v128.store(i32.add(get(d), i32.shl(get(q), i32.const(2))), v128.load(get(iy))),
                    local.set(iy, i32.add(get(iy), i32.const(16))),
                    local.set(q, i32.add(get(q), i32.const(4))),
                    br(0))),
                ]),
                // Stride 2: input columns 0, 2, 4, 6 of the 7 from iy (loads of 0 … 3 and 3 … 6: none past the row).
                if_(i32.eq(get(s), i32.const(2)), [
                  local.set(q4, i32.sub(get(q1), i32.const(3))),
                  block(loop(
                    br_if(1, i32.ge_s(get(q), get(q4))),
                    v128.store(i32.add(get(d), i32.shl(get(q), i32.const(2))),
                      f32x4.shuffle(v128.load(get(iy)), v128.load(get(iy), 12), [0, 2, 5, 7])),
                    local.set(iy, i32.add(get(iy), i32.const(32))),
                    local.set(q, i32.add(get(q), i32.const(4))),
                    br(0))),
                ]),
                block(loop(
                  br_if(1, i32.ge_s(get(q), get(q1))),
                  f32.store(i32.add(get(d), i32.shl(get(q), i32.const(2))), f32.load(get(iy))),
                  local.set(iy, i32.add(get(iy), get(sb))),
                  local.set(q, i32.add(get(q), i32.const(1))),
                  br(0))),
              ]),
            local.set(d, i32.add(get(d), get(rowBytes)))))),
    ],
  };
}

/**
 * `pad2(src, srcCh, ci, hi, wi, dst, plane, wq, hp, row0, padW, mask, qv)`: `pad`'s two stride-phase planes of a
 * stride-2 convolution in one pass over each input row: plane ph, column q holds input column 2q + ph − padW (0
 * outside [0, wi)), row r input row row0 + r (0 outside [0, hi)). Columns q < qv (a multiple of 4) come four at a
 * time from the eight input columns 2q − padW … 2q − padW + 7 (two loads, the even lanes to plane 0 and the odd
 * ones to plane 1), each vector ANDed with its mask (at mask + 8q, 16 bytes per plane: all ones where the column
 * lies in the row, zeros elsewhere); columns [qv, wq) are zero. With qv = the planes' column count rounded up to 4
 * the loads read at most padW floats before a row and 7 past it (the masks discard them). The same values as
 * `pad(…, s = 2, planes = 2, …)`: every column of both planes written once, by a load, a shuffle, an AND and a store
 * per 4 columns instead of 2 loads and a shuffle per 4 columns and plane, the edges value by value and the zeros
 * first (one core, CPU time, CIFAR's 16→32 @32 and 32→64 @16: see bench/README.md).
 */
export function pad2Func(): Func {
  const [src, srcCh, ci, hi, wi, dst, plane, wq, hp, row0, padW, mask, qv] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
  const L = new Locals(13);
  const c = L.add(I32), r = L.add(I32), q = L.add(I32), iy = L.add(I32), d = L.add(I32), a = L.add(I32), m = L.add(I32);
  const rowBytes = L.add(I32), v0 = L.add(V128), v1 = L.add(V128);
  const get = local.get;
  const qAddr = (base: number, off: Expr): Expr => i32.add(get(base), i32.shl(off, i32.const(2)));
  return {
    name: 'pad2',
    params: new Array<ValType>(13).fill(I32),
    results: [],
    locals: L.types,
    body: [
      local.set(rowBytes, i32.shl(get(wq), i32.const(2))),
      forLoop(c, i32.const(0), get(ci), 1,
        // d: row r of plane 0 of channel c (plane 1 is `plane` bytes on).
        local.set(d, i32.add(get(dst), i32.mul(i32.shl(get(c), i32.const(1)), get(plane)))),
        forLoop(r, i32.const(0), get(hp), 1,
          local.set(iy, i32.add(get(row0), get(r))),
          if_(i32.or(i32.lt_s(get(iy), i32.const(0)), i32.ge_s(get(iy), get(hi))),
            [forLoop(q, i32.const(0), get(rowBytes), 16,
              v128.store(i32.add(get(d), get(q)), v128.zero()),
              v128.store(i32.add(i32.add(get(d), get(plane)), get(q)), v128.zero()))],
            [
              // a: input column 2q − padW of row iy, for q = 0; m: the masks of q = 0.
              local.set(a, i32.add(i32.add(get(src), i32.mul(get(c), get(srcCh))),
                i32.shl(i32.sub(i32.mul(get(iy), get(wi)), get(padW)), i32.const(2)))),
              local.set(m, get(mask)),
              forLoop(q, i32.const(0), get(qv), 4,
                local.set(v0, v128.load(get(a))),
                local.set(v1, v128.load(get(a), 16)),
                v128.store(qAddr(d, get(q)), v128.and(f32x4.shuffle(get(v0), get(v1), [0, 2, 4, 6]), v128.load(get(m)))),
                v128.store(i32.add(qAddr(d, get(q)), get(plane)), v128.and(f32x4.shuffle(get(v0), get(v1), [1, 3, 5, 7]), v128.load(get(m), 16))),
                local.set(a, i32.add(get(a), i32.const(32))),
                local.set(m, i32.add(get(m), i32.const(32)))),
              forLoop(q, get(qv), get(wq), 4,
                v128.store(qAddr(d, get(q)), v128.zero()),
                v128.store(i32.add(qAddr(d, get(q)), get(plane)), v128.zero())),
            ]),
          local.set(d, i32.add(get(d), get(rowBytes))))),
    ],
  };
}

/**
 * pad2's masks for one row (int32 lanes at ints[at …]: chunk j of 4 columns, plane ph at 8j + 4ph): −1 where plane
 * ph's column 4j + l (input column 2(4j + l) + ph − padW) lies in [0, wi), else 0; and qv, the columns pad2 loads
 * (the last column of either plane that lies in the row, plus one, rounded up to 4).
 */
export function pad2Masks(ints: Int32Array, at: number, wq: number, wi: number, padW: number): number {
  let qv = 0;
  for (let q = 0; q < wq; q++) {
    for (let ph = 0; ph < 2; ph++) {
      const col = 2 * q + ph - padW, inRow = col >= 0 && col < wi;
      ints[at + 8 * (q >> 2) + 4 * ph + (q & 3)] = inRow ? -1 : 0;
      if (inRow) qv = q + 1;
    }
  }
  return 4 * Math.ceil(qv / 4);
}

// ---- the per-thread instance ------------------------------------------------------------------------------------

export type PadFn = (
  src: number, srcCh: number, ci: number, hi: number, wi: number, dst: number, plane: number, wq: number, hp: number, s: number,
  planes: number, row0: number, qt: number,
) => void;

export type Pad2Fn = (
  src: number, srcCh: number, ci: number, hi: number, wi: number, dst: number, plane: number, wq: number, hp: number, row0: number,
  padW: number, mask: number, qv: number,
) => void;

export type DirectFn = (
  xp: number, rowStep: number, chx: number, cin: number, cblk: number, taps: number, tab: number, wp: number, oy0: number,
  oy1: number, tiles: number, ow: number, out: number, outCh: number, acc: number, bias: number, accum: number,
  // The epilogue (flags 0, the default: none; a missing argument reaches wasm as 0).
  flags?: number, scale?: number, shift?: number,
) => void;

export type DirectEvalFn = (
  xp: number, rowStep: number, chx: number, cin: number, taps: number, tab: number, wp: number, oy0: number, oy1: number,
  tiles: number, ow: number, out: number, outCh: number, tmp: number, flags: number, scale: number, shift: number,
) => void;

/** This thread's direct-convolution kernel over its own memory, with float32/float64 views of the memory. */
export interface SimdDirect {
  conv: DirectFn;
  /** The fused forward in float32 (wasm/direct-eval.ts). */
  conv32: DirectEvalFn;
  pad: PadFn;
  /** `pad`'s planes at stride 2 in one pass (pad2Func). */
  pad2: Pad2Fn;
  f: Float32Array;
  h: Float64Array;
  i: Int32Array;
}

let current: SimdDirect | null = null;
let memory: WasmMemory | null = null;
let builtFma: boolean | null = null;

/** The module's bytes: `conv`, `pad`, `conv32`, `pad2`, importing env.mem (shared: the resident memory). */
function directModule(fma: boolean, shared = false): Uint8Array {
  return encodeModule([directFunc(DIRECT_R, DIRECT_V, fma), padFunc(), directEvalFunc(DIRECT_R, DIRECT_V, fma), pad2Func()], 1, shared);
}

type DirectFns = Omit<SimdDirect, 'f' | 'h' | 'i'>;

const pickDirect = (e: Record<string, unknown>): DirectFns => ({
  conv: e.conv as DirectFn, conv32: e.conv32 as DirectEvalFn, pad: e.pad as PadFn, pad2: e.pad2 as Pad2Fn,
});

/** This thread's kernel with a memory of at least `bytes` bytes (grown when needed; views renewed). */
export function simdDirect(bytes: number): SimdDirect {
  const fma = usesFma();
  if (current === null || builtFma !== fma) {
    if (memory === null) memory = newMemory(bytes);
    const e = new wasm!.Instance(new wasm!.Module(directModule(fma)), { env: { mem: memory } }).exports;
    current = { ...pickDirect(e), f: new Float32Array(memory.buffer), h: new Float64Array(memory.buffer), i: new Int32Array(memory.buffer) };
    builtFma = fma;
  }
  if (growTo(memory!, bytes)) {
    current = { ...current, f: new Float32Array(memory!.buffer), h: new Float64Array(memory!.buffer), i: new Int32Array(memory!.buffer) };
  }
  return current;
}

/**
 * This thread's direct kernels over the resident memory `r` (wasm/optim.ts), where a training step's tensors lie
 * (conv2d/direct.ts runs on them in place).
 */
export const residentDirect = overResident(directModule, pickDirect);
