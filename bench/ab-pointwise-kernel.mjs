// The 1×1 forward's wasm kernel alone (wasm/pointwise.ts, over the SIMD GEMM's memory: weights, x's rows and y
// already there), two builds taking turns in one process, after 300 ms of warm-up each (a new k compiles a new
// module whose first calls run in Liftoff): process CPU ms per M × N × K product (min of 40 rounds), and whether the
// two give the same bits. x's rows as they lie (ldb 4N bytes), or with --panels 8-column panels (ldb 32, cstep 4K).
//   node bench/ab-pointwise-kernel.mjs OLD_DIST NEW_DIST [K,M,N ...] [--panels]

import { loadBuilds } from './lib.mjs';

const args = process.argv.slice(2).filter((a) => a !== '--panels'), panels = process.argv.includes('--panels');
if (args.length < 2) {
  console.error('usage: node bench/ab-pointwise-kernel.mjs OLD_DIST NEW_DIST [K,M,N ...] [--panels]');
  process.exit(2);
}
const shp = args.length > 2 ? args.slice(2) : ['256,64,3136', '64,256,3136', '512,128,784', '1024,256,196', '2048,512,49'];
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
const mods = await loadBuilds(args.slice(0, 2), { sg: 'kernels/wasm/sgemm.js', pw: 'kernels/wasm/pointwise.js' });
for (const s of shp) {
  const [K, M, N] = s.split(',').map(Number);
  const mPad = Math.ceil(M / 4) * 4;
  const xAt = mPad * K, yAt = xAt + K * Math.ceil(N / 8) * 8 + 16, dAt = Math.ceil((yAt + M * N + 16) / 2), tmpAt = dAt + 2 * M;
  const vs = [], outs = [];
  for (const { sg, pw } of mods) {
    const gm = sg.simdGemm(8 * tmpAt + pw.pointwiseScratch(4, 2));
    const f = gm.f, h = gm.h;
    let seed = 1; const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) - 0.5;
    for (let i = 0; i < yAt; i++) f[i] = rnd();
    for (let i = 0; i < M; i++) { h[dAt + i] = 1.5; h[dAt + M + i] = 0.25; }
    const fn = pw.simdPointwise(K);
    const mc = Math.max(4, Math.floor(65536 / K / 4) * 4);
    vs.push(() => { for (let i = 0; i < M; i += mc) fn(K, Math.min(M - i, mc), N, 4 * i * K, 4 * xAt, panels ? 32 : 4 * N, panels ? 4 * K : 4, 4 * (yAt + i * N), 4 * N, 2 | 8, 8 * (dAt + i), 8 * (dAt + M + i), 8 * tmpAt); });
    outs.push(() => gm.f.slice(yAt, yAt + M * N));
  }
  for (const run of vs) { const t0 = performance.now(); while (performance.now() - t0 < 300) run(); }
  const o0 = outs[0](), o1 = outs[1](); let diff = 0; for (let i = 0; i < o0.length; i++) if (!Object.is(o0[i], o1[i])) diff++;
  const best = [1e9, 1e9];
  const R = Math.max(1, Math.round(5e7 / (K * M * N)));
  for (let r = 0; r < 40; r++) for (let q = 0; q < 2; q++) { const i = (r + q) % 2; const c0 = cpu(); for (let z = 0; z < R; z++) vs[i](); best[i] = Math.min(best[i], (cpu() - c0) / R); }
  const g = (t) => (2 * K * M * N / t / 1e6).toFixed(1);
  console.log(`K ${K} M ${M} N ${N}: old ${best[0].toFixed(3)} (${g(best[0])})  new ${best[1].toFixed(3)} (${g(best[1])})  new/old ${(best[1] / best[0]).toFixed(3)}  diff ${diff}`);
}
