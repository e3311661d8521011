// PyTorch on CPU as an optional native peer: bench/torch-peer.py runs the bench's model cases in PyTorch, on our
// thread count, in a child process; run.mjs puts its times next to ours in the model table (eval rows), the train
// table (one row per step) and a summary. The Python is RESNET_TS_TORCH_PYTHON, else /usr/bin/python3 if it imports
// torch and torchvision; without one the bench prints a note and runs without the peer (CI and tests never need it).
// The peer times the same architectures (parameter counts checked against ours) with its own weights and data: a
// timing peer, not a numerics check (test/fixtures/gen_*.py hold those).

import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { BENCH_DIR, fmtMs, fmtRatio, selected, table } from './lib.mjs';

/** The peer's cases (ids of bench/torch-peer.py) and the names of our rows they mirror (models.mjs, train.mjs). */
export const TORCH_CASES = [
  { id: 'r18-eval', kind: 'eval', ours: 'ResNet-18 eval fwd 1×3×224×224', quick: true, make: (lib) => lib.models.resnet18() },
  { id: 'r50-eval', kind: 'eval', ours: 'ResNet-50 eval fwd 1×3×224×224', quick: false, make: (lib) => lib.models.resnet50() },
  { id: 'cifar-train', kind: 'train', ours: 'CIFAR ResNet-20 train 32×3×32×32', quick: true, make: (lib) => lib.models.resnet20() },
  { id: 'r18-train', kind: 'train', ours: 'ResNet-18 train 8×3×32×32 (10 classes)', quick: true, make: (lib) => lib.models.resnet18({ numClasses: 10 }) },
  { id: 'fmnist-train', kind: 'train', ours: 'ResNet-20 train 128×1×28×28 (Fashion-MNIST)', quick: false, make: (lib) => lib.models.resnet20({ inChannels: 1 }) },
];

const PROBE = `import json, torch, torchvision
c = torch.__config__.show()
print(json.dumps({'torch': torch.__version__, 'torchvision': torchvision.__version__, 'config': c}))`;

/**
 * → { python, version, torchvision, label, build } when a Python with torch and torchvision is there, else
 * { python: null, note }.
 */
export function findTorch() {
  const fromEnv = process.env.RESNET_TS_TORCH_PYTHON;
  const python = fromEnv || '/usr/bin/python3';
  const where = `${python}${fromEnv ? ' (RESNET_TS_TORCH_PYTHON)' : ''}`;
  const r = spawnSync(python, ['-c', PROBE], { encoding: 'utf8', timeout: 120_000 });
  if (r.error || r.status !== 0) {
    const why = r.error ? `cannot be run (${r.error.code ?? r.error.message})` : 'cannot import torch and torchvision';
    return { python: null, note: `PyTorch peer not run: ${where} ${why}; set RESNET_TS_TORCH_PYTHON to a Python that has them, or pass --no-torch` };
  }
  const p = JSON.parse(r.stdout.trim().split('\n').pop());
  // OpenMP settings the child inherits (OMP_WAIT_POLICY=PASSIVE: see bench/README.md, "The PyTorch rows").
  const omp = Object.entries(process.env).filter(([k]) => /^(OMP|GOMP|KMP)_/.test(k)).map(([k, v]) => `${k}=${v}`).join(' ');
  const m = (re) => re.exec(p.config)?.[1] ?? '?';
  const build = `oneDNN ${m(/MKL-DNN (v[\d.]+)/)}, BLAS ${m(/BLAS_INFO=([^,\s]+)/)}, ${m(/CPU capability usage: (\S+)/)}${omp ? `, ${omp}` : ''}`;
  return { python, version: p.torch, torchvision: p.torchvision, label: `PyTorch ${p.torch.split('.').slice(0, 2).join('.')} (native)`, build };
}

/**
 * Runs the peer on the cases this run also times for ours (eval: the model rows, train: the train rows, with
 * --quick and --filter as they apply there), on `threads` threads. → { threads, cases: [{ ...peer case, ours,
 * failed }], seconds } or { note } when nothing ran.
 */
export function runTorch(torch, lib, opts, threads, log) {
  const cases = TORCH_CASES.filter((c) => (c.kind === 'eval' ? opts.models : opts.train) && (!opts.quick || c.quick) && selected(opts, c.ours));
  if (cases.length === 0) return { note: `${torch.label}: no case to run (its cases mirror the model and train rows: --no-models, --no-train, --quick or --filter left none)` };
  const args = [join(BENCH_DIR, 'torch-peer.py'), '--threads', String(threads), '--cases', cases.map((c) => c.id).join(','), '--min-time', String(opts.minTime)];
  if (opts.quick) args.push('--quick');
  const t0 = performance.now();
  const r = spawnSync(torch.python, args, { encoding: 'utf8', timeout: 900_000, maxBuffer: 1 << 26 });
  const seconds = (performance.now() - t0) / 1000;
  if (r.error || r.status !== 0) {
    const tail = (r.stderr ?? '').trim().split('\n').slice(-3).join(' | ');
    return { note: `${torch.label} failed (${r.error?.message ?? `exit ${r.status}`}): ${tail}` };
  }
  const out = JSON.parse(r.stdout.trim().split('\n').pop());
  for (const pc of out.cases) {
    const c = cases.find((k) => k.id === pc.id);
    pc.ours = c.ours;
    const params = c.make(lib).parameters().reduce((s, p) => s + p.size, 0);
    if (params !== pc.params) pc.failed = `${pc.params} parameters, ours ${params}: not the same architecture`;
    else if (pc.kind === 'train' && !Number.isFinite(pc.firstLoss)) pc.failed = `first-step loss ${pc.firstLoss}`;
    const t = pc.kind === 'eval' ? `${fmtMs(pc.ms)} ms (${fmtMs(pc.cpuMs)} CPU-ms), median of ${pc.runs}` : `step ${fmtMs(pc.phases.step.wall)} ms (${fmtMs(pc.phases.step.cpu)} CPU-ms), median of ${pc.steps}`;
    log(`  ${c.ours}: ${pc.failed ? `MISMATCH ${pc.failed}, not reported` : `${pc.params} parameters as ours; ${t}`}`);
  }
  return { threads: out.threads, seconds, cases: out.cases };
}

