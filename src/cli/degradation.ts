import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { subset } from '../data/dataset.js';
import { writeFileAtomic } from '../io/atomic-file.js';
import { degradation, downsampleDataset, type DegradationResult, type DegradationSchedule } from '../experiments/degradation.js';
import { degradationFigures } from '../experiments/figures.js';
import { formatSeedSummary, seedCurvesSvg, seedSummary } from '../experiments/seeds.js';
import { intFlag, numFlag, parse, shapeFlag, UsageError } from './args.js';
import type { Command } from './commands.js';
import { formatDuration, Progress } from './progress.js';
import { applyThreads } from './threads.js';
import { loadData } from './data.js';

/**
 * `resnet-ts degradation`: the experiment of src/experiments/degradation.ts from the command line, writing
 * OUT/degradation.json and the three SVG figures.
 */

export interface DegradationPreset {
  depths: number[];
  widths: [number, number, number];
  /** Average-pool factor applied to the images (2: 28×28 → 14×14). */
  downsample: number;
  /** Training images used (first N), test images (first N), and training images for the final eval-mode error. */
  subset: number;
  testSubset: number;
  trainEval: number;
  batchSize: number;
  iterations: number;
  /** Curve points per net (the test set is evaluated this many times). */
  points: number;
}

/** --quick: under 5 minutes on 2 cores with the kernels of today (tiny widths, 14×14 images, a few hundred steps). */
export const QUICK: DegradationPreset = { depths: [20, 56], widths: [4, 8, 16], downsample: 2, subset: 10000, testSubset: 500, trainEval: 1000, batchSize: 64, iterations: 200, points: 10 };
/** The default: under 15 minutes on 2 cores (about 2.6 epochs of Fashion-MNIST at 14×14). */
export const FULL: DegradationPreset = { depths: [20, 56], widths: [4, 8, 16], downsample: 2, subset: 60000, testSubset: 2000, trainEval: 2000, batchSize: 128, iterations: 1200, points: 15 };
/** --paper-widths: the default's recipe with the paper's widths 16/32/64 on the full 28×28 images (about an hour per seed on 2 cores). */
export const PAPER_WIDTHS: DegradationPreset = { ...FULL, widths: [16, 32, 64], downsample: 1 };

export const DEGRADATION_HELP = `Usage: resnet-ts degradation [options]

The degradation experiment of He et al. 2015 (Fig. 6 and 7): plain nets and ResNets of the same depths trained with
one recipe and one seed (SGD momentum 0.9, weight decay 1e-4, lr 0.1 divided by 10 at 50% and 75% of the iterations).
Writes OUT/degradation.json (all numbers) and three figures:
  OUT/training-curves.svg  training error (dashed) and test error (solid) vs iterations, plain left, ResNets right
  OUT/gradient-norms.svg   gradient norm of every layer, input end → output end, at init and after training
  OUT/response-std.svg     std of every unit's residual response F(x) after training (Fig. 7)

  --data WHAT         fashion-mnist (default), mnist, cifar10 (with --data-dir), synthetic, or a directory
  --data-dir DIR      where the dataset lives
  --quick             a small setting that finishes in under 5 minutes on 2 cores (today's kernels, one thread):
                      first ${QUICK.subset} training and ${QUICK.testSubset} test images, ${QUICK.iterations} iterations of ${QUICK.batchSize}, depths ${QUICK.depths.join(',')},
                      widths ${QUICK.widths.join(',')}, images average-pooled ×${QUICK.downsample} (Fashion-MNIST: 14×14).
                      Default: first ${FULL.subset} training and ${FULL.testSubset} test images, ${FULL.iterations} iterations of ${FULL.batchSize},
                      depths ${FULL.depths.join(',')}, widths ${FULL.widths.join(',')}, pooled ×${FULL.downsample}; under 15 minutes on 2 cores
  --paper-widths      the default with the paper's widths ${PAPER_WIDTHS.widths.join(',')} on the full 28×28 images (pooled ×${PAPER_WIDTHS.downsample});
                      about an hour per seed on 2 cores
  --depths LIST       depths 6n+2, e.g. 20,56 or 8,20,32
  --widths A,B,C      stage widths (the paper's: 16,32,64)
  --downsample K      average-pool the images by K (1: full size)
  --subset N          train on the first N training images
  --test-subset N     test on the first N test images
  --epochs N          train N epochs over the (subset of the) training set …
  --iterations N      … or N iterations (the default is a fixed number of iterations)
  --batch-size N
  --lr X              (default 0.1)
  --schedule S        paper (default; ÷10 at 50% and 75%) or cosine
  --eval-every N      iterations between curve points (default: ${QUICK.points} points per curve with --quick, else ${FULL.points})
  --augment           random crop and horizontal flip (default off)
  --out DIR           (default runs/degradation, runs/degradation-quick or runs/degradation-paper-widths)
  --seed N            (default 0)
  --seeds LIST        several seeds, e.g. 0,1,2: each run goes to OUT/seed-N/ as above, then OUT/seeds.json
                      (each net's mean, std, min and max over the seeds) and OUT/training-curves-seeds.svg
                      (mean curves with min–max bands). A seed whose OUT/seed-N/degradation.json exists with
                      this setting is not run again, so seeds can run as separate processes and be combined
  --threads N         worker threads for the kernels
  --quiet             no progress bar`;

