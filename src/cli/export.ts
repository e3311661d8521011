/**
 * `resnet-ts export`: a model (with a .safetensors checkpoint, or seeded initial weights) as an .onnx file, for
 * onnxruntime, TensorRT, Triton and the rest.
 */

import { statSync } from 'node:fs';
import { saveOnnxFile } from '../io/onnx-file.js';
import { manualSeed } from '../random.js';
import { intFlag, parse, shapeFlag, UsageError } from './args.js';
import type { Command } from './commands.js';
import { InputFileError, loadWeights } from './predict.js';
import { buildModel, isCifarModel, MODEL_FACTORIES } from './registry.js';

export interface ExportOptions {
  model: string;
  out: string;
  /** A .safetensors state dict (or a `resnet-ts train` checkpoint); without it, initial weights from `seed`. */
  weights?: string;
  /** (N, C, H, W); default 1,3,224,224 (1,3,32,32 for the CIFAR models). */
  input?: number[];
  numClasses?: number;
  opset?: number;
  foldBatchNorm?: boolean;
  /** Declare the batch dim as symbolic (default true). */
  dynamicBatch?: boolean;
  seed?: number;
}

/** Builds the model, loads its weights and writes the .onnx file; returns the byte count. */
export function exportModel(o: ExportOptions): { bytes: number; inputShape: number[] } {
  const input = o.input ?? (isCifarModel(o.model) ? [1, 3, 32, 32] : [1, 3, 224, 224]);
  if (input.length !== 4) throw new UsageError(`--input must have 4 dims (N,C,H,W), got ${input.length}`);
  manualSeed(o.seed ?? 0);
  const model = buildModel(o.model, { numClasses: o.numClasses, inChannels: input[1] });
  if (o.weights !== undefined) {
    let isFile = false;
    try {
      isFile = statSync(o.weights).isFile();
    } catch {
      // reported below
    }
    if (!isFile) throw new InputFileError('weights', `no such file: ${o.weights}`);
    loadWeights(model, o.weights);
  }
  model.eval();
  saveOnnxFile(o.out, model, { inputShape: input, opset: o.opset ?? 17, foldBatchNorm: o.foldBatchNorm ?? false, dynamicBatch: o.dynamicBatch ?? true });
  return { bytes: statSync(o.out).size, inputShape: input };
}

export const exportCommand: Command = {
  summary: 'write a model as an .onnx file (for onnxruntime, TensorRT, Triton, ...)',
  help: `Usage: resnet-ts export --model NAME --out FILE.onnx [options]

Writes the model's eval-mode forward as an ONNX graph: input "input" (N, C, H, W) with a symbolic batch dim,
output "logits", initializers named like the state dict.
  --model NAME        the architecture (e.g. resnet50)
  --out FILE          the .onnx file to write (atomically)
  --weights FILE      a .safetensors state dict or resnet-ts train checkpoint (default: initial weights from --seed)
  --input N,C,H,W     the input shape (default 1,3,224,224; 1,3,32,32 for the CIFAR models)
  --num-classes K     size of the classifier (default: the model's)
  --opset V           ONNX opset, 11 to 17 (default 17)
  --fold-bn           fold each BatchNorm into the conv before it (as torch.onnx.export does)
  --static-batch      declare the batch dim as N instead of symbolic
  --seed S            seed of the initial weights when no --weights is given (default 0)

Models: ${Object.keys(MODEL_FACTORIES).join(', ')}`,
  run(argv) {
    const { values, positionals } = parse(argv, {
      model: { type: 'string', short: 'm' }, out: { type: 'string', short: 'o' }, weights: { type: 'string', short: 'w' },
      input: { type: 'string' }, 'num-classes': { type: 'string' }, opset: { type: 'string' }, 'fold-bn': { type: 'boolean' },
      'static-batch': { type: 'boolean' }, seed: { type: 'string' },
    }, false);
    if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}'`);
    const model = values.model as string | undefined;
    const out = values.out as string | undefined;
    if (model === undefined) throw new UsageError('missing --model NAME');
    if (out === undefined) throw new UsageError('missing --out FILE.onnx');
    const opset = intFlag(values, 'opset', 17);
    if (opset < 11 || opset > 17) throw new UsageError(`--opset must be from 11 to 17, got ${opset}`);
    const r = exportModel({
      model, out,
      weights: values.weights as string | undefined,
      input: values.input === undefined ? undefined : shapeFlag(values.input as string, []),
      numClasses: values['num-classes'] === undefined ? undefined : intFlag(values, 'num-classes', 1000),
      opset,
      foldBatchNorm: values['fold-bn'] === true,
      dynamicBatch: values['static-batch'] !== true,
      seed: intFlag(values, 'seed', 0, 0),
    });
    const shape = [values['static-batch'] ? String(r.inputShape[0]) : 'batch', ...r.inputShape.slice(1)].join(', ');
    console.log(`wrote ${out} (${(r.bytes / 1e6).toFixed(1)} MB): ${model}, input [${shape}], output logits, opset ${opset}${values['fold-bn'] ? ', BatchNorm folded' : ''}`);
  },
};
