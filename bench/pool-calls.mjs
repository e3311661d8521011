// What a training step's parallel calls cost on the worker pool: `node bench/pool-calls.mjs [cifar|r18|fmnist]
// [--threads 2] [--steps 6] [--dist DIR] [--micro N] [--timeline]`.
//
// Runs training steps in withTrainingStep (as the trainers do) with the tracers of src/kernels/parallel.ts
// (every parallelFor) and src/parallel/pool.ts (every pool call, the workers' side included) installed for the
// last `--steps` steps, and prints per step (medians over the traced steps):
//   - the parallelFor calls by kernel: pooled, inline below config.minParallelCost ("cheap"), inline otherwise
//     ("one unit" or nested), and their wall time;
//   - for the pooled calls, where the time goes: staging and posting the messages, ringing the doorbell, how late
//     the worker joins (doorbell rung → message in hand → first unit), how long the main thread waits for the
//     worker after its own last unit ("main idle"), how long after the worker's last unit it wakes ("wake"), and
//     how long the worker sat idle in the call before the main thread finished ("worker idle");
//   - the main thread's time outside pool calls (the worker idles then) and the worker's busy time.
// --timeline prints every pooled call of the last step. --micro N times N empty 2-unit calls (the diagnostic task,
// the main thread's unit waits until the worker has started its own) with the same breakdown.
// Tracing allocates a small SharedArrayBuffer per call and reads the clock around every unit: a few µs per call.
import { join, resolve } from 'node:path';
import { cpuMs, DIST, scriptArgs, seededStep, wallCpuRuns } from './lib.mjs';

const { args, flag, has: bool } = scriptArgs();
const threads = Number(flag('--threads', '2'));
const steps = Number(flag('--steps', '6'));
const dist = resolve(flag('--dist', DIST));
const micro = Number(flag('--micro', '0'));
const timeline = bool('--timeline');
const kase = args[0] ?? 'cifar';
process.env.RESNET_TS_THREADS = String(threads);

const lib = await import(join(dist, 'index.js'));
const par = await import(join(dist, 'kernels/parallel.js'));
const pool = await import(join(dist, 'parallel/pool.js'));
const { TRACE_SLOTS } = await import(join(dist, 'parallel/protocol.js'));
await import(join(dist, 'parallel/diagnostics.js'));
lib.setNumThreads(threads);
const minCost = lib.config?.minParallelCost ?? (await import(join(dist, 'config.js'))).config.minParallelCost;

const med = (v) => (v.length ? [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)] : NaN);
const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : '-');
const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : '-');
const W = { woke: 0, received: 1, first: 2, last: 3, units: 4, unitMs: 5 };
const wk = (rec, slot) => rec.workers[slot]; // worker 0 (the 2-thread case)

/** The per-call numbers (µs) of one traced pool call. */
function phases(r) {
  const us = (a, b) => (b - a) * 1000;
  const workerTook = Number.isFinite(wk(r, W.first));
  return {
    total: us(r.start, r.done),
    stage: us(r.start, r.staged),
    post: us(r.staged, r.posted),
    ring: us(r.posted, r.rung),
    wake: us(r.rung, wk(r, W.woke)), // doorbell rung → the worker's wait returned
    recv: us(wk(r, W.woke), wk(r, W.received)), // → message in hand
    join: us(r.start, wk(r, W.first)), // call start → the worker's first unit
    mainIdle: us(r.mainDone, r.done), // the main thread's own units done → every unit done
    doneWake: workerTook ? us(wk(r, W.last), r.done) : NaN, // the worker's last unit → main awake
    workerIdle: workerTook ? Math.max(0, us(wk(r, W.last), r.mainDone)) : NaN, // worker done before the main thread
    mainUnits: r.mainUnits,
    workerUnits: Number.isFinite(wk(r, W.units)) ? wk(r, W.units) : 0,
    workerBusy: Number.isFinite(wk(r, W.unitMs)) ? wk(r, W.unitMs) * 1000 : 0,
    waits: r.waits,
    workerTook,
  };
}

function summary(label, ph) {
  const keys = ['total', 'stage', 'post', 'ring', 'wake', 'recv', 'join', 'mainIdle', 'doneWake', 'workerIdle'];
  const fin = (k) => ph.map((p) => p[k]).filter(Number.isFinite);
  console.log(`${label}: ${ph.length} calls, worker took part in ${ph.filter((p) => p.workerTook).length}; µs median (mean) per call:`);
  console.log('  ' + keys.map((k) => `${k} ${f1(med(fin(k)))} (${f1(fin(k).reduce((a, b) => a + b, 0) / Math.max(1, fin(k).length))})`).join(', '));
}

