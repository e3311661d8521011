// onnxruntime-web (wasm, in Node) running our exported ResNet-18 and ResNet-50 at 1×3×224×224, on 1 and 2 threads,
// next to our own eval forward of the same model in this process. Each onnxruntime configuration runs in a fresh
// process (bench/onnx-child.mjs), since its wasm thread count is fixed when the runtime starts. Check first: its
// logits within 1e-4·max|ours|; then time. onnxruntime-node (the native peer) does not install here: its
// postinstall downloads binaries from api.nuget.org.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BENCH_DIR, fmtMs, fmtRatio, fmtRel, randomArray, selected, table } from './lib.mjs';

const THREADS = [1, 2];

export async function benchOnnx(lib, opts, log) {
  const rows = [];
  const dir = mkdtempSync(join(tmpdir(), 'resnet-ts-bench-onnx-'));
  try {
    for (const name of ['resnet18', 'resnet50']) {
      if (!selected(opts, `${name} onnxruntime`)) continue;
      lib.manualSeed(0);
      const model = lib.models[name]().eval();
      const x = new lib.Tensor(randomArray(3 * 224 * 224, 7, -1, 1), [1, 3, 224, 224]);
      const file = join(dir, `${name}.onnx`);
      lib.io.saveOnnxFile(file, model, { inputShape: [1, 3, 224, 224] });
      const ours = [], oursCpu = [];
      let y = null;
      for (let i = 0; i < (opts.quick ? 4 : 8); i++) {
        const c = process.cpuUsage();
        const t = performance.now();
        y = lib.noGrad(() => model.forward(x));
        ours.push(performance.now() - t);
        const d = process.cpuUsage(c);
        oursCpu.push((d.user + d.system) / 1000);
      }
      // medians after two warm-up forwards
      const median = (xs) => xs.slice(2).sort((a, b) => a - b)[Math.floor((xs.length - 2) / 2)];
      const oursMs = median(ours), oursCpuMs = median(oursCpu);
      writeFileSync(join(dir, 'x.f32'), x.data);
      writeFileSync(join(dir, 'y.f32'), y.data);
      for (const threads of THREADS) {
        const out = execFileSync(process.execPath, [join(BENCH_DIR, 'onnx-child.mjs'), file, join(dir, 'x.f32'), join(dir, 'y.f32'), String(threads), String(opts.minTime ?? (opts.quick ? 1 : 3))], { encoding: 'utf8' });
        const r = JSON.parse(out.trim().split('\n').pop());
        const row = { model: `${name} eval 1×3×224×224`, threads, ortMs: r.ok ? r.medianMs : null, ortCpuMs: r.ok ? r.medianCpuMs : null, runs: r.runs, sessionMs: r.sessionMs, rel: r.rel, ok: r.ok, oursMs, oursCpuMs, oursThreads: lib.getNumThreads() };
        log(`  ${row.model}, onnxruntime-web ${threads} thread${threads > 1 ? 's' : ''}: ${r.ok ? `${fmtMs(r.medianMs)} ms median (${fmtMs(r.medianCpuMs)} CPU-ms) over ${r.runs} runs` : 'CHECK FAILED, not timed'}, logits rel ${fmtRel(r.rel)}; session ${fmtMs(r.sessionMs)}${r.sessionMs < 10000 ? ' ms' : ''}; ours ${fmtMs(oursMs)} ms (${fmtMs(oursCpuMs)} CPU-ms) on ${row.oursThreads} threads`);
        rows.push(row);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

export function onnxTable(rows) {
  return table(
    ['model', 'ort threads', 'ort ms', 'ort CPU-ms', 'ours threads', 'ours ms', 'ours CPU-ms', 'ort ms / ours ms', 'check'],
    rows.map((r) => [r.model, String(r.threads), fmtMs(r.ortMs), fmtMs(r.ortCpuMs), String(r.oursThreads), fmtMs(r.oursMs), fmtMs(r.oursCpuMs), r.ortMs ? fmtRatio(r.ortMs / r.oursMs) : '—', r.ok ? fmtRel(r.rel) : `FAILED ${fmtRel(r.rel)}`]),
  );
}
