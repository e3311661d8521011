// Layer table: every ResNet conv shape (shapes.mjs) × pass (forward, backward input, backward weight) ×
// implementation. Check first — every variant against our naive direct-loop kernels — then time.
//
// Variants (what exists in the build decides which run):
//   ours            the library's kernels as a user gets them (default Winograd policy, the run's thread count)
//   ours:im2col     setWinogradPolicy('never') and, where the build has it, config.directConv off — fwd / bwd in of
//                   Winograd-shaped layers (3×3, stride 1)
//   ours:winograd   setWinogradPolicy('always') — the same layers (bwd in also needs padding ≤ 2)
//   ours:1 thread   the library's kernels on one thread, when the run uses more: the parallel backend detached
//                   around the call (threads.one), so every parallelFor runs inline, as with setNumThreads(1)
//   ours:eval       fwd only: conv2dForwardFused, the kernel a model's eval forward runs (BN folded into a per-channel
//                   epilogue; here the identity one). On 3×3 stride-1 layers its Winograd GEMMs run in float32, where
//                   conv2dForward ('ours', used in training) carries them in float64
//   ours:eval 1 thread  the same on one thread
//   tfjs            tfjs-core's CPU backend (one thread), NHWC
//   tfjs-wasm       tfjs-backend-wasm (XNNPACK, wasm SIMD, one thread), NHWC; no filter-gradient kernel
// To add one: an entry in `variants()` — { id, impl, dir, threads, applies(st), skip(st) → reason | null,
// setup(st) → { run, out } } where run() computes (sync or async) and out() returns the result in our layout
// (NCHW activations, OIHW weights). FLOPs are always the direct convolution's (also for Winograd).
//
// Buffers are what a model's eval forward and training step hand the kernels: weight, activations, gradients and
// outputs in shared memory (see makeState), which the pool's workers use in place.
//
// Timing (benchLayers): per shape and pass, ours in every variant and tfjs-wasm take turns round by round
// (lib.measureTurns); tfjs's CPU backend is timed on its own after them.

import { useTfBackend } from './tfjs.mjs';
import { compare, fmtG, fmtMs, fmtRatio, fmtRel, fullGc, gflops, measure, measureTurns, permute4, randomArray, selected, shared, table, timeOnce } from './lib.mjs';
import { LAYERS, convMacs, convParams } from './shapes.mjs';

/** The build's config module where it has the direct convolution's switch (else null). */
const directConfig = await import('../dist/config.js').then((m) => ('directConv' in m.config ? m : null), () => null);

/** Tolerance of every check: max |Δ| ≤ TOL · max |reference|. */
export const TOL = 1e-4;

const DIRS = ['fwd', 'bwdIn', 'bwdW'];
const DIR_LABEL = { fwd: 'forward', bwdIn: 'backward input', bwdW: 'backward weight' };
const DIR_SHORT = { fwd: 'fwd', bwdIn: 'bwd in', bwdW: 'bwd w' };
const BASE_NAME = { fwd: 'conv2dForward', bwdIn: 'conv2dBackwardInput', bwdW: 'conv2dBackwardWeight' };

