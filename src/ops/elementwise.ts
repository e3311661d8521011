import { defineOp, type Ctx } from '../autograd.js';
import { underName, ValueError } from '../errors.js';
import { addForward, reluBackward, reluForward } from '../kernels/elementwise.js';
import { alloc, broadcastShape, checkShape, fmt, sameShape } from '../shape.js';
import { Tensor, asTensor, type TensorLike } from '../tensor.js';
import { expand } from './movement.js';
import { gradBuffer } from '../fusion/arena.js';

/**
 * Elementwise ops. Binary ops broadcast through one place, `broadcastPair`, which expands both operands to the
 * common shape; the only code that sums gradients over broadcast axes is expand's backward. A plain-number second
 * operand takes a scalar op instead (no full-size temporary).
 */

/** Expands a and b to their broadcast shape (no-op for operands already of that shape). */
export function broadcastPair(op: string, a: TensorLike, b: TensorLike): [Tensor, Tensor] {
  const ta = asTensor(a, op, 'input');
  const tb = asTensor(b, op, 'other');
  if (sameShape(ta.shape, tb.shape)) return [ta, tb];
  const shape = broadcastShape(op, ta.shape, tb.shape);
  checkShape(op, shape, `a ${fmt(ta.shape)}, b ${fmt(tb.shape)}`);
  return underName(op, () => [sameShape(ta.shape, shape) ? ta : expand(ta, shape), sameShape(tb.shape, shape) ? tb : expand(tb, shape)], () => `a ${fmt(ta.shape)}, b ${fmt(tb.shape)}`);
}

const like = (x: Tensor): Tensor => new Tensor(alloc('elementwise', x.size), x.shape);

// ---- same-shape binary primitives ----------------------------------------------------------------------------

const addSame = defineOp('add', {
  forward(_ctx, a: Tensor, b: Tensor) {
    const y = like(a);
    addForward(y.data, a.data, b.data);
    return y;
  },
  backward(_ctx, dy) {
    return [dy, dy];
  },
});

const subSame = defineOp('sub', {
  forward(_ctx, a: Tensor, b: Tensor) {
    const y = like(a), yd = y.data, ad = a.data, bd = b.data;
    for (let i = 0; i < yd.length; i++) yd[i] = ad[i]! - bd[i]!;
    return y;
  },
  backward(ctx, dy) {
    return [dy, ctx.needs[1] ? neg(dy) : null];
  },
});

const mulSame: (a: Tensor, b: Tensor) => Tensor = defineOp('mul', {
  forward(ctx: Ctx<object, [Tensor, Tensor]>, a: Tensor, b: Tensor) {
    ctx.save(a, b);
    const y = like(a), yd = y.data, ad = a.data, bd = b.data;
    for (let i = 0; i < yd.length; i++) yd[i] = ad[i]! * bd[i]!;
    return y;
  },
  backward(ctx, dy) {
    const [a, b] = ctx.saved;
    return [ctx.needs[0] ? mulSame(dy, b) : null, ctx.needs[1] ? mulSame(dy, a) : null];
  },
});

const divSame: (a: Tensor, b: Tensor) => Tensor = defineOp('div', {
  forward(ctx: Ctx<object, [Tensor, Tensor]>, a: Tensor, b: Tensor) {
    ctx.save(a, b);
    const y = like(a), yd = y.data, ad = a.data, bd = b.data;
    for (let i = 0; i < yd.length; i++) yd[i] = ad[i]! / bd[i]!;
    return y;
  },
  backward(ctx, dy) {
    const [a, b] = ctx.saved;
    // d(a/b)/da = 1/b ; d(a/b)/db = -a/b²
    const ga = ctx.needs[0] ? divSame(dy, b) : null;
    let gb: Tensor | null = null;
    if (ctx.needs[1]) {
      gb = like(b);
      const g = gb.data, d = dy.data, ad = a.data, bd = b.data;
      for (let i = 0; i < g.length; i++) g[i] = (-d[i]! * ad[i]!) / (bd[i]! * bd[i]!);
    }
    return [ga, gb];
  },
});

