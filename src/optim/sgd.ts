/**
 * Stochastic gradient descent with optional momentum, dampening, Nesterov momentum and L2 weight decay.
 * PyTorch equivalent: torch.optim.SGD (1.13, single-tensor path), which the fixtures in test/fixtures/optim check.
 */

import { ValueError } from '../errors.js';
import { isResident, residentBuffer, sgdUpdate, sgdUpdateMany } from '../kernels/optim.js';
import { allocShared } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { checkBool, checkLr, checkWeightDecay, Optimizer, type ParamGroupInput, type StateKeys } from './optimizer.js';

export interface SGDOptions {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
  maximize: boolean;
}

const fround = Math.fround;

const SGD_STATE: StateKeys = { buffers: ['momentum_buffer'], counts: [], required: [] };

/**
 * Per element, with g the gradient (negated if `maximize`):
 *   d = g + weightDecay·p
 *   buf = d at a parameter's first step, else momentum·buf + (1 − dampening)·d      (only if momentum ≠ 0)
 *   d = d + momentum·buf if nesterov, else buf                                        (only if momentum ≠ 0)
 *   p = p − lr·d
 * State per parameter: `momentum_buffer` (only when momentum ≠ 0), as in torch.
 */
export class SGD extends Optimizer<SGDOptions> {
  get kind(): string {
    return 'SGD';
  }

  constructor(
    params: readonly Tensor[] | ReadonlyArray<ParamGroupInput<SGDOptions>>,
    opts: { lr: number } & Partial<SGDOptions>,
  ) {
    super(params, {
      lr: opts.lr,
      momentum: opts.momentum ?? 0,
      dampening: opts.dampening ?? 0,
      weightDecay: opts.weightDecay ?? 0,
      nesterov: opts.nesterov ?? false,
      maximize: opts.maximize ?? false,
    });
  }

  protected validate(g: SGDOptions): void {
    const op = this.opName;
    if (typeof g.lr !== 'number') throw new ValueError(op, `parameter group didn't specify a value of required optimization parameter lr`);
    checkLr(op, g.lr);
    // torch checks momentum >= 0 only; infinite values would turn the parameters into ±inf or NaN at the first step
    if (typeof g.momentum !== 'number' || !(g.momentum >= 0 && g.momentum < Infinity)) throw new ValueError(op, `Invalid momentum value: ${String(g.momentum)}`);
    if (typeof g.dampening !== 'number' || !Number.isFinite(g.dampening)) throw new ValueError(op, `Invalid dampening value: ${String(g.dampening)}`);
    checkWeightDecay(op, g.weightDecay);
    checkBool(op, 'nesterov', g.nesterov);
    checkBool(op, 'maximize', g.maximize);
    if (g.nesterov && (g.momentum <= 0 || g.dampening !== 0)) {
      throw new ValueError(op, 'Nesterov momentum requires a momentum and zero dampening');
    }
  }

  protected override stateKeys(): StateKeys {
    return SGD_STATE;
  }

  step(): void {
    let index = 0;
    for (const group of this.paramGroups) {
      const { momentum, dampening, weightDecay, nesterov, maximize } = group;
      // torch casts the Python-float hyperparameters to float32 inside each op
      const wd = fround(weightDecay);
      const mu = fround(momentum);
      const damp = fround(1 - dampening);
      const negLr = fround(-group.lr);
      // The group's parameters go to the threads as one task per kind of step (without momentum, or a momentum
      // buffer's first step or a later one): sgdUpdateMany, the same bits as one update per parameter.
      const batch = [[[], [], []], [[], [], []]] as [Float32Array[], (Float32Array | null)[], Float32Array[]][];
      for (const p of group.params) {
        const g = this.gradData(p, index++);
        if (g === null) continue;
        if (momentum === 0) {
          const [xs, bufs, gs] = batch[0]!;
          xs.push(p.data);
          bufs.push(null);
          gs.push(g);
          continue;
        }
        let st = this.state.get(p);
        let buf = st?.momentum_buffer;
        const first = !(buf instanceof Float32Array);
        if (first || !isResident(buf as Float32Array)) {
          // In the resident memory where there is one (the SIMD update runs on it in place), else in shared memory
          // (as the parameters are): the threaded update reads and writes it in place. A loaded buffer moves there.
          const moved = residentBuffer(p.data.length) ?? (first ? allocShared('SGD', p.data.length) : null);
          if (moved !== null) {
            if (!first) moved.set(buf as Float32Array);
            buf = moved;
            if (st === undefined) {
              st = {};
              this.state.set(p, st);
            }
            st.momentum_buffer = buf;
          }
        }
        const [xs, bufs, gs] = batch[first ? 1 : 0]!;
        xs.push(p.data);
        bufs.push(buf as Float32Array);
        gs.push(g);
      }
      batch.forEach(([xs, bufs, gs], first) => {
        const q = { negLr, wd, mu, damp, nesterov, maximize, first: first === 1 };
        // Two tensors over one array (tied weights): one after the other, as separate updates would run.
        if (new Set(xs).size === xs.length) sgdUpdateMany(xs, bufs, gs, q);
        else xs.forEach((x, k) => sgdUpdate(x, bufs[k] ?? null, gs[k]!, q));
      });
    }
  }
}
