/**
 * `resnet-ts predict`: classify images with a ResNet and a .safetensors checkpoint, torchvision-style.
 *
 * The pipeline is torchvision's ImageNet evaluation recipe: PIL-equivalent decoding (`Image.open(f).convert('RGB')`),
 * Resize(256) → CenterCrop(224) → ToTensor → Normalize (imagenetPreprocess), then the model in eval mode under
 * noGrad, the images batched (one forward per --batch-size images), softmax over the classes.
 *
 * Errors name what to fix: a missing or unreadable file (its role and path), an unknown model (the list), a checkpoint
 * that does not fit the model (the StateDictError's keys and shapes, plus a --num-classes hint when only the
 * classifier's size differs), an image that cannot be decoded (the file and the decoder's part), a labels file with
 * the wrong number of lines. Bad usage throws UsageError (exit 2), everything else exits 1.
 */

import { readFileSync, statSync } from 'node:fs';
import { noGrad } from '../autograd.js';
import { withArena } from '../fusion/arena.js';
import { ResnetTsError, StateDictError } from '../errors.js';
import { evalTransform, isFloatImage, type ImageTransform } from '../data/image-transforms.js';
import { decodeImage, ImageDecodeError, toRgb, type DecodedImage } from '../io/image.js';
import { IMAGENET_CLASSES } from '../io/imagenet-classes.js';
import { imagenetPreprocess } from '../io/preprocess.js';
import { loadSafetensorsFile, readSafetensorsMetadataFile } from '../io/safetensors-file.js';
import { Generator } from '../random.js';
import { Linear } from '../nn/layers.js';
import type { Module } from '../nn/module.js';
import { softmax } from '../ops/loss.js';
import { Tensor } from '../tensor.js';
import { intFlag, parse, UsageError } from './args.js';
import type { Command } from './commands.js';
import { buildModel, MODEL_FACTORIES } from './registry.js';
import { startThreads } from '../parallel/index.js';
import { withoutRandomInit } from '../nn/init.js';

/** A file the command needs that is missing or unreadable. `op` is the file's role: image, weights or labels. */
export class InputFileError extends ResnetTsError {}

export interface PredictOptions {
  /** Model factory name (MODEL_FACTORIES). */
  model: string;
  /** Path of a .safetensors state dict with torchvision key names. */
  weights: string;
  /** Image paths (PNG, JPEG, binary PPM/PGM). */
  images: string[];
  /** How many classes to report per image (default 5, at most the number of classes). */
  topk?: number;
  /** Size of the classifier (default: the factory's, 1000 for the ImageNet models). */
  numClasses?: number;
  /** A file with one class name a line; default: the ImageNet names for 1000 classes, else "class <i>". */
  labels?: string;
  /** Images per forward pass (default 32). */
  batchSize?: number;
}

export interface ClassScore {
  index: number;
  label: string;
  probability: number;
}

export interface ImagePrediction {
  image: string;
  top: ClassScore[];
}

/** Throws InputFileError unless `path` is an existing regular file. */
function checkFile(role: string, path: string): void {
  let isFile: boolean;
  try {
    isFile = statSync(path).isFile();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new InputFileError(role, code === 'ENOENT' ? `no such file: ${path}` : `cannot read ${path}: ${(e as Error).message}`);
  }
  if (!isFile) throw new InputFileError(role, `not a file: ${path}`);
}

function readInput(role: string, path: string): Uint8Array {
  checkFile(role, path);
  try {
    return readFileSync(path);
  } catch (e) {
    throw new InputFileError(role, `cannot read ${path}: ${(e as Error).message}`);
  }
}

/**
 * Reads and decodes an image file, then applies the ImageNet transform: (3, 224, 224) float32, normalized.
 * Decoding errors are rethrown as ImageDecodeError with the path in front of the decoder's message.
 */
export function loadImageTensor(path: string, transform?: ImageTransform): Float32Array {
  const bytes = readInput('image', path);
  let img: DecodedImage;
  try {
    img = decodeImage(bytes);
  } catch (e) {
    if (e instanceof ImageDecodeError) throw new ImageDecodeError(e.op, `${path}: ${e.message.slice(e.op.length + 3)}`);
    throw e;
  }
  if (transform === undefined) return imagenetPreprocess(img).data;
  const x = transform.apply(toRgb(img), new Generator(0));
  if (!isFloatImage(x)) throw new ResnetTsError('predict', 'the saved transform does not end with toTensor');
  return x.data;
}

interface SavedMetadata {
  /** Class names saved by `resnet-ts train`. */
  classes?: string[];
  /** The evaluation transform of a model trained on an image folder, and its crop size. */
  transform?: ImageTransform;
  imageSize: number;
}

