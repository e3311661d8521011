// The training-mode batch-norm kernels in WebAssembly SIMD, emitted from this file when the library loads (see
// encoder.ts): the per-channel passes of batchnorm.ts's training forward and backward, over one thread's wasm memory.
//
// Layout: a channel's data is n planes of hw float32 values, plane i at byte `base + i·stride` (the caller copies a
// block of channels of every image in, so stride is the block's bytes per image). Every function walks the planes
// in order, 4 values at a time, and the last hw mod 4 values of a plane one at a time (lane 0 of a vector loaded
// with load32_zero, stored with store32_lane).
//
// Sums are float64: each float32 is widened (exact) and added to one of four float64 lane sums (lane l takes the
// values at j ≡ l mod 4 of every plane) or, for a plane's tail, to a fifth; the caller adds them in a fixed order:
// ((l0 + l1) + (l2 + l3)) + tail. (sum and sqdev keep two sets of the four lane sums, a plane's vectors going in
// pairs to set 0 and set 1 and its last unpaired one to set 0, and add them lane by lane at the end.) So a channel's
// sums depend on (n, hw) only, never on the block or the thread.
// The elementwise passes compute in float64 and round once, the same expressions as the JavaScript kernels:
//   affine: y = (x·α + β) (+ r), then relu (max(y, 0) with NaN kept, on the rounded value); and whether all are finite
//   grad:   g = dy where the ReLU output r ≠ +0 (bits), or where the forward's relu(x·α + β) (recomputed from x, same
//           float64 expression and rounding) is > 0 or NaN, else +0; Σ g and Σ g·(x − μ)
//   dx:     dx (+)= ((g − mg) − (x − μ)·k)·s; and whether all are finite

import { block, br, br_if, encodeModule, f32x4, f64x2, forLoop, i32, i32x4, local, Locals, loop, v128, ValType, type Expr, type Func } from './encoder.js';
import { growTo, newMemory, wasm, type WasmMemory } from './features.js';

const { i32: I32, f64: F64, v128: V128 } = ValType;
const get = local.get;

/** A function's plane walk: `vec` reads and writes at byte address `a` (+ an array's base), 4 values or 1. */
interface Walk {
  n: number;
  hw: number;
  stride: number;
  /** The array parameters the walk reads or writes: each points at the current plane (advanced by stride after it). */
  bases: number[];
  /**
   * Locals the walk uses: image, byte offset in the plane, end of the pairs of vectors, end of the vector part, end
   * of the plane.
   */
  i: number;
  j: number;
  end8: number;
  end4: number;
  end: number;
}

function walkLocals(L: Locals, n: number, hw: number, stride: number, bases: number[]): Walk {
  return { n, hw, stride, bases, i: L.add(I32), j: L.add(I32), end8: L.add(I32), end4: L.add(I32), end: L.add(I32) };
}

/**
 * for each plane i: `pair()` over the pairs of vectors of the plane (address offsets j and j + 16), when given, then
 * body(true) over the (other) vectors, then body(false) over its tail values one at a time. The bodies address an
 * array with `at(base)` = base + j, the array parameters in w.bases pointing at plane i (moved on by stride after
 * each plane: one address add per access).
 */
function walk(w: Walk, body: (full: boolean) => Expr[], pair?: () => Expr[]): Expr {
  const pairs = pair
    ? [
      local.set(w.end8, i32.and(get(w.end), i32.const(~31))),
      block(loop(
        br_if(1, i32.ge_s(get(w.j), get(w.end8))),
        ...pair(),
        local.set(w.j, i32.add(get(w.j), i32.const(32))),
        br(0),
      )),
    ]
    : [];
  return cat(
    local.set(w.end, i32.shl(get(w.hw), i32.const(2))),
    local.set(w.end4, i32.and(get(w.end), i32.const(~15))),
    forLoop(w.i, i32.const(0), get(w.n), 1,
      local.set(w.j, i32.const(0)),
      ...pairs,
      block(loop(
        br_if(1, i32.ge_s(get(w.j), get(w.end4))),
        ...body(true),
        local.set(w.j, i32.add(get(w.j), i32.const(16))),
        br(0),
      )),
      block(loop(
        br_if(1, i32.ge_s(get(w.j), get(w.end))),
        ...body(false),
        local.set(w.j, i32.add(get(w.j), i32.const(4))),
        br(0),
      )),
      ...w.bases.map((b) => local.set(b, i32.add(get(b), get(w.stride))))),
  );
}

