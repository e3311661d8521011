/** Optimizers, gradient clipping, learning-rate schedules and optimizer checkpoint helpers. */
export { Optimizer, pyFloat } from './optimizer.js';
export type { ParamGroup, ParamGroupInput, ParamState, OptimizerStateDict } from './optimizer.js';
export { SGD } from './sgd.js';
export type { SGDOptions } from './sgd.js';
export { Adam, AdamW } from './adam.js';
export type { AdamOptions } from './adam.js';
export { clipGradNorm } from './clip.js';
export {
  LRScheduler,
  StepLR,
  MultiStepLR,
  ConstantLR,
  LinearLR,
  ExponentialLR,
  CosineAnnealingLR,
  LambdaLR,
  SequentialLR,
  OneCycleLR,
  CifarResnetSchedule,
  cifarResnetSchedule,
} from './lr_scheduler.js';
export type { AnyOptimizer, SchedulerStateDict, OneCycleOptions, CifarScheduleOptions } from './lr_scheduler.js';
export { optimizerStateToTensors, optimizerStateFromTensors } from './state.js';
