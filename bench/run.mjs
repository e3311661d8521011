// `npm run bench`: ResNet layer shapes and whole models, ours vs tfjs-core (CPU, wasm) and, when found, PyTorch.
// See bench/README.md. Flags: node bench/run.mjs --help

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import {
  BENCH_DIR, DIST, USAGE, cpuModel, findThreadControl, gitRevision, loadAverage, packageVersion, parseArgs,
} from './lib.mjs';

const lines = [];
const log = (s = '') => {
  lines.push(s);
  console.log(s);
};

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(e instanceof Error ? e.message : String(e));
    process.exit(2);
  }
  if (opts.help) {
    console.log(USAGE);
    return;
  }
  // Before the library is loaded: a thread pool may read this when its module is evaluated.
  if (opts.threads !== null) process.env.RESNET_TS_THREADS = String(opts.threads);

  const t0 = performance.now();
  const lib = await import('../dist/index.js');
  const kern = await import('../dist/kernels/conv2d.js');
  const featFile = join(DIST, 'kernels', 'wasm', 'features.js');
  const kernelInfo = existsSync(featFile) ? await import(featFile) : {};

  // Threads: the build's setNumThreads if it has one — with --threads N, else the library's own default count
  // (getNumThreads: RESNET_TS_THREADS or all cores) — and the count the kernels' backend then really uses.
  const threads = await setupThreads(opts);

  let tf = null, tfBuild = null, tfWasm = null;
  opts.tfjsGradients = false;
  if (opts.tfjs) {
    const { loadTfjs } = await import('./tfjs.mjs');
    const r = await loadTfjs();
    tf = r.tf;
    tfBuild = r.build;
    opts.tfjsGradients = r.gradients;
    if (r.note) console.log(`note: ${r.note}`);
    if (opts.tfjsWasm) {
      const { loadTfjsWasm } = await import('./tfjs.mjs');
      tfWasm = await loadTfjsWasm(tf);
      if (!tfWasm.ok) {
        console.log(`note: ${tfWasm.note}; tfjs-wasm not run`);
        opts.tfjsWasm = false;
      }
    }
  } else {
    opts.tfjsWasm = false;
  }

  // The PyTorch peer (optional): found now for the machine line, run before the sections that print its times.
  const T = opts.torch ? await import('./torch.mjs') : null;
  const torch = T ? T.findTorch() : { python: null, note: null };
  if (torch.note) console.log(`note: ${torch.note}`);

  const machine = {
    cpu: cpuModel(),
    cores: os.cpus().length,
    node: process.version,
    platform: `${os.platform()} ${os.arch()}`,
    threads: threads.desc,
    tfjs: tf ? `tfjs-core ${tf.version_core} + tfjs-backend-cpu ${packageVersion('@tensorflow/tfjs-backend-cpu')} (backend ${tf.getBackend()}, 1 thread; ${tfBuild})` : 'not run (--no-tfjs)',
    tfjsWasm: tfWasm?.ok ? `tfjs-backend-wasm ${tfWasm.version} (${tfWasm.simd ? 'SIMD' : 'no SIMD'}, 1 thread)` : 'not run',
    torch: torch.python ? `${torch.label}: torch ${torch.version} + torchvision ${torch.torchvision} (${torch.build}; ${torch.python}, set_num_threads(${threads.n}))` : opts.torch ? 'PyTorch peer not found' : 'PyTorch peer not run (--no-torch)',
    kernels: `${kernelInfo.kernelBackend ? kernelInfo.kernelBackend() : 'js'}${kernelInfo.usesFma?.() ? ' + FMA' : ''}`,
    resnetTs: JSON.parse(readFileSync(join(BENCH_DIR, '..', 'package.json'), 'utf8')).version,
    git: gitRevision(),
    loadavgStart: loadAverage(),
  };
  const date = new Date().toISOString();
  log(`machine: ${machine.cpu} · ${machine.cores} cores · node ${machine.node} · ${machine.platform} · threads ${machine.threads} · kernels ${machine.kernels} · ${machine.tfjs} · ${machine.tfjsWasm} · ${machine.torch}`);
  log(`date ${date} · git ${machine.git ?? '?'} · load average at start ${machine.loadavgStart} · flags: ${process.argv.slice(2).join(' ') || '(none)'}`);

  const result = { machine, date, flags: process.argv.slice(2), layers: null, models: null, memory: null, loader: null, torch: null };

  let peer = null;
  if (torch.python) {
    log(`\n## ${torch.label} (bench/torch-peer.py in a child process, set_num_threads(${threads.n}))`);
    peer = T.runTorch(torch, lib, opts, threads.n, log);
    if (peer.note) log(`note: ${peer.note}`);
    else log(`  ${peer.cases.length} cases in ${peer.seconds.toFixed(0)} s on ${peer.threads} PyTorch thread${peer.threads > 1 ? 's' : ''}`);
    result.torch = { python: torch.python, version: torch.version, torchvision: torch.torchvision, build: torch.build, ...peer };
  }

  if (opts.layers) {
    const { benchLayers, layerTable, TOL } = await import('./conv.mjs');
    log('\n## Layers (conv2d kernels; ImageNet shapes at batch 1, CIFAR ResNet-20 shapes at batch 32)');
    const r = await benchLayers(kern, tf, opts, threads, log);
    log('');
    log(layerTable(r.rows));
    log(`\nMFLOP = 2·MACs of the direct convolution (same for all three passes). ms = median wall time, min = fastest run, CPU = median process CPU ms per call (all threads).`);
    log(`Ours (every variant) and tfjs-wasm took turns, round by round; tfjs (CPU backend) was timed on its own after them. ours/tfjs = tfjs ms ÷ ours ms;`);
    log(`ours/tfjs-wasm = the median over rounds of tfjs-wasm's time ÷ ours in the same round (> 1: ours is faster); by CPU (one-thread rows) = tfjs-wasm CPU ÷ ours CPU.`);
    log(`check = max|Δ| / max|ref| against our naive float64 kernels (ours / tfjs); the tolerance is ${TOL}. ¹ tfjs timed once (one run took > ${opts.onceAbove} s).`);
    if (r.skipped.length) log(`Skipped: ${[...new Set(r.skipped.map((s) => s.why))].join('; ')} — ${r.skipped.map((s) => s.layer).join(', ')}.`);
    if (r.failed.length) log(`FAILED checks (not timed): ${r.failed.map((f) => `${f.layer} ${f.dir} [${f.variant}]: ${f.why}`).join('; ')}`);
    result.layers = r;
  }

  if (opts.models) {
    const { benchModels, modelTable } = await import('./models.mjs');
    log('\n## Whole models');
    const r = await benchModels(lib, tf, opts, log);
    if (peer?.cases) T.mergeTorch(peer, torch.label, r, null);
    log('');
    log(modelTable(r.rows));
    for (const n of r.notes) log(n);
    if (r.rows.some((x) => x.torch)) log(`${torch.label}: torchvision's model, eval mode under torch.no_grad(), ${peer.threads} thread${peer.threads > 1 ? 's' : ''}, timed in its own process before this table (its own weights; parameter counts checked equal); ours/PyTorch = PyTorch ms ÷ ours ms.`);
    result.models = r;
  }

  if (opts.train) {
    const { benchTrain, trainTable } = await import('./train.mjs');
    log('\n## Training steps by phase');
    const r = await benchTrain(lib, opts, log);
    if (peer?.cases) T.mergeTorch(peer, torch.label, null, r);
    log('');
    log(trainTable(r.rows));
    for (const n of r.notes) log(n);
    if (r.rows.some((x) => x.mode === 'torch')) log(`Rows "${torch.label}": the same step in PyTorch (zero_grad(set_to_none=False), forward + cross-entropy, backward, SGD momentum 0.9, weight decay 5e-4) on ${peer.threads} thread${peer.threads > 1 ? 's' : ''}, timed in its own process before this table, median of as many steps after as many untimed.`);
    result.train = r;
  }

  if (peer?.cases) {
    log(`\n## Ours vs ${torch.label}, ${threads.n} thread${threads.n > 1 ? 's' : ''} each`);
    const rows = T.torchSummary(peer, result.models, result.train);
    log(T.torchTable(rows, torch.label));
    log(`Wall ms (process CPU ms, all threads). ours/PyTorch = PyTorch ÷ ours (> 1: ours faster). Ours: eval = the model table's row (CPU where timed in turns with tfjs-wasm), train = the step in withTrainingStep.`);
    for (const n of T.torchNotes(torch, peer)) log(n);
    result.torch.summary = rows;
  }

  if (opts.onnx) {
    const { benchOnnx, onnxTable } = await import('./onnx.mjs');
    log('\n## onnxruntime-web running our exported models (a fresh process per thread count)');
    const rows = await benchOnnx(lib, opts, log);
    log('');
    log(onnxTable(rows));
    result.onnx = rows;
  }

  if (opts.memory) {
    const { benchMemory, memoryTable, RSS_TARGET_MB } = await import('./memory.mjs');
    log('\n## Inference memory and time (a fresh process per model)');
    const rows = benchMemory(opts, threads.n, log);
    log('');
    log(memoryTable(rows));
    log(`peak RSS = the child's VmHWM (Linux; worker threads included); issue 6's target for resnet50: < ${RSS_TARGET_MB} MB.`);
    result.memory = rows;
  }

  if (opts.loader) {
    const { benchLoader, loaderTable } = await import('./loader.mjs');
    log(`\n## Image loading vs training (ImageFolder JPEGs → RandomResizedCrop(224) → flip → ToTensor → Normalize)`);
    const r = await benchLoader(lib, opts, console.log);
    log(loaderTable(r, threads.n));
    result.loader = r;
  }

  if (threads.set) await threads.set(1); // stops the worker pool
  machine.loadavgEnd = loadAverage();
  const totalS = (performance.now() - t0) / 1000;
  log(`\nload average at end ${machine.loadavgEnd} · total ${totalS.toFixed(0)} s`);
  result.totalSeconds = totalS;
  result.output = lines.join('\n');

  const dir = join(BENCH_DIR, 'results');
  mkdirSync(dir, { recursive: true });
  const name = opts.name ?? `${date.replace(/[:]/g, '').replace(/\..*$/, '')}${opts.quick ? '-quick' : ''}`;
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify(result, null, 1) + '\n');
  log(`wrote ${file.slice(BENCH_DIR.length - 'bench'.length)}`);
  if ((result.layers?.failed.length ?? 0) + (result.models?.failed?.length ?? 0) + (result.train?.failed.length ?? 0) + (peer?.cases?.filter((c) => c.failed).length ?? 0) > 0) process.exitCode = 1;
}

