import { noGrad } from '../autograd.js';
import { withArena } from '../fusion/arena.js';
import { withTrainingStep } from '../fusion/scope.js';
import { ValueError } from '../errors.js';
import { DataLoader } from '../data/loader.js';
import type { Dataset } from '../data/dataset.js';
import type { MapDataset } from '../data/map-dataset.js';
import type { Transform } from '../data/transforms.js';
import type { Module } from '../nn/module.js';
import { crossEntropy } from '../ops/loss.js';
import type { LRScheduler } from '../optim/lr_scheduler.js';
import type { Optimizer } from '../optim/optimizer.js';
import type { Tensor } from '../tensor.js';

/**
 * The training loop behind `resnet-ts train`, `npm start` and the degradation experiment: PyTorch's usual
 * zero_grad → forward → cross-entropy → backward → step, with the scheduler stepped once per iteration.
 * No node imports: files (datasets, checkpoints) are the CLI's business.
 */

export interface StepInfo {
  epoch: number;
  /** Batch index within the epoch. */
  step: number;
  stepsPerEpoch: number;
  /** Iterations since the start of training (across epochs). */
  iteration: number;
  loss: number;
  /** Correct predictions in this batch / its size. */
  accuracy: number;
  batchSize: number;
  lr: number;
  /** Wall time of this step in ms. */
  ms: number;
}

export interface EvalResult {
  loss: number;
  accuracy: number;
  /** Error rate in [0, 1] (1 − accuracy). */
  error: number;
  n: number;
}

/** Number of rows whose argmax equals the label. */
export function countCorrect(logits: Tensor, y: Int32Array): number {
  const [n, c] = logits.shape as [number, number];
  const d = logits.data;
  let correct = 0;
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let j = 1; j < c; j++) if (d[i * c + j]! > d[i * c + best]!) best = j;
    if (best === y[i]) correct++;
  }
  return correct;
}

/** Loss and accuracy of `model` in eval mode over a dataset (restores the model's mode). */
export function evaluate(model: Module, ds: Dataset | MapDataset, opts: { batchSize?: number; transform?: Transform; numWorkers?: number } = {}): EvalResult {
  if (ds.length === 0) throw new ValueError('evaluate', 'the dataset is empty: nothing to evaluate');
  const was = model.training;
  model.eval();
  let loss = 0;
  let correct = 0;
  let n = 0; // items batched (a map-style dataset may skip bad files)
  try {
    const loader = new DataLoader(ds, { batchSize: opts.batchSize ?? 256, transform: opts.transform, numWorkers: opts.numWorkers });
    noGrad(() => {
      for (const { x, y } of loader.epochBatches(0)) {
        n += y.length;
        const logits = withArena(() => model.forward(x));
        loss += crossEntropy(logits, y, { reduction: 'sum' }).item();
        correct += countCorrect(logits, y);
      }
    });
  } finally {
    model.train(was);
  }
  if (n === 0) throw new ValueError('evaluate', `every one of the ${ds.length} items was skipped: nothing to evaluate`);
  return { loss: loss / n, accuracy: correct / n, error: 1 - correct / n, n };
}

/** Running sums of an epoch's training batches; carried over when an epoch is resumed mid-way. */
export interface EpochTotals {
  /** Sum of loss × batch size, in float64. */
  lossSum: number;
  correct: number;
  images: number;
  /** Batches done. */
  steps: number;
}

export interface TrainEpochOptions {
  model: Module;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  optimizer: Optimizer<any>;
  scheduler?: LRScheduler | null;
  loader: DataLoader;
  epoch: number;
  /** Iterations done before this epoch (for StepInfo.iteration). */
  iterationOffset?: number;
  /** Stop after this many batches (for time-boxed runs); default: the whole epoch. */
  maxSteps?: number;
  /**
   * Resume mid-epoch: the sums of the batches already done (`steps` of them); the epoch continues at batch `steps`,
   * with the very batches and augmentation an uninterrupted pass would have. Updated in place as steps finish.
   */
  totals?: EpochTotals;
  onStep?: (info: StepInfo) => void;
}

/**
 * One epoch of training, one step per `next()`: yields each step's StepInfo (after `onStep`), returns the epoch's
 * mean training loss and accuracy. A caller can stop between steps (a checkpoint, an interrupt) and resume later
 * through `totals`.
 */
export function* trainSteps(o: TrainEpochOptions): Generator<StepInfo, { loss: number; accuracy: number; steps: number; images: number }> {
  const { model, optimizer, scheduler, loader, epoch } = o;
  const t = o.totals ?? { lossSum: 0, correct: 0, images: 0, steps: 0 };
  model.train();
  const stepsPerEpoch = Math.min(loader.length, o.maxSteps ?? Infinity);
  for (const { x, y } of loader.epochBatches(epoch, Math.min(t.steps, stepsPerEpoch))) {
    if (t.steps >= stepsPerEpoch) break;
    const t0 = performance.now();
    const lr = optimizer.paramGroups[0]!.lr;
    // The step reuses the last step's buffers (withTrainingStep): only numbers leave it.
    const [l, c] = withTrainingStep({ model, optimizer }, () => {
      // Zeroed in place (PyTorch 1.13's default): the backward then accumulates every parameter's gradient into its
      // existing .grad, so a step allocates no parameter gradients.
      optimizer.zeroGrad(false);
      const logits = model.forward(x);
      const loss = crossEntropy(logits, y);
      loss.backward();
      optimizer.step();
      return [loss.item(), countCorrect(logits, y)];
    });
    scheduler?.step();
    t.lossSum += l * y.length;
    t.correct += c;
    t.images += y.length;
    const step = t.steps++;
    const info: StepInfo = {
      epoch, step, stepsPerEpoch, iteration: (o.iterationOffset ?? 0) + step, loss: l, accuracy: c / y.length,
      batchSize: y.length, lr, ms: performance.now() - t0,
    };
    o.onStep?.(info);
    yield info;
  }
  return { loss: t.lossSum / Math.max(1, t.images), accuracy: t.correct / Math.max(1, t.images), steps: t.steps, images: t.images };
}

/** One epoch of training; returns the mean training loss and accuracy over the batches seen. */
export function trainEpoch(o: TrainEpochOptions): { loss: number; accuracy: number; steps: number; images: number } {
  const steps = trainSteps(o);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}