const powSame = defineOp('pow', {
  forward(ctx: Ctx<object, [Tensor, Tensor, Tensor]>, a: Tensor, b: Tensor) {
    const y = like(a), yd = y.data, ad = a.data, bd = b.data;
    for (let i = 0; i < yd.length; i++) yd[i] = Math.pow(ad[i]!, bd[i]!);
    ctx.save(a, b, y);
    return y;
  },
  backward(ctx, dy) {
    const [a, b, y] = ctx.saved;
    const d = dy.data, ad = a.data, bd = b.data, yd = y.data;
    let ga: Tensor | null = null;
    let gb: Tensor | null = null;
    if (ctx.needs[0]) {
      ga = like(a);
      const g = ga.data;
      // b·a^(b-1), and 0 where b == 0 (PyTorch's pow_backward masks it)
      for (let i = 0; i < g.length; i++) g[i] = bd[i] === 0 ? 0 : d[i]! * bd[i]! * Math.pow(ad[i]!, bd[i]! - 1);
    }
    if (ctx.needs[1]) {
      gb = like(b);
      const g = gb.data;
      // a^b·ln a, and 0 where a == 0 and b >= 0 (PyTorch's pow_backward_exponent)
      for (let i = 0; i < g.length; i++) g[i] = ad[i] === 0 && bd[i]! >= 0 ? 0 : d[i]! * yd[i]! * Math.log(ad[i]!);
    }
    return [ga, gb];
  },
});

/** maximum/minimum share a backward: the winner gets dy, a tie splits it in half (PyTorch's rule). */
function extremumBackward(ctx: Ctx<object, [Tensor, Tensor]>, dy: Tensor, sign: 1 | -1): [Tensor | null, Tensor | null] {
  const [a, b] = ctx.saved;
  const d = dy.data, ad = a.data, bd = b.data;
  const ga = ctx.needs[0] ? like(a) : null;
  const gb = ctx.needs[1] ? like(b) : null;
  for (let i = 0; i < d.length; i++) {
    const diff = sign * (ad[i]! - bd[i]!);
    const wa = diff > 0 ? 1 : diff === 0 ? 0.5 : 0;
    const wb = diff < 0 ? 1 : diff === 0 ? 0.5 : 0;
    if (ga) ga.data[i] = d[i]! * wa;
    if (gb) gb.data[i] = d[i]! * wb;
  }
  return [ga, gb];
}

const maximumSame = defineOp('maximum', {
  forward(ctx: Ctx<object, [Tensor, Tensor]>, a: Tensor, b: Tensor) {
    ctx.save(a, b);
    const y = like(a), yd = y.data, ad = a.data, bd = b.data;
    for (let i = 0; i < yd.length; i++) {
      const x = ad[i]!, z = bd[i]!;
      yd[i] = x !== x || z !== z ? NaN : x > z ? x : z;
    }
    return y;
  },
  backward: (ctx, dy) => extremumBackward(ctx, dy, 1),
});

const minimumSame = defineOp('minimum', {
  forward(ctx: Ctx<object, [Tensor, Tensor]>, a: Tensor, b: Tensor) {
    ctx.save(a, b);
    const y = like(a), yd = y.data, ad = a.data, bd = b.data;
    for (let i = 0; i < yd.length; i++) {
      const x = ad[i]!, z = bd[i]!;
      yd[i] = x !== x || z !== z ? NaN : x < z ? x : z;
    }
    return y;
  },
  backward: (ctx, dy) => extremumBackward(ctx, dy, -1),
});

// ---- scalar-operand primitives --------------------------------------------------------------------------------

const addScalar = defineOp('add', {
  forward(_ctx, a: Tensor, s: number) {
    const y = like(a), yd = y.data, ad = a.data;
    for (let i = 0; i < yd.length; i++) yd[i] = ad[i]! + s;
    return y;
  },
  backward: (_ctx, dy) => [dy],
});

const mulScalar: (a: Tensor, s: number) => Tensor = defineOp('mul', {
  forward(ctx: Ctx<{ s: number }>, a: Tensor, s: number) {
    ctx.s = s;
    const y = like(a), yd = y.data, ad = a.data;
    for (let i = 0; i < yd.length; i++) yd[i] = ad[i]! * s;
    return y;
  },
  backward: (ctx, dy) => [mulScalar(dy, ctx.s)],
});

const divScalar: (a: Tensor, s: number) => Tensor = defineOp('div', {
  forward(ctx: Ctx<{ s: number }>, a: Tensor, s: number) {
    ctx.s = s;
    const y = like(a), yd = y.data, ad = a.data;
    for (let i = 0; i < yd.length; i++) yd[i] = ad[i]! / s;
    return y;
  },
  backward: (ctx, dy) => [divScalar(dy, ctx.s)],
});

