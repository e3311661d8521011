// Two builds' convolution backward kernels, layer by layer, called alternately in one process (so a loaded machine
// disturbs both alike):
//   node bench/ab-backward.mjs OLD_DIST NEW_DIST [r20|r18|fmnist|deg56] [w|in|in-over] [reps]
// The layer shapes of CIFAR ResNet-20 at 32×3×32×32, ResNet-18 (10 classes) at 8×3×32×32 or ResNet-20 at
// 128×1×28×28; w: conv2dBackwardWeight, in: conv2dBackwardInput (not for the stems: no input gradient there). One
// thread (RESNET_TS_THREADS=1 unless set). in-over: the old build zero-fills dx and adds into it, the new one
// overwrites dx ({ overwrite: true }, as the conv2d op does for a fresh gradient buffer). Prints each build's median process CPU ms per call, and the totals over
// the net (each layer × its count). Each pass runs every layer; the second pass (--passes 2 by default) is reported,
// after V8 has tiered both builds' kernels up.
import { loadBuilds } from './lib.mjs';

const [, , oldDist, newDist, kase = 'r20', dir = 'w', repsArg = '7'] = process.argv;
if (!oldDist || !newDist) {
  console.error('usage: node bench/ab-backward.mjs OLD_DIST NEW_DIST [r20|r18|fmnist|deg56] [w|in|in-over] [reps]');
  process.exit(2);
}
process.env.RESNET_TS_THREADS ??= '1';
const builds = (await loadBuilds([oldDist, newDist], { bwd: 'kernels/conv2d/backward.js' })).map((b) => b.bwd);
const reps = Number(repsArg);

const P = (n, c, h, o, k, s, pad) => {
  const oh = Math.floor((h + 2 * pad - k) / s) + 1;
  return { n, c, h, w: h, o, kh: k, kw: k, strideH: s, strideW: s, padH: pad, padW: pad, dilH: 1, dilW: 1, groups: 1, oh, ow: oh };
};
const CASES = {
  r20: [['stem 3→16', P(32, 3, 32, 16, 3, 1, 1), 1], ['16→16 @32', P(32, 16, 32, 16, 3, 1, 1), 6], ['16→32 /2', P(32, 16, 32, 32, 3, 2, 1), 1],
    ['32→32 @16', P(32, 32, 16, 32, 3, 1, 1), 5], ['32→64 /2', P(32, 32, 16, 64, 3, 2, 1), 1], ['64→64 @8', P(32, 64, 8, 64, 3, 1, 1), 5]],
  r18: [['stem 7×7/2 3→64', P(8, 3, 32, 64, 7, 2, 3), 1], ['64→64 @8', P(8, 64, 8, 64, 3, 1, 1), 4], ['64→128 /2', P(8, 64, 8, 128, 3, 2, 1), 1],
    ['128→128 @4', P(8, 128, 4, 128, 3, 1, 1), 3], ['1×1/2 64→128', P(8, 64, 8, 128, 1, 2, 0), 1], ['128→256 /2', P(8, 128, 4, 256, 3, 2, 1), 1],
    ['256→256 @2', P(8, 256, 2, 256, 3, 1, 1), 3], ['1×1/2 128→256', P(8, 128, 4, 256, 1, 2, 0), 1], ['256→512 /2', P(8, 256, 2, 512, 3, 2, 1), 1],
    ['512→512 @1', P(8, 512, 1, 512, 3, 1, 1), 3], ['1×1/2 256→512', P(8, 256, 2, 512, 1, 2, 0), 1]],
  fmnist: [['stem 1→16', P(128, 1, 28, 16, 3, 1, 1), 1], ['16→16 @28', P(128, 16, 28, 16, 3, 1, 1), 6], ['16→32 /2', P(128, 16, 28, 32, 3, 2, 1), 1],
    ['32→32 @14', P(128, 32, 14, 32, 3, 1, 1), 5], ['32→64 /2', P(128, 32, 14, 64, 3, 2, 1), 1], ['64→64 @7', P(128, 64, 7, 64, 3, 1, 1), 5]],
  // The degradation experiment's default ResNet-56: widths 4/8/16 on Fashion-MNIST pooled to 14×14, batch 128.
  deg56: [['stem 1→4', P(128, 1, 14, 4, 3, 1, 1), 1], ['4→4 @14', P(128, 4, 14, 4, 3, 1, 1), 18], ['4→8 /2', P(128, 4, 14, 8, 3, 2, 1), 1],
    ['8→8 @7', P(128, 8, 7, 8, 3, 1, 1), 17], ['8→16 /2', P(128, 8, 7, 16, 3, 2, 1), 1], ['16→16 @4', P(128, 16, 4, 16, 3, 1, 1), 17]],
};
const layers = CASES[kase].filter(([name]) => dir === 'w' || !name.startsWith('stem'));

const rand = (n, seed) => {
  const a = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    a[i] = s / 2 ** 32 - 0.5;
  }
  return a;
};
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const median = (a) => a.slice().sort((x, y) => x - y)[a.length >> 1];

let total = [0, 0];
for (let pass = 0; pass < 2; pass++) {
  total = [0, 0];
  const rows = [];
  for (const [name, p, count] of layers) {
    const x = rand(p.n * p.c * p.h * p.w, 1), w = rand(p.o * p.c * p.kh * p.kw, 2), dy = rand(p.n * p.o * p.oh * p.ow, 3);
    const out = new Float32Array(dir === 'w' ? w.length : x.length);
    const t = [[], []];
    for (let r = 0; r < reps + 1; r++) {
      for (let b = 0; b < 2; b++) {
        const c0 = cpu();
        const over = dir === 'in-over' && b === 1;
        if (!over) out.fill(0);
        if (dir === 'w') builds[b].conv2dBackwardWeight(out, dy, x, p);
        else builds[b].conv2dBackwardInput(out, dy, w, p, { overwrite: over });
        if (r > 0) t[b].push(cpu() - c0);
      }
    }
    const m = t.map(median);
    total = total.map((v, b) => v + m[b] * count);
    rows.push(`| ${name} | ${count} | ${m[0].toFixed(2)} | ${m[1].toFixed(2)} | ${(m[1] / m[0]).toFixed(2)} |`);
  }
  if (pass === 1) {
    console.log(`${kase}, ${dir === 'w' ? 'weight' : dir === 'in' ? 'input' : 'input (new overwrites)'} gradient, ${process.env.RESNET_TS_THREADS} thread(s), CPU ms per call (median of ${reps})`);
    console.log('| layer | count | old | new | new/old |\n|---|---:|---:|---:|---:|');
    for (const r of rows) console.log(r);
    console.log(`| whole net (× count) | | ${total[0].toFixed(1)} | ${total[1].toFixed(1)} | ${(total[1] / total[0]).toFixed(2)} |`);
  }
}