function cat(...parts: Expr[]): Expr {
  const out: number[] = [];
  for (const p of parts) for (const b of p) out.push(b);
  return out;
}

const at = (w: Walk, base: number): Expr => i32.add(get(base), get(w.j));
const load = (w: Walk, base: number, full: boolean, offset = 0): Expr =>
  (full ? v128.load(at(w, base), offset) : v128.load32_zero(at(w, base)));
const store = (w: Walk, base: number, v: Expr, full: boolean): Expr => (full ? v128.store(at(w, base), v) : v128.store32_lane(at(w, base), v, 0));
const lo = (v: Expr): Expr => f64x2.promote_low_f32x4(v);
const hi = (v: Expr): Expr => f64x2.promote_low_f32x4(f32x4.high(v));
/** Two f64x2 rounded to one f32x4 (lanes 0, 1 from a). */
const demote2 = (a: Expr, b: Expr): Expr => f32x4.join_low(f32x4.demote_f64x2_zero(a), f32x4.demote_f64x2_zero(b));

/**
 * `sum(x, n, hw, stride, out)` (sq false): the lane sums of x; `sqdev(x, n, hw, stride, mu, out)` (sq true): of
 * (x − mu)². out: 6 doubles, lanes 0–3 and the tail sum at [4] ([5] is not read). The vectors of a plane go in
 * pairs to two sets of lane sums (two chains of float64 adds instead of one, which bound the speed), added at the
 * end (set 0 + set 1); a plane's last unpaired vector goes to set 0.
 */
function sumFunc(sq: boolean): Func {
  const [x, n, hw, stride] = [0, 1, 2, 3];
  const mu = sq ? 4 : -1, out = sq ? 5 : 4;
  const L = new Locals(sq ? 6 : 5);
  const w = walkLocals(L, n, hw, stride, [x]);
  const a = L.add(V128), b = L.add(V128), t = L.add(V128), v = L.add(V128), m = L.add(V128), d = L.add(V128);
  const a2 = L.add(V128), b2 = L.add(V128), v2 = L.add(V128), d2 = L.add(V128);
  const term = (e: Expr, dd: number): Expr[] => (sq ? [local.set(dd, f64x2.sub(e, get(m)))] : [local.set(dd, e)]);
  const sqd = (dd: number): Expr => (sq ? f64x2.mul(get(dd), get(dd)) : get(dd));
  /** The vector at byte offset `offset` (with registers vr, dr) into the lane sums sa (lanes 0, 1) and sb (2, 3). */
  const vec = (offset: number, vr: number, dr: number, sa: number, sb: number): Expr[] => [
    local.set(vr, load(w, x, true, offset)),
    ...term(lo(get(vr)), dr), local.set(sa, f64x2.add(get(sa), sqd(dr))),
    ...term(hi(get(vr)), dr), local.set(sb, f64x2.add(get(sb), sqd(dr))),
  ];
  return {
    name: sq ? 'sqdev' : 'sum',
    params: sq ? [I32, I32, I32, I32, F64, I32] : [I32, I32, I32, I32, I32],
    results: [],
    locals: L.types,
    body: [
      ...(sq ? [local.set(m, f64x2.splat(get(mu)))] : []),
      ...[a, b, t, a2, b2].map((s) => local.set(s, v128.zero())),
      walk(w, (full) => full ? vec(0, v, d, a, b) : [...term(lo(load(w, x, false)), d), local.set(t, f64x2.add(get(t), sqd(d)))],
        () => [...vec(0, v, d, a, b), ...vec(16, v2, d2, a2, b2)]),
      v128.store(get(out), f64x2.add(get(a), get(a2))), v128.store(get(out), f64x2.add(get(b), get(b2)), 16),
      v128.store(get(out), get(t), 32),
    ],
  };
}

