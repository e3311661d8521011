// Where a one-thread training step's time goes, kernel by kernel:
//   node bench/profile-kernels.mjs [cifar|r18|fmnist|deg56] [--steps 30] [--dist DIR] [--top 8]
// Runs training steps in withTrainingStep (as the trainers do) on one thread, 4 to warm up, then the V8 CPU profiler
// (node:inspector, 200 µs sampling) over --steps steps, and groups the samples by the op on the stack (conv forward,
// conv input gradient, conv weight gradient, batch norm forward / backward, the rest of forward and backward, the
// optimizer) and, within an op, by what ran: a wasm function by the JS function that called it (the weight-gradient
// module's functions by their names), JS by its own name, GC. Prints each op's ms per step and share of the samples,
// and its --top entries. The sampler counts wall time, so on a loaded machine the ms are larger than the process CPU
// time printed first; the shares are what to read. PROFILE_OUT=FILE also writes the profile (.cpuprofile JSON).
import { Session } from 'node:inspector/promises';
import { join, resolve } from 'node:path';
import { DIST, scriptArgs, seededStep } from './lib.mjs';

const { args, flag } = scriptArgs();
const steps = Number(flag('--steps', '30'));
const dist = resolve(flag('--dist', DIST));
const top = Number(flag('--top', '8'));
const kase = args[0] ?? 'cifar';
process.env.RESNET_TS_THREADS = '1';

const lib = await import(join(dist, 'index.js'));
lib.setNumThreads?.(1);
const CASES = {
  r18: [() => lib.models.resnet18({ numClasses: 10 }), [8, 3, 32, 32]],
  cifar: [() => lib.models.resnet20(), [32, 3, 32, 32]],
  fmnist: [() => lib.models.resnet20({ inChannels: 1 }), [128, 1, 28, 28]],
  deg56: [() => lib.models.resnet56({ inChannels: 1, widths: [4, 8, 16] }), [128, 1, 14, 14]],
};
if (!CASES[kase]) {
  console.error(`unknown case ${kase}; one of ${Object.keys(CASES).join(', ')}`);
  process.exit(2);
}
const [make, shape] = CASES[kase];
const { m, opt, body } = seededStep(lib, make, shape);
const step = () => (lib.withTrainingStep ? lib.withTrainingStep({ model: m, optimizer: opt }, body) : body());
for (let i = 0; i < 4; i++) step();

const session = new Session();
session.connect();
await session.post('Profiler.enable');
await session.post('Profiler.setSamplingInterval', { interval: 200 });
await session.post('Profiler.start');
const c0 = process.cpuUsage();
for (let i = 0; i < steps; i++) step();
const cpu = process.cpuUsage(c0);
const { profile } = await session.post('Profiler.stop');
if (process.env.PROFILE_OUT) (await import('node:fs')).writeFileSync(process.env.PROFILE_OUT, JSON.stringify(profile));
session.disconnect();

// The weight-gradient module's functions in the order wasm/backward.ts's backwardModule lists them.
const BACKWARD = ['dw1', 'dw2', 'pad', 'dwr1', 'dwr2', 'wx', 'wdy', 'dypack', 'wcomb', 's2rows1', 's2rows2', 's2rows3', 'dwu1', 'dwu2', 'zero'];
const OPS = [
  ['conv2dBackwardWeight', 'conv weight gradient'], ['conv2dBackwardInput', 'conv input gradient'], ['conv2dForward', 'conv forward'],
  ['batchNormBackward', 'batch norm backward'], ['batchNormTrainForward', 'batch norm forward'],
];
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const self = new Map();
profile.samples.forEach((s, i) => self.set(s, (self.get(s) ?? 0) + (profile.timeDeltas[i] ?? 0)));
const groups = new Map();
let total = 0;
for (const [id, us] of self) {
  total += us;
  const names = [];
  for (let p = id; p !== undefined; p = parent.get(p)) names.push(byId.get(p).callFrame.functionName);
  let op = null, at = Infinity;
  for (const [fn, label] of OPS) {
    const i = names.indexOf(fn);
    if (i >= 0 && i < at) [op, at] = [label, i];
  }
  if (op === null) {
    // The innermost of autograd's backward, the optimizer's step and a forward.
    const rest = [['backward', 'rest of backward (autograd, small ops)'], ['step', 'optimizer'], ['forward', 'rest of forward']]
      .map(([fn, label]) => [names.indexOf(fn), label]).filter(([i]) => i >= 0).sort((a, b) => a[0] - b[0]);
    op = rest.length > 0 ? rest[0][1] : 'other';
  }
  const frame = byId.get(id).callFrame;
  let what;
  const wasmFn = /^wasm-function\[(\d+)\]$/.exec(frame.functionName);
  if (wasmFn || frame.url.startsWith('wasm')) {
    const caller = names.find((n) => n && !n.startsWith('wasm-function') && !n.startsWith('js-to-wasm')) ?? '?';
    const idx = wasmFn ? Number(wasmFn[1]) : -1;
    what = caller === 'gradUnit' || caller === 'simdUnit' ? `wasm ${BACKWARD[idx] ?? idx}` : `wasm ← ${caller}`;
  } else if (frame.functionName === '(garbage collector)') what = 'GC';
  else what = `JS ${frame.functionName || '(anonymous)'} (${frame.url.split('/').slice(-2).join('/')})`;
  const g = groups.get(op) ?? new Map();
  groups.set(op, g);
  g.set(what, (g.get(what) ?? 0) + us);
}
const ms = (us) => (us / 1000 / steps).toFixed(2);
console.log(`${kase}, 1 thread, ${steps} steps (${dist}): process CPU ${((cpu.user + cpu.system) / 1000 / steps).toFixed(1)} ms per step, samples ${ms(total)} ms per step`);
const sum = (g) => [...g.values()].reduce((a, b) => a + b, 0);
for (const [op, g] of [...groups].sort((a, b) => sum(b[1]) - sum(a[1]))) {
  console.log(`${op}: ${ms(sum(g))} ms (${((100 * sum(g)) / total).toFixed(1)} %)`);
  for (const [what, us] of [...g].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`    ${what}: ${ms(us)} (${((100 * us) / total).toFixed(1)} %)`);
}