export interface DegradationCliArgs {
  data: string;
  dataDir?: string;
  quick: boolean;
  preset: DegradationPreset;
  epochs?: number;
  evalEvery?: number;
  lr: number;
  schedule: DegradationSchedule;
  augment: boolean;
  out: string;
  seed: number;
  /** --seeds: run the experiment once per seed (then `seed` is the first). */
  seeds?: number[];
  threads?: number;
  quiet: boolean;
}

export function parseDegradationArgs(argv: string[]): DegradationCliArgs {
  const { values, positionals } = parse(argv, {
    data: { type: 'string' }, 'data-dir': { type: 'string' }, quick: { type: 'boolean' }, 'paper-widths': { type: 'boolean' }, depths: { type: 'string' },
    widths: { type: 'string' }, downsample: { type: 'string' }, subset: { type: 'string' }, 'test-subset': { type: 'string' },
    epochs: { type: 'string' }, iterations: { type: 'string' }, 'batch-size': { type: 'string' }, lr: { type: 'string' },
    schedule: { type: 'string' }, 'eval-every': { type: 'string' }, augment: { type: 'boolean' }, out: { type: 'string' },
    seed: { type: 'string' }, seeds: { type: 'string' }, threads: { type: 'string' }, quiet: { type: 'boolean' },
  });
  if (values.seed !== undefined && values.seeds !== undefined) throw new UsageError('give --seed or --seeds, not both');
  let seeds: number[] | undefined;
  if (values.seeds !== undefined) {
    seeds = String(values.seeds).split(',').map((t) => {
      const v = Number(t.trim());
      if (t.trim() === '' || !Number.isSafeInteger(v) || v < 0) throw new UsageError(`--seeds must be non-negative integers like 0,1,2, got '${String(values.seeds)}'`);
      return v;
    });
    if (new Set(seeds).size !== seeds.length) throw new UsageError(`--seeds lists a seed twice: '${String(values.seeds)}'`);
  }
  if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  const quick = Boolean(values.quick);
  const paperWidths = Boolean(values['paper-widths']);
  if (quick && paperWidths) throw new UsageError('give --quick or --paper-widths, not both');
  const base = quick ? QUICK : paperWidths ? PAPER_WIDTHS : FULL;
  const depths = shapeFlag(values.depths as string | undefined, base.depths, 'depths');
  for (const d of depths) if (d < 8 || (d - 2) % 6 !== 0) throw new UsageError(`--depths must be 6n+2 (8, 14, 20, 32, 44, 56, 110, …), got ${d}`);
  const widths = shapeFlag(values.widths as string | undefined, base.widths, 'widths');
  if (widths.length !== 3) throw new UsageError(`--widths must be three numbers like 16,32,64, got '${String(values.widths)}'`);
  if (values.epochs !== undefined && values.iterations !== undefined) throw new UsageError('give --epochs or --iterations, not both');
  const schedule = ((values.schedule as string | undefined) ?? 'paper') as DegradationSchedule;
  if (schedule !== 'paper' && schedule !== 'cosine') throw new UsageError(`--schedule must be paper or cosine, got '${schedule}'`);
  const iterations = intFlag(values, 'iterations', base.iterations);
  const preset: DegradationPreset = {
    depths, widths: widths as [number, number, number],
    downsample: intFlag(values, 'downsample', base.downsample),
    subset: intFlag(values, 'subset', base.subset),
    testSubset: intFlag(values, 'test-subset', base.testSubset),
    trainEval: base.trainEval,
    batchSize: intFlag(values, 'batch-size', base.batchSize, 2),
    iterations,
    points: base.points,
  };
  return {
    data: (values.data as string | undefined) ?? 'fashion-mnist', dataDir: values['data-dir'] as string | undefined, quick, preset,
    epochs: values.epochs === undefined ? undefined : intFlag(values, 'epochs', 1),
    evalEvery: values['eval-every'] === undefined ? undefined : intFlag(values, 'eval-every', 1),
    lr: numFlag(values, 'lr', 0.1, 0), schedule, augment: Boolean(values.augment),
    out: (values.out as string | undefined) ?? join('runs', quick ? 'degradation-quick' : paperWidths ? 'degradation-paper-widths' : 'degradation'),
    seed: seeds ? seeds[0]! : intFlag(values, 'seed', 0, 0), seeds, threads: values.threads === undefined ? undefined : intFlag(values, 'threads', 1),
    quiet: Boolean(values.quiet),
  };
}

