// Does the dispatch pick the faster path for the eval forward of few-channel 3×3 stride-1 convs? For shapes the fused
// Winograd kernel takes (kernels/winograd-fused.ts: ≤ 32 channels, maps ≥ 14), times conv2dForwardFused with Winograd
// forced ('always': the fused kernel) and off ('never': im2col + GEMM) on one thread, taking turns (each timed call
// after an untimed one of itself), and prints the fastest process CPU time of each beside the cost model's estimates
// (winogradCost, which prices these calls with fusedWinogradCost, against im2colCost) and its pick.
//   node bench/fused-cost.mjs [DIST] [rounds]          (default dist/, 15 rounds; about 2 minutes)
// --json prints the rows as JSON (for refitting the prices).
import { resolve } from 'node:path';
import { DIST, randomArray } from './lib.mjs';

const args = process.argv.slice(2).filter((a) => a !== '--json');
const json = process.argv.includes('--json');
const dist = resolve(args[0] ?? DIST);
const rounds = Number(args[1] ?? 15);
process.env.RESNET_TS_THREADS = '1';
const lib = await import(`${dist}/index.js`);
lib.setNumThreads(1);
const kern = await import(`${dist}/kernels/conv2d.js`);
const plan = await import(`${dist}/kernels/conv2d/plan.js`);
const wino = await import(`${dist}/kernels/winograd.js`);
const fused = await import(`${dist}/kernels/winograd-fused.js`);

const rows = [];
let wrong = 0;
for (const [c, o] of [[8, 8], [16, 16], [32, 32], [16, 32], [8, 16], [24, 24], [32, 16]]) {
  for (const h of [14, 16, 28, 32, 56]) {
    for (const n of [1, 4, 32, 128]) {
      if (n * c * h * h > 128 * 16 * 28 * 28) continue;
      const p = { n, c, h, w: h, o, kh: 3, kw: 3, strideH: 1, strideW: 1, padH: 1, padW: 1, dilH: 1, dilW: 1, groups: 1, oh: h, ow: h };
      const q = { n, ci: c, hi: h, wi: h, co: o, ho: h, wo: h, padH: 1, padW: 1, flip: false, accumulate: false, float32: true };
      if (!fused.fusedWinogradApplies(q)) continue;
      const x = randomArray(n * c * h * h, 1), w = randomArray(o * c * 9, 2, -0.1, 0.1), y = new Float32Array(n * o * h * h);
      const ep = { scale: null, shift: new Float64Array(o), relu: false };
      const run = (policy) => () => {
        const old = kern.setWinogradPolicy(policy);
        try {
          kern.conv2dForwardFused(y, x, w, null, p, ep);
        } finally {
          kern.setWinogradPolicy(old);
        }
      };
      const fns = [run('always'), run('never')];
      for (const f of fns) for (let i = 0; i < 6; i++) f();
      const t = [[], []];
      for (let r = 0; r < rounds; r++) {
        for (let k = 0; k < 2; k++) {
          const i = (r + k) % 2;
          fns[i]();
          const c0 = process.cpuUsage();
          fns[i]();
          const d = process.cpuUsage(c0);
          t[i].push((d.user + d.system) / 1000);
        }
      }
      const [fusedMs, im2colMs] = t.map((a) => Math.min(...a));
      const winoCost = wino.winogradCost(q), im2colCost = plan.im2colCost(p, 'forward', true);
      const pick = winoCost < im2colCost ? 'winograd' : 'im2col', faster = fusedMs < im2colMs ? 'winograd' : 'im2col';
      if (pick !== faster) wrong++;
      rows.push({ n, c, o, h, fusedMs, im2colMs, winoCost, im2colCost, pick, faster });
      if (!json) {
        console.log(`${`${c}→${o} @${h} b${n}`.padEnd(16)} model ${(winoCost / 1e6).toFixed(3)} vs ${(im2colCost / 1e6).toFixed(3)} ms → ${pick.padEnd(8)} measured fused ${fusedMs.toFixed(3)}, im2col ${im2colMs.toFixed(3)} ms → ${faster}${pick !== faster ? `   (wrong pick, ${(Math.max(fusedMs, im2colMs) / Math.min(fusedMs, im2colMs)).toFixed(2)}×)` : ''}`);
      }
    }
  }
}
if (json) console.log(JSON.stringify(rows));
else console.log(`${wrong} of ${rows.length} picks differ from the measured faster path (a near tie can go either way run to run).`);
process.exit(0);