if (micro > 0) {
  const out = new Float32Array(new SharedArrayBuffer(8)), gate = new Float32Array(new SharedArrayBuffer(4));
  const g = new Int32Array(gate.buffer);
  const call = (wait) => {
    Atomics.store(g, 0, 0);
    par.parallelFor({ kernel: 'parallel.diagnostic', bufs: { out, gate }, writes: ['out'], params: { mode: 'mark', ms: 0, waitForWorker: wait }, units: 2, cost: 1e12 });
  };
  for (const wait of [true, false]) {
    for (let i = 0; i < 200; i++) call(wait);
    const recs = [];
    let c0 = cpuMs(), w0 = performance.now();
    for (let i = 0; i < micro; i++) call(wait);
    const plainWall = ((performance.now() - w0) * 1000) / micro, plainCpu = ((cpuMs() - c0) * 1000) / micro;
    pool.setPoolTracer((r) => recs.push(r));
    for (let i = 0; i < micro; i++) call(wait);
    pool.setPoolTracer(null);
    console.log(`micro, 2-unit diagnostic call, ${wait ? 'main unit waits for the worker' : 'no wait'}: untraced wall ${f1(plainWall)} µs/call, process CPU ${f1(plainCpu)} µs/call`);
    summary('  traced', recs.map(phases));
  }
  process.exit(0);
}

const CASES = {
  r18: [(l) => l.models.resnet18({ numClasses: 10 }), [8, 3, 32, 32]],
  cifar: [(l) => l.models.resnet20(), [32, 3, 32, 32]],
  fmnist: [(l) => l.models.resnet20({ inChannels: 1 }), [128, 1, 28, 28]],
};
const [make, shape] = CASES[kase];
const { m, opt, body } = seededStep(lib, () => make(lib), shape);
const step = () => lib.withTrainingStep({ model: m, optimizer: opt }, body);
for (let i = 0; i < 3; i++) step();

// Untraced steps first (wall and CPU), then traced ones.
const plain = wallCpuRuns(step, steps);
const perStep = [];
for (let s = 0; s < steps; s++) {
  const calls = [], recs = [];
  par.setParallelTracer((task, pooled, t0, t1) => calls.push({ kernel: task.kernel, units: task.units, cost: task.cost, pooled, ms: t1 - t0 }));
  pool.setPoolTracer((r) => recs.push(r));
  const c0 = cpuMs(), w0 = performance.now();
  step();
  const wall = performance.now() - w0, c = cpuMs() - c0;
  par.setParallelTracer(null);
  pool.setPoolTracer(null);
  perStep.push({ wall, cpu: c, calls, recs });
}

console.log(`${kase}, ${threads} threads, minParallelCost ${minCost}, ${steps} steps (${dist})`);
console.log(`untraced step: wall ${f1(med(plain.map((p) => p[0])))} ms, CPU ${f1(med(plain.map((p) => p[1])))} ms (medians); traced: wall ${f1(med(perStep.map((p) => p.wall)))}, CPU ${f1(med(perStep.map((p) => p.cpu)))}`);

// Calls by kernel (the last traced step; the counts do not change from step to step).
const last = perStep[perStep.length - 1];
const byKernel = new Map();
for (const c of last.calls) {
  const k = byKernel.get(c.kernel) ?? { pooled: 0, cheap: 0, other: 0, pooledMs: 0, inlineMs: 0, units: 0 };
  if (c.pooled) {
    k.pooled++;
    k.pooledMs += c.ms;
    k.units += c.units;
  } else {
    if (c.units > 1 && c.cost < minCost) k.cheap++;
    else k.other++;
    k.inlineMs += c.ms;
  }
  byKernel.set(c.kernel, k);
}
console.log('\nparallelFor calls of one step, by kernel: pooled (units), inline below minParallelCost, inline otherwise (one unit / nested); ms of wall in them');
const rows = [...byKernel.entries()].sort((a, b) => b[1].pooledMs + b[1].inlineMs - a[1].pooledMs - a[1].inlineMs);
const tot = { pooled: 0, cheap: 0, other: 0, pooledMs: 0, inlineMs: 0, units: 0 };
for (const [name, k] of rows) {
  console.log(`  ${name.padEnd(34)} pooled ${String(k.pooled).padStart(3)} (${String(k.units).padStart(4)} units, ${f2(k.pooledMs).padStart(6)} ms)  cheap ${String(k.cheap).padStart(3)}  other ${String(k.other).padStart(3)}  inline ${f2(k.inlineMs)} ms`);
  for (const key of Object.keys(tot)) tot[key] += k[key];
}
console.log(`  ${'all'.padEnd(34)} pooled ${String(tot.pooled).padStart(3)} (${String(tot.units).padStart(4)} units, ${f2(tot.pooledMs).padStart(6)} ms)  cheap ${String(tot.cheap).padStart(3)}  other ${String(tot.other).padStart(3)}  inline ${f2(tot.inlineMs)} ms`);

