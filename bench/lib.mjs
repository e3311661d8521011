// Shared helpers of the benchmark: flags, machine line, seeded data, comparison, timing, tables.
// Plain ESM for `node`; nothing here imports the library at load time (run.mjs loads it after the flags are read, so
// that RESNET_TS_THREADS is set before any module that reads it is evaluated; loadBuilds imports builds when called).

import { execSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
export const ROOT = join(BENCH_DIR, '..');
export const DIST = join(ROOT, 'dist');

// ---- flags ---------------------------------------------------------------------------------------------------

export const USAGE = `usage: node bench/run.mjs [flags]        (npm run bench -- [flags])
  --quick                few layer shapes, fewer repetitions, no tfjs train steps (~1 minute)
  --filter STR           only layers/models whose name (or, for layers, the nets using them) contains STR,
                         case-insensitive; several: --filter a,b; '->' matches '→' (e.g. --filter "64->64")
  --threads N            kernel threads: sets RESNET_TS_THREADS=N and calls setNumThreads(N) if the build has it
  --no-tfjs              ours only (no tfjs-core comparison, neither CPU nor wasm backend)
  --no-tfjs-wasm         no tfjs-backend-wasm peer (layer table and eval rows)
  --no-layers            skip the layer-shape table
  --no-models            skip the whole-model rows
  --no-train             skip the training-step phase rows (forward, backward, optimizer)
  --no-memory            skip the inference memory rows (ResNet-50/18 eval in a fresh process: peak RSS, time)
  --no-onnx              skip the onnxruntime-web rows (our exported ResNet-18/50 on 1 and 2 wasm threads)
  --no-loader            skip the image-loading rows (ImageFolder + DataLoader workers vs a ResNet-18 train step)
  --no-torch             no PyTorch peer (otherwise it runs when RESNET_TS_TORCH_PYTHON, else /usr/bin/python3,
                         imports torch and torchvision: eval and train cases on our thread count, next to ours)
  --tfjs-train           time tfjs's train steps even with --quick
  --no-tfjs-train        skip tfjs's train steps (the slow ones: tens of seconds to minutes)
  --bwd-filter-max M     time tfjs's conv2d backprop filter only up to M MFLOP per layer (default 250: all
                         layers; quick 120)
  --min-time S           keep timing until S seconds of samples (default 0.3, quick 0.15)
  --name NAME            results file bench/results/NAME.json (default: date-time, plus "-quick")
  --help`;

/** Parses argv into the options object every bench module reads. Unknown flags are an error. */
export function parseArgs(argv) {
  const o = {
    quick: false, filter: [], threads: null, tfjs: true, tfjsWasm: true, layers: true, models: true, train: true, memory: true, onnx: true, loader: true, torch: true, tfjsTrain: null,
    bwdFilterMaxMflop: null, minTime: null, name: null, help: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value\n${USAGE}`);
      return v;
    };
    const num = (v) => {
      const x = Number(v);
      if (!Number.isFinite(x) || x < 0) throw new Error(`${a} needs a non-negative number, got ${v}`);
      return x;
    };
    if (a === '--quick') o.quick = true;
    else if (a === '--filter') o.filter.push(...val().toLowerCase().replaceAll('->', '→').split(',').filter(Boolean));
    else if (a === '--threads') {
      const n = num(val());
      if (!Number.isInteger(n) || n < 1) throw new Error(`--threads needs a positive integer`);
      o.threads = n;
    } else if (a === '--no-tfjs') o.tfjs = false;
    else if (a === '--no-tfjs-wasm') o.tfjsWasm = false;
    else if (a === '--no-layers') o.layers = false;
    else if (a === '--no-models') o.models = false;
    else if (a === '--no-train') o.train = false;
    else if (a === '--no-memory') o.memory = false;
    else if (a === '--no-onnx') o.onnx = false;
    else if (a === '--no-loader') o.loader = false;
    else if (a === '--no-torch') o.torch = false;
    else if (a === '--tfjs-train') o.tfjsTrain = true;
    else if (a === '--no-tfjs-train') o.tfjsTrain = false;
    else if (a === '--bwd-filter-max') o.bwdFilterMaxMflop = num(val());
    else if (a === '--min-time') o.minTime = num(val());
    else if (a === '--name') o.name = val().replace(/[^\w.-]/g, '_');
    else if (a === '--help' || a === '-h') o.help = true;
    else throw new Error(`unknown flag ${a}\n${USAGE}`);
  }
  if (o.tfjsTrain === null) o.tfjsTrain = !o.quick;
  // tfjs's filter gradient runs at ~0.03 GFLOP/s: 3–10 s per ResNet layer, so it is timed once there.
  o.bwdFilterMaxMflop ??= o.quick ? 120 : 250;
  if (!o.tfjs) o.tfjsTrain = false;
  o.minTime ??= o.quick ? 0.15 : 0.3;
  o.warmupRuns = o.quick ? 15 : 30;
  o.warmupTime = o.quick ? 0.5 : 1;
  o.maxRuns = o.quick ? 10 : 30;
  o.minRuns = o.quick ? 2 : 3;
  // The layer table's rounds (lib.measureTurns): every variant of a layer's pass once per round.
  o.layerMinRuns = o.quick ? 7 : 21;
  o.layerMaxRuns = o.quick ? 15 : 41;
  // A check run slower than this is also the (single) timed run: repeating it would only cost minutes.
  o.onceAbove = o.quick ? 1 : 1.5;
  return o;
}

/**
 * A bench script's command line (process.argv after the script by default): flag(name, dflt) takes `name value` out
 * of args and returns the value (dflt when absent); has(name) takes `name` out and tells whether it was there. What
 * is left in args is positional.
 */
export function scriptArgs(argv = process.argv.slice(2)) {
  const args = [...argv];
  const flag = (name, dflt) => {
    const i = args.indexOf(name);
    return i < 0 ? dflt : args.splice(i, 2)[1];
  };
  const has = (name) => {
    const i = args.indexOf(name);
    if (i >= 0) args.splice(i, 1);
    return i >= 0;
  };
  return { args, flag, has };
}

/** True when `name` passes --filter (no filter: everything). */
export function selected(opts, name) {
  if (opts.filter.length === 0) return true;
  const n = name.toLowerCase();
  return opts.filter.some((f) => n.includes(f));
}

// ---- builds (A/B scripts) ------------------------------------------------------------------------------------

/**
 * Imports the same modules from several builds (dist folders), one build after another and each build's modules in
 * the order given; set RESNET_TS_THREADS before calling. `modules` maps a key to a path inside the folder, e.g.
 * { lib: 'index.js', pool: 'kernels/pool.js' }. With `threads` (a number, or buildIndex => number) each build's
 * index.js gets setNumThreads right after it is imported. Returns per build { label: the folder as given, dir: the
 * folder resolved, [key]: the module }.
 */
export async function loadBuilds(dirs, modules, { threads = null } = {}) {
  const builds = [];
  for (const [i, label] of dirs.entries()) {
    const dir = resolve(label);
    const build = { label, dir };
    for (const [key, path] of Object.entries(modules)) {
      build[key] = await import(join(dir, path));
      if (path === 'index.js' && threads !== null) build[key].setNumThreads(typeof threads === 'function' ? threads(i) : threads);
    }
    builds.push(build);
  }
  return builds;
}

// ---- machine -------------------------------------------------------------------------------------------------

export function cpuModel() {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) return m[1].trim();
  } catch {
    // not Linux
  }
  return os.cpus()[0]?.model ?? 'unknown CPU';
}

export function packageVersion(name) {
  try {
    return JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version;
  } catch {
    return null;
  }
}

export function loadAverage() {
  return os.loadavg().map((x) => x.toFixed(2)).join(' ');
}

/** Short git revision of the checkout, or null (read-only: `git rev-parse`). */
export function gitRevision() {
  try {
    const rev = execSync('git rev-parse --short HEAD', { cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    const dirty = execSync('git status --porcelain --untracked-files=no', { cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    return dirty ? `${rev}+dirty` : rev;
  } catch {
    return null;
  }
}

/**
 * Finds the kernels' thread setting in the build, without importing anything that might have side effects:
 * reads dist/index.js and the .js files under dist/parallel, dist/kernels and dist/threads* for an exported
 * `setNumThreads`, and returns { file, setNumThreads, getNumThreads } or null.
 */
export async function findThreadControl() {
  const candidates = [join(DIST, 'index.js')];
  const walk = (dir) => {
    if (!existsSync(dir)) return;
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.js')) candidates.push(p);
    }
  };
  for (const d of ['parallel', 'kernels', 'threads', 'pool']) walk(join(DIST, d));
  for (const f of ['parallel.js', 'threads.js', 'pool.js']) if (existsSync(join(DIST, f))) candidates.push(join(DIST, f));
  for (const file of candidates) {
    if (!existsSync(file)) continue;
    const src = readFileSync(file, 'utf8');
    if (!/export\s+(async\s+)?function\s+setNumThreads\b|export\s*\{[^}]*\bsetNumThreads\b/.test(src)) continue;
    const mod = await import(file);
    if (typeof mod.setNumThreads !== 'function') continue;
    return { file: relative(ROOT, file), mod, setNumThreads: mod.setNumThreads, getNumThreads: mod.getNumThreads };
  }
  return null;
}

// ---- data ----------------------------------------------------------------------------------------------------

/** Deterministic uniform values in [lo, hi) (mulberry32), so every run times the same numbers. */
export function randomArray(n, seed, lo = -1, hi = 1) {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const u = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    out[i] = lo + (hi - lo) * u;
  }
  return out;
}

/**
 * A copy of a in a SharedArrayBuffer where there is one: how a model's eval forward (withArena) and training step
 * (withTrainingStep) hand activations to the kernels, which the pool's threads then use in place (an ordinary array
 * is copied into shared staging memory and back on every multi-threaded call).
 */
export function shared(a) {
  if (typeof SharedArrayBuffer !== 'function') return a;
  const s = new Float32Array(new SharedArrayBuffer(a.byteLength));
  s.set(a);
  return s;
}

/** (N, C, H, W) → (N, H, W, C); also OIHW → HWIO with perm [2, 3, 1, 0]. General 4-D permutation, untimed. */
export function permute4(src, shape, perm) {
  const st = [shape[1] * shape[2] * shape[3], shape[2] * shape[3], shape[3], 1];
  const os = perm.map((p) => shape[p]);
  const ss = perm.map((p) => st[p]);
  const out = new Float32Array(src.length);
  let k = 0;
  for (let a = 0; a < os[0]; a++)
    for (let b = 0; b < os[1]; b++)
      for (let c = 0; c < os[2]; c++) {
        const base = a * ss[0] + b * ss[1] + c * ss[2];
        for (let d = 0; d < os[3]; d++) out[k++] = src[base + d * ss[3]];
      }
  return out;
}

/**
 * Compares `got` with the reference `want`: { ok, maxAbs, scale, rel, worst } where scale = max|want| and the check
 * passes when maxAbs ≤ tol·scale (and nothing is NaN).
 */
export function compare(got, want, tol) {
  if (got.length !== want.length) return { ok: false, maxAbs: Infinity, scale: 0, rel: Infinity, worst: -1, why: `length ${got.length} vs ${want.length}` };
  let maxAbs = 0, scale = 0, worst = -1, nan = false;
  for (let i = 0; i < want.length; i++) {
    const w = want[i], g = got[i];
    if (Number.isNaN(g) !== Number.isNaN(w)) nan = true;
    const d = Math.abs(g - w);
    if (d > maxAbs) { maxAbs = d; worst = i; }
    const a = Math.abs(w);
    if (a > scale) scale = a;
  }
  const rel = scale > 0 ? maxAbs / scale : maxAbs;
  const ok = !nan && maxAbs <= tol * scale;
  return { ok, maxAbs, scale, rel, worst, why: nan ? 'NaN mismatch' : ok ? '' : `max |Δ| ${maxAbs.toExponential(2)} > ${tol}·max|ref| (${(tol * scale).toExponential(2)}) at [${worst}]: ${got[worst]} vs ${want[worst]}` };
}

// ---- timing --------------------------------------------------------------------------------------------------

const now = () => performance.now();

/** Calls fn and awaits it if it returned a promise (kernels may become async with a worker pool). */
async function call(fn) {
  const r = fn();
  if (r && typeof r.then === 'function') await r;
}

/** Times one call of fn in ms (fn may be async). */
export async function timeOnce(fn) {
  const t0 = now();
  await call(fn);
  return now() - t0;
}

/**
 * Median time of fn in ms. `firstMs` is the time of the check run, which was also the warm-up: if it took more than
 * opts.onceAbove seconds it is the one sample (a repeat would cost as much again), else fn is repeated until
 * opts.minTime seconds and opts.minRuns runs, or opts.maxRuns runs. `after` (untimed) runs after each call.
 */
export async function measure(fn, firstMs, opts, after = null) {
  if (firstMs >= opts.onceAbove * 1000) return { ms: firstMs, runs: 1, once: true, samples: [firstMs] };
  // Warm-up, untimed: V8 tiers the kernels up over the first tens of calls, on every worker thread separately
  // (measured: a 3×3 64→64 @56 forward went 100 → 15 ms over its first ~25 calls), so timing from the first call
  // would charge whichever variant runs first with the JIT's work.
  let warm = 0;
  for (let i = 0; i < opts.warmupRuns && warm < opts.warmupTime * 1000; i++) {
    const t0 = now();
    await call(fn);
    warm += now() - t0;
    if (after) after();
  }
  const samples = [];
  let total = 0;
  while (samples.length < opts.maxRuns && (total < opts.minTime * 1000 || samples.length < opts.minRuns)) {
    const t0 = now();
    await call(fn);
    const dt = now() - t0;
    if (after) after();
    samples.push(dt);
    total += dt;
  }
  return { ms: median(samples), runs: samples.length, once: false, samples };
}

/**
 * Times several functions taking turns, for the layer table: per round every function runs once, in an order
 * shuffled round by round (seeded: the same orders every run), so that a slow spell of the host (other processes,
 * a neighbour on the core's other hardware thread, a V8 background task) falls on all of them alike instead of on
 * whichever was being timed then. Each timed call follows an untimed call of the same function, so its data is in
 * the caches as when a function is timed back to back. First untimed warm-up rounds (V8 tiers code up over the first
 * tens of calls, on every worker separately): up to opts.warmupRuns rounds or opts.warmupTime seconds per function.
 * Then rounds until every function has opts.minRuns samples and the timed calls add up to opts.minTime seconds per
 * function, or opts.maxRuns rounds.
 * → per function { ms: median wall, min: min wall, cpuMs: median process CPU (this thread and the workers), runs,
 *   samples, cpuSamples }; and `ratio(i, j)`: the median over rounds of samples[i] / samples[j] (paired in time).
 */
export async function measureTurns(fns, opts) {
  const k = fns.length;
  let warm = 0;
  for (let r = 0; r < opts.warmupRuns && warm < opts.warmupTime * 1000 * k; r++) {
    for (const fn of fns) {
      const t0 = now();
      await call(fn);
      warm += now() - t0;
    }
  }
  const wall = fns.map(() => []), cpu = fns.map(() => []);
  const order = fns.map((_, i) => i);
  let seed = 0x2545f491, total = 0;
  const rand = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 4294967296;
  };
  for (let r = 0; r < opts.maxRuns && (r < opts.minRuns || total < opts.minTime * 1000 * k); r++) {
    for (let i = k - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    for (const i of order) {
      await call(fns[i]);
      const c0 = process.cpuUsage();
      const t0 = now();
      await call(fns[i]);
      const dt = now() - t0;
      const c = process.cpuUsage(c0);
      wall[i].push(dt);
      cpu[i].push((c.user + c.system) / 1000);
      total += dt;
    }
  }
  return {
    times: wall.map((w, i) => ({ ms: median(w), min: Math.min(...w), cpuMs: median(cpu[i]), runs: w.length, once: false, samples: w, cpuSamples: cpu[i] })),
    ratio: (i, j) => median(wall[i].map((t, r) => t / wall[j][r])),
  };
}

/** The process's CPU time in ms (user + system, every thread): for A/B scripts, whose wall times a busy host skews. */
export function cpuMs() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** Runs fn n times; each run's [wall ms, process CPU ms]. */
export function wallCpuRuns(fn, n) {
  const runs = [];
  for (let i = 0; i < n; i++) {
    const c0 = cpuMs(), w0 = performance.now();
    fn();
    runs.push([performance.now() - w0, cpuMs() - c0]);
  }
  return runs;
}

/**
 * A full garbage collection, or null where it cannot be had: V8's gc() exposed at run time (the same as
 * node --expose-gc), so that garbage one variant left (tfjs's CPU backend allocates hundreds of MB on the big
 * layers) is not collected during another's timing.
 */
export async function fullGc() {
  try {
    const v8 = await import('node:v8');
    const vm = await import('node:vm');
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc');
    return typeof gc === 'function' ? () => gc() : null;
  } catch {
    return null;
  }
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

// ---- formatting ----------------------------------------------------------------------------------------------

export const gflops = (flop, ms) => flop / (ms * 1e6);

export function fmtMs(ms) {
  if (ms === null || ms === undefined) return '—';
  if (ms >= 10000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms >= 100) return ms.toFixed(0);
  if (ms >= 10) return ms.toFixed(1);
  return ms.toFixed(2);
}

export const fmtG = (g) => (g === null || g === undefined ? '—' : g >= 10 ? g.toFixed(1) : g.toFixed(2));
export const fmtRatio = (r) => (r === null || r === undefined ? '—' : r >= 100 ? `${r.toFixed(0)}×` : r >= 10 ? `${r.toFixed(1)}×` : `${r.toFixed(2)}×`);
export const fmtRel = (r) => (r === 0 ? '0' : r.toExponential(0));

/** Prints rows (arrays of strings) as an aligned Markdown table (first column left-aligned, the rest right). */
export function table(header, rows) {
  const w = header.map((h, j) => Math.max(h.length, ...rows.map((r) => String(r[j]).length)));
  const line = (r) => `| ${r.map((c, j) => (j === 0 ? String(c).padEnd(w[j]) : String(c).padStart(w[j]))).join(' | ')} |`;
  const sep = `|${w.map((x, j) => (j === 0 ? ':' : '-') + '-'.repeat(x) + (j === 0 ? '-' : ':')).join('|')}|`;
  return [line(header), sep, ...rows.map(line)].join('\n');
}

/**
 * The seeded training step the profiling scripts time: `make()` (after `manualSeed(0)`) in train mode, an input
 * `randn(shape)`, targets (i·7) mod 10, SGD (lr 0.01, momentum 0.9, weight decay 5e-4), and `body`, one step
 * (zeroGrad(false), forward, cross-entropy, backward, SGD) that returns the loss.
 */
export function seededStep(lib, make, shape) {
  lib.manualSeed(0);
  const m = make().train();
  const x = lib.randn(shape);
  const t = Array.from({ length: shape[0] }, (_, i) => (i * 7) % 10);
  const opt = new lib.optim.SGD(m.parameters(), { lr: 0.01, momentum: 0.9, weightDecay: 5e-4 });
  const body = () => {
    opt.zeroGrad(false);
    const loss = lib.nn.functional.crossEntropy(m.forward(x), t);
    loss.backward();
    opt.step();
    return loss.item();
  };
  return { m, x, t, opt, body };
}
