// What the worker pool's staging copies cost in a training step, and whether memory stays flat:
//   node bench/staging-train.mjs [DIST] [r18|cifar|fmnist] [threads] [steps] [arena|plain]
// Runs `steps` SGD steps of the case (after 2 warm-up steps) and prints, per step (medians): the bytes copied into
// shared staging memory and back, the milliseconds those copies took, the pool calls, the step's process CPU ms;
// then process.memoryUsage().arrayBuffers and RSS at the first and the last step. `arena` runs each step inside
// withTrainingStep (where the build has it), `plain` without. Also counts the SharedArrayBuffers each step makes.
import { resolve } from 'node:path';
import { seededStep } from './lib.mjs';

// Counts the SharedArrayBuffers made (each is memory the garbage collector does not weigh when it is dropped).
const SAB = globalThis.SharedArrayBuffer;
const sab = { made: 0, bytes: 0 };
globalThis.SharedArrayBuffer = class extends SAB {
  constructor(n, o) {
    super(n, o);
    sab.made++;
    sab.bytes += n;
  }
};
const [, , dist = 'dist', kase = 'fmnist', threads = '2', steps = '5', mode = 'arena'] = process.argv;
process.env.RESNET_TS_THREADS = threads;
const lib = await import(resolve(dist, 'index.js'));
lib.setNumThreads(Number(threads));
const CASES = {
  r18: [() => lib.models.resnet18({ numClasses: 10 }), [8, 3, 32, 32]],
  cifar: [() => lib.models.resnet20(), [32, 3, 32, 32]],
  fmnist: [() => lib.models.resnet20({ inChannels: 1 }), [128, 1, 28, 28]],
};
const [make, shape] = CASES[kase];
const { m, opt, body } = seededStep(lib, make, shape);
const scoped = mode === 'arena' && typeof lib.withTrainingStep === 'function';
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const step = () => (scoped ? lib.withTrainingStep({ model: m, optimizer: opt }, body) : body());
const rows = [];
const mem = [];
const losses = [];
for (let s = 0; s < Number(steps) + 2; s++) {
  lib.resetStagingStats?.();
  const s0 = { ...sab };
  const c0 = cpu();
  losses.push(step());
  const c = cpu() - c0;
  // (a build without stagingStats counts nothing: NaN)
  const st = lib.stagingStats?.() ?? { calls: NaN, stagedCalls: NaN, bytesIn: NaN, bytesOut: NaN, ms: NaN };
  if (s >= 2) rows.push({ ...st, cpu: c, sabMade: sab.made - s0.made, sabBytes: sab.bytes - s0.bytes });
  mem.push(process.memoryUsage());
}
const med = (k) => [...rows.map((r) => r[k])].sort((a, b) => a - b)[Math.floor(rows.length / 2)];
const MB = (b) => (b / 2 ** 20).toFixed(1);
console.log(`${dist} ${kase} threads ${threads} ${scoped ? 'withTrainingStep' : 'plain'}: staging in ${MB(med('bytesIn'))} MB, out ${MB(med('bytesOut'))} MB, copies ${med('ms').toFixed(1)} ms, pool calls ${med('calls')} (${med('stagedCalls')} staged); step ${med('cpu').toFixed(0)} CPU ms`);
console.log(`  new SharedArrayBuffers per step: ${med('sabMade')} (${MB(med('sabBytes'))} MB)`);
console.log(`  arrayBuffers ${MB(mem[2].arrayBuffers)} → ${MB(mem.at(-1).arrayBuffers)} MB, rss ${MB(mem[2].rss)} → ${MB(mem.at(-1).rss)} MB; losses ${losses.map((l) => l.toFixed(4)).join(', ')}`);
lib.setNumThreads(1);
