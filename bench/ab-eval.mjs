// Two builds' whole-model eval forward (1×3×224×224, withArena + noGrad, as `npm run bench` times it) taking turns
// in one process, so a loaded machine disturbs both alike: process CPU ms and wall ms, median and min per build,
// after checking that both give the same logits (B's weights are copied from A's).
//   node bench/ab-eval.mjs OLD_DIST NEW_DIST [--model resnet50] [--threads N] [--reps R]
// Run it in both orders (OLD NEW, then NEW OLD): the build that runs first in a process varies most.
import { loadavg } from 'node:os';
import { loadBuilds } from './lib.mjs';

const args = process.argv.slice(2);
const flag = (name, dflt) => {
  const i = args.indexOf(name);
  return i < 0 ? dflt : args[i + 1];
};
if (args.length < 2 || args[0].startsWith('--') || args[1].startsWith('--')) {
  console.error('usage: node bench/ab-eval.mjs OLD_DIST NEW_DIST [--model resnet50] [--threads N] [--reps R]');
  process.exit(2);
}
const name = flag('--model', 'resnet50'), threads = Number(flag('--threads', '2')), reps = Number(flag('--reps', '15'));
process.env.RESNET_TS_THREADS = String(threads);

const runs = [];
for (const { dir: d, lib } of await loadBuilds(args.slice(0, 2), { lib: 'index.js' }, { threads })) {
  const m = lib.models[name]();
  m.eval();
  const x = new lib.Tensor(Float32Array.from({ length: 3 * 224 * 224 }, (_, i) => Math.sin(i)), [1, 3, 224, 224]);
  runs.push({ d, forward: () => lib.withArena(() => lib.noGrad(() => m.forward(x))), state: m.stateDict() });
}
for (const [k, t] of Object.entries(runs[1].state)) t.data.set(runs[0].state[k].data);
const [a, b] = runs.map((r) => r.forward().data.slice());
let diff = 0;
for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) diff++;

for (let r = 0; r < 3; r++) for (const run of runs) run.forward();
const cpu = [[], []], wall = [[], []];
for (let r = 0; r < reps; r++) {
  for (let k = 0; k < 2; k++) {
    const i = (r + k) % 2;
    const c0 = process.cpuUsage(), t0 = performance.now();
    runs[i].forward();
    wall[i].push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu[i].push((c.user + c.system) / 1000);
  }
}
const sorted = (v) => v.slice().sort((x, y) => x - y);
const med = (v) => sorted(v)[v.length >> 1];
console.log(`${name} eval 1×3×224×224 · threads ${threads} · ${reps} runs each, taking turns · load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
for (let i = 0; i < 2; i++) {
  console.log(`  ${i === 0 ? 'old' : 'new'} ${runs[i].d}: CPU ms median ${med(cpu[i]).toFixed(1)}, min ${sorted(cpu[i])[0].toFixed(1)} · wall ms median ${med(wall[i]).toFixed(1)}, min ${sorted(wall[i])[0].toFixed(1)}`);
}
console.log(`  new/old CPU median ${(med(cpu[1]) / med(cpu[0])).toFixed(3)} · ${diff === 0 ? 'same logits (bits)' : `${diff} of ${a.length} logits differ`}`);
process.exit(0);
