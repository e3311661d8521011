// The SIMD GEMM block: WebAssembly emitted from this file when the library loads (see encoder.ts), the SIMD
// counterpart of asm.ts's `block`.
//
// Memory layout (byte offsets passed in, one wasm memory per thread):
//   packed A: float32, for each MR-row micro-panel, k groups of MR values (row i of the panel at +4i);
//   packed B: float32, for each 8-column micro-panel, k groups of 8 values;
//   C block: float64, mcPad × ncPad, row-major (ncPad·8 bytes per row).
// `block(k, mcPad, ncPad, pa, pb, pc, init)` runs every MR×8 register tile of the panels into the C block:
//   C[i][j] = (init ? C[i][j] : 0) + Σ_blocks float64( Σ_{p in block} A[i][p]·B[p][j] in float32 )
// with k cut into blocks of KB = 64 terms from p = 0: inside a block, float32 products and a float32 running sum
// (f32x4 lanes, p ascending); after each block the four lanes are widened to float64 (f64x2.promote_low_f32x4,
// exact) and added to the float64 C block. So a sum is never longer than 64 float32 terms, the running total is
// float64, and the order is a function of k alone: any split of C over rows, columns or threads gives the same bits.
//
// With FMA (relaxed SIMD, where the engine has it) each step is one f32x4.relaxed_madd instead of mul + add: one
// rounding fewer per term, so results differ from the no-FMA build in the last bits (never across thread counts).
//
// Register tile: MR rows × 8 columns = 2·MR f32x4 accumulators, the two B vectors of a k step, and one splat of A
// (loaded with v128.load32_splat, XNNPACK's "loadsplat" microkernels' scheme). Measured on one core (sgemm
// 64×3136×256, process CPU time): see TILE_MR below.

import {
  block, br, br_if, encodeModule, f32, f32x4, f64, f64x2, forLoop, i32, i32x4, if_, local, Locals, loop, v128, ValType, type Expr, type Func,
} from './encoder.js';

/** Terms per float32 partial sum. */
export const KB = 64;
/** Columns per register tile (two f32x4). */
export const NR = 8;

const { i32: I32, v128: V128 } = ValType;

/** Locals of a function that runs register tiles (see `tile`). */
interface TileRegs {
  k: number;
  init: number;
  a: number;
  b: number;
  c: number;
  ldc: number;
  p: number;
  end: number;
  addr: number;
  b0: number;
  b1: number;
  va: number;
  acc: number[];
}

function tileRegs(L: Locals, mr: number, k: number, init: number): TileRegs {
  return {
    k, init, a: L.add(I32), b: L.add(I32), c: L.add(I32), ldc: L.add(I32), p: L.add(I32), end: L.add(I32), addr: L.add(I32),
    b0: L.add(V128), b1: L.add(V128), va: L.add(V128),
    acc: L.addMany(V128, 2 * mr), // acc[2i]: columns 0–3 of row i, acc[2i + 1]: columns 4–7
  };
}

/**
 * One MR×8 register tile: float64 C (at byte c, ldc bytes per row; zeroed first unless init) += A-panel (at a, MR
 * values per k step) · B-panel (at b, 8 values per k step), k deep, in float32 blocks of KB steps (file comment).
 */
