// Training steps before and after other work in the same process:
//   node bench/after-eval.mjs [DIST] [--threads 2] [--steps 5] [--warm 2] [--evals 4] [--eval r18,r50] [--cases r18,cifar,fmnist]
//                             [--resident on|off] [--gc] [--no-fresh] [--plain] [--stats] [--profile FILE]
// Times each case's training steps (withTrainingStep, as the trainer runs them) in a fresh process, then runs
// `--evals` eval forwards of each model in `--eval` at 1×3×224×224 under noGrad, then times each case again with a
// new model. --gc (with node --expose-gc) collects garbage between the phases; --no-fresh skips the first phase.
// --plain also steps a second model of each case outside withTrainingStep, alternating with the timed one (as the
// train rows of bench/train.mjs do); --resident sets config.residentSteps; --warm N untimed steps per new model.
// Prints per case the medians per timed step of: wall ms (and the minimum), process CPU ms (all threads), the
// forward / backward / optimizer CPU ms, minor page faults, collections and their ms, bytes staged by the pool, pool
// calls, the share of their units that the worker threads ran, and the bytes of new arena buffers (arenaNewBytes);
// then the losses. --stats adds RSS, heap, ArrayBuffer bytes, the resident memory's and the arena's sizes after each
// phase; --profile FILE writes a CPU profile (main thread) of the timed steps after the evals.
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { DIST, scriptArgs, seededStep } from './lib.mjs';

const { args, flag, has } = scriptArgs();
const threads = Number(flag('--threads', '2'));
const steps = Number(flag('--steps', '5'));
// untimed steps of each new model first
const warm = Number(flag('--warm', '2'));
const evals = Number(flag('--evals', '4'));
const evalModels = flag('--eval', 'r18,r50').split(',').filter(Boolean);
const cases = flag('--cases', 'r18,cifar,fmnist').split(',');
const resident = flag('--resident', '');
const gc = has('--gc');
const fresh = !has('--no-fresh');
const showStats = has('--stats');
// --plain: each case also steps a second model outside withTrainingStep, alternating with the timed one (as
// bench/train.mjs's rows do); its steps are not timed.
const plain = has('--plain');
// --profile FILE: a CPU profile (main thread) of the timed steps after the evals, written to FILE (.cpuprofile).
const profileFile = flag('--profile', '');
const dist = resolve(args[0] ?? DIST);
process.env.RESNET_TS_THREADS = String(threads);
const lib = await import(resolve(dist, 'index.js'));
lib.setNumThreads(threads);
// Units of pool calls, and of those the workers ran (the rest ran on this thread).
const par = await import(resolve(dist, 'kernels/parallel.js'));
const pix = await import(resolve(dist, 'parallel/index.js'));
let poolUnits = 0, poolCalls = 0;
const inner = par.getParallelBackend();
if (inner) {
  par.setParallelBackend({
    get threads() {
      return inner.threads;
    },
    run(task, fn) {
      poolUnits += task.units;
      poolCalls++;
      inner.run(task, fn);
    },
  });
}
const arena = await import(resolve(dist, 'fusion/arena.js'));
const optimMod = await import(resolve(dist, 'kernels/wasm/optim.js'));
const workerUnits = () => pix.currentPoolForTest()?.workerUnitsForTest() ?? 0;
if (resident) lib.setConfig({ residentSteps: resident === 'on' });

const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
let gcCount = 0, gcMs = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    gcCount++;
    gcMs += e.duration;
  }
}).observe({ entryTypes: ['gc'] });
const faults = () => process.resourceUsage().minorPageFault;
const med = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
const CASES = {
  r18: [() => lib.models.resnet18({ numClasses: 10 }), [8, 3, 32, 32]],
  cifar: [() => lib.models.resnet20(), [32, 3, 32, 32]],
  fmnist: [() => lib.models.resnet20({ inChannels: 1 }), [128, 1, 28, 28]],
};
const EVALS = { r18: () => lib.models.resnet18(), r50: () => lib.models.resnet50() };

function stats(label) {
  if (!showStats) return;
  const m = process.memoryUsage();
  const r = optimMod.residentMemory?.();
  let extra = r ? ` resident ${(r.mem.buffer.byteLength / 2 ** 20).toFixed(0)} MB` : '';
  extra += ` arena ${(arena.arenaBytes() / 2 ** 20).toFixed(1)} MB`;
  console.log(`  [${label}] rss ${(m.rss / 2 ** 20).toFixed(0)} MB heap ${(m.heapUsed / 2 ** 20).toFixed(0)}/${(m.heapTotal / 2 ** 20).toFixed(0)} MB external ${(m.external / 2 ** 20).toFixed(0)} MB sab ${((m.arrayBuffers ?? 0) / 2 ** 20).toFixed(0)} MB${extra}`);
}

