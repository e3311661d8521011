import { defineOp, type Ctx } from '../autograd.js';
import { ShapeError } from '../errors.js';
import { matmulKernel } from '../kernels/matmul.js';
import { alloc, broadcastShape, checkShape, fmt, numel } from '../shape.js';
import { Tensor } from '../tensor.js';
import { expand, squeeze, unsqueeze } from './movement.js';

/** (B, m, k) @ (B, k, n) → (B, m, n) on equal batch shapes; the public matmul broadcasts and expands first. */
const bmm = defineOp('matmul', {
  forward(ctx: Ctx<object, [Tensor, Tensor]>, a: Tensor, b: Tensor) {
    ctx.save(a, b);
    const nd = a.ndim;
    const m = a.shape[nd - 2]!, k = a.shape[nd - 1]!, n = b.shape[nd - 1]!;
    const batch = numel(a.shape.slice(0, nd - 2));
    const y = new Tensor(alloc('matmul', batch * m * n), [...a.shape.slice(0, nd - 2), m, n]);
    matmulKernel(y.data, a.data, b.data, { batch, m, k, n });
    return y;
  },
  backward(ctx, dy) {
    const [a, b] = ctx.saved;
    const nd = a.ndim;
    const m = a.shape[nd - 2]!, k = a.shape[nd - 1]!, n = b.shape[nd - 1]!;
    const batch = numel(a.shape.slice(0, nd - 2));
    let da: Tensor | null = null;
    let db: Tensor | null = null;
    if (ctx.needs[0]) {
      // dA = dY · Bᵀ : (m×n)(n×k)
      da = new Tensor(alloc('matmul', a.size), a.shape);
      matmulKernel(da.data, dy.data, b.data, { batch, m, k: n, n: k, transB: true });
    }
    if (ctx.needs[1]) {
      // dB = Aᵀ · dY : (k×m)(m×n)
      db = new Tensor(alloc('matmul', b.size), b.shape);
      matmulKernel(db.data, a.data, dy.data, { batch, m: k, k: m, n, transA: true });
    }
    return [da, db];
  },
});

/** torch.matmul: 1-D·1-D (dot), 1-D·2-D, 2-D·1-D, 2-D·2-D and batched with broadcast batch dims. */
export function matmul(a: Tensor, b: Tensor): Tensor {
  if (a.ndim === 0 || b.ndim === 0) {
    throw new ShapeError('matmul', `both arguments to matmul need to be at least 1D, but they are ${a.ndim}D and ${b.ndim}D; a ${fmt(a.shape)}, b ${fmt(b.shape)}`);
  }
  const a2 = a.ndim === 1 ? unsqueeze(a, 0) : a;
  const b2 = b.ndim === 1 ? unsqueeze(b, 1) : b;
  const k1 = a2.shape[a2.ndim - 1]!;
  const k2 = b2.shape[b2.ndim - 2]!;
  if (k1 !== k2) {
    throw new ShapeError('matmul', `mat1 and mat2 shapes cannot be multiplied (${a2.shape.slice(-2).join('x')} and ${b2.shape.slice(-2).join('x')}); a ${fmt(a.shape)}, b ${fmt(b.shape)}`);
  }
  let batch: number[];
  try {
    batch = broadcastShape('matmul', a2.shape.slice(0, -2), b2.shape.slice(0, -2));
  } catch {
    throw new ShapeError('matmul', `batch dimensions do not broadcast: a ${fmt(a.shape)} (batch ${fmt(a2.shape.slice(0, -2))}), b ${fmt(b.shape)} (batch ${fmt(b2.shape.slice(0, -2))})`);
  }
  checkShape('matmul', [...batch, a2.shape[a2.ndim - 2]!, b2.shape[b2.ndim - 1]!], `a ${fmt(a.shape)}, b ${fmt(b.shape)}`);
  const ae = expandTo(a2, [...batch, ...a2.shape.slice(-2)]);
  const be = expandTo(b2, [...batch, ...b2.shape.slice(-2)]);
  let y = bmm(ae, be);
  if (a.ndim === 1) y = squeeze(y, -2);
  if (b.ndim === 1) y = squeeze(y, -1);
  return y;
}

function expandTo(x: Tensor, shape: number[]): Tensor {
  if (x.ndim === shape.length && x.shape.every((d, i) => d === shape[i])) return x;
  return expand(x, shape);
}

