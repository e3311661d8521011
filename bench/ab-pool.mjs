// Two builds' worker-pool round trip, alternately in one process (the first in turn alternating per round):
//   node bench/ab-pool.mjs OLD_DIST NEW_DIST [calls] [rounds]
// Each call is a 2-unit 'parallel.diagnostic' task whose main-thread unit waits until a worker has started the
// other: post, wake, run, done. Prints per build the wall µs per call (median and best round) and the process CPU µs
// per call (both threads; median round).
import { loadBuilds } from './lib.mjs';
process.env.RESNET_TS_THREADS = '2';
const [, , a, b, calls = '500', rounds = '6'] = process.argv;
const builds = [];
for (const { label: d, lib, par } of await loadBuilds([a, b], { lib: 'index.js', par: 'kernels/parallel.js', diag: 'parallel/diagnostics.js' })) {
  lib.setNumThreads(2);
  const out = new Float32Array(new SharedArrayBuffer(8)), gate = new Float32Array(new SharedArrayBuffer(4));
  const g = new Int32Array(gate.buffer);
  const call = () => { Atomics.store(g, 0, 0); par.parallelFor({ kernel: 'parallel.diagnostic', bufs: { out, gate }, writes: ['out'], params: { mode: 'mark', ms: 0, waitForWorker: true }, units: 2, cost: 1e12 }); };
  for (let i = 0; i < 50; i++) call();
  builds.push({ d, call, wall: [], cpu: [] });
}
const cpu = () => { const u = process.cpuUsage(); return u.user + u.system; };
const n = Number(calls);
for (let r = 0; r < Number(rounds); r++) {
  for (const bd of r % 2 ? [...builds].reverse() : builds) {
    const c0 = cpu(), w0 = performance.now();
    for (let i = 0; i < n; i++) bd.call();
    bd.wall.push((performance.now() - w0) * 1000 / n); bd.cpu.push((cpu() - c0) / n);
  }
}
const med = (xs) => [...xs].sort((x, y) => x - y)[xs.length >> 1];
for (const bd of builds) console.log(bd.d, 'wall µs/call median', med(bd.wall).toFixed(1), 'min', Math.min(...bd.wall).toFixed(1), '| CPU µs/call median', med(bd.cpu).toFixed(1));
process.exit(0);