const powScalar = defineOp('pow', {
  forward(ctx: Ctx<{ e: number }, [Tensor]>, a: Tensor, e: number) {
    ctx.save(a);
    ctx.e = e;
    const y = like(a), yd = y.data, ad = a.data;
    if (e === 2) for (let i = 0; i < yd.length; i++) yd[i] = ad[i]! * ad[i]!;
    else for (let i = 0; i < yd.length; i++) yd[i] = Math.pow(ad[i]!, e);
    return y;
  },
  backward(ctx, dy) {
    const [a] = ctx.saved;
    const e = ctx.e;
    const g = like(a), gd = g.data, ad = a.data, d = dy.data;
    if (e === 0) return [g];
    for (let i = 0; i < gd.length; i++) gd[i] = d[i]! * e * Math.pow(ad[i]!, e - 1);
    return [g];
  },
});

// ---- public binary ops -----------------------------------------------------------------------------------------

/** torch.add. */
export function add(a: TensorLike, b: TensorLike): Tensor {
  if (typeof b === 'number' && typeof a !== 'number') return addScalar(a, b);
  return addSame(...broadcastPair('add', a, b));
}

/** torch.sub. */
export function sub(a: TensorLike, b: TensorLike): Tensor {
  if (typeof b === 'number' && typeof a !== 'number') return addScalar(a, -b);
  return subSame(...broadcastPair('sub', a, b));
}

/** torch.mul. */
export function mul(a: TensorLike, b: TensorLike): Tensor {
  if (typeof b === 'number' && typeof a !== 'number') return mulScalar(a, b);
  return mulSame(...broadcastPair('mul', a, b));
}

/** torch.div (true division). */
export function div(a: TensorLike, b: TensorLike): Tensor {
  if (typeof b === 'number' && typeof a !== 'number') return divScalar(a, b);
  return divSame(...broadcastPair('div', a, b));
}

/** torch.pow with a tensor or number exponent. */
export function pow(a: TensorLike, e: TensorLike): Tensor {
  if (typeof e === 'number' && typeof a !== 'number') return powScalar(a, e);
  return powSame(...broadcastPair('pow', a, e));
}

/** torch.maximum (NaN propagates; a tie splits the gradient in half). */
export function maximum(a: TensorLike, b: TensorLike): Tensor {
  return maximumSame(...broadcastPair('maximum', a, b));
}

/** torch.minimum (NaN propagates; a tie splits the gradient in half). */
export function minimum(a: TensorLike, b: TensorLike): Tensor {
  return minimumSame(...broadcastPair('minimum', a, b));
}

// ---- unary ---------------------------------------------------------------------------------------------------

/** torch.neg. */
export const neg: (x: Tensor) => Tensor = defineOp('neg', {
  forward(_ctx, x: Tensor) {
    const y = like(x), yd = y.data, xd = x.data;
    for (let i = 0; i < yd.length; i++) yd[i] = -xd[i]!;
    return y;
  },
  backward: (_ctx, dy) => [neg(dy)],
});

/** torch.exp. */
export const exp = defineOp('exp', {
  forward(ctx, x: Tensor) {
    const y = like(x), yd = y.data, xd = x.data;
    for (let i = 0; i < yd.length; i++) yd[i] = Math.exp(xd[i]!);
    ctx.save(y);
    return y;
  },
  backward: (ctx, dy) => [mulSame(dy, ctx.saved[0]!)],
});

/** torch.log (natural). */
export const log = defineOp('log', {
  forward(ctx, x: Tensor) {
    ctx.save(x);
    const y = like(x), yd = y.data, xd = x.data;
    for (let i = 0; i < yd.length; i++) yd[i] = Math.log(xd[i]!);
    return y;
  },
  backward: (ctx, dy) => [divSame(dy, ctx.saved[0]!)],
});

/** torch.sqrt. */
export const sqrt = defineOp('sqrt', {
  forward(ctx, x: Tensor) {
    const y = like(x), yd = y.data, xd = x.data;
    for (let i = 0; i < yd.length; i++) yd[i] = Math.sqrt(xd[i]!);
    ctx.save(y);
    return y;
  },
  backward(ctx, dy) {
    const y = ctx.saved[0]!;
    const g = like(y), gd = g.data, d = dy.data, yd = y.data;
    for (let i = 0; i < gd.length; i++) gd[i] = d[i]! / (2 * yd[i]!);
    return [g];
  },
});

