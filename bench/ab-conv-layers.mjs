// Two builds' convolution kernels on ResNet-18's layer shapes at 8×3×32×32 (10 classes), forward, weight gradient
// and input gradient, called alternately in one process (so a loaded machine disturbs both alike):
//   node bench/ab-conv-layers.mjs OLD_DIST NEW_DIST [reps]
// The weights and the weight gradient are in shared memory, as a model's parameters and their gradients are. One
// thread (RESNET_TS_THREADS=1 unless set). Prints the median process CPU ms per call of each build (fwd0/fwd1: old,
// new), the totals over the net (each layer × its count), the live multiply-adds (terms that meet padding are not
// counted) and the new build's ns per live multiply-add.
import { loadBuilds } from './lib.mjs';
const dists = process.argv.slice(2, 4);
if (dists.length < 2) {
  console.error('usage: node bench/ab-conv-layers.mjs OLD_DIST NEW_DIST [reps]');
  process.exit(2);
}
const reps = Number(process.argv[4] ?? 15);
process.env.RESNET_TS_THREADS ??= '1';
const builds = await loadBuilds(dists, { f: 'kernels/conv2d/forward.js', b: 'kernels/conv2d/backward.js' });
const P = (n, c, h, o, k, s, pad) => { const oh = Math.floor((h + 2 * pad - k) / s) + 1; return { n, c, h, w: h, o, kh: k, kw: k, strideH: s, strideW: s, padH: pad, padW: pad, dilH: 1, dilW: 1, groups: 1, oh, ow: oh }; };
const L = [['stem 7x7/2 3→64', P(8, 3, 32, 64, 7, 2, 3), 1], ['64→64 @8', P(8, 64, 8, 64, 3, 1, 1), 4], ['64→128 /2', P(8, 64, 8, 128, 3, 2, 1), 1],
    ['128→128 @4', P(8, 128, 4, 128, 3, 1, 1), 3], ['1x1/2 64→128', P(8, 64, 8, 128, 1, 2, 0), 1], ['128→256 /2', P(8, 128, 4, 256, 3, 2, 1), 1],
    ['256→256 @2', P(8, 256, 2, 256, 3, 1, 1), 3], ['1x1/2 128→256', P(8, 128, 4, 256, 1, 2, 0), 1], ['256→512 /2', P(8, 256, 2, 512, 3, 2, 1), 1],
    ['512→512 @1', P(8, 512, 1, 512, 3, 1, 1), 3], ['1x1/2 256→512', P(8, 256, 2, 512, 1, 2, 0), 1]];
const rand = (n, seed, shared) => { const a = shared ? new Float32Array(new SharedArrayBuffer(4 * n)) : new Float32Array(n); let s = seed; for (let i = 0; i < n; i++) { s = (s * 1103515245 + 12345) >>> 0; a[i] = s / 2 ** 32 - 0.5; } return a; };
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
const med = (a) => a.slice().sort((x, y) => x - y)[a.length >> 1];
const kinds = ['fwd', 'w', 'in'];
const tot = kinds.map(() => builds.map(() => 0));
console.log('| layer | x | MMAC(live) | ' + kinds.map((k) => builds.map((_, b) => `${k}${b}`).join(' | ')).join(' | ') + ' | ns/MAC new f/w/i |');
for (const [name, p, count] of L) {
  const x = rand(p.n * p.c * p.h * p.w, 1), w = rand(p.o * p.c * p.kh * p.kw, 2, true), dy = rand(p.n * p.o * p.oh * p.ow, 3);
  const y = new Float32Array(p.n * p.o * p.oh * p.ow), dw = new Float32Array(new SharedArrayBuffer(w.length * 4)), dx = new Float32Array(x.length);
  // live MACs
  let live = 0; for (let ky = 0; ky < p.kh; ky++) for (let kx = 0; kx < p.kw; kx++) for (let oy = 0; oy < p.oh; oy++) for (let ox = 0; ox < p.ow; ox++) { const iy = oy * p.strideH - p.padH + ky, ix = ox * p.strideW - p.padW + kx; if (iy >= 0 && iy < p.h && ix >= 0 && ix < p.w) live++; }
  const macs = live * p.n * p.o * p.c;
  const ms = kinds.map(() => builds.map(() => []));
  for (let r = 0; r < reps + 2; r++) for (let b = 0; b < builds.length; b++) for (let k = 0; k < 3; k++) {
    if (k === 2 && name.startsWith('stem')) continue;
    const c0 = cpu();
    if (k === 0) builds[b].f.conv2dForward(y, x, w, null, p);
    else if (k === 1) { dw.fill(0); builds[b].b.conv2dBackwardWeight(dw, dy, x, p); }
    else { dx.fill(0); builds[b].b.conv2dBackwardInput(dx, dy, w, p); }
    if (r >= 2) ms[k][b].push(cpu() - c0);
  }
  const m = ms.map((kk) => kk.map((v) => (v.length ? med(v) : 0)));
  m.forEach((kk, k) => kk.forEach((v, b) => (tot[k][b] += v * count)));
  const nb = builds.length - 1;
  console.log(`| ${name} | ${count} | ${(macs / 1e6).toFixed(2)} | ${m.map((kk) => kk.map((v) => v.toFixed(2)).join(' | ')).join(' | ')} | ${m.map((kk) => (kk[nb] * 1e6 / macs).toFixed(3)).join(' / ')} |`);
}
console.log(`| total | | | ${tot.map((kk) => kk.map((v) => v.toFixed(1)).join(' | ')).join(' | ')} |`);