/** Per-shape state: inputs in both layouts, created once and shared by the variants. */
function makeState(s, tf) {
  const p = convParams(s);
  // x, dy and our outputs in shared memory, as a model's eval forward (withArena) and training step
  // (withTrainingStep) hand them to the kernels: ordinary arrays would add the pool's staging copies (1×1 256→64 @56,
  // 2 threads: about 0.5 ms of 2.9).
  const x = sharedCopy(randomArray(p.n * p.c * p.h * p.w, 1));
  // Kaiming-like scale keeps outputs O(1) whatever the fan-in.
  const wScale = Math.sqrt(3 / (p.c * p.kh * p.kw));
  const w = sharedCopy(randomArray(p.o * p.c * p.kh * p.kw, 2, -wScale, wScale));
  const dy = sharedCopy(randomArray(p.n * p.o * p.oh * p.ow, 3));
  const st = { s, p, x, w, dy, flop: 2 * convMacs(p), ref: {}, tfIn: null, tfWasmIn: null };
  if (tf) {
    // tfjs wants NHWC activations and HWIO filters: transposed here, outside any timed region. One set of tensors
    // per tfjs backend (a tensor lives on the backend that last used it).
    const inputs = () => ({
      x: tf.tensor4d(permute4(x, [p.n, p.c, p.h, p.w], [0, 2, 3, 1]), [p.n, p.h, p.w, p.c]),
      w: tf.tensor4d(permute4(w, [p.o, p.c, p.kh, p.kw], [2, 3, 1, 0]), [p.kh, p.kw, p.c, p.o]),
      dy: tf.tensor4d(permute4(dy, [p.n, p.o, p.oh, p.ow], [0, 2, 3, 1]), [p.n, p.oh, p.ow, p.o]),
    });
    st.tfIn = inputs();
    st.tfWasmIn = inputs();
  }
  return st;
}

/** A copy in a SharedArrayBuffer where there is one, as the library's layers allocate their parameters. */
const sharedCopy = shared;

/** n zeros, shared where that exists (see makeState). */
const sharedZeros = (n) => shared(new Float32Array(n));

function disposeState(st) {
  for (const set of [st.tfIn, st.tfWasmIn]) if (set) for (const t of Object.values(set)) t.dispose();
}

/** The naive reference result of a pass, computed once per shape. */
function reference(st, dir, kern) {
  if (st.ref[dir]) return st.ref[dir];
  const { p } = st;
  let r;
  if (dir === 'fwd') {
    r = new Float32Array(p.n * p.o * p.oh * p.ow);
    kern.conv2dForwardNaive(r, st.x, st.w, null, p);
  } else if (dir === 'bwdIn') {
    r = new Float32Array(st.x.length);
    kern.conv2dBackwardInputNaive(r, st.dy, st.w, p);
  } else {
    r = new Float32Array(st.w.length);
    kern.conv2dBackwardWeightNaive(r, st.dy, st.x, p);
  }
  st.ref[dir] = r;
  return r;
}

const winogradShaped = (p) => p.kh === 3 && p.kw === 3 && p.strideH === 1 && p.strideW === 1 && p.dilH === 1 && p.dilW === 1 && p.groups === 1;

/**
 * Our kernel of one pass. `policy` (a Winograd policy, or null for the library default) is set around each call
 * and restored, so variants cannot leak into each other.
 */
function oursVariant(kern, id, dir, o = {}) {
  const policy = o.policy ?? null;
  const threads = o.threads ?? null;
  const applies = o.applies ?? ((st) => st !== null);
  const fused = o.fused ?? false;
  const fn = fused ? kern.conv2dForwardFused : kern[BASE_NAME[dir]];
  // On one thread: the call runs with the kernels' thread pool detached (threads.one), so it takes turns with the
  // run's multi-threaded variants without rebuilding the pool.
  const on = threads === 1 ? o.one : (f) => f();
  // 'never' means im2col + GEMM: the direct convolution (which 'never' leaves on) is switched off too.
  const noDirect = policy === 'never' && directConfig !== null;
  const withPolicy = policy === null ? (f) => f() : (f) => {
    const old = kern.setWinogradPolicy(policy);
    const oldConfig = noDirect ? directConfig.setConfig({ directConv: false }) : null;
    try {
      return f();
    } finally {
      kern.setWinogradPolicy(old);
      if (oldConfig !== null) directConfig.setConfig(oldConfig);
    }
  };
  return {
    id, impl: 'ours', dir, threads, applies,
    skip: () => null,
    setup(st) {
      const { p } = st;
      if (dir === 'fwd') {
        const y = sharedZeros(p.n * p.o * p.oh * p.ow);
        if (fused) {
          const ep = { scale: null, shift: new Float64Array(p.o), relu: false };
          return { run: () => on(() => fn(y, st.x, st.w, null, p, ep)), out: () => y };
        }
        return { run: () => on(() => withPolicy(() => fn(y, st.x, st.w, null, p))), out: () => y };
      }
      if (dir === 'bwdIn') {
        // The caller zeroes dx (kernels accumulate): part of the cost, so inside run.
        const dx = sharedZeros(st.x.length);
        return { run: () => on(() => withPolicy(() => { dx.fill(0); return fn(dx, st.dy, st.w, p); })), out: () => dx };
      }
      const dw = sharedZeros(st.w.length);
      return { run: () => on(() => withPolicy(() => { dw.fill(0); return fn(dw, st.dy, st.x, p); })), out: () => dw };
    },
  };
}