function tile(r: TileRegs, mr: number, fma: boolean): Expr[] {
  const get = local.get;
  const madd = (x: Expr, y: Expr, s: Expr): Expr => (fma ? f32x4.relaxed_madd(x, y, s) : f32x4.add(s, f32x4.mul(x, y)));
  // One k step: acc[i][·] += A[i][p] · B[p][0..8].
  const step: Expr[] = [local.set(r.b0, v128.load(get(r.b))), local.set(r.b1, v128.load(get(r.b), 16))];
  for (let i = 0; i < mr; i++) {
    step.push(local.set(r.va, v128.load32_splat(get(r.a), 4 * i)));
    step.push(local.set(r.acc[2 * i]!, madd(get(r.va), get(r.b0), get(r.acc[2 * i]!))));
    step.push(local.set(r.acc[2 * i + 1]!, madd(get(r.va), get(r.b1), get(r.acc[2 * i + 1]!))));
  }
  step.push(local.set(r.a, i32.add(get(r.a), i32.const(4 * mr))), local.set(r.b, i32.add(get(r.b), i32.const(4 * NR))));
  // After a k-block: C[i][j..j+4] (float64) += the 4 lanes of an accumulator, widened.
  const flush: Expr[] = [];
  for (let i = 0; i < mr; i++) {
    for (let h = 0; h < 2; h++) {
      const v = r.acc[2 * i + h]!;
      flush.push(local.set(r.addr, i32.add(get(r.c), i32.add(i32.mul(get(r.ldc), i32.const(i)), i32.const(32 * h)))));
      flush.push(v128.store(get(r.addr), f64x2.add(v128.load(get(r.addr)), f64x2.promote_low_f32x4(get(v)))));
      flush.push(v128.store(get(r.addr), f64x2.add(v128.load(get(r.addr), 16), f64x2.promote_low_f32x4(f32x4.high(get(v)))), 16));
    }
  }
  // Without init, the first block's flush stores its widened sums (the C block is not zeroed first: the same
  // values, as a sum that starts from +0 in float32 is never −0; K = 64 GEMMs, one core: −3%).
  const flushFirst: Expr[] = [];
  for (let i = 0; i < mr; i++) {
    for (let h = 0; h < 2; h++) {
      const v = r.acc[2 * i + h]!;
      flushFirst.push(local.set(r.addr, i32.add(get(r.c), i32.add(i32.mul(get(r.ldc), i32.const(i)), i32.const(32 * h)))));
      flushFirst.push(v128.store(get(r.addr), f64x2.promote_low_f32x4(get(v))));
      flushFirst.push(v128.store(get(r.addr), f64x2.promote_low_f32x4(f32x4.high(get(v))), 16));
    }
  }
  // One block from p: end = min(p + KB, k); acc = 0; do step while (++p < end); then `after`.
  const blockOf = (after: Expr[]): Expr[] => [
    local.set(r.end, i32.add(get(r.p), i32.const(KB))),
    if_(i32.gt_s(get(r.end), get(r.k)), [local.set(r.end, get(r.k))]),
    ...r.acc.map((x) => local.set(x, v128.zero())),
    loop(
      ...step,
      local.set(r.p, i32.add(get(r.p), i32.const(1))),
      br_if(0, i32.lt_s(get(r.p), get(r.end))),
    ),
    ...after,
  ];
  const zero: Expr[] = [];
  for (let i = 0; i < mr; i++) {
    zero.push(local.set(r.addr, i32.add(get(r.c), i32.mul(get(r.ldc), i32.const(i)))));
    for (let o = 0; o < 64; o += 16) zero.push(v128.store(get(r.addr), v128.zero(), o));
  }
  return [
    // p = 0; if (!init) the first block, stored (k = 0: zeros); the other blocks, added.
    local.set(r.p, i32.const(0)),
    if_(i32.eqz(get(r.init)), [if_(i32.gt_s(get(r.k), i32.const(0)), blockOf(flushFirst), zero)]),
    block(loop(
      br_if(1, i32.ge_s(get(r.p), get(r.k))),
      ...blockOf(flush),
      br(0),
    )),
  ];
}

/**
 * `block(k, mcPad, ncPad, pa, pb, pc, init)`: every MR×8 tile of the packed panels (mcPad a multiple of MR, ncPad
 * of 8; byte offsets) into the C block; init 0: the C block starts from zero, 1: from its contents.
 */
export function blockFunc(mr: number, fma: boolean): Func {
  const [k, mcPad, ncPad, pa, pb, pc, init] = [0, 1, 2, 3, 4, 5, 6];
  const L = new Locals(7);
  const ir = L.add(I32), jr = L.add(I32);
  const r = tileRegs(L, mr, k, init);
  const get = local.get;
  return {
    name: 'block',
    params: [I32, I32, I32, I32, I32, I32, I32],
    results: [],
    locals: L.types,
    body: [
      local.set(r.ldc, i32.shl(get(ncPad), i32.const(3))),
      forLoop(jr, i32.const(0), get(ncPad), NR,
        forLoop(ir, i32.const(0), get(mcPad), mr,
          local.set(r.a, i32.add(get(pa), i32.shl(i32.mul(get(ir), get(k)), i32.const(2)))),
          local.set(r.b, i32.add(get(pb), i32.shl(i32.mul(get(jr), get(k)), i32.const(2)))),
          local.set(r.c, i32.add(get(pc), i32.shl(i32.add(i32.mul(get(ir), get(ncPad)), get(jr)), i32.const(3)))),
          ...tile(r, mr, fma))),
    ],
  };
}

/**
 * `wino(k, ua, xiU, vb, xiV, mo)`, Winograd's 36 GEMMs of one MR-channel × 8-tile block: for ξ = 0 … 35, the tile
 * of the A-panel at ua + ξ·xiU and the B-panel at vb + ξ·xiV (bytes), k deep, into a fresh float64 MR×8 block at
 * mo + ξ·MR·64.
 */
