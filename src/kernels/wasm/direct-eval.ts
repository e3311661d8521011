// The direct convolution's inference form, in WebAssembly SIMD (emitted when the library loads, see encoder.ts): the
// fused forward (conv + folded batch norm, residual, ReLU) of direct.ts's shapes, all in float32. It reads the same
// memory as direct.ts's `conv` (the padded stride-phase planes, the packed weights, the tap table; see there) and
// writes the same output rows, but per output element
//   y = relu?( round_f32( round_f32(Σ·scale) + shift ) (+ res, rounded) )
// with Σ one float32 running sum over every (ci, tap) in row-major order: no float64 partial sums, no flushes, and the
// epilogue on the accumulators in registers. The order is a function of the shape alone, so any split of the output
// over rows or threads gives the same bits. The training forward keeps direct.ts's float64 sums (numerics.test.ts);
// this path is tested against float64 references like the other fused kernels.
//
// `conv32(xp, rowStep, chx, cin, taps, tab, wp, oy0, oy1, tiles, ow, out, outCh, tmp, flags, scale, shift)`:
// arguments as `conv`'s; scale and shift: R float32 each (the tile's channels, bias folded into shift); flags
// OUT_RES (the output rows hold the residual before the call) and OUT_RELU; tmp: 16·R·V bytes of scratch for a
// partial last tile (its vectors stored there, then copied value by value).

import {
  block, br, br_if, f32, f32x4, forLoop, i32, if_, local, Locals, loop, v128, ValType, type Expr, type Func,
} from './encoder.js';
import { OUT_RELU, OUT_RES } from './winograd.js';

const { i32: I32, v128: V128 } = ValType;

/** `conv32` with tiles of r channels × v vectors (direct.ts's DIRECT_R × DIRECT_V: the same packed weights). */
export function directEvalFunc(r: number, v: number, fma: boolean): Func {
  const [xp, rowStep, chx, cin, taps, tab, wp, oy0, oy1, tiles, ow, out, outCh, tmp, flags, scale, shift] =
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];
  const L = new Locals(17);
  const oy = L.add(I32), jt = L.add(I32), ci = L.add(I32), cb = L.add(I32), wq = L.add(I32), addr = L.add(I32);
  const outRow = L.add(I32), nv = L.add(I32), j = L.add(I32), t = L.add(I32), tabEnd = L.add(I32);
  const accs = L.addMany(V128, r * v), inp = L.addMany(V128, v), sw = L.add(V128), sh = L.add(V128);
  const get = local.get;
  const cols = 4 * v;

  const tapCode = (first: boolean): Expr[] => directTap({ addr, cb, t, wq, sw, inp, accs }, r, v, fma, first);
  const tap = tapCode(false);
  const sums: Expr[] = [
    // Channel 0's first tap sets the accumulators; then its other taps, then channels 1 … cin − 1.
    local.set(t, get(tab)),
    ...tapCode(true),
    block(loop(br_if(1, i32.ge_s(get(t), get(tabEnd))), ...tap, br(0))),
    local.set(cb, i32.add(get(cb), get(chx))),
    forLoop(ci, i32.const(1), get(cin), 1,
      local.set(t, get(tab)),
      loop(...tap, br_if(0, i32.lt_s(get(t), get(tabEnd)))),
      local.set(cb, i32.add(get(cb), get(chx)))),
  ];

  // The epilogue of accumulator (i, e) into inp[0], for one combination of flags (res, relu); the residual's vector
  // at addr + 16e (read past ow in a partial tile: those lanes are never stored).
  const epVector = (i: number, e: number, res: boolean, relu: boolean): Expr[] => {
    const code: Expr[] = [local.set(inp[0]!, f32x4.add(f32x4.mul(get(accs[i * v + e]!), get(sw)), get(sh)))];
    if (res) code.push(local.set(inp[0]!, f32x4.add(get(inp[0]!), v128.load(get(addr), 16 * e))));
    // ReLU: pmax(v, 0) keeps v unless v < 0 (NaN too); + 0 turns −0 into +0 (reluLanes' values, in 2 instructions).
    if (relu) code.push(local.set(inp[0]!, f32x4.add(f32x4.pmax(get(inp[0]!), v128.zero()), v128.zero())));
    return code;
  };
  const chAddr = (i: number): Expr => local.set(addr, i32.add(get(outRow), i32.mul(get(outCh), i32.const(i))));
  const chEp = (i: number): Expr[] => [
    local.set(sw, v128.load32_splat(get(scale), 4 * i)),
    local.set(sh, v128.load32_splat(get(shift), 4 * i)),
  ];
  /** The tile's stores: whole tiles straight to the output rows, a partial one through tmp, value by value. */
  const store = (res: boolean, relu: boolean): Expr => {
    const full: Expr[] = [], part: Expr[] = [];
    for (let i = 0; i < r; i++) {
      full.push(chAddr(i), ...chEp(i));
      part.push(chAddr(i), ...chEp(i));
      for (let e = 0; e < v; e++) {
        full.push(...epVector(i, e, res, relu), v128.store(get(addr), get(inp[0]!), 16 * e));
        part.push(...epVector(i, e, res, relu), v128.store(get(tmp), get(inp[0]!), 16 * (i * v + e)));
      }
      part.push(forLoop(j, i32.const(0), get(nv), 1,
        f32.store(i32.add(get(addr), i32.shl(get(j), i32.const(2))), f32.load(i32.add(get(tmp), i32.shl(get(j), i32.const(2))), 16 * i * v))));
    }
    return if_(i32.ge_s(get(nv), i32.const(cols)), full, part);
  };
  const hasRes = i32.and(get(flags), i32.const(OUT_RES)), hasRelu = i32.and(get(flags), i32.const(OUT_RELU));
  return {
    name: 'conv32',
    params: new Array<ValType>(17).fill(I32),
    results: [],
    locals: L.types,
    body: directTiles({ xp, rowStep, taps, tab, wp, oy0, oy1, tiles, ow, out, oy, jt, outRow, wq, cb, nv, tabEnd }, v, [
      ...sums,
      if_(hasRes, [if_(hasRelu, [store(true, true)], [store(true, false)])], [if_(hasRelu, [store(false, true)], [store(false, false)])]),
    ]),
  };
}

