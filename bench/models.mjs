// Whole models: eval forward of ResNet-18/50 at 1×3×224×224 and train steps (forward + cross-entropy + backward +
// SGD) of ResNet-18 at 8×3×32×32 and the CIFAR ResNet-20 at 32×3×32×32; ours vs the same nets written in tfjs-core
// ops (NHWC) with weights copied from ours. Check first (logits, and for train steps the loss and two weight
// gradients, within 1e-3·max|ref|), then time. Eval rows time ours and tfjs-backend-wasm taking turns
// (lib.measureTurns), so that the host's slow spells fall on both alike; tfjs's CPU backend (seconds per call) and
// the train steps are timed on their own.

import { useTfBackend } from './tfjs.mjs';
import { compare, fmtG, fmtMs, fmtRatio, fmtRel, measure, measureTurns, permute4, randomArray, selected, table, timeOnce } from './lib.mjs';

/** Tolerance of the model checks: max |Δ| ≤ TOL · max |ours|. */
export const TOL = 1e-3;
const LR = 0.01;

// ---- our side ------------------------------------------------------------------------------------------------

/**
 * Gives every BatchNorm random running statistics and affine parameters, so that eval-mode BN is not the identity
 * it is after init and the logits check exercises it. Scales stay near 1 so activations stay finite over 50 layers.
 */
function randomizeBatchNorms(lib, model, seed) {
  let k = seed;
  for (const [, m] of model.namedModules()) {
    if (!(m instanceof lib.nn.BatchNorm2d)) continue;
    const c = m.numFeatures;
    m.weight.data.set(randomArray(c, k++, 0.4, 0.9));
    m.bias.data.set(randomArray(c, k++, -0.1, 0.1));
    m.runningMean.data.set(randomArray(c, k++, -0.1, 0.1));
    m.runningVar.data.set(randomArray(c, k++, 0.5, 1.5));
  }
}

/** Runs fn while counting the multiply-adds of every Conv2d and Linear forward (the rest is not counted). */
function countingMacs(lib, model, fn) {
  let macs = 0;
  const restore = [];
  for (const [, m] of model.namedModules()) {
    const isConv = m instanceof lib.nn.Conv2d;
    if (!isConv && !(m instanceof lib.nn.Linear)) continue;
    const orig = m.forward;
    m.forward = (x) => {
      const y = orig.call(m, x);
      macs += isConv ? y.size * (m.inChannels / m.groups) * m.kernelSize[0] * m.kernelSize[1] : (y.size / m.outFeatures) * m.inFeatures * m.outFeatures;
      return y;
    };
    restore.push(() => delete m.forward);
  }
  try {
    return { result: fn(), macs };
  } finally {
    for (const r of restore) r();
  }
}

// ---- the same nets in tfjs-core ops (NHWC) ----------------------------------------------------------------------

let tfModelId = 0;

/**
 * Copies our model's parameters and buffers into tfjs variables (conv weights OIHW → HWIO) and returns
 * { forward(x, training), vars, byName }. The forward is an independent re-implementation over the module tree:
 * it knows the block classes and their wiring, not our ops.
 */
