// Child process of bench/memory.mjs: a fresh Node process that builds one model, runs eval forwards at batch 1
// under noGrad, and prints one JSON line: the peak RSS (process.resourceUsage().maxRSS, the kernel's high-water
// mark for the whole process, worker threads included), the parameter bytes, and the forward times.
// argv: model name, forwards, threads.

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
console.log(JSON.stringify({ model, threads: lib.getNumThreads(), maxRssKb: process.resourceUsage().maxRSS, paramBytes, times }));
process.exit(0);
