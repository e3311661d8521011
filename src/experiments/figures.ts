/**
 * The three figures of the degradation experiment, as SVG text drawn from a DegradationResult:
 *   trainingCurves: training error (dashed) and test error (solid) vs iterations, plain left, ResNet right (Fig. 6);
 *   gradientNorms:  ‖∂L/∂W‖ per layer from the input end to the output end, at init and after training (log scale);
 *   responseStd:    std of each unit's response F(x), by depth order and sorted by magnitude (Fig. 7).
 * Plain nets are drawn in warm colours, ResNets in cool ones, deeper nets darker.
 */

import type { DegradationResult, NetResult } from './degradation.js';
import { plotPanels, shades, type Series } from './svg.js';

const PLAIN = ['#f4a582', '#b2182b'] as const;
const RESID = ['#92c5de', '#2166ac'] as const;

/** Each net's line colour by name: plain nets warm, ResNets cool, deeper nets darker. */
export function netColours(r: DegradationResult): Map<string, string> {
  const depths = r.setting.depths.slice().sort((a, b) => a - b);
  const plain = shades(PLAIN[0], PLAIN[1], depths.length);
  const resid = shades(RESID[0], RESID[1], depths.length);
  const m = new Map<string, string>();
  for (const n of r.nets) m.set(n.name, (n.residual ? resid : plain)[depths.indexOf(n.depth)] ?? (n.residual ? RESID[1] : PLAIN[1]));
  return m;
}

/** One line of small print: data, image size, widths, recipe. */
export function settingNote(r: DegradationResult): string {
  const s = r.setting;
  return `${s.data} ${s.imageSize[0]}×${s.imageSize[1]}, ${s.trainImages} train / ${s.testImages} test images · widths ${s.widths.join(',')} · `
    + `${s.iterations} iterations of ${s.batchSize} (${s.epochs.toFixed(2)} epochs) · SGD lr ${s.lr} (${s.schedule}), momentum ${s.momentum}, wd ${s.weightDecay} · seed ${s.seed}`;
}

const title = (n: NetResult): string => `${n.residual ? 'ResNet' : 'plain'}-${n.depth}`;

/** Fig. 6 style: error (%) vs iterations; dashed = training error (running), solid = test error. Shared y range. */
export function trainingCurvesSvg(r: DegradationResult): string {
  const col = netColours(r);
  const yMax = Math.max(0.01, ...r.nets.flatMap((n) => n.curve.flatMap((p) => [p.trainError, p.testError]).filter(Number.isFinite))) * 100;
  const panel = (residual: boolean) => {
    const series: Series[] = [];
    for (const n of r.nets.filter((m) => m.residual === residual)) {
      const x = n.curve.map((p) => p.iteration);
      series.push({ label: `${title(n)} train`, x, y: n.curve.map((p) => 100 * p.trainError), color: col.get(n.name)!, dash: '5 3', width: 1.4 });
      series.push({ label: `${title(n)} test`, x, y: n.curve.map((p) => 100 * p.testError), color: col.get(n.name)!, width: 2 });
    }
    return { title: residual ? 'ResNets' : 'plain nets', xLabel: 'iterations', yLabel: 'error (%)', series, yMin: 0, yMax: Math.min(100, Math.ceil(yMax / 5) * 5), xMin: 0 };
  };
  return plotPanels([panel(false), panel(true)], { title: 'Training (dashed) and test (solid) error', note: settingNote(r) });
}

/** Gradient norm per weighted layer (1 = first conv … depth = fc), log scale; left at init, right after training. */
export function gradientNormsSvg(r: DegradationResult): string {
  const col = netColours(r);
  const all = r.nets.flatMap((n) => [...n.gradNorms.init, ...n.gradNorms.trained]).filter((v) => v > 0 && Number.isFinite(v));
  const yMin = all.length ? Math.min(...all) : undefined;
  const yMax = all.length ? Math.max(...all) : undefined;
  const panel = (which: 'init' | 'trained') => ({
    title: which === 'init' ? 'at initialization' : 'after training',
    xLabel: 'layer (input end → output end)',
    yLabel: '‖∂loss/∂W‖₂',
    logY: true,
    // shared range, rounded out to decades (or padded) by the plotter
    yMin: yMin === undefined ? undefined : yMax! / yMin > 20 ? 10 ** Math.floor(Math.log10(yMin)) : yMin / 1.25,
    yMax: yMax === undefined ? undefined : yMax / yMin! > 20 ? 10 ** Math.ceil(Math.log10(yMax)) : yMax * 1.25,
    xMin: 1,
    series: r.nets.map((n) => ({
      label: title(n), x: n.gradNorms[which].map((_, i) => i + 1), y: n.gradNorms[which], color: col.get(n.name)!,
      dash: n.residual ? undefined : '5 3', width: 1.6, markers: n.depth <= 20,
    })),
  });
  return plotPanels([panel('init'), panel('trained')], { title: 'Gradient norm per layer (plain dashed, ResNet solid)', note: settingNote(r) });
}

/** Fig. 7 style: std of each unit's response F(x) after training; left in depth order, right sorted by magnitude. */
export function responseStdSvg(r: DegradationResult): string {
  const col = netColours(r);
  const all = r.nets.flatMap((n) => n.responseStd).filter(Number.isFinite);
  const yMax = all.length ? Math.max(...all) : 1;
  const panel = (sorted: boolean) => ({
    title: sorted ? 'sorted by magnitude' : 'in depth order',
    xLabel: sorted ? 'unit index (sorted)' : 'unit (input end → output end)',
    yLabel: 'std of response F(x)',
    yMin: 0,
    yMax: yMax * 1.05,
    xMin: 1,
    series: r.nets.map((n) => {
      const y = sorted ? n.responseStd.slice().sort((a, b) => b - a) : n.responseStd;
      return { label: title(n), x: y.map((_, i) => i + 1), y, color: col.get(n.name)!, dash: n.residual ? undefined : '5 3', width: 1.6, markers: true };
    }),
  });
  return plotPanels([panel(false), panel(true)], { title: 'Std of each unit\'s response (after its last BN, before the addition)', note: settingNote(r) });
}

/** The three figures, keyed by the file names the CLI writes. */
export function degradationFigures(r: DegradationResult): Record<'training-curves.svg' | 'gradient-norms.svg' | 'response-std.svg', string> {
  return { 'training-curves.svg': trainingCurvesSvg(r), 'gradient-norms.svg': gradientNormsSvg(r), 'response-std.svg': responseStdSvg(r) };
}
