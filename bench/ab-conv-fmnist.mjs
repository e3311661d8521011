// Builds' convolution kernels on Fashion-MNIST ResNet-20's layer shapes (batch 128, widths 16/32/64), forward,
// weight gradient and input gradient, the builds taking turns call by call in one process (so a loaded machine
// disturbs them alike), on shared buffers as in a training step:
//   node bench/ab-conv-fmnist.mjs DIST[,DIST2…] [filter] [reps]
// One thread (RESNET_TS_THREADS=1 unless set). Prints each build's min process CPU ms per call (fwd / dw / dx) and
// whether the later builds' outputs are the same bits as the first's. The stem has no input gradient (0).
import { loadBuilds } from './lib.mjs';
import { cpuMs, randomArray, shared } from './lib.mjs';

process.env.RESNET_TS_THREADS ??= '1';
const dists = (process.argv[2] ?? 'dist').split(',');
const filter = process.argv[3] ?? '';
const reps = Number(process.argv[4] ?? 9);
const builds = await loadBuilds(dists, { f: 'kernels/conv2d/forward.js', b: 'kernels/conv2d/backward.js' });
const P = (n, c, h, o, k, s, pad) => {
  const oh = Math.floor((h + 2 * pad - k) / s) + 1;
  return { n, c, h, w: h, o, kh: k, kw: k, strideH: s, strideW: s, padH: pad, padW: pad, dilH: 1, dilW: 1, groups: 1, oh, ow: oh };
};
const LAYERS = [['stem 1→16', P(128, 1, 28, 16, 3, 1, 1), 1], ['16→16 @28', P(128, 16, 28, 16, 3, 1, 1), 6], ['16→32 /2', P(128, 16, 28, 32, 3, 2, 1), 1],
  ['32→32 @14', P(128, 32, 14, 32, 3, 1, 1), 5], ['32→64 /2', P(128, 32, 14, 64, 3, 2, 1), 1], ['64→64 @7', P(128, 64, 7, 64, 3, 1, 1), 5]];
/** Seeded values in [−0.5, 0.5), in shared memory (as a model's tensors are). */
const rand = (n, seed) => shared(randomArray(n, seed, -0.5, 0.5));
const totals = builds.map(() => [0, 0, 0]);
console.log(`| layer | count | ${dists.map((d) => `${d} fwd / dw / dx`).join(' | ')} | bits vs first |\n|---|---:|${dists.map(() => '---|').join('')}---|`);
for (const [name, p, count] of LAYERS) {
  if (filter && !name.includes(filter)) continue;
  const x = rand(p.n * p.c * p.h * p.w, 1), w = rand(p.o * p.c * p.kh * p.kw, 2), dy = rand(p.n * p.o * p.oh * p.ow, 3);
  const outs = builds.map(() => ({ y: rand(dy.length, 4), dw: rand(w.length, 5), dx: rand(x.length, 6) }));
  const t = builds.map(() => [[], [], []]);
  for (let r = 0; r < reps + 2; r++) {
    for (let k = 0; k < builds.length; k++) {
      const bi = (k + r) % builds.length, { f, b } = builds[bi], o = outs[bi], tt = t[bi];
      let c0 = cpuMs();
      f.conv2dForward(o.y, x, w, null, p);
      if (r > 1) tt[0].push(cpuMs() - c0);
      o.dw.fill(0);
      c0 = cpuMs();
      b.conv2dBackwardWeight(o.dw, dy, x, p);
      if (r > 1) tt[1].push(cpuMs() - c0);
      if (name.startsWith('stem')) tt[2].push(0);
      else {
        c0 = cpuMs();
        b.conv2dBackwardInput(o.dx, dy, w, p, { overwrite: true });
        if (r > 1) tt[2].push(cpuMs() - c0);
      }
    }
  }
  const mins = t.map((tt) => tt.map((v) => Math.min(...v)));
  mins.forEach((m, bi) => m.forEach((v, j) => (totals[bi][j] += v * count)));
  const same = outs.slice(1).map((o) => ['y', 'dw', 'dx'].map((k) => (o[k].every((v, i) => Object.is(v, outs[0][k][i])) ? 'same' : 'DIFF')).join('/'));
  console.log(`| ${name} | ${count} | ${mins.map((m) => m.map((v) => v.toFixed(2)).join(' / ')).join(' | ')} | ${same.join(' ') || '–'} |`);
}
console.log(`| net (× count) | | ${totals.map((m) => m.map((v) => v.toFixed(1)).join(' / ')).join(' | ')} | |`);
