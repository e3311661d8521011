// A linear layer's product at a few rows in WebAssembly SIMD, emitted from this file at its first use on a thread
// (see encoder.ts): y (m × n) = x (m × k) · wᵀ + bias, w stored n × k (one row per output feature) and read once, as it
// lies, over the optimizer's resident memory (wasm/optim.ts) where a model's parameters are made; x, y and the bias
// are staged there by the caller (kernels/fc.ts).
//
// `fc(k, n, m, o0, o1, pw, px, py, pb)` computes features [o0, o1) of every row (byte addresses: w's row o at
// pw + 4k·o, x's row r at px + 4k·r, y's row r at py + 4n·r, the bias at pb). Per output:
//   S = Σ_blocks float64( four float32 lane sums over the block ),  k cut into blocks of KB = 64 terms from p = 0,
// lane l summing the block's terms with p ≡ l (mod 4) in ascending order (float32 products, float32 running sums,
// at most 16 terms each: the last block's terms past a multiple of 4 go to lane 0); after each block the lanes are
// widened (exact) and added to two float64 carries (lanes 0 + 2 into one, 1 + 3 into the other), and at the end
// y = round_f32((carry₀ + carry₁) + bias). The order is a function of k alone: any split of the features over units
// or threads gives the same bits. With FMA (relaxed SIMD) each term is one f32x4.relaxed_madd (last bits differ
// from the no-FMA build, as in the GEMM).
//
// Features go four at a time for one row of x (four independent accumulators; two at a time: 0.69 → 0.97 ms for
// ResNet-50's fc on one core), else two at a time for x's rows in pairs (each vector of w loaded once for two
// products): the two rows of w (2 × 4k bytes) stay in the cache while x's pairs of rows go by.

import {
  br_if, encodeModule, f32, f32x4, f64, f64x2, forLoop, i32, if_, local, Locals, loop, v128, ValType, type Expr, type Func,
} from './encoder.js';
import { growTo, newMemory, overResident, usesFma, wasm, type WasmMemory } from './features.js';

/** Terms per block (four float32 lane sums of at most 16 terms each, then float64). */
export const FC_KB = 64;

const { i32: I32, v128: V128 } = ValType;
const get = local.get;