/** The parameters and locals of a direct kernel's walk over its output tiles (see directTiles). */
export interface DirectTileRegs {
  xp: number; rowStep: number; taps: number; tab: number; wp: number; oy0: number; oy1: number; tiles: number;
  ow: number; out: number; oy: number; jt: number; outRow: number; wq: number; cb: number; nv: number; tabEnd: number;
}

/**
 * A direct kernel's walk over its output tiles (`conv`, `conv32`): tabEnd at the tap table's end; then for each
 * output row oy in [oy0, oy1) and tile jt, outRow (output row oy − oy0, columns from jt·4V), wq (the packed
 * weights' start), cb (input rows from oy·rowStep, columns from jt·4V) and nv (the row's columns from the tile on)
 * are set before `body`.
 */
export function directTiles(g: DirectTileRegs, v: number, body: Expr[]): Expr[] {
  const get = local.get, cols = 4 * v;
  return [
    local.set(g.tabEnd, i32.add(get(g.tab), i32.shl(get(g.taps), i32.const(2)))),
    forLoop(g.oy, get(g.oy0), get(g.oy1), 1,
      forLoop(g.jt, i32.const(0), get(g.tiles), 1,
        local.set(g.outRow, i32.add(get(g.out), i32.shl(i32.add(i32.mul(i32.sub(get(g.oy), get(g.oy0)), get(g.ow)), i32.mul(get(g.jt), i32.const(cols))), i32.const(2)))),
        local.set(g.wq, get(g.wp)),
        local.set(g.cb, i32.add(get(g.xp), i32.add(i32.mul(get(g.oy), get(g.rowStep)), i32.mul(get(g.jt), i32.const(16 * v))))),
        local.set(g.nv, i32.sub(get(g.ow), i32.mul(get(g.jt), i32.const(cols)))),
        ...body)),
  ];
}

/** The locals a direct kernel's tap reads and writes (see directTap). */
export interface DirectTapRegs {
  addr: number; cb: number; t: number; wq: number; sw: number; inp: number[]; accs: number[];
}

/**
 * One tap of one input channel, for `conv` (direct.ts) and `conv32`: its byte offset from the table at t (added to
 * the channel's base cb), v input vectors, r weight splats from wq, r·v multiply-adds into accs; then wq and t
 * step on. One tap per loop iteration: TurboFan schedules a loop body as a whole, and with all 9 taps of a channel
 * unrolled it hoisted every load and spilled (21 GFLOP/s against 50 for sgemm's 4×8 tile on the same core, one
 * kernel row per iteration: 28). first: the block's first tap sets the accumulators (no zeroing, no add: 4% on
 * CIFAR's stride-2 convs).
 */
export function directTap(g: DirectTapRegs, r: number, v: number, fma: boolean, first: boolean): Expr[] {
  const get = local.get;
  const madd = (a: Expr, b: Expr, c: Expr): Expr => (fma ? f32x4.relaxed_madd(a, b, c) : f32x4.add(c, f32x4.mul(a, b)));
  const code: Expr[] = [local.set(g.addr, i32.add(get(g.cb), i32.load(get(g.t))))];
  for (let e = 0; e < v; e++) code.push(local.set(g.inp[e]!, v128.load(get(g.addr), 16 * e)));
  for (let i = 0; i < r; i++) {
    code.push(local.set(g.sw, v128.load32_splat(get(g.wq), 4 * i)));
    for (let e = 0; e < v; e++) {
      const a = g.accs[i * v + e]!;
      code.push(local.set(a, first ? f32x4.mul(get(g.sw), get(g.inp[e]!)) : madd(get(g.sw), get(g.inp[e]!), get(a))));
    }
  }
  code.push(local.set(g.wq, i32.add(get(g.wq), i32.const(4 * r))), local.set(g.t, i32.add(get(g.t), i32.const(4))));
  return code;
}