/**
 * tfjs-core on its CPU backend ('tfjs') or on tfjs-backend-wasm ('tfjs-wasm') as a variant; results come back
 * NHWC/HWIO and are permuted to NCHW/OIHW for checking. Each run makes its backend tf's current one first (the
 * inputs move to the wasm backend on its first run, the untimed check).
 */
function tfjsVariant(tf, dir, opts, backend = 'cpu') {
  const id = backend === 'cpu' ? 'tfjs' : 'tfjs-wasm';
  return {
    id, impl: id, dir, threads: null, applies: (st) => st !== null,
    skip(st) {
      if (backend === 'wasm' && dir === 'bwdW' && !tf.getKernel('Conv2DBackpropFilter', 'wasm')) {
        return 'tfjs-backend-wasm has no Conv2DBackpropFilter kernel';
      }
      if (backend === 'cpu' && dir === 'bwdW' && st.flop / 1e6 > opts.bwdFilterMaxMflop) {
        return `tfjs conv2d backprop filter skipped above ${opts.bwdFilterMaxMflop} MFLOP (too slow: ~0.03 GFLOP/s; --bwd-filter-max M)`;
      }
      return null;
    },
    setup(st) {
      const { p } = st;
      const tfIn = backend === 'cpu' ? st.tfIn : st.tfWasmIn;
      const strides = [p.strideH, p.strideW];
      let last = null;
      const keep = (t) => { if (last) last.dispose(); last = t; };
      const on = (f) => async () => {
        await useTfBackend(tf, backend);
        f();
      };
      if (dir === 'fwd') {
        return {
          run: on(() => keep(tf.conv2d(tfIn.x, tfIn.w, strides, p.padH, 'NHWC'))),
          out: () => permute4(last.dataSync(), [p.n, p.oh, p.ow, p.o], [0, 3, 1, 2]),
          dispose: () => keep(null),
        };
      }
      if (dir === 'bwdIn') {
        // conv2dTranspose is the public face of the Conv2DBackpropInput kernel (filter [kh, kw, c, o]).
        return {
          run: on(() => keep(tf.conv2dTranspose(tfIn.dy, tfIn.w, [p.n, p.h, p.w, p.c], strides, p.padH))),
          out: () => permute4(last.dataSync(), [p.n, p.h, p.w, p.c], [0, 3, 1, 2]),
          dispose: () => keep(null),
        };
      }
      // No public op for the filter gradient: the Conv2DBackpropFilter kernel that tf.grad(conv2d) runs.
      const attrs = { strides, pad: p.padH, dataFormat: 'NHWC', dimRoundingMode: undefined, filterShape: [p.kh, p.kw, p.c, p.o] };
      return {
        run: on(() => keep(tf.engine().runKernel('Conv2DBackpropFilter', { x: tfIn.x, dy: tfIn.dy }, attrs))),
        out: () => permute4(last.dataSync(), [p.kh, p.kw, p.c, p.o], [3, 2, 0, 1]),
        dispose: () => keep(null),
      };
    },
  };
}

