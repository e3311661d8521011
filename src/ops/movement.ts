import { defineOp, type Ctx } from '../autograd.js';
import { checkArg, ShapeError, underName, ValueError } from '../errors.js';
import { alloc, checkShape, fmt, normDim, numel, sameShape, strides } from '../shape.js';
import { Tensor } from '../tensor.js';

/**
 * Movement ops: reshape/view (share data), permute, expand, cat, narrow, pad (copy). Every copy writes a fresh
 * contiguous buffer: a tensor is always row-major contiguous, so kernels never see strides.
 */

function resolveShape(op: string, x: Tensor, shape: readonly number[]): number[] {
  let infer = -1;
  let known = 1;
  for (let i = 0; i < shape.length; i++) {
    const d = shape[i]!;
    if (d === -1) {
      if (infer >= 0) throw new ShapeError(op, `only one dimension can be inferred; shape ${fmt(shape)}, input ${fmt(x.shape)}`);
      infer = i;
    } else if (!Number.isInteger(d) || d < 0) {
      throw new ShapeError(op, `invalid shape dimension ${d} in ${fmt(shape)}; input ${fmt(x.shape)}`);
    } else known *= d;
  }
  const out = shape.slice();
  if (infer >= 0) {
    if (known === 0 || x.size % known !== 0) {
      throw new ShapeError(op, `shape '${fmt(shape)}' is invalid for input of size ${x.size}; input ${fmt(x.shape)}`);
    }
    out[infer] = x.size / known;
  }
  checkShape(op, out);
  if (numel(out) !== x.size) {
    throw new ShapeError(op, `shape '${fmt(shape)}' is invalid for input of size ${x.size}; input ${fmt(x.shape)}`);
  }
  return out;
}

const reshapeOp: (x: Tensor, shape: number[]) => Tensor = defineOp('reshape', {
  forward(ctx: Ctx<{ inShape: readonly number[] }>, x: Tensor, shape: number[]) {
    ctx.inShape = x.shape;
    return new Tensor(x.data, shape);
  },
  backward: (ctx, dy) => [reshapeOp(dy, [...ctx.inShape])],
});

/** torch.reshape / view: same data, new shape; one dim may be -1. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  return reshapeOp(x, resolveShape('reshape', x, shape));
}
export const view = reshape;

/** torch.flatten(x, startDim, endDim). */
export function flatten(x: Tensor, startDim = 0, endDim = -1): Tensor {
  if (x.ndim === 0) return reshape(x, [1]);
  const s = normDim('flatten', startDim, x.ndim, x.shape);
  const e = normDim('flatten', endDim, x.ndim, x.shape);
  if (s > e) throw new ShapeError('flatten', `flatten() has invalid args: start_dim ${startDim} cannot come after end_dim ${endDim}; input ${fmt(x.shape)}`);
  const mid = x.shape.slice(s, e + 1).reduce((a, b) => a * b, 1);
  return reshape(x, [...x.shape.slice(0, s), mid, ...x.shape.slice(e + 1)]);
}

/** torch.squeeze: drops size-1 dims (all of them, or just `dim` if it is 1). */
export function squeeze(x: Tensor, dim?: number): Tensor {
  if (dim === undefined) return reshape(x, x.shape.filter((d) => d !== 1));
  const d = normDim('squeeze', dim, x.ndim, x.shape);
  if (x.ndim === 0 || x.shape[d] !== 1) return reshape(x, x.shape);
  return reshape(x, x.shape.filter((_, i) => i !== d));
}

/** torch.unsqueeze: inserts a size-1 dim at `dim` (in [-ndim-1, ndim]). */
export function unsqueeze(x: Tensor, dim: number): Tensor {
  const d = normDim('unsqueeze', dim, x.ndim + 1, x.shape);
  const s = x.shape.slice();
  s.splice(d, 0, 1);
  return reshape(x, s);
}

// ---- permute --------------------------------------------------------------------------------------------------

/** Copies x into y with y's dim i = x's dim perm[i]. */
function permuteData(x: Tensor, perm: readonly number[]): Tensor {
  const outShape = perm.map((p) => x.shape[p]!);
  const y = new Tensor(alloc('permute', x.size), outShape);
  const xs = strides(x.shape);
  const st = perm.map((p) => xs[p]!); // stride in x for each y dim
  const nd = outShape.length;
  const yd = y.data, xd = x.data;
  if (y.size === 0) return y;
  const idx = new Array<number>(nd).fill(0);
  let src = 0;
  for (let k = 0; k < yd.length; k++) {
    yd[k] = xd[src]!;
    for (let d = nd - 1; d >= 0; d--) {
      idx[d]!++;
      src += st[d]!;
      if (idx[d]! < outShape[d]!) break;
      src -= st[d]! * outShape[d]!;
      idx[d] = 0;
    }
  }
  return y;
}

