// Winograd's output transform Aᵀ M A with the epilogue, in wasm SIMD: winograd.ts's outputBlock arithmetic (float64,
// the same operations in the same order), two tiles per f64x2.

import { f32x4, f64, f64x2, forLoop, i32, i32x4, local, Locals, v128, ValType, type Expr, type Func } from './encoder.js';

/** Flags of the `outT` functions: multiply by scale[i], add shift[i], ReLU (float32 output), float64 output. */
export const OUT_SCALE = 1, OUT_SHIFT = 2, OUT_RELU = 4, OUT_F64 = 8;
/** The flag sets an `outT` function exists for (float64 output: no ReLU). */
export const OUT_VARIANTS = Array.from({ length: 16 }, (_, f) => f).filter((f) => !((f & OUT_F64) && (f & OUT_RELU)));

/** ReLU on the bits of an f32x4, relu.ts's reluBits per lane: a set sign bit gives +0, except on a NaN. */
export function reluLanes(v: Expr): Expr {
  const nan = i32x4.shr_s(i32x4.sub(i32x4.splat(i32.const(0x7f800000)), v128.and(v, i32x4.splat(i32.const(0x7fffffff)))), i32.const(31));
  return v128.and(v, v128.or(v128.not(i32x4.shr_s(v, i32.const(31))), nan));
}

/**
 * `outT${nr}_${flags}(m, scaleAt, shiftAt, out)`: for the 4 channels i × nr tiles jj of one Winograd block whose 36
 * GEMM results are float64 at m + 8·(ξ·4·nr + i·nr + jj), the tile's 16 values o[e] (e = 4·row + col) = (Aᵀ M A)[e],
 * then v = o (·scale[i] with OUT_SCALE) (+ shift[i] with OUT_SHIFT) (scale, shift: 4 doubles at scaleAt, shiftAt),
 * written to out + ((i·16 + e)·nr + jj)·4 rounded to float32 (then ReLU on the bits with OUT_RELU), or ·8 as float64
 * with OUT_F64.
 */
export function outTFunc(nr: number, flags: number): Func {
  const [m, scaleAt, shiftAt, out] = [0, 1, 2, 3];
  const L = new Locals(4);
  const i = L.add(ValType.i32), jj = L.add(ValType.i32), a = L.add(ValType.i32), o = L.add(ValType.i32);
  const sc = L.add(ValType.v128), sh = L.add(ValType.v128);
  const t = L.addMany(ValType.v128, 24); // t[r·6 + c], r = 0..3: the column pass
  const res = L.addMany(ValType.v128, 16);
  const get = local.get;
  const add = f64x2.add, sub = f64x2.sub, mul = f64x2.mul;
  const two = f64x2.splat(f64.const(2)), four = f64x2.splat(f64.const(4)), eight = f64x2.splat(f64.const(8));
  const xs = 4 * nr * 8;
  // One pair of tiles (jj, jj + 1) at byte a (= m + 8·(i·nr + jj)): the 16 values into res (f64x2 each).
  const pair: Expr[] = [];
  const ld = (xi: number): Expr => v128.load(get(a), xi * xs);
  for (let c = 0; c < 6; c++) {
    // Column pass: Aᵀ down column c (s, d, u, e as outputBlock names them, recomputed from loads).
    const s = add(ld(6 + c), ld(12 + c)), d = sub(ld(6 + c), ld(12 + c));
    const u = add(ld(18 + c), ld(24 + c)), e = sub(ld(18 + c), ld(24 + c));
    pair.push(
      local.set(t[c]!, add(add(ld(c), s), u)),
      local.set(t[6 + c]!, add(d, mul(two, e))),
      local.set(t[12 + c]!, add(s, mul(four, u))),
      local.set(t[18 + c]!, add(add(d, mul(eight, e)), ld(30 + c))),
    );
  }
  for (let r = 0; r < 4; r++) {
    const T = (c: number): Expr => get(t[6 * r + c]!);
    const s12 = add(T(1), T(2)), d12 = sub(T(1), T(2)), s34 = add(T(3), T(4)), d34 = sub(T(3), T(4));
    const vals = [add(add(T(0), s12), s34), add(d12, mul(two, d34)), add(s12, mul(four, s34)), add(add(d12, mul(eight, d34)), T(5))];
    for (let c = 0; c < 4; c++) {
      let v = vals[c]!;
      if (flags & OUT_SCALE) v = mul(v, get(sc));
      if (flags & OUT_SHIFT) v = add(v, get(sh));
      pair.push(local.set(res[4 * r + c]!, v));
    }
  }
  const body: Expr[] = [];
  const f64out = (flags & OUT_F64) !== 0;
  // Stores: float64, one f64x2 per value per pair; float32, two pairs' values joined into one f32x4 (4 tiles).
  const store: Expr[] = [];
  if (f64out) {
    for (let e = 0; e < 16; e++) store.push(v128.store(get(o), get(res[e]!), e * nr * 8));
    body.push(forLoop(jj, i32.const(0), i32.const(nr), 2,
      local.set(a, i32.add(get(m), i32.shl(i32.add(i32.mul(get(i), i32.const(nr)), get(jj)), i32.const(3)))),
      local.set(o, i32.add(get(out), i32.shl(i32.add(i32.mul(get(i), i32.const(16 * nr)), get(jj)), i32.const(3)))),
      ...pair, ...store));
  } else {
    // The first pair's values are kept (demoted) in lo[e] while the second pair is computed.
    const lo = L.addMany(ValType.v128, 16);
    const keep = res.map((x, e) => local.set(lo[e]!, f32x4.demote_f64x2_zero(get(x))));
    for (let e = 0; e < 16; e++) {
      let v = f32x4.join_low(get(lo[e]!), f32x4.demote_f64x2_zero(get(res[e]!)));
      if (flags & OUT_RELU) v = reluLanes(v);
      store.push(v128.store(get(o), v, e * nr * 4));
    }
    body.push(forLoop(jj, i32.const(0), i32.const(nr), 4,
      local.set(a, i32.add(get(m), i32.shl(i32.add(i32.mul(get(i), i32.const(nr)), get(jj)), i32.const(3)))),
      local.set(o, i32.add(get(out), i32.shl(i32.add(i32.mul(get(i), i32.const(16 * nr)), get(jj)), i32.const(2)))),
      ...pair, ...keep,
      local.set(a, i32.add(get(a), i32.const(16))),
      ...pair, ...store));
  }
  return {
    name: `outT${nr}_${flags}`,
    params: [ValType.i32, ValType.i32, ValType.i32, ValType.i32],
    results: [],
    locals: L.types,
    body: [
      forLoop(i, i32.const(0), i32.const(4), 1,
        local.set(sc, f64x2.splat(f64.load(i32.add(get(scaleAt), i32.shl(get(i), i32.const(3)))))),
        local.set(sh, f64x2.splat(f64.load(i32.add(get(shiftAt), i32.shl(get(i), i32.const(3)))))),
        ...body),
    ],
  };
}