export function winoFunc(mr: number, fma: boolean): Func {
  const [k, ua, xiU, vb, xiV, mo] = [0, 1, 2, 3, 4, 5];
  const L = new Locals(6);
  const xi = L.add(I32), init = L.add(I32);
  const r = tileRegs(L, mr, k, init);
  const get = local.get;
  return {
    name: 'wino',
    params: [I32, I32, I32, I32, I32, I32],
    results: [],
    locals: L.types,
    body: [
      local.set(init, i32.const(0)),
      local.set(r.ldc, i32.const(8 * NR)),
      forLoop(xi, i32.const(0), i32.const(36), 1,
        local.set(r.a, i32.add(get(ua), i32.mul(get(xi), get(xiU)))),
        local.set(r.b, i32.add(get(vb), i32.mul(get(xi), get(xiV)))),
        local.set(r.c, i32.add(get(mo), i32.mul(get(xi), i32.const(mr * 8 * NR)))),
        ...tile(r, mr, fma)),
    ],
  };
}

/**
 * A Winograd GEMM function `name(k, ua, xiU, vb, xiV, mo)`: for ξ = 0 … 35, locals a and b set to ua + ξ·xiU and
 * vb + ξ·xiV, then `perXi` (the ξ-th GEMM, whose block goes to mo + ξ·bytes).
 */
function winoGemm(name: string, L: Locals, xi: number, a: number, b: number, perXi: Expr[]): Func {
  const [ua, xiU, vb, xiV] = [1, 2, 3, 4];
  const get = local.get;
  return {
    name,
    params: [I32, I32, I32, I32, I32, I32],
    results: [],
    locals: L.types,
    body: [
      forLoop(xi, i32.const(0), i32.const(36), 1,
        local.set(a, i32.add(get(ua), i32.mul(get(xi), get(xiU)))),
        local.set(b, i32.add(get(vb), i32.mul(get(xi), get(xiV)))),
        ...perXi),
    ],
  };
}

/**
 * `wino64(k, ua, xiU, vb, xiV, mo)`: the same 36 GEMMs in float64 (asm.ts's `wino` layout: A- and B-panels of 4
 * doubles per k step, 4×4 float64 blocks at mo + ξ·128), two lanes per f64x2: eight accumulators, products and sums
 * in float64, p ascending. Winograd's transforms turn float32 rounding of U and V into errors far above a float32
 * rounding of the output (their entries reach 25 and 8), so its GEMM keeps them in float64.
 */
export function wino64Func(): Func {
  const [k, mo] = [0, 5];
  const L = new Locals(6);
  const xi = L.add(I32), a = L.add(I32), b = L.add(I32);
  const r = wino64Regs(L);
  const get = local.get;
  const store: Expr[] = [];
  for (let i = 0; i < 8; i++) store.push(v128.store(get(b), get(r.acc[i]!), 16 * i));
  return winoGemm('wino64', L, xi, a, b, [
    ...r.acc.map((x) => local.set(x, v128.zero())),
    ...wino64Loop(r, k, a, b),
    local.set(b, i32.add(get(mo), i32.mul(get(xi), i32.const(128)))),
    ...store,
  ]);
}

/** The locals of a `wino64Loop`: acc[2i] holds columns 0–1 of row i, acc[2i + 1] columns 2–3. */
export interface Wino64Regs {
  p: number;
  b0: number;
  b1: number;
  va: number;
  acc: number[];
}

export function wino64Regs(L: Locals): Wino64Regs {
  return { p: L.add(I32), b0: L.add(V128), b1: L.add(V128), va: L.add(V128), acc: L.addMany(V128, 8) };
}

/**
 * `wino64`'s k loop: for p = 0 … k − 1, acc += the float64 products of the A-panel's 4 values at a and the B-panel's
 * 4 at b (each advanced 32 bytes per step).
 */
export function wino64Loop(r: Wino64Regs, k: number, a: number, b: number): Expr[] {
  const get = local.get;
  const { p, b0, b1, va, acc } = r;
  const step: Expr[] = [local.set(b0, v128.load(get(b))), local.set(b1, v128.load(get(b), 16))];
  for (let i = 0; i < 4; i++) {
    step.push(local.set(va, v128.load64_splat(get(a), 8 * i)));
    step.push(local.set(acc[2 * i]!, f64x2.add(get(acc[2 * i]!), f64x2.mul(get(va), get(b0)))));
    step.push(local.set(acc[2 * i + 1]!, f64x2.add(get(acc[2 * i + 1]!), f64x2.mul(get(va), get(b1)))));
  }
  step.push(local.set(a, i32.add(get(a), i32.const(32))), local.set(b, i32.add(get(b), i32.const(32))));
  return [
    local.set(p, i32.const(0)),
    block(loop(
      br_if(1, i32.ge_s(get(p), get(k))),
      ...step,
      local.set(p, i32.add(get(p), i32.const(1))),
      br(0),
    )),
  ];
}

