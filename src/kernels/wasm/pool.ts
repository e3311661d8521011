// 3×3 stride-2 max pooling (ResNet's stem pooling) in WebAssembly SIMD, emitted from this file when the library loads
// (see encoder.ts), over one thread's SIMD GEMM memory (sgemm.ts): values only (inference), or values and argmax
// (training).
//
// Four outputs of a row at a time: the eight input values from the first window's left column on, as two vectors,
// give by shuffles the windows' left columns (lanes 0, 2, 4, 6), middle columns (1, 3, 5, 7) and, with the ninth
// value, right columns. The nine columns × rows are folded in row-major order with kernels/pool.ts's scan:
//   best = v where v > best or v is NaN, else best
// as bitselect(v, pmax(best, v), v ≠ v): pmax(best, v) = best < v ? v : best is the scan's choice whenever v is not
// NaN (a NaN best stays), and bitselect takes v where v is NaN. Every output is one of its inputs' bit patterns,
// the one the scan picks (ties: the first; NaNs: the last), so the values are the JavaScript kernel's bits.
// With the argmax: the scan's test itself, m = (v > best) | (v ≠ v), then best = bitselect(v, best, m) and
// index = bitselect(v's index, index, m), the index vectors counted up from the window's first one (i32x4 lanes).

import { f32x4, forLoop, i32, i32x4, local, Locals, v128, ValType, type Expr, type Func } from './encoder.js';
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

/**
 * max3s2i(src, w, dst, idst, ow, rows, n4, base): max3s2 that also stores each output's argmax (int32, at idst +
 * r·ow·4 bytes for output row r): the flat index in the plane of the value it picked, where the first window's
 * top-left value has index `base` (so output row r, lane l of vector k picked from the window with top-left index
 * base + 2r·w + 8k + 2l).
 */
function max3s2iFunc(): Func {
  const [src, w, dst, idst, ow, rows, n4, base] = [0, 1, 2, 3, 4, 5, 6, 7];
  const L = new Locals(8);
  const r = L.add(I32), k = L.add(I32), s = L.add(I32), d = L.add(I32), e = L.add(I32), p = L.add(I32), rowB = L.add(I32);
  const v0 = L.add(V128), v1 = L.add(V128), a = L.add(V128), t = L.add(V128), best = L.add(V128), m = L.add(V128);
  const idx = L.add(V128), ir = L.add(V128), i0 = L.add(V128), wv = L.add(V128);
  // Folds value t (index ix) into best / idx with the scan's test.
  const fold = (e: Expr, ix: Expr): Expr[] => [
    local.set(t, e),
    local.set(m, v128.or(f32x4.gt(get(t), get(best)), f32x4.ne(get(t), get(t)))),
    local.set(best, v128.bitselect(get(t), get(best), get(m))),
    local.set(idx, v128.bitselect(ix, get(idx), get(m))),
  ];
  const plus = (v: Expr, c: number): Expr => (c === 0 ? v : i32x4.add(v, i32x4.const([c, c, c, c])));
  const row = (j: number): Expr[] => {
    const at = j === 0 ? get(s) : i32.add(get(s), i32.mul(get(rowB), i32.const(j)));
    return [
      local.set(p, at),
      // the windows' indices in this row: ir = i0 + j·w
      local.set(ir, j === 0 ? get(i0) : i32x4.add(get(i0), j === 1 ? get(wv) : i32x4.add(get(wv), get(wv)))),
      local.set(v0, v128.load(get(p))),
      local.set(v1, v128.load(get(p), 16)),
      local.set(a, f32x4.shuffle(get(v0), get(v1), [0, 2, 4, 6])),
      ...(j === 0 ? [local.set(best, get(a)), local.set(idx, get(ir))] : fold(get(a), get(ir))),
      ...fold(f32x4.shuffle(get(v0), get(v1), [1, 3, 5, 7]), plus(get(ir), 1)),
      ...fold(f32x4.shuffle(get(a), v128.load32_zero(get(p), 32), [1, 2, 3, 4]), plus(get(ir), 2)),
    ];
  };
  return {
    name: 'max3s2i', params: [I32, I32, I32, I32, I32, I32, I32, I32], results: [], locals: L.types,
    body: [
      local.set(rowB, i32.shl(get(w), i32.const(2))),
      local.set(wv, i32x4.splat(get(w))),
      forLoop(r, i32.const(0), get(rows), 1,
        local.set(s, i32.add(get(src), i32.mul(get(r), i32.shl(get(rowB), i32.const(1))))),
        local.set(d, i32.add(get(dst), i32.mul(get(r), i32.shl(get(ow), i32.const(2))))),
        local.set(e, i32.add(get(idst), i32.mul(get(r), i32.shl(get(ow), i32.const(2))))),
        // base + 2r·w + (0, 2, 4, 6)
        local.set(i0, i32x4.add(i32x4.splat(i32.add(get(base), i32.mul(get(r), i32.shl(get(w), i32.const(1))))), i32x4.const([0, 2, 4, 6]))),
        forLoop(k, i32.const(0), get(n4), 1,
          ...row(0), ...row(1), ...row(2),
          v128.store(get(d), get(best)),
          v128.store(get(e), get(idx)),
          local.set(s, i32.add(get(s), i32.const(32))),
          local.set(d, i32.add(get(d), i32.const(16))),
          local.set(e, i32.add(get(e), i32.const(16))),
          local.set(i0, i32x4.add(get(i0), i32x4.const([8, 8, 8, 8]))),
        ),
      ),
    ],
  };
}

type Max3s2Fn = (src: number, w: number, dst: number, ow: number, rows: number, n4: number) => void;
type Max3s2iFn = (src: number, w: number, dst: number, idst: number, ow: number, rows: number, n4: number, base: number) => void;

/** This thread's pooling kernels over its SIMD GEMM memory (call simdGemm first, which sizes that memory). */
export const simdPool = overGemmMemory(() => [max3s2Func()], (e) => e.max3s2 as Max3s2Fn);
export const simdPoolArgmax = overGemmMemory(() => [max3s2iFunc()], (e) => e.max3s2i as Max3s2iFn);
