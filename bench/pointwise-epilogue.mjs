// The 1×1 forward's wasm kernel alone (wasm/pointwise.ts) in one build, its fused epilogue in float64 (PW_EP) and in
// float32 (PW_EP | PW_EP32), both with ReLU (and a residual with --res), taking turns in one process after 300 ms of
// warm-up each: process CPU ms per M × N × K product (min of 60 rounds). x's rows as they lie (ResNet-50's shapes).
//   node bench/pointwise-epilogue.mjs DIST [--res]
import { resolve } from 'node:path';
const D = resolve(process.argv[2]), withRes = process.argv.includes('--res');
const shp = ['256,64,3136', '64,256,3136', '512,128,784', '1024,256,196', '2048,512,49', '512,2048,49', '256,1024,196', '128,512,784', '64,64,3136'];
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
const sg = await import(`${D}/kernels/wasm/sgemm.js`), pw = await import(`${D}/kernels/wasm/pointwise.js`);
const base = pw.PW_EP | pw.PW_RELU | (withRes ? pw.PW_RES : 0);
const flagSets = [base, base | pw.PW_EP32];
for (const s of shp) {
  const [K, M, N] = s.split(',').map(Number);
  const mPad = Math.ceil(M / 4) * 4;
  const xAt = mPad * K, yAt = xAt + K * Math.ceil(N / 8) * 8 + 16, dAt = Math.ceil((yAt + M * N + 16) / 2), tmpAt = dAt + 2 * M;
  const gm = sg.simdGemm(8 * tmpAt + pw.pointwiseScratch(4, 2));
  const f = gm.f, h = gm.h;
  let seed = 1; const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) - 0.5;
  for (let i = 0; i < yAt; i++) f[i] = rnd();
  for (let i = 0; i < M; i++) { h[dAt + i] = 0.5; h[dAt + M + i] = -0.25; }
  const fn = pw.simdPointwise(K);
  const mc = Math.max(4, Math.floor(65536 / K / 4) * 4);
  const vs = flagSets.map((fl) => () => { for (let i = 0; i < M; i += mc) fn(K, Math.min(M - i, mc), N, 4 * i * K, 4 * xAt, 4 * N, 4, 4 * (yAt + i * N), 4 * N, fl, 8 * (dAt + i), 8 * (dAt + M + i), 8 * tmpAt); });
  for (const run of vs) { const t0 = performance.now(); while (performance.now() - t0 < 300) run(); }
  const best = [1e9, 1e9];
  const R = Math.max(1, Math.round(5e7 / (K * M * N)));
  for (let r = 0; r < 60; r++) for (let q = 0; q < 2; q++) { const i = (r + q) % 2; const c0 = cpu(); for (let z = 0; z < R; z++) vs[i](); best[i] = Math.min(best[i], (cpu() - c0) / R); }
  console.log(`K ${K} M ${M} N ${N}${withRes ? ' +res' : ''}: f64 ep ${best[0].toFixed(3)}  f32 ep ${best[1].toFixed(3)}  f32/f64 ${(best[1] / best[0]).toFixed(3)}`);
}