/**
 * `wino4(k, ua, xiU, vb, xiV, mo)`: `wino`'s float32 GEMMs for blocks of 4 channels × 4 tiles (V in panels of 4
 * tiles, 4 float32 per k step; U as for `wino`): a 4×4 register tile (four f32x4 accumulators, one per channel),
 * float32 products and sums over KB-term blocks of k, each block's sums widened and added to a float64 4×4 block
 * at mo + ξ·128 (wino64's layout). For the blocks whose tiles would fill only half of `wino`'s 8-tile panels
 * (3×3 512→512 @7 at batch 1: 4 tiles).
 */
export function wino4Func(fma: boolean): Func {
  const [k, mo] = [0, 5];
  const L = new Locals(6);
  const xi = L.add(I32), a = L.add(I32), b = L.add(I32), c = L.add(I32), p = L.add(I32), end = L.add(I32);
  const vb0 = L.add(V128), va = L.add(V128);
  const acc = L.addMany(V128, 4);
  const get = local.get;
  const madd = (x: Expr, y: Expr, s: Expr): Expr => (fma ? f32x4.relaxed_madd(x, y, s) : f32x4.add(s, f32x4.mul(x, y)));
  const step: Expr[] = [local.set(vb0, v128.load(get(b)))];
  for (let i = 0; i < 4; i++) {
    step.push(local.set(va, v128.load32_splat(get(a), 4 * i)));
    step.push(local.set(acc[i]!, madd(get(va), get(vb0), get(acc[i]!))));
  }
  step.push(local.set(a, i32.add(get(a), i32.const(16))), local.set(b, i32.add(get(b), i32.const(16))));
  const flush: Expr[] = [];
  for (let i = 0; i < 4; i++) {
    flush.push(v128.store(get(c), f64x2.add(v128.load(get(c), 32 * i), f64x2.promote_low_f32x4(get(acc[i]!))), 32 * i));
    flush.push(v128.store(get(c), f64x2.add(v128.load(get(c), 32 * i + 16), f64x2.promote_low_f32x4(f32x4.high(get(acc[i]!)))), 32 * i + 16));
  }
  const zero: Expr[] = [];
  for (let o = 0; o < 128; o += 16) zero.push(v128.store(get(c), v128.zero(), o));
  return winoGemm('wino4', L, xi, a, b, [
    local.set(c, i32.add(get(mo), i32.mul(get(xi), i32.const(128)))),
    ...zero,
    ...kBlocks(p, k, end, acc, step, flush),
  ]);
}

/**
 * `for (p = 0; p < k;) { end = min(p + KB, k); acc = 0; do step while (++p < end); flush }`: the k loop of a
 * float32 GEMM whose sums run over blocks of at most KB terms, each flushed (widened and added) by `flush`.
 */
export function kBlocks(p: number, k: number, end: number, acc: number[], step: Expr[], flush: Expr[]): Expr[] {
  const get = local.get;
  return [
    local.set(p, i32.const(0)),
    block(loop(
      br_if(1, i32.ge_s(get(p), get(k))),
      local.set(end, i32.add(get(p), i32.const(KB))),
      if_(i32.gt_s(get(end), get(k)), [local.set(end, get(k))]),
      ...acc.map((x) => local.set(x, v128.zero())),
      loop(
        ...step,
        local.set(p, i32.add(get(p), i32.const(1))),
        br_if(0, i32.lt_s(get(p), get(end))),
      ),
      ...flush,
      br(0),
    )),
  ];
}

/** The locals of `filterTransform32`: the 9 taps g (four filters, one per lane), its scratch, and acc. */
export interface FilterTransformLocals {
  g: number[];
  acc: number;
  row: number[];
  cs: number[];
  ct: number[];
  cm: number[];
  rs: number;
  rt: number;
  rm: number;
}

export function filterTransformLocals(L: Locals): FilterTransformLocals {
  const g = L.addMany(V128, 9), row = L.addMany(V128, 3), acc = L.add(V128);
  // Shared parts of G's rows: per column j of g, s = g0j + g6j, t = g0j/24 + g6j/6, m = g3j/12; per row of G g, likewise.
  const cs = L.addMany(V128, 3), ct = L.addMany(V128, 3), cm = L.addMany(V128, 3);
  return { g, acc, row, cs, ct, cm, rs: L.add(V128), rt: L.add(V128), rm: L.add(V128) };
}

/**
 * The float32 filter transform U = G g Gᵀ of four filters whose 9 taps are in t.g: adds (Σ taps)·0 into t.acc (NaN
 * when a tap is NaN or ±Inf), then `store(r, e, u)` takes U's 36 values in order (row r, column e). Every step is
 * rounded to float32, with the parts rows 1–2 and 3–4 of G share computed once.
 */