function tfjsModel(lib, tf, model) {
  const id = tfModelId++;
  const P = new Map(); // our Tensor → tf.Variable
  const byName = new Map();
  const vars = [];
  const asVar = (name, t, shape, data, trainable) => {
    // Copied: tf.tensor keeps a reference to a typed array, and our optimizer updates ours in place.
    const init = tf.tensor(Float32Array.from(data), shape);
    const v = tf.variable(init, trainable, `m${id}.${name}`);
    init.dispose();
    P.set(t, v);
    if (trainable) {
      byName.set(name, v);
      vars.push(v);
    }
  };
  for (const [name, m] of model.namedModules()) {
    const pre = name ? `${name}.` : '';
    if (m instanceof lib.nn.Conv2d) {
      if (m.groups !== 1 || m.bias) throw new Error(`tfjs model: ${name}: only groups=1 convs without bias are translated`);
      const [o, c, kh, kw] = m.weight.shape;
      asVar(`${pre}weight`, m.weight, [kh, kw, c, o], permute4(m.weight.data, [o, c, kh, kw], [2, 3, 1, 0]), true);
    } else if (m instanceof lib.nn.BatchNorm2d) {
      asVar(`${pre}weight`, m.weight, m.weight.shape, m.weight.data, true);
      asVar(`${pre}bias`, m.bias, m.bias.shape, m.bias.data, true);
      asVar(`${pre}running_mean`, m.runningMean, m.runningMean.shape, m.runningMean.data, false);
      asVar(`${pre}running_var`, m.runningVar, m.runningVar.shape, m.runningVar.data, false);
    } else if (m instanceof lib.nn.Linear) {
      asVar(`${pre}weight`, m.weight, m.weight.shape, m.weight.data, true);
      if (m.bias) asVar(`${pre}bias`, m.bias, m.bias.shape, m.bias.data, true);
    }
  }
  const { BasicBlock, Bottleneck, CifarBasicBlock, ResNet, CifarResNet, ShortcutA } = lib.models;
  const nn = lib.nn;

  const run = (m, x, training) => {
    if (m instanceof nn.Sequential) {
      for (const c of m.children()) x = run(c, x, training);
      return x;
    }
    if (m instanceof nn.Conv2d) {
      const pad = m.padding;
      if (typeof pad === 'string' || pad[0] !== pad[1] || m.dilation.some((d) => d !== 1)) throw new Error('tfjs model: unsupported conv padding/dilation');
      return tf.conv2d(x, P.get(m.weight), m.stride, pad[0], 'NHWC');
    }
    if (m instanceof nn.BatchNorm2d) {
      if (training) {
        // Batch statistics with the biased variance, as PyTorch normalizes (running stats are not updated here).
        const { mean, variance } = tf.moments(x, [0, 1, 2]);
        return tf.batchNorm(x, mean, variance, P.get(m.bias), P.get(m.weight), m.eps);
      }
      return tf.batchNorm(x, P.get(m.runningMean), P.get(m.runningVar), P.get(m.bias), P.get(m.weight), m.eps);
    }
    if (m instanceof nn.ReLU) return tf.relu(x);
    if (m instanceof nn.MaxPool2d) {
      const { kernelSize: k, stride: s, padding: p = 0 } = m.opts;
      if (typeof k !== 'number' || typeof p !== 'number' || (s != null && typeof s !== 'number')) throw new Error('tfjs model: unsupported maxpool options');
      return tf.maxPool(x, k, s ?? k, p); // tfjs skips out-of-range taps: the same as PyTorch's −∞ padding
    }
    if (m instanceof nn.AdaptiveAvgPool2d) return tf.mean(x, [1, 2], true);
    if (m instanceof nn.Linear) {
      const y = tf.matMul(x, P.get(m.weight), false, true);
      return m.bias ? tf.add(y, P.get(m.bias)) : y;
    }
    if (m instanceof ShortcutA) {
      // x[:, ::s, ::s, :] with zero channels, floor((out − in)/2) before and the rest after.
      // (tfjs has no gradient for stridedSlice: reshape to (n, h/s, s, w/s, s, c) and slice offset 0 instead.)
      const [n, h, w, c] = x.shape;
      const s = m.stride;
      if (h % s !== 0 || w % s !== 0) throw new Error(`tfjs model: option-A shortcut needs H, W divisible by ${s}, got ${h}×${w}`);
      const sub = tf.reshape(tf.slice(tf.reshape(x, [n, h / s, s, w / s, s, c]), [0, 0, 0, 0, 0, 0], [n, h / s, 1, w / s, 1, c]), [n, h / s, w / s, c]);
      const before = Math.floor((m.outChannels - c) / 2);
      return tf.pad(sub, [[0, 0], [0, 0], [0, 0], [before, m.outChannels - c - before]]);
    }
    if (m instanceof BasicBlock || m instanceof CifarBasicBlock) {
      let out = tf.relu(run(m.bn1, run(m.conv1, x, training), training));
      out = run(m.bn2, run(m.conv2, out, training), training);
      if (m instanceof CifarBasicBlock && !m.residual) return tf.relu(out);
      const proj = m instanceof CifarBasicBlock ? m.shortcut ?? m.downsample : m.downsample;
      return tf.relu(tf.add(out, proj ? run(proj, x, training) : x));
    }
    if (m instanceof Bottleneck) {
      let out = tf.relu(run(m.bn1, run(m.conv1, x, training), training));
      out = tf.relu(run(m.bn2, run(m.conv2, out, training), training));
      out = run(m.bn3, run(m.conv3, out, training), training);
      return tf.relu(tf.add(out, m.downsample ? run(m.downsample, x, training) : x));
    }
    if (m instanceof ResNet) {
      let y = run(m.maxpool, tf.relu(run(m.bn1, run(m.conv1, x, training), training)), training);
      for (const l of [m.layer1, m.layer2, m.layer3, m.layer4]) y = run(l, y, training);
      y = run(m.avgpool, y, training);
      return run(m.fc, tf.reshape(y, [y.shape[0], -1]), training);
    }
    if (m instanceof CifarResNet) {
      let y = tf.relu(run(m.bn1, run(m.conv1, x, training), training));
      for (const l of [m.layer1, m.layer2, m.layer3]) y = run(l, y, training);
      y = run(m.avgpool, y, training);
      return run(m.fc, tf.reshape(y, [y.shape[0], -1]), training);
    }
    throw new Error(`tfjs model: no translation for ${m.typeName}`);
  };
  return {
    forward: (x, training) => run(model, x, training),
    vars,
    byName,
    dispose: () => { for (const v of P.values()) v.dispose(); },
  };
}

