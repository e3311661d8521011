// Where the plain forward's 3×3 stride-1 Winograd (conv2dForward: float64 transforms and GEMMs) spends its time,
// one thread, per phase, on the layer-table shapes:
//   node bench/wino-phases.mjs [DIST] [--filter a,b] [--reps R]
// The thread's wasm transforms are wrapped with timers (performance.now around each call): pad (x's rows into
// padded planes), vin (input transform), w64 (weight transform), gemm (the float64 GEMMs: gemm64c, and panels64's
// wino64), vout (output transform + epilogue + rounding: panels64's time minus its GEMMs, timed in a second pass
// where panels64 runs its GEMMs only), js (the rest of the call: filter and y copies, tables, dispatch).
// Prints, per shape, the min over R calls of each phase's ms (the call's own min total) and its share.
import { resolve } from 'node:path';
import { convMacs, convParams, LAYERS } from './shapes.mjs';
import { randomArray, shared, DIST } from './lib.mjs';

const args = process.argv.slice(2);
const flag = (name, dflt) => {
  const i = args.indexOf(name);
  if (i < 0) return dflt;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
};
const filters = String(flag('--filter', '3x3')).toLowerCase().replaceAll('->', '→').split(',').filter((f) => f !== '');
const reps = Number(flag('--reps', '15'));
const dist = resolve(args[0] ?? DIST);
process.env.RESNET_TS_THREADS = '1';
(await import(`${dist}/index.js`)).setNumThreads(1);
const kern = await import(`${dist}/kernels/conv2d.js`);
const { simdWinograd } = await import(`${dist}/kernels/wasm/winograd.js`);

const acc = {};
const timed = (name, f) => (...a) => {
  const t0 = performance.now();
  f(...a);
  acc[name] = (acc[name] ?? 0) + performance.now() - t0;
};
let patched = null;
/** Wraps the thread's transforms (once per instance); gemmOnly: panels64 runs only its GEMMs (outputs wrong). */
function patch(gemmOnly) {
  const wg = simdWinograd();
  if (patched === null || patched.wg !== wg) {
    patched = { wg, orig: { ...wg, w64: [...wg.w64] } };
  }
  const o = patched.orig;
  wg.pad = timed('pad', o.pad);
  wg.vin64 = timed('vin', o.vin64);
  wg.vin64s = timed('vin', o.vin64s);
  wg.w64 = o.w64.map((f) => timed('w64', f));
  wg.gemm64c = timed('gemm', o.gemm64c);
  wg.vout4 = timed('vout', o.vout4);
  wg.panels64 = gemmOnly
    ? timed('panels', (np, nTiles, k, ua, xiU, vb, xiV, mo) => {
      for (let j = 0; j < np; j++) o.gemm64c(1, k, ua, xiU, vb + j * 32 * k, 0, xiV, mo, 0);
    })
    : timed('panels', o.panels64);
}

const PHASES = ['pad', 'vin', 'w64', 'gemm', 'vout', 'js'];
console.log(`one thread · conv2dForward · min ms of ${reps} calls per phase (share of the min total)`);
console.log(`| shape | total ms | GFLOP/s | ${PHASES.join(' | ')} |\n|---|---:|---:|${PHASES.map(() => '---:').join('|')}|`);
for (const s of LAYERS) {
  if (s.stride !== 1 || s.k !== 3 || s.c < 8) continue;
  if (filters.length > 0 && !filters.some((f) => s.name.toLowerCase().includes(f))) continue;
  const p = convParams(s);
  const x = shared(randomArray(p.n * p.c * p.h * p.w, 1)), w = shared(randomArray(p.o * p.c * 9, 2, -0.1, 0.1));
  const y = shared(new Float32Array(p.n * p.o * p.oh * p.ow));
  const run = () => kern.conv2dForward(y, x, w, null, p);
  for (let i = 0; i < 5; i++) run();
  const best = {};
  for (const gemmOnly of [false, true]) {
    patch(gemmOnly);
    for (let i = 0; i < 3; i++) run();
    for (let r = 0; r < reps; r++) {
      for (const k of Object.keys(acc)) delete acc[k];
      const t0 = performance.now();
      run();
      const total = performance.now() - t0;
      const sums = { ...acc, total };
      for (const [k, v] of Object.entries(sums)) {
        const key = gemmOnly ? `g.${k}` : k;
        best[key] = Math.min(best[key] ?? Infinity, v);
      }
    }
  }
  const panels = best.panels ?? 0, panelsGemm = best['g.panels'] ?? 0;
  const ph = {
    pad: best.pad ?? 0, vin: best.vin ?? 0, w64: best.w64 ?? 0,
    gemm: (best.gemm ?? 0) + panelsGemm, vout: (best.vout ?? 0) + Math.max(0, panels - panelsGemm),
  };
  ph.js = Math.max(0, best.total - Object.values(ph).reduce((a, b) => a + b, 0));
  const gf = (2 * convMacs(p)) / 1e6 / best.total;
  console.log(`| ${s.name} | ${best.total.toFixed(3)} | ${gf.toFixed(0)} | ${PHASES.map((k) => `${ph[k].toFixed(3)} (${((100 * ph[k]) / best.total).toFixed(0)}%)`).join(' | ')} |`);
}
