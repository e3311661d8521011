// A fresh process's first forwards, two builds in alternating fresh processes (OLD NEW, then NEW OLD, ...): the
// import, the model's construction and the first two eval forwards (1×3×224×224, noGrad), wall ms, medians over
// the pairs; cpu1 is the process's CPU ms (every thread) during the first forward. Each process gets the environment variables given as NAME=VALUE after --env-new / --env-old.
//   node bench/ab-first.mjs OLD NEW [--model resnet50] [--threads 2] [--pairs 8] [--env-new AB_START_THREADS=1]
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const arg = (k, d) => { const i = process.argv.indexOf(k); return i > 0 ? process.argv[i + 1] : d; };
const envOf = (k) => Object.fromEntries((arg(k, '') || '').split(',').filter(Boolean).map((kv) => kv.split('=')));

if (process.argv[2] === '--child') {
  const d = process.argv[3], name = process.argv[4], th = process.argv[5];
  process.env.RESNET_TS_THREADS = th;
  const t0 = performance.now();
  const lib = await import(`${d}/index.js`);
  lib.setNumThreads(Number(th));
  // AB_START_THREADS=1: start the workers before building the model, as the CLI's predict does.
  if (process.env.AB_START_THREADS === '1') (await import(`${d}/parallel/index.js`)).startThreads?.();
  const t1 = performance.now();
  const m = lib.models[name]();
  m.eval();
  const x = new lib.Tensor(Float32Array.from({ length: 3 * 224 * 224 }, (_, i) => Math.sin(i)), [1, 3, 224, 224]);
  const t2 = performance.now();
  const f = [];
  let y, cpu1 = 0;
  for (let i = 0; i < 2; i++) {
    const s = performance.now(), c = process.cpuUsage();
    y = lib.noGrad(() => m.forward(x));
    f.push(performance.now() - s);
    if (i === 0) { const u = process.cpuUsage(c); cpu1 = (u.user + u.system) / 1000; }
  }
  let h = 0;
  for (const v of y.data) h = (Math.imul(h, 31) + new Int32Array(new Float32Array([v]).buffer)[0]) | 0;
  console.log(JSON.stringify({ import: t1 - t0, build: t2 - t1, f1: f[0], f2: f[1], cpu1, hash: h }));
  process.exit(0);
}

const [oldD, newD] = [resolve(process.argv[2]), resolve(process.argv[3])];
const model = arg('--model', 'resnet50'), threads = arg('--threads', '2'), pairs = Number(arg('--pairs', '8'));
const env = { old: envOf('--env-old'), new: envOf('--env-new') };
const me = fileURLToPath(import.meta.url);
const runs = { old: [], new: [] };
for (let p = 0; p < pairs; p++) {
  for (const which of p % 2 === 0 ? ['old', 'new'] : ['new', 'old']) {
    const r = spawnSync(process.execPath, [me, '--child', which === 'old' ? oldD : newD, model, threads], { env: { ...process.env, ...env[which] }, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(r.stderr);
    runs[which].push(JSON.parse(r.stdout.trim().split('\n').pop()));
  }
}
const med = (a) => { const s = [...a].sort((x, y) => x - y); return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
console.log(`${model} threads ${threads}, ${pairs} alternating pairs of fresh processes (wall ms, median [min–max])`);
for (const which of ['old', 'new']) {
  const rs = runs[which];
  const cols = ['import', 'build', 'f1', 'cpu1', 'f2'].map((k) => {
    const v = rs.map((r) => r[k]);
    return `${k} ${med(v).toFixed(0)} [${Math.min(...v).toFixed(0)}–${Math.max(...v).toFixed(0)}]`;
  });
  console.log(`${which.padEnd(4)} ${which === 'old' ? oldD : newD}: ${cols.join('  ')}  ${JSON.stringify(env[which])}`);
}
const hashes = new Set([...runs.old, ...runs.new].map((r) => r.hash));
for (const w of ["old", "new"]) console.log(w, runs[w].map((r) => r.hash).join(" "));
console.log(`output bits: ${hashes.size === 1 ? 'identical in every process' : `DIFFER (${[...hashes].join(', ')})`}`);
