/**
 * A tiny line-chart plotter that writes standalone SVG text (no dependency, no DOM): side-by-side panels, each with
 * axes, "nice" ticks, optional log-scale y, solid or dashed series and a legend under the plot. Enough for the
 * figures of the degradation experiment; not a general plotting library.
 */

export interface Series {
  label: string;
  x: readonly number[];
  /** Non-finite values (and values ≤ 0 on a log axis) break the line instead of being drawn. */
  y: readonly number[];
  /** Any SVG colour, e.g. '#1e88e5'. */
  color: string;
  /** An SVG stroke-dasharray such as '5 3'; absent: solid. */
  dash?: string;
  /** Stroke width in px (default 1.6). */
  width?: number;
  /** Draw a small circle at each point (default false). */
  markers?: boolean;
  /** A translucent band in the series' colour from lo[i] to hi[i] at x[i] (e.g. the spread over seeds), under the line. */
  band?: { lo: readonly number[]; hi: readonly number[] };
}

export interface Panel {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly Series[];
  logY?: boolean;
  /** Axis ranges; each defaults to the data's extent (rounded out to ticks). */
  xMin?: number;
  xMax?: number;
  yMin?: number;
  yMax?: number;
}

export interface FigureOptions {
  /** Heading above the panels. */
  title?: string;
  /** One line of small print under the panels (the setting). */
  note?: string;
  panelWidth?: number;
  panelHeight?: number;
}

/** Text and attribute values made safe for XML: & < > " ' → entities. */
export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** A coordinate with at most 2 decimals and no trailing zeros ("12.5", "-3", "0"). */
const num = (v: number): string => {
  const r = Math.round(v * 100) / 100;
  return Object.is(r, -0) ? '0' : String(r);
};

/** ~`count` round tick values (multiples of 1, 2 or 5 × 10^k) covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 5, 10].find((m) => m * mag >= raw) ?? 10) * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return out;
}

/** Tick values for a log axis over [lo, hi] (both > 0): powers of ten, plus 2× and 5× when that gives too few. */
export function logTicks(lo: number, hi: number): number[] {
  const a = Math.floor(Math.log10(lo));
  const b = Math.ceil(Math.log10(hi));
  const pick = (mults: number[]): number[] => {
    const out: number[] = [];
    for (let k = a; k <= b; k++) for (const m of mults) {
      const v = Number(`${m}e${k}`); // exact decimal (10 ** -4 is 0.00009999…)
      if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) out.push(v);
    }
    return out;
  };
  const decades = pick([1]);
  if (decades.length >= 3) return decades.length > 8 ? decades.filter((_, i) => i % Math.ceil(decades.length / 8) === 0) : decades;
  const more = pick([1, 2, 5]);
  return more.length >= 3 ? more : pick([1, 1.5, 2, 3, 5, 7]);
}

/** Short tick label: 0.001 → "0.001", 1e-5 → "1e-5", 12000 → "12k", 0.25 → "0.25". */
export function tickLabel(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e4 && a < 1e6 && Number.isInteger(v / 1000)) return `${v / 1000}k`;
  if (a < 1e-3 || a >= 1e6) {
    const [m, e] = v.toExponential().split('e') as [string, string];
    return `${Number(Number(m).toPrecision(3))}e${Number(e)}`;
  }
  return String(Number(v.toPrecision(4)));
}

const FONT = 'font-family="Helvetica, Arial, sans-serif"';
const MARGIN = { left: 58, right: 14, top: 26, bottom: 40 };
const LEGEND_ROW = 16;
const LEGEND_COLS = 2;

function legendHeight(p: Panel): number {
  return Math.ceil(p.series.length / LEGEND_COLS) * LEGEND_ROW + 6;
}

