// conv2dForward of ResNet-18's small-map convs in its training step at 8×3×32×32 (the 1×1/2 downsamples and the
// 3×3/2 at 8→4 and 4→2; maps < 64 positions), y in shared memory, one thread, builds interleaved (both orders by
// round): per-call CPU µs, min and median of 30 rounds of 20 calls.
//   node bench/small-map-forward.mjs DIST_A DIST_B
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

process.env.RESNET_TS_THREADS = '1';
const dists = process.argv.slice(2).map((d) => resolve(d));
const libs = [];
for (const d of dists) libs.push({ d, k: await import(pathToFileURL(d + '/kernels/conv2d.js').href), lib: await import(pathToFileURL(d + '/index.js').href) });
for (const l of libs) l.lib.setNumThreads(1);
const shapes = [[64, 8, 128, 1], [128, 4, 256, 1], [256, 2, 512, 1], [64, 8, 128, 3], [128, 4, 256, 3]];
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
for (const [c, h, o, k] of shapes) {
  const n = 8, pad = k === 3 ? 1 : 0, oh = Math.floor((h + 2 * pad - k) / 2) + 1;
  const p = { n, c, h, w: h, o, kh: k, kw: k, strideH: 2, strideW: 2, padH: pad, padW: pad, dilH: 1, dilW: 1, groups: 1, oh, ow: oh };
  const x = new Float32Array(new SharedArrayBuffer(4 * n * c * h * h)).map(() => Math.random() - 0.5);
  const w = Float32Array.from({ length: o * c * k * k }, () => Math.random() - 0.5);
  const y = new Float32Array(new SharedArrayBuffer(4 * n * o * oh * oh));
  const res = libs.map(() => []);
  for (let r = 0; r < 30; r++) for (const [i, l] of (r % 2 ? [...libs.entries()].reverse() : [...libs.entries()])) {
    const t = cpu(); for (let q = 0; q < 20; q++) l.k.conv2dForward(y, x, w, null, p); res[i].push((cpu() - t) / 20 * 1000);
  }
  const med = (v) => [...v].sort((a, b) => a - b)[v.length >> 1];
  console.log(`${k}×${k}/2 ${c}→${o} @${h}→${oh}: ` + libs.map((l, i) => `${l.d}: min ${Math.min(...res[i]).toFixed(0)} med ${med(res[i]).toFixed(0)} µs`).join(' | '));
}