// ---- the cases -----------------------------------------------------------------------------------------------

const CASES = [
  { name: 'ResNet-18 eval fwd 1×3×224×224', kind: 'eval', make: (lib) => lib.models.resnet18(), input: [1, 3, 224, 224], quick: true },
  { name: 'ResNet-50 eval fwd 1×3×224×224', kind: 'eval', make: (lib) => lib.models.resnet50(), input: [1, 3, 224, 224], quick: false },
  { name: 'ResNet-18 train step 8×3×32×32', kind: 'train', make: (lib) => lib.models.resnet18({ numClasses: 10 }), input: [8, 3, 32, 32], quick: true },
  { name: 'ResNet-20 train step 32×3×32×32', kind: 'train', make: (lib) => lib.models.resnet20(), input: [32, 3, 32, 32], quick: true },
];

/** Model timing policy. tfjs: a check run slower than `onceAbove` s is the one sample, else ≥ minRuns repeats; ours always repeats. */
function modelTiming(opts) {
  return {
    minTime: opts.minTime, minRuns: opts.quick ? 1 : 3, maxRuns: opts.quick ? 3 : 10, onceAbove: opts.quick ? 2 : 5,
    warmupRuns: opts.quick ? 3 : 5, warmupTime: opts.quick ? 2 : 4,
  };
}

/** Runs the model rows; returns { rows, notes, failed }. */
export async function benchModels(lib, tf, opts, log) {
  const rows = [];
  const notes = [];
  const failed = [];
  const timing = modelTiming(opts);
  const cases = CASES.filter((c) => (!opts.quick || c.quick) && selected(opts, c.name));
  if (cases.length === 0) log('models: no model matches --filter');
  if (tf && cases.some((c) => c.kind === 'train')) {
    if (!opts.tfjsTrain) notes.push(`tfjs train steps not run (${opts.quick ? '--quick' : '--no-tfjs-train'}; they take tens of seconds to minutes: add --tfjs-train).`);
    else if (!opts.tfjsGradients) notes.push('tfjs train steps not run: this tfjs build has no gradients registered (see the note at the top).');
  }
  for (const c of cases) {
    const r = c.kind === 'eval' ? await evalCase(lib, tf, c, timing, log, opts) : await trainCase(lib, tf, c, opts, timing, log);
    rows.push(r);
    if (r.failed) failed.push({ model: c.name, why: r.failed });
  }
  notes.push('GFLOP/s counts conv + linear multiply-adds × 2 (BN, ReLU, pooling, adds and the loss are not counted); a train step counts 3× the forward (forward, backward input, backward weight).');
  notes.push(`check = max|Δ|/max|ours| of the logits (eval) or of the loss and the conv1/fc weight gradients of the first step (train), tolerance ${TOL}; tfjs trains BN with batch statistics but does not update its running statistics. ¹ timed once (the check run).`);
  return { rows, notes, failed };
}