/**
 * Runs the experiment and writes OUT/degradation.json and the figures; returns the result. With `seeds`, runs it
 * once per seed into OUT/seed-N/, writes OUT/seeds.json and OUT/training-curves-seeds.svg, and returns the runs.
 */
export function runDegradation(a: DegradationCliArgs & { seeds: number[] }, log?: (s: string) => void): DegradationResult[];
export function runDegradation(a: DegradationCliArgs, log?: (s: string) => void): DegradationResult;
export function runDegradation(a: DegradationCliArgs, log: (s: string) => void = (s) => console.log(s)): DegradationResult | DegradationResult[] {
  if (a.threads !== undefined) applyThreads(a.threads);
  if (!a.seeds) return runOne(a, log);
  const runs: DegradationResult[] = [];
  for (const seed of a.seeds) {
    const dir = join(a.out, `seed-${seed}`);
    const done = finishedRun(a, seed, dir);
    if (done) {
      log(`— seed ${seed} (${runs.length + 1} of ${a.seeds.length}): reusing ${join(dir, 'degradation.json')}, finished earlier —`);
      runs.push(done);
      continue;
    }
    log(`— seed ${seed} (${runs.length + 1} of ${a.seeds.length}) —`);
    runs.push(runOne({ ...a, seed, seeds: undefined, out: dir }, log));
  }
  const summary = seedSummary(runs);
  const enc = new TextEncoder();
  mkdirSync(a.out, { recursive: true });
  const json = { experiment: 'degradation-seeds', version: 1, setting: { ...runs[0]!.setting, seed: undefined, seeds: a.seeds }, summary, runs: a.seeds.map((s) => `seed-${s}/degradation.json`) };
  writeFileAtomic(join(a.out, 'seeds.json'), enc.encode(`${JSON.stringify(json, null, 1)}\n`));
  writeFileAtomic(join(a.out, 'training-curves-seeds.svg'), enc.encode(seedCurvesSvg(runs)));
  log(formatSeedSummary(summary));
  log(`wrote ${join(a.out, 'seeds.json')}, training-curves-seeds.svg · ${formatDuration(summary.seconds)} wall for ${runs.length} seeds`);
  return runs;
}

