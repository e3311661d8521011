/**
 * The degradation experiment over several seeds: per-net statistics of the final errors (mean, sample standard
 * deviation, min and max over the seeds) and a Fig. 6 style figure with each net's mean curve and its min–max band.
 * The seeds must share one setting apart from the seed. Browser-safe: the CLI writes the files.
 */

import { ValueError } from '../errors.js';
import type { DegradationResult } from './degradation.js';
import { netColours, settingNote } from './figures.js';
import { plotPanels, type Series } from './svg.js';

/** Mean, sample standard deviation (n − 1; 0 for one value), min and max of some numbers. */
export interface Spread {
  mean: number;
  std: number;
  min: number;
  max: number;
  values: number[];
}

export function spread(values: readonly number[]): Spread {
  if (!values.length) throw new ValueError('spread', 'no values');
  const n = values.length;
  const mean = values.reduce((s, v) => s + v, 0) / n;
  const std = n > 1 ? Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, std, min: Math.min(...values), max: Math.max(...values), values: values.slice() };
}

export interface SeedNetSummary {
  name: string;
  depth: number;
  residual: boolean;
  /** Eval-mode training error after training (the README's "training error"). */
  trainEvalError: Spread;
  /** Running training error over the last curve interval. */
  trainError: Spread;
  testError: Spread;
  seconds: Spread;
}

export interface SeedSummary {
  seeds: number[];
  nets: SeedNetSummary[];
  /** Wall seconds of all the seeds' runs together. */
  seconds: number;
}

/** Checks that the runs differ only in their seed, and returns their per-net statistics. */
export function seedSummary(runs: readonly DegradationResult[]): SeedSummary {
  if (!runs.length) throw new ValueError('seedSummary', 'no runs given');
  const first = runs[0]!;
  const key = (r: DegradationResult): string => JSON.stringify({ ...r.setting, seed: 0, dataNote: '' });
  const seeds = runs.map((r) => r.setting.seed);
  if (new Set(seeds).size !== seeds.length) throw new ValueError('seedSummary', `a seed appears twice: ${seeds.join(',')}`);
  for (const r of runs) {
    if (key(r) !== key(first)) throw new ValueError('seedSummary', `the run with seed ${r.setting.seed} has another setting than the run with seed ${first.setting.seed}`);
  }
  const nets = first.nets.map((n0) => {
    const all = runs.map((r) => {
      const n = r.nets.find((m) => m.name === n0.name);
      if (!n) throw new ValueError('seedSummary', `the run with seed ${r.setting.seed} has no ${n0.name}`);
      return n;
    });
    return {
      name: n0.name, depth: n0.depth, residual: n0.residual,
      trainEvalError: spread(all.map((n) => n.final.trainEvalError)),
      trainError: spread(all.map((n) => n.final.trainError)),
      testError: spread(all.map((n) => n.final.testError)),
      seconds: spread(all.map((n) => n.seconds)),
    };
  });
  return { seeds, nets, seconds: runs.reduce((s, r) => s + r.seconds, 0) };
}

const pct = (v: number): string => `${(100 * v).toFixed(2)}%`;

/** A text table: each net's mean ± std and [min, max] over the seeds. */
export function formatSeedSummary(s: SeedSummary): string {
  const cell = (x: Spread): string => `${pct(x.mean)} ± ${(100 * x.std).toFixed(2)} [${pct(x.min)}, ${pct(x.max)}]`.padEnd(34);
  const lines = [`seeds ${s.seeds.join(',')}: mean ± std [min, max] over the seeds`, `${'net'.padEnd(12)} ${'train err (eval)'.padEnd(34)} ${'test err'.padEnd(34)} mean seconds`];
  for (const n of s.nets) lines.push(`${n.name.padEnd(12)} ${cell(n.trainEvalError)} ${cell(n.testError)} ${n.seconds.mean.toFixed(0).padStart(6)}`);
  return lines.join('\n');
}

/**
 * Fig. 6 over seeds: for each net the mean training error (dashed) and test error (solid) at every curve point,
 * each with a translucent band from the lowest to the highest seed. Plain nets left, ResNets right.
 */
export function seedCurvesSvg(runs: readonly DegradationResult[]): string {
  const s = seedSummary(runs);
  const first = runs[0]!;
  const col = netColours(first);
  let yMax = 0.01;
  const panel = (residual: boolean) => {
    const series: Series[] = [];
    for (const n0 of first.nets.filter((m) => m.residual === residual)) {
      const color = col.get(n0.name)!;
      const curves = runs.map((r) => r.nets.find((m) => m.name === n0.name)!.curve);
      const x = n0.curve.map((p) => p.iteration);
      for (const which of ['trainError', 'testError'] as const) {
        const at = x.map((_, i) => spread(curves.map((c) => c[i]?.[which] ?? NaN).map((v) => 100 * v)));
        yMax = Math.max(yMax, ...at.map((a) => a.max).filter(Number.isFinite));
        const label = `${n0.residual ? 'ResNet' : 'plain'}-${n0.depth} ${which === 'trainError' ? 'train' : 'test'}`;
        series.push({
          label, x, y: at.map((a) => a.mean), color, dash: which === 'trainError' ? '5 3' : undefined, width: which === 'trainError' ? 1.4 : 2,
          band: { lo: at.map((a) => a.min), hi: at.map((a) => a.max) },
        });
      }
    }
    return { title: residual ? 'ResNets' : 'plain nets', xLabel: 'iterations', yLabel: 'error (%)', series, yMin: 0, xMin: 0 };
  };
  const panels = [panel(false), panel(true)].map((p) => ({ ...p, yMax: Math.min(100, Math.ceil(yMax / 5) * 5) }));
  const note = `${settingNote(first).replace(/ · seed \d+$/, '')} · seeds ${s.seeds.join(',')}: lines are means, bands span min to max`;
  return plotPanels(panels, { title: 'Training (dashed) and test (solid) error over seeds', note });
}