/** The SVG elements of one panel whose top-left corner is (ox, oy). */
function renderPanel(p: Panel, ox: number, oy: number, w: number, h: number): string[] {
  const out: string[] = [];
  const px0 = ox + MARGIN.left;
  const px1 = ox + w - MARGIN.right;
  const py0 = oy + MARGIN.top;
  const py1 = oy + h - MARGIN.bottom;
  const logY = p.logY ?? false;
  const okY = (v: number): boolean => Number.isFinite(v) && (!logY || v > 0);
  const xs = p.series.flatMap((s) => s.x.filter(Number.isFinite));
  const ys = p.series.flatMap((s) => [...s.y, ...(s.band?.lo ?? []), ...(s.band?.hi ?? [])].filter(okY));
  let xMin = p.xMin ?? (xs.length ? Math.min(...xs) : 0);
  let xMax = p.xMax ?? (xs.length ? Math.max(...xs) : 1);
  if (!(xMax > xMin)) xMax = xMin + 1;
  let yMin = p.yMin ?? (ys.length ? Math.min(...ys) : logY ? 1 : 0);
  let yMax = p.yMax ?? (ys.length ? Math.max(...ys) : logY ? 10 : 1);
  if (logY) {
    // round out to the enclosing powers of ten when the range is wide, else pad by 10%
    if (yMax / yMin > 20) {
      if (p.yMin === undefined) yMin = 10 ** Math.floor(Math.log10(yMin));
      if (p.yMax === undefined) yMax = 10 ** Math.ceil(Math.log10(yMax));
    } else {
      if (p.yMin === undefined) yMin /= 1.25;
      if (p.yMax === undefined) yMax *= 1.25;
    }
    if (!(yMax > yMin)) yMax = yMin * 10;
  } else {
    if (!(yMax > yMin)) yMax = yMin + 1;
    const t = niceTicks(yMin, yMax);
    const step = t.length > 1 ? t[1]! - t[0]! : 1;
    if (p.yMin === undefined) yMin = Math.floor(yMin / step + 1e-9) * step;
    if (p.yMax === undefined) yMax = Math.ceil(yMax / step - 1e-9) * step;
  }
  const sx = (v: number): number => px0 + ((v - xMin) / (xMax - xMin)) * (px1 - px0);
  const sy = logY
    ? (v: number): number => py1 - ((Math.log10(v) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin))) * (py1 - py0)
    : (v: number): number => py1 - ((v - yMin) / (yMax - yMin)) * (py1 - py0);

  out.push(`<g class="panel">`);
  out.push(`<text x="${num((px0 + px1) / 2)}" y="${num(oy + 16)}" text-anchor="middle" font-size="13" font-weight="bold" ${FONT}>${escapeXml(p.title)}</text>`);
  // grid and ticks
  const yt = logY ? logTicks(yMin, yMax) : niceTicks(yMin, yMax);
  for (const v of yt) {
    const y = sy(v);
    out.push(`<line x1="${num(px0)}" y1="${num(y)}" x2="${num(px1)}" y2="${num(y)}" stroke="#e5e5e5" stroke-width="1"/>`);
    out.push(`<text x="${num(px0 - 5)}" y="${num(y + 3.5)}" text-anchor="end" font-size="10" ${FONT}>${escapeXml(tickLabel(v))}</text>`);
  }
  for (const v of niceTicks(xMin, xMax, 6)) {
    const x = sx(v);
    out.push(`<line x1="${num(x)}" y1="${num(py1)}" x2="${num(x)}" y2="${num(py1 + 4)}" stroke="#333" stroke-width="1"/>`);
    out.push(`<text x="${num(x)}" y="${num(py1 + 15)}" text-anchor="middle" font-size="10" ${FONT}>${escapeXml(tickLabel(v))}</text>`);
  }
  out.push(`<rect x="${num(px0)}" y="${num(py0)}" width="${num(px1 - px0)}" height="${num(py1 - py0)}" fill="none" stroke="#333" stroke-width="1"/>`);
  out.push(`<text x="${num((px0 + px1) / 2)}" y="${num(py1 + 32)}" text-anchor="middle" font-size="11" ${FONT}>${escapeXml(p.xLabel)}</text>`);
  const yl = { x: ox + 14, y: (py0 + py1) / 2 };
  out.push(`<text x="${num(yl.x)}" y="${num(yl.y)}" text-anchor="middle" font-size="11" transform="rotate(-90 ${num(yl.x)} ${num(yl.y)})" ${FONT}>${escapeXml(p.yLabel)}</text>`);
  // series, clipped to the plot area; a gap (non-finite value) starts a new subpath
  const clip = `clip${Math.round(ox)}_${Math.round(oy)}`;
  out.push(`<clipPath id="${clip}"><rect x="${num(px0)}" y="${num(py0)}" width="${num(px1 - px0)}" height="${num(py1 - py0)}"/></clipPath>`);
  out.push(`<g clip-path="url(#${clip})">`);
  // bands first, so every line is drawn over them; a non-finite bound or x breaks the band as it breaks a line
  for (const s of p.series) {
    if (!s.band) continue;
    const n = Math.min(s.x.length, s.band.lo.length, s.band.hi.length);
    let run: number[] = [];
    const flush = (): void => {
      if (run.length) {
        const top = run.map((i) => `${num(sx(s.x[i]!))} ${num(sy(s.band!.hi[i]!))}`);
        const bottom = run.slice().reverse().map((i) => `${num(sx(s.x[i]!))} ${num(sy(s.band!.lo[i]!))}`);
        out.push(`<path d="M${[...top, ...bottom].join(' L')} Z" fill="${escapeXml(s.color)}" fill-opacity="0.18" stroke="none"><title>${escapeXml(s.label)} (band)</title></path>`);
      }
      run = [];
    };
    for (let i = 0; i < n; i++) {
      if (Number.isFinite(s.x[i]!) && okY(s.band.lo[i]!) && okY(s.band.hi[i]!)) run.push(i);
      else flush();
    }
    flush();
  }
  for (const s of p.series) {
    const n = Math.min(s.x.length, s.y.length);
    let d = '';
    let pen = false;
    const dots: string[] = [];
    for (let i = 0; i < n; i++) {
      const x = s.x[i]!;
      const y = s.y[i]!;
      if (!Number.isFinite(x) || !okY(y)) {
        pen = false;
        continue;
      }
      d += `${pen ? 'L' : 'M'}${num(sx(x))} ${num(sy(y))} `;
      pen = true;
      if (s.markers) dots.push(`<circle cx="${num(sx(x))}" cy="${num(sy(y))}" r="2" fill="${escapeXml(s.color)}"/>`);
    }
    const dash = s.dash ? ` stroke-dasharray="${escapeXml(s.dash)}"` : '';
    if (d) out.push(`<path d="${d.trim()}" fill="none" stroke="${escapeXml(s.color)}" stroke-width="${num(s.width ?? 1.6)}"${dash} stroke-linejoin="round"><title>${escapeXml(s.label)}</title></path>`);
    out.push(...dots);
  }
  out.push('</g>');
  // legend under the plot
  const colW = (w - MARGIN.left - MARGIN.right) / LEGEND_COLS;
  p.series.forEach((s, i) => {
    const lx = px0 + (i % LEGEND_COLS) * colW;
    const ly = oy + h + Math.floor(i / LEGEND_COLS) * LEGEND_ROW + 8;
    const dash = s.dash ? ` stroke-dasharray="${escapeXml(s.dash)}"` : '';
    out.push(`<line x1="${num(lx)}" y1="${num(ly)}" x2="${num(lx + 24)}" y2="${num(ly)}" stroke="${escapeXml(s.color)}" stroke-width="${num(s.width ?? 1.6)}"${dash}/>`);
    out.push(`<text x="${num(lx + 30)}" y="${num(ly + 3.5)}" font-size="10" ${FONT}>${escapeXml(s.label)}</text>`);
  });
  out.push('</g>');
  return out;
}

