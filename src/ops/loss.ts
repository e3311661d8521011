import { defineOp, type Ctx } from '../autograd.js';
import { ShapeError, ValueError } from '../errors.js';
import { alloc, fmt, normDim, numel } from '../shape.js';
import { Tensor } from '../tensor.js';
import { div, mul, neg } from './elementwise.js';
import { movedim } from './movement.js';
import { sum } from './reduce.js';

/** Class indices: a plain array, an Int32Array, or a tensor holding integers. */
export type Target = readonly number[] | Int32Array | Tensor;
export type Reduction = 'mean' | 'sum' | 'none';

// ---- softmax / logSoftmax (stable, fused; one pass per row over `dim`) -----------------------------------------

interface RowLayout { outer: number; n: number; inner: number }

function layout(x: Tensor, dim: number): RowLayout {
  const d = dim;
  return { outer: numel(x.shape.slice(0, d)), n: x.ndim === 0 ? 1 : x.shape[d]!, inner: numel(x.shape.slice(d + 1)) };
}

function softmaxRows(y: Float32Array, x: Float32Array, l: RowLayout, log: boolean): void {
  for (let o = 0; o < l.outer; o++)
    for (let i = 0; i < l.inner; i++) {
      const base = o * l.n * l.inner + i;
      let m = -Infinity;
      for (let j = 0; j < l.n; j++) {
        const v = x[base + j * l.inner]!;
        if (v > m || v !== v) m = v;
      }
      if (m === -Infinity) m = 0; // all -inf: exp(-inf - 0) = 0, like PyTorch's NaN-free handling of masked rows
      let s = 0;
      for (let j = 0; j < l.n; j++) s += Math.exp(x[base + j * l.inner]! - m);
      const lse = Math.log(s);
      for (let j = 0; j < l.n; j++) {
        const z = x[base + j * l.inner]! - m;
        y[base + j * l.inner] = log ? z - lse : Math.exp(z) / s;
      }
    }
}

/** softmax and logSoftmax share one fused op: forward over rows, and the backward that mirrors each. */
function softmaxFamily(name: 'softmax' | 'logSoftmax', log: boolean) {
  return defineOp(name, {
    forward(ctx: Ctx<{ l: RowLayout }>, x: Tensor, dim: number) {
      const y = new Tensor(alloc(name, x.size), x.shape);
      const l = layout(x, dim);
      softmaxRows(y.data, x.data, l, log);
      ctx.save(y);
      ctx.l = l;
      return y;
    },
    backward(ctx, dy) {
      // softmax: dx = y ⊙ (dy − Σ dy⊙y) · logSoftmax: dx = dy − exp(y) ⊙ Σ dy
      const y = ctx.saved[0]!;
      const l = ctx.l;
      const dx = new Tensor(alloc(name, y.size), y.shape);
      const yd = y.data, g = dy.data, d = dx.data;
      for (let o = 0; o < l.outer; o++)
        for (let i = 0; i < l.inner; i++) {
          const base = o * l.n * l.inner + i;
          let s = 0;
          for (let j = 0; j < l.n; j++) s += log ? g[base + j * l.inner]! : g[base + j * l.inner]! * yd[base + j * l.inner]!;
          for (let j = 0; j < l.n; j++) {
            const k = base + j * l.inner;
            d[k] = log ? g[k]! - Math.exp(yd[k]!) * s : yd[k]! * (g[k]! - s);
          }
        }
      return [dx];
    },
  });
}

const softmaxOp = softmaxFamily('softmax', false);
const logSoftmaxOp = softmaxFamily('logSoftmax', true);

/** torch.softmax along dim (max-subtracted, so large logits stay finite). */
export function softmax(x: Tensor, dim: number): Tensor {
  return softmaxOp(x, normDim('softmax', dim, x.ndim, x.shape));
}