export function filterTransform32(t: FilterTransformLocals, store: (r: number, e: number, u: Expr) => Expr[]): Expr[] {
  const get = local.get;
  const { g, acc, row, cs, ct, cm, rs, rt, rm } = t;
  const S = f32x4.splat(f32.const(1 / 6)), T12 = f32x4.splat(f32.const(1 / 12)), T24 = f32x4.splat(f32.const(1 / 24));
  const Q = f32x4.splat(f32.const(0.25)), Z = f32x4.splat(f32.const(0)), NS = f32x4.splat(f32.const(-1 / 6));
  const add = f32x4.add, sub = f32x4.sub, mul = f32x4.mul;
  const x = (k: number): Expr => get(g[k]!);
  const body: Expr[] = [];
  let sum = x(0);
  for (let k = 1; k < 9; k++) sum = add(sum, x(k));
  body.push(local.set(acc, add(get(acc), mul(sum, Z))));
  for (let j = 0; j < 3; j++) {
    body.push(local.set(cs[j]!, add(x(j), x(j + 6))), local.set(ct[j]!, add(mul(x(j), T24), mul(x(j + 6), S))), local.set(cm[j]!, mul(x(j + 3), T12)));
  }
  // Rows of G g: (g0 + g6 + g3)·(−1/6), (g3 − (g0 + g6))/6, t + m, t − m around the first and last rows.
  const rows: Array<(j: number) => Expr> = [
    (j) => mul(x(j), Q),
    (j) => mul(add(get(cs[j]!), x(j + 3)), NS),
    (j) => mul(sub(x(j + 3), get(cs[j]!)), S),
    (j) => add(get(ct[j]!), get(cm[j]!)),
    (j) => sub(get(ct[j]!), get(cm[j]!)),
    (j) => x(j + 6),
  ];
  for (let r = 0; r < 6; r++) {
    for (let j = 0; j < 3; j++) body.push(local.set(row[j]!, rows[r]!(j)));
    const [a, b, c] = row.map((v) => get(v)) as [Expr, Expr, Expr];
    body.push(local.set(rs, add(a, c)), local.set(rt, add(mul(a, T24), mul(c, S))), local.set(rm, mul(b, T12)));
    const us = [mul(a, Q), mul(add(get(rs), b), NS), mul(sub(b, get(rs)), S), add(get(rt), get(rm)), sub(get(rt), get(rm)), c];
    for (let e = 0; e < 6; e++) body.push(...store(r, e, us[e]!));
  }
  return body;
}

const f32load = (addr: Expr, offset: number): Expr => f32.load(addr, offset);

/**
 * `weights32(src, ci, icStep, laneStep, dst, sx, bad)` and `weights32Flip`: Winograd's weight transform for inference,
 * U = G g Gᵀ in float32 arithmetic, four output channels per f32x4 (rows of G g, then G along each row; the parts
 * rows 1–2 and 3–4 of G share computed once: 1.44 → 1.33 ms for 512×512 filters, one core): U(ξ) of
 * (lane, ic) to dst + ξ·sx + ic·16 + lane·4. At byte bad: an f32x4 of Σ over filters of (Σ taps)·0 per lane (NaN
 * when a tap is NaN or ±Inf, else +0). Against the float64 transform rounded to float32, the fused 3×3 512→512 @7 forward: 8.0 → 5.9 ms
 * (one core, CPU time); U's error grows from one float32 rounding to a few, far inside the fused forward's tolerance.
 */
export function weights32Func(flip: boolean): Func {
  const [src, ci, icStep, laneStep, dst, sx, bad] = [0, 1, 2, 3, 4, 5, 6];
  const L = new Locals(7);
  const ic = L.add(I32), a0 = L.add(I32), addr = L.add(I32);
  const lanes = L.addMany(I32, 4);
  const t = filterTransformLocals(L), { g, acc } = t;
  const get = local.get;
  const tapAt = (k: number): number => 4 * (flip ? 8 - k : k);
  const lane = (l: number, k: number): Expr => f32load(get(lanes[l]!), tapAt(k));
  const body: Expr[] = lanes.map((v, l) => local.set(v, i32.add(get(a0), i32.mul(get(laneStep), i32.const(l)))));
  for (let k = 0; k < 9; k++) {
    body.push(local.set(g[k]!, f32x4.replace_lane(f32x4.replace_lane(f32x4.replace_lane(f32x4.splat(lane(0, k)), 1, lane(1, k)), 2, lane(2, k)), 3, lane(3, k))));
  }
  const put = (v: Expr, last: boolean): Expr[] => [v128.store(get(addr), v), ...(last ? [] : [local.set(addr, i32.add(get(addr), get(sx)))])];
  body.push(local.set(addr, i32.add(get(dst), i32.shl(get(ic), i32.const(4)))));
  body.push(...filterTransform32(t, (r, e, u) => put(u, r === 5 && e === 5)));
  return {
    name: flip ? 'weights32Flip' : 'weights32',
    params: [I32, I32, I32, I32, I32, I32, I32],
    results: [],
    locals: L.types,
    body: [
      local.set(acc, v128.zero()),
      forLoop(ic, i32.const(0), get(ci), 1,
        local.set(a0, i32.add(get(src), i32.mul(get(ic), get(icStep)))),
        ...body),
      v128.store(get(bad), get(acc)),
    ],
  };
}

