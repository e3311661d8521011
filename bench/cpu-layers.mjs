// Forward conv layers by process CPU time (process.cpuUsage: this thread and our workers), for a machine that other
// processes load: wall-clock times there measure the neighbours as much as the kernels. Ours (conv2dForward, the
// layer table's pass, and conv2dForwardFused, what an eval forward runs) against tfjs-backend-wasm's conv2d (one
// thread). Check first (max|Δ| ≤ 1e-4·max|ref| against our naive kernel), then time: min and median of --reps runs,
// the three taking turns run by run.
// ImageNet shapes at batch 1 and CIFAR ResNet-20 shapes at batch 32 (shapes.mjs).
// With --model NAME: that torchvision model's eval forward at 1×3×224×224 (noGrad) instead, ours only. --dist DIR
// times another build (e.g. a copy of an older commit's dist/), for A/B runs taken alternately.
//
//   node bench/cpu-layers.mjs [--threads N] [--filter STR] [--reps R] [--no-tfjs-wasm] [--model resnet50] [--dist DIR]

import { resolve } from 'node:path';
import { convMacs, convParams, LAYERS } from './shapes.mjs';
import { compare, DIST, permute4, randomArray, shared, table } from './lib.mjs';

const args = process.argv.slice(2);
const flag = (name, dflt) => {
  const i = args.indexOf(name);
  return i < 0 ? dflt : args[i + 1];
};
const threads = Number(flag('--threads', '1'));
const reps = Number(flag('--reps', '21'));
const filters = String(flag('--filter', '')).toLowerCase().replaceAll('->', '→').split(',').filter((f) => f !== '');
const model = flag('--model', null);
const dist = resolve(flag('--dist', DIST));
const withWasm = !args.includes('--no-tfjs-wasm') && model === null;
process.env.RESNET_TS_THREADS = String(threads);

const lib = await import(`${dist}/index.js`);
lib.setNumThreads(threads);
const kern = await import(`${dist}/kernels/conv2d.js`);
let tf = null;
if (withWasm) {
  const { loadTfjs, loadTfjsWasm } = await import('./tfjs.mjs');
  ({ tf } = await loadTfjs());
  const w = await loadTfjsWasm(tf);
  if (!w.ok) throw new Error(w.note);
  await tf.setBackend('wasm');
}

/**
 * { min, med } process CPU ms of each of fns over `reps` runs, after ten warm-up runs each (V8 tiers kernels up over
 * the first). The functions take turns (in a rotating order), so that a loaded machine disturbs them alike.
 */
function cpuMsEach(fns) {
  for (const fn of fns) for (let i = 0; i < 10; i++) fn();
  const t = fns.map(() => []);
  for (let r = 0; r < reps; r++) {
    for (let k = 0; k < fns.length; k++) {
      const i = (r + k) % fns.length;
      const c0 = process.cpuUsage();
      fns[i]();
      const c = process.cpuUsage(c0);
      t[i].push((c.user + c.system) / 1000);
    }
  }
  return t.map((a) => {
    a.sort((x, y) => x - y);
    return { min: a[0], med: a[a.length >> 1] };
  });
}
const cpuMs = (fn) => cpuMsEach([fn])[0];

if (model !== null) {
  const m = lib.models[model]();
  m.eval();
  const x = new lib.Tensor(randomArray(3 * 224 * 224, 3), [1, 3, 224, 224]);
  let wall = 0;
  const t = cpuMs(() => {
    const t0 = performance.now();
    lib.noGrad(() => m.forward(x));
    wall = performance.now() - t0;
  });
  console.log(`${model} eval 1×3×224×224, threads ${threads}: process CPU ms min ${t.min.toFixed(1)} / median ${t.med.toFixed(1)} of ${reps} (last wall ${wall.toFixed(1)} ms) · load average ${(await import('node:os')).loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  process.exit(0);
}

const rows = [];
for (const s of LAYERS) {
  if (filters.length > 0 && !filters.some((f) => s.name.toLowerCase().includes(f))) continue;
  const p = convParams(s);
  // x, w and y in shared memory, as a model hands them to the kernels (lib.mjs, shared).
  const x = shared(randomArray(p.n * p.c * p.h * p.w, 1)), w = shared(randomArray(p.o * p.c * p.kh * p.kw, 2, -0.1, 0.1));
  const y = shared(new Float32Array(p.n * p.o * p.oh * p.ow)), ref = new Float32Array(y.length);
  const ep = { scale: new Float64Array(p.o).fill(1), shift: null, relu: false };
  kern.conv2dForwardNaive(ref, x, w, null, p);
  const flop = 2 * convMacs(p);
  const check = (what) => {
    const c = compare(y, ref, 1e-4);
    if (!c.ok) throw new Error(`${s.name} ${what}: ${c.why}`);
  };
  kern.conv2dForward(y, x, w, null, p);
  check('conv2dForward');
  y.fill(0);
  kern.conv2dForwardFused(y, x, w, null, p, ep);
  check('conv2dForwardFused');
  const fns = [() => kern.conv2dForward(y, x, w, null, p), () => kern.conv2dForwardFused(y, x, w, null, p, ep)];
  let tx = null, tw = null;
  if (tf !== null) {
    tx = tf.tensor4d(permute4(x, [p.n, p.c, p.h, p.w], [0, 2, 3, 1]), [p.n, p.h, p.w, p.c]);
    tw = tf.tensor4d(permute4(w, [p.o, p.c, p.kh, p.kw], [2, 3, 1, 0]), [p.kh, p.kw, p.c, p.o]);
    const run = () => tf.conv2d(tx, tw, [p.strideH, p.strideW], p.padH, 'NHWC');
    const out = run();
    y.set(permute4(out.dataSync(), [p.n, p.oh, p.ow, p.o], [0, 3, 1, 2]));
    out.dispose();
    check('tfjs-wasm conv2d');
    fns.push(() => run().dispose());
  }
  const [plain, fused, peer = null] = cpuMsEach(fns);
  tx?.dispose();
  tw?.dispose();
  const g = (ms) => (flop / (ms * 1e6)).toFixed(1);
  rows.push([
    s.name, (flop / 1e6).toFixed(0), `${plain.min.toFixed(2)} / ${plain.med.toFixed(2)}`, g(plain.min),
    `${fused.min.toFixed(2)} / ${fused.med.toFixed(2)}`, g(fused.min),
    peer ? `${peer.min.toFixed(2)} / ${peer.med.toFixed(2)}` : '—', peer ? g(peer.min) : '—',
    peer ? `${(peer.min / plain.min).toFixed(2)}×` : '—',
  ]);
  console.error(`  ${s.name} done`);
}
console.log(`threads ${threads} · process CPU ms, min / median of ${reps} · load average ${(await import('node:os')).loadavg().map((l) => l.toFixed(1)).join(' ')}`);
console.log(table(
  ['layer', 'MFLOP', 'ours fwd', 'GFLOP/s', 'ours fused', 'GFLOP/s', 'tfjs-wasm (1 thread)', 'GFLOP/s', 'tfjs-wasm/ours fwd'],
  rows,
));
process.exit(0);
