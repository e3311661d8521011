#!/usr/bin/env node
/**
 * The resnet-ts side of the PyTorch interop checks run by test/fixtures/gen_interop.py (not by `npm test`).
 * Uses the built library (dist/; build with `npx tsc -p tsconfig.build.json` first).
 *
 *   node scripts/interop-node.mjs load WEIGHTS INPUT --model NAME [--num-classes N] [--in-channels C]
 *       Builds models[NAME], loads WEIGHTS (a safetensors state dict, strict) and prints the eval-mode logits on the
 *       tensor "x" of the safetensors file INPUT.
 *   node scripts/interop-node.mjs save OUT INPUT --model NAME [--num-classes N] [--in-channels C]
 *       Builds models[NAME], fills every parameter and buffer with the formula of test/helpers/formula.ts (copied
 *       below: a script cannot import the TS helper; the generator checks every saved value against its own Python
 *       copy of the formula), saves the state dict with io.saveSafetensorsFile(OUT) and prints the eval-mode logits
 *       on "x" of INPUT.
 *
 * Output (stdout, one line of JSON): { "model", "keys": number of state-dict entries, "shape": logits shape,
 * "data": logits as float32 values written as JS numbers (exact) }.
 */
import { parseArgs } from 'node:util';
import { io, models, noGrad } from '../dist/index.js';

/** The formula values of state-dict entry k (see test/helpers/formula.ts; keep the expressions identical). */
function formulaValues(k, key, shape, keys) {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  const dot = key.lastIndexOf('.');
  const prefix = key.slice(0, dot);
  const leaf = key.slice(dot + 1);
  const isBn = keys.has(`${prefix}.running_mean`);
  let kind;
  if (leaf === 'num_batches_tracked' || leaf === 'running_mean' || leaf === 'running_var') kind = leaf;
  else if (isBn && (leaf === 'weight' || leaf === 'bias')) kind = `bn_${leaf}`;
  else if (leaf === 'weight' && shape.length === 4) kind = 'conv_weight';
  else if (leaf === 'weight' && shape.length === 2) kind = 'linear_weight';
  else if (leaf === 'bias' && shape.length === 1) kind = 'linear_bias';
  else throw new Error(`no formula for ${key} [${shape.join(', ')}]`);
  if (kind === 'num_batches_tracked') return out;
  const scale = kind === 'conv_weight' ? Math.sqrt(3 / (shape[1] * shape[2] * shape[3])) : kind === 'linear_weight' ? Math.sqrt(3 / shape[1]) : 0;
  for (let i = 0; i < n; i++) {
    const v = Math.sin(0.37 * i + 0.0013 * i * i + 1.3 * k + 0.5);
    if (kind === 'conv_weight' || kind === 'linear_weight') out[i] = v * scale;
    else if (kind === 'running_var') out[i] = 1 + 0.5 * v * v;
    else if (kind === 'bn_weight') out[i] = 1 + 0.1 * v;
    else out[i] = 0.1 * v; // running_mean, bn_bias, linear_bias
  }
  return out;
}

function build(opts) {
  const factory = models[opts.model];
  if (typeof factory !== 'function') throw new Error(`unknown model ${opts.model}`);
  const o = {};
  if (opts['num-classes'] !== undefined) o.numClasses = Number(opts['num-classes']);
  if (opts['in-channels'] !== undefined) o.inChannels = Number(opts['in-channels']);
  return factory(o);
}

function logits(model, inputPath) {
  const x = io.loadSafetensorsFile(inputPath).x;
  if (!x) throw new Error(`${inputPath} has no tensor "x"`);
  model.eval();
  return noGrad(() => model.forward(x));
}

function main(argv) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { model: { type: 'string' }, 'num-classes': { type: 'string' }, 'in-channels': { type: 'string' } },
  });
  const [cmd, path, input] = positionals;
  if ((cmd !== 'load' && cmd !== 'save') || !path || !input || !values.model) {
    throw new Error('usage: interop-node.mjs load|save FILE INPUT --model NAME [--num-classes N] [--in-channels C]');
  }
  const model = build(values);
  const sd = model.stateDict();
  if (cmd === 'load') {
    model.loadStateDict(io.loadSafetensorsFile(path), { strict: true });
  } else {
    const keys = new Set(Object.keys(sd));
    Object.entries(sd).forEach(([key, t], k) => t.data.set(formulaValues(k, key, t.shape, keys)));
    io.saveSafetensorsFile(path, sd, { format: 'pt', model: values.model });
  }
  const y = logits(model, input);
  process.stdout.write(JSON.stringify({ model: values.model, keys: Object.keys(sd).length, shape: y.shape, data: Array.from(y.data) }) + '\n');
}

main(process.argv.slice(2));
