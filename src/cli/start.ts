import type { Command } from './commands.js';
import { formatDuration } from './progress.js';
import { runTrainingInterruptible, parseTrainArgs } from './train.js';

/** The flags of `npm start`: a short ResNet-20 run on the default data, sized to finish in under two minutes. */
export const START_ARGS = ['--model', 'resnet20', '--data', 'fashion-mnist', '--epochs', '1', '--subset', '3072', '--test-subset', '2000', '--batch-size', '64', '--lr', '0.1', '--schedule', 'onecycle', '--out', 'runs/start'];

export const startCommand: Command = {
  summary: 'the main job (npm start): a short ResNet-20 training run with a progress bar',
  help: `Usage: resnet-ts start [train options]

Runs 'resnet-ts train ${START_ARGS.join(' ')}' — a short ResNet-20 run on Fashion-MNIST (or the synthetic set when
Fashion-MNIST is not installed), then prints the test accuracy and the saved checkpoint. Any train option given here
overrides the default.`,
  async run(argv) {
    const args = [...START_ARGS, ...argv];
    const r = await runTrainingInterruptible(parseTrainArgs(args), args);
    console.log(`\ntest accuracy ${(100 * r.testAccuracy).toFixed(2)}% after ${formatDuration(r.seconds)}`);
    console.log(`checkpoint: ${r.checkpoint}`);
    console.log(`PyTorch-loadable weights: ${r.checkpoint.replace('checkpoint.safetensors', 'model.safetensors')}`);
  },
};
