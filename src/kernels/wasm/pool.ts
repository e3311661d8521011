// 3×3 stride-2 max pooling without the argmax (ResNet's stem pooling, in inference) in WebAssembly SIMD, emitted from
// this file when the library loads (see encoder.ts), over one thread's SIMD GEMM memory (sgemm.ts).
//
// Four outputs of a row at a time: the eight input values from the first window's left column on, as two vectors,
// give by shuffles the windows' left columns (lanes 0, 2, 4, 6), middle columns (1, 3, 5, 7) and, with the ninth
// value, right columns. The nine columns × rows are folded in row-major order with kernels/pool.ts's scan:
//   best = v where v > best or v is NaN, else best
// as bitselect(v, pmax(best, v), v ≠ v): pmax(best, v) = best < v ? v : best is the scan's choice whenever v is not
// NaN (a NaN best stays), and bitselect takes v where v is NaN. Every output is one of its inputs' bit patterns,
// the one the scan picks (ties: the first; NaNs: the last), so the values are the JavaScript kernel's bits.

import { f32x4, forLoop, i32, local, Locals, v128, ValType, type Expr, type Func } from './encoder.js';
import { overGemmMemory } from './sgemm.js';

const { i32: I32, v128: V128 } = ValType;
const get = local.get;

/**
 * max3s2(src, w, dst, ow, rows, n4): for r < rows and k < n4, output row r (at dst + r·ow·4 bytes) values 4k … 4k + 3
 * are the maxima of the 3×3 windows whose top-left corners are input row 2r (at src + 2r·w·4 bytes), columns 8k + 2l
 * (lane l). Reads exactly those windows' values.
 */
function max3s2Func(): Func {
  const [src, w, dst, ow, rows, n4] = [0, 1, 2, 3, 4, 5];
  const L = new Locals(6);
  const r = L.add(I32), k = L.add(I32), s = L.add(I32), d = L.add(I32), p = L.add(I32), rowB = L.add(I32);
  const v0 = L.add(V128), v1 = L.add(V128), a = L.add(V128), t = L.add(V128), best = L.add(V128);
  const fold = (e: Expr): Expr[] => [
    local.set(t, e),
    local.set(best, v128.bitselect(get(t), f32x4.pmax(get(best), get(t)), f32x4.ne(get(t), get(t)))),
  ];
  const row = (j: number): Expr[] => {
    const at = j === 0 ? get(s) : i32.add(get(s), i32.mul(get(rowB), i32.const(j)));
    return [
      local.set(p, at),
      local.set(v0, v128.load(get(p))),
      local.set(v1, v128.load(get(p), 16)),
      local.set(a, f32x4.shuffle(get(v0), get(v1), [0, 2, 4, 6])),
      ...(j === 0 ? [local.set(best, get(a))] : fold(get(a))),
      ...fold(f32x4.shuffle(get(v0), get(v1), [1, 3, 5, 7])),
      ...fold(f32x4.shuffle(get(a), v128.load32_zero(get(p), 32), [1, 2, 3, 4])),
    ];
  };
  return {
    name: 'max3s2', params: [I32, I32, I32, I32, I32, I32], results: [], locals: L.types,
    body: [
      local.set(rowB, i32.shl(get(w), i32.const(2))),
      forLoop(r, i32.const(0), get(rows), 1,
        local.set(s, i32.add(get(src), i32.mul(get(r), i32.shl(get(rowB), i32.const(1))))),
        local.set(d, i32.add(get(dst), i32.mul(get(r), i32.shl(get(ow), i32.const(2))))),
        forLoop(k, i32.const(0), get(n4), 1,
          ...row(0), ...row(1), ...row(2),
          v128.store(get(d), get(best)),
          local.set(s, i32.add(get(s), i32.const(32))),
          local.set(d, i32.add(get(d), i32.const(16))),
        ),
      ),
    ],
  };
}

type Max3s2Fn = (src: number, w: number, dst: number, ow: number, rows: number, n4: number) => void;

/** This thread's pooling kernel over its SIMD GEMM memory (call simdGemm first, which sizes that memory). */
export const simdPool = overGemmMemory(() => [max3s2Func()], (e) => e.max3s2 as Max3s2Fn);
