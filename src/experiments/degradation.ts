/**
 * The degradation experiment of He et al. 2015 (§4.2, Fig. 6 and 7), small enough for one laptop: plain nets and
 * ResNets of the same depths, trained with one recipe and one seed, with
 *   - training error (running, over the batches of each interval) and test error (on a fixed test subset) against
 *     iterations: a deeper plain net should train worse, a deeper ResNet should not;
 *   - the gradient norm of every weighted layer at initialization and after training, plain vs residual;
 *   - the std of every unit's response F(x) after training (residual functions stay closer to zero).
 * The result is plain JSON; `degradationFigures` draws it as three SVGs. No node imports: reading datasets and
 * writing files are the CLI's business.
 */

import { ValueError } from '../errors.js';
import { subset, type Dataset } from '../data/dataset.js';
import { DataLoader } from '../data/loader.js';
import { compose, normalize, randomCrop, randomHorizontalFlip, type Transform } from '../data/transforms.js';
import { cifarResnet, type CifarResNet } from '../models/cifar.js';
import { CosineAnnealingLR, cifarResnetSchedule, type LRScheduler } from '../optim/lr_scheduler.js';
import { SGD } from '../optim/sgd.js';
import { manualSeed } from '../random.js';
import type { Tensor } from '../tensor.js';
import { evaluate, trainEpoch, type StepInfo } from '../train/trainer.js';
import { gradientNorms, responseStds } from './probes.js';

export type DegradationSchedule = 'paper' | 'cosine';

export interface DegradationOptions {
  train: Dataset;
  test: Dataset;
  /** Per-channel normalization on the 0..1 scale (e.g. Fashion-MNIST [0.286], [0.353]). */
  mean: readonly number[];
  std: readonly number[];
  /** Names the data in the result, e.g. 'fashion-mnist'; `dataNote` says where it came from and how it was reduced. */
  dataName?: string;
  dataNote?: string;
  /** Depths 6n + 2 (default [20, 56], the paper's Fig. 6 pair). Each is trained plain and residual. */
  depths?: readonly number[];
  /** Stage widths (default [16, 32, 64], the paper's). */
  widths?: readonly [number, number, number];
  /** SGD iterations per net. */
  iterations: number;
  /** Default 128. */
  batchSize?: number;
  /** Default 0.1, momentum 0.9, weight decay 1e-4 (the paper's). */
  lr?: number;
  momentum?: number;
  weightDecay?: number;
  /** 'paper' (default): lr ÷ 10 at 50% and 75% of the iterations (32k, 48k of 64k); or 'cosine'. */
  schedule?: DegradationSchedule;
  /** Seeds the weights (identical for plain-n and ResNet-n: option-A shortcuts have no parameters) and the batches. */
  seed?: number;
  /** Iterations between curve points (default iterations / 20, at least 1). */
  evalEvery?: number;
  /** First N test images, the fixed test subset (default all). */
  testImages?: number;
  /** First N training images for the final eval-mode training error (default min(2000, train size)). */
  trainEvalImages?: number;
  /** Test images in the batch that probes the response std (default min(256, test images)). */
  probeImages?: number;
  /** Random crop (pad 4 at ≥ 32 px, else 2) and horizontal flip on training batches (default false). */
  augment?: boolean;
  /** Called after every training step (for progress bars). */
  onStep?: (net: string, info: StepInfo, netIndex: number, nets: number) => void;
  /** Status lines. */
  log?: (line: string) => void;
}

export interface CurvePoint {
  /** Iterations done. */
  iteration: number;
  /** Error rate (0..1) over the training batches since the previous point, in training mode (the paper's dashed lines). */
  trainError: number;
  trainLoss: number;
  /** Error rate on the fixed test subset, eval mode. */
  testError: number;
  testLoss: number;
  /** Learning rate of the last step in the interval. */
  lr: number;
}

export interface NetResult {
  /** 'plain-20', 'resnet-20', … */
  name: string;
  depth: number;
  residual: boolean;
  params: number;
  curve: CurvePoint[];
  final: {
    /** The last curve point's running training error and the test error. */
    trainError: number;
    testError: number;
    testLoss: number;
    /** Error and loss on the first `trainEvalImages` training images in eval mode, after training. */
    trainEvalError: number;
    trainEvalLoss: number;
  };
  gradNorms: {
    /** Weight names from the input end (conv1) to the output end (fc): `depth` layers. */
    layers: string[];
    /** ‖∂L/∂W‖₂ on the probe batch at initialization and after training. */
    init: number[];
    trained: number[];
    initLoss: number;
    trainedLoss: number;
  };
  /** Std of each unit's response F(x) (last BN output, before the addition), eval mode, input end first: 3n values. */
  responseStd: number[];
  seconds: number;
}

