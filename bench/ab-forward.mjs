// Two builds' forward convolutions and tfjs-wasm's on the layer-table shapes (shapes.mjs), taking turns call by call
// in one process (so a loaded machine disturbs all three alike), after checking that the two builds give the same
// bits (or how many outputs differ):
//   node bench/ab-forward.mjs OLD_DIST NEW_DIST [--filter a,b] [--reps R] [--threads N] [--no-tfjs-wasm] [--fused]
// Prints min / median process CPU ms per call (GFLOP/s of the min), new/old and tfjs-wasm/ours by min. --fused times
// conv2dForwardFused (scale, shift, ReLU) instead of conv2dForward. One thread unless --threads.
import { convMacs, convParams, LAYERS } from './shapes.mjs';
import { loadBuilds, permute4, randomArray, shared } from './lib.mjs';

const args = process.argv.slice(2);
const flag = (name, dflt) => {
  const i = args.indexOf(name);
  return i < 0 ? dflt : args[i + 1];
};
if (args.length < 2 || args[0].startsWith('--') || args[1].startsWith('--')) {
  console.error('usage: node bench/ab-forward.mjs OLD_DIST NEW_DIST [--filter a,b] [--reps R] [--threads N] [--no-tfjs-wasm] [--fused]');
  process.exit(2);
}
const threads = Number(flag('--threads', '1')), reps = Number(flag('--reps', '21'));
const filters = String(flag('--filter', '')).toLowerCase().replaceAll('->', '→').split(',').filter((f) => f !== '');
const fused = args.includes('--fused');
process.env.RESNET_TS_THREADS = String(threads);

const builds = await loadBuilds(args.slice(0, 2), { lib: 'index.js', conv: 'kernels/conv2d.js' }, { threads });
const kernels = builds.map((b) => b.conv);
let tf = null;
if (!args.includes('--no-tfjs-wasm')) {
  const { loadTfjs, loadTfjsWasm } = await import('./tfjs.mjs');
  ({ tf } = await loadTfjs());
  const w = await loadTfjsWasm(tf);
  if (!w.ok) throw new Error(w.note);
  await tf.setBackend('wasm');
}
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

console.log(`threads ${threads} · ${fused ? 'conv2dForwardFused' : 'conv2dForward'} · process CPU ms min / median of ${reps} (GFLOP/s of the min) · load average ${(await import('node:os')).loadavg().map((l) => l.toFixed(1)).join(' ')}`);
for (const s of LAYERS) {
  if (filters.length > 0 && !filters.some((f) => s.name.toLowerCase().includes(f))) continue;
  const p = convParams(s);
  // x, w and y in shared memory, as a model hands them to the kernels (lib.mjs, shared).
  const x = shared(randomArray(p.n * p.c * p.h * p.w, 1)), w = shared(randomArray(p.o * p.c * p.kh * p.kw, 2, -0.1, 0.1));
  const ep = { scale: new Float64Array(p.o).fill(1.5), shift: new Float64Array(p.o).fill(0.25), relu: true };
  const ys = kernels.map(() => shared(new Float32Array(p.n * p.o * p.oh * p.ow)));
  const fns = kernels.map((k, i) => (fused ? () => k.conv2dForwardFused(ys[i], x, w, null, p, ep) : () => k.conv2dForward(ys[i], x, w, null, p)));
  for (const fn of fns) fn();
  let diff = 0;
  for (let i = 0; i < ys[0].length; i++) if (!Object.is(ys[0][i], ys[1][i])) diff++;
  let tx = null, tw = null;
  if (tf !== null) {
    tx = tf.tensor4d(permute4(x, [p.n, p.c, p.h, p.w], [0, 2, 3, 1]), [p.n, p.h, p.w, p.c]);
    tw = tf.tensor4d(permute4(w, [p.o, p.c, p.kh, p.kw], [2, 3, 1, 0]), [p.kh, p.kw, p.c, p.o]);
    fns.push(() => tf.conv2d(tx, tw, [p.strideH, p.strideW], p.padH, 'NHWC').dispose());
  }
  // Ten warm-up calls each (V8 tiers the kernels up), then the calls in turns, in a rotating order.
  for (const fn of fns) for (let i = 0; i < 10; i++) fn();
  const t = fns.map(() => []);
  for (let r = 0; r < reps; r++) {
    for (let k = 0; k < fns.length; k++) {
      const i = (r + k) % fns.length;
      const c0 = cpu();
      fns[i]();
      t[i].push(cpu() - c0);
    }
  }
  const [o, n, peer] = t.map((a) => {
    a.sort((u, v) => u - v);
    return { min: a[0], med: a[a.length >> 1] };
  });
  const flop = (2 * convMacs(p)) / 1e6;
  const fmt = (m) => `${m.min.toFixed(3)} / ${m.med.toFixed(3)} (${(flop / m.min).toFixed(1)})`;
  console.log(`${s.name.padEnd(24)} old ${fmt(o)}  new ${fmt(n)}  new/old ${(n.min / o.min).toFixed(3)}` +
    (peer ? `  tfjs-wasm ${fmt(peer)}  tfjs-wasm/new ${(peer.min / n.min).toFixed(2)}× tfjs-wasm/old ${(peer.min / o.min).toFixed(2)}×` : '') +
    (diff === 0 ? '  same bits' : `  ${diff} outputs differ`));
  tx?.dispose();
  tw?.dispose();
}
process.exit(0);