/**
 * `packA(src, ldaB, panels, kl, dst)`: gemm.ts's A-panel packing of `panels` whole 4-row micro-panels of a row-major
 * float32 block (row r at byte src + r·ldaB): dst + 4·(ir·4·kl + 4p + i) = row 4·ir + i, column p; four columns at a
 * time by a 4×4 transpose of f32x4 rows (MR = 4).
 */
export function packAFunc(): Func {
  const [src, ldaB, panels, kl, dst] = [0, 1, 2, 3, 4];
  const L = new Locals(5);
  const ir = L.add(I32), p = L.add(I32), d = L.add(I32), end4 = L.add(I32);
  const s = L.addMany(I32, 4), r = L.addMany(V128, 4), t = L.addMany(V128, 4);
  const get = local.get;
  const sh = f32x4.shuffle;
  const four: Expr[] = [
    ...r.map((x, i) => local.set(x, v128.load(i32.add(get(s[i]!), i32.shl(get(p), i32.const(2)))))),
    local.set(t[0]!, sh(get(r[0]!), get(r[1]!), [0, 4, 1, 5])),
    local.set(t[1]!, sh(get(r[0]!), get(r[1]!), [2, 6, 3, 7])),
    local.set(t[2]!, sh(get(r[2]!), get(r[3]!), [0, 4, 1, 5])),
    local.set(t[3]!, sh(get(r[2]!), get(r[3]!), [2, 6, 3, 7])),
    local.set(d, i32.add(get(dst), i32.shl(i32.add(i32.mul(get(ir), get(kl)), get(p)), i32.const(4)))),
    v128.store(get(d), sh(get(t[0]!), get(t[2]!), [0, 1, 4, 5])),
    v128.store(get(d), sh(get(t[0]!), get(t[2]!), [2, 3, 6, 7]), 16),
    v128.store(get(d), sh(get(t[1]!), get(t[3]!), [0, 1, 4, 5]), 32),
    v128.store(get(d), sh(get(t[1]!), get(t[3]!), [2, 3, 6, 7]), 48),
  ];
  const one: Expr[] = [local.set(d, i32.add(get(dst), i32.shl(i32.add(i32.mul(get(ir), get(kl)), get(p)), i32.const(4))))];
  for (let i = 0; i < 4; i++) one.push(f32.store(get(d), f32.load(i32.add(get(s[i]!), i32.shl(get(p), i32.const(2)))), 4 * i));
  return {
    name: 'packA',
    params: [I32, I32, I32, I32, I32],
    results: [],
    locals: L.types,
    body: [
      local.set(end4, i32.and(get(kl), i32.const(-4))),
      forLoop(ir, i32.const(0), get(panels), 1,
        ...s.map((x, i) => local.set(x, i32.add(get(src), i32.mul(get(ldaB), i32.add(i32.shl(get(ir), i32.const(2)), i32.const(i)))))),
        forLoop(p, i32.const(0), get(end4), 4, ...four),
        forLoop(p, get(end4), get(kl), 1, ...one)),
    ],
  };
}

/**
 * `packB(src, ldbB, panels, kl, dst)`: gemm.ts's B-panel packing of `panels` whole 8-column micro-panels of a
 * row-major float32 block (row p at byte src + p·ldbB): dst + 4·(jr·8·kl + 8p + j) = row p, column 8·jr + j; two
 * f32x4 per row.
 */
export function packBFunc(): Func {
  const [src, ldbB, panels, kl, dst] = [0, 1, 2, 3, 4];
  const L = new Locals(5);
  const jr = L.add(I32), p = L.add(I32), s = L.add(I32), d = L.add(I32);
  const get = local.get;
  return {
    name: 'packB',
    params: [I32, I32, I32, I32, I32],
    results: [],
    locals: L.types,
    body: [
      local.set(d, get(dst)),
      forLoop(jr, i32.const(0), get(panels), 1,
        local.set(s, i32.add(get(src), i32.shl(get(jr), i32.const(5)))),
        forLoop(p, i32.const(0), get(kl), 1,
          v128.store(get(d), v128.load(get(s))),
          v128.store(get(d), v128.load(get(s), 16), 16),
          local.set(s, i32.add(get(s), get(ldbB))),
          local.set(d, i32.add(get(d), i32.const(32))))),
    ],
  };
}

