import { defineOp, type Ctx } from '../autograd.js';
import { ShapeError } from '../errors.js';
import { alloc, fmt, normDim, normDims, numel, strides } from '../shape.js';
import { Tensor } from '../tensor.js';
import { div, mul, sub } from './elementwise.js';
import { expand, reshape, sumAxes } from './movement.js';

/**
 * Reductions. `sum` and `max`/`min` (amax/amin) are primitives; mean and var are derived from them. Sums use
 * float64 accumulators.
 */

function keptShape(shape: readonly number[], axes: readonly number[]): number[] {
  return shape.map((d, i) => (axes.includes(i) ? 1 : d));
}

function finalShape(shape: readonly number[], axes: readonly number[], keepDim: boolean): number[] {
  return keepDim ? keptShape(shape, axes) : shape.filter((_, i) => !axes.includes(i));
}

/** torch.sum over `dim` (all dims when omitted). */
export function sum(x: Tensor, dim?: number | readonly number[], keepDim = false): Tensor {
  return sumOp(x, normDims('sum', dim, x.shape), keepDim);
}

const sumOp = defineOp('sum', {
  forward(ctx: Ctx<{ inShape: readonly number[]; kept: number[] }>, x: Tensor, axes: number[], keepDim: boolean) {
    ctx.inShape = x.shape;
    ctx.kept = keptShape(x.shape, axes);
    const s = sumAxes(x, axes);
    return new Tensor(s.data, finalShape(x.shape, axes, keepDim));
  },
  backward: (ctx, dy) => [expand(reshape(dy, ctx.kept), ctx.inShape)],
});

/** torch.mean over `dim` (all dims when omitted). */
export function mean(x: Tensor, dim?: number | readonly number[], keepDim = false): Tensor {
  const axes = normDims('mean', dim, x.shape);
  const count = axes.reduce((c, a) => c * x.shape[a]!, 1);
  return div(sumOp(x, axes, keepDim), count);
}

/** amax/amin primitive: NaN propagates; the gradient is split evenly between tied extremes (torch.amax). */
function extremumOp(name: string, sign: 1 | -1) {
  return defineOp(name, {
    forward(ctx: Ctx<{ kept: number[]; yk: Float32Array }, [Tensor]>, x: Tensor, axes: number[], keepDim: boolean) {
      if (x.size === 0 && axes.some((a) => x.shape[a] === 0)) {
        throw new ShapeError(name, `cannot reduce over a zero-size dimension; input ${fmt(x.shape)}, dims ${fmt(axes)}`);
      }
      const kept = keptShape(x.shape, axes);
      const y = new Tensor(alloc(name, numel(kept)), finalShape(x.shape, axes, keepDim));
      y.data.fill(sign > 0 ? -Infinity : Infinity);
      const yd = y.data, xd = x.data;
      forEachReduced(x.shape, kept, (k, o) => {
        const v = xd[k]!, cur = yd[o]!;
        if (cur !== cur) return;
        if (v !== v || (sign > 0 ? v > cur : v < cur)) yd[o] = v;
      });
      ctx.save(x);
      ctx.kept = kept;
      ctx.yk = yd;
      return y;
    },
    backward(ctx, dy) {
      const x = ctx.saved[0]!;
      const { kept, yk } = ctx;
      const count = new Float64Array(yk.length);
      const xd = x.data;
      forEachReduced(x.shape, kept, (k, o) => {
        if (xd[k] === yk[o] || (xd[k] !== xd[k] && yk[o] !== yk[o])) count[o]!++;
      });
      const g = new Tensor(alloc(name, x.size), x.shape);
      const d = dy.data;
      forEachReduced(x.shape, kept, (k, o) => {
        if (xd[k] === yk[o] || (xd[k] !== xd[k] && yk[o] !== yk[o])) g.data[k] = d[o]! / count[o]!;
      });
      return [g];
    },
  });
}

