// What a whole-model eval forward's parallel calls cost on the worker pool: `node bench/pool-calls-eval.mjs
// [--model resnet50] [--threads 2] [--reps 6] [--dist DIR] [--timeline]`.
//
// Times the eval forward (1×3×224×224, withArena + noGrad, as ab-eval.mjs), then traces `--reps` more with the
// tracers of src/kernels/parallel.ts and src/parallel/pool.ts and prints, for the fastest traced forward, the calls
// by kernel and shape: wall in the call, one thread idle at its end (main idle + worker idle), the call start → the
// worker's first unit, the units each thread ran and the busy ms of each; and the time outside pool calls.
import { join, resolve } from 'node:path';
import { cpuMs, DIST, scriptArgs, wallCpuRuns } from './lib.mjs';

const { flag, has } = scriptArgs();
const timeline = has('--timeline');
const threads = Number(flag('--threads', '2'));
const reps = Number(flag('--reps', '6'));
const name = flag('--model', 'resnet50');
const dist = resolve(flag('--dist', DIST));
process.env.RESNET_TS_THREADS = String(threads);
const lib = await import(join(dist, 'index.js'));
const par = await import(join(dist, 'kernels/parallel.js'));
const pool = await import(join(dist, 'parallel/pool.js'));
lib.setNumThreads(threads);
const med = (v) => [...v].sort((a, b) => a - b)[v.length >> 1];
const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : '-');
const m = lib.models[name]();
m.eval();
const x = new lib.Tensor(Float32Array.from({ length: 3 * 224 * 224 }, (_, i) => Math.sin(i)), [1, 3, 224, 224]);
const forward = () => lib.withArena(() => lib.noGrad(() => m.forward(x)));
for (let i = 0; i < 3; i++) forward();
const plain = wallCpuRuns(forward, reps);
const traced = [];
for (let i = 0; i < reps; i++) {
  const calls = [], recs = [];
  par.setParallelTracer((task, pooled, t0, t1) => calls.push({ task, pooled, ms: t1 - t0 }));
  pool.setPoolTracer((r) => recs.push(r));
  const c0 = cpuMs(), w0 = performance.now();
  forward();
  const wall = performance.now() - w0, c = cpuMs() - c0;
  par.setParallelTracer(null);
  pool.setPoolTracer(null);
  traced.push({ wall, cpu: c, calls, recs });
}
console.log(`${name} eval, ${threads} threads (${dist}): untraced wall ${f2(med(plain.map((p) => p[0])))} ms, CPU ${f2(med(plain.map((p) => p[1])))} (medians of ${reps}); traced wall ${f2(med(traced.map((t) => t.wall)))}, CPU ${f2(med(traced.map((t) => t.cpu)))}`);
const best = traced.reduce((a, b) => (b.wall < a.wall ? b : a));
const wk = (r, s) => r.workers[s]; // worker 0 (the 2-thread case)
const byK = new Map();
let inPool = 0, tailAll = 0, joinAll = 0, missedAll = 0, mainBusy = 0, workerBusy = 0;
for (const r of best.recs) {
  const p = r.params ?? {};
  const key = r.kernel;
  const k = byK.get(key) ?? { calls: 0, units: 0, wall: 0, tail: 0, join: 0, missed: 0, wUnits: 0, wMs: 0 };
  const total = r.done - r.start;
  k.calls++;
  k.units += r.units;
  k.wall += total;
  inPool += total;
  const took = Number.isFinite(wk(r, 2));
  if (took) {
    const t = (r.done - r.mainDone) + Math.max(0, r.mainDone - wk(r, 3));
    k.tail += t;
    tailAll += t;
    k.join += wk(r, 2) - r.start;
    joinAll += wk(r, 2) - r.start;
    k.wUnits += wk(r, 4);
    k.wMs += wk(r, 5);
    workerBusy += wk(r, 5);
  } else {
    k.missed += total;
    missedAll += total;
  }
  byK.set(key, k);
}
console.log(`fastest traced forward: wall ${f2(best.wall)} ms, CPU ${f2(best.cpu)}; ${best.recs.length} pooled calls, ${best.calls.filter((c) => !c.pooled).length} inline (${f2(best.calls.filter((c) => !c.pooled).reduce((a, c) => a + c.ms, 0))} ms)`);
console.log(`  in pool calls ${f2(inPool)} ms, outside ${f2(best.wall - inPool)}; one thread idle at calls' ends ${f2(tailAll)}; start → worker's first unit ${f2(joinAll)}; calls the worker missed ${f2(missedAll)}; worker busy ${f2(workerBusy)}`);
console.log('by kernel: calls, units (worker\'s), wall, tail, join, missed, worker busy (ms)');
for (const [key, k] of [...byK.entries()].sort((a, b) => b[1].wall - a[1].wall)) {
  console.log(`  ${key.padEnd(28)} ${String(k.calls).padStart(3)} ${String(k.units).padStart(5)} (${String(k.wUnits).padStart(4)})  wall ${f2(k.wall).padStart(7)}  tail ${f2(k.tail).padStart(6)}  join ${f2(k.join).padStart(6)}  missed ${f2(k.missed).padStart(6)}  wbusy ${f2(k.wMs).padStart(6)}`);
}
if (timeline) {
  const t0 = best.recs[0]?.start ?? 0;
  const us = (v) => (Number.isFinite(v) ? ((v - t0) * 1000).toFixed(0) : '-').padStart(8);
  console.log('timeline (µs): start, worker first unit, main done, worker last unit, done; units main/worker of all');
  for (const r of best.recs) console.log(`  ${r.kernel.padEnd(24)} ${us(r.start)} ${us(wk(r, 2))} ${us(r.mainDone)} ${us(wk(r, 3))} ${us(r.done)}  ${r.mainUnits}/${wk(r, 4) ?? 0} of ${r.units}`);
}
lib.setNumThreads(1);
process.exit(0);
