// Training steps by phase: forward (model + cross-entropy), backward, optimizer (SGD, momentum 0.9, weight decay
// 5e-4, torch's CIFAR recipe), for the three steps the training issue targets. Each phase is timed in wall time
// and in process CPU time (all threads: a loaded machine disturbs it less than wall time); the median over the
// timed steps is reported. Checked first: the first step's loss must be finite and equal to a second model's
// built from the same seed (the step is deterministic), so a broken build is not timed.
//
// Each case has two rows, timed in turns (one step each, on two models built from the same seed): the step called
// plainly, and the step inside withTrainingStep, as the library's trainer runs it (activations and gradients reuse the
// last step's shared buffers). Its step column is the wall around the whole withTrainingStep call.

import { fmtMs, median, selected, table } from './lib.mjs';

const CASES = [
  { name: 'CIFAR ResNet-20 train 32×3×32×32', make: (lib) => lib.models.resnet20(), input: [32, 3, 32, 32], quick: true },
  { name: 'ResNet-18 train 8×3×32×32 (10 classes)', make: (lib) => lib.models.resnet18({ numClasses: 10 }), input: [8, 3, 32, 32], quick: true },
  { name: 'ResNet-20 train 128×1×28×28 (Fashion-MNIST)', make: (lib) => lib.models.resnet20({ inChannels: 1 }), input: [128, 1, 28, 28], quick: false },
];

const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

function setup(lib, c) {
  lib.manualSeed(0);
  const model = c.make(lib).train();
  const x = lib.randn(c.input);
  const classes = model.fc.outFeatures;
  const target = Array.from({ length: c.input[0] }, (_, i) => (i * 7) % classes);
  const opt = new lib.optim.SGD(model.parameters(), { lr: 0.01, momentum: 0.9, weightDecay: 5e-4 });
  return { model, x, target, opt };
}

/**
 * One step, phase by phase: { forward, backward, optimizer, step } each { wall, cpu } in ms, and the loss. With
 * `scoped` the step runs inside withTrainingStep, and step is the whole call (its end, which hands the step's buffers
 * back, included); else step is the three phases.
 */
function step(lib, s, scoped = false) {
  const t = {};
  const w0 = performance.now(), c0 = cpuMs();
  let w = w0, c = c0;
  const lap = (name) => {
    const w1 = performance.now(), c1 = cpuMs();
    t[name] = { wall: w1 - w, cpu: c1 - c };
    w = w1;
    c = c1;
  };
  const body = () => {
    s.opt.zeroGrad(false); // as the library's trainer: gradients zeroed in place, accumulated into
    const loss = lib.nn.functional.crossEntropy(s.model.forward(s.x), s.target);
    lap('forward');
    loss.backward();
    lap('backward');
    s.opt.step();
    lap('optimizer');
    return loss.item();
  };
  const loss = scoped ? lib.withTrainingStep({ model: s.model, optimizer: s.opt }, body) : body();
  t.step = scoped
    ? { wall: performance.now() - w0, cpu: cpuMs() - c0 }
    : { wall: t.forward.wall + t.backward.wall + t.optimizer.wall, cpu: t.forward.cpu + t.backward.cpu + t.optimizer.cpu };
  return { t, loss };
}

/** Runs the phase rows; returns { rows, notes, failed }. */
export async function benchTrain(lib, opts, log) {
  const rows = [];
  const failed = [];
  const warmup = opts.quick ? 2 : 3;
  const timed = opts.quick ? 3 : 8;
  for (const c of CASES.filter((k) => (!opts.quick || k.quick) && selected(opts, k.name))) {
    const s = setup(lib, c);
    const check = setup(lib, c);
    const first = step(lib, s).loss;
    const again = step(lib, check).loss;
    if (!Number.isFinite(first) || first !== again) {
      const why = `first-step loss ${first} vs ${again} from the same seed`;
      log(`  MISMATCH ${c.name}: ${why} — not timed`);
      failed.push({ model: c.name, why });
      continue;
    }
    log(`  ${c.name}: first-step loss ${first.toFixed(4)} (same from a second model), timing…`);
    const scoped = setup(lib, c);
    for (let i = 0; i < warmup - 1; i++) step(lib, s);
    for (let i = 0; i < warmup; i++) step(lib, scoped, true);
    const samples = { plain: [], scoped: [] };
    for (let i = 0; i < timed; i++) {
      samples.plain.push(step(lib, s).t);
      samples.scoped.push(step(lib, scoped, true).t);
    }
    const batch = c.input[0];
    for (const [mode, ts] of Object.entries(samples)) {
      const med = (phase, k) => median(ts.map((t) => t[phase][k]));
      rows.push({
        model: c.name, mode, batch, steps: timed,
        phases: Object.fromEntries(['forward', 'backward', 'optimizer', 'step'].map((p) => [p, { wall: med(p, 'wall'), cpu: med(p, 'cpu') }])),
        imagesPerSecond: (1000 * batch) / med('step', 'wall'),
      });
    }
  }
  const notes = [
    `Median of ${timed} steps after ${warmup} untimed; wall ms (process CPU ms over all threads in parentheses). forward includes the cross-entropy; optimizer = SGD(momentum 0.9, weight decay 5e-4).step(); step = the three phases (zeroGrad(false), as the library's trainer does, is part of forward). Rows "in withTrainingStep" run each step inside it, as the trainer does; their step is the whole call. The two rows of a case are timed in turns, one step each.`,
  ];
  return { rows, notes, failed };
}

export function trainTable(rows) {
  const cell = (p) => `${fmtMs(p.wall)} (${fmtMs(p.cpu)})`;
  return table(
    ['train step', 'forward', 'backward', 'optimizer', 'step', 'images/s'],
    rows.map((r) => [r.mode === 'scoped' ? `${r.model}, in withTrainingStep` : r.model, cell(r.phases.forward), cell(r.phases.backward), cell(r.phases.optimizer), cell(r.phases.step), r.imagesPerSecond.toFixed(0)]),
  );
}
