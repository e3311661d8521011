// What each thread of a 2-thread strided 1×1 forward runs, timed on one thread: two builds' conv2d.forward task
// (ResNet's downsampling shortcut, batch 1, fused epilogue: shift, no ReLU), its units called one at a time as the
// pool hands them out, in turns, process CPU µs per call (min / p25 / median):
//   node bench/strided-units.mjs OLD_DIST NEW_DIST [C] [O] [H] [calls] [seq|half|all]
// seq: every unit, one call each (one thread takes all the units: a worker that joins too late); half: every other
// unit (units 0, 2, 4, …: what the calling thread runs when the two threads alternate); all: one call of all the
// units (what setNumThreads(1) runs: the units merged). Each call plans the task afresh, so a thread's held copies
// (inplace.ts) start empty, as in a new pool call. Defaults 64 128 56 800 seq; stride 2, no padding.
import { loadBuilds } from './lib.mjs';

const [oldDist, newDist, C = '64', O = '128', H = '56', callsArg = '800', mode = 'seq'] = process.argv.slice(2);
if (oldDist === undefined || newDist === undefined || !['seq', 'half', 'all'].includes(mode)) {
  console.error('usage: node bench/strided-units.mjs OLD_DIST NEW_DIST [C] [O] [H] [calls] [seq|half|all]');
  process.exit(2);
}
const c = Number(C), o = Number(O), h = Number(H), oh = Math.floor((h - 1) / 2) + 1;
const p = { n: 1, c, h, w: h, o, kh: 1, kw: 1, strideH: 2, strideW: 2, padH: 0, padW: 0, dilH: 1, dilW: 1, groups: 1, oh, ow: oh };
const shared = (n) => new Float32Array(new SharedArrayBuffer(4 * n));
const x = shared(c * h * h), w = shared(o * c);
for (let i = 0; i < x.length; i++) x[i] = Math.sin(i);
for (let i = 0; i < w.length; i++) w[i] = 0.1 * Math.cos(i);
const ep = { scale: null, shift: new Float64Array(o).fill(0.25), relu: false };
const builds = [];
const modules = { lib: 'index.js', par: 'kernels/parallel.js', plan: 'kernels/conv2d/plan.js', features: 'kernels/wasm/features.js' };
for (const { par, plan: { forwardTask }, features: { kernelSettings } } of await loadBuilds([oldDist, newDist], modules, { threads: 1 })) {
  const fn = par.taskFunction('conv2d.forward');
  const y = shared(o * oh * oh), fin = new Float64Array(1);
  const bufs = { y, x, w, bias: null, res: null, fin };
  let units = 0;
  const run = () => {
    const q = forwardTask(p, ep, null);
    const params = { kernels: kernelSettings(), params: q };
    units = q.imgChunks * q.colBlocks * q.rowBlocks;
    if (mode === 'all') fn(bufs, params, 0, units);
    else for (let u = 0; u < units; u += mode === 'half' ? 2 : 1) fn(bufs, params, u, u + 1);
  };
  builds.push({ run, y, units: () => units });
}
const cpu = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
for (let i = 0; i < 100; i++) for (const b of builds) b.run();
const t = [[], []];
for (let r = 0; r < Number(callsArg); r++) {
  for (let k = 0; k < 2; k++) {
    const i = (r + k) % 2, c0 = cpu();
    builds[i].run();
    t[i].push(cpu() - c0);
  }
}
// The outputs must agree wherever both builds wrote them (all of y unless half).
let diff = 0;
if (mode !== 'half') for (let i = 0; i < builds[0].y.length; i++) if (!Object.is(builds[0].y[i], builds[1].y[i])) diff++;
const stats = (v) => {
  v.sort((a, b) => a - b);
  return [v[0], v[v.length >> 2], v[v.length >> 1]].join(' / ');
};
console.log(`1x1/2 ${c}→${o} @${h}, ${mode}, units old ${builds[0].units()} new ${builds[1].units()}; CPU µs min / p25 / median` +
  (mode === 'half' ? '' : `; ${diff === 0 ? 'same bits' : `${diff} outputs differ`}`));
console.log(`  old: ${stats(t[0])}\n  new: ${stats(t[1])}`);
process.exit(0);
