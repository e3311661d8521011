/**
 * The image-folder side of `resnet-ts train`: a folder of class subfolders as training data (torchvision's
 * ImageFolder with the ImageNet recipe's transforms), a validation split, and fine-tuning from a state dict with the
 * classifier replaced and, optionally, the backbone frozen.
 */
import { readdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { ResnetTsError, StateDictError } from '../errors.js';
import { evalTransform, trainTransform } from '../data/image-transforms.js';
import { ImageFolder, IMG_EXTENSIONS } from '../data/imagefolder.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../io/preprocess.js';
import { loadSafetensorsFile } from '../io/safetensors-file.js';
import type { Module } from '../nn/module.js';
import { Generator } from '../random.js';
import type { Tensor } from '../tensor.js';
import { UsageError } from './args.js';
import { classifier } from './predict.js';

/** True when `dir` holds at least one subfolder with an image file in it (or one level further down). */
export function looksLikeImageFolder(dir: string): boolean {
  const isImage = (f: string): boolean => IMG_EXTENSIONS.includes(extname(f).toLowerCase());
  const subdirs = (d: string): string[] => readdirSync(d).map((n) => join(d, n)).filter((p) => statSync(p).isDirectory());
  try {
    return subdirs(dir).some((c) => readdirSync(c).some(isImage) || subdirs(c).some((s) => readdirSync(s).some(isImage)));
  } catch {
    return false;
  }
}

export interface FolderDataOptions {
  data: string;
  /** A separate validation folder; default: hold out `valSplit` of `data`. */
  valData?: string;
  valSplit: number;
  imageSize: number;
  augment: boolean;
  seed: number;
  skipBadFiles: boolean;
  /** Train on this many images (a seeded random choice), validate on at most `testSubset`. */
  subset?: number;
  testSubset?: number;
}

export interface FolderData {
  train: ImageFolder;
  val: ImageFolder;
  classes: readonly string[];
  mean: number[];
  std: number[];
  note: string;
}

/** `count` indices of 0..n-1 drawn by a seeded permutation, in increasing order. */
function pick(perm: Int32Array, from: number, count: number): number[] {
  return Array.from(perm.subarray(from, from + count)).sort((a, b) => a - b);
}

/**
 * Training data from an image folder: RandomResizedCrop(size) + RandomHorizontalFlip (or, with augment off,
 * Resize + CenterCrop) then ToTensor + Normalize(ImageNet mean, std), the statistics pretrained torchvision weights
 * expect; validation with Resize(size · 256/224) + CenterCrop(size).
 */
export function imageFolderData(o: FolderDataOptions): FolderData {
  const mean = [...IMAGENET_MEAN];
  const std = [...IMAGENET_STD];
  const evalTf = evalTransform(o.imageSize, mean, std);
  const trainTf = o.augment ? trainTransform(o.imageSize, mean, std) : evalTf;
  const full = new ImageFolder(o.data, { transform: trainTf, skipBadFiles: o.skipBadFiles });
  const gen = new Generator(o.seed);
  let train: ImageFolder;
  let val: ImageFolder;
  let note: string;
  if (o.valData !== undefined) {
    const v = new ImageFolder(o.valData, { transform: evalTf, skipBadFiles: o.skipBadFiles, classes: full.classes });
    const perm = gen.permutation(full.length);
    train = full.subset(pick(perm, 0, Math.min(full.length, o.subset ?? Infinity)));
    val = v.subset(pick(new Generator(o.seed + 1).permutation(v.length), 0, Math.min(v.length, o.testSubset ?? Infinity)));
    note = `image folders: ${o.data} (${full.length} images), validation ${o.valData} (${v.length}), ${full.numClasses} classes`;
  } else {
    const nVal = Math.max(1, Math.round(o.valSplit * full.length));
    if (nVal >= full.length) throw new UsageError(`--val-split ${o.valSplit} leaves no training images out of ${full.length}`);
    const perm = gen.permutation(full.length);
    val = full.subset(pick(perm, 0, Math.min(nVal, o.testSubset ?? Infinity)), evalTf);
    train = full.subset(pick(perm, nVal, Math.min(full.length - nVal, o.subset ?? Infinity)));
    note = `image folder ${o.data}: ${full.length} images in ${full.numClasses} classes, ${nVal} held out for validation (--val-split ${o.valSplit})`;
  }
  return { train, val, classes: full.classes, mean, std, note };
}

/**
 * Loads a state dict (a plain one, or a `resnet-ts train` checkpoint's `model.` entries) into `model` strictly,
 * except the classifier (the last Linear, `fc`), which keeps its fresh initialization: any other missing,
 * unexpected or mis-sized key is a StateDictError. Returns the classifier's name.
 */
export function loadBackbone(model: Module, path: string): string {
  let sd = loadSafetensorsFile(path);
  if (Object.keys(sd).some((k) => k.startsWith('model.'))) {
    const inner: Record<string, Tensor> = {};
    for (const [k, t] of Object.entries(sd)) if (k.startsWith('model.')) inner[k.slice(6)] = t;
    sd = inner;
  }
  const fc = classifier(model);
  if (fc === null) throw new ResnetTsError('train', '--weights: the model has no Linear classifier to replace');
  const [name] = fc;
  const rest: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(sd)) if (k !== `${name}.weight` && k !== `${name}.bias`) rest[k] = t;
  const { missingKeys } = model.loadStateDict(rest, { strict: false });
  const unexpected = Object.keys(rest).filter((k) => !Object.prototype.hasOwnProperty.call(model.stateDict(), k));
  const missing = missingKeys.filter((k) => !k.startsWith(`${name}.`));
  if (missing.length || unexpected.length) {
    const parts = [];
    if (unexpected.length) parts.push(`unexpected key(s): ${unexpected.slice(0, 8).join(', ')}${unexpected.length > 8 ? ` … (${unexpected.length})` : ''}`);
    if (missing.length) parts.push(`missing key(s): ${missing.slice(0, 8).join(', ')}${missing.length > 8 ? ` … (${missing.length})` : ''}`);
    throw new StateDictError('train', `--weights ${path} does not fit the model apart from its classifier ${name}: ${parts.join('; ')}`);
  }
  return name;
}

/** Turns off gradients for every parameter outside the classifier; returns the classifier's parameters. */
export function freezeBackbone(model: Module): Tensor[] {
  const fc = classifier(model);
  if (fc === null) throw new ResnetTsError('train', '--freeze-backbone: the model has no Linear classifier');
  const keep = new Set(fc[1].parameters());
  for (const p of model.parameters()) if (!keep.has(p)) p.requiresGrad = false;
  return [...keep];
}