async function evalCase(lib, tf, c, timing, log, opts) {
  lib.manualSeed(0);
  const model = c.make(lib).eval();
  randomizeBatchNorms(lib, model, 100);
  const [n, ch, h, w] = c.input;
  const xData = randomArray(n * ch * h * w, 7);
  const x = lib.tensor(xData, c.input);
  const row = { model: c.name, kind: 'eval', batch: n, gflop: 0, ours: null, tfjs: null, checkRel: null, failed: null };

  // Our check run is the warm-up; it also counts the FLOPs.
  let y = null;
  // What a user writes: the model recycles its activations itself in eval mode without gradients (no withArena needed).
  const oursFwd = () => { y = lib.noGrad(() => model.forward(x)); };
  const t0 = performance.now();
  countingMacs(lib, model, oursFwd);
  const firstOurs = performance.now() - t0;
  // eval mode under noGrad runs the fused conv+BN ops, which bypass the conv modules: count with summary()
  row.gflop = (2 * lib.models.summary(model, c.input).totalMacs) / 1e9;
  const yOurs = Float32Array.from(y.data);
  let maxAbs = 0;
  for (const v of yOurs) maxAbs = Math.max(maxAbs, Math.abs(v));
  if (!Number.isFinite(maxAbs)) throw new Error(`${c.name}: our logits are not finite`);

  let tfm = null, xT = null, tfCheck = null, firstTf = 0, last = null;
  const tfFwd = () => {
    const out = tf.tidy(() => tfm.forward(xT, false));
    if (last) last.dispose();
    last = out;
  };
  if (tf) {
    tfm = tfjsModel(lib, tf, model);
    xT = tf.tensor4d(permute4(xData, c.input, [0, 2, 3, 1]), [n, h, w, ch]);
    firstTf = await timeOnce(tfFwd);
    tfCheck = compare(last.dataSync(), yOurs, TOL);
    row.checkRel = tfCheck.rel;
    if (!tfCheck.ok) {
      row.failed = `logits: ${tfCheck.why}`;
      log(`  MISMATCH ${c.name}: tfjs ${row.failed} — tfjs not timed`);
    } else log(`  ${c.name}: logits match (max|Δ|/max|y| = ${fmtRel(tfCheck.rel)}, max|y| = ${maxAbs.toPrecision(3)}).`);
  }

  // tfjs's CPU backend (seconds per call) may be timed once, on its own, after its check run.
  if (tf && tfCheck.ok) {
    const tt = await measure(tfFwd, firstTf, timing);
    row.tfjs = { ms: tt.ms, runs: tt.runs, once: tt.once };
  }
  if (tfm) {
    last?.dispose();
    last = null;
    xT.dispose();
    tfm.dispose();
  }
  // Ours always gets timed runs after the check run (which paid for JIT warm-up). With tfjs-wasm checked, the two
  // are timed taking turns (lib.measureTurns: a slow spell of the host falls on both alike), else ours alone.
  const wasm = tf && opts.tfjsWasm ? await tfjsWasmSetup(lib, tf, model, c, xData, yOurs, log) : null;
  try {
    if (wasm?.fwd) {
      const m = await measureTurns([oursFwd, wasm.fwd], { ...timing, onceAbove: Infinity });
      const [to, tw] = m.times;
      row.ours = { ms: to.ms, cpuMs: to.cpuMs, runs: to.runs, once: false };
      row.tfjsWasm = { ms: tw.ms, runs: tw.runs, once: false, checkRel: wasm.checkRel };
    } else {
      const t = await measure(oursFwd, firstOurs, { ...timing, onceAbove: Infinity });
      row.ours = { ms: t.ms, runs: t.runs, once: t.once };
      if (wasm) row.tfjsWasm = { failed: wasm.failed };
    }
  } finally {
    await wasm?.dispose();
  }
  logRow(row, log);
  return row;
}

/**
 * The same net on tfjs-backend-wasm (variables created on it), checked against our logits: { fwd, checkRel,
 * dispose } (fwd: one forward, to be timed) or { failed, dispose }.
 */
