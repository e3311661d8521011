// Two builds' Winograd convolutions, called alternately in one process (so a loaded machine disturbs both alike):
//   node bench/ab-winograd.mjs OLD_DIST NEW_DIST [layers|resnet18|resnet50] [threads] [reps] [filter]
// layers: the 3×3 stride-1 shapes of ResNet-18/50 eval (batch 1), ResNet-20 on Fashion-MNIST (batch 128) and CIFAR
// (batch 32), and ResNet-18 at 8×3×32×32, each with Winograd forced: conv2dForward, conv2dForwardFused (scale,
// shift, residual, ReLU: the eval path, float32 GEMMs on the SIMD backend) and conv2dBackwardInput; `filter` keeps
// the layers whose name contains it. resnet18|resnet50: a whole eval forward 1×3×224×224 (fusion on, no grad).
// Prints each build's median process CPU ms per call (all threads) after 2 warm-up rounds; for the nets also the
// median wall ms and the largest output difference between the builds.
import { loadBuilds, median, randomArray } from './lib.mjs';

const [, , oldDist, newDist, what = 'layers', threads = '1', repsArg = '9', filter = ''] = process.argv;
if (!oldDist || !newDist) {
  console.error('usage: node bench/ab-winograd.mjs OLD_DIST NEW_DIST [layers|resnet18|resnet50] [threads] [reps] [filter]');
  process.exit(2);
}
process.env.RESNET_TS_THREADS = threads;
const reps = Number(repsArg);
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const libs = (await loadBuilds([oldDist, newDist], { lib: 'index.js' }, { threads: Number(threads) })).map((b) => b.lib);

/** Runs f(build) alternately (the order flips every round); medians of CPU and wall ms per build. */
function ab(f) {
  const t = [[], []], wall = [[], []];
  for (let r = 0; r < reps + 2; r++) {
    for (let k = 0; k < 2; k++) {
      const i = r & 1 ? 1 - k : k;
      const c0 = cpu(), w0 = performance.now();
      f(i);
      if (r >= 2) {
        t[i].push(cpu() - c0);
        wall[i].push(performance.now() - w0);
      }
    }
  }
  return { cpu: t.map(median), wall: wall.map(median) };
}

if (what !== 'layers') {
  const setups = libs.map((lib) => {
    lib.manualSeed(0);
    return { lib, m: lib.models[what]().eval(), x: lib.randn([1, 3, 224, 224]) };
  });
  const out = [null, null];
  const r = ab((i) => {
    const { lib, m, x } = setups[i];
    out[i] = lib.noGrad(() => m.forward(x)).data;
  });
  let d = 0, m = 0;
  for (let j = 0; j < out[0].length; j++) {
    d = Math.max(d, Math.abs(out[0][j] - out[1][j]));
    m = Math.max(m, Math.abs(out[0][j]));
  }
  console.log(`${what} eval 1×3×224×224, ${threads} thread(s): old ${r.cpu[0].toFixed(1)} CPU ms (wall ${r.wall[0].toFixed(1)}), ` +
    `new ${r.cpu[1].toFixed(1)} CPU ms (wall ${r.wall[1].toFixed(1)}); max|Δy| / max|y| ${(d / m).toExponential(1)}`);
  process.exit(0);
}

const kernels = (await loadBuilds([oldDist, newDist], { conv: 'kernels/conv2d.js' })).map((b) => b.conv);
for (const k of kernels) k.setWinogradPolicy('always');
const P = (n, c, h, o) => ({ n, c, h, w: h, o, kh: 3, kw: 3, strideH: 1, strideW: 1, padH: 1, padW: 1, dilH: 1, dilW: 1, groups: 1, oh: h, ow: h });
const LAYERS = [
  ['r18 64@56 b1', P(1, 64, 56, 64)], ['r18 128@28 b1', P(1, 128, 28, 128)], ['r18 256@14 b1', P(1, 256, 14, 256)],
  ['r18 512@7 b1', P(1, 512, 7, 512)], ['fmnist 16@28 b128', P(128, 16, 28, 16)], ['fmnist 32@14 b128', P(128, 32, 14, 32)],
  ['fmnist 64@7 b128', P(128, 64, 7, 64)], ['c20 16@32 b32', P(32, 16, 32, 16)], ['c20 64@8 b32', P(32, 64, 8, 64)],
  ['c18 128@4 b8', P(8, 128, 4, 128)],
].filter(([name]) => name.includes(filter));
const rand = (n, seed) => randomArray(n, seed, -0.5, 0.5);
console.log(`Winograd layers, ${threads} thread(s), CPU ms per call (median of ${reps})`);
console.log('| layer | pass | old | new | new/old |');
console.log('|---|---|---:|---:|---:|');
for (const [name, p] of LAYERS) {
  const ys = p.n * p.o * p.oh * p.ow;
  const x = rand(p.n * p.c * p.h * p.w, 1), w = rand(p.o * p.c * 9, 2), dy = rand(ys, 3), res = rand(ys, 6);
  const scale = Float64Array.from(rand(p.o, 4)), shift = Float64Array.from(rand(p.o, 5));
  const passes = {
    fwd: (k) => k.conv2dForward(new Float32Array(ys), x, w, null, p),
    fused: (k) => k.conv2dForwardFused(new Float32Array(ys), x, w, res, p, { scale, shift, relu: true }),
    'bwd in': (k) => k.conv2dBackwardInput(new Float32Array(x.length), dy, w, p),
  };
  for (const [pass, f] of Object.entries(passes)) {
    const r = ab((i) => f(kernels[i]));
    console.log(`| ${name} | ${pass} | ${r.cpu[0].toFixed(2)} | ${r.cpu[1].toFixed(2)} | ${(r.cpu[1] / r.cpu[0]).toFixed(2)} |`);
  }
}
process.exit(0);
