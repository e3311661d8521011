import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ResnetTsError } from '../errors.js';
import { subset, type Dataset } from '../data/dataset.js';
import type { MapDataset } from '../data/map-dataset.js';
import { compose, normalize, randomCrop, randomHorizontalFlip, type Transform } from '../data/transforms.js';
import { writeFileAtomic } from '../io/atomic-file.js';
import { saveSafetensorsFile } from '../io/safetensors-file.js';
import { manualSeed } from '../random.js';
import { SCHEDULES, trainingRun as run, type RunResult, type RunStore, type Schedule } from '../train/run.js';
import { readCheckpoint, saveCheckpoint } from './checkpoint.js';
import { loadData, looksLikeCifarDir, looksLikeIdxDir } from './data.js';
import { freezeBackbone, imageFolderData, loadBackbone, looksLikeImageFolder, type FolderData } from './finetune.js';
import { prepareRunDir } from './rundir.js';
import { intFlag, numFlag, parse, UsageError } from './args.js';
import type { Command } from './commands.js';
import { formatDuration, Progress } from './progress.js';
import { buildModel, MODEL_FACTORIES } from './registry.js';
import { applyThreads } from './threads.js';

/**
 * `resnet-ts train` (and `npm start`): the flags, the data and model they name, the output folder and its files,
 * the progress bar and Ctrl-C. The run itself is src/train/run.ts.
 */

export interface TrainArgs {
  model: string;
  data: string;
  epochs: number;
  batchSize: number;
  lr: number;
  momentum: number;
  weightDecay: number;
  schedule: Schedule;
  out: string;
  seed: number;
  threads?: number;
  resume: boolean;
  /** Also save the checkpoint every N iterations (mid-epoch), so that a killed run loses at most N steps. */
  checkpointEvery?: number;
  subset?: number;
  testSubset?: number;
  augment: boolean;
  /** Image folders (--data DIR of class subfolders): see finetune.ts. */
  valData?: string;
  valSplit?: number;
  imageSize?: number;
  workers?: number;
  skipBadFiles?: boolean;
  /** Fine-tuning: start from this state dict (classifier replaced), train only the classifier if frozen. */
  weights?: string;
  numClasses?: number;
  freezeBackbone?: boolean;
}

export interface TrainResult extends RunResult {
  checkpoint: string;
  metricsPath: string;
}

/** How `runTraining` reports and when it stops early, besides the flags. */
export interface RunOptions {
  dataDir?: string;
  /** Where status lines go (default console.log). */
  log?: (s: string) => void;
  /** No progress bar. */
  quiet?: boolean;
  /** Stop after this many batches per epoch. */
  maxSteps?: number;
  /** Stop (as if killed) after this epoch, leaving the checkpoint of that epoch; for tests of --resume. */
  stopAfterEpoch?: number;
  /** Stop (as if killed) after this many iterations in all, leaving whatever checkpoints were written; for tests. */
  stopAfterIteration?: number;
  /** Asked after every step: true saves a checkpoint there and ends the run (result.interrupted). */
  stopRequested?: () => boolean;
  /** Extra model-factory options (e.g. CIFAR `widths` for small experiments). */
  modelOptions?: Record<string, unknown>;
}

/** Runs the whole training synchronously. */
export function runTraining(a: TrainArgs & RunOptions): TrainResult {
  const r = trainingRun(a);
  for (;;) {
    const s = r.next();
    if (s.done) return s.value;
  }
}

/** OUT/checkpoint.safetensors, OUT/model.safetensors and OUT/metrics.json, each written atomically. */
function fileStore(out: string): RunStore & { metricsPath: string } {
  const ckptPath = join(out, 'checkpoint.safetensors');
  const modelPath = join(out, 'model.safetensors');
  const metricsPath = join(out, 'metrics.json');
  return {
    location: out,
    checkpointName: ckptPath,
    metricsPath,
    loadCheckpoint: (stepsPerEpoch) => (existsSync(ckptPath) ? readCheckpoint(ckptPath, stepsPerEpoch) : null),
    saveCheckpoint: (s) => saveCheckpoint(ckptPath, s),
    saveModel: (sd, meta) => saveSafetensorsFile(modelPath, sd, meta),
    saveMetrics: (m) => writeFileAtomic(metricsPath, new TextEncoder().encode(JSON.stringify(m, null, 1))),
  };
}

