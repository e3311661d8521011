// The im2col packing of the GEMM's B panels in WebAssembly SIMD, over the memory of the thread's SIMD GEMM (sgemm.ts):
// the convolution's input rows are copied in and padded once into stride-phase planes (direct.ts's `pad`), so that
// every window lies inside them, and `im2col` packs the 8-column panels from there. No bounds checks per value,
// and a panel of 8 output positions in one output row is two v128 loads per row of col (for any stride: plane
// kx mod s holds the columns that tap kx reads, consecutive for consecutive output columns).
//
// `im2col(base, rowStep, tab, kl, ox0, nc, ow, dst)`: the panels of col rows q < kl (tab: kl byte offsets, one per
// row, of its channel's plane and tap from a window's base) for nc output positions from (row 0, column ox0): a
// position's base is base + oy·rowStep + ox·4 (oy from 0, the planes' first output row). Layout of gemm.ts's B
// panels: dst + 4·(jr·kl + 8q + t) = col row q, position jr + t (t < 8; zeros past nc).

import { f32, forLoop, i32, if_, local, Locals, v128, ValType, block, loop, br, br_if, type Func } from './encoder.js';
import { padFunc, type PadFn } from './direct.js';
import { overGemmMemory } from './sgemm.js';

const { i32: I32 } = ValType;

export function im2colFunc(): Func {
  const [base, rowStep, tab, kl, ox0, nc, ow, dst] = [0, 1, 2, 3, 4, 5, 6, 7];
  const L = new Locals(8);
  const jr = L.add(I32), oy = L.add(I32), ox = L.add(I32), d = L.add(I32), b = L.add(I32), q = L.add(I32), tq = L.add(I32);
  const t = L.add(I32), oyt = L.add(I32), oxt = L.add(I32), dd = L.add(I32), w8 = L.add(I32);
  const get = local.get;
  return {
    name: 'im2col',
    params: new Array<ValType>(8).fill(I32),
    results: [],
    locals: L.types,
    body: [
      local.set(oy, i32.const(0)),
      local.set(ox, get(ox0)),
      local.set(d, get(dst)),
      forLoop(jr, i32.const(0), get(nc), 8,
        local.set(w8, i32.sub(get(nc), get(jr))),
        if_(i32.gt_s(get(w8), i32.const(8)), [local.set(w8, i32.const(8))]),
        if_(i32.and(i32.eq(get(w8), i32.const(8)), i32.le_s(i32.add(get(ox), i32.const(8)), get(ow))), [
          // Eight positions in one output row: consecutive plane columns.
          local.set(b, i32.add(i32.add(get(base), i32.mul(get(oy), get(rowStep))), i32.shl(get(ox), i32.const(2)))),
          local.set(tq, get(tab)),
          forLoop(q, i32.const(0), get(kl), 1,
            local.set(dd, i32.add(get(b), i32.load(get(tq)))),
            v128.store(get(d), v128.load(get(dd))),
            v128.store(get(d), v128.load(get(dd), 16), 16),
            local.set(tq, i32.add(get(tq), i32.const(4))),
            local.set(d, i32.add(get(d), i32.const(32)))),
        ], [
          // Positions across a row end, or fewer than 8: value by value (zeros past nc).
          local.set(oyt, get(oy)),
          local.set(oxt, get(ox)),
          forLoop(t, i32.const(0), i32.const(8), 1,
            local.set(dd, i32.add(get(d), i32.shl(get(t), i32.const(2)))),
            if_(i32.lt_s(get(t), get(w8)), [
              local.set(b, i32.add(i32.add(get(base), i32.mul(get(oyt), get(rowStep))), i32.shl(get(oxt), i32.const(2)))),
              local.set(tq, get(tab)),
              forLoop(q, i32.const(0), get(kl), 1,
                f32.store(get(dd), f32.load(i32.add(get(b), i32.load(get(tq))))),
                local.set(tq, i32.add(get(tq), i32.const(4))),
                local.set(dd, i32.add(get(dd), i32.const(32)))),
              local.set(oxt, i32.add(get(oxt), i32.const(1))),
              if_(i32.eq(get(oxt), get(ow)), [local.set(oxt, i32.const(0)), local.set(oyt, i32.add(get(oyt), i32.const(1)))]),
            ], [
              forLoop(q, i32.const(0), get(kl), 1,
                f32.store(get(dd), f32.const(0)),
                local.set(dd, i32.add(get(dd), i32.const(32)))),
            ])),
          local.set(d, i32.add(get(d), i32.shl(get(kl), i32.const(5)))),
        ]),
        // The next panel's first position.
        local.set(ox, i32.add(get(ox), i32.const(8))),
        block(loop(
          br_if(1, i32.lt_s(get(ox), get(ow))),
          local.set(ox, i32.sub(get(ox), get(ow))),
          local.set(oy, i32.add(get(oy), i32.const(1))),
          br(0)))),
    ],
  };
}

export type Im2colFn = (base: number, rowStep: number, tab: number, kl: number, ox0: number, nc: number, ow: number, dst: number) => void;

export interface SimdIm2col {
  pad: PadFn;
  im2col: Im2colFn;
}

/** This thread's packing over the memory of its SIMD GEMM (call simdGemm first, which sizes that memory). */
export const simdIm2col = overGemmMemory(() => [padFunc(), im2colFunc()], (e): SimdIm2col => ({ pad: e.pad as PadFn, im2col: e.im2col as Im2colFn }));