/** Every variant the build supports, in table order: per pass, ours, its alternatives, then tfjs. */
function variants(kern, tf, opts, threads) {
  const out = [];
  const hasPolicy = typeof kern.setWinogradPolicy === 'function';
  for (const dir of DIRS) {
    out.push(oursVariant(kern, 'ours', dir));
    if (hasPolicy && dir !== 'bwdW') {
      out.push(oursVariant(kern, 'ours:im2col', dir, { policy: 'never', applies: (st) => winogradShaped(st.p) }));
      const fits = dir === 'fwd' ? (st) => winogradShaped(st.p) : (st) => winogradShaped(st.p) && st.p.padH <= 2 && st.p.padW <= 2;
      out.push(oursVariant(kern, 'ours:winograd', dir, { policy: 'always', applies: fits }));
    }
    const one = threads.n > 1 ? threads.one : null;
    if (one) out.push(oursVariant(kern, 'ours:1 thread', dir, { threads: 1, one }));
    if (dir === 'fwd' && typeof kern.conv2dForwardFused === 'function') {
      out.push(oursVariant(kern, 'ours:eval', dir, { fused: true }));
      if (one) out.push(oursVariant(kern, 'ours:eval 1 thread', dir, { fused: true, threads: 1, one }));
    }
    if (tf) out.push(tfjsVariant(tf, dir, opts));
    if (tf && opts.tfjsWasm) out.push(tfjsVariant(tf, dir, opts, 'wasm'));
  }
  return out;
}

/**
 * Runs the layer table and prints as it goes: returns { rows, skipped, failed }.
 * kern: dist/kernels/conv2d.js; tf: tfjs-core with the CPU backend, or null; opts: parsed flags (lib.parseArgs);
 * threads: { n, one } — the run's thread count, and one(f) that runs f on one thread (null when the build cannot).
 *
 * Per shape and pass: every variant is checked against the naive kernels (the check run is also the first warm-up
 * call), then ours, in all variants and thread counts, and tfjs-wasm are timed taking turns (lib.measureTurns) after
 * a full GC, so that they see the same state of the host and of the process. tfjs's CPU backend (one call: 10–6000
 * ms, 10–300× ours) is timed on its own after them, back to back as before.
 */