/** Calls f(flat index in x, flat index in the keep-dim output) for every element of x. */
function forEachReduced(shape: readonly number[], kept: readonly number[], f: (k: number, o: number) => void): void {
  const n = numel(shape);
  const nd = shape.length;
  const os = strides(kept);
  const st = shape.map((d, i) => (kept[i] === 1 && d !== 1 ? 0 : os[i]!));
  const idx = new Array<number>(nd).fill(0);
  let o = 0;
  for (let k = 0; k < n; k++) {
    f(k, o);
    for (let d = nd - 1; d >= 0; d--) {
      idx[d]!++;
      o += st[d]!;
      if (idx[d]! < shape[d]!) break;
      o -= st[d]! * shape[d]!;
      idx[d] = 0;
    }
  }
}

const amax = extremumOp('max', 1);
const amin = extremumOp('min', -1);

/** Largest value over `dim` (all dims when omitted), like torch.amax; NaN propagates. */
export function max(x: Tensor, dim?: number | readonly number[], keepDim = false): Tensor {
  return amax(x, normDims('max', dim, x.shape), keepDim);
}

/** Smallest value over `dim` (all dims when omitted), like torch.amin; NaN propagates. */
export function min(x: Tensor, dim?: number | readonly number[], keepDim = false): Tensor {
  return amin(x, normDims('min', dim, x.shape), keepDim);
}

/**
 * torch.argmax: index of the first largest value along `dim` (of the flattened tensor when omitted), as a float32
 * tensor. NaN counts as the largest, like PyTorch. Not differentiable.
 */
export function argmax(x: Tensor, dim?: number, keepDim = false): Tensor {
  if (dim === undefined) {
    if (x.size === 0) throw new ShapeError('argmax', `argmax of an empty tensor; input ${fmt(x.shape)}`);
    return argmax(new Tensor(x.data, [x.size]), 0, false).reshape(keepDim ? x.shape.map(() => 1) : []);
  }
  const d = normDim('argmax', dim, x.ndim, x.shape);
  const n = x.ndim === 0 ? 1 : x.shape[d]!;
  if (n === 0) throw new ShapeError('argmax', `cannot reduce over a zero-size dimension ${d}; input ${fmt(x.shape)}`);
  const outer = numel(x.shape.slice(0, d));
  const inner = numel(x.shape.slice(d + 1));
  const kept = x.ndim === 0 ? [] : keptShape(x.shape, [d]);
  const y = new Tensor(alloc('argmax', outer * inner), keepDim ? kept : x.shape.filter((_, i) => i !== d));
  const xd = x.data;
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      let best = 0;
      let bv = xd[o * n * inner + i]!;
      for (let j = 1; j < n && bv === bv; j++) {
        const v = xd[(o * n + j) * inner + i]!;
        if (v > bv || v !== v) {
          bv = v;
          best = j;
        }
      }
      y.data[o * inner + i] = best;
    }
  }
  return y;
}

export interface VarOptions {
  /** Divide by N - 1 (Bessel's correction) instead of N. Default true, like torch.var. */
  unbiased?: boolean;
  keepDim?: boolean;
}

/** torch.var over `dim` (all dims when omitted); exported as both `variance` and `var`. */
export function variance(x: Tensor, dim?: number | readonly number[], opts: VarOptions = {}): Tensor {
  const { unbiased = true, keepDim = false } = opts;
  const axes = normDims('var', dim, x.shape);
  const count = axes.reduce((c, a) => c * x.shape[a]!, 1);
  const mu = mean(x, axes, true);
  const centered = sub(x, mu);
  const ss = sumOp(mul(centered, centered), axes, keepDim);
  // no degrees of freedom left (N ≤ 1 with Bessel's correction, or N = 0): NaN, as torch.var gives
  return unbiased ? (count - 1 > 0 ? div(ss, count - 1) : mul(ss, NaN)) : count > 0 ? div(ss, count) : mul(ss, NaN);
}
