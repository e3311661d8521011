// A fresh process's first eval forwards (1×3×224×224, noGrad, no arena): what a one-image `predict` pays, the
// wasm modules' compilation and the JavaScript's first, unoptimized runs included. Prints the wall ms of four
// forwards in a row. Run it several times, alternating builds: each run is one sample.
//   node bench/first-forward.mjs DIST [threads] [model]
import { resolve } from 'node:path';

const d = resolve(process.argv[2] ?? 'dist'), th = process.argv[3] ?? '2', name = process.argv[4] ?? 'resnet50';
process.env.RESNET_TS_THREADS = th;
const lib = await import(`${d}/index.js`);
lib.setNumThreads(Number(th));
const m = lib.models[name]();
m.eval();
const x = new lib.Tensor(Float32Array.from({ length: 3 * 224 * 224 }, (_, i) => Math.sin(i)), [1, 3, 224, 224]);
const t = [];
for (let i = 0; i < 4; i++) {
  const t0 = performance.now();
  lib.noGrad(() => m.forward(x));
  t.push(performance.now() - t0);
}
console.log(`${d} ${name} threads ${th}: first forwards ${t.map((v) => v.toFixed(0)).join(', ')} ms`);
process.exit(0);
