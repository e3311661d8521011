import { predictCommand } from './predict.js';
import { benchCommand } from './bench.js';
import { degradationCommand } from './degradation.js';
import { exportCommand } from './export.js';
import { exportImagesCommand } from './export-images.js';
import { startCommand } from './start.js';
import { summaryCommand } from './summary.js';
import { trainCommand } from './train.js';

/** A subcommand: one-line summary, full help text, and the runner (throws UsageError for bad usage). */
export interface Command {
  summary: string;
  help: string;
  run(argv: string[]): Promise<void> | void;
}

export const COMMANDS: Record<string, Command> = {
  start: startCommand,
  train: trainCommand,
  summary: summaryCommand,
  bench: benchCommand,
  degradation: degradationCommand,
  predict: predictCommand,
  export: exportCommand,
  'export-images': exportImagesCommand,
};
