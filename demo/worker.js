// The page's worker: resnet-ts runs here, not on the page's main thread, because its kernels block in Atomics.wait
// while their sub-workers compute (browsers allow that only in workers). The page sends the library's URL (its
// import map's entry: import maps do not reach into workers), then commands; this worker answers with messages.

import * as demo from './train.js';

let rt = null;
let data = null;
let run = null;
let model = null;
let stopRequested = false;
let busy = false;

const post = (m) => self.postMessage(m);
/** Lets messages (a stop) and the kernel workers' start-up in: a blocked worker's event loop does not run. */
const pause = () => new Promise((r) => setTimeout(r, 0));

async function init({ lib, threads }) {
  rt = await import(lib);
  // Which kernels run (WebAssembly SIMD or JavaScript, relaxed-SIMD FMA or not): not part of the public API, read
  // from the library's own module (the same URL, so the same instance).
  const features = await import(new URL('./kernels/wasm/features.js', lib).href);
  const kernels = { backend: features.kernelBackend(), fma: features.usesFma() };
  const warnings = [];
  const warn = console.warn;
  console.warn = (...a) => {
    warnings.push(a.join(' '));
    warn.apply(console, a);
  };
  const got = await rt.initThreads(threads > 0 ? threads : undefined);
  console.warn = warn;
  const [png, meta] = await Promise.all([
    fetch(new URL('./data/fashion-mnist-600.png', import.meta.url)).then((r) => r.arrayBuffer()),
    fetch(new URL('./data/fashion-mnist-600.json', import.meta.url)).then((r) => r.json()),
  ]);
  data = demo.datasetsFromSprite(rt, new Uint8Array(png), meta);
  post({ type: 'ready', threads: got, reason: rt.singleThreadReason(), kernels, warnings, classes: meta.classes, train: data.train.length, test: data.test.length });
}

async function train({ epochs, batchSize, lr, seed, maxSteps }) {
  stopRequested = false;
  run = demo.createRun(rt, data.train, { seed, batchSize, lr });
  model = run.model;
  const perEpoch = run.loader.length;
  const total = maxSteps > 0 ? Math.min(maxSteps, perEpoch * epochs) : perEpoch * epochs;
  const losses = [];
  let step = 0;
  let seen = 0;
  const t0 = performance.now();
  post({ type: 'start', total, perEpoch });
  outer: for (let epoch = 0; epoch < epochs; epoch++) {
    let correct = 0;
    let count = 0;
    for (const batch of run.loader) {
      const r = demo.trainStep(rt, run, batch);
      step++;
      seen += batch.y.length;
      correct += r.correct;
      count += batch.y.length;
      losses.push(demo.bits(r.loss));
      const secs = (performance.now() - t0) / 1000;
      post({ type: 'progress', step, total, epoch, loss: r.loss, trainAccuracy: correct / count, imagesPerSec: seen / secs });
      await pause();
      if (stopRequested || step >= total) break outer;
    }
    const ev = demo.evaluate(rt, model, data.test);
    post({ type: 'eval', step, epoch, ...ev });
    await pause();
  }
  const ev = demo.evaluate(rt, model, data.test);
  post({
    type: 'done', step, stopped: stopRequested, losses, digest: demo.stateDigest(model), eval: ev, evalBits: [demo.bits(ev.loss), demo.bits(ev.accuracy)],
    seconds: (performance.now() - t0) / 1000, pool: rt.poolStats(),
  });
}

function loadWeights(bytes) {
  const m = rt.models.resnet20({ inChannels: 1, numClasses: 10 });
  m.loadStateDict(rt.io.loadSafetensors(new Uint8Array(bytes)));
  model = m;
  post({ type: 'weights', digest: demo.stateDigest(m) });
}

function predict({ image }) {
  if (model === null) throw new Error('no model yet: train one, or drop a .safetensors file of a resnet20({ inChannels: 1 })');
  const img = rt.io.decodeImage(new Uint8Array(image));
  const { input, inverted, pixels } = demo.imageToInput(rt, img);
  const probs = demo.predict(rt, model, input);
  post({ type: 'prediction', top: demo.topK(probs, data.train.classNames), probsBits: Array.from(probs, demo.bits), inverted, pixels, width: img.width, height: img.height });
}

function save() {
  const bytes = rt.io.saveSafetensors(model.stateDict(), { model: 'resnet20', inChannels: '1', numClasses: '10' });
  post({ type: 'saved', bytes });
}

self.onmessage = async (e) => {
  const m = e.data;
  if (m.type === 'stop') {
    stopRequested = true;
    return;
  }
  if (busy) return post({ type: 'error', message: `busy: '${m.type}' ignored` });
  busy = true;
  try {
    if (m.type === 'init') await init(m);
    else if (m.type === 'train') await train(m);
    else if (m.type === 'weights') loadWeights(m.bytes);
    else if (m.type === 'predict') predict(m);
    else if (m.type === 'save') save();
  } catch (err) {
    post({ type: 'error', message: err instanceof Error ? err.message : String(err) });
  } finally {
    busy = false;
  }
};
