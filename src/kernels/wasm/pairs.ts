// The unit-map convolutions' B panels (conv2d/unit-map.ts) gathered in WebAssembly, over the memory of the thread's
// SIMD GEMM (sgemm.ts): the rows of w that a packing needs are copied there first, and `gather` packs 8-column
// panels from that copy through a table of byte offsets (the dense map's taps), 32-bit copies (the same bits).
//
// `gather(src, tab, period, r0, kl, rowStep, panels, panelStep, dst)`: for each of `panels` panels (the p-th reads
// from src + p·panelStep) and each of its kl rows, the 8 values at base + tab[r·8 + j] (j < 8, bytes), r running
// from r0 through period − 1 and again from 0, base moving on by rowStep each time r wraps. Layout of gemm.ts's B
// panels: dst + 4·(p·8·kl + 8k + j) = panel p's row k, column j.

import { forLoop, i32, if_, local, Locals, ValType, type Func } from './encoder.js';
import { overGemmMemory } from './sgemm.js';

const { i32: I32 } = ValType;

export function gatherFunc(): Func {
  const [src, tab, period, r0, kl, rowStep, panels, panelStep, dst] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const L = new Locals(9);
  const pn = L.add(I32), k = L.add(I32), base = L.add(I32), r = L.add(I32), t = L.add(I32), d = L.add(I32), pb = L.add(I32);
  const get = local.get;
  const copies = [];
  for (let j = 0; j < 8; j++) copies.push(i32.store(get(d), i32.load(i32.add(get(base), i32.load(get(t), 4 * j))), 4 * j));
  return {
    name: 'gather',
    params: new Array<ValType>(9).fill(I32),
    results: [],
    locals: L.types,
    body: [
      local.set(d, get(dst)),
      local.set(pb, get(src)),
      forLoop(pn, i32.const(0), get(panels), 1,
        local.set(base, get(pb)),
        local.set(r, get(r0)),
        local.set(t, i32.add(get(tab), i32.shl(get(r0), i32.const(5)))),
        forLoop(k, i32.const(0), get(kl), 1,
          ...copies,
          local.set(d, i32.add(get(d), i32.const(32))),
          local.set(t, i32.add(get(t), i32.const(32))),
          local.set(r, i32.add(get(r), i32.const(1))),
          if_(i32.eq(get(r), get(period)), [
            local.set(r, i32.const(0)),
            local.set(t, get(tab)),
            local.set(base, i32.add(get(base), get(rowStep))),
          ])),
        local.set(pb, i32.add(get(pb), get(panelStep)))),
    ],
  };
}

export type GatherFn = (src: number, tab: number, period: number, r0: number, kl: number, rowStep: number, panels: number, panelStep: number, dst: number) => void;

/** This thread's `gather` over the memory of its SIMD GEMM (call simdGemm first, which sizes that memory). */
export const simdGather = overGemmMemory(() => [gatherFunc()], (e) => e.gather as GatherFn);