/**
 * A new thread count rebuilds the worker pool on the next kernel call, and its workers take ~100 ms to load their
 * modules, during which calls run mostly on the main thread. So: one parallel call now (it builds the pool), then
 * half a second for the workers to come up, so that no variant's warm-up or timing overlaps their start.
 */
async function startPool(k) {
  const gemmFile = join(DIST, 'kernels', 'gemm.js');
  if (k <= 1 || !existsSync(gemmFile)) return;
  const { sgemm } = await import(gemmFile);
  const n = 256, a = new Float32Array(n * n).fill(1), c = new Float32Array(n * n);
  sgemm(c, a, a, n, n, n);
  await new Promise((r) => setTimeout(r, 500));
}

/**
 * → { n, set(n) | null, one(f) | null, desc }: the kernels' thread count for this run, how to change it, how to run
 * one call on one thread, and a description.
 */
async function setupThreads(opts) {
  const ctl = await findThreadControl();
  const parFile = join(DIST, 'kernels', 'parallel.js');
  const par = existsSync(parFile) ? await import(parFile) : null;
  const used = () => {
    const b = typeof par?.getParallelBackend === 'function' ? par.getParallelBackend() : null;
    return b ? b.threads : 1;
  };
  const one = typeof par?.setParallelBackend === 'function' && typeof par?.getParallelBackend === 'function' ? oneThread(par) : null;
  if (!ctl) {
    const n = used();
    return { n, set: null, one, desc: `${n} (no setNumThreads in this build${opts.threads !== null ? `; --threads ${opts.threads} only set RESNET_TS_THREADS` : ''})` };
  }
  const want = opts.threads ?? (typeof ctl.getNumThreads === 'function' ? await ctl.getNumThreads() : 1);
  await ctl.setNumThreads(want);
  await startPool(want);
  const n = used();
  const how = opts.threads !== null ? `--threads ${opts.threads}` : 'the library default';
  return {
    n,
    one,
    set: async (k) => {
      await ctl.setNumThreads(k);
      await startPool(k);
    },
    desc: `${n} (setNumThreads(${want}) from ${ctl.file}, ${how}${n !== want ? `; the backend reports ${n}` : ''})`,
  };
}

/**
 * one(f): runs f with the kernels' parallel backend detached, so every parallelFor in it runs inline on this thread,
 * as with setNumThreads(1), while the pool's workers stay built (idle: they wait on a futex, using no CPU). This is
 * how the layer table times its one-thread variants in turns with the multi-threaded ones.
 */
function oneThread(par) {
  return (f) => {
    const b = par.getParallelBackend();
    par.setParallelBackend(null);
    let r;
    try {
      r = f();
    } catch (e) {
      par.setParallelBackend(b);
      throw e;
    }
    if (r && typeof r.then === 'function') return r.finally(() => par.setParallelBackend(b));
    par.setParallelBackend(b);
    return r;
  };
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
