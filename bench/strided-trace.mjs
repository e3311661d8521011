// One build's 2-thread strided 1×1 forward (ResNet's downsampling shortcut, batch 1, fused epilogue: shift, no
// ReLU) under the pool tracer (src/parallel/pool.ts): per call, from the call's entry, when the doorbell rang, when the
// worker had the message and began its first unit, when each thread finished, how long after the last unit the call
// returned (the calling thread's wake from Atomics.wait when the worker ran it), and how many units each ran:
//   node bench/strided-trace.mjs DIST [C] [O] [H] [calls] [gapMs]
// gapMs: the calling thread spins that long between calls (the worker then waits on the doorbell, as between the
// layers of a forward). Prints µs min / p25 / median / p75. Defaults 64 128 56 1000 0; stride 2, no padding.
import { join, resolve } from 'node:path';

const [distArg, C = '64', O = '128', H = '56', callsArg = '1000', gapArg = '0'] = process.argv.slice(2);
if (distArg === undefined) {
  console.error('usage: node bench/strided-trace.mjs DIST [C] [O] [H] [calls] [gapMs]');
  process.exit(2);
}
const dist = resolve(distArg);
process.env.RESNET_TS_THREADS = '2';
(await import(join(dist, 'index.js'))).setNumThreads(2);
const k = await import(join(dist, 'kernels/conv2d.js'));
const pool = await import(join(dist, 'parallel/pool.js'));
const c = Number(C), o = Number(O), h = Number(H), oh = Math.floor((h - 1) / 2) + 1, gap = Number(gapArg);
const p = { n: 1, c, h, w: h, o, kh: 1, kw: 1, strideH: 2, strideW: 2, padH: 0, padW: 0, dilH: 1, dilW: 1, groups: 1, oh, ow: oh };
const shared = (n) => new Float32Array(new SharedArrayBuffer(4 * n));
const x = shared(c * h * h), w = shared(o * c), y = shared(o * oh * oh);
for (let i = 0; i < x.length; i++) x[i] = Math.sin(i);
for (let i = 0; i < w.length; i++) w[i] = 0.1 * Math.cos(i);
const ep = { scale: null, shift: new Float64Array(o).fill(0.25), relu: false };
const spin = () => {
  const end = performance.now() + gap;
  while (performance.now() < end);
};
for (let i = 0; i < 200; i++) k.conv2dForwardFused(y, x, w, null, p, ep);
const recs = [], walls = [];
pool.setPoolTracer((r) => recs.push(r));
for (let i = 0; i < Number(callsArg); i++) {
  spin();
  const t0 = performance.now();
  k.conv2dForwardFused(y, x, w, null, p, ep);
  walls.push(performance.now() - t0);
}
pool.setPoolTracer(null);
// Worker slots (protocol.ts, TraceSlot): 1 message in hand, 2 first unit, 3 last unit, 4 units.
const q = (v, f) => {
  const s = v.filter(Number.isFinite).sort((a, b) => a - b);
  return s.length > 0 ? s[Math.floor(f * (s.length - 1))] : NaN;
};
const row = (name, v, scale = 1000) => console.log(`  ${name.padEnd(26)} ${[0, 0.25, 0.5, 0.75].map((f) => (scale * q(v, f)).toFixed(0).padStart(5)).join(' /')}`);
console.log(`1x1/2 ${c}→${o} @${h}, 2 threads, ${recs.length} pooled calls of ${recs[0]?.units} units, gap ${gap} ms; µs min / p25 / median / p75`);
row('wall', walls);
row('doorbell rung', recs.map((r) => r.rung - r.start));
row('worker has the message', recs.map((r) => r.workers[1] - r.start));
row('worker starts a unit', recs.map((r) => r.workers[2] - r.start));
row('calling thread done', recs.map((r) => r.mainDone - r.start));
row('worker done', recs.map((r) => r.workers[3] - r.start));
row('returns after last unit', recs.map((r) => r.done - Math.max(r.mainDone, Number.isFinite(r.workers[3]) ? r.workers[3] : -Infinity)));
row('units, calling thread', recs.map((r) => r.mainUnits), 1);
row('units, worker', recs.map((r) => (Number.isFinite(r.workers[4]) ? r.workers[4] : 0)), 1);
process.exit(0);
