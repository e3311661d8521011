// Where a whole-model eval forward (1×3×224×224, noGrad, fused) spends its time, layer by layer: every conv of the
// model (with its BatchNorm, residual and ReLU, as convBnAct fuses them) run alone through the fused op on the
// input it saw in a real forward (in shared memory, as the arena hands it over), by process CPU time (this thread and the workers) and wall time, min of --reps
// runs; the rows grouped by shape, with the count of such layers and the sums. The rest (max pool, average pool,
// fc, the per-module overheads) is the whole forward minus the convs' sum.
//   node bench/eval-layers.mjs [--model resnet50] [--threads 2] [--reps 15] [--dist DIR]
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { DIST, shared, table } from './lib.mjs';

const args = process.argv.slice(2);
const flag = (name, dflt) => {
  const i = args.indexOf(name);
  return i < 0 ? dflt : args[i + 1];
};
const name = flag('--model', 'resnet50'), threads = Number(flag('--threads', '2')), reps = Number(flag('--reps', '15'));
const dist = resolve(flag('--dist', DIST));
process.env.RESNET_TS_THREADS = String(threads);
const lib = await import(`${dist}/index.js`);
const { fusedConvBnAct } = await import(`${dist}/fusion/conv-bn.js`);
lib.setNumThreads(threads);

const m = lib.models[name]();
m.eval();
const x = new lib.Tensor(Float32Array.from({ length: 3 * 224 * 224 }, (_, i) => Math.sin(i)), [1, 3, 224, 224]);
const full = () => lib.withArena(() => lib.noGrad(() => m.forward(x)));

// The convs in forward order with the input each saw (hooks make the modules run unfused: shapes only).
const mods = new Map(m.namedModules());
const seen = [];
const handles = [];
for (const [path, mod] of mods) {
  if (mod.constructor.name !== 'Conv2d') continue;
  handles.push(mod.registerForwardHook((_m, input, output) => {
    seen.push({ path, conv: mod, x: new lib.Tensor(shared(input.data), input.shape), out: output.shape });
  }));
}
lib.noGrad(() => m.forward(x));
for (const h of handles) h.remove();

// BN, residual and ReLU as the model's forward hands them to convBnAct.
const layers = seen.map((s) => {
  const dot = s.path.lastIndexOf('.'), parent = dot < 0 ? '' : s.path.slice(0, dot);
  const leaf = s.path.slice(s.path.lastIndexOf('.') + 1);
  let bn, relu, residual = null;
  if (leaf === '0' && parent.endsWith('downsample')) {
    bn = mods.get(`${parent}.1`);
    relu = false;
  } else {
    bn = mods.get(`${parent ? `${parent}.` : ''}bn${leaf.slice(4)}`);
    if (bn === undefined) throw new Error(`no BatchNorm found for ${s.path}`);
    const last = (name === 'resnet50' || name === 'resnet101' || name === 'resnet152') ? 'conv3' : 'conv2';
    relu = true;
    if (leaf === last) residual = new lib.Tensor(shared(Float32Array.from({ length: s.out.reduce((a, b) => a * b) }, (_, i) => Math.cos(i))), s.out);
  }
  const c = s.conv;
  const key = `${c.kernelSize[0]}x${c.kernelSize[1]}${c.stride[0] > 1 ? `/${c.stride[0]}` : ''} ${c.inChannels}→${c.outChannels} @${s.x.shape[2]}${residual ? ' +res' : ''}${relu ? '' : ' (no relu)'}`;
  // The output goes back to the arena after each run (the next takes it again), as in a forward.
  return { key, run: () => lib.withArena(() => lib.noGrad(() => { fusedConvBnAct(s.x, c, bn, { residual, relu }); })), macs: c.outChannels * s.out[2] * s.out[3] * c.inChannels * c.kernelSize[0] * c.kernelSize[1] };
});

const groups = new Map();
for (const l of layers) {
  if (!groups.has(l.key)) groups.set(l.key, { key: l.key, run: l.run, macs: l.macs, count: 0 });
  groups.get(l.key).count++;
}
const time = (fn) => {
  for (let i = 0; i < 5; i++) fn();
  const cpu = [], wall = [];
  for (let r = 0; r < reps; r++) {
    const c0 = process.cpuUsage(), t0 = performance.now();
    fn();
    wall.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  cpu.sort((a, b) => a - b);
  wall.sort((a, b) => a - b);
  return { cpu: cpu[0], wall: wall[0], cpuMed: cpu[reps >> 1] };
};
const whole = time(full);
const rows = [];
let sumCpu = 0, sumWall = 0;
for (const g of groups.values()) {
  const t = time(g.run);
  sumCpu += t.cpu * g.count;
  sumWall += t.wall * g.count;
  rows.push([g.key, g.count, (2 * g.macs / 1e6).toFixed(0), t.cpu.toFixed(2), t.wall.toFixed(2), (t.cpu * g.count).toFixed(1), (t.wall * g.count).toFixed(1), (2 * g.macs / (t.wall * 1e6)).toFixed(1), (t.cpu / t.wall).toFixed(2)]);
}
console.log(`${name} eval 1×3×224×224 · threads ${threads} · min of ${reps} · ${dist} · load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
console.log(table(['conv (fused)', 'count', 'MFLOP', 'CPU ms', 'wall ms', 'Σ CPU', 'Σ wall', 'GFLOP/s wall', 'CPU/wall'], rows));
console.log(`convs: Σ CPU ${sumCpu.toFixed(1)} ms, Σ wall ${sumWall.toFixed(1)} ms · whole forward: CPU ${whole.cpu.toFixed(1)} (median ${whole.cpuMed.toFixed(1)}), wall ${whole.wall.toFixed(1)} ms · rest: CPU ${(whole.cpu - sumCpu).toFixed(1)}, wall ${(whole.wall - sumWall).toFixed(1)} ms`);
process.exit(0);