function setup(name) {
  const [make, shape] = CASES[name];
  return seededStep(lib, make, shape);
}

function plainStep({ m, x, t, opt }) {
  opt.zeroGrad(false);
  const l = lib.nn.functional.crossEntropy(m.forward(x), t);
  l.backward();
  opt.step();
}

function train(name) {
  const { m, x, t, opt } = setup(name);
  const other = plain ? setup(name) : null;
  const w = [], c = [], f = [], b = [], o = [], losses = [], pf = [], gcs = [], gct = [], staged = [], share = [], calls = [], nb = [];
  for (let s = 0; s < steps + warm; s++) {
    if (other) plainStep(other);
    const n0 = arena.arenaNewBytes?.() ?? 0;
    let f1, b1, o1;
    const c0 = cpu(), w0 = performance.now(), p0 = faults(), g0 = gcCount, gt0 = gcMs;
    lib.resetStagingStats();
    const u0 = poolUnits, wu0 = workerUnits(), pc0 = poolCalls;
    const loss = lib.withTrainingStep({ model: m, optimizer: opt }, () => {
      let k = cpu();
      opt.zeroGrad(false);
      const l = lib.nn.functional.crossEntropy(m.forward(x), t);
      f1 = cpu() - k;
      k = cpu();
      l.backward();
      b1 = cpu() - k;
      k = cpu();
      opt.step();
      o1 = cpu() - k;
      return l.item();
    });
    if (s < warm) continue; // warm-up
    w.push(performance.now() - w0);
    c.push(cpu() - c0);
    pf.push(faults() - p0);
    gcs.push(gcCount - g0);
    gct.push(gcMs - gt0);
    const st = lib.stagingStats();
    staged.push(st.bytesIn + st.bytesOut);
    share.push((100 * (workerUnits() - wu0)) / Math.max(1, poolUnits - u0));
    calls.push(poolCalls - pc0);
    nb.push((arena.arenaNewBytes?.() ?? 0) - n0);
    f.push(f1);
    b.push(b1);
    o.push(o1);
    losses.push(loss);
  }
  return `${name.padEnd(6)} wall ${med(w).toFixed(1).padStart(6)} ms (min ${Math.min(...w).toFixed(1)}) CPU ${med(c).toFixed(1).padStart(6)} (fwd ${med(f).toFixed(1)} bwd ${med(b).toFixed(1)} opt ${med(o).toFixed(1)}) faults ${med(pf)} gc ${med(gcs)}/${med(gct).toFixed(1)} ms staged ${(med(staged) / 2 ** 20).toFixed(1)} MB pool calls ${med(calls)} worker units ${med(share).toFixed(0)}% new ${(med(nb) / 2 ** 20).toFixed(1)} MB; losses ${losses.map((l) => l.toFixed(4)).join(' ')}`;
}

function evalForwards() {
  const c0 = cpu(), w0 = performance.now();
  for (const name of evalModels) {
    lib.manualSeed(1);
    const m = EVALS[name]().eval();
    const x = lib.randn([1, 3, 224, 224]);
    for (let i = 0; i < evals; i++) lib.noGrad(() => m.forward(x));
  }
  return `evals ${evalModels.join('+')} ×${evals}: ${(performance.now() - w0).toFixed(0)} ms wall, ${(cpu() - c0).toFixed(0)} CPU`;
}

const doGc = () => {
  if (gc && globalThis.gc) globalThis.gc();
};
console.log(`${dist} threads ${threads} residentSteps ${lib.config.residentSteps}${gc ? ' gc' : ''}`);
if (fresh) {
  console.log('fresh:');
  for (const k of cases) console.log('  ' + train(k));
  stats('after fresh');
}
doGc();
console.log(evalForwards());
stats('after evals');
doGc();
console.log('after evals:');
// (the profiler: main thread only, started here so that it covers the timed steps after the evals alone)
let post = null;
if (profileFile) {
  const { Session } = await import('node:inspector');
  const session = new Session();
  session.connect();
  post = (method, params = {}) => new Promise((res, rej) => session.post(method, params, (e, r) => (e ? rej(e) : res(r))));
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval: 200 });
  await post('Profiler.start');
}
for (const k of cases) console.log('  ' + train(k));
if (post) {
  const { profile } = await post('Profiler.stop');
  writeFileSync(profileFile, JSON.stringify(profile));
}
stats('end');
lib.setNumThreads(1);
