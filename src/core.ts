/**
 * resnet-ts/core: the browser-safe API — everything but the Node-only helpers (files, image decoders, the worker
 * pool). Node users import 'resnet-ts', which adds those.
 */
import './kernels/tasks.js';

export { Tensor, tensor, zeros, ones, full, arange, rand, randn, memory } from './tensor.js';
export type { TensorLike, NestedArray, TensorOptions, MemoryInfo } from './tensor.js';
export { Generator, manualSeed, defaultGenerator } from './random.js';
export { noGrad, enableGrad, isGradEnabled, detectAnomaly, setDetectAnomaly } from './autograd.js';
export { config, setConfig, withConfig, defaultConfig } from './config.js';
export type { Config, WinogradPolicy } from './config.js';
export { withArena, emptyArena } from './fusion/arena.js';
export { withTrainingStep, type TrainingStepState } from './fusion/scope.js';
export { ResnetTsError, ShapeError, ValueError, AutogradError, AllocationError, StateDictError, ArgumentTypeError } from './errors.js';
export { add, sub, mul, div, neg, exp, log, sqrt, pow, abs, relu, sigmoid, tanh, clamp, maximum, minimum } from './ops/elementwise.js';
export { sum, mean, max, min, argmax, variance, variance as var } from './ops/reduce.js';
export type { VarOptions } from './ops/reduce.js';
export { matmul } from './ops/matmul.js';
export { reshape, view, permute, transpose, flatten, squeeze, unsqueeze, expand, cat, stack, narrow, slice, pad } from './ops/movement.js';
export * as nn from './nn/index.js';
export * as models from './models/index.js';
export * as optim from './optim/index.js';
export * as data from './data/index.js';
export * as io from './io/index.js';
export * as experiments from './experiments/index.js';