/** torch.log_softmax along dim (log-sum-exp with the max subtracted). */
export function logSoftmax(x: Tensor, dim: number): Tensor {
  return logSoftmaxOp(x, normDim('logSoftmax', dim, x.ndim, x.shape));
}

// ---- nll / cross-entropy ------------------------------------------------------------------------------------

function targetIndices(op: string, target: Target): Int32Array {
  const src: ArrayLike<number> = target instanceof Tensor ? target.data : target;
  const out = new Int32Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const v = src[i]!;
    if (!Number.isInteger(v)) throw new ValueError(op, `target must hold integer class indices, got ${v} at index ${i}`);
    out[i] = v;
  }
  return out;
}

interface NllParams { n: number; c: number; reduction: Reduction; ignoreIndex: number }

const nllOp = defineOp('nllLoss', {
  forward(ctx: Ctx<{ p: NllParams; target: Int32Array; weight: Tensor | null; wsum: number }>, lp: Tensor, target: Int32Array, weight: Tensor | null, p: NllParams) {
    const { n, c } = p;
    const lpd = lp.data;
    const w = weight?.data;
    const per = new Float64Array(n);
    let wsum = 0;
    for (let i = 0; i < n; i++) {
      const t = target[i]!;
      if (t === p.ignoreIndex) continue;
      const wi = w ? w[t]! : 1;
      per[i] = -wi * lpd[i * c + t]!;
      wsum += wi;
    }
    ctx.wsum = wsum;
    ctx.p = p;
    ctx.target = target;
    ctx.weight = weight;
    if (p.reduction === 'none') {
      const y = new Tensor(alloc('nllLoss', n), [n]);
      y.data.set(per);
      return y;
    }
    let s = 0;
    for (let i = 0; i < n; i++) s += per[i]!;
    return new Tensor(new Float32Array([p.reduction === 'mean' ? s / wsum : s]), []);
  },
  backward(ctx, dy) {
    const p = ctx.p;
    const target = ctx.target;
    const w = ctx.weight?.data;
    const g = new Tensor(alloc('nllLoss', p.n * p.c), [p.n, p.c]);
    const scale = p.reduction === 'mean' ? 1 / ctx.wsum : 1;
    for (let i = 0; i < p.n; i++) {
      const t = target[i]!;
      if (t === p.ignoreIndex) continue;
      const up = p.reduction === 'none' ? dy.data[i]! : dy.data[0]!;
      g.data[i * p.c + t] = -(w ? w[t]! : 1) * up * scale;
    }
    return [g];
  },
});

export interface NllLossOptions {
  reduction?: Reduction;
  ignoreIndex?: number;
  /** Per-class weights, shape [C]. */
  weight?: Tensor | null;
}

export interface CrossEntropyOptions extends NllLossOptions {
  /** ε of label smoothing: the target becomes (1 − ε)·onehot + ε/C. */
  labelSmoothing?: number;
}

