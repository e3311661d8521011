/** torch.nn: modules, init and functional. */
export { Module } from './module.js';
export type { ForwardHook, ForwardPreHook, RemovableHandle } from './module.js';
export { Conv2d, BatchNorm2d, ReLU, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, Linear, Flatten, Identity, Dropout, Sequential } from './layers.js';
export type { Conv2dModuleOptions, BatchNormModuleOptions } from './layers.js';
export * as init from './init.js';
export * as functional from './functional.js';