/**
 * The `train` command's run as a generator that yields after every step (see src/train/run.ts): the output folder
 * is checked and locked first, then the data and model are built (after seeding), then the run goes.
 */
export function* trainingRun(a: TrainArgs & RunOptions): Generator<void, TrainResult> {
  const log = a.log ?? ((s: string) => console.log(s));
  // the output folder first: a run that cannot be saved must not train
  const lock = prepareRunDir(a.out);
  try {
    return yield* trainLocked(a, log);
  } finally {
    lock.release();
  }
}

function* trainLocked(a: TrainArgs & RunOptions, log: (s: string) => void): Generator<void, TrainResult> {
  if (a.threads !== undefined) applyThreads(a.threads);
  manualSeed(a.seed);
  const folder: FolderData | null = looksLikeImageFolder(a.data) && !looksLikeIdxDir(a.data) && !looksLikeCifarDir(a.data)
    ? imageFolderData({
      data: a.data, valData: a.valData, valSplit: a.valSplit ?? 0.1, imageSize: a.imageSize ?? 224, augment: a.augment, seed: a.seed,
      skipBadFiles: a.skipBadFiles ?? false, subset: a.subset, testSubset: a.testSubset,
    })
    : null;
  if (folder === null && a.valData !== undefined) throw new UsageError('--val-data needs --data DIR to be an image folder (one subfolder per class)');
  const data = folder === null ? loadData(a.data, a.dataDir, a.seed) : null;
  const note = folder?.note ?? data!.note;
  log(note);
  const train: Dataset | MapDataset = folder?.train ?? (a.subset ? subset(data!.train, 0, a.subset) : data!.train);
  const test: Dataset | MapDataset = folder?.val ?? (a.testSubset ? subset(data!.test, 0, a.testSubset) : data!.test);
  if (a.numClasses !== undefined && a.numClasses !== train.numClasses) {
    throw new UsageError(`--num-classes ${a.numClasses} but the data has ${train.numClasses} classes${folder ? ` (${folder.classes.join(', ')})` : ''}`);
  }
  const model = buildModel(a.model, { ...a.modelOptions, numClasses: train.numClasses, inChannels: train.channels });
  if (a.weights !== undefined) log(`loaded ${a.weights} (all but the classifier ${loadBackbone(model, a.weights)}, which starts fresh)`);
  const params = a.freezeBackbone ? freezeBackbone(model) : model.parameters();
  const mean = folder?.mean ?? data!.mean;
  const std = folder?.std ?? data!.std;
  const norm = normalize(mean, std);
  let trainTransform: Transform | undefined;
  if (folder === null) {
    const t = train as Dataset;
    const pad = t.height >= 32 ? 4 : 2;
    trainTransform = a.augment ? compose(randomCrop([t.height, t.width], pad), randomHorizontalFlip(), norm) : norm;
  }
  const numWorkers = folder ? (a.workers ?? 1) : 0;
  if (a.batchSize > train.length) throw new UsageError(`--batch-size ${a.batchSize} is larger than the ${train.length} training images`);
  const settings = { model: a.model, data: folder ? a.data : data!.name, batchSize: a.batchSize, lr: a.lr, momentum: a.momentum, weightDecay: a.weightDecay, schedule: a.schedule, seed: a.seed, epochs: a.epochs, subset: a.subset ?? null, augment: a.augment, ...(folder ? { valData: a.valData ?? null, valSplit: a.valSplit ?? 0.1, imageSize: a.imageSize ?? 224, weights: a.weights ?? null, freezeBackbone: a.freezeBackbone ?? false } : {}) };
  // what predict needs to use the model: class names and, for image folders, the evaluation transform
  const modelMeta: Record<string, string> = { format: 'pt', model: a.model };
  const classNames = folder?.classes ?? (data!.train.classNames as readonly string[] | undefined);
  if (classNames) modelMeta.classes = JSON.stringify(classNames);
  if (folder) Object.assign(modelMeta, { imageSize: String(a.imageSize ?? 224), mean: JSON.stringify(mean), std: JSON.stringify(std) });
  const store = fileStore(a.out);
  const progress = new Progress();
  let te = 0;
  let imgs = 0;
  let lossEma = NaN;
  let accEma = NaN;
  const result = yield* run({
    modelName: a.model, model, params, frozen: a.freezeBackbone, dataName: folder ? a.data : data!.name, dataNote: note, train, test, trainTransform,
    evalOptions: folder ? { numWorkers, batchSize: a.batchSize } : { transform: norm }, numWorkers,
    epochs: a.epochs, batchSize: a.batchSize, lr: a.lr, momentum: a.momentum, weightDecay: a.weightDecay, schedule: a.schedule, seed: a.seed,
    settings, modelMeta, resume: a.resume, checkpointEvery: a.checkpointEvery, maxSteps: a.maxSteps,
  }, store, {
    log, stopAfterEpoch: a.stopAfterEpoch, stopAfterIteration: a.stopAfterIteration, stopRequested: a.stopRequested,
    onEpochStart: () => {
      te = performance.now();
      imgs = 0;
      lossEma = NaN;
      accEma = NaN;
    },
    onStep: (s) => {
      imgs += s.batchSize;
      lossEma = Number.isNaN(lossEma) ? s.loss : 0.9 * lossEma + 0.1 * s.loss;
      accEma = Number.isNaN(accEma) ? s.accuracy : 0.9 * accEma + 0.1 * s.accuracy;
      const rate = imgs / ((performance.now() - te) / 1000);
      if (!a.quiet) progress.update({
        label: `epoch ${s.epoch + 1}/${a.epochs}`, done: s.step + 1, total: s.stepsPerEpoch,
        fields: { loss: lossEma.toFixed(4), acc: `${(100 * accEma).toFixed(1)}%`, lr: s.lr.toPrecision(3) },
        rate, etaSeconds: ((s.stepsPerEpoch - s.step - 1) * s.batchSize) / rate,
      });
    },
    onStepsEnd: () => {
      if (!a.quiet) progress.end();
    },
  });
  const skipped = folder && !result.interrupted ? new Set([...folder.train.skipped, ...folder.val.skipped]) : new Set<string>();
  if (skipped.size) log(`skipped ${skipped.size} unreadable image file${skipped.size === 1 ? '' : 's'} (--skip-bad-files): ${[...skipped].slice(0, 5).join(', ')}${skipped.size > 5 ? ', …' : ''}`);
  return { ...result, checkpoint: store.checkpointName, metricsPath: store.metricsPath };
}