export async function benchLayers(kern, tf, opts, threads, log) {
  const shapes = LAYERS.filter((s) => (!opts.quick || s.quick) && selected(opts, `${s.name} ${s.where}`));
  if (shapes.length === 0) {
    log('layers: no shape matches --filter');
    return { rows: [], skipped: [], failed: [] };
  }
  const vs = variants(kern, tf, opts, threads);
  const ids = [...new Set(vs.map((v) => v.id))];
  log(`variants: ${ids.join(', ')}`);
  if (threads.n > 1 && threads.one === null) log('note: no [1 thread] rows (this build has no setParallelBackend to run a call on one thread)');
  const gc = await fullGc();
  log(`\nPer shape and pass: check (max |Δ| ≤ ${TOL}·max|ref| against the naive kernels), then ours and tfjs-wasm take turns (${opts.layerMinRuns}–${opts.layerMaxRuns} rounds${gc ? ', after a full GC' : ''}), then tfjs on its own.`);
  const skipped = [];
  const failed = [];
  const rows = [];
  const rowOf = (c, t, pairs) => {
    const p = c.st.p;
    return {
      layer: c.s.name, where: c.s.where, dir: c.v.dir, variant: c.v.id, impl: c.v.impl,
      threads: c.v.impl === 'ours' ? (c.v.threads ?? threads.n) : 1,
      shape: { n: p.n, c: p.c, h: p.h, w: p.w, o: p.o, k: p.kh, stride: p.strideH, pad: p.padH },
      mflop: c.st.flop / 1e6, ms: t.ms, minMs: t.min ?? null, cpuMs: t.cpuMs ?? null, runs: t.runs, once: t.once,
      gflops: gflops(c.st.flop, t.ms), checkRel: c.check.rel, samples: t.samples, cpuSamples: t.cpuSamples ?? null,
      // tfjs-wasm time ÷ this variant's, the median over rounds (measured in the same round)
      pairedRatio: pairs?.wall ?? null,
      // tfjs-wasm's median CPU time ÷ this variant's (a one-thread variant's: both sides' work on one thread)
      cpuRatio: pairs?.cpu ?? null,
    };
  };
  const print = (r) => log(`  ${r.layer.padEnd(26)} ${DIR_LABEL[r.dir].padEnd(15)} ${r.variant.padEnd(18)} ${fmtMs(r.ms).padStart(7)} ms${r.minMs !== null ? ` (min ${fmtMs(r.minMs)}, CPU ${fmtMs(r.cpuMs)})` : ''} ${fmtG(r.gflops).padStart(6)} GFLOP/s  ${r.once ? 'one run' : `median of ${r.runs}`}`);

  for (const s of shapes) {
    const st = makeState(s, tf);
    for (const dir of DIRS) {
      const cases = [];
      for (const v of vs.filter((x) => x.dir === dir && x.applies(st))) {
        const why = v.skip(st);
        if (why) {
          skipped.push({ layer: st.s.name, variant: v.id, dir: v.dir, mflop: st.flop / 1e6, why });
          continue;
        }
        const c = { s: st.s, st, v, inst: null, firstMs: 0, check: null };
        try {
          c.inst = v.setup(st);
          c.firstMs = await timeOnce(c.inst.run);
          c.check = compare(c.inst.out(), reference(st, v.dir, kern), TOL);
        } catch (e) {
          c.check = { ok: false, rel: Infinity, why: `threw: ${e instanceof Error ? e.message : String(e)}` };
        }
        if (!c.check.ok) {
          failed.push({ layer: st.s.name, variant: v.id, dir: v.dir, why: c.check.why });
          log(`  MISMATCH ${st.s.name} ${DIR_LABEL[v.dir]} [${v.id}]: ${c.check.why} — dropped from timing`);
          c.inst?.dispose?.();
          continue;
        }
        cases.push(c);
      }
      delete st.ref[dir];
      // Ours and tfjs-wasm in turns (a variant whose check run was too slow to repeat is its one sample).
      const turns = cases.filter((c) => c.v.impl !== 'tfjs' && c.firstMs < opts.onceAbove * 1000);
      gc?.();
      if (turns.length > 0) {
        const m = await measureTurns(turns.map((c) => c.inst.run), { ...opts, minRuns: opts.layerMinRuns, maxRuns: opts.layerMaxRuns });
        const tw = turns.findIndex((c) => c.v.impl === 'tfjs-wasm');
        const pairs = (i) => ({ wall: m.ratio(tw, i), cpu: m.times[tw].cpuMs / m.times[i].cpuMs });
        turns.forEach((c, i) => rows.push(rowOf(c, m.times[i], tw >= 0 && c.v.impl === 'ours' ? pairs(i) : null)));
      }
      for (const c of cases.filter((x) => !turns.includes(x))) {
        gc?.();
        let first = c.firstMs;
        if (first < opts.onceAbove * 1000) first = await timeOnce(c.inst.run);
        rows.push(rowOf(c, await measure(c.inst.run, first, opts), null));
      }
      for (const c of cases) c.inst.dispose?.();
      for (const r of rows.filter((x) => x.layer === s.name && x.dir === dir)) print(r);
    }
    disposeState(st);
  }
  if (failed.length === 0) log('All results match.');
  else log(`${failed.length} variant(s) disagree with the reference and were dropped; the rest match.`);
  for (const sk of dedupe(skipped)) log(`  note: ${sk}`);
  return { rows, skipped, failed };
}

