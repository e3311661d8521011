/**
 * Gradient clipping by total norm. PyTorch equivalent: torch.nn.utils.clip_grad_norm_ (1.13).
 */

import { ValueError } from '../errors.js';
import type { Tensor } from '../tensor.js';

const fround = Math.fround;

/** p-norm of one float32 buffer, accumulated in float64 and rounded to float32 like torch's float32 result. */
function norm(x: ArrayLike<number>, p: number): number {
  let acc = 0;
  const n = x.length;
  if (p === Infinity) {
    for (let i = 0; i < n; i++) acc = Math.max(acc, Math.abs(x[i]!));
    return fround(acc);
  }
  if (p === 0) {
    for (let i = 0; i < n; i++) if (x[i] !== 0) acc++;
    return fround(acc);
  }
  if (p === 1) {
    for (let i = 0; i < n; i++) acc += Math.abs(x[i]!);
    return fround(acc);
  }
  if (p === 2) {
    for (let i = 0; i < n; i++) acc += x[i]! * x[i]!;
    return fround(Math.sqrt(acc));
  }
  for (let i = 0; i < n; i++) acc += Math.abs(x[i]!) ** p;
  return fround(acc ** (1 / p));
}

/**
 * Scales the gradients of `params` in place so that their total `normType`-norm (as if all gradients were one
 * vector) is at most `maxNorm`, and returns that total norm (before clipping). As in PyTorch:
 * total = norm of the per-tensor norms; coef = maxNorm / (total + 1e-6), applied only if < 1. Parameters whose grad is
 * null are ignored; with none at all the result is 0. normType: any p > 0, 0 (count of non-zeros) or Infinity (max |g|).
 */
export function clipGradNorm(
  params: Tensor | Iterable<Tensor>,
  maxNorm: number,
  normType = 2,
  opts: { errorIfNonfinite?: boolean } = {},
): number {
  if (typeof normType !== 'number' || !(normType >= 0)) throw new ValueError('clipGradNorm', `normType must be >= 0 or Infinity, got ${String(normType)}`);
  // torch takes any float; a negative or NaN maxNorm would flip or poison every gradient. +Infinity is allowed:
  // it clips nothing, the usual way to just measure the total norm.
  if (typeof maxNorm !== 'number' || !(maxNorm >= 0)) {
    throw new ValueError('clipGradNorm', `maxNorm must be a number >= 0 (or Infinity), got ${String(maxNorm)}`);
  }
  const list = Symbol.iterator in Object(params) ? Array.from(params as Iterable<Tensor>) : [params as Tensor];
  const grads = list.flatMap((p) => (p.grad === null ? [] : [p.grad.data]));
  if (grads.length === 0) return 0;
  const total = norm(grads.map((g) => norm(g, normType)), normType);
  if (opts.errorIfNonfinite && !Number.isFinite(total)) {
    throw new ValueError('clipGradNorm', `The total norm of order ${normType} for gradients from \`parameters\` is non-finite, so it cannot be clipped. To disable this error and scale the gradients by the non-finite norm anyway, set \`errorIfNonfinite=false\``);
  }
  // torch: max_norm / (total_norm + 1e-6) in float32, where float / tensor is reciprocal(tensor) * float
  const coef = fround(fround(1 / fround(total + fround(1e-6))) * fround(maxNorm));
  if (coef < 1) {
    for (const g of grads) for (let i = 0; i < g.length; i++) g[i] = g[i]! * coef;
  } else if (Number.isNaN(coef)) {
    for (const g of grads) g.fill(NaN); // torch multiplies by clamp(NaN, max=1) = NaN
  }
  return total;
}
