/**
 * A whole training run: DataLoader, SGD, LR schedule, epochs, evaluation after every epoch, checkpoints (and resuming
 * from one, mid-epoch too). The caller brings the data, the model and a RunStore; no files here (the CLI's store
 * writes safetensors and JSON files, see cli/train.ts).
 */
import { ResnetTsError } from '../errors.js';
import type { Dataset } from '../data/dataset.js';
import { DataLoader } from '../data/loader.js';
import type { MapDataset } from '../data/map-dataset.js';
import type { Transform } from '../data/transforms.js';
import type { Module } from '../nn/module.js';
import { CosineAnnealingLR, MultiStepLR, OneCycleLR, cifarResnetSchedule, type LRScheduler } from '../optim/lr_scheduler.js';
import { SGD } from '../optim/sgd.js';
import { optimizerStateFromTensors, optimizerStateToTensors } from '../optim/state.js';
import type { Tensor } from '../tensor.js';
import { resumeMismatches, type Checkpoint, type CheckpointState, type EpochRecord, type StepRecord } from './checkpoint.js';
import { evaluate, trainSteps, type EpochTotals, type StepInfo } from './trainer.js';

export const SCHEDULES = ['cosine', 'paper', 'step', 'onecycle', 'constant'] as const;
export type Schedule = (typeof SCHEDULES)[number];

/** The LR schedule `name` over `totalIters` iterations (null: constant). */
export function makeScheduler(name: Schedule, opt: SGD, lr: number, totalIters: number, model: string): LRScheduler | null {
  switch (name) {
    case 'cosine':
      return new CosineAnnealingLR(opt, totalIters);
    case 'paper':
      // He et al.'s recipe scaled to this run: ÷10 at 50% and 75% of the iterations (32k and 48k of 64k)
      return cifarResnetSchedule(opt, { lr, milestones: [Math.round(totalIters * 0.5), Math.round(totalIters * 0.75)], totalIters, warmup: model === 'resnet110' || model === 'resnet1202' });
    case 'step':
      return new MultiStepLR(opt, [Math.round(totalIters * 0.5), Math.round(totalIters * 0.75)], 0.1);
    case 'onecycle':
      return new OneCycleLR(opt, { maxLr: lr, totalSteps: totalIters });
    case 'constant':
      return null;
  }
}

/** Where a run keeps what it saves. */
export interface RunStore {
  /** The run's place (the output folder), named in messages. */
  readonly location: string;
  /** The checkpoint's name in messages (its path). */
  readonly checkpointName: string;
  /** The saved checkpoint, checked against `stepsPerEpoch`; null when there is none. */
  loadCheckpoint(stepsPerEpoch: number): Checkpoint | null;
  /** Saves the checkpoint whole or not at all (an interrupted save leaves the previous one). */
  saveCheckpoint(s: CheckpointState): void;
  /** The plain state dict and its metadata, after every epoch. */
  saveModel(stateDict: Record<string, Tensor>, meta: Record<string, string>): void;
  /** The run's settings and history, after every epoch. */
  saveMetrics(metrics: Record<string, unknown>): void;
}

/** Everything a run trains with; the recorded `settings` must match for a resume. */
export interface TrainingPlan {
  /** The model's factory name (logged; resnet110 and resnet1202 warm up under the paper schedule). */
  modelName: string;
  model: Module;
  /** The parameters the optimizer updates (all of them unless the backbone is frozen). */
  params: Tensor[];
  frozen?: boolean;
  /** The data's name in the log line, and where it came from (said in the metrics). */
  dataName: string;
  dataNote: string;
  train: Dataset | MapDataset;
  test: Dataset | MapDataset;
  trainTransform?: Transform;
  evalOptions: { batchSize?: number; transform?: Transform; numWorkers?: number };
  numWorkers: number;
  epochs: number;
  batchSize: number;
  lr: number;
  momentum: number;
  weightDecay: number;
  schedule: Schedule;
  seed: number;
  /** The settings recorded in the checkpoint and the metrics, compared on resume. */
  settings: Record<string, unknown>;
  /** Stored with the checkpoint and the model weights (what predict needs to use the model). */
  modelMeta: Record<string, string>;
  /** Continue from the store's checkpoint. */
  resume: boolean;
  /** Also save the checkpoint every N iterations, so that a stopped run loses at most N steps. */
  checkpointEvery?: number;
  /** Stop after this many batches per epoch. */
  maxSteps?: number;
}