async function tfjsWasmSetup(lib, tf, model, c, xData, yOurs, log) {
  const [n, ch, h, w] = c.input;
  await tf.setBackend('wasm');
  const tfm = tfjsModel(lib, tf, model);
  const xT = tf.tensor4d(permute4(xData, c.input, [0, 2, 3, 1]), [n, h, w, ch]);
  let last = null;
  const fwd = async () => {
    await useTfBackend(tf, 'wasm');
    const out = tf.tidy(() => tfm.forward(xT, false));
    if (last) last.dispose();
    last = out;
  };
  const dispose = async () => {
    last?.dispose();
    xT.dispose();
    tfm.dispose();
    await tf.setBackend('cpu');
  };
  try {
    // The check run uploads the weights and builds XNNPACK's operators (seconds); measureTurns warms up after it.
    await timeOnce(fwd);
    const chk = compare(last.dataSync(), yOurs, TOL);
    if (!chk.ok) {
      log(`  MISMATCH ${c.name}: tfjs-wasm logits: ${chk.why} — not timed`);
      return { failed: chk.why, dispose };
    }
    log(`  ${c.name}: tfjs-wasm logits match (max|Δ|/max|y| = ${fmtRel(chk.rel)}).`);
    return { fwd, checkRel: chk.rel, dispose };
  } catch (e) {
    await dispose();
    throw e;
  }
}

async function trainCase(lib, tf, c, opts, timing, log) {
  lib.manualSeed(0);
  const model = c.make(lib).train();
  const [n, ch, h, w] = c.input;
  const xData = randomArray(n * ch * h * w, 11);
  const x = lib.tensor(xData, c.input);
  const classes = model.fc.outFeatures;
  const target = Array.from({ length: n }, (_, i) => (i * 7) % classes);
  const row = { model: c.name, kind: 'train', batch: n, gflop: 0, ours: null, tfjs: null, checkRel: null, failed: null, tfjsNote: null };

  // tfjs copies the weights before our first step changes them.
  let tfm = null;
  if (tf && opts.tfjsTrain && opts.tfjsGradients) tfm = tfjsModel(lib, tf, model);

  const opt = new lib.optim.SGD(model.parameters(), { lr: LR });
  let loss = null;
  const step = () => {
    opt.zeroGrad();
    loss = lib.nn.functional.crossEntropy(model.forward(x), target);
    loss.backward();
    opt.step();
  };
  // Check run = warm-up; the gradients are read before step() changes the weights' values (not the grads).
  const t0 = performance.now();
  const { macs } = countingMacs(lib, model, step);
  const firstOurs = performance.now() - t0;
  row.gflop = (3 * 2 * macs) / 1e9;
  const oursLoss = loss.item();
  const oursGrads = {
    'conv1.weight': Float32Array.from(model.conv1.weight.grad.data),
    'fc.weight': Float32Array.from(model.fc.weight.grad.data),
  };
  if (!Number.isFinite(oursLoss)) throw new Error(`${c.name}: our loss is not finite`);

  if (tfm) {
    const xT = tf.tensor4d(permute4(xData, c.input, [0, 2, 3, 1]), [n, h, w, ch]);
    const onehot = tf.oneHot(tf.tensor1d(target, 'int32'), classes);
    const tfOpt = tf.train.sgd(LR);
    let tfLoss = null, tfGrads = null;
    const tfStep = () => {
      const { value, grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(onehot, tfm.forward(xT, true)), tfm.vars);
      tfOpt.applyGradients(grads);
      tfLoss?.dispose();
      if (tfGrads) for (const g of Object.values(tfGrads)) g.dispose();
      tfLoss = value;
      tfGrads = grads;
    };
    log(`  ${c.name}: running one tfjs train step (slow) …`);
    const firstTf = await timeOnce(tfStep);
    // Check: loss and two gradients of the first step against ours.
    const gConv = tfGrads[tfm.byName.get('conv1.weight').name];
    const [o, ci, kh, kw] = model.conv1.weight.shape;
    const checks = [
      { k: 'loss', r: compare(Float32Array.of(tfLoss.dataSync()[0]), Float32Array.of(oursLoss), TOL) },
      { k: 'conv1.weight grad', r: compare(permute4(gConv.dataSync(), [kh, kw, ci, o], [3, 2, 0, 1]), oursGrads['conv1.weight'], TOL) },
      { k: 'fc.weight grad', r: compare(tfGrads[tfm.byName.get('fc.weight').name].dataSync(), oursGrads['fc.weight'], TOL) },
    ];
    const bad = checks.filter(({ r }) => !r.ok);
    row.checkRel = Math.max(...checks.map(({ r }) => r.rel));
    if (bad.length) {
      row.failed = bad.map(({ k, r }) => `${k}: ${r.why}`).join('; ');
      log(`  MISMATCH ${c.name}: tfjs ${row.failed} — tfjs time not reported`);
    } else {
      log(`  ${c.name}: loss ${oursLoss.toFixed(5)} and gradients match (${checks.map(({ k, r }) => `${k} ${fmtRel(r.rel)}`).join(', ')}).`);
      const tt = await measure(tfStep, firstTf, timing);
      row.tfjs = { ms: tt.ms, runs: tt.runs, once: tt.once };
    }
    tfLoss?.dispose();
    if (tfGrads) for (const g of Object.values(tfGrads)) g.dispose();
    xT.dispose();
    onehot.dispose();
    tfOpt.dispose();
    tfm.dispose();
  } else if (tf) {
    row.tfjsNote = 'not run';
  }

  // A step calls each kernel a few times only, and these are the process's first training steps: V8 needs more steps
  // than a layer needs calls to tier every kernel up (its first steps run several times slower). So at least 15
  // untimed steps (`--quick`: 8), then the median of at least 8 (3).
  const trainTiming = {
    ...timing, onceAbove: Infinity, warmupRuns: opts.quick ? 8 : 15, warmupTime: Infinity,
    minRuns: opts.quick ? 3 : 8, maxRuns: Math.max(timing.maxRuns, opts.quick ? 3 : 8),
  };
  const t = await measure(step, firstOurs, trainTiming);
  row.ours = { ms: t.ms, runs: t.runs, once: t.once };
  logRow(row, log);
  return row;
}

