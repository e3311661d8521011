// Two builds' forward of one strided 1×1 convolution (ResNet's downsampling shortcut, batch 1), call by call in one
// process, many calls (for a loaded machine): `node bench/ab-strided.mjs OLD_DIST NEW_DIST [threads] [calls] [fused]
// [C] [O] [H]` (defaults 1, 1000, 0 = conv2dForward (1 = conv2dForwardFused: scale, shift, no ReLU), 64, 128, 56;
// stride 2, no padding). Prints per build the min / 25th percentile / median of the wall and process CPU µs per call
// (all threads).
import { loadBuilds } from './lib.mjs';

const [oldDist, newDist, th = '1', callsArg = '1000', fused = '0', C = '64', O = '128', H = '56'] = process.argv.slice(2);
if (oldDist === undefined || newDist === undefined) {
  console.error('usage: node bench/ab-strided.mjs OLD_DIST NEW_DIST [threads] [calls] [fused 0|1] [C] [O] [H]');
  process.exit(2);
}
const threads = Number(th), calls = Number(callsArg);
process.env.RESNET_TS_THREADS = th;
const ks = (await loadBuilds([oldDist, newDist], { lib: 'index.js', conv: 'kernels/conv2d.js' }, { threads })).map((b) => b.conv);
const c = Number(C), o = Number(O), h = Number(H), oh = Math.floor((h - 1) / 2) + 1;
const p = { n: 1, c, h, w: h, o, kh: 1, kw: 1, strideH: 2, strideW: 2, padH: 0, padW: 0, dilH: 1, dilW: 1, groups: 1, oh, ow: oh };
const shared = (n) => new Float32Array(new SharedArrayBuffer(4 * n));
const x = shared(c * h * h), w = shared(o * c), ys = [shared(o * oh * oh), shared(o * oh * oh)];
for (let i = 0; i < x.length; i++) x[i] = Math.sin(i);
for (let i = 0; i < w.length; i++) w[i] = 0.1 * Math.cos(i);
const ep = { scale: new Float64Array(o).fill(1.5), shift: new Float64Array(o).fill(0.25), relu: false };
const fns = ks.map((k, i) => (fused === '1' ? () => k.conv2dForwardFused(ys[i], x, w, null, p, ep) : () => k.conv2dForward(ys[i], x, w, null, p)));
for (let i = 0; i < 100; i++) for (const f of fns) f();
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const wall = [[], []], cpus = [[], []];
for (let r = 0; r < calls; r++) {
  for (let k = 0; k < 2; k++) {
    const i = (r + k) % 2;
    const c0 = cpu(), t0 = performance.now();
    fns[i]();
    wall[i].push(performance.now() - t0);
    cpus[i].push(cpu() - c0);
  }
}
const stats = (v) => {
  v.sort((a, b) => a - b);
  return [v[0], v[v.length >> 2], v[v.length >> 1]].map((m) => (m * 1000).toFixed(0)).join(' / ');
};
console.log(`1x1/2 ${c}→${o} @${h}, ${threads} thread(s), ${fused === '1' ? 'conv2dForwardFused' : 'conv2dForward'}, ${calls} calls each; µs min / p25 / median`);
for (const [i, name] of ['old', 'new'].entries()) console.log(`  ${name}: wall ${stats(wall[i])}  CPU ${stats(cpus[i])}`);
process.exit(0);