/** What `resnet-ts train` saved next to the weights: class names, and the image size and normalization it used. */
function savedMetadata(path: string): SavedMetadata {
  let meta: Record<string, string>;
  try {
    meta = readSafetensorsMetadataFile(path);
  } catch {
    return { imageSize: 224 }; // loadWeights reports what is wrong with the file
  }
  const json = (k: string): unknown => {
    try {
      return meta[k] === undefined ? undefined : JSON.parse(meta[k]!);
    } catch {
      return undefined;
    }
  };
  const classes = json('classes');
  const out: SavedMetadata = { imageSize: 224 };
  if (Array.isArray(classes) && classes.every((c) => typeof c === 'string')) out.classes = classes;
  const size = Number(meta.imageSize);
  const mean = json('mean');
  const std = json('std');
  if (Number.isInteger(size) && size >= 1 && Array.isArray(mean) && Array.isArray(std)) {
    out.imageSize = size;
    out.transform = evalTransform(size, mean as number[], std as number[]);
  }
  return out;
}

/**
 * One class name a line (a trailing newline, CRLF line ends and a UTF-8 BOM are fine). The count must equal
 * `numClasses`; `numClassesGiven` only changes the hint in the error.
 */
export function readLabels(path: string, numClasses: number, numClassesGiven = true): string[] {
  const text = new TextDecoder('utf-8').decode(readInput('labels', path)).replace(/^\uFEFF/, '');
  const lines = text.split(/\r?\n/);
  while (lines.length && lines[lines.length - 1] === '') lines.pop(); // trailing newline(s)
  if (lines.length !== numClasses) {
    const hint = numClassesGiven ? '' : ` (for a checkpoint with ${lines.length} classes, pass --num-classes ${lines.length})`;
    throw new InputFileError('labels', `${path} has ${lines.length} lines but the model has ${numClasses} classes; give one class name per line${hint}`);
  }
  return lines;
}

/** The last Linear layer and its dotted name (the classifier: `fc` in every model of the registry). */
export function classifier(model: Module): [string, Linear] | null {
  let found: [string, Linear] | null = null;
  for (const [name, m] of model.namedModules()) if (m instanceof Linear) found = [name, m];
  return found;
}

/** Loads the checkpoint; on a mismatch that is only the classifier's size, adds a --num-classes hint. */
export function loadWeights(model: Module, path: string): void {
  let sd = loadSafetensorsFile(path);
  // a `resnet-ts train` checkpoint.safetensors holds the model under `model.` (next to the optimizer state)
  const keys = Object.keys(sd);
  if (keys.some((k) => k.startsWith('model.')) && !Object.prototype.hasOwnProperty.call(model.stateDict(), keys[0]!)) {
    const inner: Record<string, Tensor> = {};
    for (const k of keys) if (k.startsWith('model.')) inner[k.slice(6)] = sd[k]!;
    sd = inner;
  }
  try {
    model.loadStateDict(sd);
  } catch (e) {
    const fc = classifier(model);
    const w = fc ? sd[`${fc[0]}.weight`] : undefined;
    if (e instanceof StateDictError && fc && w && w.shape.length === 2 && w.shape[0] !== fc[1].outFeatures) {
      const hint = `\n(the checkpoint's classifier ${fc[0]} has ${w.shape[0]} outputs: pass --num-classes ${w.shape[0]})`;
      throw new StateDictError(e.op, `${e.message.slice(e.op.length + 3)}${hint}`);
    }
    throw e;
  }
}

/** The k best classes of one row of probabilities, best first (ties: lower index first). */
function topK(probs: Float32Array, offset: number, n: number, k: number, labels: readonly string[]): ClassScore[] {
  const idx = Array.from({ length: n }, (_, i) => i);
  idx.sort((a, b) => probs[offset + b]! - probs[offset + a]! || a - b);
  return idx.slice(0, k).map((i) => ({ index: i, label: labels[i]!, probability: probs[offset + i]! }));
}

/**
 * Classifies images: decode + ImageNet transform each, load the checkpoint into `model` (eval mode), forward in
 * batches under noGrad, softmax, top-k. Checks every file before the heavy work.
 */