export interface DegradationResult {
  experiment: 'degradation';
  version: 1;
  setting: {
    data: string;
    dataNote: string;
    channels: number;
    imageSize: [number, number];
    numClasses: number;
    trainImages: number;
    testImages: number;
    trainEvalImages: number;
    probeImages: number;
    depths: number[];
    widths: [number, number, number];
    iterations: number;
    epochs: number;
    batchSize: number;
    lr: number;
    momentum: number;
    weightDecay: number;
    schedule: DegradationSchedule;
    milestones: number[];
    seed: number;
    evalEvery: number;
    augment: boolean;
    /** The probe batches: the first `batchSize` training images (gradients) and the first `probeImages` test images (responses). */
    probes: string;
  };
  nets: NetResult[];
  seconds: number;
}

/** The first `n` items of a dataset as one normalized batch (no augmentation). */
function firstBatch(ds: Dataset, n: number, transform: Transform): { x: Tensor; y: Int32Array } {
  const loader = new DataLoader(subset(ds, 0, n), { batchSize: n, transform });
  const b = loader.epochBatches(0).next().value!;
  return { x: b.x, y: b.y };
}

/** Trains plain and residual nets at every depth with one recipe; see the module comment. */
export function degradation(o: DegradationOptions): DegradationResult {
  const depths = (o.depths ?? [20, 56]).slice();
  const widths = (o.widths ?? [16, 32, 64]).slice() as [number, number, number];
  const batchSize = o.batchSize ?? 128;
  const lr = o.lr ?? 0.1;
  const momentum = o.momentum ?? 0.9;
  const weightDecay = o.weightDecay ?? 1e-4;
  const schedule = o.schedule ?? 'paper';
  const seed = o.seed ?? 0;
  const iterations = o.iterations;
  const log = o.log ?? (() => {});
  if (!Number.isInteger(iterations) || iterations < 1) throw new ValueError('degradation', `iterations must be a positive integer, got ${iterations}`);
  for (const d of depths) {
    if (!Number.isInteger(d) || d < 8 || (d - 2) % 6 !== 0) throw new ValueError('degradation', `depths must be 6n + 2 (8, 14, 20, 32, 44, 56, …), got ${d}`);
  }
  if (!depths.length) throw new ValueError('degradation', 'no depths given');
  if (schedule !== 'paper' && schedule !== 'cosine') throw new ValueError('degradation', `schedule must be 'paper' or 'cosine', got '${String(schedule)}'`);
  if (!Number.isInteger(batchSize) || batchSize < 2) throw new ValueError('degradation', `batchSize must be an integer ≥ 2 (BatchNorm needs 2), got ${batchSize}`);
  if (o.train.length < batchSize) throw new ValueError('degradation', `batchSize ${batchSize} is larger than the ${o.train.length} training images`);
  const evalEvery = o.evalEvery ?? Math.max(1, Math.round(iterations / 20));
  if (!Number.isInteger(evalEvery) || evalEvery < 1) throw new ValueError('degradation', `evalEvery must be a positive integer, got ${evalEvery}`);
  const test = subset(o.test, 0, o.testImages ?? o.test.length);
  const trainEval = subset(o.train, 0, o.trainEvalImages ?? Math.min(2000, o.train.length));
  const probeImages = Math.min(test.length, o.probeImages ?? 256);
  if (test.length < 1 || probeImages < 1) throw new ValueError('degradation', 'the test set is empty');
  const milestones = schedule === 'paper' ? [Math.round(iterations * 0.5), Math.round(iterations * 0.75)] : [];

  const norm = normalize(o.mean, o.std);
  const pad = o.train.height >= 32 ? 4 : 2;
  const trainTransform = o.augment ? compose(randomCrop([o.train.height, o.train.width], pad), randomHorizontalFlip(), norm) : norm;
  const gradBatch = firstBatch(o.train, batchSize, norm);
  const respBatch = firstBatch(test, probeImages, norm);
  const stepsPerEpoch = Math.floor(o.train.length / batchSize);

  const plan = [false, true].flatMap((residual) => depths.map((depth) => ({ depth, residual })));
  const nets: NetResult[] = [];
  const t0 = performance.now();
  plan.forEach(({ depth, residual }, netIndex) => {
    const name = `${residual ? 'resnet' : 'plain'}-${depth}`;
    const tn = performance.now();
    manualSeed(seed);
    const model: CifarResNet = cifarResnet(depth, { plain: !residual, widths, inChannels: o.train.channels, numClasses: o.train.numClasses });
    const params = model.parameters().reduce((s, p) => s + p.size, 0);
    const opt = new SGD(model.parameters(), { lr, momentum, weightDecay });
    const sched: LRScheduler = schedule === 'paper'
      ? cifarResnetSchedule(opt, { lr, milestones, totalIters: iterations })
      : new CosineAnnealingLR(opt, iterations);
    const loader = new DataLoader(o.train, { batchSize, shuffle: true, dropLast: true, seed, transform: trainTransform });
    const g0 = gradientNorms(model, gradBatch.x, gradBatch.y);
    log(`${name}: ${params} parameters, ${iterations} iterations of ${batchSize}`);

    const curve: CurvePoint[] = [];
    let wrong = 0;
    let lossSum = 0;
    let seen = 0;
    let done = 0;
    for (let epoch = 0; done < iterations; epoch++) {
      const r = trainEpoch({
        model, optimizer: opt, scheduler: sched, loader, epoch, iterationOffset: done, maxSteps: Math.min(stepsPerEpoch, iterations - done),
        onStep: (s) => {
          wrong += (1 - s.accuracy) * s.batchSize;
          lossSum += s.loss * s.batchSize;
          seen += s.batchSize;
          o.onStep?.(name, s, netIndex, plan.length);
          const it = s.iteration + 1;
          if (it % evalEvery === 0 || it === iterations) {
            const ev = evaluate(model, test, { transform: norm, batchSize: 256 });
            curve.push({ iteration: it, trainError: wrong / seen, trainLoss: lossSum / seen, testError: ev.error, testLoss: ev.loss, lr: s.lr });
            wrong = lossSum = seen = 0;
          }
        },
      });
      done += r.steps;
    }
    const last = curve[curve.length - 1]!;
    const te = evaluate(model, trainEval, { transform: norm, batchSize: 256 });
    const g1 = gradientNorms(model, gradBatch.x, gradBatch.y);
    const responseStd = responseStds(model, respBatch.x);
    const seconds = (performance.now() - tn) / 1000;
    nets.push({
      name, depth, residual, params, curve,
      final: { trainError: last.trainError, testError: last.testError, testLoss: last.testLoss, trainEvalError: te.error, trainEvalLoss: te.loss },
      gradNorms: { layers: g0.layers, init: g0.norms, trained: g1.norms, initLoss: g0.loss, trainedLoss: g1.loss },
      responseStd, seconds,
    });
    log(`${name}: train error ${pct(last.trainError)} (running), ${pct(te.error)} (eval, ${trainEval.length} images) · test error ${pct(last.testError)} · ${seconds.toFixed(1)} s`);
  });

  return {
    experiment: 'degradation',
    version: 1,
    setting: {
      data: o.dataName ?? 'custom', dataNote: o.dataNote ?? '', channels: o.train.channels, imageSize: [o.train.height, o.train.width],
      numClasses: o.train.numClasses, trainImages: o.train.length, testImages: test.length, trainEvalImages: trainEval.length, probeImages,
      depths, widths, iterations, epochs: iterations / stepsPerEpoch, batchSize, lr, momentum, weightDecay, schedule, milestones, seed, evalEvery,
      augment: o.augment ?? false,
      probes: `gradient norms on the first ${batchSize} training images (train mode, mean cross-entropy); response std on the first ${probeImages} test images (eval mode)`,
    },
    nets,
    seconds: (performance.now() - t0) / 1000,
  };
}

