// Whether two builds pick the same path (Winograd or not) for 3×3 stride-1 convs, forward and input gradient: a
// changed pick changes those convs' bits. Over batches 1–128, channels 4–512 (o = c and 2c), square maps 1–56, pad 1:
//   node bench/wino-dispatch-diff.mjs OLD_DIST NEW_DIST
// Prints the shape count and each shape whose pick differs (x, dy and w are passed empty: all finite).
import { resolve } from 'node:path';

const dists = process.argv.slice(2, 4);
if (dists.length < 2) {
  console.error('usage: node bench/wino-dispatch-diff.mjs OLD_DIST NEW_DIST');
  process.exit(2);
}
const plans = [];
for (const d of dists) plans.push(await import(`${resolve(d)}/kernels/conv2d/plan.js`));
const none = new Float32Array(0);
let count = 0;
const diff = [];
for (const n of [1, 2, 4, 8, 16, 32, 64, 128]) for (const c of [4, 8, 16, 24, 32, 48, 64, 96, 128, 256, 512]) for (const o of [c, 2 * c]) {
  for (const h of [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 16, 20, 24, 28, 32, 56]) {
    const p = { n, c, h, w: h, o, kh: 3, kw: 3, strideH: 1, strideW: 1, padH: 1, padW: 1, dilH: 1, dilW: 1, groups: 1, oh: h, ow: h };
    const pick = plans.map((m) => `${m.forwardWinograd(p, none) !== null ? 'W' : '-'}${m.backwardInputWinograd(p, none, none) !== null ? 'W' : '-'}`);
    count++;
    if (pick[0] !== pick[1]) diff.push(`${n}×${c}@${h}→${o}: forward, input gradient ${pick[0]} → ${pick[1]}`);
  }
}
console.log(`${count} shapes, ${diff.length} with another pick (W: Winograd)`);
for (const d of diff) console.log(d);
