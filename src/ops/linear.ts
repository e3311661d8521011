import { defineOp, type Ctx } from '../autograd.js';
import { ShapeError, ValueError } from '../errors.js';
import { fcRows } from '../kernels/fc.js';
import { matmulKernel } from '../kernels/matmul.js';
import { defaultGenerator, type Generator } from '../random.js';
import { alloc, fmt } from '../shape.js';
import { Tensor } from '../tensor.js';
import { mul } from './elementwise.js';

interface LinearParams { rows: number; in: number; out: number }

const linearOp = defineOp('linear', {
  forward(ctx: Ctx<{ p: LinearParams }, [Tensor, Tensor]>, x: Tensor, w: Tensor, b: Tensor | null, p: LinearParams) {
    ctx.save(x, w);
    ctx.p = p;
    const shape = [...x.shape.slice(0, -1), p.out];
    const y = new Tensor(alloc('linear', p.rows * p.out), shape);
    // y (rows×out) = x (rows×in) · wᵀ (+ b), w stored (out×in). Not recorded for backward (inference), a few rows
    // read w once (kernels/fc.ts); else the GEMM, then the bias.
    if (ctx.needs.length === 0 && fcRows(y.data, x.data, w.data, b ? b.data : null, p.rows, p.in, p.out)) return y;
    matmulKernel(y.data, x.data, w.data, { batch: 1, m: p.rows, k: p.in, n: p.out, transB: true });
    if (b) {
      const yd = y.data, bd = b.data;
      for (let r = 0; r < p.rows; r++) for (let j = 0; j < p.out; j++) yd[r * p.out + j]! += bd[j]!;
    }
    return y;
  },
  backward(ctx, dy) {
    const [x, w] = ctx.saved;
    const p = ctx.p;
    let dx: Tensor | null = null;
    let dw: Tensor | null = null;
    let db: Tensor | null = null;
    if (ctx.needs[0]) {
      dx = new Tensor(alloc('linear', x.size), x.shape); // dy (rows×out) · w (out×in)
      matmulKernel(dx.data, dy.data, w.data, { batch: 1, m: p.rows, k: p.out, n: p.in });
    }
    if (ctx.needs[1]) {
      dw = new Tensor(alloc('linear', w.size), w.shape); // dyᵀ (out×rows) · x (rows×in)
      matmulKernel(dw.data, dy.data, x.data, { batch: 1, m: p.out, k: p.rows, n: p.in, transA: true });
    }
    if (ctx.needs[2]) {
      const acc = new Float64Array(p.out);
      const d = dy.data;
      for (let r = 0; r < p.rows; r++) for (let j = 0; j < p.out; j++) acc[j]! += d[r * p.out + j]!;
      db = new Tensor(alloc('linear', p.out), [p.out]);
      db.data.set(acc);
    }
    return [dx, dw, db];
  },
});

/** torch.nn.functional.linear: x (…, in) · weightᵀ (in, out) + bias (out) → (…, out). */
export function linear(x: Tensor, weight: Tensor, bias: Tensor | null = null): Tensor {
  const shapes = `input ${fmt(x.shape)}, weight ${fmt(weight.shape)}${bias ? `, bias ${fmt(bias.shape)}` : ''}`;
  if (weight.ndim !== 2) throw new ShapeError('linear', `weight must be 2-D (out_features, in_features); ${shapes}`);
  const [out, inF] = weight.shape as [number, number];
  if (x.ndim < 1 || x.shape[x.ndim - 1] !== inF) {
    throw new ShapeError('linear', `mat1 and mat2 shapes cannot be multiplied (${x.size / (x.shape[x.ndim - 1] || 1)}x${x.shape[x.ndim - 1] ?? 0} and ${inF}x${out}); ${shapes}`);
  }
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== out)) throw new ShapeError('linear', `bias must have shape [${out}]; ${shapes}`);
  return linearOp(x, weight, bias, { rows: inF === 0 ? x.size : x.size / inF, in: inF, out });
}

/**
 * torch.nn.functional.dropout: in training, zeroes each element with probability p and scales the rest by 1/(1−p);
 * the identity otherwise. The mask comes from the seeded generator.
 */
export function dropout(x: Tensor, p = 0.5, training = true, generator: Generator = defaultGenerator): Tensor {
  if (!(p >= 0 && p <= 1)) throw new ValueError('dropout', `dropout probability has to be between 0 and 1, but got ${p}; input ${fmt(x.shape)}`);
  if (!training || p === 0) return x;
  const mask = new Tensor(alloc('dropout', x.size), x.shape);
  const scale = p === 1 ? 0 : 1 / (1 - p);
  for (let i = 0; i < mask.size; i++) mask.data[i] = generator.uniform() < p ? 0 : scale;
  return mul(x, mask);
}
