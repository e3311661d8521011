// The plain PyTorch-style training loop (opt.zeroGrad(); forward; loss.backward(); opt.step()) against the same loop
// with zeroGrad(false) and inside withTrainingStep, stepped alternately in one process (each round in the other
// order), for one or two builds:
//   node bench/plain-loop.mjs DIST [DIST2] [r18|cifar] [threads] [steps] [modes]
// modes: a comma list of none (zeroGrad(): grads set to null), zero (zeroGrad(false)), step (withTrainingStep with
// zeroGrad(false), as the trainer runs it); default none,zero,step. Prints per build and mode the step's median and
// minimum wall ms, median CPU ms, the per-phase CPU medians (zeroGrad, forward with loss, backward, optimizer) and
// whether every build's and mode's losses are bitwise identical to the first's, then the process's peak RSS (sampled
// after each step; meaningful for one build and mode per process).
import { resolve } from 'node:path';

const args = process.argv.slice(2);
const dists = [];
while (args.length && (args[0].includes('/') || args[0] === 'dist')) dists.push(args.shift());
const [kase = 'r18', threads = '2', rounds = '8', modeList = 'none,zero,step'] = args;
if (dists.length === 0) {
  console.error('usage: node bench/plain-loop.mjs DIST [DIST2] [r18|cifar] [threads] [steps] [modes]');
  process.exit(2);
}
process.env.RESNET_TS_THREADS = threads;
const libs = [];
for (const d of dists) libs.push(await import(resolve(d, 'index.js')));
for (const lib of libs) lib.setNumThreads(Number(threads));
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const CASES = {
  r18: [(lib) => lib.models.resnet18({ numClasses: 10 }), [8, 3, 32, 32]],
  cifar: [(lib) => lib.models.resnet20(), [32, 3, 32, 32]],
};
const [make, shape] = CASES[kase];
const modes = modeList.split(',');
const setups = [];
libs.forEach((lib, li) => {
  for (const mode of modes) {
    lib.manualSeed(0);
    const m = make(lib).train();
    const x = lib.randn(shape);
    const t = Array.from({ length: shape[0] }, (_, i) => (i * 7) % 10);
    const opt = new lib.optim.SGD(m.parameters(), { lr: 0.01, momentum: 0.9, weightDecay: 5e-4 });
    setups.push({ name: `${dists[li]} ${mode}`, lib, mode, m, x, t, opt, z: [], f: [], b: [], o: [], w: [], wall: [], losses: [] });
  }
});
function step(s) {
  const body = () => {
    let c = cpu();
    s.opt.zeroGrad(s.mode === 'none');
    let c1 = cpu();
    s.z.push(c1 - c);
    c = c1;
    const loss = s.lib.nn.functional.crossEntropy(s.m.forward(s.x), s.t);
    c1 = cpu();
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
  s.losses.push(s.mode === 'step' ? s.lib.withTrainingStep({ model: s.m, optimizer: s.opt }, body) : body());
  s.w.push(cpu() - c0);
  s.wall.push(performance.now() - w0);
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
}
let peakRss = 0;
for (let w = 0; w < 2; w++) for (const s of setups) step(s);
for (const s of setups) [s.z, s.f, s.b, s.o, s.w, s.wall] = [[], [], [], [], [], []];
for (let r = 0; r < Number(rounds); r++) for (const s of r % 2 ? [...setups].reverse() : setups) step(s);
const med = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
for (const s of setups) {
  console.log(
    `${s.name} ${kase} threads ${threads}: wall median ${med(s.wall).toFixed(1)} min ${Math.min(...s.wall).toFixed(1)} ms, CPU median ${med(s.w).toFixed(1)} ms; ` +
      `zeroGrad ${med(s.z).toFixed(1)} forward ${med(s.f).toFixed(1)} backward ${med(s.b).toFixed(1)} optimizer ${med(s.o).toFixed(1)} CPU ms`,
  );
}
const ref = setups[0].losses;
for (const s of setups.slice(1)) {
  const same = s.losses.length === ref.length && s.losses.every((l, k) => Object.is(l, ref[k]));
  console.log(`${s.name}: losses bitwise identical to ${setups[0].name} over ${ref.length} steps: ${same ? 'yes' : 'NO'}`);
}
console.log(`peak RSS ${(peakRss / 2 ** 20).toFixed(0)} MB over ${Number(rounds) + 2} rounds`);
console.log(`losses ${setups[0].name}: ${ref.map((l) => l.toFixed(5)).join(', ')}`);