function logRow(r, log) {
  const part = (x) => (x?.ms ? `${x.ms.toFixed(0)} ms (${x.once ? 'one run' : `median of ${x.runs}`})` : '—');
  log(`  ${r.model}: ours ${part(r.ours)}, tfjs ${part(r.tfjs)}${r.tfjsWasm ? `, tfjs-wasm ${part(r.tfjsWasm)}` : ''}`);
}

/** The model rows as Markdown; with two more columns where a row has the PyTorch peer's time (bench/torch.mjs). */
export function modelTable(rows) {
  const torch = rows.find((r) => r.torch)?.torch.label;
  const header = ['model', 'GFLOP', 'ours ms', 'ours img/s', 'ours GFLOP/s', 'tfjs ms', 'tfjs img/s', 'tfjs GFLOP/s', 'ours/tfjs', 'tfjs-wasm ms', 'ours/tfjs-wasm', ...(torch ? [`${torch} ms`, 'ours/PyTorch'] : []), 'check'];
  const ms = (x) => (x ? fmtMs(x.ms) + (x.once ? '¹' : '') : null);
  const torchCells = (r) => (torch ? [r.torch ? fmtMs(r.torch.ms) : '—', r.ours && r.torch ? fmtRatio(r.torch.ms / r.ours.ms) : '—'] : []);
  return table(header, rows.map((r) => [
    r.model,
    r.gflop.toFixed(2),
    ms(r.ours) ?? '—',
    r.ours ? (r.batch / (r.ours.ms / 1000)).toFixed(2) : '—',
    r.ours ? fmtG(r.gflop / (r.ours.ms / 1000)) : '—',
    ms(r.tfjs) ?? (r.failed ? 'MISMATCH' : r.tfjsNote ?? '—'),
    r.tfjs ? (r.batch / (r.tfjs.ms / 1000)).toFixed(2) : '—',
    r.tfjs ? fmtG(r.gflop / (r.tfjs.ms / 1000)) : '—',
    r.ours && r.tfjs ? fmtRatio(r.tfjs.ms / r.ours.ms) : '—',
    r.tfjsWasm?.ms ? ms(r.tfjsWasm) : r.tfjsWasm?.failed ? 'MISMATCH' : '—',
    r.ours && r.tfjsWasm?.ms ? fmtRatio(r.tfjsWasm.ms / r.ours.ms) : '—',
    ...torchCells(r),
    (r.checkRel === null ? '—' : fmtRel(r.checkRel)) + (r.tfjsWasm?.checkRel !== undefined ? ` / ${fmtRel(r.tfjsWasm.checkRel)}` : ''),
  ]));
}