/** The `fc` function (file comment). */
export function fcFunc(fma: boolean): Func {
  const [k, n, m, o0, o1, pw, px, py, pb] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const L = new Locals(9);
  const o = L.add(I32), r = L.add(I32), q = L.add(I32), qend = L.add(I32), qk = L.add(I32);
  const wr = L.addMany(I32, 4), xr = L.addMany(I32, 2);
  const xv = L.addMany(V128, 2), wv = L.add(V128), acc = L.addMany(V128, 4), car = L.addMany(V128, 4), t = L.add(V128);
  const madd = (x: Expr, y: Expr, s: Expr): Expr => (fma ? f32x4.relaxed_madd(x, y, s) : f32x4.add(s, f32x4.mul(x, y)));
  const widened = (v: Expr): Expr => f64x2.add(f64x2.promote_low_f32x4(v), f64x2.promote_low_f32x4(f32x4.high(v)));

  /**
   * The sums of features o … o + R − 1 for rows r … r + M − 1 (R·M ≤ 4), stored to y. q runs over byte offsets
   * into the rows (4p), qend the end of the current block.
   */
  const tile = (R: number, M: number): Expr[] => {
    const A = (i: number, c: number): number => acc[i * M + c]!, C = (i: number, c: number): number => car[i * M + c]!;
    // One step: 4 terms (vector loads), or 1 (lane 0 only; lanes 1–3 add 0·0).
    const step = (load: (addr: Expr) => Expr): Expr[] => {
      const out: Expr[] = [];
      for (let c = 0; c < M; c++) out.push(local.set(xv[c]!, load(i32.add(get(xr[c]!), get(q)))));
      for (let i = 0; i < R; i++) {
        out.push(local.set(wv, load(i32.add(get(wr[i]!), get(q)))));
        for (let c = 0; c < M; c++) out.push(local.set(A(i, c), madd(get(wv), get(xv[c]!), get(A(i, c)))));
      }
      return out;
    };
    const finish: Expr[] = [];
    for (let i = 0; i < R; i++) {
      for (let c = 0; c < M; c++) {
        finish.push(
          // carry₀ + carry₁ in both lanes (the lanes swapped and added), then the bias
          local.set(t, f64x2.add(get(C(i, c)), f32x4.shuffle(get(C(i, c)), get(C(i, c)), [2, 3, 0, 1]))),
          local.set(t, f64x2.add(get(t), f64x2.splat(f64.promote_f32(f32.load(i32.add(get(pb), i32.shl(i32.add(get(o), i32.const(i)), i32.const(2)))))))),
          v128.store32_lane(
            i32.add(get(py), i32.shl(i32.add(i32.mul(i32.add(get(r), i32.const(c)), get(n)), i32.add(get(o), i32.const(i))), i32.const(2))),
            f32x4.demote_f64x2_zero(get(t)), 0),
        );
      }
    }
    return [
      ...Array.from({ length: R }, (_, i) => local.set(wr[i]!, i32.add(get(pw), i32.mul(i32.add(get(o), i32.const(i)), get(qk))))),
      ...Array.from({ length: M }, (_, c) => local.set(xr[c]!, i32.add(get(px), i32.mul(i32.add(get(r), i32.const(c)), get(qk))))),
      ...car.slice(0, R * M).map((x) => local.set(x, v128.zero())),
      local.set(q, i32.const(0)),
      // blocks of KB terms (k ≥ 1)
      loop(
        local.set(qend, i32.add(get(q), i32.const(4 * FC_KB))),
        if_(i32.gt_s(get(qend), get(qk)), [local.set(qend, get(qk))]),
        ...acc.slice(0, R * M).map((x) => local.set(x, v128.zero())),
        // four terms a step while four are left (q + 16 ≤ qend), then one
        forLoop(q, get(q), i32.sub(get(qend), i32.const(12)), 16, ...step((a) => v128.load(a))),
        forLoop(q, get(q), get(qend), 4, ...step((a) => v128.load32_zero(a))),
        ...Array.from({ length: R * M }, (_, j) => local.set(car[j]!, f64x2.add(get(car[j]!), widened(get(acc[j]!))))),
        br_if(0, i32.lt_s(get(q), get(qk))),
      ),
      ...finish,
    ];
  };

  /** `body(R)` for o = o0, o0 + R, … while R features are left, then for the rest one at a time. */
  const features = (R: number, body: (R: number) => Expr[]): Expr[] => [
    forLoop(o, get(o0), i32.sub(get(o1), i32.const(R - 1)), R, ...body(R)),
    forLoop(o, get(o), get(o1), 1, ...body(1)),
  ];
  /** For R features: x's rows in pairs, then a last single row. */
  const rowPairs = (R: number): Expr[] => [
    forLoop(r, i32.const(0), i32.sub(get(m), i32.const(1)), 2, ...tile(R, 2)),
    if_(i32.lt_s(get(r), get(m)), tile(R, 1)),
  ];
  return {
    name: 'fc',
    params: new Array<ValType>(9).fill(I32),
    results: [],
    locals: L.types,
    body: [
      local.set(qk, i32.shl(get(k), i32.const(2))),
      if_(i32.eq(get(m), i32.const(1)),
        [local.set(r, i32.const(0)), ...features(4, (R) => tile(R, 1))],
        features(2, rowPairs)),
    ],
  };
}

export type FcFn = (k: number, n: number, m: number, o0: number, o1: number, pw: number, px: number, py: number, pb: number) => void;

/** The module's bytes: `fc`, importing env.mem (shared: the resident memory). */
export const fcModule = (fma: boolean, shared: boolean): Uint8Array => encodeModule([fcFunc(fma)], 1, shared);

/** This thread's `fc` over the resident memory `r` (a worker instantiates it at its first such task). */
export const residentFc = overResident(fcModule, (e) => e.fc as FcFn);

let own: { mem: WasmMemory; fma: boolean; fc: FcFn } | null = null;

/**
 * `fc` over a private, unshared memory of the calling thread, grown to at least `bytes` bytes: for a weight that
 * does not lie in the resident memory (a plain Float32Array, or an engine without shared memory, such as a page that
 * is not cross-origin isolated), copied in by the caller. The same function, so the same bits as over the resident
 * memory. Views of `heap` are stale after the next call.
 */
export function privateFc(bytes: number): { fc: FcFn; heap: Float32Array } {
  const fma = usesFma();
  if (own === null || own.fma !== fma) {
    const mem = newMemory(bytes);
    own = { mem, fma, fc: new wasm!.Instance(new wasm!.Module(fcModule(fma, false)), { env: { mem } }).exports.fc as FcFn };
  }
  growTo(own.mem, bytes);
  return { fc: own.fc, heap: new Float32Array(own.mem.buffer) };
}
