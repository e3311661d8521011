// The fc's call inside whole ResNet-50 eval forwards (1×3×224×224, withArena + noGrad) in a fresh process: the
// duration of each parallelFor that computes it ('fc.rows', or the 'sgemm' of a build without it: k = 2048 with
// 1000 rows or columns; setParallelTracer), the first 3, then median and min after the first 5.
//   node bench/fc-in-forward.mjs DIST [threads 1] [forwards 40]
import { resolve } from 'node:path';

const d = resolve(process.argv[2] ?? 'dist'), th = process.argv[3] ?? '1', forwards = Number(process.argv[4] ?? '40');
process.env.RESNET_TS_THREADS = th;
const lib = await import(`${d}/index.js`);
const par = await import(`${d}/kernels/parallel.js`);
lib.setNumThreads(Number(th));
const m = lib.models.resnet50(); m.eval();
const x = new lib.Tensor(Float32Array.from({ length: 3 * 224 * 224 }, (_, i) => Math.sin(i)), [1, 3, 224, 224]);
const t = [];
const isFc = (task) => task.kernel === 'fc.rows' ||
  (task.kernel === 'sgemm' && task.params.k === 2048 && (task.params.m === 1000 || task.params.n === 1000));
par.setParallelTracer((task, pooled, t0, t1) => { if (isFc(task)) t.push(t1 - t0); });
for (let i = 0; i < forwards; i++) lib.withArena(() => lib.noGrad(() => m.forward(x)));
const s = t.slice(5).sort((a, b) => a - b);
const rest = s.length > 0 ? ` · after 5: median ${s[s.length >> 1].toFixed(2)}, min ${s[0].toFixed(2)}` : '';
console.log(`${d} threads ${th}: fc ms, first ${t.slice(0, 3).map((v) => v.toFixed(1)).join(', ')}${rest}`);
process.exit(0);
