// Two builds' linear layer at a few rows in inference (nn.Linear under noGrad: its weight is a parameter, made in
// the resident memory on the SIMD backend), taking turns call by call in one process: process CPU ms and wall ms,
// min / median per build, and how many outputs differ between the builds (same weights, same input).
//   node bench/ab-fc.mjs OLD_DIST NEW_DIST [threads 2] [rows 1] [reps 200] [in 2048] [out 1000] [--cold]
// --cold: 64 MB written before each call, so that the weights come from memory (as after a forward's convolutions).
import { loadavg } from 'node:os';
import { loadBuilds } from './lib.mjs';

const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
if (args.length < 2) {
  console.error('usage: node bench/ab-fc.mjs OLD_DIST NEW_DIST [threads] [rows] [reps] [in] [out] [--cold]');
  process.exit(2);
}
const [A, B, threads = '2', rows = '1', reps = '200', inF = '2048', outF = '1000'] = args;
const cold = process.argv.includes('--cold');
process.env.RESNET_TS_THREADS = threads;
const k = Number(inF), n = Number(outF), m = Number(rows);
const flush = new Float64Array(cold ? 2 ** 23 : 0);
const builds = [];
for (const { label: d, lib } of await loadBuilds([A, B], { lib: 'index.js' }, { threads: Number(threads) })) {
  const fc = new lib.nn.Linear(k, n);
  for (let i = 0; i < fc.weight.data.length; i++) fc.weight.data[i] = Math.cos(i * 0.37) * 0.02;
  for (let i = 0; i < n; i++) fc.bias.data[i] = Math.sin(i) * 0.1;
  const x = new lib.Tensor(Float32Array.from({ length: m * k }, (_, i) => Math.sin(i)), [m, k]);
  builds.push({ d, run: () => lib.noGrad(() => fc.forward(x)) });
}
for (const b of builds) for (let i = 0; i < 20; i++) b.run();
const cpu = [[], []], wall = [[], []];
for (let r = 0; r < Number(reps); r++) {
  for (let j = 0; j < 2; j++) {
    const i = (r + j) % 2;
    for (let f = 0; f < flush.length; f += 8) flush[f] += 1;
    const c0 = process.cpuUsage(), t0 = performance.now();
    builds[i].run();
    wall[i].push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu[i].push((c.user + c.system) / 1000);
  }
}
const s = (v) => v.slice().sort((p, q) => p - q), med = (v) => s(v)[v.length >> 1];
const y0 = builds[0].run().data, y1 = builds[1].run().data;
let diff = 0, worst = 0;
for (let i = 0; i < y0.length; i++) {
  if (!Object.is(y0[i], y1[i])) diff++;
  worst = Math.max(worst, Math.abs(y0[i] - y1[i]));
}
console.log(`fc ${m}×${k} → ${n} · threads ${threads}${cold ? ' · cold' : ''} · ${reps} runs each · load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
for (let i = 0; i < 2; i++) {
  console.log(`  ${i === 0 ? 'old' : 'new'} ${builds[i].d}: CPU ms min ${s(cpu[i])[0].toFixed(3)}, median ${med(cpu[i]).toFixed(3)} · wall ms min ${s(wall[i])[0].toFixed(3)}, median ${med(wall[i]).toFixed(3)}`);
}
console.log(`  ${diff === 0 ? 'same bits' : `${diff} of ${m * n} outputs differ, max |Δ| ${worst.toExponential(2)}`}`);
process.exit(0);