/**
 * A seed's finished run in `dir` (its degradation.json), when one is there: it must have this setting, else it is an
 * error (delete the folder to run it again). `seedSummary` then checks that all the seeds' settings agree.
 */
function finishedRun(a: DegradationCliArgs, seed: number, dir: string): DegradationResult | null {
  const file = join(dir, 'degradation.json');
  if (!existsSync(file)) return null;
  let r: DegradationResult;
  try {
    r = JSON.parse(readFileSync(file, 'utf8')) as DegradationResult;
  } catch (e) {
    throw new UsageError(`${file} is not a finished run (${e instanceof Error ? e.message : String(e)}); delete ${dir} to run seed ${seed} again`);
  }
  const s = r?.setting;
  const p = a.preset;
  const want: [string, unknown, unknown][] = [
    ['seed', s?.seed, seed], ['depths', s?.depths, p.depths], ['widths', s?.widths, p.widths], ['batch size', s?.batchSize, p.batchSize],
    ['lr', s?.lr, a.lr], ['schedule', s?.schedule, a.schedule], ['augment', s?.augment, a.augment],
    ...(a.epochs === undefined ? [['iterations', s?.iterations, p.iterations] as [string, unknown, unknown]] : []),
  ];
  const diff = want.filter(([, got, exp]) => JSON.stringify(got) !== JSON.stringify(exp));
  if (r?.experiment !== 'degradation' || !Array.isArray(r.nets) || diff.length) {
    const what = diff.length ? diff.map(([k, got, exp]) => `${k} ${JSON.stringify(got)} instead of ${JSON.stringify(exp)}`).join(', ') : 'not a degradation result';
    throw new UsageError(`${file} holds another run (${what}); delete ${dir} to run seed ${seed} again`);
  }
  return r;
}