/** relu of an f32x4 on the rounded values: lanes ≤ 0 (−0 too) become +0, positives and NaN (never ≤ 0) kept bit for bit. */
const relu4 = (v: number): Expr => v128.andnot(get(v), f32x4.le(get(v), v128.zero()));

/**
 * `affine{res}{relu}(y, x, r, n, hw, stride, alpha, beta, fin)`: y = relu?(x·α + β (+ r)) (r unread without res),
 * and at fin the finiteness check of what it stored (see finiteCheck).
 */
function affineFunc(res: boolean, relu: boolean): Func {
  const [y, x, r, n, hw, stride, alpha, beta, fin] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const L = new Locals(9);
  const w = walkLocals(L, n, hw, stride, res ? [y, x, r] : [y, x]);
  const A = L.add(V128), B = L.add(V128), v = L.add(V128), rv = L.add(V128), o = L.add(V128), chk = L.add(V128);
  const half = (e: (u: Expr) => Expr): Expr => {
    const s = f64x2.add(f64x2.mul(e(get(v)), get(A)), get(B));
    return res ? f64x2.add(s, e(get(rv))) : s;
  };
  const body = (full: boolean): Expr[] => [
    local.set(v, load(w, x, full)),
    ...(res ? [local.set(rv, load(w, r, full))] : []),
    local.set(o, full ? demote2(half(lo), half(hi)) : f32x4.demote_f64x2_zero(half(lo))),
    ...(relu ? [local.set(o, relu4(o))] : []),
    store(w, y, get(o), full),
    finiteCheck(chk, o),
  ];
  return {
    name: `affine${res ? 1 : 0}${relu ? 1 : 0}`,
    params: [I32, I32, I32, I32, I32, I32, F64, F64, I32],
    results: [],
    locals: L.types,
    body: [
      local.set(A, f64x2.splat(get(alpha))), local.set(B, f64x2.splat(get(beta))), local.set(chk, v128.zero()),
      walk(w, body),
      v128.store(get(fin), get(chk)),
    ],
  };
}

/**
 * chk += v − v: lanes stay +0 while every stored value is finite and become NaN from the first ±Inf or NaN on. (A
 * plane's tail stores lane 0 only; lanes 1–3 then hold values computed from zeros, finite unless the per-channel
 * constants are not: at worst a false "not finite", never a false "finite".)
 */
const finiteCheck = (chk: number, v: number): Expr => local.set(chk, f32x4.add(get(chk), f32x4.sub(get(v), get(v))));

/** How a grad function masks dy: not at all, where the ReLU output r is +0, or where relu(x·α + β) is (recomputed). */
type GradMask = 'none' | 'out' | 'x';

/**
 * `grad0(g, dy, r, x, n, hw, stride, mu, out)`: the lane sums of g = dy (out[0..6)) and of g·(x − mu) (out[6..12));
 * r is not read and nothing is stored. `grad1(…)`: g = dy masked where the ReLU output r is +0, stored to g.
 * `gradx(g, dy, x, n, hw, stride, mu, alpha, beta, out)`: g = dy masked where the forward's relu(x·α + β) was +0,
 * recomputed from x with the forward's float64 α, β and rounding (the same bits as its output), stored to g.
 */
