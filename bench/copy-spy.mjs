// Where a training step copies and fills typed arrays, and how fast: TypedArray.prototype.set and fill are wrapped
// (this thread only) and each call's bytes and process CPU time (one thread: the call's own; wall time would count
// the neighbours of a loaded machine) are summed by call site, by whether a SharedArrayBuffer is
// involved and (set) whether source and destination addresses agree mod 8. V8 copies to or from shared memory with
// relaxed atomics: word by word where they agree, byte by byte where they do not (bench/README.md).
//   node bench/copy-spy.mjs [fmnist|pw56|deg56|cifar|r18] [steps] [--dist DIR] [--resident on|off]
// One thread. The wrapper's stack capture slows the step a lot (the step CPU printed includes it); the per-site
// times are of the copies alone, but in process CPU time, which also counts V8's background threads (compiler, GC)
// while a copy runs: for sites of many small calls they are mostly that. The bytes are exact.
// A call site in copy.ts (stageRows, which copies for others) is shown with its caller.
import { resolve } from 'node:path';
import { DIST, cpuMs, seededStep } from './lib.mjs';

const args = process.argv.slice(2);
const di = args.indexOf('--dist');
const dist = resolve(di >= 0 ? args.splice(di, 2)[1] : DIST);
const ri = args.indexOf('--resident');
const residentFlag = ri >= 0 ? args.splice(ri, 2)[1] : '';
const [kase = 'fmnist', stepsArg = '3'] = args;
process.env.RESNET_TS_THREADS = '1';

const TA = Object.getPrototypeOf(Float32Array.prototype);
const stats = new Map();
let on = false;
// The caller of set or fill; for a helper that copies for others (copy.ts's stageRows), its caller too.
const frame = (f) => (f ?? '').trim().replace(/.*\/dist\//, '').replace(/\)$/, '');
const site = () => {
  const st = new Error().stack.split('\n'), at = frame(st[3]);
  return at.startsWith('kernels/copy.js') ? `${at} < ${frame(st[4])}` : at;
};
const note = (key, bytes, ms) => {
  const s = stats.get(key) ?? [0, 0, 0];
  s[0] += bytes;
  s[1] += ms;
  s[2]++;
  stats.set(key, s);
};
const origSet = TA.set, origFill = TA.fill;
TA.set = function (src, off = 0) {
  if (!on || !ArrayBuffer.isView(src)) return origSet.call(this, src, off);
  const shared = src.buffer instanceof SharedArrayBuffer || this.buffer instanceof SharedArrayBuffer;
  const aligned = ((src.byteOffset - (this.byteOffset + off * this.BYTES_PER_ELEMENT)) & 7) === 0;
  const t0 = cpuMs();
  origSet.call(this, src, off);
  const ms = cpuMs() - t0;
  note(`set  ${shared ? 'shared' : 'plain '} ${aligned ? 'aligned   ' : 'MISALIGNED'} ${site()}`, src.byteLength, ms);
};
TA.fill = function (v, a, b) {
  if (!on) return origFill.call(this, v, a, b);
  const t0 = cpuMs();
  const r = origFill.call(this, v, a, b);
  const ms = cpuMs() - t0;
  const n = (b ?? this.length) - (a ?? 0);
  note(`fill ${this.buffer instanceof SharedArrayBuffer ? 'shared' : 'plain '}            ${site()}`, n * this.BYTES_PER_ELEMENT, ms);
  return r;
};

const lib = await import(resolve(dist, 'index.js'));
lib.setNumThreads(1);
if (residentFlag) lib.setConfig({ residentSteps: residentFlag === 'on' });
const CASES = {
  fmnist: [() => lib.models.resnet20({ inChannels: 1 }), [128, 1, 28, 28]],
  pw56: [() => lib.models.resnet56({ inChannels: 1 }), [128, 1, 28, 28]],
  deg56: [() => lib.models.resnet56({ inChannels: 1, widths: [4, 8, 16] }), [128, 1, 14, 14]],
  cifar: [() => lib.models.resnet20(), [32, 3, 32, 32]],
  r18: [() => lib.models.resnet18({ numClasses: 10 }), [8, 3, 32, 32]],
};
const [make, shape] = CASES[kase];
const { m, opt, body } = seededStep(lib, make, shape);
const step = () => lib.withTrainingStep({ model: m, optimizer: opt }, body);
for (let i = 0; i < 3; i++) step();
const steps = Number(stepsArg);
on = true;
const c0 = process.cpuUsage();
for (let i = 0; i < steps; i++) step();
const u = process.cpuUsage(c0);
on = false;
console.log(`${kase}: ${steps} steps, ${((u.user + u.system) / 1000 / steps).toFixed(0)} CPU ms per step with the wrapper; per step:`);
console.log('| ms | MB | GB/s | calls | what, call site |\n|---:|---:|---:|---:|---|');
let tb = 0, tt = 0;
for (const [k, [b, ms, n]] of [...stats].sort((p, q) => q[1][1] - p[1][1])) {
  tb += b;
  tt += ms;
  if (ms / steps >= 0.2) console.log(`| ${(ms / steps).toFixed(1)} | ${(b / steps / 2 ** 20).toFixed(1)} | ${(b / ms / 1e6).toFixed(2)} | ${n / steps} | ${k} |`);
}
console.log(`| ${(tt / steps).toFixed(1)} | ${(tb / steps / 2 ** 20).toFixed(0)} | | | all |`);