/** (N, C, d1, …) → (N·d1·…, C) and the matching flat target; validates everything once. */
function prepare(op: string, input: Tensor, target: Target, opts: NllLossOptions): { x: Tensor; t: Int32Array; c: number; outShape: number[] } {
  const tshape = target instanceof Tensor ? target.shape : [target.length];
  const shapes = `input ${fmt(input.shape)}, target ${fmt(tshape)}`;
  if (input.ndim < 1) throw new ShapeError(op, `input must be at least 1-D (C) or (N, C, ...); ${shapes}`);
  const t = targetIndices(op, target);
  let x = input;
  let outShape: number[];
  if (input.ndim === 1) {
    x = input.reshape([1, input.shape[0]!]);
    outShape = [];
    if (t.length !== 1) throw new ShapeError(op, `Expected a single target for unbatched input; ${shapes}`);
  } else {
    const n = input.shape[0]!;
    const rest = input.shape.slice(2);
    outShape = [n, ...rest];
    if (t.length !== numel(outShape) || (target instanceof Tensor && target.ndim !== 0 && target.shape[0] !== n)) {
      throw new ShapeError(op, `Expected input batch_size (${n}) to match target batch_size (${tshape[0] ?? 1}); ${shapes}`);
    }
    if (input.ndim > 2) x = movedim(input, 1, -1).reshape([-1, input.shape[1]!]);
  }
  const c = x.shape[1]!;
  const ignore = opts.ignoreIndex ?? -100;
  for (let i = 0; i < t.length; i++) {
    const v = t[i]!;
    if (v !== ignore && (v < 0 || v >= c)) {
      throw new ValueError(op, `Target ${v} is out of bounds: index ${i} must be in [0, ${c - 1}] for ${c} classes (or the ignore_index ${ignore}); ${shapes}`);
    }
  }
  if (opts.weight && (opts.weight.ndim !== 1 || opts.weight.shape[0] !== c)) {
    throw new ShapeError(op, `weight tensor should be defined either for all ${c} classes or no classes but got weight tensor of shape: ${fmt(opts.weight.shape)}; ${shapes}`);
  }
  const red = opts.reduction ?? 'mean';
  if (red !== 'mean' && red !== 'sum' && red !== 'none') throw new ValueError(op, `${String(red)} is not a valid value for reduction`);
  return { x, t, c, outShape };
}

/** torch.nn.functional.nll_loss on log-probabilities (N, C) or (N, C, d1, …). */
export function nllLoss(logProbs: Tensor, target: Target, opts: NllLossOptions = {}): Tensor {
  const { x, t, c, outShape } = prepare('nllLoss', logProbs, target, opts);
  const reduction = opts.reduction ?? 'mean';
  const y = nllOp(x, t, opts.weight ?? null, { n: x.shape[0]!, c, reduction, ignoreIndex: opts.ignoreIndex ?? -100 });
  return reduction === 'none' ? y.reshape(outShape) : y;
}

/**
 * torch.nn.functional.cross_entropy with class-index targets: nll_loss(log_softmax(x, 1)), plus PyTorch 1.13's label
 * smoothing: (1 − ε)·nll + ε/C · smooth, where smooth = −Σ_c w_c·logp_c per sample (0 where ignored), reduced like
 * nll (mean divides by Σ w_target over the non-ignored samples).
 */
export function crossEntropy(logits: Tensor, target: Target, opts: CrossEntropyOptions = {}): Tensor {
  const { x, t, c, outShape } = prepare('crossEntropy', logits, target, opts);
  const eps = opts.labelSmoothing ?? 0;
  if (!(eps >= 0 && eps <= 1)) throw new ValueError('crossEntropy', `label_smoothing must be between 0.0 and 1.0. Got: ${eps}`);
  const reduction = opts.reduction ?? 'mean';
  const ignoreIndex = opts.ignoreIndex ?? -100;
  const weight = opts.weight ?? null;
  const lp = logSoftmaxOp(x, 1);
  const nll = nllOp(lp, t, weight, { n: x.shape[0]!, c, reduction, ignoreIndex });
  if (eps === 0) return reduction === 'none' ? nll.reshape(outShape) : nll;
  const n = x.shape[0]!;
  const keep = new Float32Array(n);
  let denom = 0;
  for (let i = 0; i < n; i++) {
    if (t[i] === ignoreIndex) continue;
    keep[i] = 1;
    denom += weight ? weight.data[t[i]!]! : 1;
  }
  const weighted = weight ? mul(lp, weight.reshape([1, c])) : lp;
  let smooth = mul(neg(sum(weighted, 1)), new Tensor(keep, [n]));
  if (reduction === 'sum') smooth = sum(smooth);
  else if (reduction === 'mean') smooth = div(sum(smooth), denom);
  const total = mul(nll, 1 - eps).add(mul(smooth, eps / c));
  return reduction === 'none' ? total.reshape(outShape) : total;
}
