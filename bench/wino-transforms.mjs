// The SIMD Winograd path's input and output transforms (`vin64`, `vout4`) alone, one thread, on a Fashion-MNIST
// 16@28 block (52 tiles, 16 channels, padded 30×32 planes; vout4 on 13 4-tile panels × 4 output channels, no
// epilogue, as in training), builds taking turns:
//   node bench/wino-transforms.mjs DIST[,DIST2…]
// Prints each build's min process CPU ns per (tile, channel) over 15 rounds. The inputs are not checked (the
// Winograd tests compare the SIMD transforms' bits with the JavaScript ones); builds whose functions take fewer
// parameters ignore the extra scratch argument.
import { resolve } from 'node:path';
import { DIST, cpuMs } from './lib.mjs';

const dists = (process.argv[2] ?? DIST).split(',');
const builds = [];
for (const d of dists) builds.push({ sg: await import(resolve(d, 'kernels/wasm/sgemm.js')), wi: await import(resolve(d, 'kernels/wasm/winograd.js')) });
const nt = 52, ci = 16, pw = 32, ph = 30, planeB = ph * pw * 4, tilesW = 7, reps = 300;
const res = builds.map(() => ({ vin: [], vout: [] }));
for (let r = 0; r < 15; r++) {
  for (let k = 0; k < builds.length; k++) {
    const bi = (k + r) % builds.length, { sg, wi } = builds[bi];
    const g = sg.simdGemm(16 << 20), wg = wi.simdWinograd();
    // V (36 ξ-slices of 52 tiles × 16 channels, float64) | tile table | padded planes | scratch | M | vout's table | y rows
    const vxi = (nt * ci + 8) * 8, tab = 36 * vxi, padded = tab + 4096, scratch = padded + ci * planeB + 4096;
    const m = scratch + 4096, otab = m + 36 * 128 * 13, ystage = otab + 16 * nt + 1024;
    const iv = new Int32Array(g.f.buffer);
    for (let t = 0; t < nt; t++) iv[tab / 4 + t] = padded + 4 * ((Math.floor(t / tilesW) % 7) * 4 * pw + 4 * (t % tilesW));
    for (let i = 0; i < (ci * planeB) / 4; i++) g.f[padded / 4 + i] = Math.sin(i);
    for (let i = 0; i < (36 * 128 * 13) / 8; i++) g.h[m / 8 + i] = Math.cos(i);
    for (let t = 0; t < nt; t++) iv.set([ystage + 16 * t, 4 * 784, 4, 4], otab / 4 + 4 * t);
    let c0 = cpuMs();
    for (let t = 0; t < reps; t++) wg.vin64(tab, nt, ci, planeB, 4 * pw, 0, vxi, scratch);
    res[bi].vin.push(((cpuMs() - c0) * 1e6) / (reps * nt * ci));
    c0 = cpuMs();
    for (let t = 0; t < reps; t++) {
      for (let c = 0; c < 4; c++) for (let p = 0; p < 13; p++) wg.vout4(m + 36 * 128 * p, Math.min(4, nt - 4 * p), otab + 64 * p, 4, 0, 0, 0, 0, 4 * 28, 4 * c, scratch);
    }
    res[bi].vout.push(((cpuMs() - c0) * 1e6) / (reps * nt * 16));
  }
}
console.log(`| build | vin64 ns per (tile, channel) | vout4 ns per (tile, channel) |\n|---|---:|---:|`);
res.forEach((x, i) => console.log(`| ${dists[i]} | ${Math.min(...x.vin).toFixed(2)} | ${Math.min(...x.vout).toFixed(2)} |`));