function dedupe(skipped) {
  const by = new Map();
  for (const s of skipped) by.set(s.why, [...(by.get(s.why) ?? []), s.layer]);
  return [...by.entries()].map(([why, layers]) => `${why}: ${layers.join(', ')}`);
}

/**
 * The layer table as Markdown: one row per (shape, pass, our variant), tfjs and tfjs-wasm alongside; rows in shape
 * order. ms = median wall time, min = the fastest run, CPU = median process CPU time of a call (ours on 2 threads:
 * both threads' time). ours/tfjs-wasm is the median over rounds of tfjs-wasm's time ÷ ours in the same round; on the
 * `[1 thread]` and `[eval 1 thread]` rows it compares one thread with one thread, and `by CPU` is tfjs-wasm's median
 * CPU time ÷ ours there: the steadiest ratio on a loaded machine (two runs: 3% apart at the median, against 11% for
 * the wall ratio).
 */
export function layerTable(rows) {
  const header = ['layer', 'pass', 'MFLOP', 'ours ms', 'min', 'CPU', 'ours GFLOP/s', 'tfjs ms', 'tfjs GFLOP/s', 'ours/tfjs', 'tfjs-wasm ms', 'min', 'CPU', 'tfjs-wasm GFLOP/s', 'ours/tfjs-wasm', 'by CPU', 'check'];
  const order = new Map(LAYERS.map((s, i) => [s.name, i]));
  const key = (r) => `${String(order.get(r.layer)).padStart(3, '0')} ${DIRS.indexOf(r.dir)}`;
  const groups = new Map();
  for (const r of [...rows].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0))) groups.set(key(r), [...(groups.get(key(r)) ?? []), r]);
  const out = [];
  let lastLayer = null;
  const opt = (x) => (x === null || x === undefined ? '—' : fmtMs(x));
  for (const g of groups.values()) {
    const tf = g.find((r) => r.impl === 'tfjs') ?? null;
    const tw = g.find((r) => r.impl === 'tfjs-wasm') ?? null;
    const ours = g.filter((r) => r.impl === 'ours');
    ours.sort((a, b) => variantRank(a.variant) - variantRank(b.variant));
    for (const r of ours.length ? ours : [null]) {
      const any = r ?? tf ?? tw;
      const first = r === null || r === ours[0];
      const blank = first ? '—' : '';
      out.push([
        any.layer === lastLayer ? '' : any.layer,
        `${DIR_SHORT[any.dir]}${r && r.variant !== 'ours' ? ` [${r.variant.slice(5)}]` : ''}`,
        any.mflop.toFixed(0),
        r ? fmtMs(r.ms) : '—',
        r ? opt(r.minMs) : '—',
        r ? opt(r.cpuMs) : '—',
        r ? fmtG(r.gflops) : '—',
        first && tf ? fmtMs(tf.ms) + (tf.once ? '¹' : '') : blank,
        first && tf ? fmtG(tf.gflops) : blank,
        r && tf ? fmtRatio(tf.ms / r.ms) : '—',
        first && tw ? fmtMs(tw.ms) + (tw.once ? '¹' : '') : blank,
        first && tw ? opt(tw.minMs) : blank,
        first && tw ? opt(tw.cpuMs) : blank,
        first && tw ? fmtG(tw.gflops) : blank,
        r && tw ? fmtRatio(r.pairedRatio ?? tw.ms / r.ms) : '—',
        r && tw && r.threads === 1 && r.cpuRatio ? fmtRatio(r.cpuRatio) : '—',
        [r, first ? tf : null, first ? tw : null].map((x) => (x ? fmtRel(x.checkRel) : '—')).join(' / '),
      ]);
      lastLayer = any.layer;
    }
  }
  return table(header, out);
}

const variantRank = (id) => ['ours', 'ours:winograd', 'ours:im2col', 'ours:1 thread', 'ours:eval', 'ours:eval 1 thread'].indexOf(id);