/** What a run reports and when it stops early. */
export interface RunHooks {
  log: (s: string) => void;
  /** An epoch's steps begin (epoch counted from 0). */
  onEpochStart?: (epoch: number) => void;
  onStep?: (s: StepInfo) => void;
  /** An epoch's steps are over (before its evaluation, or before the checkpoint of a stop). */
  onStepsEnd?: () => void;
  /** Stop (as if killed) after this epoch, leaving the checkpoint of that epoch. */
  stopAfterEpoch?: number;
  /** Stop (as if killed) after this many iterations in all, leaving whatever checkpoints were written. */
  stopAfterIteration?: number;
  /** Asked after every step: true saves a checkpoint there and ends the run (result.interrupted). */
  stopRequested?: () => boolean;
}

export interface RunResult {
  testAccuracy: number;
  seconds: number;
  /** Set when the run stopped early on request: where the checkpoint it saved stands. */
  interrupted?: { epoch: number; step: number; stepsPerEpoch: number };
}

/**
 * The run as a generator that yields after every step, so that an async caller can let the event loop turn in
 * between (a Ctrl-C handler) and ask it to stop through `stopRequested`.
 */
export function* trainingRun(p: TrainingPlan, store: RunStore, h: RunHooks): Generator<void, RunResult> {
  const { model } = p;
  const { log } = h;
  const loader = new DataLoader(p.train, { batchSize: p.batchSize, shuffle: true, dropLast: true, seed: p.seed, transform: p.trainTransform, numWorkers: p.numWorkers });
  if (loader.length === 0) throw new ResnetTsError('train', `--batch-size ${p.batchSize} is larger than the ${p.train.length} training images`);
  const stepsPerEpoch = Math.min(loader.length, p.maxSteps ?? Infinity);
  const opt = new SGD(p.params, { lr: p.lr, momentum: p.momentum, weightDecay: p.weightDecay });
  const sched = makeScheduler(p.schedule, opt, p.lr, stepsPerEpoch * p.epochs, p.modelName);
  const argsJson = JSON.stringify(p.settings);
  const ckptPath = store.checkpointName;
  let startEpoch = 0;
  let totals: EpochTotals = { lossSum: 0, correct: 0, images: 0, steps: 0 };
  let history: EpochRecord[] = [];
  const steps: StepRecord[] = [];
  if (p.resume) {
    const ck = store.loadCheckpoint(stepsPerEpoch);
    if (ck === null) {
      throw new ResnetTsError('train', `--resume: no checkpoint at ${ckptPath} (nothing to resume: the run stopped before its first checkpoint; --checkpoint-every N saves one every N iterations)`);
    }
    const mismatches = resumeMismatches(ck.args, JSON.parse(argsJson) as Record<string, unknown>, ck.epoch);
    if (mismatches.length) {
      throw new ResnetTsError('train', `--resume: ${ckptPath} was made with other settings (${mismatches.length}):\n  ${mismatches.join('\n  ')}\nrun again with the checkpoint's settings, or start a new run with another --out`);
    }
    if (ck.epoch > p.epochs || (ck.epoch === p.epochs && ck.step > 0)) throw new ResnetTsError('train', `--resume: ${ckptPath} has a corrupt metadata field "epoch" (${ck.epoch}, more than the ${p.epochs} epochs of the run)`);
    if (ck.epoch === p.epochs) {
      const last = ck.history[ck.history.length - 1];
      const acc = typeof last?.testAccuracy === 'number' ? ` (test accuracy ${(100 * last.testAccuracy).toFixed(2)}%)` : '';
      throw new ResnetTsError('train', `--resume: the run in ${store.location} already finished all ${p.epochs} epochs${acc}; nothing to do` +
        (p.schedule === 'constant' ? '; pass a larger --epochs to train longer' : `; its ${p.schedule} schedule cannot be stretched, start a new run to train longer (--schedule constant runs can be extended)`));
    }
    const modelSd: Record<string, Tensor> = {};
    for (const [k, t] of Object.entries(ck.tensors)) if (k.startsWith('model.')) modelSd[k.slice(6)] = t;
    model.loadStateDict(modelSd);
    optimizerStateFromTensors(opt, ck.tensors, ck.optimizer);
    if (sched && ck.scheduler) sched.loadStateDict(JSON.parse(ck.scheduler));
    startEpoch = ck.epoch;
    totals = ck.totals;
    history = ck.history;
    steps.push(...ck.steps);
    log(`resuming ${ckptPath} after epoch ${startEpoch}${ck.step ? `, step ${ck.step}/${stepsPerEpoch}` : ''}`);
  }
  log(`training ${p.modelName}${p.frozen ? ' (backbone frozen)' : ''} on ${p.dataName}: ${p.train.length} images, ${stepsPerEpoch} steps/epoch of ${p.batchSize}, ${p.epochs} epochs, lr ${p.lr} (${p.schedule}), seed ${p.seed}`);
  const save = (epoch: number, t: EpochTotals): void => {
    const opts = optimizerStateToTensors(opt);
    const tensors: Record<string, Tensor> = { ...opts.tensors };
    for (const [k, v] of Object.entries(model.stateDict())) tensors[`model.${k}`] = v;
    store.saveCheckpoint({ tensors, epoch, step: t.steps, totals: t, argsJson, optimizer: opts.meta, scheduler: sched ? JSON.stringify(sched.stateDict()) : '', history, steps, modelMeta: p.modelMeta });
  };
  const t0 = performance.now();
  const elapsed = (): number => (performance.now() - t0) / 1000;
  let testAcc = NaN;
  for (let epoch = startEpoch; epoch < p.epochs; epoch++) {
    const te = performance.now();
    h.onEpochStart?.(epoch);
    const epochSteps = trainSteps({
      model, optimizer: opt, scheduler: sched, loader, epoch, iterationOffset: epoch * stepsPerEpoch, maxSteps: p.maxSteps, totals,
      onStep: (s) => {
        steps.push({ iteration: s.iteration, loss: s.loss });
        h.onStep?.(s);
      },
    });
    let stats;
    for (;;) {
      const r = epochSteps.next();
      if (r.done) {
        stats = r.value;
        break;
      }
      const iteration = r.value.iteration + 1;
      const last = totals.steps === stepsPerEpoch; // the epoch's end writes its own checkpoint
      if (!last && p.checkpointEvery && iteration % p.checkpointEvery === 0) save(epoch, totals);
      if (h.stopAfterIteration !== undefined && iteration >= h.stopAfterIteration) return { testAccuracy: NaN, seconds: elapsed() };
      yield;
      if (!last && h.stopRequested?.()) {
        h.onStepsEnd?.();
        save(epoch, totals);
        return { testAccuracy: NaN, seconds: elapsed(), interrupted: { epoch, step: totals.steps, stepsPerEpoch } };
      }
    }
    totals = { lossSum: 0, correct: 0, images: 0, steps: 0 };
    h.onStepsEnd?.();
    const ev = evaluate(model, p.test, p.evalOptions);
    testAcc = ev.accuracy;
    const secs = (performance.now() - te) / 1000;
    history.push({ epoch: epoch + 1, trainLoss: stats.loss, trainAccuracy: stats.accuracy, testLoss: ev.loss, testAccuracy: ev.accuracy, seconds: secs, imagesPerSecond: stats.images / secs });
    log(`epoch ${epoch + 1}/${p.epochs}: train loss ${stats.loss.toFixed(4)} acc ${(100 * stats.accuracy).toFixed(2)}% · test loss ${ev.loss.toFixed(4)} acc ${(100 * ev.accuracy).toFixed(2)}% · ${formatDuration(secs)}`);
    // checkpoint: model + optimizer + scheduler + epoch, atomically; then the plain model weights for PyTorch
    save(epoch + 1, totals);
    store.saveModel(model.stateDict(), p.modelMeta);
    store.saveMetrics({ args: JSON.parse(argsJson), data: p.dataNote, epochs: history, steps });
    if (h.stopAfterEpoch !== undefined && epoch + 1 >= h.stopAfterEpoch) break;
    if (h.stopRequested?.() && epoch + 1 < p.epochs) {
      return { testAccuracy: testAcc, seconds: elapsed(), interrupted: { epoch: epoch + 1, step: 0, stepsPerEpoch } };
    }
  }
  return { testAccuracy: testAcc, seconds: elapsed() };
}

/** Seconds as m:ss or h:mm:ss. */
export function formatDuration(s: number): string {
  if (!Number.isFinite(s)) return '--:--';
  const t = Math.max(0, Math.round(s));
  const hh = Math.floor(t / 3600), m = Math.floor((t % 3600) / 60), sec = t % 60;
  return hh ? `${hh}:${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}` : `${m}:${String(sec).padStart(2, '0')}`;
}
