// Two builds' weight gradients (conv2dBackwardWeight) on a training step's stride-1 3×3 shapes, x and dy in the
// resident memory (as inside withTrainingStep), stepped alternately in one process (the first in turn alternating):
//   node bench/ab-wgrad.mjs OLD_DIST NEW_DIST [cifar|fmnist|r18] [threads] [reps]
// Prints per shape and build the minimum and median process CPU ms (all threads) and wall ms of one call, and
// whether the two builds' dw are bitwise identical.
import { loadBuilds } from './lib.mjs';

const [, , oldDist, newDist, kase = 'cifar', threads = '1', reps = '40'] = process.argv;
if (!oldDist || !newDist) {
  console.error('usage: node bench/ab-wgrad.mjs OLD_DIST NEW_DIST [cifar|fmnist|r18] [threads] [reps]');
  process.exit(2);
}
process.env.RESNET_TS_THREADS = threads;
const builds = (await loadBuilds([oldDist, newDist], { lib: 'index.js', conv: 'kernels/conv2d.js', optim: 'kernels/wasm/optim.js' }, { threads: Number(threads) }))
  .map((b) => ({ ...b.conv, ...b.optim }));
const conv = (n, c, h, o) => ({ n, c, h, w: h, o, kh: 3, kw: 3, oh: h, ow: h, strideH: 1, strideW: 1, padH: 1, padW: 1, dilH: 1, dilW: 1, groups: 1 });
const SHAPES = {
  cifar: [conv(32, 3, 32, 16), conv(32, 16, 32, 16), conv(32, 32, 16, 32), conv(32, 64, 8, 64)],
  fmnist: [conv(128, 16, 28, 16), conv(128, 32, 14, 32), conv(128, 64, 7, 64)],
  r18: [conv(8, 64, 32, 64), conv(8, 128, 16, 128), conv(8, 256, 8, 256)],
};
const rnd = (n, s) => {
  const a = new Float32Array(n);
  let v = s;
  for (let i = 0; i < n; i++) {
    v = (v * 1103515245 + 12345) % 2147483648;
    a[i] = v / 2147483648 - 0.5;
  }
  return a;
};
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const med = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
for (const p of SHAPES[kase]) {
  const x = rnd(p.n * p.c * p.h * p.w, 1), dy = rnd(p.n * p.o * p.oh * p.ow, 2);
  const runs = builds.map((k) => {
    const res = (a) => {
      const r = k.residentAlloc(a.length);
      r.set(a);
      return r;
    };
    const X = p.c <= 3 ? x : res(x), DY = res(dy), DW = new Float32Array(p.o * p.c * 9);
    return { DW, cpu: [], wall: [], run: () => { DW.fill(0); k.conv2dBackwardWeight(DW, DY, X, p); } };
  });
  for (let r = 0; r < Number(reps); r++) {
    for (const b of r % 2 ? [runs[1], runs[0]] : runs) {
      const c0 = cpu(), t0 = performance.now();
      b.run();
      b.wall.push(performance.now() - t0);
      b.cpu.push(cpu() - c0);
    }
  }
  const same = runs[0].DW.every((v, i) => Object.is(v, runs[1].DW[i]));
  const fmt = (b) => `CPU min ${Math.min(...b.cpu).toFixed(3)} med ${med(b.cpu).toFixed(3)}, wall min ${Math.min(...b.wall).toFixed(3)} med ${med(b.wall).toFixed(3)}`;
  console.log(`${p.c}→${p.o} @${p.h} n${p.n}: old ${fmt(runs[0])} | new ${fmt(runs[1])} | dw ${same ? 'identical' : 'DIFFERENT'}`);
}
process.exit(0);
