// Writes the demo page's data (demo/data/): a Fashion-MNIST subset as one grayscale PNG sprite of 28x28 tiles
// (the page decodes it with resnet-ts's own PNG decoder) and its labels as JSON. The first TRAIN_PER_CLASS images
// of each class from the training set, then the first TEST_PER_CLASS of each class from the test set, in file
// order. Source: Debian's dataset-fashion-mnist package (/usr/share/datasets/fashion-mnist), or the directory
// given as the first argument.
//
//   node scripts/demo-data.mjs [DIR]

import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32, deflateSync, gunzipSync } from 'node:zlib';

const TRAIN_PER_CLASS = 50;
const TEST_PER_CLASS = 10;
const COLS = 20;
const SIDE = 28;
const CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];

const dir = process.argv[2] ?? '/usr/share/datasets/fashion-mnist';
const out = join(dirname(fileURLToPath(import.meta.url)), '..', 'demo', 'data');

function idx(name) {
  const b = gunzipSync(readFileSync(join(dir, name)));
  const dims = b[3];
  const shape = Array.from({ length: dims }, (_, i) => b.readUInt32BE(4 + 4 * i));
  return { shape, data: new Uint8Array(b.buffer, b.byteOffset + 4 + 4 * dims, shape.reduce((a, c) => a * c, 1)) };
}

/** Indices of the first `per` images of each class, in file order. */
function pick(labels, per) {
  const taken = new Array(10).fill(0);
  const out = [];
  for (let i = 0; i < labels.length && out.length < 10 * per; i++) {
    if (taken[labels[i]]++ < per) out.push(i);
  }
  return out;
}

const sets = [
  ['train', idx('train-images-idx3-ubyte.gz'), idx('train-labels-idx1-ubyte.gz'), TRAIN_PER_CLASS],
  ['test', idx('t10k-images-idx3-ubyte.gz'), idx('t10k-labels-idx1-ubyte.gz'), TEST_PER_CLASS],
];
const tiles = [];
const meta = { source: 'Fashion-MNIST (Debian dataset-fashion-mnist), first images of each class', side: SIDE, cols: COLS, classes: CLASSES };
for (const [name, images, labels, per] of sets) {
  const chosen = pick(labels.data, per);
  meta[name] = { start: tiles.length, count: chosen.length, labels: chosen.map((i) => labels.data[i]) };
  for (const i of chosen) tiles.push(images.data.subarray(i * SIDE * SIDE, (i + 1) * SIDE * SIDE));
}

// The sprite: tile t at column t % COLS, row floor(t / COLS).
const rows = Math.ceil(tiles.length / COLS);
const w = COLS * SIDE;
const h = rows * SIDE;
const raw = new Uint8Array(h * (w + 1)); // filter byte 0 per row
tiles.forEach((tile, t) => {
  const x0 = (t % COLS) * SIDE;
  const y0 = Math.floor(t / COLS) * SIDE;
  for (let y = 0; y < SIDE; y++) raw.set(tile.subarray(y * SIDE, (y + 1) * SIDE), (y0 + y) * (w + 1) + 1 + x0);
});
const chunk = (type, data) => {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
};
const ihdr = Buffer.alloc(13);
ihdr.writeUInt32BE(w, 0);
ihdr.writeUInt32BE(h, 4);
ihdr[8] = 8; // bit depth
ihdr[9] = 0; // grayscale
const png = Buffer.concat([
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
  chunk('IHDR', ihdr),
  chunk('IDAT', deflateSync(raw, { level: 9 })),
  chunk('IEND', Buffer.alloc(0)),
]);
writeFileSync(join(out, 'fashion-mnist-600.png'), png);
writeFileSync(join(out, 'fashion-mnist-600.json'), `${JSON.stringify(meta)}\n`);
console.log(`demo/data: ${tiles.length} images (${meta.train.count} train, ${meta.test.count} test), sprite ${w}x${h}, ${png.length} bytes`);