const permuteOp: (x: Tensor, perm: number[]) => Tensor = defineOp('permute', {
  forward(ctx: Ctx<{ perm: number[] }>, x: Tensor, perm: number[]) {
    ctx.perm = perm;
    return permuteData(x, perm);
  },
  backward(ctx, dy) {
    const perm = ctx.perm;
    const inv = new Array<number>(perm.length);
    perm.forEach((p, i) => (inv[p] = i));
    return [permuteOp(dy, inv)];
  },
});

/** torch.permute. */
export function permute(x: Tensor, dims: readonly number[]): Tensor {
  if (dims.length !== x.ndim) {
    throw new ShapeError('permute', `number of dims don't match in permute: input ${fmt(x.shape)} has ${x.ndim} dims, dims ${fmt(dims)}`);
  }
  const perm = dims.map((d) => normDim('permute', d, x.ndim, x.shape));
  if (new Set(perm).size !== perm.length) throw new ShapeError('permute', `repeated dim in permute ${fmt(dims)}; input ${fmt(x.shape)}`);
  if (perm.every((p, i) => p === i)) return reshape(x, x.shape);
  return permuteOp(x, perm);
}

/** torch.transpose (swaps two dims; a copy). */
export function transpose(x: Tensor, dim0: number, dim1: number): Tensor {
  const a = normDim('transpose', dim0, x.ndim, x.shape);
  const b = normDim('transpose', dim1, x.ndim, x.shape);
  const perm = x.shape.map((_, i) => i);
  perm[a] = b;
  perm[b] = a;
  return underName('transpose', () => permute(x, perm), () => `input ${fmt(x.shape)}`);
}

// ---- expand ---------------------------------------------------------------------------------------------------

const expandOp = defineOp('expand', {
  forward(ctx: Ctx<{ inShape: readonly number[] }>, x: Tensor, shape: number[]) {
    ctx.inShape = x.shape;
    const y = new Tensor(alloc('expand', numel(shape)), shape);
    if (y.size === 0) return y;
    // x viewed with leading 1s; stride 0 on broadcast dims
    const nd = shape.length;
    const lead = nd - x.ndim;
    const xs = strides(x.shape);
    const st = shape.map((_, i) => (i < lead || x.shape[i - lead] === 1 ? 0 : xs[i - lead]!));
    const idx = new Array<number>(nd).fill(0);
    const yd = y.data, xd = x.data;
    const inner = shape[nd - 1] ?? 1;
    const innerStride = nd > 0 ? st[nd - 1]! : 0;
    let src = 0;
    for (let k = 0; k < yd.length; k += inner) {
      if (innerStride === 0) yd.fill(xd[src]!, k, k + inner);
      else for (let j = 0; j < inner; j++) yd[k + j] = xd[src + j]!;
      for (let d = nd - 2; d >= 0; d--) {
        idx[d]!++;
        src += st[d]!;
        if (idx[d]! < shape[d]!) break;
        src -= st[d]! * shape[d]!;
        idx[d] = 0;
      }
    }
    return y;
  },
  backward(ctx, dy) {
    // the one place that sums over broadcast axes
    const inShape = ctx.inShape;
    const lead = dy.ndim - inShape.length;
    const axes: number[] = [];
    for (let i = 0; i < dy.ndim; i++) if (i < lead || (inShape[i - lead] === 1 && dy.shape[i] !== 1)) axes.push(i);
    return [reshape(sumAxes(dy, axes), inShape)];
  },
});

/** Sum over axes keeping dims, float64 accumulators (used by expand's backward; reduce.ts exposes sum). */
export function sumAxes(x: Tensor, axes: readonly number[]): Tensor {
  const outShape = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const acc = new Float64Array(numel(outShape));
  const nd = x.ndim;
  const os = strides(outShape);
  const st = x.shape.map((_, i) => (axes.includes(i) ? 0 : os[i]!));
  const idx = new Array<number>(nd).fill(0);
  const xd = x.data;
  let dst = 0;
  for (let k = 0; k < xd.length; k++) {
    acc[dst]! += xd[k]!;
    for (let d = nd - 1; d >= 0; d--) {
      idx[d]!++;
      dst += st[d]!;
      if (idx[d]! < x.shape[d]!) break;
      dst -= st[d]! * x.shape[d]!;
      idx[d] = 0;
    }
  }
  const y = new Tensor(alloc('sum', acc.length), outShape);
  y.data.set(acc);
  return y;
}

