// The Node side of test/browser/demo.test.ts: the demo's steps (demo/train.js) with the Node entry and its
// worker-thread pool, printed as JSON (float32 values as their bits). Run by the test as a child process, with
// --experimental-wasm-relaxed-simd so that Node 20's WebAssembly has the relaxed-SIMD FMA that Chromium has: the
// kernels then take the same path (the report says which) on both sides.
//
//   node --experimental-wasm-relaxed-simd test/browser/node-reference.mjs SETTINGS_JSON WEIGHTS_OUT IMAGE...

import { readFileSync, writeFileSync } from 'node:fs';
import * as rt from '../../dist/index.js';
import { kernelBackend, usesFma } from '../../dist/kernels/wasm/features.js';
import * as demo from '../../demo/train.js';

const [settingsJson, weightsOut, ...images] = process.argv.slice(2);
const settings = JSON.parse(settingsJson);
rt.setNumThreads(settings.threads);
const root = new URL('../../', import.meta.url);
const meta = JSON.parse(readFileSync(new URL('demo/data/fashion-mnist-600.json', root), 'utf8'));
const { train, test } = demo.datasetsFromSprite(rt, new Uint8Array(readFileSync(new URL('demo/data/fashion-mnist-600.png', root))), meta);
const run = demo.createRun(rt, train, settings);
const losses = [];
for (const batch of run.loader) {
  losses.push(demo.bits(demo.trainStep(rt, run, batch).loss));
  if (losses.length === settings.steps) break;
}
const ev = demo.evaluate(rt, run.model, test);
const predictions = images.map((file) => {
  const { input } = demo.imageToInput(rt, rt.io.decodeImage(new Uint8Array(readFileSync(file))));
  return Array.from(demo.predict(rt, run.model, input), demo.bits);
});
writeFileSync(weightsOut, rt.io.saveSafetensors(run.model.stateDict()));
console.log(JSON.stringify({
  kernels: { backend: kernelBackend(), fma: usesFma() },
  losses,
  digest: demo.stateDigest(run.model),
  evalBits: [demo.bits(ev.loss), demo.bits(ev.accuracy)],
  predictions,
}));