/** Epilogue flags of the `store` functions: scale and shift per row, a residual, ReLU. */
export const STORE_EP = 1, STORE_RES = 2, STORE_RELU = 4;
/** The flag sets a `store` function exists for (its export is `store${flags}`). */
export const STORE_VARIANTS = [0, STORE_EP, STORE_EP | STORE_RELU, STORE_EP | STORE_RES, STORE_EP | STORE_RES | STORE_RELU];

/**
 * ReLU on an f32x4 with relu.ts's reluBits' bits per lane (a set sign bit gives +0, except on a NaN), in two
 * instructions: pmax(v, 0) keeps v unless v < 0 (so a NaN and −0 pass), and adding +0 turns −0 into +0 and leaves
 * every other value's bits (the NaNs the kernels make are quiet ones, from arithmetic). The bit test it replaces took
 * nine (1×1 64→256 @56 fused, one core: the ReLU's 0.17 ms of 2.71 gone).
 */
export function reluLanes(v: Expr): Expr {
  return f32x4.add(f32x4.pmax(v, v128.zero()), v128.zero());
}

/**
 * `store<flags>(at, ncPad, mc, nc, scaleAt, shiftAt, resAt)`: the mc × nc part of a float64 C block (at byte at,
 * ncPad doubles per row) rounded to float32, in place: row i's values at float32 index at/4 + i·2·ncPad + j. With
 * STORE_EP, each rounded value v of row i then becomes round(v·scale[i] + shift[i] (+ res[i][j])) in float64
 * (scale, shift: doubles at scaleAt, shiftAt; res: float32 at resAt + 4·(i·ncPad + j)), then ReLU on the bits
 * (STORE_RELU): forward.ts's epilogue after gemm.ts's store, the same operations in the same order.
 */
export function storeFunc(flags: number): Func {
  const [at, ncPad, mc, nc, scaleAt, shiftAt, resAt] = [0, 1, 2, 3, 4, 5, 6];
  const L = new Locals(7);
  const i = L.add(I32), j = L.add(I32), row = L.add(I32), rr = L.add(I32), a = L.add(I32);
  const sc = L.add(V128), sh = L.add(V128), v = L.add(V128), r = L.add(V128);
  const get = local.get;
  const narrow = (lo: Expr, hi: Expr): Expr => f32x4.join_low(f32x4.demote_f64x2_zero(lo), f32x4.demote_f64x2_zero(hi));
  const inner: Expr[] = [
    local.set(a, i32.add(get(row), i32.shl(get(j), i32.const(3)))),
    local.set(v, narrow(v128.load(get(a)), v128.load(get(a), 16))),
  ];
  if (flags & STORE_EP) {
    let lo = f64x2.add(f64x2.mul(f64x2.promote_low_f32x4(get(v)), get(sc)), get(sh));
    let hi = f64x2.add(f64x2.mul(f64x2.promote_low_f32x4(f32x4.high(get(v))), get(sc)), get(sh));
    if (flags & STORE_RES) {
      inner.push(local.set(r, v128.load(i32.add(get(rr), i32.shl(get(j), i32.const(2))))));
      lo = f64x2.add(lo, f64x2.promote_low_f32x4(get(r)));
      hi = f64x2.add(hi, f64x2.promote_low_f32x4(f32x4.high(get(r))));
    }
    inner.push(local.set(v, narrow(lo, hi)));
  }
  if (flags & STORE_RELU) inner.push(local.set(v, reluLanes(get(v))));
  inner.push(v128.store(i32.add(get(row), i32.shl(get(j), i32.const(2))), get(v)));
  return {
    name: `store${flags}`,
    params: [I32, I32, I32, I32, I32, I32, I32],
    results: [],
    locals: L.types,
    body: [
      forLoop(i, i32.const(0), get(mc), 1,
        local.set(row, i32.add(get(at), i32.shl(i32.mul(get(i), get(ncPad)), i32.const(3)))),
        ...(flags & STORE_EP
          ? [
            local.set(sc, f64x2.splat(f64.load(i32.add(get(scaleAt), i32.shl(get(i), i32.const(3)))))),
            local.set(sh, f64x2.splat(f64.load(i32.add(get(shiftAt), i32.shl(get(i), i32.const(3)))))),
            local.set(rr, i32.add(get(resAt), i32.shl(i32.mul(get(i), get(ncPad)), i32.const(2)))),
          ]
          : []),
        forLoop(j, i32.const(0), get(nc), 4, ...inner)),
    ],
  };
}

/**
 * The module's bytes: `block`, `wino` (MR-row tiles), `wino64`, `wino4`, the stores, `packA`,
 * `packB`, `weights32` and `weights32Flip`, importing env.mem.
 */
export function sgemmModule(mr: number, fma: boolean): Uint8Array {
  return encodeModule([
    blockFunc(mr, fma), winoFunc(mr, fma), wino64Func(), wino4Func(fma), ...STORE_VARIANTS.map(storeFunc), packAFunc(), packBFunc(),
    weights32Func(false), weights32Func(true),
  ]);
}

