// SGD's usual update (momentum, no Nesterov, not maximizing, past the first step) in WebAssembly SIMD, emitted from
// this file when the library loads (see encoder.ts): optim.ts copies a chunk of the parameter, its momentum buffer
// and its gradient into this thread's wasm memory, calls `sgd`, and copies the parameter and the buffer back.
//
// The arithmetic is optim.ts's JavaScript expression, lane by lane, so the results are bitwise the same:
//   b = fround(fround(b·mu) + damp·fround(g + wd·x));  x = fround(x + negLr·b)
// fround(b·mu) is one f32x4.mul (the float64 product of two float32 values is exact, so rounding it once is the
// float32 product); the other steps are float64 (f64x2) sums of exact products, rounded to float32 once each.
// With wd = 0 the weight-decay term is left out (as the JavaScript loop does: 0·x would turn an infinite x into NaN).

import { block, br, br_if, encodeModule, f32, f32x4, f64x2, i32, local, Locals, loop, v128, ValType, type Expr, type Func } from './encoder.js';
import { growTo, newMemory, wasm, type WasmMemory } from './features.js';

const { i32: I32, f64: F64, v128: V128 } = ValType;
const get = local.get;

const lo = (v: Expr): Expr => f64x2.promote_low_f32x4(v);
const hi = (v: Expr): Expr => f64x2.promote_low_f32x4(f32x4.high(v));
/** Two f64x2 rounded to one f32x4 (lanes 0, 1 from a). */
const demote2 = (a: Expr, b: Expr): Expr => f32x4.join_low(f32x4.demote_f64x2_zero(a), f32x4.demote_f64x2_zero(b));

/**
 * `sgd{wd}{damp}(x, b, g, count, mu, damp, wd, negLr)`: x, b, g byte addresses of `count` float32 values each,
 * count a multiple of 4 (the caller pads); every scalar is a float32 value passed as an f64 (mu is narrowed
 * exactly). With `unitDamp` (damp = 1, no dampening) b's sum is one f32x4.add: a sum of two float32 values rounded
 * to float64 and then to float32 is the float32 sum (53 ≥ 2·24 + 2 bits: the double rounding is innocuous).
 */
function sgdFunc(decay: boolean, unitDamp: boolean): Func {
  const [x, b, g, count, mu, damp, wd, negLr] = [0, 1, 2, 3, 4, 5, 6, 7];
  const L = new Locals(8);
  const j = L.add(I32), end = L.add(I32);
  const MU = L.add(V128), DAMP = L.add(V128), WD = L.add(V128), LR = L.add(V128);
  const xv = L.add(V128), gv = L.add(V128), bm = L.add(V128), d = L.add(V128), bn = L.add(V128);
  const xl = L.add(V128), xh = L.add(V128), dl = L.add(V128), dh = L.add(V128), bl = L.add(V128), bh = L.add(V128);
  const at = (base: number): Expr => i32.add(get(base), get(j));
  const body: Expr[] = [
    local.set(xv, v128.load(at(x))),
    local.set(gv, v128.load(at(g))),
    local.set(xl, lo(get(xv))),
    local.set(xh, hi(get(xv))),
    // d = fround(g + wd·x), in float64
    local.set(d, decay
      ? demote2(f64x2.add(lo(get(gv)), f64x2.mul(get(WD), get(xl))), f64x2.add(hi(get(gv)), f64x2.mul(get(WD), get(xh))))
      : get(gv)),
    // b = fround(fround(b·mu) + damp·d)
    local.set(bm, f32x4.mul(v128.load(at(b)), get(MU))),
  ];
  if (unitDamp) body.push(local.set(bn, f32x4.add(get(bm), get(d))));
  else {
    body.push(local.set(dl, lo(get(d))), local.set(dh, hi(get(d))));
    body.push(local.set(bn, demote2(f64x2.add(lo(get(bm)), f64x2.mul(get(DAMP), get(dl))), f64x2.add(hi(get(bm)), f64x2.mul(get(DAMP), get(dh))))));
  }
  // x = fround(x + negLr·b)
  body.push(
    v128.store(at(b), get(bn)),
    local.set(bl, lo(get(bn))),
    local.set(bh, hi(get(bn))),
    v128.store(at(x), demote2(f64x2.add(get(xl), f64x2.mul(get(LR), get(bl))), f64x2.add(get(xh), f64x2.mul(get(LR), get(bh))))),
  );
  return {
    name: `sgd${decay ? 1 : 0}${unitDamp ? 1 : 0}`,
    params: [I32, I32, I32, I32, F64, F64, F64, F64],
    results: [],
    locals: L.types,
    body: [
      local.set(MU, f32x4.splat(f32.demote_f64(get(mu)))),
      local.set(DAMP, f64x2.splat(get(damp))),
      local.set(WD, f64x2.splat(get(wd))),
      local.set(LR, f64x2.splat(get(negLr))),
      local.set(end, i32.shl(get(count), i32.const(2))),
      local.set(j, i32.const(0)),
      block(loop(
        br_if(1, i32.ge_s(get(j), get(end))),
        ...body,
        local.set(j, i32.add(get(j), i32.const(16))),
        br(0),
      )),
    ],
  };
}

/** The module's bytes (importing env.mem). */
export function optimModule(): Uint8Array {
  return encodeModule([sgdFunc(false, false), sgdFunc(false, true), sgdFunc(true, false), sgdFunc(true, true)]);
}

type SgdFn = (x: number, b: number, g: number, count: number, mu: number, damp: number, wd: number, negLr: number) => void;

/** This thread's optimizer kernels over their own memory, with a float32 view of it. */
export interface SimdOptim {
  /** sgd[2·(wd ≠ 0) + (damp = 1)] */
  sgd: [SgdFn, SgdFn, SgdFn, SgdFn];
  f: Float32Array;
}

let current: SimdOptim | null = null;
let memory: WasmMemory | null = null;

/** This thread's optimizer kernels with a memory of at least `bytes` bytes (grown when needed; views renewed). */
export function simdOptim(bytes: number): SimdOptim {
  if (current === null) {
    memory = newMemory(bytes);
    const e = new wasm!.Instance(new wasm!.Module(optimModule()), { env: { mem: memory } }).exports;
    current = { sgd: [e.sgd00 as SgdFn, e.sgd01 as SgdFn, e.sgd10 as SgdFn, e.sgd11 as SgdFn], f: new Float32Array(memory.buffer) };
  }
  if (growTo(memory!, bytes)) {
    current = { ...current, f: new Float32Array(memory!.buffer) };
  }
  return current;
}
