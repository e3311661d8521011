// Runs ResNet-18 (8×3×32×32, 10 classes) training steps in withTrainingStep for a CPU profile of the main thread:
//   node bench/r18-prof.mjs [dist] [threads] [steps] [OUT.cpuprofile]
// profiles the main thread over the steps after 3 warm-up steps (node:inspector), then
// `node bench/r18-prof.mjs --report OUT.cpuprofile STEPS` prints self ms per step by function and by file.
import { resolve } from 'node:path';
import { readFileSync } from 'node:fs';

if (process.argv[2] === '--report') {
  const p = JSON.parse(readFileSync(process.argv[3], 'utf8'));
  const dt = new Map();
  for (let i = 0; i < p.samples.length; i++) dt.set(p.samples[i], (dt.get(p.samples[i]) ?? 0) + (p.timeDeltas[i] ?? 0));
  const byFn = new Map(), byFile = new Map();
  let total = 0;
  for (const n of p.nodes) {
    const t = (dt.get(n.id) ?? 0) / 1000;
    total += t;
    const cf = n.callFrame;
    const file = cf.url.replace(/.*\/dist\//, '');
    const k = `${cf.functionName || '(anon)'} ${file}:${cf.lineNumber + 1}`;
    byFn.set(k, (byFn.get(k) ?? 0) + t);
    byFile.set(file || cf.functionName, (byFile.get(file || cf.functionName) ?? 0) + t);
  }
  const steps = Number(process.argv[4] ?? 1);
  // Samples under a pool call (the main thread's own units and its waits), under an inline parallelFor, or outside.
  const parent = new Map();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const where = new Map();
  const classify = (id) => {
    if (where.has(id)) return where.get(id);
    const n = byId.get(id);
    const f = n.callFrame;
    let w;
    if (f.functionName === 'call' && f.url.endsWith('parallel/pool.js')) w = 'pool';
    else if (f.functionName === 'runTask' && f.url.endsWith('kernels/parallel.js')) w = 'inline';
    else w = parent.has(id) ? classify(parent.get(id)) : 'outside';
    if (w === 'inline' && f.functionName === 'runTask') {
      // runTask that reached the backend: its pool call is a child; count that one as pool
    }
    where.set(id, w);
    return w;
  };
  const cls = new Map(), outFn = new Map(), outStack = new Map();
  for (const n of p.nodes) {
    const t = (dt.get(n.id) ?? 0) / 1000;
    const w = classify(n.id);
    cls.set(w, (cls.get(w) ?? 0) + t);
    if (w === 'outside') {
      const cf = n.callFrame;
      const k = `${cf.functionName || '(anon)'} ${cf.url.replace(/.*\/dist\//, '')}:${cf.lineNumber + 1}`;
      outFn.set(k, (outFn.get(k) ?? 0) + t);
      // the nearest ancestor in dist/ outside kernels: who called it
      let a = n.id, chain = [];
      while (a !== undefined && chain.length < 4) {
        const f = byId.get(a).callFrame;
        if (f.url.includes('/dist/')) chain.push(`${f.functionName || '(anon)'}@${f.url.replace(/.*\/dist\//, '')}:${f.lineNumber + 1}`);
        a = parent.get(a);
      }
      const ks = chain.join(' < ');
      outStack.set(ks, (outStack.get(ks) ?? 0) + t);
    }
  }
  console.log(`main thread ms per step: ${[...cls].map(([k, v]) => `${k} ${(v / steps).toFixed(2)}`).join(', ')}`);
  const topo = (m, n) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, v]) => `${(v / steps).toFixed(2).padStart(8)}  ${k}`).join('\n');
  console.log(`-- outside pool calls and inline tasks, by function\n${topo(outFn, 40)}\n-- by stack (dist frames)\n${topo(outStack, 40)}`);
  const top = (m, n) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, v]) => `${(v / steps).toFixed(2).padStart(8)}  ${k}`).join('\n');
  console.log(`total ${(total / steps).toFixed(1)} ms per step\n-- by file\n${top(byFile, 30)}\n-- by function\n${top(byFn, 60)}`);
  process.exit(0);
}
const [, , dist = 'dist', threads = '2', steps = '30', out = '/tmp/r18.cpuprofile'] = process.argv;
const { Session } = await import('node:inspector/promises');
const { writeFileSync } = await import('node:fs');
process.env.RESNET_TS_THREADS = threads;
const lib = await import(resolve(dist, 'index.js'));
lib.setNumThreads(Number(threads));
lib.manualSeed(0);
const m = lib.models.resnet18({ numClasses: 10 }).train();
const x = lib.randn([8, 3, 32, 32]);
const t = Array.from({ length: 8 }, (_, i) => (i * 7) % 10);
const opt = new lib.optim.SGD(m.parameters(), { lr: 0.01, momentum: 0.9, weightDecay: 5e-4 });
const walls = [];
const session = new Session();
session.connect();
for (let s = -3; s < Number(steps); s++) {
  if (s === 0) {
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 100 });
    await session.post('Profiler.start');
  }
  const w0 = performance.now();
  lib.withTrainingStep({ model: m, optimizer: opt }, () => {
    opt.zeroGrad(false);
    const loss = lib.nn.functional.crossEntropy(m.forward(x), t);
    loss.backward();
    opt.step();
    return loss.item();
  });
  if (s >= 0) walls.push(performance.now() - w0);
}
const { profile } = await session.post('Profiler.stop');
writeFileSync(out, JSON.stringify(profile));
walls.sort((a, b) => a - b);
console.log(`wall median ${walls[walls.length >> 1].toFixed(1)} min ${walls[0].toFixed(1)} ms`);
lib.setNumThreads(1);