/** torch.expand: repeats size-1 dims (and adds leading dims); -1 keeps a dim. A copy, not a view. */
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  if (shape.length < x.ndim) {
    throw new ShapeError('expand', `the number of sizes provided (${shape.length}) must be greater or equal to the number of dimensions in the tensor (${x.ndim}); input ${fmt(x.shape)}, target ${fmt(shape)}`);
  }
  const lead = shape.length - x.ndim;
  const out = shape.map((d, i) => {
    const have = i < lead ? 1 : x.shape[i - lead]!;
    if (d === -1) {
      if (i < lead) throw new ShapeError('expand', `-1 is not allowed in a leading, non-existing dimension; input ${fmt(x.shape)}, target ${fmt(shape)}`);
      return have;
    }
    if (have !== d && have !== 1) {
      throw new ShapeError('expand', `The expanded size of the tensor (${d}) must match the existing size (${have}) at non-singleton dimension ${i}; input ${fmt(x.shape)}, target ${fmt(shape)}`);
    }
    return d;
  });
  checkShape('expand', out);
  if (sameShape(out, x.shape)) return reshape(x, out);
  return expandOp(x, out);
}

// ---- cat / stack ----------------------------------------------------------------------------------------------

const catOp = defineOp('cat', {
  forward(ctx: Ctx<{ sizes: number[]; dim: number }>, dim: number, ...xs: Tensor[]) {
    const outShape = xs[0]!.shape.slice();
    outShape[dim] = xs.reduce((s, t) => s + t.shape[dim]!, 0);
    const y = new Tensor(alloc('cat', numel(outShape)), outShape);
    const outer = numel(outShape.slice(0, dim));
    const rowOut = numel(outShape.slice(dim));
    let off = 0;
    ctx.sizes = xs.map((t) => t.shape[dim]!);
    ctx.dim = dim;
    for (const t of xs) {
      const row = numel(t.shape.slice(dim));
      for (let o = 0; o < outer; o++) y.data.set(t.data.subarray(o * row, (o + 1) * row), o * rowOut + off);
      off += row;
    }
    return y;
  },
  backward(ctx, dy) {
    const { sizes, dim } = ctx;
    const grads: (Tensor | null)[] = [null];
    let start = 0;
    sizes.forEach((s, i) => {
      grads.push(ctx.needs[i + 1] ? narrow(dy, dim, start, s) : null);
      start += s;
    });
    return grads;
  },
});

/** torch.cat: joins tensors along an existing dim (0-size pieces allowed). */
export function cat(tensors: readonly Tensor[], dim = 0): Tensor {
  checkArg(Array.isArray(tensors), 'cat', 'tensors', 'an array of Tensors', tensors);
  tensors.forEach((t, i) => checkArg(t instanceof Tensor, 'cat', `tensors[${i}]`, 'a Tensor', t));
  if (tensors.length === 0) throw new ValueError('cat', 'expected a non-empty list of Tensors');
  const first = tensors[0]!;
  if (first.ndim === 0) throw new ShapeError('cat', `zero-dimensional tensor (at position 0) cannot be concatenated`);
  const d = normDim('cat', dim, first.ndim, first.shape);
  tensors.forEach((t, i) => {
    const bad = t.ndim !== first.ndim || t.shape.some((s, j) => j !== d && s !== first.shape[j]);
    if (bad) {
      throw new ShapeError('cat', `Sizes of tensors must match except in dimension ${d}. Expected ${fmt(first.shape)} but got ${fmt(t.shape)} for tensor number ${i} in the list`);
    }
  });
  if (tensors.length === 1) return reshape(first, first.shape);
  return catOp(d, ...tensors);
}

/** torch.stack: joins equal-shaped tensors along a new dim. */
export function stack(tensors: readonly Tensor[], dim = 0): Tensor {
  if (tensors.length === 0) throw new ValueError('stack', 'expected a non-empty list of Tensors');
  const first = tensors[0]!;
  tensors.forEach((t, i) => {
    if (!sameShape(t.shape, first.shape)) {
      throw new ShapeError('stack', `stack expects each tensor to be equal size, but got ${fmt(first.shape)} at entry 0 and ${fmt(t.shape)} at entry ${i}`);
    }
  });
  const d = normDim('stack', dim, first.ndim + 1, first.shape);
  return cat(tensors.map((t) => unsqueeze(t, d)), d);
}

// ---- pad / narrow ---------------------------------------------------------------------------------------------