function gradFunc(mask: GradMask): Func {
  const fromX = mask === 'x';
  const [g, dy, r, x, n, hw, stride, mu, alpha, beta, out] = fromX ? [0, 1, -1, 2, 3, 4, 5, 6, 7, 8, 9] : [0, 1, 2, 3, 4, 5, 6, 7, -1, -1, 8];
  const L = new Locals(fromX ? 10 : 9);
  const w = walkLocals(L, n, hw, stride, [g, dy, x, ...(mask === 'out' ? [r] : [])]);
  const sa = L.add(V128), sb = L.add(V128), st = L.add(V128), xa = L.add(V128), xb = L.add(V128), xt = L.add(V128);
  const m = L.add(V128), gv = L.add(V128), xv = L.add(V128), gl = L.add(V128), A = L.add(V128), B = L.add(V128), o = L.add(V128);
  const affine = (part: (u: Expr) => Expr): Expr => f64x2.add(f64x2.mul(part(get(xv)), get(A)), get(B));
  const body = (full: boolean): Expr[] => {
    const e: Expr[] = [local.set(gv, load(w, dy, full)), local.set(xv, load(w, x, full))];
    if (mask === 'out') e.push(local.set(gv, v128.and(get(gv), i32x4.ne(load(w, r, full), v128.zero()))));
    if (fromX) {
      // relu passes where the rounded value is not ≤ 0: > 0 or NaN (relu4's test)
      e.push(local.set(o, full ? demote2(affine(lo), affine(hi)) : f32x4.demote_f64x2_zero(affine(lo))));
      e.push(local.set(gv, v128.andnot(get(gv), f32x4.le(get(o), v128.zero()))));
    }
    if (mask !== 'none') e.push(store(w, g, get(gv), full));
    const halves: [(u: Expr) => Expr, number, number][] = full ? [[lo, sa, xa], [hi, sb, xb]] : [[lo, st, xt]];
    for (const [part, s, sx] of halves) {
      e.push(local.set(gl, part(get(gv))));
      e.push(local.set(s, f64x2.add(get(s), get(gl))));
      e.push(local.set(sx, f64x2.add(get(sx), f64x2.mul(get(gl), f64x2.sub(part(get(xv)), get(m))))));
    }
    return e;
  };
  return {
    name: `grad${mask === 'none' ? 0 : mask === 'out' ? 1 : 'x'}`,
    params: fromX ? [I32, I32, I32, I32, I32, I32, F64, F64, F64, I32] : [I32, I32, I32, I32, I32, I32, I32, F64, I32],
    results: [],
    locals: L.types,
    body: [
      local.set(m, f64x2.splat(get(mu))),
      ...(fromX ? [local.set(A, f64x2.splat(get(alpha))), local.set(B, f64x2.splat(get(beta)))] : []),
      ...[sa, sb, st, xa, xb, xt].map((s) => local.set(s, v128.zero())),
      walk(w, body),
      ...[sa, sb, st, xa, xb, xt].map((s, k) => v128.store(get(out), get(s), 16 * k)),
    ],
  };
}

/** `dx{acc}(dx, g, x, n, hw, stride, s, mg, mu, k, fin)`: dx (+)= ((g − mg) − (x − mu)·k)·s; fin: as affine's. */
function dxFunc(acc: boolean): Func {
  const [dx, g, x, n, hw, stride, s, mg, mu, k, fin] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  const L = new Locals(11);
  const w = walkLocals(L, n, hw, stride, [dx, g, x]);
  const S = L.add(V128), MG = L.add(V128), M = L.add(V128), K = L.add(V128), gv = L.add(V128), xv = L.add(V128), dv = L.add(V128);
  const o = L.add(V128), chk = L.add(V128);
  const half = (e: (u: Expr) => Expr): Expr => {
    const t = f64x2.mul(f64x2.sub(f64x2.sub(e(get(gv)), get(MG)), f64x2.mul(f64x2.sub(e(get(xv)), get(M)), get(K))), get(S));
    return acc ? f64x2.add(e(get(dv)), t) : t;
  };
  const body = (full: boolean): Expr[] => [
    local.set(gv, load(w, g, full)),
    local.set(xv, load(w, x, full)),
    ...(acc ? [local.set(dv, load(w, dx, full))] : []),
    local.set(o, full ? demote2(half(lo), half(hi)) : f32x4.demote_f64x2_zero(half(lo))),
    store(w, dx, get(o), full),
    finiteCheck(chk, o),
  ];
  return {
    name: `dx${acc ? 1 : 0}`,
    params: [I32, I32, I32, I32, I32, I32, F64, F64, F64, F64, I32],
    results: [],
    locals: L.types,
    body: [
      local.set(S, f64x2.splat(get(s))), local.set(MG, f64x2.splat(get(mg))),
      local.set(M, f64x2.splat(get(mu))), local.set(K, f64x2.splat(get(k))), local.set(chk, v128.zero()),
      walk(w, body),
      v128.store(get(fin), get(chk)),
    ],
  };
}

