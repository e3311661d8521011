// Two builds' fused batch-norm training kernels (relu(bn(x) + residual) forward and its backward), alternately in one
// process: `node bench/ab-bn.mjs OLD_DIST NEW_DIST [fmnist|cifar|r18] [threads] [reps]`. The shapes are the net's
// BN layers (with and without the residual, as its blocks use them), on shared buffers as in a training step
// (withTrainingStep's); the NEW build gets the forward's affine map when it takes one. Prints the median process CPU
// ms (all threads) and the fastest wall ms (the least disturbed run on a loaded machine) of each layer kind's forward
// and backward, and the net's total per step. Threads "1,2"
// gives OLD one thread and NEW two (two copies of one build compare thread counts). AB_RESIDENT=0,1 puts NEW's
// tensors in its resident wasm memory (where its training step puts them; 1,1 both builds', default 0,0: plain
// SharedArrayBuffers).
import { loadBuilds } from './lib.mjs';

const [, , oldDist, newDist, kase = 'fmnist', threads = '2', reps = '15'] = process.argv;
if (!oldDist || !newDist) {
  console.error('usage: node bench/ab-bn.mjs OLD_DIST NEW_DIST [fmnist|cifar|r18] [threads] [reps]');
  process.exit(2);
}
const nThreads = threads.split(',').map(Number);
process.env.RESNET_TS_THREADS = String(Math.max(...nThreads));
const builds = (await loadBuilds([oldDist, newDist], { lib: 'index.js', optim: 'kernels/optim.js', bn: 'kernels/batchnorm.js' },
  { threads: (i) => nThreads[Math.min(i, nThreads.length - 1)] }))
  .map(({ lib, optim, bn }) => ({ lib, bn, resident: optim.residentBuffer ?? (() => null) }));
const residentFlags = (process.env.AB_RESIDENT ?? '0,0').split(',').map((v) => v === '1');
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
// [n, c, hw, count per step with a residual, count without]
const CASES = {
  fmnist: [[128, 16, 784, 3, 4], [128, 32, 196, 3, 3], [128, 64, 49, 3, 3]],
  cifar: [[32, 16, 1024, 3, 4], [32, 32, 256, 3, 3], [32, 64, 64, 3, 3]],
  r18: [[8, 64, 256, 2, 3], [8, 128, 64, 2, 2], [8, 256, 16, 2, 2], [8, 512, 4, 2, 2]],
};
const shared = (len, f) => Float32Array.from({ length: len }, f).map((v) => v); // filled below into shared memory
const sab = (a, i = 0) => {
  const s = (residentFlags[i] ? builds[i].resident(a.length) : null) ?? new Float32Array(new SharedArrayBuffer(a.length * 4));
  s.set(a);
  return s;
};
let seed = 1;
const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
const med = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
const totals = [[0, 0, 0, 0], [0, 0, 0, 0]];
console.log(`| ${kase} layer (n×c×hw) | residual | old fwd CPU | new fwd CPU | old bwd CPU | new bwd CPU | old fwd wall min | new fwd wall min | old bwd wall min | new bwd wall min |`);
console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const [n, c, hw, withRes, without] of CASES[kase]) {
  for (const res of [true, false]) {
    const len = n * c * hw;
    const x0 = shared(len, () => rnd() + 0.2), r0 = res ? shared(len, rnd) : null, dy0 = shared(len, rnd);
    const w = Float32Array.from({ length: c }, () => 1 + 0.2 * rnd()), b = Float32Array.from({ length: c }, () => 0.1 * rnd());
    const p = { n, c, hw, eps: 1e-5 };
    const runs = builds.map(() => ({ f: [], b: [], fw: [], bw: [] }));
    const outs = builds.map((_, i) => ({
      x: sab(x0, i), r: r0 ? sab(r0, i) : null, dy: sab(dy0, i),
      y: sab(new Float32Array(len), i), dx: sab(new Float32Array(len), i), dres: res ? sab(new Float32Array(len), i) : null,
    }));
    for (let k = 0; k < Number(reps) + 2; k++) {
      builds.forEach(({ bn }, i) => {
        const { x, r, dy, y, dx, dres } = outs[i];
        const mean = new Float32Array(c), invstd = new Float32Array(c), vu = new Float32Array(c);
        const affine = !res ? new Float64Array(2 * c) : null;
        let c0 = cpu(), w0 = performance.now();
        bn.batchNormTrainForward(y, mean, invstd, vu, x, w, b, p, { residual: r, relu: true, affine });
        const cf = cpu() - c0, wf = performance.now() - w0;
        const dw = new Float32Array(c), db = new Float32Array(c);
        c0 = cpu();
        w0 = performance.now();
        bn.batchNormBackward(dx, dw, db, dy, x, mean, invstd, w, p, { reluOut: y, affine, dresidual: dres, overwriteDx: true });
        const cb = cpu() - c0, wb = performance.now() - w0;
        if (k >= 2) {
          runs[i].f.push(cf);
          runs[i].b.push(cb);
          runs[i].fw.push(wf);
          runs[i].bw.push(wb);
        }
      });
    }
    const m = runs.map((s) => [med(s.f), med(s.b), Math.min(...s.fw), Math.min(...s.bw)]);
    const count = res ? withRes : without;
    m.forEach((v, i) => v.forEach((t, j) => (totals[i][j] += count * t)));
    for (let i = 0; i < len; i++) if (outs[0].dx[i] !== outs[1].dx[i] && !(outs[0].dx[i] !== outs[0].dx[i])) throw new Error(`dx differs at ${i}`);
    console.log(`| ${n}×${c}×${hw} | ${res ? 'yes' : 'no'} | ${m[0][0].toFixed(2)} | ${m[1][0].toFixed(2)} | ${m[0][1].toFixed(2)} | ${m[1][1].toFixed(2)} | ${m[0][2].toFixed(2)} | ${m[1][2].toFixed(2)} | ${m[0][3].toFixed(2)} | ${m[1][3].toFixed(2)} |`);
  }
}
console.log(`| per step (layers × count) | | ${totals[0][0].toFixed(1)} | ${totals[1][0].toFixed(1)} | ${totals[0][1].toFixed(1)} | ${totals[1][1].toFixed(1)} | ${totals[0][2].toFixed(1)} | ${totals[1][2].toFixed(1)} | ${totals[0][3].toFixed(1)} | ${totals[1][3].toFixed(1)} |`);
for (const { lib } of builds) lib.setNumThreads(1);
