/**
 * The checkpoint of a training run: the model (`model.` keys), the optimizer state, and metadata strings: format,
 * epoch (epochs completed), step (batches done in the next epoch: 0 at an epoch's end, more for a mid-epoch
 * checkpoint), totals (that partial epoch's running sums), args, optimizer, scheduler, history, steps. Checking a
 * checkpoint names the file and the field that is wrong. No files here: cli/checkpoint.ts stores it as safetensors.
 */
import { ResnetTsError } from '../errors.js';
import type { Tensor } from '../tensor.js';
import type { EpochTotals } from './trainer.js';

export const CHECKPOINT_FORMAT = 'resnet-ts-checkpoint-v1';

/** One finished epoch in the history. */
export type EpochRecord = Record<string, unknown>;
export interface StepRecord { iteration: number; loss: number }

export interface Checkpoint {
  tensors: Record<string, Tensor>;
  args: Record<string, unknown>;
  epoch: number;
  step: number;
  totals: EpochTotals;
  optimizer: string;
  scheduler: string;
  history: EpochRecord[];
  steps: StepRecord[];
}

export interface CheckpointState {
  tensors: Record<string, Tensor>;
  epoch: number;
  step: number;
  totals: EpochTotals;
  argsJson: string;
  optimizer: string;
  scheduler: string;
  history: EpochRecord[];
  steps: StepRecord[];
  /** Metadata about the model (its name, class names, evaluation transform), kept next to the training state. */
  modelMeta?: Record<string, string>;
}

const bad = (path: string, what: string): ResnetTsError => new ResnetTsError('train', `--resume: ${path} has a corrupt ${what}; start a new run (or restore the file from a backup)`);

function json(path: string, meta: Record<string, string>, key: string, check: (v: unknown) => boolean, def?: string): unknown {
  const text = meta[key] ?? def;
  if (text === undefined) throw bad(path, `checkpoint: the metadata field "${key}" is missing`);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw bad(path, `metadata field "${key}" (not JSON: ${JSON.stringify(text.slice(0, 40))}${text.length > 40 ? '…' : ''})`);
  }
  if (!check(v)) throw bad(path, `metadata field "${key}" (not the expected structure)`);
  return v;
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const count = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;

/**
 * Checks a checkpoint's metadata against this run's `stepsPerEpoch`, then loads its tensors. `path` names the file
 * in messages.
 */
export function parseCheckpoint(path: string, meta: Record<string, string>, stepsPerEpoch: number, loadTensors: () => Record<string, Tensor>): Checkpoint {
  if (meta.format !== CHECKPOINT_FORMAT) {
    throw new ResnetTsError('train', `--resume: ${path} is not a resnet-ts checkpoint (metadata format ${JSON.stringify(meta.format ?? null)}; expected "${CHECKPOINT_FORMAT}")`);
  }
  const epoch = json(path, meta, 'epoch', count) as number;
  const step = json(path, meta, 'step', (v) => count(v) && v < stepsPerEpoch, '0') as number;
  const totals = json(path, meta, 'totals', (v) => isObject(v) && ['lossSum', 'correct', 'images', 'steps'].every((k) => typeof v[k] === 'number' && Number.isFinite(v[k])) && v.steps === step,
    JSON.stringify({ lossSum: 0, correct: 0, images: 0, steps: step })) as EpochTotals;
  const args = json(path, meta, 'args', isObject) as Record<string, unknown>;
  const history = json(path, meta, 'history', (v) => Array.isArray(v) && v.length === epoch && v.every(isObject), '[]') as EpochRecord[];
  const steps = json(path, meta, 'steps', (v) => Array.isArray(v) && v.every((s) => isObject(s) && count(s.iteration) && typeof s.loss === 'number'), '[]') as StepRecord[];
  if (meta.scheduler) json(path, meta, 'scheduler', isObject);
  const tensors = loadTensors();
  return { tensors, args, epoch, step, totals, optimizer: meta.optimizer ?? '', scheduler: meta.scheduler ?? '', history, steps };
}

/** The metadata strings a checkpoint is stored with (the model's own metadata first). */
export function checkpointMetadata(s: CheckpointState): Record<string, string> {
  return {
    ...s.modelMeta, format: CHECKPOINT_FORMAT, epoch: String(s.epoch), step: String(s.step), totals: JSON.stringify(s.totals), args: s.argsJson,
    optimizer: s.optimizer, scheduler: s.scheduler, history: JSON.stringify(s.history), steps: JSON.stringify(s.steps),
  };
}

/**
 * The settings that must match to resume, compared all at once: every mismatch is listed. `epochs` may grow when
 * the schedule does not depend on the run's length (constant); otherwise the message says why it cannot.
 */
export function resumeMismatches(prev: Record<string, unknown>, now: Record<string, unknown>, done: number): string[] {
  const out: string[] = [];
  for (const k of ['model', 'data', 'batchSize', 'seed', 'schedule', 'subset', 'augment', 'lr', 'momentum', 'weightDecay']) {
    if (JSON.stringify(prev[k]) !== JSON.stringify(now[k])) out.push(`${k}: the checkpoint has ${JSON.stringify(prev[k])}, this run ${JSON.stringify(now[k])}`);
  }
  const pe = prev.epochs as number, ne = now.epochs as number;
  if (pe !== ne) {
    if (ne < done) out.push(`epochs: the checkpoint has ${done} epochs done already, this run asks for ${ne}`);
    else if (prev.schedule !== 'constant' || now.schedule !== 'constant') {
      out.push(`epochs: the checkpoint planned ${pe}, this run ${ne}; the ${String(prev.schedule)} schedule is laid out over all ${pe} epochs, so it cannot be stretched` +
        ' (a run with --schedule constant can be extended with a larger --epochs)');
    }
  }
  return out;
}
