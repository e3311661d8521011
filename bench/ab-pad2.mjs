// The direct convolution's stride-2 padding (conv2d/direct.ts's units): `pad` (one pass per phase plane) against
// `pad2` (both planes in one pass over each input row) in one build and one process, taking turns round by round,
// after checking that they write the same bits:
//   node bench/ab-pad2.mjs [DIST] [rounds]
// Prints per shape the process CPU ms of 32 images (one core; min / median over the rounds).
import { resolve } from 'node:path';

const dist = resolve(process.argv[2] ?? 'dist'), rounds = Number(process.argv[3] ?? '41');
const D = await import(`${dist}/kernels/wasm/direct.js`);
const { phaseTable } = await import(`${dist}/kernels/conv2d/direct.js`);
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
// CIFAR ResNet-20's stride-2 convs (16→32 @32, 32→64 @16) and Fashion-MNIST's 16 channels @28: ci, hi = wi, padW.
for (const [ci, wi, padW] of [[16, 32, 1], [32, 16, 1], [16, 28, 1]]) {
  const hi = wi, s = 2, cols = 4 * D.DIRECT_V, wo = Math.floor((wi + 2 * padW - 3) / 2) + 1, hp = (wo - 1) * s + 3;
  const wq = 4 * Math.ceil((Math.ceil(wo / cols) * cols + 1) / 4), plane = hp * wq, len = ci * 2 * plane;
  const srcAt = 64, qtAt = srcAt + ci * hi * wi + 16, maskAt = qtAt + 8, outA = maskAt + 2 * wq + 64, outB = outA + len + 64;
  const k = D.simdDirect(4 * (outB + len + 64));
  for (let i = 0; i < ci * hi * wi; i++) k.f[srcAt + i] = Math.random() - 0.5;
  phaseTable(k.i, qtAt, s, wq, wi, padW);
  const qv = D.pad2Masks(k.i, maskAt, wq, wi, padW);
  k.f.fill(NaN, outA, outB + len);
  const runs = [
    () => k.pad(4 * srcAt, 4 * hi * wi, ci, hi, wi, 4 * outA, 4 * plane, wq, hp, s, s, -padW, 4 * qtAt),
    () => k.pad2(4 * srcAt, 4 * hi * wi, ci, hi, wi, 4 * outB, 4 * plane, wq, hp, -padW, padW, 4 * maskAt, qv),
  ];
  for (const f of runs) f();
  const a = new Uint32Array(k.f.buffer, 4 * outA, len), b = new Uint32Array(k.f.buffer, 4 * outB, len);
  let diff = 0;
  for (let i = 0; i < len; i++) if (a[i] !== b[i]) diff++;
  const t = [[], []];
  for (let r = 0; r < rounds; r++) {
    for (let j = 0; j < 2; j++) {
      const i = (r + j) % 2, c0 = cpu();
      for (let n = 0; n < 32; n++) runs[i]();
      t[i].push(cpu() - c0);
    }
  }
  const fmt = (x) => {
    x.sort((u, v) => u - v);
    return `${x[0].toFixed(3)} / ${x[x.length >> 1].toFixed(3)}`;
  };
  console.log(`${ci} ch ${hi}×${wi} padW ${padW}: pad ${fmt(t[0])}  pad2 ${fmt(t[1])} ms  pad2/pad ${(t[1][0] / t[0][0]).toFixed(2)}  ${diff === 0 ? 'same bits' : `${diff} differ`}`);
}
