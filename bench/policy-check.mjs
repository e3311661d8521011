// Does the Winograd cost model pick the faster path? For every 3×3 stride-1 conv layer of four training nets, in the
// forward and the input gradient, times the layer with Winograd forced ('always') and off ('never', im2col + GEMM or,
// for ≤ 4 input channels, the direct kernel), alternately in one process, and prints which one the dispatch chose
// ('auto') beside the faster one:
//   node bench/policy-check.mjs [DIST] [reps] [net,...]          (nets: deg56, fmnist, cifar, r18; default all)
// The other layers (stride 2, 1×1, 7×7) have no Winograd choice. One thread (RESNET_TS_THREADS=1 unless set); median
// process CPU ms per call after one warm-up round. The two paths' outputs are compared first (max |Δ| ≤ 1e-4 ·
// max |y|), and only agreeing layers are timed.
import { resolve } from 'node:path';
import { DIST, median, randomArray } from './lib.mjs';

const [, , distArg = DIST, repsArg = '9', netsArg = 'deg56,fmnist,cifar,r18'] = process.argv;
process.env.RESNET_TS_THREADS ??= '1';
const dist = resolve(distArg);
const fwd = await import(resolve(dist, 'kernels/conv2d/forward.js'));
const bwd = await import(resolve(dist, 'kernels/conv2d/backward.js'));
const plan = await import(resolve(dist, 'kernels/conv2d/plan.js'));
const direct = await import(resolve(dist, 'kernels/conv2d/direct.js'));
const reps = Number(repsArg);

const P = (n, c, h, o) => ({ n, c, h, w: h, o, kh: 3, kw: 3, strideH: 1, strideW: 1, padH: 1, padW: 1, dilH: 1, dilW: 1, groups: 1, oh: h, ow: h });
// [name, params, count]: each net's 3×3 stride-1 convs (bench/ab-backward.mjs has the whole nets).
const NETS = {
  // The degradation experiment's ResNet-56: widths 4/8/16 on Fashion-MNIST pooled to 14×14, batch 128.
  deg56: [['stem 1→4 @14', P(128, 1, 14, 4), 1], ['4→4 @14', P(128, 4, 14, 4), 18], ['8→8 @7', P(128, 8, 7, 8), 17], ['16→16 @4', P(128, 16, 4, 16), 17]],
  // ResNet-20 on Fashion-MNIST, 128×1×28×28.
  fmnist: [['stem 1→16 @28', P(128, 1, 28, 16), 1], ['16→16 @28', P(128, 16, 28, 16), 6], ['32→32 @14', P(128, 32, 14, 32), 5], ['64→64 @7', P(128, 64, 7, 64), 5]],
  // ResNet-20 on CIFAR-10, 32×3×32×32.
  cifar: [['stem 3→16 @32', P(32, 3, 32, 16), 1], ['16→16 @32', P(32, 16, 32, 16), 6], ['32→32 @16', P(32, 32, 16, 32), 5], ['64→64 @8', P(32, 64, 8, 64), 5]],
  // ResNet-18 (10 classes) at 8×3×32×32 (the stem is 7×7/2).
  r18: [['64→64 @8', P(8, 64, 8, 64), 4], ['128→128 @4', P(8, 128, 4, 128), 3], ['256→256 @2', P(8, 256, 2, 256), 3], ['512→512 @1', P(8, 512, 1, 512), 3]],
};

const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** What the dispatch runs for p in this direction with config.winograd 'auto'. */
function chosen(p, dir, a, w) {
  if (dir === 'forward') return direct.directForward(p) ? 'direct' : plan.forwardWinograd(p, a) !== null ? 'winograd' : 'im2col';
  return direct.directBackwardInput(p) ? 'direct' : plan.backwardInputWinograd(p, a, w) !== null ? 'winograd' : 'im2col';
}

console.log(`policy check, ${process.env.RESNET_TS_THREADS} thread(s), CPU ms per call (median of ${reps}), ${dist}`);
console.log('| net | layer | count | direction | winograd | other | other path | faster | model | lost ms × count |');
console.log('|---|---|---:|---|---:|---:|---|---|---|---:|');
let wrong = 0;
for (const net of netsArg.split(',')) {
  let lost = 0;
  for (const [name, p, count] of NETS[net]) {
    const x = randomArray(p.n * p.c * p.h * p.w, 1), w = randomArray(p.o * p.c * 9, 2), dy = randomArray(p.n * p.o * p.oh * p.ow, 3);
    for (const dir of ['forward', 'input']) {
      if (dir === 'input' && name.startsWith('stem')) continue; // no input gradient for the stem
      const out = dir === 'forward' ? new Float32Array(dy.length) : new Float32Array(x.length);
      const run = (policy) => {
        const old = plan.setWinogradPolicy(policy);
        try {
          if (dir === 'forward') fwd.conv2dForward(out, x, w, null, p);
          else {
            out.fill(0);
            bwd.conv2dBackwardInput(out, dy, w, p);
          }
        } finally {
          plan.setWinogradPolicy(old);
        }
      };
      const model = chosen(p, dir, dir === 'forward' ? x : dy, w);
      const other = direct[dir === 'forward' ? 'directForward' : 'directBackwardInput'](p) ? 'direct' : 'im2col';
      run('always');
      const a = out.slice();
      run('never');
      let d = 0, m = 0;
      for (let i = 0; i < a.length; i++) {
        d = Math.max(d, Math.abs(a[i] - out[i]));
        m = Math.max(m, Math.abs(out[i]));
      }
      if (!(d <= 1e-4 * m)) {
        console.log(`| ${net} | ${name} | ${count} | ${dir} | MISMATCH max|Δ|/max|y| ${(d / m).toExponential(1)} | | | | | |`);
        process.exitCode = 1;
        continue;
      }
      const t = [[], []], policies = ['always', 'never'];
      for (let r = 0; r < reps + 1; r++) {
        for (let k = 0; k < 2; k++) {
          const i = r & 1 ? 1 - k : k;
          const c0 = cpu();
          run(policies[i]);
          if (r > 0) t[i].push(cpu() - c0);
        }
      }
      const [tw, to] = t.map(median);
      const faster = tw < to ? 'winograd' : other;
      const ok = model === faster;
      const loss = ok ? 0 : Math.abs(tw - to) * count;
      lost += loss;
      if (!ok) wrong++;
      console.log(`| ${net} | ${name} | ${count} | ${dir} | ${tw.toFixed(2)} | ${to.toFixed(2)} | ${other} | ${faster} | ${model}${ok ? '' : ' ✗'} | ${loss.toFixed(1)} |`);
    }
  }
  console.log(`| ${net} | all | | | | | | | | ${lost.toFixed(1)} |`);
}
console.log(`${wrong} choice(s) differ from the measured faster path (a near tie can go either way run to run).`);
