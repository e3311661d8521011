// Child process of bench/memory.mjs: a fresh Node process that builds one model, runs eval forwards at batch 1
// under noGrad, and prints one JSON line: the peak RSS (the kernel's high-water mark for the whole process, worker
// threads included: see peakRssKb), the parameter bytes, and the forward times.
// argv: model name, forwards, threads.

import { readFileSync } from 'node:fs';

const [model, forwardsArg, threadsArg] = process.argv.slice(2);
const lib = await import('../dist/index.js');
lib.setNumThreads(Number(threadsArg));
const net = lib.models[model]();
net.eval();
let paramBytes = 0;
for (const p of net.parameters()) paramBytes += p.data.byteLength;
const x = lib.randn([1, 3, 224, 224]);
const times = [];
for (let i = 0; i < Number(forwardsArg); i++) {
  const t0 = performance.now();
  lib.noGrad(() => net.forward(x));
  times.push(performance.now() - t0);
}
console.log(JSON.stringify({ model, threads: lib.getNumThreads(), maxRssKb: peakRssKb(), paramBytes, times }));

/**
 * The peak RSS of this process image: Linux's VmHWM (/proc/self/status), which starts afresh at exec. Not
 * resourceUsage().maxRSS there: Linux carries ru_maxrss across exec, so a child of a big process reports at least
 * its parent's RSS at fork (a child of the benchmark process, with tfjs loaded, reported 278 MB for every model).
 */
function peakRssKb() {
  try {
    const m = /VmHWM:\s*(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]);
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS;
}
process.exit(0);