const pct = (e: number): string => `${(100 * e).toFixed(2)}%`;

/**
 * Averages each factor×factor block of every image (torch's avg_pool2d(kernel=stride=factor) on the bytes, rounded to
 * the nearest byte): 28×28 Fashion-MNIST → 14×14 for quick runs. Trailing rows/columns that do not fill a block are
 * dropped, as avg_pool2d does.
 */
export function downsampleDataset(ds: Dataset, factor: number): Dataset {
  if (!Number.isInteger(factor) || factor < 1) throw new ValueError('downsampleDataset', `factor must be a positive integer, got ${factor}`);
  if (factor === 1) return ds;
  const { length: n, channels: c, height: h, width: w } = ds;
  const oh = Math.floor(h / factor);
  const ow = Math.floor(w / factor);
  if (oh < 1 || ow < 1) throw new ValueError('downsampleDataset', `factor ${factor} is larger than the ${h}×${w} images`);
  const out = new Uint8Array(n * c * oh * ow);
  const area = factor * factor;
  for (let p = 0; p < n * c; p++) {
    const src = p * h * w;
    const dst = p * oh * ow;
    for (let y = 0; y < oh; y++) {
      for (let x = 0; x < ow; x++) {
        let s = 0;
        for (let dy = 0; dy < factor; dy++) for (let dx = 0; dx < factor; dx++) s += ds.images[src + (y * factor + dy) * w + x * factor + dx]!;
        out[dst + y * ow + x] = Math.round(s / area);
      }
    }
  }
  return { ...ds, height: oh, width: ow, images: out };
}
