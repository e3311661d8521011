// Where a training step's time goes, op by op: `node bench/profile-train.mjs [case] [--threads N] [--steps S]`.
// --dist DIR profiles another build (its dist/). Cases: resnet20-fmnist (ResNet-20, 128×1×28×28), resnet18 (ResNet-18, 10 classes, 8×3×32×32), resnet20-cifar
// (ResNet-20, 32×3×32×32), resnet56-deg (the degradation run's ResNet-56, 128×1×14×14); default: the first two. Needs `npm run build` first (it loads dist/). Each step runs in
// withTrainingStep as the trainer's do (buffers reused and shared with the threads); --no-step-arena runs it bare.
//
// Forward: every leaf module's forward (Conv2d, BatchNorm2d, ReLU, …) is wrapped with a timer, grouped by module
// type; what a block does outside its leaves shows as "block rest": in training mode that is mostly the batch norm
// forward, which convBnAct runs as one op with the residual add and the ReLU (batchNormRelu2d, not the BatchNorm2d
// module's forward), plus flatten. The option-A shortcut is a leaf (ShortcutA).
// Backward: autograd's Node.apply (one op's backward) is wrapped, grouped by op name; "autograd" is the rest of
// backward() (graph walk, gradient accumulation). Each step is timed in both process CPU time (all threads: with
// one thread, the op's own cost; the machine may be loaded) and wall time. Reported: the median over the steps of
// each op's per-step total.

import { DIST, scriptArgs } from './lib.mjs';
import { join, resolve } from 'node:path';

const { args, flag } = scriptArgs();
const threads = Number(flag('--threads', '1'));
const noArena = args.indexOf('--no-step-arena');
if (noArena >= 0) args.splice(noArena, 1);
const stepArena = noArena < 0;
const steps = Number(flag('--steps', '12'));
// Another build to profile (e.g. a checkout of an older commit, built): its dist/ directory.
const dist = resolve(flag('--dist', DIST));
// --resident on|off sets config.residentSteps (default: the build's own setting).
const resident = flag('--resident', '');
process.env.RESNET_TS_THREADS = String(threads);

const lib = await import(join(dist, 'index.js'));
const autograd = await import(join(dist, 'autograd.js'));
lib.setNumThreads(threads);
if (resident) lib.setConfig({ residentSteps: resident === 'on' });

export const CASES = {
  'resnet20-fmnist': { make: () => lib.models.resnet20({ inChannels: 1 }), input: [128, 1, 28, 28] },
  resnet18: { make: () => lib.models.resnet18({ numClasses: 10 }), input: [8, 3, 32, 32] },
  'resnet20-cifar': { make: () => lib.models.resnet20(), input: [32, 3, 32, 32] },
  // The degradation experiment's default ResNet-56 (widths 4/8/16, Fashion-MNIST pooled to 14×14).
  'resnet56-deg': { make: () => lib.models.resnet56({ inChannels: 1, widths: [4, 8, 16] }), input: [128, 1, 14, 14] },
};

const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** Per-step accumulators: key → [cpu ms, wall ms] of this step. */
let acc = new Map();
const add = (key, cpu, wall) => {
  const a = acc.get(key);
  if (a) {
    a[0] += cpu;
    a[1] += wall;
  } else acc.set(key, [cpu, wall]);
};
const timed = (key, fn) => {
  const c0 = cpuMs(), w0 = performance.now();
  try {
    return fn();
  } finally {
    add(key, cpuMs() - c0, performance.now() - w0);
  }
};

// Backward of one op: Node.prototype.apply.
const origApply = autograd.Node.prototype.apply;
autograd.Node.prototype.apply = function (dy) {
  return timed(`bwd ${this.op}`, () => origApply.call(this, dy));
};

function wrapLeaves(model) {
  for (const [, m] of model.namedModules()) {
    if (m.children().length > 0) continue;
    const orig = m.forward;
    const key = `fwd ${m.constructor.name}`;
    m.forward = (x) => timed(key, () => orig.call(m, x));
  }
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function profile(name) {
  const c = CASES[name];
  if (!c) throw new Error(`unknown case ${name}; cases: ${Object.keys(CASES).join(', ')}`);
  lib.manualSeed(0);
  const model = c.make().train();
  wrapLeaves(model);
  const [n] = c.input;
  const x = lib.randn(c.input);
  const classes = model.fc.outFeatures;
  const target = Array.from({ length: n }, (_, i) => (i * 7) % classes);
  const opt = new lib.optim.SGD(model.parameters(), { lr: 0.01, momentum: 0.9, weightDecay: 1e-4 });
  const perStep = [];
  const warm = 3;
  for (let s = 0; s < warm + steps; s++) {
    acc = new Map();
    const c0 = cpuMs(), w0 = performance.now();
    const body = () => {
      timed('phase zeroGrad', () => opt.zeroGrad(false)); // as the library's trainer
      const logits = timed('phase forward', () => model.forward(x));
      const loss = timed('phase loss', () => lib.nn.functional.crossEntropy(logits, target));
      timed('phase backward', () => loss.backward());
      timed('phase optimizer', () => opt.step());
      return loss.item();
    };
    // As the trainer: the step reuses the last step's (shared) buffers, unless --no-step-arena.
    if (stepArena) lib.withTrainingStep({ model, optimizer: opt }, body);
    else body();
    add('step', cpuMs() - c0, performance.now() - w0);
    if (s >= warm) perStep.push(acc);
  }
  const keys = [...new Set(perStep.flatMap((m) => [...m.keys()]))];
  const med = (k, i) => median(perStep.map((m) => m.get(k)?.[i] ?? 0));
  const rows = keys.map((k) => ({ k, cpu: med(k, 0), wall: med(k, 1) }));
  // Derived rows: time inside a phase that no wrapped op accounts for.
  const sumOf = (prefix, i) => perStep.map((m) => [...m].filter(([k]) => k.startsWith(prefix)).reduce((s, [, v]) => s + v[i], 0));
  const rest = (phase, prefix, i) => median(perStep.map((m, j) => (m.get(phase)?.[i] ?? 0) - sumOf(prefix, i)[j]));
  rows.push({ k: 'fwd block rest (training BN → +residual → ReLU, flatten)', cpu: rest('phase forward', 'fwd ', 0), wall: rest('phase forward', 'fwd ', 1) });
  rows.push({ k: 'bwd autograd (graph walk, grad accumulation)', cpu: rest('phase backward', 'bwd ', 0), wall: rest('phase backward', 'bwd ', 1) });
  const stepCpu = med('step', 0);
  const order = (r) => (r.k === 'step' ? 0 : r.k.startsWith('phase') ? 1 : 2);
  rows.sort((a, b) => order(a) - order(b) || b.cpu - a.cpu);
  console.log(`\n## ${name} ${c.input.join('×')} · ${threads} thread(s)${stepArena ? '' : ' · no step arena'} · median of ${steps} steps (after ${warm} warm-up) · SGD momentum 0.9, wd 1e-4`);
  console.log('| what | CPU ms | % of step CPU | wall ms |');
  console.log('|---|---:|---:|---:|');
  for (const r of rows) console.log(`| ${r.k} | ${r.cpu.toFixed(2)} | ${((100 * r.cpu) / stepCpu).toFixed(1)} | ${r.wall.toFixed(2)} |`);
}

const names = args.length ? args : ['resnet20-fmnist', 'resnet18'];
console.log(`node ${process.version} · dist ${dist} · load average ${(await import('node:os')).loadavg().map((v) => v.toFixed(2)).join(' ')}`);
for (const nm of names) profile(nm);
lib.setNumThreads(1);
