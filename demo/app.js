// The page: form, progress, chart and prediction view. The library runs in ./worker.js (see there why); the page
// only draws what the worker reports. URL parameters prefill the form (epochs, batchSize, lr, seed) and set
// `threads` (default: the browser's core count) and `steps` (stop after that many steps; 0 = whole epochs).
// window.demoState holds the last results, for the browser test.

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const form = $('train-form');
for (const name of ['epochs', 'batchSize', 'lr', 'seed']) if (params.has(name)) form.elements[name].value = params.get(name);

const state = { ready: null, train: null, prediction: null, weights: null, errors: [] };
window.demoState = state;

const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module', name: 'resnet-ts demo' });
worker.postMessage({ type: 'init', lib: import.meta.resolve('resnet-ts/browser'), threads: Number(params.get('threads') ?? 0) });

let classes = [];
let points = [];
let evals = [];
let total = 1;
let pendingImage = null;

worker.onmessage = ({ data: m }) => {
  if (m.type === 'ready') {
    state.ready = m;
    classes = m.classes;
    const kind = m.kernels.backend === 'simd' ? `WebAssembly SIMD${m.kernels.fma ? ' with relaxed-SIMD FMA' : ''}` : 'JavaScript';
    $('threads').textContent =
      m.threads > 1 ? `${kind} kernels on ${m.threads} threads (Web Workers).` : `${kind} kernels on one thread: ${m.reason ?? 'threads set to 1'}.`;
    $('status').textContent = `${m.train} training and ${m.test} test images loaded. Press Train.`;
    $('train-button').disabled = false;
  } else if (m.type === 'start') {
    total = m.total;
    points = [];
    evals = [];
    draw();
  } else if (m.type === 'progress') {
    points.push(m);
    $('bar').style.width = `${(100 * m.step) / m.total}%`;
    $('status').textContent = `step ${m.step}/${m.total} · epoch ${m.epoch + 1} · loss ${m.loss.toFixed(4)} · train accuracy ${(100 * m.trainAccuracy).toFixed(1)}% · ${m.imagesPerSec.toFixed(1)} images/s`;
    draw();
  } else if (m.type === 'eval') {
    evals.push(m);
    draw();
  } else if (m.type === 'done') {
    state.train = m;
    $('status').textContent = `${m.stopped ? 'Stopped' : 'Done'} after ${m.step} steps (${m.seconds.toFixed(1)} s): test accuracy ${(100 * m.eval.accuracy).toFixed(1)}%, test loss ${m.eval.loss.toFixed(4)}.${m.pool ? ` ${m.pool.workerUnits} kernel units ran on worker threads.` : ''}`;
    if (evals.length === 0 || evals[evals.length - 1].step !== m.step) evals.push({ step: m.step, ...m.eval });
    draw();
    setRunning(false);
    $('save-button').disabled = false;
    if (pendingImage) predictNow();
  } else if (m.type === 'weights') {
    state.weights = m;
    $('predict-status').textContent = `Weights loaded (digest ${m.digest}).`;
    if (pendingImage) predictNow();
  } else if (m.type === 'prediction') {
    state.prediction = m;
    showPrediction(m);
  } else if (m.type === 'saved') {
    const a = document.createElement('a');
    a.href = URL.createObjectURL(new Blob([m.bytes], { type: 'application/octet-stream' }));
    a.download = 'resnet20-fashion-mnist.safetensors';
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
  } else if (m.type === 'error') {
    state.errors.push(m.message);
    (state.train === null && points.length > 0 ? $('status') : $('predict-status')).textContent = `Error: ${m.message}`;
    setRunning(false);
  }
};

function setRunning(on) {
  $('train-button').disabled = on;
  $('stop-button').disabled = !on;
}

