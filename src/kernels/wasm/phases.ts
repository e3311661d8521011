// The kernels of the strided convolutions' input gradient by stride phases (conv2d/phases.ts): the direct
// convolution and its padding (wasm/direct.ts's `conv` and `pad`, built into this module too); `copy`, a strided
// copy of float32 values that moves one stride phase of dx between the image and the phase's own rows; and `split2` /
// `merge2`, the same for the two column phases of a stride of 2 at once, four columns of each per pair of vectors.

import { block, br, br_if, encodeModule, f32, f32x4, forLoop, i32, if_, local, Locals, loop, v128, ValType, type Expr, type Func } from './encoder.js';
import { DIRECT_R, DIRECT_V, directFunc, padFunc, type DirectFn, type PadFn } from './direct.js';
import { growTo, newMemory, overResident, usesFma, wasm, type WasmMemory } from './features.js';

const { i32: I32 } = ValType;

/**
 * `copy(src, srcCh, srcRow, srcCol, dst, dstCh, dstRow, dstCol, ch, rows, cols)`: for c < ch, r < rows, q < cols,
 * the float32 at dst + c·dstCh + r·dstRow + q·dstCol = the one at src + c·srcCh + r·srcRow + q·srcCol (byte strides).
 */
export function copyFunc(): Func {
  const [src, srcCh, srcRow, srcCol, dst, dstCh, dstRow, dstCol, ch, rows, cols] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  const L = new Locals(11);
  const c = L.add(I32), r = L.add(I32), q = L.add(I32), s = L.add(I32), d = L.add(I32);
  const get = local.get;
  return {
    name: 'copy',
    params: new Array<ValType>(11).fill(I32),
    results: [],
    locals: L.types,
    body: [
      forLoop(c, i32.const(0), get(ch), 1,
        forLoop(r, i32.const(0), get(rows), 1,
          local.set(s, i32.add(i32.add(get(src), i32.mul(get(c), get(srcCh))), i32.mul(get(r), get(srcRow)))),
          local.set(d, i32.add(i32.add(get(dst), i32.mul(get(c), get(dstCh))), i32.mul(get(r), get(dstRow)))),
          forLoop(q, i32.const(0), get(cols), 1,
            f32.store(get(d), f32.load(get(s))),
            local.set(s, i32.add(get(s), get(srcCol))),
            local.set(d, i32.add(get(d), get(dstCol)))))),
    ],
  };
}

/**
 * `split2(src, srcCh, srcRow, d0, ch0, row0, d1, ch1, row1, ch, rows, n0, n1)` (merge = 0), or the reverse (merge = 1,
 * `merge2`): for c < ch and r < rows, the float32 row at src + c·srcCh + r·srcRow ↔ its even columns (n0 of them) at
 * d0 + c·ch0 + r·row0 and its odd columns (n1) at d1 + c·ch1 + r·row1. Whole vectors while both have four left.
 */