const padOp: (x: Tensor, before: number[], after: number[], value: number) => Tensor = defineOp('pad', {
  forward(ctx: Ctx<{ before: number[]; after: number[] }>, x: Tensor, before: number[], after: number[], value: number) {
    ctx.before = before;
    ctx.after = after;
    const outShape = x.shape.map((d, i) => d + before[i]! + after[i]!);
    const y = new Tensor(alloc('pad', numel(outShape)), outShape);
    if (value !== 0) y.data.fill(value);
    if (y.size === 0 || x.size === 0) return y;
    const nd = x.ndim;
    const ys = strides(outShape);
    const xs = strides(x.shape);
    // copy the overlap of x (shifted by `before`) into y, row by row along the last dim
    const lo = x.shape.map((d, i) => Math.max(0, -before[i]!)); // first x index kept per dim
    const hi = x.shape.map((d, i) => Math.min(d, outShape[i]! - before[i]!)); // one past last kept
    if (lo.some((l, i) => l >= hi[i]!)) return y;
    const idx = lo.slice();
    const last = nd - 1;
    const rowLen = hi[last]! - lo[last]!;
    for (;;) {
      let src = 0;
      let dst = 0;
      for (let i = 0; i < nd; i++) {
        src += idx[i]! * xs[i]!;
        dst += (idx[i]! + before[i]!) * ys[i]!;
      }
      y.data.set(x.data.subarray(src, src + rowLen), dst);
      let d = last - 1;
      for (; d >= 0; d--) {
        idx[d]!++;
        if (idx[d]! < hi[d]!) break;
        idx[d] = lo[d]!;
      }
      if (d < 0) break;
    }
    return y;
  },
  backward(ctx, dy) {
    const { before, after } = ctx;
    return [padOp(dy, before.map((b) => -b), after.map((a) => -a), 0)];
  },
});

/**
 * torch.nn.functional.pad, constant mode: `pad` lists (before, after) pairs starting from the last dim. Negative
 * amounts crop, as in PyTorch.
 */
export function pad(x: Tensor, padding: readonly number[], value = 0): Tensor {
  if (padding.length % 2 !== 0 || padding.length / 2 > x.ndim) {
    throw new ShapeError('pad', `Padding length must be divisible by 2 and at most twice the number of dims; padding ${fmt(padding)}, input ${fmt(x.shape)}`);
  }
  const before = new Array<number>(x.ndim).fill(0);
  const after = new Array<number>(x.ndim).fill(0);
  for (let k = 0; k < padding.length / 2; k++) {
    const d = x.ndim - 1 - k;
    const b = padding[2 * k]!, a = padding[2 * k + 1]!;
    if (!Number.isInteger(b) || !Number.isInteger(a)) throw new ShapeError('pad', `padding must be integers, got ${fmt(padding)}; input ${fmt(x.shape)}`);
    before[d] = b;
    after[d] = a;
    if (x.shape[d]! + b + a < 0) {
      throw new ShapeError('pad', `The input size ${x.shape[d]}, plus negative padding ${b} and ${a} resulted in a negative output size; input ${fmt(x.shape)}, padding ${fmt(padding)}`);
    }
  }
  checkShape('pad', x.shape.map((d, i) => d + before[i]! + after[i]!), `input ${fmt(x.shape)}, padding ${fmt(padding)}`);
  return padOp(x, before, after, value);
}

/** torch.narrow: `length` entries of dim starting at `start` (a copy). */
export function narrow(x: Tensor, dim: number, start: number, length: number): Tensor {
  const d = normDim('narrow', dim, x.ndim, x.shape);
  const size = x.shape[d]!;
  const s = start < 0 ? start + size : start;
  if (!Number.isInteger(s) || !Number.isInteger(length) || s < 0 || length < 0 || s + length > size) {
    throw new ShapeError('narrow', `start (${start}) + length (${length}) exceeds dimension size (${size}) of dim ${d}; input ${fmt(x.shape)}`);
  }
  const before = x.shape.map((_, i) => (i === d ? -s : 0));
  const after = x.shape.map((_, i) => (i === d ? -(size - s - length) : 0));
  return padOp(x, before, after, 0);
}

/** x[..., start:end, ...] along dim, Python slicing rules (negative indices, clamped bounds). */
export function slice(x: Tensor, dim: number, start = 0, end?: number): Tensor {
  const d = normDim('slice', dim, x.ndim, x.shape);
  const size = x.shape[d]!;
  const norm = (i: number): number => Math.min(Math.max(i < 0 ? i + size : i, 0), size);
  const s = norm(start);
  const e = norm(end ?? size);
  return underName('slice', () => narrow(x, d, s, Math.max(0, e - s)), () => `input ${fmt(x.shape)}`);
}

/** torch.movedim for one dim: moves `source` to position `destination`, keeping the others in order. */
export function movedim(x: Tensor, source: number, destination: number): Tensor {
  const s = normDim('movedim', source, x.ndim, x.shape);
  const d = normDim('movedim', destination, x.ndim, x.shape);
  const order = x.shape.map((_, i) => i).filter((i) => i !== s);
  order.splice(d, 0, s);
  return permute(x, order);
}
