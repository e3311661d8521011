// The direct SIMD convolution against the path it replaces (config.directConv off: Winograd or im2col + GEMM), layer
// by layer, called alternately in one process (so a loaded machine disturbs both alike):
//   node bench/ab-direct.mjs [cifar|fmnist] [reps]
// The 3×3 layer shapes of CIFAR ResNet-20 at batch 32 or ResNet-20 at 128×1×28×28 (stride-2 layers: forward only;
// the input gradient of a stride-2 conv stays on im2col + GEMM). One thread (RESNET_TS_THREADS=1 unless set). Prints
// the median process CPU ms per call of forward and input gradient, off → on, and the totals over the net (each
// layer × its count, stems without input gradient).
import { resolve } from 'node:path';

const [, , kase = 'cifar', repsArg = '9'] = process.argv;
process.env.RESNET_TS_THREADS ??= '1';
const dist = resolve(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '../dist');
const kern = await import(resolve(dist, 'kernels/conv2d.js'));
const { withConfig } = await import(resolve(dist, 'config.js'));
const reps = Number(repsArg);

// [n, c, h, o, stride, count in the net, stem]
const NETS = {
  cifar: [[32, 3, 32, 16, 1, 1, true], [32, 16, 32, 16, 1, 6], [32, 16, 32, 32, 2, 1], [32, 32, 16, 32, 1, 5], [32, 32, 16, 64, 2, 1], [32, 64, 8, 64, 1, 5]],
  fmnist: [[128, 1, 28, 16, 1, 1, true], [128, 16, 28, 16, 1, 6], [128, 16, 28, 32, 2, 1], [128, 32, 14, 32, 1, 5], [128, 32, 14, 64, 2, 1], [128, 64, 7, 64, 1, 5]],
};
if (!(kase in NETS)) {
  console.error('usage: node bench/ab-direct.mjs [cifar|fmnist] [reps]');
  process.exit(2);
}

const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
const rand = (len, seed) => {
  const a = new Float32Array(len);
  let s = seed;
  for (let i = 0; i < len; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    a[i] = s / 2 ** 32 - 0.5;
  }
  return a;
};

const totals = { fwd: [0, 0], in: [0, 0] };
for (const [n, c, h, o, s, count, stem] of NETS[kase]) {
  const oh = kern.conv2dOutSize(h, 3, s, 1, 1);
  const p = { n, c, h, w: h, o, kh: 3, kw: 3, strideH: s, strideW: s, padH: 1, padW: 1, dilH: 1, dilW: 1, groups: 1, oh, ow: oh };
  const x = rand(n * c * h * h, 1), w = rand(o * c * 9, 2), dy = rand(n * o * oh * oh, 3);
  const y = new Float32Array(dy.length), dx = new Float32Array(x.length);
  const passes = { fwd: () => kern.conv2dForward(y, x, w, null, p) };
  if (s === 1 && !stem) passes.in = () => { dx.fill(0); kern.conv2dBackwardInput(dx, dy, w, p); };
  const line = [`${c}→${o}${s === 2 ? '/2' : ''} @${h} b${n} ×${count}`];
  for (const [dir, run] of Object.entries(passes)) {
    const t = [[], []];
    for (let r = 0; r < reps + 1; r++) {
      for (const on of [0, 1]) {
        withConfig({ directConv: on === 1 }, () => {
          const c0 = cpu();
          run();
          if (r > 0) t[on].push(cpu() - c0); // the first round warms both up
        });
      }
    }
    const [off, on] = t.map(median);
    totals[dir][0] += count * off;
    totals[dir][1] += count * on;
    line.push(`${dir} ${off.toFixed(2)} → ${on.toFixed(2)} ms (${(off / on).toFixed(2)}×)`);
  }
  console.log(line.join(' | '));
}
for (const [dir, [off, on]] of Object.entries(totals)) {
  console.log(`${kase} net total ${dir}: ${off.toFixed(1)} → ${on.toFixed(1)} CPU ms (${(off / on).toFixed(2)}×)`);
}