/** torch.abs (gradient sign(x), 0 at 0). */
export const abs = defineOp('abs', {
  forward(ctx, x: Tensor) {
    ctx.save(x);
    const y = like(x), yd = y.data, xd = x.data;
    for (let i = 0; i < yd.length; i++) yd[i] = Math.abs(xd[i]!);
    return y;
  },
  backward(ctx, dy) {
    const x = ctx.saved[0]!;
    const g = like(x), gd = g.data, d = dy.data, xd = x.data;
    for (let i = 0; i < gd.length; i++) gd[i] = xd[i]! > 0 ? d[i]! : xd[i]! < 0 ? -d[i]! : 0;
    return [g];
  },
});

/** torch.relu: max(x, 0), NaN propagates; the gradient passes where the output is not ≤ 0. */
export const relu = defineOp('relu', {
  forward(ctx, x: Tensor) {
    const y = like(x);
    reluForward(y.data, x.data); // branch-free, see kernels/relu.ts
    ctx.save(y);
    return y;
  },
  backward(ctx, dy) {
    const y = ctx.saved[0]!;
    const g = new Tensor(gradBuffer('relu', y.size, true), y.shape);
    reluBackward(g.data, dy.data, y.data);
    return [g];
  },
});

/** torch.sigmoid. */
export const sigmoid = defineOp('sigmoid', {
  forward(ctx, x: Tensor) {
    const y = like(x), yd = y.data, xd = x.data;
    for (let i = 0; i < yd.length; i++) {
      const v = xd[i]!;
      yd[i] = v >= 0 ? 1 / (1 + Math.exp(-v)) : Math.exp(v) / (1 + Math.exp(v));
    }
    ctx.save(y);
    return y;
  },
  backward(ctx, dy) {
    const y = ctx.saved[0]!;
    const g = like(y), gd = g.data, d = dy.data, yd = y.data;
    for (let i = 0; i < gd.length; i++) gd[i] = d[i]! * yd[i]! * (1 - yd[i]!);
    return [g];
  },
});

/** torch.tanh. */
export const tanh = defineOp('tanh', {
  forward(ctx, x: Tensor) {
    const y = like(x), yd = y.data, xd = x.data;
    for (let i = 0; i < yd.length; i++) yd[i] = Math.tanh(xd[i]!);
    ctx.save(y);
    return y;
  },
  backward(ctx, dy) {
    const y = ctx.saved[0]!;
    const g = like(y), gd = g.data, d = dy.data, yd = y.data;
    for (let i = 0; i < gd.length; i++) gd[i] = d[i]! * (1 - yd[i]! * yd[i]!);
    return [g];
  },
});

const clampOp = defineOp('clamp', {
  forward(ctx: Ctx<{ lo: number; hi: number }, [Tensor]>, x: Tensor, lo: number, hi: number) {
    ctx.save(x);
    ctx.lo = lo;
    ctx.hi = hi;
    const y = like(x), yd = y.data, xd = x.data;
    for (let i = 0; i < yd.length; i++) {
      const v = xd[i]!;
      // NaN stays NaN (PyTorch); hi wins when lo > hi (PyTorch's min(max(x, lo), hi))
      yd[i] = v !== v ? v : Math.min(Math.max(v, lo), hi);
    }
    return y;
  },
  backward(ctx, dy) {
    const x = ctx.saved[0]!;
    const { lo, hi } = ctx;
    const g = like(x), gd = g.data, d = dy.data, xd = x.data;
    for (let i = 0; i < gd.length; i++) gd[i] = xd[i]! >= lo && xd[i]! <= hi ? d[i]! : 0;
    return [g];
  },
});

/** torch.clamp(x, min, max); either bound may be omitted (null/undefined), not both. */
export function clamp(x: Tensor, min?: number | null, max?: number | null): Tensor {
  if ((min === undefined || min === null) && (max === undefined || max === null)) {
    throw new ValueError('clamp', 'At least one of \'min\' or \'max\' must not be None');
  }
  return clampOp(x, min ?? -Infinity, max ?? Infinity);
}