// Per step sums, medians over the traced steps.
const sums = perStep.map((s) => {
  const ph = s.recs.map(phases);
  const sum = (k) => ph.reduce((a, p) => a + (Number.isFinite(p[k]) ? p[k] : 0), 0) / 1000;
  const inPool = sum('total');
  return {
    wall: s.wall, cpu: s.cpu, inPool, outside: s.wall - inPool,
    stage: sum('stage'), post: sum('post'), ring: sum('ring'), join: sum('join'), mainIdle: sum('mainIdle'), doneWake: sum('doneWake'),
    workerIdle: sum('workerIdle'), workerBusy: sum('workerBusy'),
    inline: s.calls.filter((c) => !c.pooled).reduce((a, c) => a + c.ms, 0),
    waitsCalls: ph.filter((p) => p.waits > 0).length,
    mainLast: ph.filter((p) => p.workerTook && p.mainIdle < 1).length,
    workerAbsent: ph.filter((p) => !p.workerTook).length,
    absentMs: ph.filter((p) => !p.workerTook).reduce((a, p) => a + p.total, 0) / 1000,
  };
});
const best = sums.reduce((a, b) => (b.wall < a.wall ? b : a));
const ms = (k) => `${f2(med(sums.map((s) => s[k])))}|${f2(best[k])}`;
console.log(`\nper traced step (ms, median over the steps|the fastest step): wall ${ms('wall')}, CPU ${ms('cpu')}; inside pool calls ${ms('inPool')}, outside them (worker idle) ${ms('outside')}, of which inline parallelFor ${ms('inline')}`);
console.log(`  pool calls: staging ${ms('stage')}, posting ${ms('post')}, doorbell ${ms('ring')}; call start → worker's first unit, summed ${ms('join')}`);
console.log(`  main idle after its own units ${ms('mainIdle')} (of which after the worker's last unit, i.e. the wake: ${ms('doneWake')}); worker idle before the main thread's last unit ${ms('workerIdle')}`);
console.log(`  worker busy in units ${ms('workerBusy')}; calls where the main thread waited on DONE ${med(sums.map((s) => s.waitsCalls))}, where the worker took no unit ${med(sums.map((s) => s.workerAbsent))} (their wall ${ms('absentMs')})`);
console.log(`  one thread alone (outside calls + before the worker's first unit + calls it missed + worker idle at a call's end + main idle): ${f2(med(sums.map((s) => s.outside + s.join + s.absentMs + s.workerIdle + s.mainIdle)))}|${f2(best.outside + best.join + best.absentMs + best.workerIdle + best.mainIdle)}`);
summary('\npooled calls of the last step', last.recs.map(phases));

// The fastest traced step's pooled calls by kernel: one thread idle at a call's end (the other still in its last
// unit), and the worker's start latency, summed.
const fastest = perStep.reduce((a, b) => (b.wall < a.wall ? b : a));
const tails = new Map();
for (const r of fastest.recs) {
  const p = phases(r);
  const k = tails.get(r.kernel) ?? { calls: 0, units: 0, wall: 0, tail: 0, join: 0, missed: 0 };
  k.calls++;
  k.units += r.units;
  k.wall += p.total / 1000;
  if (p.workerTook) {
    k.tail += (p.mainIdle + p.workerIdle) / 1000;
    k.join += p.join / 1000;
  } else k.missed += p.total / 1000;
  tails.set(r.kernel, k);
}
console.log('\nthe fastest step by kernel (ms): wall in calls; one thread idle at the end (main idle + worker idle); start → worker first unit; wall of calls the worker missed');
for (const [name, k] of [...tails.entries()].sort((a, b) => b[1].tail - a[1].tail)) {
  console.log(`  ${name.padEnd(34)} ${String(k.calls).padStart(3)} calls ${String(k.units).padStart(4)} units  wall ${f2(k.wall).padStart(7)}  tail ${f2(k.tail).padStart(6)}  join ${f2(k.join).padStart(6)}  missed ${f2(k.missed).padStart(6)}`);
}

if (timeline) {
  console.log('\ntimeline of the last step (µs from the step start): call start, worker first unit, main done, worker last unit, done; units main/worker');
  const t0 = last.recs[0]?.start ?? 0;
  const us = (v) => f1((v - t0) * 1000).padStart(8);
  for (const r of last.recs) {
    console.log(`  ${r.kernel.padEnd(30)} ${us(r.start)} ${us(wk(r, W.first))} ${us(r.mainDone)} ${us(wk(r, W.last))} ${us(r.done)}  ${r.mainUnits}/${Number.isFinite(wk(r, W.units)) ? wk(r, W.units) : 0} of ${r.units}`);
  }
}
lib.setNumThreads(1);
process.exit(0);