export function predict(o: PredictOptions): ImagePrediction[] {
  const topk = o.topk ?? 5;
  const batchSize = o.batchSize ?? 32;
  if (o.images.length === 0) throw new UsageError('missing IMAGE (one or more image files)');
  checkFile('weights', o.weights);
  const meta = savedMetadata(o.weights);
  // The workers start while the model is built and the weights read, not during the first forward.
  startThreads();
  // loadWeights overwrites every parameter and buffer (a strict load; num_batches_tracked is not random): no random init.
  const model = withoutRandomInit(() => buildModel(o.model, { numClasses: o.numClasses ?? meta.classes?.length }));
  const fc = classifier(model);
  const numClasses = fc ? fc[1].outFeatures : (o.numClasses ?? 1000);
  if (topk > numClasses) throw new UsageError(`--topk ${topk} is more than the model's ${numClasses} classes`);
  for (const p of o.images) checkFile('image', p);
  const labels = o.labels !== undefined
    ? readLabels(o.labels, numClasses, o.numClasses !== undefined)
    : meta.classes?.length === numClasses ? meta.classes
    : numClasses === IMAGENET_CLASSES.length ? IMAGENET_CLASSES : Array.from({ length: numClasses }, (_, i) => `class ${i}`);
  const size = meta.transform ? meta.imageSize : 224;
  loadWeights(model, o.weights);
  model.eval();

  const out: ImagePrediction[] = [];
  const PIXELS = 3 * size * size;
  for (let start = 0; start < o.images.length; start += batchSize) {
    const paths = o.images.slice(start, start + batchSize);
    // x: (B, 3, 224, 224), one preprocessed image after another
    const x = new Float32Array(paths.length * PIXELS);
    paths.forEach((p, b) => x.set(loadImageTensor(p, meta.transform), b * PIXELS));
    const probs = noGrad(() => softmax(withArena(() => model.forward(new Tensor(x, [paths.length, 3, size, size]))), 1));
    if (probs.shape[1] !== numClasses) {
      throw new ResnetTsError('predict', `the model gave ${probs.shape[1]} outputs per image, expected ${numClasses}`);
    }
    paths.forEach((p, b) => out.push({ image: p, top: topK(probs.data, b * numClasses, numClasses, topk, labels) }));
  }
  return out;
}

/** Human-readable output: the path, then one line per class: rank, probability, label, [index]. */
export function formatPredictions(preds: ImagePrediction[]): string {
  return preds
    .map((p) => {
      const lines = p.top.map((c, r) => `  ${String(r + 1).padStart(2)}. ${(100 * c.probability).toFixed(2).padStart(6)}%  ${c.label} [${c.index}]`);
      return `${p.image}\n${lines.join('\n')}`;
    })
    .join('\n');
}

export const predictCommand: Command = {
  summary: 'classify images with a model and a .safetensors checkpoint (top-k classes)',
  help: `Usage: resnet-ts predict --model NAME --weights FILE.safetensors [options] IMAGE...

Classifies each image (PNG, JPEG, binary PPM/PGM) with torchvision's ImageNet preprocessing
(resize the shorter side to 256, center-crop 224, normalize; for weights saved by 'resnet-ts train' on an image
folder, its --image-size and normalization) and prints the top classes with probabilities.
  --model NAME        the architecture of the checkpoint (e.g. resnet50)
  --weights FILE      a .safetensors state dict with torchvision key names (e.g. exported from PyTorch)
  --topk K            classes to show per image (default 5)
  --num-classes K     size of the classifier, for fine-tuned checkpoints (default: the model's, 1000 for ImageNet)
  --labels FILE       class names, one per line (default: the class names 'resnet-ts train' saved in the
                      weights' metadata, else the 1000 ImageNet classes)
  --batch-size N      images per forward pass (default 32)
  --json              machine-readable output

Models: ${Object.keys(MODEL_FACTORIES).join(', ')}`,
  run(argv) {
    const { values, positionals } = parse(argv, {
      model: { type: 'string', short: 'm' }, weights: { type: 'string', short: 'w' }, topk: { type: 'string', short: 'k' },
      'num-classes': { type: 'string' }, labels: { type: 'string' }, 'batch-size': { type: 'string' }, json: { type: 'boolean' },
    });
    const model = values.model as string | undefined;
    const weights = values.weights as string | undefined;
    if (model === undefined) throw new UsageError('missing --model NAME');
    if (weights === undefined) throw new UsageError('missing --weights FILE.safetensors');
    const preds = predict({
      model, weights, images: positionals,
      topk: intFlag(values, 'topk', 5),
      numClasses: values['num-classes'] === undefined ? undefined : intFlag(values, 'num-classes', 1000),
      labels: values.labels as string | undefined,
      batchSize: intFlag(values, 'batch-size', 32),
    });
    if (values.json) console.log(JSON.stringify({ model, weights, predictions: preds }, null, 1));
    else console.log(formatPredictions(preds));
  },
};
