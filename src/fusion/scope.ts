import { isGradEnabled } from '../autograd.js';
import { anyForwardHooks, type Module } from '../nn/module.js';
import type { Optimizer } from '../optim/optimizer.js';
import { Tensor } from '../tensor.js';
import { closeStep, openStep, withArena } from './arena.js';

/**
 * A whole model's forward (ResNet, CifarResNet, the pre-activation nets): in eval mode without gradients and with no
 * forward hook anywhere, fn runs inside withArena, so a plain `noGrad(() => model.forward(x))` recycles its
 * activations as `withArena` does (shared buffers the worker threads use in place: no staging copies, no fresh
 * allocations). That is safe here without the caller's knowing: the model's own forward keeps no tensor but the one
 * it returns, and only a hook could see another. Otherwise (training, gradients on, a hook) fn runs as it is.
 */
export function modelForwardScope<T>(model: Module, fn: () => T): T {
  return !model.training && !isGradEnabled() && !anyForwardHooks() ? withArena(fn) : fn();
}

/** What a training step updates and keeps: its tensors are the ones that outlive the step. */
export interface TrainingStepState {
  model: Module;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  optimizer?: Optimizer<any>;
}

/**
 * Runs one training step (zeroGrad, forward, loss, backward, optimizer step) so that its activations, saved tensors
 * and gradients reuse the previous step's buffers, in shared memory that the worker threads read and write in place
 * (no staging copies; with the same shapes every step, no new buffers after the first).
 *
 * When fn returns, every buffer the step made goes back to a pool for the next step, except those of what outlives
 * it: fn's result (with the graph behind it, if backward has not freed it), and every tensor reachable from the model
 * and the optimizer (parameters, buffers, gradients, optimizer state, tensors a module keeps in a field). So fn must
 * keep no other tensor made inside it (in a variable outside fn, say): return it instead. With anomaly detection on
 * (detectAnomaly), recycled buffers are filled with NaN, so such a tensor shows up. A model with a forward hook
 * anywhere (which may keep any output) runs fn without reuse, as does a step inside another scope or one that
 * throws. Buffers that neither this step nor the one before used are dropped, so memory stays at one step's worth
 * while the shapes stay the same (two steps' after a batch of another size, such as an epoch's last, whose next
 * step then reuses the usual size's buffers).
 */
export function withTrainingStep<T>(state: TrainingStepState, fn: () => T): T {
  if (anyForwardHooks() || !openStep()) return fn();
  let result: T;
  try {
    result = fn();
  } catch (e) {
    closeStep(null);
    throw e;
  }
  const keep = new Set<ArrayBufferView>();
  collectLive([result, state.model, state.optimizer], keep);
  closeStep(keep);
  return result;
}

/**
 * Adds to `into` every typed array reachable from `roots` through Tensors (data, grad, and the inputs and saved
 * context of a graph node not yet freed), arrays, Maps, Sets and the fields of any other object. Iterative: a kept
 * graph may be thousands of nodes deep.
 */
function collectLive(roots: unknown[], into: Set<ArrayBufferView>): void {
  const seen = new Set<object>();
  const stack: unknown[] = [...roots];
  while (stack.length > 0) {
    const v = stack.pop();
    if (v === null || typeof v !== 'object' || seen.has(v)) continue;
    seen.add(v);
    if (ArrayBuffer.isView(v)) into.add(v);
    else if (v instanceof Tensor) {
      stack.push(v.data, v.grad);
      if (v.gradFn !== null && !v.gradFn.freed) stack.push(v.gradFn.inputs, v.gradFn.ctx);
    } else if (v instanceof Map) for (const [k, e] of v) stack.push(k, e);
    else if (v instanceof Set || Array.isArray(v)) for (const e of v) stack.push(e);
    else for (const e of Object.values(v)) stack.push(e);
  }
}