// ---- the per-thread instance ------------------------------------------------------------------------------------

import { growTo, newMemory, usesFma, wasm, type WasmMemory } from './features.js';

/**
 * Rows per register tile (gemm.ts packs A in panels of this many rows): 4×8 measured best of 3×8 … 8×8, one core,
 * process CPU time, a 80×512×256 block: 4×8 36–49 GFLOP/s, 3×8 46, 5×8 25, 6×8 23–26, 8×8 22 (6×8 and up need
 * more than the 16 vector registers: spills). See bench/README.md.
 */
export const MR = 4;

type StoreFn = (at: number, ncPad: number, mc: number, nc: number, scaleAt: number, shiftAt: number, resAt: number) => void;
type Weights32Fn = (src: number, ci: number, icStep: number, laneStep: number, dst: number, sx: number, bad: number) => void;

/** A wasm memory with the block function instantiated over it, and float32/float64 views of the memory. */
export interface SimdGemm {
  block: (k: number, mcPad: number, ncPad: number, pa: number, pb: number, pc: number, init: number) => void;
  wino: (k: number, ua: number, xiU: number, vb: number, xiV: number, mo: number) => void;
  wino64: (k: number, ua: number, xiU: number, vb: number, xiV: number, mo: number) => void;
  wino4: (k: number, ua: number, xiU: number, vb: number, xiV: number, mo: number) => void;
  weights32: Weights32Fn;
  weights32Flip: Weights32Fn;
  /** store[flags] for the flag sets in STORE_VARIANTS. */
  store: StoreFn[];
  packA: (src: number, ldaB: number, panels: number, kl: number, dst: number) => void;
  packB: (src: number, ldbB: number, panels: number, kl: number, dst: number) => void;
  f: Float32Array;
  h: Float64Array;
  mr: number;
}

function storeFns(exports: Record<string, unknown>): StoreFn[] {
  const out: StoreFn[] = [];
  for (const flags of STORE_VARIANTS) out[flags] = exports[`store${flags}`] as StoreFn;
  return out;
}

let current: SimdGemm | null = null;
let memory: WasmMemory | null = null;
let built: { fma: boolean; mr: number } | null = null;
const tileRows = MR;

/** This thread's SIMD GEMM with a memory of at least `bytes` bytes (grown when needed; views renewed). */
export function simdGemm(bytes: number): SimdGemm {
  const fma = usesFma();
  if (current === null || built!.fma !== fma || built!.mr !== tileRows) {
    if (memory === null) memory = newMemory(bytes);
    const mod = new wasm!.Module(sgemmModule(tileRows, fma));
    const inst = new wasm!.Instance(mod, { env: { mem: memory } });
    current = { block: inst.exports.block as SimdGemm['block'], wino: inst.exports.wino as SimdGemm['wino'], wino64: inst.exports.wino64 as SimdGemm['wino64'], wino4: inst.exports.wino4 as SimdGemm['wino4'], weights32: inst.exports.weights32 as Weights32Fn, weights32Flip: inst.exports.weights32Flip as Weights32Fn, store: storeFns(inst.exports), packA: inst.exports.packA as SimdGemm['packA'], packB: inst.exports.packB as SimdGemm['packB'], f: new Float32Array(memory.buffer), h: new Float64Array(memory.buffer), mr: tileRows };
    built = { fma, mr: tileRows };
  }
  if (growTo(memory!, bytes)) {
    current = { ...current, f: new Float32Array(memory!.buffer), h: new Float64Array(memory!.buffer) };
  }
  return current;
}

/** This thread's SIMD GEMM memory (null before the first simdGemm call): other modules instantiate over it. */
export function simdGemmMemory(): WasmMemory | null {
  return memory;
}

/**
 * A getter of this thread's instance, over the SIMD GEMM's memory (call simdGemm first, which sizes that memory), of
 * the module `funcs(fma)` encodes: compiled once per FMA setting, instantiated again when the memory or the setting
 * changes, its exports read by `pick`.
 */
export function overGemmMemory<T>(funcs: (fma: boolean) => Func[], pick: (exports: Record<string, unknown>) => T): () => T {
  let current: T | null = null, currentMem: object | null = null, currentFma = false;
  const compiled: Array<object | null> = [null, null];
  return () => {
    const mem = simdGemmMemory(), fma = usesFma();
    if (current === null || currentMem !== mem || currentFma !== fma) {
      const mod = (compiled[+fma] ??= new wasm!.Module(encodeModule(funcs(fma))));
      current = pick(new wasm!.Instance(mod, { env: { mem } }).exports);
      currentMem = mem;
      currentFma = fma;
    }
    return current;
  };
}
