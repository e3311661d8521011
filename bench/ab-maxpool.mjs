// Two builds' training max pooling (values and argmax, maxPool2dForward) and global average pooling backward,
// called alternately in one process (the first in turn alternating per round):
//   node bench/ab-maxpool.mjs OLD_DIST NEW_DIST [threads]
// ResNet-18's stem pooling on 32×32 images at batch 8 (3×3/2 pad 1, 8×64×16×16 → 8×8) and its global average
// pooling backward (8×512×1×1), then CIFAR ResNet-20's (32×64×8×8). Prints per build the median over 40 rounds of
// the wall and process CPU ms per call (20 calls a round), and whether both builds gave the same values and argmax.
import { cpuMs, loadBuilds } from './lib.mjs';

const [, , a, b, th = '1'] = process.argv;
if (!a || !b) {
  console.error('usage: node bench/ab-maxpool.mjs OLD_DIST NEW_DIST [threads]');
  process.exit(2);
}
process.env.RESNET_TS_THREADS = th;
const builds = (await loadBuilds([a, b], { lib: 'index.js', k: 'kernels/pool.js' }, { threads: Number(th) }))
  .map(({ label, k }) => ({ d: label, k, w: [], c: [], g: [[], []] }));
const sh = (n) => new Float32Array(new SharedArrayBuffer(n * 4));
const p = { n: 8, c: 64, h: 16, w: 16, kh: 3, kw: 3, strideH: 2, strideW: 2, padH: 1, padW: 1, dilH: 1, dilW: 1, oh: 8, ow: 8 };
const x = sh(p.n * p.c * p.h * p.w);
for (let i = 0; i < x.length; i++) x[i] = Math.max(0, ((Math.sin(i * 12.9898) * 43758.5453) % 1)); // ReLU'd: ties at 0
const outs = builds.map(() => ({ y: sh(p.n * p.c * p.oh * p.ow), a: new Int32Array(p.n * p.c * p.oh * p.ow) }));
const gps = [{ n: 8, c: 512, h: 1, w: 1, oh: 1, ow: 1 }, { n: 32, c: 64, h: 8, w: 8, oh: 1, ow: 1 }];
const gdx = gps.map((q) => sh(q.n * q.c * q.h * q.w)), gdy = gps.map((q) => sh(q.n * q.c).fill(0.3));
for (let r = 0; r < 40; r++) {
  for (const i of r % 2 ? [1, 0] : [0, 1]) {
    const bd = builds[i];
    const c0 = cpuMs(), w0 = performance.now();
    for (let k = 0; k < 20; k++) bd.k.maxPool2dForward(outs[i].y, outs[i].a, x, p);
    bd.w.push((performance.now() - w0) / 20);
    bd.c.push((cpuMs() - c0) / 20);
    gps.forEach((q, j) => {
      const c1 = cpuMs();
      for (let k = 0; k < 20; k++) bd.k.globalAvgPool2dBackward(gdx[j], gdy[j], q);
      bd.g[j].push((cpuMs() - c1) / 20);
    });
  }
}
const med = (v) => v.slice().sort((s, t) => s - t)[v.length >> 1];
console.log(`threads ${th}; ms per call, medians of 40 rounds`);
for (const bd of builds) {
  console.log(`${bd.d}: max pool 8×64×16×16 with argmax wall ${med(bd.w).toFixed(3)} CPU ${med(bd.c).toFixed(3)} | global avg pool backward CPU 8×512×1×1 ${med(bd.g[0]).toFixed(4)}, 32×64×8×8 ${med(bd.g[1]).toFixed(4)}`);
}
console.log('same values:', outs[0].y.every((v, i) => Object.is(v, outs[1].y[i])), '· same argmax:', outs[0].a.every((v, i) => v === outs[1].a[i]));
process.exit(0);
