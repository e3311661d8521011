// One onnxruntime-web configuration in a fresh process (its wasm thread count is fixed when the runtime starts):
// node bench/onnx-child.mjs MODEL.onnx INPUT.f32 EXPECTED.f32 THREADS MIN_TIME_S
// Checks the logits against EXPECTED (ours) first, then times session.run; prints one line of JSON.

import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-web';

const [model, inputFile, expectedFile, threadsArg, minTimeArg] = process.argv.slice(2);
const threads = Number(threadsArg);
const minTime = Number(minTimeArg) * 1000;
const f32 = (path) => {
  const b = readFileSync(path);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};
ort.env.wasm.numThreads = threads;
const t0 = performance.now();
const session = await ort.InferenceSession.create(new Uint8Array(readFileSync(model)), { executionProviders: ['wasm'] });
const sessionMs = performance.now() - t0;
const x = new ort.Tensor('float32', f32(inputFile), [1, 3, 224, 224]);
const run = async () => (await session.run({ input: x })).logits.data;

// check, then time
const y = await run();
const want = f32(expectedFile);
let maxAbs = 0, scale = 0;
for (let i = 0; i < want.length; i++) {
  maxAbs = Math.max(maxAbs, Math.abs(y[i] - want[i]));
  scale = Math.max(scale, Math.abs(want[i]));
}
await run(); // second warm-up
const times = [], cpu = [];
const start = performance.now();
while (times.length < 5 || performance.now() - start < minTime) {
  const c = process.cpuUsage();
  const t = performance.now();
  await run();
  times.push(performance.now() - t);
  const d = process.cpuUsage(c);
  cpu.push((d.user + d.system) / 1000);
}
const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(JSON.stringify({ threads, sessionMs, rel: maxAbs / scale, ok: maxAbs <= 1e-4 * scale && y.length === want.length, medianMs: median(times), medianCpuMs: median(cpu), runs: times.length, ort: ort.env.versions?.web ?? null }));
await session.release();
