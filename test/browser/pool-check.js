// Loaded by test/browser/demo.test.ts as a module Worker of a page served by the demo server: the browser pool's
// failure paths. A task that exists on this thread but not in the kernel workers makes their units throw, which
// must surface as one error naming the task (the pool stays usable); a kernel worker script that cannot load must
// end, after two tries, in one thread with one warning. Posts its findings to the page.

const rt = await import('/dist/browser.js');
const pool = await import('/dist/parallel/browser.js');
const kernels = await import('/dist/kernels/parallel.js');

const out = {};
const warnings = [];
const warn = console.warn;
console.warn = (...a) => warnings.push(a.join(' '));
try {
  out.threads = await rt.initThreads(2);
  const cell = new Int32Array(new SharedArrayBuffer(4));
  kernels.registerTask('test.onlyHere', (bufs, q, u0, u1) => {
    for (let u = u0; u < u1; u++) {
      Atomics.wait(cell, 0, 0, 20); // slow enough that the kernel worker takes units too
      bufs.out[u] = 1;
    }
  });
  const task = { kernel: 'test.onlyHere', bufs: { out: new Float32Array(new SharedArrayBuffer(64)) }, writes: ['out'], params: {}, units: 16, cost: 1e12 };
  try {
    kernels.parallelFor(task);
    out.error = null;
  } catch (e) {
    out.error = `${e.name}: ${e.message}`;
  }
  // Still usable: a parallel matmul after the failed call, compared with one thread.
  rt.manualSeed(1);
  const a = rt.randn([96, 300]);
  const b = rt.randn([300, 80]);
  const two = rt.matmul(a, b).data;
  out.workerUnits = pool.poolStats()?.workerUnits ?? null;
  rt.setNumThreads(1);
  const one = rt.matmul(a, b).data;
  out.matmulEqual = two.length === one.length && two.every((v, i) => Object.is(v, one[i]));
  // A kernel worker script that does not exist.
  pool.setBrowserWorkerScript(new URL('/no-such-dir/browser-worker.js', location.origin));
  out.threadsAfterBadScript = await rt.initThreads(2);
  out.reason = rt.singleThreadReason();
} catch (e) {
  out.unexpected = String(e?.stack ?? e);
} finally {
  console.warn = warn;
}
out.warnings = warnings;
self.postMessage(out);
