// Memory and speed of many nets trained one after another in one process (what `resnet-ts degradation --seeds`
// does), on synthetic 28×28 data so that it needs no download:
//   node bench/degradation-memory.mjs [DIST] [seeds] [iterations] [threads]
// For each seed: the degradation experiment with depths 8 and 14 (plain and residual, widths 16/32/64, batch 128),
// then one line: the seed's CPU seconds, RSS, arrayBuffers and heap in MB (no forced GC), and the arena's pool.
import { resolve } from 'node:path';

const [, , dist = 'dist', seeds = '3', iterations = '16', threads = '2'] = process.argv;
process.env.RESNET_TS_THREADS = threads;
const lib = await import(resolve(dist, 'index.js'));
lib.setNumThreads(Number(threads));
const arena = await import(resolve(dist, 'fusion/arena.js'));
const train = lib.data.syntheticDataset({ n: 1024, channels: 1, size: 28, seed: 1 });
const test = lib.data.syntheticDataset({ n: 512, channels: 1, size: 28, seed: 2 });
const MB = (b) => (b / 2 ** 20).toFixed(0);
for (let seed = 0; seed < Number(seeds); seed++) {
  const u0 = process.cpuUsage();
  const r = lib.experiments.degradation({
    train, test, mean: [0.5], std: [0.25], depths: [8, 14], iterations: Number(iterations), evalEvery: 8, seed,
    testImages: 512, trainEvalImages: 512, probeImages: 128,
  });
  const u = process.cpuUsage(u0);
  const m = process.memoryUsage();
  console.log(`${dist} seed ${seed}: ${((u.user + u.system) / 1e6).toFixed(1)} CPU s (nets ${r.nets.map((n) => n.seconds.toFixed(1)).join(', ')} wall s); rss ${MB(m.rss)} arrayBuffers ${MB(m.arrayBuffers)} heap ${MB(m.heapUsed)} MB; arena pool ${MB(arena.arenaBytes())} MB`);
}
lib.setNumThreads(1);
