/**
 * Adam and AdamW. PyTorch equivalents: torch.optim.Adam and torch.optim.AdamW (1.13, single-tensor path, not
 * capturable), checked against the fixtures in test/fixtures/optim.
 */

import { ValueError } from '../errors.js';
import { adamUpdateMany, isResident, residentBuffer, type AdamParams, type AdamStep } from '../kernels/optim.js';
import { ADAM_DECOUPLED, ADAM_L2, ADAM_NONE } from '../kernels/wasm/optim.js';
import { allocShared } from '../shape.js';
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
      const wd = fround(weightDecay);
      const mode = this.decoupled ? (weightDecay !== 0 ? ADAM_DECOUPLED : ADAM_NONE) : wd !== 0 ? ADAM_L2 : ADAM_NONE;
      const q: AdamParams = {
        b1: fround(beta1), c1: fround(1 - beta1), b2: fround(beta2), c2: fround(1 - beta2), eps: fround(eps), mode, wd,
        decay: fround(1 - lr * weightDecay), // AdamW: param.mul_(1 - lr * weight_decay)
        amsgrad, maximize,
      };
      // The group's parameters go to the threads as one task (adamUpdateMany); tied weights (two tensors over one
      // array) one after the other, as separate updates would run.
      const xs: Float32Array[] = [], ms: Float32Array[] = [], vs: Float32Array[] = [], vmaxs: (Float32Array | null)[] = [], gs: Float32Array[] = [];
      const steps: AdamStep[] = [];
      for (const p of group.params) {
        const g = this.gradData(p, index++);
        if (g === null) continue;
        const st = this.stateFor(p, amsgrad);
        const t = (st.step as number) + 1;
        st.step = t;
        // Python-float scalars, as torch computes them (float64), cast to float32 where they enter a tensor op
        const biasCorrection1 = 1 - beta1 ** t;
        const biasCorrection2 = 1 - beta2 ** t;
        xs.push(p.data);
        ms.push(st.exp_avg as Float32Array);
        vs.push(st.exp_avg_sq as Float32Array);
        vmaxs.push(amsgrad ? (st.max_exp_avg_sq as Float32Array) : null);
        gs.push(g);
        steps.push({ negStepSize: fround(-(lr / biasCorrection1)), bc2Sqrt: fround(Math.sqrt(biasCorrection2)) });
      }
      if (new Set(xs).size === xs.length) adamUpdateMany(xs, ms, vs, vmaxs, gs, steps, q);
      else xs.forEach((x, k) => adamUpdateMany([x], [ms[k]!], [vs[k]!], [vmaxs[k]!], [gs[k]!], [steps[k]!], q));
    }
  }

  /**
   * The parameter's state, its buffers in the resident memory where there is one (the SIMD update runs on them in
   * place), else in shared memory (the threads read and write them in place); a loaded buffer moves there.
   */
  private stateFor(p: Tensor, amsgrad: boolean): ParamState {
    const n = p.data.length;
    const place = (a: unknown): Float32Array => {
      const old = a instanceof Float32Array ? a : null;
      if (old !== null && isResident(old)) return old;
      const moved = residentBuffer(n) ?? (old === null || !(old.buffer instanceof SharedArrayBuffer) ? allocShared(this.opName, n) : null);
      if (moved === null) return old!;
      if (old !== null) moved.set(old);
      return moved;
    };
    let st = this.state.get(p);
    if (st === undefined || !(st.exp_avg instanceof Float32Array)) {
      st = { step: 0, exp_avg: place(null), exp_avg_sq: place(null) };
      this.state.set(p, st);
    }
    st.exp_avg = place(st.exp_avg);
    st.exp_avg_sq = place(st.exp_avg_sq);
    if (amsgrad) st.max_exp_avg_sq = place(st.max_exp_avg_sq);
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
