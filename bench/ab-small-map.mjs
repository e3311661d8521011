// ResNet-18's small-map convolution kernels (batch 8, 32×32 images: 4×4, 2×2 and 1×1 maps) in two builds, one
// process, one thread, weights and weight gradients in the resident memory as in training:
//   node bench/ab-small-map.mjs OLD_DIST NEW_DIST [reps]
// Per layer and build: forward / input gradient / weight gradient, process CPU ms per call, the 4th lowest of `reps`
// (default 41) calls ('-': the layer's forward and input gradient take other kernels). Run both orders.
import { loadBuilds } from './lib.mjs';

const [, , ...rest] = process.argv;
const reps = rest.length > 2 ? Number(rest.pop()) : 41;
if (rest.length !== 2) {
  console.error('usage: node bench/ab-small-map.mjs OLD_DIST NEW_DIST [reps]');
  process.exit(2);
}
process.env.RESNET_TS_THREADS = '1';
const builds = (await loadBuilds(rest, { lib: 'index.js', um: 'kernels/conv2d/unit-map.js', sm: 'kernels/conv2d/small-map.js', op: 'kernels/optim.js' }, { threads: 1 }))
  .map(({ dir, um, sm, op }) => ({ d: dir, um, sm, op }));
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const P = (n, c, h, o, s) => {
  const oh = Math.floor((h + 2 - 3) / s) + 1;
  return { n, c, h, w: h, o, kh: 3, kw: 3, strideH: s, strideW: s, padH: 1, padW: 1, dilH: 1, dilW: 1, groups: 1, oh, ow: oh };
};
const cases = [
  ['512→512 @1', P(8, 512, 1, 512, 1)],
  ['256→512 /2 @2', P(8, 256, 2, 512, 2)],
  ['256→256 @2', P(8, 256, 2, 256, 1)],
  ['128→256 /2 @4', P(8, 128, 4, 256, 2)],
  ['128→128 @4', P(8, 128, 4, 128, 1)],
];
let seed = 1;
const rnd = (n) => {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) - 0.5;
  return a;
};
console.log(`| layer | ${rest.join(' | ')} |\n|---|---:|---:|`);
for (const [name, p] of cases) {
  const row = [name];
  for (const b of builds) {
    const wl = p.o * p.c * 9;
    const w = b.op.residentParam(wl) ?? new Float32Array(wl);
    w.set(rnd(wl));
    const x = rnd(p.n * p.c * p.h * p.w), dy = rnd(p.n * p.o * p.oh * p.ow);
    const y = new Float32Array(dy.length), dx = new Float32Array(x.length);
    const dw = b.op.residentBuffer(wl) ?? new Float32Array(wl);
    const t = { f: [], i: [], w: [] };
    const unit = b.sm.densePairTaps(p) !== null;
    for (let r = 0; r < reps; r++) {
      let c0 = cpu();
      if (unit) {
        b.um.unitMapConv2dForward(y, x, w, null, p);
        t.f.push(cpu() - c0);
        c0 = cpu();
        b.um.unitMapConv2dBackwardInput(dx, dy, w, p);
        t.i.push(cpu() - c0);
        c0 = cpu();
      }
      const taps = b.sm.denseMapTaps(p);
      if (taps) b.sm.denseMapBackwardWeight(dw, dy, x, p, taps);
      else b.sm.tapMapBackwardWeight(dw, dy, x, p, b.sm.tapMapPairs(p));
      t.w.push(cpu() - c0);
    }
    const low = (a) => (a.length ? a.sort((u, v) => u - v)[Math.min(3, a.length - 1)].toFixed(2) : '-');
    row.push(`${low(t.f)} / ${low(t.i)} / ${low(t.w)}`);
  }
  console.log(`| ${row.join(' | ')} |`);
}
process.exit(0);