export function split2Func(merge: boolean): Func {
  const [src, srcCh, srcRow, d0, ch0, row0, d1, ch1, row1, ch, rows, n0, n1] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
  const L = new Locals(13);
  const c = L.add(I32), r = L.add(I32), u = L.add(I32), s = L.add(I32), a = L.add(I32), b = L.add(I32), nv = L.add(I32);
  const x = L.add(ValType.v128), y = L.add(ValType.v128);
  const get = local.get;
  const at = (base: number, step: number, i: number): Expr => i32.add(get(base), i32.shl(get(i), i32.const(step)));
  const vec: Expr[] = merge
    ? [
      local.set(x, v128.load(get(a))), local.set(y, v128.load(get(b))),
      v128.store(get(s), f32x4.shuffle(get(x), get(y), [0, 4, 1, 5])),
      v128.store(get(s), f32x4.shuffle(get(x), get(y), [2, 6, 3, 7]), 16),
    ]
    : [
      local.set(x, v128.load(get(s))), local.set(y, v128.load(get(s), 16)),
      v128.store(get(a), f32x4.shuffle(get(x), get(y), [0, 2, 4, 6])),
      v128.store(get(b), f32x4.shuffle(get(x), get(y), [1, 3, 5, 7])),
    ];
  // The columns after the whole vectors: u from nv to n0 (even) and to n1 (odd).
  const tail = (d: number, n: number, odd: number): Expr => forLoop(u, get(nv), get(n), 1, merge
    ? f32.store(at(s, 3, u), f32.load(at(d, 2, u)), 4 * odd)
    : f32.store(at(d, 2, u), f32.load(at(s, 3, u), 4 * odd)));
  return {
    name: merge ? 'merge2' : 'split2',
    params: new Array<ValType>(13).fill(I32),
    results: [],
    locals: L.types,
    body: [
      // nv: the columns of each covered by whole vectors, min(n0, n1) rounded down to a multiple of 4.
      local.set(nv, get(n1)),
      if_(i32.gt_s(get(nv), get(n0)), [local.set(nv, get(n0))]),
      local.set(nv, i32.and(get(nv), i32.const(-4))),
      forLoop(c, i32.const(0), get(ch), 1,
        forLoop(r, i32.const(0), get(rows), 1,
          local.set(s, i32.add(i32.add(get(src), i32.mul(get(c), get(srcCh))), i32.mul(get(r), get(srcRow)))),
          local.set(a, i32.add(i32.add(get(d0), i32.mul(get(c), get(ch0))), i32.mul(get(r), get(row0)))),
          local.set(b, i32.add(i32.add(get(d1), i32.mul(get(c), get(ch1))), i32.mul(get(r), get(row1)))),
          tail(a, n0, 0), tail(b, n1, 1),
          local.set(u, i32.const(0)),
          block(loop(
            br_if(1, i32.ge_s(get(u), get(nv))),
            ...vec,
            local.set(s, i32.add(get(s), i32.const(32))),
            local.set(a, i32.add(get(a), i32.const(16))),
            local.set(b, i32.add(get(b), i32.const(16))),
            local.set(u, i32.add(get(u), i32.const(4))),
            br(0))))),
    ],
  };
}

// ---- the per-thread instance ------------------------------------------------------------------------------------

export type Split2Fn = (
  src: number, srcCh: number, srcRow: number, d0: number, ch0: number, row0: number, d1: number, ch1: number, row1: number,
  ch: number, rows: number, n0: number, n1: number,
) => void;

export type CopyFn = (
  src: number, srcCh: number, srcRow: number, srcCol: number, dst: number, dstCh: number, dstRow: number, dstCol: number,
  ch: number, rows: number, cols: number,
) => void;

/** This thread's phase kernels over their own memory, with float32/int32 views of it. */
export interface SimdPhases {
  conv: DirectFn;
  pad: PadFn;
  copy: CopyFn;
  split2: Split2Fn;
  merge2: Split2Fn;
  f: Float32Array;
  i: Int32Array;
}

let current: SimdPhases | null = null;
let memory: WasmMemory | null = null;
let builtFma: boolean | null = null;

/** The module's bytes: `conv`, `pad`, `copy`, `split2`, `merge2`, importing env.mem (shared: the resident memory). */
function phasesModule(fma: boolean, shared = false): Uint8Array {
  return encodeModule([directFunc(DIRECT_R, DIRECT_V, fma), padFunc(), copyFunc(), split2Func(false), split2Func(true)], 1, shared);
}

type PhaseFns = Omit<SimdPhases, 'f' | 'i'>;

const pickPhases = (e: Record<string, unknown>): PhaseFns => ({
  conv: e.conv as DirectFn, pad: e.pad as PadFn, copy: e.copy as CopyFn, split2: e.split2 as Split2Fn, merge2: e.merge2 as Split2Fn,
});

/** This thread's phase kernels with a memory of at least `bytes` bytes (grown when needed; views renewed). */
export function simdPhases(bytes: number): SimdPhases {
  const fma = usesFma();
  if (current === null || builtFma !== fma) {
    if (memory === null) memory = newMemory(bytes);
    const e = new wasm!.Instance(new wasm!.Module(phasesModule(fma)), { env: { mem: memory } }).exports;
    current = { ...pickPhases(e), f: new Float32Array(memory.buffer), i: new Int32Array(memory.buffer) };
    builtFma = fma;
  }
  if (growTo(memory!, bytes)) {
    current = { ...current, f: new Float32Array(memory!.buffer), i: new Int32Array(memory!.buffer) };
  }
  return current;
}

/**
 * This thread's phase kernels over the resident memory `r` (wasm/optim.ts), where a training step's tensors lie
 * (conv2d/phases.ts runs on them in place).
 */
export const residentPhases = overResident(phasesModule, pickPhases);
