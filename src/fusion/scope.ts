import { isGradEnabled } from '../autograd.js';
import { anyForwardHooks, type Module } from '../nn/module.js';
import { withArena } from './arena.js';

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
