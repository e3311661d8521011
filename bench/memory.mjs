// Peak memory of inference: ResNet-50 (and ResNet-18) eval forwards at 1×3×224×224 in a fresh process each (so
// that nothing this process loaded counts), reporting the peak RSS and the median forward time after warm-up.

import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { BENCH_DIR, table } from './lib.mjs';

/** Target of issue 6: a ResNet-50 eval at batch 1 stays under this peak RSS (MB). */
export const RSS_TARGET_MB = 300;
const FORWARDS = 12;
const WARMUP = 2;

export function benchMemory(opts, threads, log) {
  const rows = [];
  for (const model of ['resnet50', 'resnet18']) {
    const out = execFileSync(process.execPath, [join(BENCH_DIR, 'memory-child.mjs'), model, String(FORWARDS), String(threads)], { encoding: 'utf8' });
    const r = JSON.parse(out.trim().split('\n').pop());
    const timed = r.times.slice(WARMUP).sort((a, b) => a - b);
    const row = {
      model: `${model} eval 1×3×224×224`, threads: r.threads, peakRssMb: r.maxRssKb / 1024, paramMb: r.paramBytes / 2 ** 20,
      medianMs: timed[Math.floor(timed.length / 2)], firstMs: r.times[0], forwards: r.times.length,
    };
    log(`  ${row.model}: peak RSS ${row.peakRssMb.toFixed(0)} MB (parameters ${row.paramMb.toFixed(0)} MB), median forward ${row.medianMs.toFixed(0)} ms over ${timed.length} after ${WARMUP} warm-up (first ${row.firstMs.toFixed(0)} ms), ${row.threads} threads`);
    rows.push(row);
  }
  return rows;
}

export function memoryTable(rows) {
  return table(
    ['model', 'threads', 'peak RSS MB', 'parameters MB', 'median ms', 'first ms'],
    rows.map((r) => [r.model, String(r.threads), r.peakRssMb.toFixed(0), r.paramMb.toFixed(0), r.medianMs.toFixed(0), r.firstMs.toFixed(0)]),
  );
}