export const TRAIN_HELP = `Usage: resnet-ts train [options]

Trains a ResNet with SGD (momentum 0.9, weight decay 1e-4, as He et al. 2015), evaluating on the test set after
every epoch and writing OUT/checkpoint.safetensors (model + optimizer + scheduler + epoch; atomic),
OUT/model.safetensors (the plain state dict, loadable in PyTorch) and OUT/metrics.json.

  --model NAME        any model factory (default resnet20); see 'resnet-ts summary --help'
  --data WHAT         fashion-mnist (default; /usr/share/datasets/fashion-mnist, from Debian's dataset-fashion-mnist,
                      else the synthetic set, said in the output), mnist, cifar10, cifar100, synthetic, or a directory:
                      IDX or CIFAR files, or an image folder (one subfolder of PNG/JPEG files per class, torchvision's
                      ImageFolder; RandomResizedCrop + flip, ImageNet normalization)
  --data-dir DIR      where fashion-mnist/mnist/cifar10/cifar100 live
  --epochs N          (default 10)
  --batch-size N      (default 128)
  --lr X              (default 0.1)
  --momentum X        (default 0.9)
  --weight-decay X    (default 1e-4)
  --schedule S        cosine (default), paper (÷10 at 50% and 75%, the paper's 32k/48k of 64k), step, onecycle, constant
  --subset N          train on the first N training images only
  --test-subset N     evaluate on the first N test images only
  --no-augment        no random crop / flip
  --out DIR           (default runs/MODEL-DATA)
  --seed N            (default 0): same seed and thread count → the same loss curve, bit for bit
  --threads N         worker threads for the kernels (default: RESNET_TS_THREADS or all cores)
  --resume            continue from OUT/checkpoint.safetensors exactly where it stopped (mid-epoch too), with the
                      same settings; a --schedule constant run can be extended with a larger --epochs
  --checkpoint-every N  also save the checkpoint every N iterations, so that a killed run loses at most N steps

Image folders and fine-tuning:
  --val-data DIR      validation image folder (default: hold out --val-split of --data)
  --val-split X       fraction of --data held out for validation (default 0.1, a seeded random choice)
  --image-size N      training crop size (default 224); validation resizes to N·256/224 and center-crops N
  --workers N         DataLoader worker threads decoding images (default 1)
  --skip-bad-files    leave out unreadable images (counted at the end) instead of stopping
  --weights FILE      start from this .safetensors state dict, loaded strictly except the classifier (fc), which is
                      replaced by a fresh one with the data's number of classes
  --num-classes K     check that the data has K classes
  --freeze-backbone   train only the classifier (every other parameter keeps its loaded value)

OUT is checked before training starts (it must be a folder this process can write), and OUT/train.lock keeps a
second run from using it at the same time. Ctrl-C stops after the current step, saves the checkpoint there and
prints the command that resumes it.`;