/** A standalone SVG document with the panels side by side (left to right). */
export function plotPanels(panels: readonly Panel[], opts: FigureOptions = {}): string {
  const w = opts.panelWidth ?? 420;
  const h = opts.panelHeight ?? 300;
  const top = opts.title ? 28 : 4;
  const legend = Math.max(0, ...panels.map(legendHeight));
  const noteH = opts.note ? 18 : 0;
  const width = Math.max(1, panels.length) * w;
  const height = top + h + legend + noteH + 4;
  const parts: string[] = [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${num(height)}" viewBox="0 0 ${width} ${num(height)}">`,
    `<rect x="0" y="0" width="${width}" height="${num(height)}" fill="#ffffff"/>`,
  ];
  if (opts.title) parts.push(`<text x="${num(width / 2)}" y="19" text-anchor="middle" font-size="15" font-weight="bold" ${FONT}>${escapeXml(opts.title)}</text>`);
  panels.forEach((p, i) => parts.push(...renderPanel(p, i * w, top, w, h)));
  if (opts.note) parts.push(`<text x="8" y="${num(height - 8)}" font-size="9.5" fill="#555" ${FONT}>${escapeXml(opts.note)}</text>`);
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

/** n colours from `light` to `dark` ('#rrggbb'), for a family of lines ordered by depth. */
export function shades(light: string, dark: string, n: number): string[] {
  const rgb = (c: string): number[] => [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16));
  const a = rgb(light);
  const b = rgb(dark);
  if (n <= 1) return [dark];
  return Array.from({ length: n }, (_, k) => {
    const t = k / (n - 1);
    return `#${a.map((v, j) => Math.round(v + (b[j]! - v) * t).toString(16).padStart(2, '0')).join('')}`;
  });
}
