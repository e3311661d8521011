/**
 * torch.nn.functional, in camelCase: the differentiable CNN ops, re-exported from ops/.
 */
export { conv2d, shortcutA } from '../ops/conv.js';
export type { Conv2dOptions, Pair } from '../ops/conv.js';
export { batchNorm2d } from '../ops/norm.js';
export type { BatchNormOptions } from '../ops/norm.js';
export { maxPool2d, avgPool2d, adaptiveAvgPool2d } from '../ops/pool.js';
export type { MaxPool2dOptions, AvgPool2dOptions } from '../ops/pool.js';
export { linear, dropout } from '../ops/linear.js';
export { softmax, logSoftmax, nllLoss, crossEntropy } from '../ops/loss.js';
export type { Target, Reduction, NllLossOptions, CrossEntropyOptions } from '../ops/loss.js';
export { relu } from '../ops/elementwise.js';
export { flatten, pad } from '../ops/movement.js';
