// The demo's data, model, training step, evaluation and prediction, written once and run twice: by the page's
// worker (with resnet-ts/browser) and by the Node check in test/browser/demo.test.ts (with resnet-ts), which
// compares the two bit for bit. `rt` is the library's namespace; nothing here depends on where it runs.

/** Fashion-MNIST's mean and standard deviation (of pixel / 255), as in the README's training example. */
export const MEAN = 0.286;
export const STD = 0.353;

/** The two datasets inside the data sprite (demo/data/fashion-mnist-600.png + .json, see scripts/demo-data.mjs). */
export function datasetsFromSprite(rt, pngBytes, meta) {
  const sprite = rt.io.decodeImage(pngBytes);
  const side = meta.side;
  const cut = (part) => {
    const images = new Uint8Array(part.count * side * side);
    for (let i = 0; i < part.count; i++) {
      const t = part.start + i;
      const x0 = (t % meta.cols) * side;
      const y0 = Math.floor(t / meta.cols) * side;
      for (let y = 0; y < side; y++) {
        const row = (y0 + y) * sprite.width + x0;
        images.set(sprite.data.subarray(row, row + side), (i * side + y) * side);
      }
    }
    return { length: part.count, channels: 1, height: side, width: side, numClasses: meta.classes.length, images, labels: Uint8Array.from(part.labels), classNames: meta.classes };
  };
  return { train: cut(meta.train), test: cut(meta.test) };
}

/** ResNet-20 (1 input channel), SGD with momentum, and a shuffled, augmented loader; all seeded by `seed`. */
export function createRun(rt, train, { seed = 0, batchSize = 32, lr = 0.05 } = {}) {
  rt.manualSeed(seed);
  const model = rt.models.resnet20({ inChannels: 1, numClasses: train.numClasses });
  const opt = new rt.optim.SGD(model.parameters(), { lr, momentum: 0.9, weightDecay: 5e-4 });
  const transform = rt.data.compose(rt.data.randomCrop(train.height, 2), rt.data.randomHorizontalFlip(), rt.data.normalize([MEAN], [STD]));
  const loader = new rt.data.DataLoader(train, { batchSize, shuffle: true, dropLast: true, seed, transform });
  return { model, opt, loader };
}

/** One SGD step on a batch; returns its loss and how many of the batch the model got right (before the step). */
export function trainStep(rt, run, batch) {
  const { model, opt } = run;
  model.train();
  opt.zeroGrad();
  const logits = model.forward(batch.x);
  const loss = rt.nn.functional.crossEntropy(logits, batch.y);
  loss.backward();
  opt.step();
  return { loss: loss.item(), correct: countCorrect(rt, logits, batch.y) };
}

function countCorrect(rt, logits, y) {
  const pred = rt.argmax(logits.detach(), 1).data;
  let n = 0;
  for (let i = 0; i < pred.length; i++) if (pred[i] === y[i]) n++;
  return n;
}

/** Loss and accuracy on a dataset, in eval mode (BatchNorm's running statistics). */
export function evaluate(rt, model, ds, batchSize = 50) {
  model.eval();
  try {
    const loader = new rt.data.DataLoader(ds, { batchSize, transform: rt.data.normalize([MEAN], [STD]) });
    let loss = 0;
    let correct = 0;
    rt.noGrad(() => {
      for (const batch of loader) {
        const logits = model.forward(batch.x);
        loss += rt.nn.functional.crossEntropy(logits, batch.y).item() * batch.y.length;
        correct += countCorrect(rt, logits, batch.y);
      }
    });
    return { loss: loss / ds.length, accuracy: correct / ds.length };
  } finally {
    model.train();
  }
}

/**
 * A dropped image as the model's input (1, 1, 28, 28): gray as Pillow's convert('L') computes it, resized with
 * Pillow's bilinear filter, and inverted when its border is light (Fashion-MNIST items are light on black).
 */
export function imageToInput(rt, img, side = 28) {
  const rgb = rt.io.toRgb(img);
  const n = rgb.width * rgb.height;
  const gray = new Uint8Array(n);
  // ITU-R 601-2 luma with Pillow's rounding: L = (R·19595 + G·38470 + B·7471 + 0x8000) >> 16.
  for (let i = 0; i < n; i++) gray[i] = (rgb.data[3 * i] * 19595 + rgb.data[3 * i + 1] * 38470 + rgb.data[3 * i + 2] * 7471 + 0x8000) >> 16;
  const small = rt.io.resizeBilinear({ width: rgb.width, height: rgb.height, channels: 1, data: gray }, side, side);
  let border = 0;
  for (let i = 0; i < side; i++) border += small.data[i] + small.data[(side - 1) * side + i] + small.data[i * side] + small.data[i * side + side - 1];
  const invert = border / (4 * side) > 127;
  const x = new Float32Array(side * side);
  for (let i = 0; i < x.length; i++) x[i] = ((invert ? 255 - small.data[i] : small.data[i]) / 255 - MEAN) / STD;
  return { input: rt.tensor(x).reshape([1, 1, side, side]), inverted: invert, pixels: invert ? small.data.map((v) => 255 - v) : small.data };
}

/** Class probabilities (softmax of the logits) for one input, in eval mode. */
export function predict(rt, model, input) {
  model.eval();
  try {
    return rt.noGrad(() => rt.nn.functional.softmax(model.forward(input), 1).data.slice());
  } finally {
    model.train();
  }
}

/** The `k` most probable classes, most probable first. */
export function topK(probs, classes, k = 5) {
  return Array.from(probs, (p, i) => ({ index: i, name: classes[i], p })).sort((a, b) => b.p - a.p || a.index - b.index).slice(0, k);
}

/** FNV-1a (32-bit) over the bytes of every tensor of a state dict, in key order: equal digests, equal weights. */
export function stateDigest(model) {
  let h = 0x811c9dc5;
  for (const [name, t] of Object.entries(model.stateDict())) {
    for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, '0');
}

/** A float32 value's bits, as hex: how results are compared across runtimes. */
export function bits(v) {
  const b = new DataView(new ArrayBuffer(4));
  b.setFloat32(0, v);
  return b.getUint32(0).toString(16).padStart(8, '0');
}