function runOne(a: DegradationCliArgs, log: (s: string) => void): DegradationResult {
  const p = a.preset;
  const data = loadData(a.data, a.dataDir, a.seed);
  const train = downsampleDataset(subset(data.train, 0, p.subset), p.downsample);
  const test = downsampleDataset(subset(data.test, 0, p.testSubset), p.downsample);
  const stepsPerEpoch = Math.floor(train.length / p.batchSize);
  if (stepsPerEpoch < 1) throw new UsageError(`--batch-size ${p.batchSize} is larger than the ${train.length} training images`);
  const iterations = a.epochs !== undefined ? a.epochs * stepsPerEpoch : p.iterations;
  const evalEvery = a.evalEvery ?? Math.max(1, Math.round(iterations / p.points));
  const note = `${data.note}; first ${train.length} training and ${test.length} test images${p.downsample > 1 ? `, average-pooled ×${p.downsample} to ${train.height}×${train.width}` : ''}${a.quick ? ' (--quick)' : ''}`;
  log(note);
  log(`nets: ${['plain', 'resnet'].flatMap((k) => p.depths.map((d) => `${k}-${d}`)).join(', ')} · widths ${p.widths.join(',')} · ${iterations} iterations of ${p.batchSize} (${(iterations / stepsPerEpoch).toFixed(2)} epochs) · lr ${a.lr} (${a.schedule}) · seed ${a.seed}`);
  const progress = new Progress();
  const cpu0 = process.cpuUsage();
  let t0 = performance.now();
  let imgs = 0;
  let errEma = NaN;
  let bar = false;
  const result = degradation({
    train, test, mean: data.mean, std: data.std, dataName: data.name, dataNote: note,
    depths: p.depths, widths: p.widths, iterations, batchSize: p.batchSize, lr: a.lr, schedule: a.schedule, seed: a.seed,
    evalEvery, trainEvalImages: p.trainEval, augment: a.augment, log: (s) => {
      if (bar) progress.end();
      bar = false;
      log(s);
    },
    onStep: (net, s, k, nets) => {
      if (s.iteration === 0) {
        t0 = performance.now();
        imgs = 0;
        errEma = NaN;
      }
      imgs += s.batchSize;
      errEma = Number.isNaN(errEma) ? 1 - s.accuracy : 0.95 * errEma + 0.05 * (1 - s.accuracy);
      const rate = imgs / ((performance.now() - t0) / 1000);
      bar = !a.quiet;
      if (!a.quiet) progress.update({
        label: `${net} (${k + 1}/${nets})`, done: s.iteration + 1, total: iterations,
        fields: { 'train err': `${(100 * errEma).toFixed(1)}%`, lr: s.lr.toPrecision(2) }, rate, etaSeconds: ((iterations - s.iteration - 1) * s.batchSize) / rate,
      });
    },
  });
  mkdirSync(a.out, { recursive: true });
  const enc = new TextEncoder();
  writeFileAtomic(join(a.out, 'degradation.json'), enc.encode(`${JSON.stringify(result, null, 1)}\n`));
  for (const [name, svg] of Object.entries(degradationFigures(result))) writeFileAtomic(join(a.out, name), enc.encode(svg));
  log(summarize(result));
  const cpu = process.cpuUsage(cpu0);
  // CPU time says what the run costs on an idle machine when other processes share the cores
  log(`wrote ${join(a.out, 'degradation.json')}, training-curves.svg, gradient-norms.svg, response-std.svg · ${formatDuration(result.seconds)} wall, ${formatDuration((cpu.user + cpu.system) / 1e6)} CPU`);
  return result;
}

const pct = (e: number): string => `${(100 * e).toFixed(2)}%`.padStart(7);

/** The final numbers per net, and whether the deeper plain net trains worse and the deeper ResNet does not. */
export function summarize(r: DegradationResult): string {
  const lines = ['net          train err (running)  train err (eval)  test err   grad ‖first‖/‖last‖ conv at init   seconds'];
  for (const n of r.nets) {
    const g = n.gradNorms.init;
    const ratio = g[0]! / g[g.length - 2]!; // first conv vs the last conv (g[length-1] is fc)
    lines.push(`${n.name.padEnd(12)} ${pct(n.final.trainError)}              ${pct(n.final.trainEvalError)}           ${pct(n.final.testError)}    ${ratio.toPrecision(3).padStart(8)}                          ${n.seconds.toFixed(0).padStart(5)}`);
  }
  const depths = r.setting.depths.slice().sort((a, b) => a - b);
  if (depths.length >= 2) {
    const lo = depths[0]!;
    const hi = depths[depths.length - 1]!;
    const get = (res: boolean, d: number) => r.nets.find((n) => n.residual === res && n.depth === d)!.final.trainEvalError;
    const pl = get(false, hi) > get(false, lo);
    const rs = get(true, hi) <= get(true, lo);
    lines.push(`plain-${hi} trains ${pl ? 'worse' : 'no worse'} than plain-${lo} (${pct(get(false, hi)).trim()} vs ${pct(get(false, lo)).trim()} training error, eval mode): degradation ${pl ? 'appears' : 'does not appear'}`);
    lines.push(`resnet-${hi} trains ${rs ? 'at least as well as' : 'worse than'} resnet-${lo} (${pct(get(true, hi)).trim()} vs ${pct(get(true, lo)).trim()})`);
  }
  return lines.join('\n');
}

export const degradationCommand: Command = {
  summary: 'the degradation experiment: plain vs residual nets of growing depth (He et al. 2015, Fig. 6/7)',
  help: DEGRADATION_HELP,
  run(argv) {
    runDegradation(parseDegradationArgs(argv));
  },
};
