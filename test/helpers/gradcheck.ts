/**
 * Finite-difference gradient check (torch.autograd.gradcheck's idea, in float32).
 *
 * The scalar probed is L(x) = Σ_i out_i · r_i with fixed random weights r (so every output element matters, not
 * just their sum), accumulated in float64 from the float32 outputs. Each input element is moved by ±eps and
 * dL/dx ≈ (L(x+δ₊) − L(x−δ₋)) / (δ₊ + δ₋), where δ± are the steps as they actually land in float32.
 *
 * Tolerance (defaults eps = 1e-2, atol = 5e-3, rtol = 1e-2), and why: the forward runs in float32, so L carries a
 * rounding error of about 6e-8·Σ|out_i·r_i|; dividing by 2·eps = 2e-2 turns that into ~3e-6·Σ|out·r| (≈ 1e-4 for
 * the ~10–100-element outputs used here). The truncation error of central differences is eps²/6·|L'''| ≈ 2e-5·|L'''|,
 * small for the smooth ops checked and for piecewise-linear ops whose inputs sit more than eps away from every kink.
 * A wrong gradient (a missing term, a transposed index, a wrong scale) is off by O(1), far outside 5e-3 + 1e-2·|g|.
 * Smaller eps would drown in float32 rounding; larger eps would let curvature in.
 */
import { noGrad, Tensor } from '../../src/index.js';
import { expectClose, type Tol } from './fixtures.js';

/** Small seeded PRNG (mulberry32): test inputs that do not depend on the library's own generator. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Uniform values in [lo, hi) as a tensor of `shape`, from a seeded PRNG. */
export function uniform(rng: () => number, shape: number[], lo = -1, hi = 1, requiresGrad = true): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) d[i] = lo + (hi - lo) * rng();
  const t = new Tensor(d, shape);
  t.requiresGrad = requiresGrad;
  return t;
}

/**
 * Distinct values at least `gap` apart in random order, none within gap/2 of zero: inputs for max/min/relu/abs/pools
 * that stay away from kinks and ties under ±eps moves (needs gap > 2·eps).
 */
export function spaced(rng: () => number, shape: number[], gap = 0.05, requiresGrad = true): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const vals = Array.from({ length: n }, (_, i) => (i - n / 2 + 0.5) * gap);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [vals[i], vals[j]] = [vals[j]!, vals[i]!];
  }
  const t = new Tensor(Float32Array.from(vals), shape);
  t.requiresGrad = requiresGrad;
  return t;
}

export interface GradcheckOptions extends Tol {
  eps?: number;
  seed?: number;
}

/**
 * Checks every requiresGrad input's analytic gradient (from backward) against central differences.
 * `fn` must be deterministic and must not keep state between calls (e.g. BN without running stats).
 */
export function gradcheck(
  fn: (...inputs: Tensor[]) => Tensor,
  inputs: Tensor[],
  label: string,
  { eps = 1e-2, atol = 5e-3, rtol = 1e-2, seed = 1234 }: GradcheckOptions = {},
): void {
  for (const x of inputs) x.grad = null;
  const out = fn(...inputs);
  const rng = mulberry32(seed);
  const r = new Float32Array(out.size);
  for (let i = 0; i < r.length; i++) r[i] = 2 * rng() - 1;
  out.backward(new Tensor(r, out.shape));

  const loss = (): number => {
    const y = noGrad(() => fn(...inputs));
    let s = 0;
    for (let i = 0; i < r.length; i++) s += y.data[i]! * r[i]!;
    return s;
  };

  inputs.forEach((x, k) => {
    if (!x.requiresGrad) return;
    const numeric = new Array<number>(x.size);
    for (let i = 0; i < x.size; i++) {
      const v = x.data[i]!;
      x.data[i] = v + eps;
      const up = x.data[i]! - v;
      const lp = loss();
      x.data[i] = v - eps;
      const down = v - x.data[i]!;
      const lm = loss();
      x.data[i] = v;
      numeric[i] = (lp - lm) / (up + down);
    }
    const analytic = x.grad ? x.grad.data : new Float32Array(x.size);
    expectClose(analytic, numeric, x.shape, `${label} grad[${k}] vs finite differences`, { atol, rtol });
  });
}
