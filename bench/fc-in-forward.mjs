// The fc's call inside whole ResNet-50 eval forwards (1×3×224×224, withArena + noGrad): the duration of each
// 'matmul.gemv' or 'sgemm' parallelFor (setParallelTracer), median and min after the first 5 forwards, and the first 3.
//   node bench/fc-in-forward.mjs DIST [threads]
import { resolve } from 'node:path';

const d = resolve(process.argv[2] ?? 'dist'), th = process.argv[3] ?? '1';
process.env.RESNET_TS_THREADS = th;
const lib = await import(`${d}/index.js`);
const par = await import(`${d}/kernels/parallel.js`);
lib.setNumThreads(Number(th));
const m = lib.models.resnet50(); m.eval();
const x = new lib.Tensor(Float32Array.from({ length: 3 * 224 * 224 }, (_, i) => Math.sin(i)), [1, 3, 224, 224]);
const t = [];
par.setParallelTracer((task, pooled, t0, t1) => { if (task.kernel === 'fc.rows' || task.kernel === 'matmul.gemv' || task.kernel === 'sgemm') t.push(t1 - t0); });
for (let i = 0; i < 40; i++) lib.withArena(() => lib.noGrad(() => m.forward(x)));
const s = t.slice(5).sort((a, b) => a - b);
console.log(d, th, 'median', s[s.length >> 1].toFixed(2), 'min', s[0].toFixed(2), 'first', t.slice(0, 3).map((v) => v.toFixed(1)).join(' '));
process.exit(0);
