// Wall time per call of builds' fused (eval) 3×3 stride-1 forward on a C→C map, taking turns call by call in one
// process (rotating order), on T threads — for what the layer table's 2-thread rows measure (median wall), which
// process CPU time (ab-forward.mjs) does not show:
//   node bench/ab-wall.mjs T C HW REPS DIST [DIST…]
// Prints min, quartiles and median (GFLOP/s of the median) per build. Inputs are not checked (ab-forward.mjs does).
import { loadBuilds } from './lib.mjs';
const [threads, C, HW, reps] = process.argv.slice(2, 6).map(Number);
const dists = process.argv.slice(6);
process.env.RESNET_TS_THREADS = String(threads);
const sh = (n) => new Float32Array(new SharedArrayBuffer(4 * n));
const p = { n: 1, c: C, h: HW, w: HW, o: C, kh: 3, kw: 3, strideH: 1, strideW: 1, padH: 1, padW: 1, dilH: 1, dilW: 1, groups: 1, oh: HW, ow: HW };
const x = sh(C * HW * HW), w = sh(C * C * 9);
for (let i = 0; i < x.length; i++) x[i] = Math.sin(i);
for (let i = 0; i < w.length; i++) w[i] = 0.05 * Math.cos(i);
const ep = { scale: new Float64Array(C).fill(1.5), shift: new Float64Array(C).fill(0.25), relu: true };
const fns = [];
for (const { conv: k } of await loadBuilds(dists, { lib: 'index.js', conv: 'kernels/conv2d.js' }, { threads })) {
  const y = sh(C * HW * HW);
  fns.push(() => k.conv2dForwardFused(y, x, w, null, p, ep));
}
for (const f of fns) for (let i = 0; i < 20; i++) f();
const t = fns.map(() => []);
for (let r = 0; r < reps; r++) for (let k = 0; k < fns.length; k++) {
  const i = (r + k) % fns.length;
  const t0 = performance.now(); fns[i](); t[i].push(performance.now() - t0);
}
const flop = 2 * C * C * 9 * HW * HW / 1e6;
t.forEach((a, i) => { a.sort((u, v) => u - v); const q = (f) => a[Math.floor(f * (a.length - 1))];
  console.log(`${dists[i].padEnd(28)} wall min ${q(0).toFixed(3)} p25 ${q(0.25).toFixed(3)} med ${q(0.5).toFixed(3)} (${(flop / q(0.5)).toFixed(0)} GFLOP/s) p75 ${q(0.75).toFixed(3)}`); });
process.exit(0);
