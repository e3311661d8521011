// Image loading throughput vs training consumption: images/s of the ImageFolder pipeline at 224×224 (JPEG decode →
// RandomResizedCrop(224) → RandomHorizontalFlip → ToTensor → Normalize, batched) with 0, 1 and 2 DataLoader
// workers, next to the images/s a ResNet-18 training step consumes at batch 8 and 16. The loader should manage at
// least 2× what the step consumes.
//
//   node bench/loader.mjs [--threads N] [--images N]     (after npm run build; also part of npm run bench)
//
// Input: test/fixtures/predict/photo.jpg (320×240 baseline JPEG) copied into a temporary 4-class folder; ImageNet
// photos average about 400×350, so decoding them costs ~1.8× more per image than here.

import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { BENCH_DIR, DIST, median, table } from './lib.mjs';

const PHOTO = join(BENCH_DIR, '..', 'test', 'fixtures', 'predict', 'photo.jpg');

/** Loader rows and train-step rows; `log` gets progress lines. */
export async function benchLoader(lib, opts, log) {
  const { data, models, nn, optim } = lib;
  const T = data.imageTransforms;
  const nImages = opts.loaderImages ?? (opts.quick ? 48 : 96);
  const root = mkdtempSync(join(tmpdir(), 'resnet-ts-bench-loader-'));
  try {
    for (let i = 0; i < nImages; i++) {
      const dir = join(root, `class${i % 4}`);
      mkdirSync(dir, { recursive: true });
      cpSync(PHOTO, join(dir, `${String(i).padStart(4, '0')}.jpg`));
    }
    const transform = T.compose([T.randomResizedCrop(224), T.randomHorizontalFlip(), T.toTensor(), T.normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])]);
    const ds = new data.ImageFolder(root, { transform });
    const loaderRows = [];
    for (const numWorkers of [0, 1, 2]) {
      const loader = new data.DataLoader(ds, { batchSize: 16, shuffle: true, numWorkers, prefetch: 2 });
      const runs = [];
      for (let epoch = 0; epoch < (opts.quick ? 2 : 3); epoch++) {
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        let n = 0;
        for (const b of loader.epochBatches(epoch)) n += b.y.length;
        const wall = (performance.now() - t0) / 1000;
        const cpu = (() => { const c = process.cpuUsage(c0); return (c.user + c.system) / 1e6; })();
        runs.push({ wall, cpu, n });
      }
      // the first epoch includes starting the workers and compiling: the median of the rest
      const rest = runs.slice(1);
      const wall = median(rest.map((r) => r.wall));
      const cpu = median(rest.map((r) => r.cpu));
      loaderRows.push({ numWorkers, images: rest[0].n, wall, cpu, perSecond: rest[0].n / wall, cpuMsPerImage: (1000 * cpu) / rest[0].n, firstEpochWall: runs[0].wall });
      log(`loader numWorkers ${numWorkers}: ${(rest[0].n / wall).toFixed(1)} images/s (wall), ${((1000 * cpu) / rest[0].n).toFixed(1)} CPU-ms/image`);
    }
    const stepRows = [];
    for (const batch of [8, 16]) {
      lib.manualSeed(0);
      const model = models.resnet18({ numClasses: 4 });
      model.train();
      const opt = new optim.SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
      const x = lib.randn([batch, 3, 224, 224]);
      const y = Int32Array.from({ length: batch }, (_, i) => i % 4);
      const step = () => {
        opt.zeroGrad();
        const loss = nn.functional.crossEntropy(model.forward(x), y);
        loss.backward();
        opt.step();
        return loss.item();
      };
      if (!Number.isFinite(step())) throw new Error('train step gave a non-finite loss'); // warm-up, and a check
      const walls = [];
      const cpus = [];
      for (let k = 0; k < (opts.quick ? 2 : 3); k++) {
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        step();
        walls.push((performance.now() - t0) / 1000);
        const c = process.cpuUsage(c0);
        cpus.push((c.user + c.system) / 1e6);
      }
      const wall = median(walls);
      stepRows.push({ batch, wall, cpu: median(cpus), perSecond: batch / wall });
      log(`ResNet-18 train step batch ${batch}: ${wall.toFixed(2)} s wall (${(batch / wall).toFixed(2)} images/s)`);
    }
    return { nImages, loaderRows, stepRows };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

export function loaderTable(r, threads) {
  const consume = Math.max(...r.stepRows.map((s) => s.perSecond));
  const rows = [
    ...r.loaderRows.map((l) => [`loader, ${l.numWorkers} worker${l.numWorkers === 1 ? '' : 's'}`, l.perSecond.toFixed(1), l.cpuMsPerImage.toFixed(1), `${(l.perSecond / consume).toFixed(1)}×`]),
    ...r.stepRows.map((s) => [`ResNet-18 train step, batch ${s.batch}, ${threads} threads`, s.perSecond.toFixed(2), ((1000 * s.cpu) / s.batch).toFixed(0), '—']),
  ];
  const ok = r.loaderRows.every((l) => l.perSecond >= 2 * consume);
  return `${table(['', 'images/s (wall)', 'CPU-ms/image', 'loader ÷ step'], rows)}\n\n`
    + `${r.nImages} images of 320×240 per epoch, batch 16; median of the epochs after the first. loader ÷ step divides by the faster step (${consume.toFixed(2)} images/s).\n`
    + `Loader ≥ 2× the step's consumption with 0, 1 and 2 workers: ${ok ? 'yes' : 'NO'}.`;
}

// standalone
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const argv = process.argv.slice(2);
  const opt = (name) => { const i = argv.indexOf(name); return i >= 0 ? Number(argv[i + 1]) : undefined; };
  const threads = opt('--threads') ?? 2;
  process.env.RESNET_TS_THREADS = String(threads);
  const lib = await import(pathToFileURL(join(DIST, 'index.js')).href);
  lib.setNumThreads(threads);
  const r = await benchLoader(lib, { quick: argv.includes('--quick'), loaderImages: opt('--images') }, console.log);
  console.log(`\n${loaderTable(r, threads)}`);
  process.exit(0);
}
