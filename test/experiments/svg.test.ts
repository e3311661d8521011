import { describe, expect, it } from 'vitest';
import { escapeXml, logTicks, niceTicks, plotPanels, shades, tickLabel } from '../../src/experiments/svg.js';
import { findAll, parseXml } from './xml.js';

describe('the XML checker used on our SVGs', () => {
  it('accepts a well-formed document and returns its tree', () => {
    const t = parseXml('<?xml version="1.0"?>\n<svg a="1" b=\'x &amp; y\'><g><text>a &lt; b &#38; c</text><rect/></g><!-- c --></svg>\n');
    expect(t.name).toBe('svg');
    expect(t.attrs).toEqual({ a: '1', b: 'x & y' });
    expect(findAll(t, 'text')[0]!.text).toBe('a < b & c');
    expect(findAll(t, 'rect')).toHaveLength(1);
  });
  it.each([
    ['unclosed tag', '<svg><g></svg>', /does not match <g>/],
    ['unclosed root', '<svg><g></g>', /unclosed <svg>/],
    ['stray close', '<svg></svg></g>', /nothing open/],
    ['bare ampersand in text', '<svg><text>a & b</text></svg>', /bare '&'/],
    ['raw < in attribute', '<svg a="x<y"></svg>', /raw '<'/],
    ['unknown entity', '<svg><text>&nbsp;</text></svg>', /bare '&'/],
    ['unquoted attribute', '<svg a=1></svg>', /bad attribute/],
    ['duplicate attribute', '<svg a="1" a="2"></svg>', /duplicate attribute/],
    ['two roots', '<svg></svg><svg></svg>', /second root/],
    ['text outside root', 'hello<svg></svg>', /outside the root/],
    ['no root', '<?xml version="1.0"?>', /no root/],
  ])('rejects %s', (_, src, msg) => {
    expect(() => parseXml(src)).toThrow(msg);
  });
});

describe('svg plotting', () => {
  it('escapeXml escapes the five XML specials', () => {
    expect(escapeXml(`a<b>&"c"'d'`)).toBe('a&lt;b&gt;&amp;&quot;c&quot;&apos;d&apos;');
  });

  it('niceTicks picks 1/2/5 × 10^k steps covering the range', () => {
    expect(niceTicks(0, 100, 5)).toEqual([0, 20, 40, 60, 80, 100]);
    expect(niceTicks(0, 1, 4)).toEqual([0, 0.5, 1]); // raw step 0.25 rounds up to 0.5
    const t = niceTicks(3, 47, 5);
    expect(t[0]).toBe(10);
    expect(t[t.length - 1]).toBe(40);
    expect(t[1]! - t[0]!).toBe(10);
    expect(niceTicks(5, 5)).toEqual([5]);
  });

  it('logTicks gives decades over wide ranges and 1-2-5 over narrow ones', () => {
    expect(logTicks(1e-4, 1)).toEqual([1e-4, 1e-3, 1e-2, 1e-1, 1]);
    expect(logTicks(0.1, 1.2)).toEqual([0.1, 0.2, 0.5, 1]);
  });

  it('tickLabel is short', () => {
    expect(tickLabel(0)).toBe('0');
    expect(tickLabel(0.25)).toBe('0.25');
    expect(tickLabel(12000)).toBe('12k');
    expect(tickLabel(1e-5)).toBe('1e-5');
    expect(tickLabel(0.001)).toBe('0.001');
  });

  it('shades interpolates from light to dark', () => {
    expect(shades('#000000', '#ff0000', 3)).toEqual(['#000000', '#800000', '#ff0000']);
    expect(shades('#000000', '#ff0000', 1)).toEqual(['#ff0000']);
  });

  it('plotPanels writes a well-formed SVG with escaped labels, one path per series, dashes and gaps', () => {
    const svg = plotPanels(
      [
        {
          title: 'a < b & "c"', xLabel: 'x <iter>', yLabel: "y's", series: [
            { label: 'solid & <1>', x: [0, 1, 2, 3], y: [1, 2, NaN, 4], color: '#ff0000' },
            { label: 'dashed', x: [0, 1, 2], y: [3, 2, 1], color: '#0000ff', dash: '5 3', markers: true },
          ],
        },
        { title: 'log', xLabel: 'x', yLabel: 'y', logY: true, series: [{ label: 'l', x: [1, 2, 3], y: [1e-3, 0, 10], color: '#00aa00' }] },
      ],
      { title: 'Title & <stuff>', note: 'note "quoted"' },
    );
    const root = parseXml(svg);
    expect(root.name).toBe('svg');
    expect(root.attrs.xmlns).toBe('http://www.w3.org/2000/svg');
    const paths = findAll(root, 'path');
    expect(paths).toHaveLength(3);
    // the NaN splits the first series into two subpaths; the zero on the log axis splits the third
    expect(paths[0]!.attrs.d!.match(/M/g)).toHaveLength(2);
    expect(paths[0]!.attrs['stroke-dasharray']).toBeUndefined();
    expect(paths[1]!.attrs['stroke-dasharray']).toBe('5 3');
    expect(paths[2]!.attrs.d!.match(/M/g)).toHaveLength(2);
    expect(findAll(root, 'circle')).toHaveLength(3);
    const texts = findAll(root, 'text').map((t) => t.text);
    expect(texts).toContain('a < b & "c"');
    expect(texts).toContain('solid & <1>');
    expect(texts).toContain('Title & <stuff>');
    // every coordinate is a finite number
    for (const p of paths) expect(p.attrs.d).toMatch(/^(?:[ML]-?\d+(?:\.\d+)? -?\d+(?:\.\d+)? ?)+$/);
  });

  it('maps data to pixels linearly inside the plot area', () => {
    const svg = plotPanels([{ title: 't', xLabel: 'x', yLabel: 'y', xMin: 0, xMax: 10, yMin: 0, yMax: 100, series: [{ label: 's', x: [0, 10, 5], y: [0, 100, 50], color: '#000000' }] }], { panelWidth: 400, panelHeight: 300 });
    const d = findAll(parseXml(svg), 'path')[0]!.attrs.d!;
    const pts = [...d.matchAll(/[ML](-?[\d.]+) (-?[\d.]+)/g)].map((m) => [Number(m[1]), Number(m[2])] as const);
    const [p0, p1, p2] = pts as [readonly [number, number], readonly [number, number], readonly [number, number]];
    // the middle point is halfway between the corners in both coordinates; y grows downwards
    expect(p2[0]).toBeCloseTo((p0[0] + p1[0]) / 2, 1);
    expect(p2[1]).toBeCloseTo((p0[1] + p1[1]) / 2, 1);
    expect(p1[0]).toBeGreaterThan(p0[0]);
    expect(p1[1]).toBeLessThan(p0[1]);
  });
});
