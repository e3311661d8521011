import * as M from '../models/index.js';
import type { Module } from '../nn/module.js';
import { UsageError } from './args.js';

/** Options every model factory accepts from the command line. */
export interface ModelArgs {
  numClasses?: number;
  inChannels?: number;
  [option: string]: unknown;
}

/** Every model the CLI can build, by its factory name. */
export const MODEL_FACTORIES: Record<string, (o: ModelArgs) => Module> = {
  resnet18: M.resnet18, resnet34: M.resnet34, resnet50: M.resnet50, resnet101: M.resnet101, resnet152: M.resnet152,
  resnext50_32x4d: M.resnext50_32x4d, resnext101_32x8d: M.resnext101_32x8d, resnext101_64x4d: M.resnext101_64x4d,
  wide_resnet50_2: M.wide_resnet50_2, wide_resnet101_2: M.wide_resnet101_2,
  resnet20: M.resnet20, resnet32: M.resnet32, resnet44: M.resnet44, resnet56: M.resnet56, resnet110: M.resnet110, resnet1202: M.resnet1202,
  plain20: M.plain20, plain32: M.plain32, plain44: M.plain44, plain56: M.plain56, plain110: M.plain110,
  preactResnet18: M.preactResnet18, preactResnet34: M.preactResnet34, preactResnet50: M.preactResnet50,
  preactResnet101: M.preactResnet101, preactResnet152: M.preactResnet152,
  preactResnet110: M.preactResnet110, preactResnet164: M.preactResnet164, preactResnet1001: M.preactResnet1001,
};

/** The CIFAR-sized models (32×32 inputs by default). */
export const isCifarModel = (name: string): boolean => /^(resnet(20|32|44|56|110|1202)|plain\d+|preactResnet(110|164|1001))$/.test(name);

export function buildModel(name: string, opts: ModelArgs = {}): Module {
  const f = MODEL_FACTORIES[name];
  if (!f) throw new UsageError(`unknown model '${name}'. Available models:\n  ${Object.keys(MODEL_FACTORIES).join(', ')}`);
  return f(opts);
}