export function parseTrainArgs(argv: string[]): TrainArgs & { dataDir?: string } {
  const { values, positionals } = parse(argv, {
    model: { type: 'string' }, data: { type: 'string' }, 'data-dir': { type: 'string' }, epochs: { type: 'string' },
    'batch-size': { type: 'string' }, lr: { type: 'string' }, momentum: { type: 'string' }, 'weight-decay': { type: 'string' },
    schedule: { type: 'string' }, subset: { type: 'string' }, 'test-subset': { type: 'string' }, 'no-augment': { type: 'boolean' },
    out: { type: 'string' }, seed: { type: 'string' }, threads: { type: 'string' }, resume: { type: 'boolean' },
    'val-data': { type: 'string' }, 'val-split': { type: 'string' }, 'image-size': { type: 'string' }, workers: { type: 'string' },
    'skip-bad-files': { type: 'boolean' }, weights: { type: 'string' }, 'num-classes': { type: 'string' }, 'freeze-backbone': { type: 'boolean' },
    'checkpoint-every': { type: 'string' },
  });
  if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  const model = (values.model as string | undefined) ?? 'resnet20';
  buildModelCheck(model);
  const data = (values.data as string | undefined) ?? 'fashion-mnist';
  const schedule = ((values.schedule as string | undefined) ?? 'cosine') as Schedule;
  if (!SCHEDULES.includes(schedule)) throw new UsageError(`--schedule must be one of ${SCHEDULES.join(', ')}, got '${schedule}'`);
  return {
    model, data, dataDir: values['data-dir'] as string | undefined,
    epochs: intFlag(values, 'epochs', 10), batchSize: intFlag(values, 'batch-size', 128), lr: numFlag(values, 'lr', 0.1, 0),
    momentum: numFlag(values, 'momentum', 0.9, 0), weightDecay: numFlag(values, 'weight-decay', 1e-4, 0), schedule,
    out: (values.out as string | undefined) ?? join('runs', `${model}-${data.replace(/[^\w-]/g, '_')}`),
    seed: intFlag(values, 'seed', 0, 0), threads: values.threads === undefined ? undefined : intFlag(values, 'threads', 1),
    resume: Boolean(values.resume), checkpointEvery: values['checkpoint-every'] === undefined ? undefined : intFlag(values, 'checkpoint-every', 1), subset: values.subset === undefined ? undefined : intFlag(values, 'subset', 1),
    testSubset: values['test-subset'] === undefined ? undefined : intFlag(values, 'test-subset', 1), augment: !values['no-augment'],
    ...parseFolderArgs(values),
  };
}

