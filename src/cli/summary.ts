import { summary } from '../models/summary.js';
import { intFlag, parse, shapeFlag, UsageError } from './args.js';
import type { Command } from './commands.js';
import { buildModel, isCifarModel, MODEL_FACTORIES } from './registry.js';

export const summaryCommand: Command = {
  summary: 'layer table of a model: output shapes, parameters, multiply-adds',
  help: `Usage: resnet-ts summary MODEL [--input N,C,H,W] [--num-classes K] [--json]

Prints every module with its output shape, parameter count and multiply-adds for one forward pass.
  --input        input shape (default 1,3,224,224; 1,3,32,32 for the CIFAR models)
  --num-classes  size of the classifier (default: the model's)
  --json         machine-readable output

Models: ${Object.keys(MODEL_FACTORIES).join(', ')}`,
  run(argv) {
    const { values, positionals } = parse(argv, { input: { type: 'string' }, 'num-classes': { type: 'string' }, json: { type: 'boolean' } });
    const name = positionals[0];
    if (!name) throw new UsageError('missing MODEL');
    if (positionals.length > 1) throw new UsageError(`unexpected argument '${positionals[1]}'`);
    const input = shapeFlag(values.input as string | undefined, isCifarModel(name) ? [1, 3, 32, 32] : [1, 3, 224, 224]);
    if (input.length !== 4) throw new UsageError(`--input must have 4 dims (N,C,H,W), got ${input.length}`);
    const numClasses = values['num-classes'] === undefined ? undefined : intFlag(values, 'num-classes', 1000);
    const model = buildModel(name, { numClasses, inChannels: input[1] });
    const s = summary(model, input);
    if (values.json) console.log(JSON.stringify({ model: name, inputShape: s.inputShape, totalParams: s.totalParams, totalMacs: s.totalMacs, rows: s.rows }, null, 1));
    else console.log(s.text);
  },
};
