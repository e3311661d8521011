// An epoch's end as the trainer meets it: Fashion-MNIST ResNet-20 steps in withTrainingStep at batch 128, one of 96
// (60000 = 468·128 + 96), an eval forward of 128, then steps of 128 again. Prints the process CPU ms (all threads),
// new arena bytes (arenaNewBytes) and minor page faults of each step after the warm ones, and the steady steps'.
//   node bench/epoch-end.mjs [DIST] [--threads 2] [--resident on|off]
import { resolve } from 'node:path';
import { DIST, cpuMs, scriptArgs } from './lib.mjs';

const { args, flag } = scriptArgs();
const threads = flag('--threads', '2');
const resident = flag('--resident', '');
const dist = resolve(args[0] ?? DIST);
process.env.RESNET_TS_THREADS = threads;
const lib = await import(resolve(dist, 'index.js'));
const arena = await import(resolve(dist, 'fusion/arena.js'));
lib.setNumThreads(Number(threads));
if (resident) lib.setConfig({ residentSteps: resident === 'on' });
lib.manualSeed(0);
const m = lib.models.resnet20({ inChannels: 1 }).train();
const opt = new lib.optim.SGD(m.parameters(), { lr: 0.01, momentum: 0.9, weightDecay: 5e-4 });
const batch = (n) => [lib.randn([n, 1, 28, 28]), Array.from({ length: n }, (_, i) => (i * 7) % 10)];
const b128 = batch(128), b96 = batch(96);
const rows = [];
const step = ([x, t], what) => {
  const made = arena.arenaNewBytes(), faults = process.resourceUsage().minorPageFault, c = cpuMs();
  lib.withTrainingStep({ model: m, optimizer: opt }, () => {
    opt.zeroGrad(false);
    lib.nn.functional.crossEntropy(m.forward(x), t).backward();
    opt.step();
  });
  rows.push([what, cpuMs() - c, (arena.arenaNewBytes() - made) / 2 ** 20, process.resourceUsage().minorPageFault - faults]);
};
for (let i = 0; i < 3; i++) step(b128, 'warm');
rows.length = 0;
for (let i = 0; i < 3; i++) step(b128, '128');
step(b96, '96 (last)');
m.eval();
lib.noGrad(() => m.forward(b128[0]));
m.train();
step(b128, '128 (first)');
for (let i = 0; i < 3; i++) step(b128, '128');
console.log(`${dist} threads ${threads}${resident ? ` resident ${resident}` : ''}`);
for (const [what, ms, mb, f] of rows) console.log(`${what.padEnd(12)} ${ms.toFixed(0).padStart(5)} CPU ms  ${mb.toFixed(1).padStart(6)} MB new  ${String(f).padStart(6)} faults`);
lib.setNumThreads(1);
