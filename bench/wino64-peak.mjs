// How close the float64 Winograd GEMM (`gemm64c`, the same k loop as `wino64`: 4 output channels × 4-tile panels,
// f64x2 multiplies and adds, no FMA) runs to the core's peak, one thread:
//   node bench/wino64-peak.mjs [DIST[,DIST2…]] [--peak MADDS_PER_CYCLE]
// Per k (input channels: 16, 32, 64, as Fashion-MNIST ResNet-20's layers), the min and median process CPU time per
// float64 multiply-add (ps) over 15 rounds, the builds taking turns; the clock measured by a wasm loop of dependent
// i32 adds (1 cycle each; process CPU time, the max of 15 runs: the clock the core reached, not a nominal one); and the share of a
// peak of --peak float64 multiply-adds per cycle (default 4: two f64x2 multiplies and two f64x2 adds per cycle, AMD
// Zen 4/5's two FP multiply and two FP add pipes; 2 where adds and multiplies share two ports).
import { resolve } from 'node:path';
import { DIST, cpuMs } from './lib.mjs';

const args = process.argv.slice(2);
const at = args.indexOf('--peak');
const peak = at >= 0 ? Number(args.splice(at, 2)[1]) : 4;
const dists = (args[0] ?? DIST).split(',');
const builds = [];
for (const d of dists) {
  builds.push({
    sg: await import(resolve(d, 'kernels/wasm/sgemm.js')),
    wi: await import(resolve(d, 'kernels/wasm/winograd.js')),
    enc: await import(resolve(d, 'kernels/wasm/encoder.js')),
  });
}

// The clock: 32 dependent i32 adds per iteration of a 10⁷-iteration loop.
const { i32, local, forLoop, Locals, ValType, encodeModule } = builds[0].enc;
const L = new Locals(1);
const it = L.add(ValType.i32), x = L.add(ValType.i32);
const chainBody = [];
for (let k = 0; k < 32; k++) chainBody.push(local.set(x, i32.add(local.get(x), local.get(0))));
const chain = new WebAssembly.Instance(new WebAssembly.Module(encodeModule([{
  name: 'chain', params: [ValType.i32], results: [ValType.i32], locals: L.types,
  body: [forLoop(it, i32.const(0), i32.const(1e7), 1, ...chainBody), local.get(x)],
}])), { env: { mem: new WebAssembly.Memory({ initial: 1 }) } }).exports.chain;
let ghz = 0;
for (let r = 0; r < 15; r++) {
  const t = cpuMs();
  chain(r + 1);
  ghz = Math.max(ghz, 32e7 / (cpuMs() - t) / 1e6);
}
const np = 13; // 4-tile panels per call: a block of 49–52 tiles (Fashion-MNIST 16@28)
console.log(`clock ≈ ${ghz.toFixed(2)} GHz (dependent i32 adds), peak ${peak} float64 multiply-adds per cycle = ${(1000 / (ghz * peak)).toFixed(1)} ps each\n`);
console.log(`| k | ${dists.map((d) => `${d}: ps min / median (% of peak)`).join(' | ')} |\n|---:|${dists.map(() => '---|').join('')}`);
for (const k of [16, 32, 64]) {
  const res = builds.map(() => []);
  for (let r = 0; r < 15; r++) {
    for (let j = 0; j < builds.length; j++) {
      const bi = (j + r) % builds.length, { sg, wi } = builds[bi];
      const g = sg.simdGemm(64 << 20);
      const wg = wi.simdWinograd();
      // U (4 channels × k, 36 ξ-slices), then V (np panels), then the M blocks: byte offsets as the conv uses them.
      const xiU = 32 * k + 64, vb = 36 * xiU, xiV = 32 * k * np + 64, mo = vb + 36 * xiV;
      for (let i = 0; i < mo / 8; i++) g.h[i] = Math.sin(i);
      const reps = Math.ceil(2e8 / (36 * 16 * k * np));
      const c0 = cpuMs();
      for (let t = 0; t < reps; t++) wg.gemm64c(np, k, 0, xiU, vb, 32 * k, xiV, mo, 0);
      res[bi].push(((cpuMs() - c0) * 1e9) / (reps * 36 * 16 * k * np));
    }
  }
  const cells = res.map((v) => {
    v.sort((a, b) => a - b);
    return `${v[0].toFixed(1)} / ${v[v.length >> 1].toFixed(1)} (${((100 * 1000) / (ghz * peak * v[0])).toFixed(0)}%)`;
  });
  console.log(`| ${k} | ${cells.join(' | ')} |`);
}