form.addEventListener('submit', (e) => {
  e.preventDefault();
  const f = form.elements;
  state.train = null;
  setRunning(true);
  $('status').textContent = 'Building ResNet-20…';
  worker.postMessage({
    type: 'train', epochs: Number(f.epochs.value), batchSize: Number(f.batchSize.value), lr: Number(f.lr.value),
    seed: Number(f.seed.value), maxSteps: Number(params.get('steps') ?? 0),
  });
});
$('stop-button').addEventListener('click', () => worker.postMessage({ type: 'stop' }));
$('save-button').addEventListener('click', () => worker.postMessage({ type: 'save' }));

// --- The chart: loss per step (left axis, 0..max), accuracies (right axis, 0..100%).
const W = 640, H = 260, L = 44, R = 44, T = 12, B = 30;
function draw() {
  const svg = $('chart');
  const maxLoss = Math.max(2.5, ...points.map((p) => p.loss));
  const x = (step) => L + ((W - L - R) * step) / Math.max(total, 1);
  const yl = (v) => T + (H - T - B) * (1 - v / maxLoss);
  const ya = (v) => T + (H - T - B) * (1 - v);
  const line = (pts, cls) => (pts.length ? `<polyline class="${cls}" points="${pts.map(([a, b]) => `${a.toFixed(1)},${b.toFixed(1)}`).join(' ')}"/>` : '');
  let s = `<line class="axis" x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}"/><line class="axis" x1="${L}" y1="${T}" x2="${L}" y2="${H - B}"/><line class="axis" x1="${W - R}" y1="${T}" x2="${W - R}" y2="${H - B}"/>`;
  for (let i = 0; i <= 4; i++) {
    const v = (maxLoss * i) / 4;
    s += `<text x="${L - 6}" y="${yl(v) + 4}" text-anchor="end">${v.toFixed(1)}</text><text x="${W - R + 6}" y="${ya(i / 4) + 4}">${i * 25}%</text>`;
  }
  s += `<text x="${(L + W - R) / 2}" y="${H - 8}" text-anchor="middle">step (of ${total})</text>`;
  s += line(points.map((p) => [x(p.step), yl(p.loss)]), 'loss');
  s += line(points.map((p) => [x(p.step), ya(p.trainAccuracy)]), 'acc');
  for (const e of evals) s += `<circle class="eval" cx="${x(e.step).toFixed(1)}" cy="${ya(e.accuracy).toFixed(1)}" r="4"><title>test accuracy ${(100 * e.accuracy).toFixed(1)}%</title></circle>`;
  svg.innerHTML = s;
}
draw();

// --- Predict: files from a drop or the file input.
async function takeFiles(files) {
  for (const file of files) {
    const bytes = await file.arrayBuffer();
    if (file.name.endsWith('.safetensors')) worker.postMessage({ type: 'weights', bytes }, [bytes]);
    else pendingImage = bytes;
  }
  if (pendingImage && (state.train !== null || state.weights !== null)) predictNow();
  else if (pendingImage) $('predict-status').textContent = 'Image ready: train a model or drop a .safetensors file.';
}
function predictNow() {
  const image = pendingImage.slice(0);
  worker.postMessage({ type: 'predict', image }, [image]);
}
const drop = $('drop');
drop.addEventListener('dragover', (e) => {
  e.preventDefault();
  drop.classList.add('over');
});
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  void takeFiles(e.dataTransfer.files);
});
$('files').addEventListener('change', (e) => void takeFiles(e.target.files));

function showPrediction(m) {
  const c = $('input-view').getContext('2d');
  const img = c.createImageData(28, 28);
  for (let i = 0; i < 784; i++) img.data.set([m.pixels[i], m.pixels[i], m.pixels[i], 255], 4 * i);
  c.putImageData(img, 0, 0);
  $('top5').innerHTML = m.top
    .map((t) => `<li><span>${t.name}</span><span class="track"><span class="bar" style="width:${(100 * t.p).toFixed(1)}%"></span></span><span class="p">${(100 * t.p).toFixed(1)}%</span></li>`)
    .join('');
  $('predict-status').textContent = `${m.width}×${m.height} image${m.inverted ? ', inverted (light background)' : ''}, resized to 28×28.`;
}
