// Two builds' training steps, stepped alternately in one process, the first in turn alternating per round (so a
// loaded machine disturbs both alike):
//   node bench/ab-train.mjs OLD_DIST NEW_DIST [r18|cifar|fmnist|deg56] [threads] [steps]
// Prints per build the median and minimum wall ms of the whole step and its median process CPU ms, then the
// per-phase CPU medians and the losses, and whether the two builds' losses are bitwise identical.
// e.g. an older commit checked out and built elsewhere against this checkout's dist/. Prints the median process CPU
// ms (all threads) of forward (with cross-entropy), backward and SGD step over the interleaved steps, and each
// build's losses (a build whose losses change with the thread count breaks the determinism contract). The step
// column is the sum of the three; "whole" also counts what lies around them (withTrainingStep's end, where a build
// has it). AB_RESIDENT=0,1 sets config.residentSteps off in the first build and on in the second (default: each
// build's own setting).
import { loadBuilds } from './lib.mjs';

const [, , oldDist, newDist, kase = 'r18', threads = '1', rounds = '7'] = process.argv;
if (!oldDist || !newDist) {
  console.error('usage: node bench/ab-train.mjs OLD_DIST NEW_DIST [r18|cifar|fmnist|deg56] [threads] [steps]');
  process.exit(2);
}
process.env.RESNET_TS_THREADS = threads;
const libs = (await loadBuilds([oldDist, newDist], { lib: 'index.js' }, { threads: Number(threads) })).map((b) => b.lib);
const residentFlags = process.env.AB_RESIDENT?.split(',');
if (residentFlags) libs.forEach((lib, i) => lib.setConfig({ residentSteps: residentFlags[i] === '1' }));
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const CASES = {
  r18: [(lib) => lib.models.resnet18({ numClasses: 10 }), [8, 3, 32, 32]],
  cifar: [(lib) => lib.models.resnet20(), [32, 3, 32, 32]],
  fmnist: [(lib) => lib.models.resnet20({ inChannels: 1 }), [128, 1, 28, 28]],
  // The degradation experiment's default ResNet-56 (widths 4/8/16, Fashion-MNIST pooled to 14×14).
  deg56: [(lib) => lib.models.resnet56({ inChannels: 1, widths: [4, 8, 16] }), [128, 1, 14, 14]],
};
const [make, shape] = CASES[kase];
const setups = libs.map((lib) => {
  lib.manualSeed(0);
  const m = make(lib).train();
  const x = lib.randn(shape);
  const t = Array.from({ length: shape[0] }, (_, i) => (i * 7) % 10);
  const opt = new lib.optim.SGD(m.parameters(), { lr: 0.01, momentum: 0.9, weightDecay: 5e-4 });
  return { lib, m, x, t, opt, f: [], b: [], o: [], w: [], wall: [], losses: [] };
});
// A build with withTrainingStep runs each step in it (as its trainer does), reusing the last step's buffers.
function step(s) {
  const body = () => {
    let c = cpu();
    s.opt.zeroGrad(false);
    const loss = s.lib.nn.functional.crossEntropy(s.m.forward(s.x), s.t);
    let c1 = cpu();
    s.f.push(c1 - c);
    c = c1;
    loss.backward();
    c1 = cpu();
    s.b.push(c1 - c);
    c = c1;
    s.opt.step();
    s.o.push(cpu() - c);
    return loss.item();
  };
  const c0 = cpu(), w0 = performance.now();
  s.losses.push(s.lib.withTrainingStep ? s.lib.withTrainingStep({ model: s.m, optimizer: s.opt }, body) : body());
  s.w.push(cpu() - c0);
  s.wall.push(performance.now() - w0);
}
for (let w = 0; w < 2; w++) for (const s of setups) step(s);
for (const s of setups) [s.f, s.b, s.o, s.w, s.wall, s.losses] = [[], [], [], [], [], []];
// Rounds alternate which build steps first, so neither always runs right after the other's step.
for (let r = 0; r < Number(rounds); r++) for (const s of r % 2 ? [...setups].reverse() : setups) step(s);
const med = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
setups.forEach((s, i) => {
  const st = s.f.map((f, k) => f + s.b[k] + s.o[k]);
  console.log(`${i ? 'new' : 'old'} ${kase} threads ${threads}: step wall median ${med(s.wall).toFixed(1)} min ${Math.min(...s.wall).toFixed(1)} ms, CPU median ${med(s.w).toFixed(1)} min ${Math.min(...s.w).toFixed(1)} ms`);
  console.log(`${i ? 'new' : 'old'} ${kase} threads ${threads}: forward ${med(s.f).toFixed(1)} backward ${med(s.b).toFixed(1)} optimizer ${med(s.o).toFixed(1)} step ${med(st).toFixed(1)} (whole ${med(s.w).toFixed(1)}) CPU ms; losses ${s.losses.map((l) => l.toFixed(4)).join(', ')}`);
});
{
  // Both builds' losses bit for bit (every step; the printed ones are rounded).
  const [a, b] = setups.map((s) => s.losses);
  const same = a.length === b.length && a.every((l, k) => Object.is(l, b[k]));
  console.log(`losses bitwise identical over ${a.length} steps: ${same ? 'yes' : 'NO'}`);
}
for (const lib of libs) lib.setNumThreads(1);
