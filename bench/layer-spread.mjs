// How far apart two runs' layer tables are: per row |log(ms A / ms B)| for ours on several threads, ours on one and
// tfjs-wasm, and the same for ours/tfjs-wasm (per estimator, where the results hold samples), as median / 90th
// percentile / max percentage differences; then the headline ranges of each run.
//   node bench/layer-spread.mjs bench/results/A.json bench/results/B.json
import { readFileSync } from 'node:fs';

const [a, b] = process.argv.slice(2, 4).map((f) => JSON.parse(readFileSync(f, 'utf8')).layers.rows);
const key = (r) => `${r.layer}|${r.dir}|${r.variant}`;
const peer = (rows, r) => rows.find((x) => x.impl === 'tfjs-wasm' && x.layer === r.layer && x.dir === r.dir && !x.once) ?? null;
const pct = (x) => `${((Math.exp(x) - 1) * 100).toFixed(0)}%`;
const spread = (d) => {
  const s = d.map(Math.abs).sort((u, v) => u - v);
  return s.length ? `median ${pct(s[s.length >> 1])}, 90th pct ${pct(s[Math.floor(s.length * 0.9)])}, max ${pct(s[s.length - 1])} (${s.length} rows)` : 'no rows in both';
};
const mb = new Map(b.map((r) => [key(r), r]));
const groups = { 'ours, several threads': (r) => r.impl === 'ours' && r.threads > 1, 'ours, 1 thread': (r) => r.impl === 'ours' && r.threads === 1, 'tfjs-wasm': (r) => r.impl === 'tfjs-wasm' && !r.once };
for (const [g, f] of Object.entries(groups)) {
  const d = [], dmin = [];
  for (const r of a.filter(f)) {
    const s = mb.get(key(r));
    if (!s || s.once) continue;
    d.push(Math.log(r.ms / s.ms));
    if (r.minMs && s.minMs) dmin.push(Math.log(r.minMs / s.minMs));
  }
  console.log(`${g}: median ms ${spread(d)}${dmin.length ? `; min ms ${spread(dmin)}` : ''}`);
}
const estimators = {
  'median ms ÷ median ms': (r, tw) => tw.ms / r.ms,
  'paired (median of per-round ratios)': (r) => r.pairedRatio ?? null,
  'min ÷ min': (r, tw) => (r.minMs && tw.minMs ? tw.minMs / r.minMs : null),
  'median CPU ÷ median CPU': (r, tw) => (r.cpuMs && tw.cpuMs ? tw.cpuMs / r.cpuMs : null),
};
for (const [name, f] of Object.entries(estimators)) {
  for (const one of [true, false]) {
    const d = [];
    for (const r of a) {
      if (r.impl !== 'ours' || (r.threads === 1) !== one) continue;
      const s = mb.get(key(r)), ta = peer(a, r), tb = s ? peer(b, s) : null;
      if (!s || !ta || !tb) continue;
      const x = f(r, ta), y = f(s, tb);
      if (x && y) d.push(Math.log(x / y));
    }
    if (d.length) console.log(`ours/tfjs-wasm, ${one ? '1-thread' : 'multi-thread'} rows, ${name}: ${spread(d)}`);
  }
}
const range = (xs) => (xs.length ? `${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}` : '—');
for (const [name, rows] of [['A', a], ['B', b]]) {
  const s1 = (r) => /^3x3 \d/.test(r.layer) && r.dir === 'fwd', pw = (r) => /^1x1 \d/.test(r.layer) && r.dir === 'fwd';
  const ratio = (v) => rows.filter((r) => s1(r) && r.variant === v).map((r) => { const tw = peer(rows, r); return tw ? (r.cpuMs && tw.cpuMs ? tw.cpuMs / r.cpuMs : tw.ms / r.ms) : null; }).filter((x) => x !== null);
  console.log(`${name}: 1×1 fwd (run's threads) ${range(rows.filter((r) => pw(r) && r.variant === 'ours').map((r) => r.gflops))} GFLOP/s; 3×3 s1 fwd [1 thread] ${range(rows.filter((r) => s1(r) && r.variant === 'ours:1 thread').map((r) => r.ms))} ms, tfjs-wasm ${range(rows.filter((r) => s1(r) && r.impl === 'tfjs-wasm').map((r) => r.ms))} ms; ours/tfjs-wasm (by CPU where recorded) [1 thread] ${range(ratio('ours:1 thread'))}, [eval 1 thread] ${range(ratio('ours:eval 1 thread'))}`);
}
