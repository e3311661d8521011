import { cpus, availableParallelism } from 'node:os';
import { noGrad } from '../autograd.js';
import { withArena } from '../fusion/arena.js';
import { ResnetTsError } from '../errors.js';
import type { Module } from '../nn/module.js';
import { crossEntropy } from '../ops/loss.js';
import { SGD } from '../optim/sgd.js';
import { getNumThreads, setNumThreads } from '../parallel/index.js';
import { manualSeed } from '../random.js';
import { randn, type Tensor } from '../tensor.js';
import { intFlag, parse, shapeFlag, UsageError } from './args.js';
import type { Command } from './commands.js';
import { buildModel, isCifarModel, MODEL_FACTORIES } from './registry.js';

/** "AMD EPYC 7B13 · 2 cores · node v20.20.2 · linux x64 · threads 2" */
export function machineLine(): string {
  const cpu = cpus()[0]?.model.trim() ?? 'unknown CPU';
  return `${cpu} · ${availableParallelism()} cores · node ${process.version} · ${process.platform} ${process.arch} · threads ${getNumThreads()}`;
}

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Runs fn until `minMs` have passed and at least `minRuns` runs; returns the median ms. */
function time(fn: () => void, minRuns: number, minMs: number): { ms: number; runs: number } {
  const times: number[] = [];
  const t0 = performance.now();
  while (times.length < minRuns || performance.now() - t0 < minMs) {
    const t = performance.now();
    fn();
    times.push(performance.now() - t);
  }
  return { ms: median(times), runs: times.length };
}

const same = (a: Tensor, b: Tensor): boolean => a.data.length === b.data.length && a.data.every((v, i) => Object.is(v, b.data[i]));

export const benchCommand: Command = {
  summary: 'time a model: eval forward and a training step (the model part of npm run bench)',
  help: `Usage: resnet-ts bench [--model resnet18] [--input N,C,H,W] [--threads N] [--runs N]

Prints the machine line, then the median time of an eval forward pass (no gradients) and of a training step
(forward, cross-entropy, backward, SGD step) for the model, after checking that repeated runs give identical outputs.
The kernel-level tables and the comparison with tfjs live in the repository's bench/ (npm run bench).
  --model NAME    any model factory (default resnet18)
  --input SHAPE   input shape (default 1,3,224,224; 32,3,32,32 for the CIFAR models)
  --threads N     threads per kernel call (default: RESNET_TS_THREADS or all cores)
  --runs N        at least N timed runs each (default 3)
  --no-train      eval forward only

Models: ${Object.keys(MODEL_FACTORIES).join(', ')}`,
  run(argv) {
    const { values, positionals } = parse(argv, {
      model: { type: 'string' }, input: { type: 'string' }, threads: { type: 'string' }, runs: { type: 'string' }, 'no-train': { type: 'boolean' },
    });
    if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}'`);
    const name = (values.model as string | undefined) ?? 'resnet18';
    if (values.threads !== undefined) setNumThreads(intFlag(values, 'threads', 1));
    const input = shapeFlag(values.input as string | undefined, isCifarModel(name) ? [32, 3, 32, 32] : [1, 3, 224, 224]);
    if (input.length !== 4) throw new UsageError(`--input must have 4 dims (N,C,H,W), got ${input.length}`);
    const runs = intFlag(values, 'runs', 3);
    manualSeed(0);
    const model: Module = buildModel(name, { inChannels: input[1] });
    const x = randn(input);
    console.log(machineLine());
    model.eval();
    const y1 = noGrad(() => withArena(() => model.forward(x)));
    const y2 = noGrad(() => withArena(() => model.forward(x)));
    if (!same(y1, y2)) throw new ResnetTsError('bench', 'two eval forward passes disagree: results are not deterministic');
    console.log('Results match between runs. Starting benchmarks.');
    const ev = time(() => noGrad(() => withArena(() => model.forward(x))), runs, 1000);
    console.log(`${name} eval forward ${input.join('×')}: ${ev.ms.toFixed(1)} ms (median of ${ev.runs})`);
    if (values['no-train']) return;
    model.train();
    const opt = new SGD(model.parameters(), { lr: 0.01, momentum: 0.9, weightDecay: 1e-4 });
    const classes = y1.shape[1]!;
    const target = Array.from({ length: input[0]! }, (_, i) => i % classes);
    // Gradients zeroed in place, as a training loop should (zeroGrad() would make new ones every step: README,
    // Performance).
    const step = (): void => {
      opt.zeroGrad(false);
      crossEntropy(model.forward(x), target).backward();
      opt.step();
    };
    const tr = time(step, runs, 1000);
    console.log(`${name} train step ${input.join('×')}: ${tr.ms.toFixed(1)} ms (median of ${tr.runs}; forward + cross-entropy + backward + SGD)`);
  },
};