/** The module's bytes (importing env.mem, a shared memory when `shared`). */
export function batchNormModule(shared = false): Uint8Array {
  return encodeModule([
    sumFunc(false), sumFunc(true),
    affineFunc(false, false), affineFunc(false, true), affineFunc(true, false), affineFunc(true, true),
    gradFunc('none'), gradFunc('out'), gradFunc('x'), dxFunc(false), dxFunc(true),
  ], 1, shared);
}

// ---- the per-thread instance ------------------------------------------------------------------------------------

type SumFn = (x: number, n: number, hw: number, stride: number, out: number) => void;
type SqDevFn = (x: number, n: number, hw: number, stride: number, mu: number, out: number) => void;
type AffineFn = (y: number, x: number, r: number, n: number, hw: number, stride: number, alpha: number, beta: number, fin: number) => void;
type GradFn = (g: number, dy: number, r: number, x: number, n: number, hw: number, stride: number, mu: number, out: number) => void;
type GradXFn = (g: number, dy: number, x: number, n: number, hw: number, stride: number, mu: number, alpha: number, beta: number, out: number) => void;
type DxFn = (dx: number, g: number, x: number, n: number, hw: number, stride: number, s: number, mg: number, mu: number, k: number, fin: number) => void;

/** This thread's batch-norm kernels over their own memory, with float32/float64 views of it. */
export interface SimdBatchNorm {
  sum: SumFn;
  sqdev: SqDevFn;
  /** affine[2·res + relu] */
  affine: [AffineFn, AffineFn, AffineFn, AffineFn];
  /** grad[relu] */
  grad: [GradFn, GradFn];
  /** grad with the ReLU mask recomputed from x */
  gradX: GradXFn;
  /** dx[acc] */
  dx: [DxFn, DxFn];
  f: Float32Array;
  h: Float64Array;
}

function instantiate(mem: WasmMemory, shared: boolean): SimdBatchNorm {
  const e = new wasm!.Instance(new wasm!.Module(batchNormModule(shared)), { env: { mem } }).exports;
  return {
    sum: e.sum as SumFn,
    sqdev: e.sqdev as SqDevFn,
    affine: [e.affine00 as AffineFn, e.affine01 as AffineFn, e.affine10 as AffineFn, e.affine11 as AffineFn],
    grad: [e.grad0 as GradFn, e.grad1 as GradFn],
    gradX: e.gradx as GradXFn,
    dx: [e.dx0 as DxFn, e.dx1 as DxFn],
    f: new Float32Array(mem.buffer),
    h: new Float64Array(mem.buffer),
  };
}

let current: SimdBatchNorm | null = null;
let memory: WasmMemory | null = null;

/** This thread's batch-norm kernels with a memory of at least `bytes` bytes (grown when needed; views renewed). */
export function simdBatchNorm(bytes: number): SimdBatchNorm {
  if (current === null) current = instantiate((memory = newMemory(bytes)), false);
  if (growTo(memory!, bytes)) {
    current = { ...current, f: new Float32Array(memory!.buffer), h: new Float64Array(memory!.buffer) };
  }
  return current;
}

let onResident: { id: number; m: SimdBatchNorm } | null = null;

/**
 * This thread's batch-norm kernels over the resident memory `r` (wasm/optim.ts), where a training step's tensors
 * lie: they run on them in place. A worker instantiates them at its first such task; the views follow the memory's
 * growth (another thread's included).
 */
export function residentBatchNorm(r: { mem: WasmMemory; id: number }): SimdBatchNorm {
  if (onResident === null || onResident.id !== r.id) onResident = { id: r.id, m: instantiate(r.mem, true) };
  const buf = r.mem.buffer;
  if (onResident.m.f.buffer !== buf) onResident.m = { ...onResident.m, f: new Float32Array(buf), h: new Float64Array(buf) };
  return onResident.m;
}

/** ((l0 + l1) + (l2 + l3)) + tail of the lane sums at h[i..i+5) (see the file comment). */
export function laneTotal(h: Float64Array, i: number): number {
  return h[i]! + h[i + 1]! + (h[i + 2]! + h[i + 3]!) + h[i + 4]!;
}
