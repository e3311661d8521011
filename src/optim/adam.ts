/**
 * Adam and AdamW. PyTorch equivalents: torch.optim.Adam and torch.optim.AdamW (1.13, single-tensor path, not
 * capturable), checked against the fixtures in test/fixtures/optim.
 */

import { ValueError } from '../errors.js';
import type { Tensor } from '../tensor.js';
import { checkBool, checkLr, checkWeightDecay, describeValue, Optimizer, pyFloat, type ParamGroupInput, type ParamState, type StateKeys } from './optimizer.js';

export interface AdamOptions {
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  amsgrad: boolean;
  maximize: boolean;
}

const fround = Math.fround;

/** A hyperparameter as PyTorch prints it (1e-08, nan), or what it is when it is not a number. */
const show = (v: unknown): string => (typeof v === 'number' ? pyFloat(v) : describeValue(v));

const ADAM_STATE: StateKeys = { buffers: ['exp_avg', 'exp_avg_sq', 'max_exp_avg_sq'], counts: ['step'], required: ['step', 'exp_avg', 'exp_avg_sq'] };

type AdamInput = readonly Tensor[] | ReadonlyArray<ParamGroupInput<AdamOptions>>;

/**
 * Shared Adam/AdamW step. Per element, with g the gradient (negated if `maximize`) and t the parameter's step count:
 *   Adam:  g = g + weightDecay·p               AdamW: p = p·(1 − lr·weightDecay)   (decoupled)
 *   m = β1·m + (1 − β1)·g ;  v = β2·v + (1 − β2)·g²  ;  amsgrad: vmax = max(vmax, v), used instead of v
 *   p = p − lr/(1 − β1^t) · m / (sqrt(v)/sqrt(1 − β2^t) + eps)
 * State per parameter (torch's keys): `step` (a number), `exp_avg`, `exp_avg_sq`, and `max_exp_avg_sq` if amsgrad.
 */
abstract class AdamBase extends Optimizer<AdamOptions> {
  protected abstract readonly decoupled: boolean;

  protected constructor(params: AdamInput, opts: Partial<AdamOptions>, defaultWeightDecay: number) {
    super(params, {
      lr: opts.lr ?? 1e-3,
      betas: opts.betas ? [opts.betas[0], opts.betas[1]] : [0.9, 0.999],
      eps: opts.eps ?? 1e-8,
      weightDecay: opts.weightDecay ?? defaultWeightDecay,
      amsgrad: opts.amsgrad ?? false,
      maximize: opts.maximize ?? false,
    });
  }

  protected validate(g: AdamOptions): void {
    const op = this.opName;
    checkLr(op, g.lr);
    if (typeof g.eps !== 'number' || !(g.eps >= 0 && g.eps < Infinity)) throw new ValueError(op, `Invalid epsilon value: ${show(g.eps)}`);
    if (!Array.isArray(g.betas)) throw new ValueError(op, `betas must be a pair of numbers, got ${describeValue(g.betas)}`);
    const [b1, b2] = g.betas;
    if (!(typeof b1 === 'number' && b1 >= 0 && b1 < 1)) throw new ValueError(op, `Invalid beta parameter at index 0: ${show(b1)}`);
    if (!(typeof b2 === 'number' && b2 >= 0 && b2 < 1)) throw new ValueError(op, `Invalid beta parameter at index 1: ${show(b2)}`);
    checkWeightDecay(op, g.weightDecay);
    checkBool(op, 'amsgrad', g.amsgrad);
    checkBool(op, 'maximize', g.maximize);
  }

  protected override stateKeys(): StateKeys {
    return ADAM_STATE;
  }

  step(): void {
    let index = 0;
    for (const group of this.paramGroups) {
      const { lr, eps, weightDecay, amsgrad, maximize } = group;
      const [beta1, beta2] = group.betas;
      const b1 = fround(beta1);
      const b2 = fround(beta2);
      const c1 = fround(1 - beta1);
      const c2 = fround(1 - beta2);
      const eps32 = fround(eps);
      const wd = fround(weightDecay);
      const decay = fround(1 - lr * weightDecay); // AdamW: param.mul_(1 - lr * weight_decay)
      for (const p of group.params) {
        const g = this.gradData(p, index++);
        if (g === null) continue;
        const x = p.data;
        const n = x.length;
        const st = this.stateFor(p, amsgrad);
        const t = (st.step as number) + 1;
        st.step = t;
        const m = st.exp_avg as Float32Array;
        const v = st.exp_avg_sq as Float32Array;
        const vmax = amsgrad ? (st.max_exp_avg_sq as Float32Array) : null;
        // Python-float scalars, as torch computes them (float64), cast to float32 where they enter a tensor op
        const biasCorrection1 = 1 - beta1 ** t;
        const biasCorrection2 = 1 - beta2 ** t;
        const negStepSize = fround(-(lr / biasCorrection1));
        const bc2Sqrt = fround(Math.sqrt(biasCorrection2));
        for (let i = 0; i < n; i++) {
          let gi = maximize ? -g[i]! : g[i]!;
          if (this.decoupled) {
            if (weightDecay !== 0) x[i] = x[i]! * decay;
          } else if (wd !== 0) {
            gi = fround(gi + wd * x[i]!);
          }
          const mi = fround(fround(m[i]! * b1) + c1 * gi); // exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
          m[i] = mi;
          // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2): value·g rounded, ·g rounded, + rounded
          let vi = fround(fround(v[i]! * b2) + fround(fround(c2 * gi) * gi));
          v[i] = vi;
          if (vmax !== null) {
            vi = Math.max(vmax[i]!, vi);
            vmax[i] = vi;
          }
          const denom = fround(fround(fround(Math.sqrt(vi)) / bc2Sqrt) + eps32); // (sqrt(v) / bc2_sqrt).add_(eps)
          // param.addcdiv_(exp_avg, denom, value=-step_size): the kernel evaluates self + value * t1 / t2 left to right
          x[i] = x[i]! + fround(fround(negStepSize * mi) / denom);
        }
      }
    }
  }

  private stateFor(p: Tensor, amsgrad: boolean): ParamState {
    let st = this.state.get(p);
    if (st === undefined || !(st.exp_avg instanceof Float32Array)) {
      st = { step: 0, exp_avg: new Float32Array(p.data.length), exp_avg_sq: new Float32Array(p.data.length) };
      this.state.set(p, st);
    }
    if (amsgrad && !(st.max_exp_avg_sq instanceof Float32Array)) st.max_exp_avg_sq = new Float32Array(p.data.length);
    return st;
  }
}

/** Adam with L2 weight decay added to the gradient. Defaults: lr 1e-3, betas [0.9, 0.999], eps 1e-8, weightDecay 0. */
export class Adam extends AdamBase {
  protected readonly decoupled = false;
  get kind(): string {
    return 'Adam';
  }
  constructor(params: AdamInput, opts: Partial<AdamOptions> = {}) {
    super(params, opts, 0);
  }
}

/** AdamW: decoupled weight decay (p ← p·(1 − lr·wd) before the Adam update). Default weightDecay 1e-2. */
export class AdamW extends AdamBase {
  protected readonly decoupled = true;
  get kind(): string {
    return 'AdamW';
  }
  constructor(params: AdamInput, opts: Partial<AdamOptions> = {}) {
    super(params, opts, 1e-2);
  }
}