function parseFolderArgs(values: Record<string, string | boolean | undefined>): Partial<TrainArgs> {
  const valSplit = numFlag(values, 'val-split', 0.1, 0);
  if (!(valSplit > 0 && valSplit < 1)) throw new UsageError(`--val-split must be between 0 and 1, got '${String(values['val-split'])}'`);
  if (values['freeze-backbone'] && values.weights === undefined) throw new UsageError('--freeze-backbone needs --weights FILE (a backbone to keep)');
  return {
    valData: values['val-data'] as string | undefined, valSplit, imageSize: intFlag(values, 'image-size', 224, 8),
    workers: intFlag(values, 'workers', 1, 0), skipBadFiles: Boolean(values['skip-bad-files']), weights: values.weights as string | undefined,
    numClasses: values['num-classes'] === undefined ? undefined : intFlag(values, 'num-classes', 1), freezeBackbone: Boolean(values['freeze-backbone']),
  };
}

function buildModelCheck(name: string): void {
  // an unknown name gets the usage error with the list of models
  if (!Object.prototype.hasOwnProperty.call(MODEL_FACTORIES, name)) buildModel(name);
}

/** The run stopped on Ctrl-C: exit code 130 (128 + SIGINT), as a shell reports it. */
export class TrainingInterrupted extends ResnetTsError {
  readonly exitCode = 130;
  constructor(message: string) {
    super('train', message);
  }
}

/**
 * Runs training with the event loop turning between steps, so that Ctrl-C (SIGINT) is seen: the run stops after
 * the step in progress, saves the checkpoint there and says how to resume. A second Ctrl-C ends the process at once.
 */
export async function runTrainingInterruptible(a: TrainArgs & RunOptions, argv: readonly string[]): Promise<TrainResult> {
  let stop = false;
  const onSigint = (): void => {
    if (stop) process.exit(130);
    stop = true;
    process.stderr.write('\nresnet-ts train: Ctrl-C: stopping after this step and saving a checkpoint (Ctrl-C again to quit without saving)\n');
  };
  process.on('SIGINT', onSigint);
  try {
    const run = trainingRun({ ...a, stopRequested: () => stop });
    for (;;) {
      const r = run.next();
      if (r.done) {
        const res = r.value;
        if (res.interrupted) {
          const { epoch, step, stepsPerEpoch } = res.interrupted;
          const again = ['resnet-ts', 'train', ...argv.filter((x) => x !== '--resume'), '--resume'].map((x) => (/^[\w@%+=:,./-]+$/.test(x) ? x : `'${x.replace(/'/g, "'\\''")}'`)).join(' ');
          const where = step ? `in epoch ${epoch + 1}/${a.epochs} after step ${step}/${stepsPerEpoch}` : `after epoch ${epoch}/${a.epochs}`;
          throw new TrainingInterrupted(`interrupted: saved ${res.checkpoint} ${where}; resume with:\n  ${again}`);
        }
        return res;
      }
      await new Promise<void>((resolve) => setImmediate(resolve)); // let a pending SIGINT run
    }
  } finally {
    process.off('SIGINT', onSigint);
  }
}

export const trainCommand: Command = {
  summary: 'train or fine-tune a model (Fashion-MNIST, CIFAR-10/100, an image folder, synthetic data) with checkpoints',
  help: TRAIN_HELP,
  async run(argv) {
    const r = await runTrainingInterruptible(parseTrainArgs(argv), argv);
    console.log(`test accuracy ${(100 * r.testAccuracy).toFixed(2)}% after ${formatDuration(r.seconds)}; checkpoint ${r.checkpoint}; metrics ${r.metricsPath}`);
  },
};