/**
 * Puts the peer's times into our rows: row.torch on the model table's eval rows; after each train case's rows a
 * row of its own ({ mode: 'torch' }, printed by train.mjs's trainTable like ours).
 */
export function mergeTorch(peer, label, models, train) {
  for (const pc of peer?.cases ?? []) {
    if (pc.failed) continue;
    if (pc.kind === 'eval') {
      const row = models?.rows.find((r) => r.model === pc.ours);
      if (row) row.torch = { label, ms: pc.ms, cpuMs: pc.cpuMs, runs: pc.runs, threads: peer.threads };
    } else if (train) {
      const at = train.rows.findLastIndex((r) => r.model === pc.ours);
      if (at < 0) continue;
      const batch = pc.input[0];
      train.rows.splice(at + 1, 0, { model: `${pc.ours}, ${label}`, mode: 'torch', batch, steps: pc.steps, phases: pc.phases, imagesPerSecond: (1000 * batch) / pc.phases.step.wall, threads: peer.threads });
    }
  }
}

/**
 * Ours vs the peer, case by case: eval = the model table's row (CPU where it was timed in turns with tfjs-wasm),
 * train = the step in withTrainingStep (as the library's trainer runs it). → rows for torchTable.
 */
export function torchSummary(peer, models, train) {
  const rows = [];
  for (const pc of peer?.cases ?? []) {
    let ours = null;
    if (pc.kind === 'eval') {
      const r = models?.rows.find((x) => x.model === pc.ours);
      if (r?.ours) ours = { ms: r.ours.ms, cpuMs: r.ours.cpuMs ?? null };
    } else {
      const r = train?.rows.find((x) => x.model === pc.ours && x.mode === 'scoped');
      if (r) ours = { ms: r.phases.step.wall, cpuMs: r.phases.step.cpu };
    }
    const torch = pc.failed ? null : pc.kind === 'eval' ? { ms: pc.ms, cpuMs: pc.cpuMs } : { ms: pc.phases.step.wall, cpuMs: pc.phases.step.cpu };
    rows.push({ model: pc.ours, kind: pc.kind, ours, torch, failed: pc.failed ?? null });
  }
  return rows;
}

/** Caveats the run's settings call for, as lines under the summary. */
export function torchNotes(torch, peer) {
  const notes = [];
  if (peer.threads === 1 && /BLAS generic/.test(torch.build)) {
    // Measured on Debian's python3-torch 1.13 (libblas.so.3 = the reference BLAS): aten::_slow_conv2d_forward took
    // 840 of 905 ms of a 1-thread ResNet-50 eval forward; on 2 threads every conv ran in oneDNN (220 ms in all).
    notes.push(`On 1 thread, PyTorch 1.13 runs 1×1 stride-1 convs at batch < 16 through its own im2col + BLAS path, not oneDNN, and this build's BLAS is "generic" (Debian: libblas.so.3, the reference BLAS unless an optimized one is selected): its 1-thread eval rows with 1×1 convs (ResNet-50) time that BLAS, not PyTorch's usual pace.`);
  }
  if (peer.threads > 1 && !process.env.OMP_WAIT_POLICY) notes.push(`PyTorch's OpenMP threads spin after each parallel region: on a machine whose cores are busy its times swing by 10× and more (OMP_WAIT_POLICY=PASSIVE, passed through, calms them).`);
  return notes;
}

export function torchTable(rows, label) {
  const cell = (x) => (x ? `${fmtMs(x.ms)} (${x.cpuMs === null ? '—' : fmtMs(x.cpuMs)})` : '—');
  const ratio = (k) => (r) => (r.ours?.[k] && r.torch?.[k] ? fmtRatio(r.torch[k] / r.ours[k]) : '—');
  return table(
    ['case', 'ours ms (CPU)', `${label} ms (CPU)`, 'ours/PyTorch wall', 'ours/PyTorch CPU'],
    rows.map((r) => [r.model, cell(r.ours), r.failed ? 'MISMATCH' : cell(r.torch), ratio('ms')(r), ratio('cpuMs')(r)]),
  );
}
