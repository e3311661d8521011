/**
 * Seeded fuzzing (fast-check): mutated, truncated and spliced fixtures, random bytes behind each signature, and
 * PNGs built from random headers and random (validly compressed, correctly CRC'd) image data so that the fuzz gets
 * past the CRC and zlib checks into unfiltering and sample conversion. Every outcome must be either a well-formed
 * image or an ImageDecodeError: never another error type, never a hang.
 */

import { deflateSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeImage, ImageDecodeError, MAX_PIXELS } from '../../src/io/image.js';
import { readFixture } from './image_fixtures.js';

const BASES = [
  'png_rgb8_13x9.png',
  'png_p4t_i_13x9.png',
  'png_g16_i_13x9.png',
  'png_ga8_i_13x9.png',
  'jpg_base_420_13x9.jpg',
  'jpg_base_422_33x17.jpg',
  'jpg_prog_420_13x9.jpg',
  'jpg_prog_444_33x17.jpg',
  'jpg_restart2b_prog_420_61x45.jpg',
  'jpg_restart3b_444_61x45.jpg',
  'jpg_gray_13x9.jpg',
  'ppm_p6_100.pnm',
  'pgm_p5_65535.pnm',
].map((f) => readFixture(f));

let slowest = 0;

/** Decodes and checks the outcome; returns 'ok' or 'error'. */
function outcome(bytes: Uint8Array): 'ok' | 'error' {
  const t0 = performance.now();
  try {
    const img = decodeImage(bytes);
    expect(Number.isInteger(img.width) && img.width >= 1).toBe(true);
    expect(Number.isInteger(img.height) && img.height >= 1).toBe(true);
    expect(img.width * img.height).toBeLessThanOrEqual(MAX_PIXELS);
    expect([1, 2, 3, 4]).toContain(img.channels);
    expect(img.data).toBeInstanceOf(Uint8Array);
    expect(img.data.length).toBe(img.width * img.height * img.channels);
    return 'ok';
  } catch (e) {
    if (!(e instanceof ImageDecodeError)) {
      throw new Error(`non-ImageDecodeError ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
    }
    expect(e.message).toMatch(/^\[(png|jpeg|pnm|image)\] /);
    return 'error';
  } finally {
    slowest = Math.max(slowest, performance.now() - t0);
  }
}

const mutation = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), edits: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('splice' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 24 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 48 }) }),
);

type Mutation =
  | { kind: 'set'; edits: [number, number][] }
  | { kind: 'truncate'; at: number }
  | { kind: 'splice'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; n: number };

function mutate(base: Uint8Array, m: Mutation): Uint8Array {
  const n = base.length;
  switch (m.kind) {
    case 'set': {
      const out = base.slice();
      // Mostly hit the headers (first 200 bytes), sometimes anywhere.
      for (const [pos, v] of m.edits) out[pos % 3 === 0 ? pos % n : pos % Math.min(n, 200)] = v;
      return out;
    }
    case 'truncate':
      return base.subarray(0, m.at % n);
    case 'splice': {
      const at = m.at % n;
      const out = new Uint8Array(n + m.bytes.length);
      out.set(base.subarray(0, at));
      out.set(m.bytes, at);
      out.set(base.subarray(at), at + m.bytes.length);
      return out;
    }
    default: {
      const at = m.at % n;
      const end = Math.min(n, at + m.n);
      const out = new Uint8Array(n - (end - at));
      out.set(base.subarray(0, at));
      out.set(base.subarray(end), at);
      return out;
    }
  }
}

// PNG construction for the structured fuzz.
function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type: string, d: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + d.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, d.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(d, 8);
  v.setUint32(8 + d.length, crc32(out.subarray(4, 8 + d.length)));
  return out;
}

/** Filtered-data size a PNG header implies (0 for combinations the decoder refuses anyway). */
function impliedSize(g: { w: number; h: number; depth: number; colorType: number; interlace: number }): number {
  const channels = ({ 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 } as Record<number, number>)[g.colorType] ?? 1;
  const passes = g.interlace === 1
    ? [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]]
    : [[0, 0, 1, 1]];
  let total = 0;
  for (const [x0, y0, dx, dy] of passes as [number, number, number, number][]) {
    const pw = g.w > x0 ? Math.ceil((g.w - x0) / dx) : 0;
    const ph = g.h > y0 ? Math.ceil((g.h - y0) / dy) : 0;
    if (pw > 0 && ph > 0) total += ph * (1 + Math.ceil((pw * channels * g.depth) / 8));
  }
  return total;
}

describe('fuzz: every input decodes to a valid image or throws ImageDecodeError', () => {
  const counts = { ok: 0, error: 0 };
  const pngCounts = { ok: 0, error: 0 };

  it('1200 mutated / truncated / spliced fixtures (seed 20240917)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: BASES.length - 1 }), mutation, (bi, m) => {
        counts[outcome(mutate(BASES[bi]!, m))]++;
      }),
      { seed: 20240917, numRuns: 1200 },
    );
  });

  it('400 random byte strings behind each signature (seed 7)', () => {
    const sigs = [
      [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a],
      [0xff, 0xd8],
      [0xff, 0xd8, 0xff, 0xc2, 0x00, 0x0b, 0x08, 0x00, 0x08, 0x00, 0x08, 0x01, 0x01, 0x11, 0x00],
      [0x50, 0x35, 0x0a],
      [0x50, 0x36, 0x20],
      [],
    ];
    fc.assert(
      fc.property(fc.constantFrom(...sigs), fc.uint8Array({ maxLength: 400 }), (sig, body) => {
        const bytes = new Uint8Array(sig.length + body.length);
        bytes.set(sig);
        bytes.set(body, sig.length);
        counts[outcome(bytes)]++;
      }),
      { seed: 7, numRuns: 400 },
    );
  });

  it('400 PNGs from random IHDR fields and random image data, valid CRC and zlib (seed 99)', () => {
    // Mostly valid (colour type, bit depth) pairs, a few invalid ones.
    const combos: [number, number][] = [[0, 1], [0, 2], [0, 4], [0, 8], [0, 16], [2, 8], [2, 16], [3, 1], [3, 2], [3, 4], [3, 8],
      [4, 8], [4, 16], [6, 8], [6, 16], [2, 4], [5, 8], [3, 16]];
    const header = fc.record({
      w: fc.integer({ min: 0, max: 40 }),
      h: fc.integer({ min: 0, max: 40 }),
      combo: fc.constantFrom(...combos),
      interlace: fc.constantFrom(0, 1, 0, 1, 2),
      plteEntries: fc.integer({ min: 0, max: 20 }),
      plteExtra: fc.constantFrom(0, 0, 0, 1),
      trns: fc.uint8Array({ maxLength: 8 }),
      raw: fc.uint8Array({ minLength: 1, maxLength: 3000 }),
      sizeMode: fc.constantFrom('exact', 'exact', 'exact', 'off', 'random'),
      filters: fc.constantFrom(5, 5, 5, 6),
      rawLen: fc.integer({ min: 0, max: 6000 }),
    });
    fc.assert(
      fc.property(header, (f) => {
        const g = { ...f, colorType: f.combo[0], depth: f.combo[1] };
        const plte = Uint8Array.from({ length: f.plteEntries * 3 + f.plteExtra }, (_, i) => (i * 37) & 255);
        const ihdr = new Uint8Array(13);
        const v = new DataView(ihdr.buffer);
        v.setUint32(0, g.w);
        v.setUint32(4, g.h);
        ihdr.set([g.depth, g.colorType, 0, 0, g.interlace], 8);
        // Random data, mostly of the size the header implies (so decoding reaches unfiltering), sometimes off by a
        // little or random; filter bytes are random in 0..5 (5 is invalid).
        const len = g.sizeMode === 'exact' ? impliedSize(g) : g.sizeMode === 'off' ? Math.max(0, impliedSize(g) + (g.rawLen % 7) - 3) : g.rawLen;
        const raw = new Uint8Array(len);
        for (let i = 0; i < raw.length; i++) raw[i] = g.raw[i % g.raw.length]!;
        // Filter bytes at the non-interlaced row starts: 0..4, or 0..5 when g.filters is 6 (5 is invalid).
        const rowBytes = 1 + Math.ceil((g.w * ({ 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 } as Record<number, number>)[g.colorType]! * g.depth) / 8 || 0);
        for (let i = 0; i < raw.length; i += Math.max(1, rowBytes)) raw[i] = raw[i]! % g.filters;
        const parts = [
          Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
          chunk('IHDR', ihdr),
          ...(plte.length > 0 ? [chunk('PLTE', plte)] : []),
          ...(g.trns.length > 0 ? [chunk('tRNS', g.trns)] : []),
          chunk('IDAT', deflateSync(raw)),
          chunk('IEND', new Uint8Array(0)),
        ];
        const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
        let o = 0;
        for (const p of parts) {
          bytes.set(p, o);
          o += p.length;
        }
        const r = outcome(bytes);
        counts[r]++;
        pngCounts[r]++;
      }),
      { seed: 99, numRuns: 400 },
    );
  });

  it('stays fast: no single input took a second, and both outcomes occurred', () => {
    console.log(`[image_fuzz] structured PNGs: ${pngCounts.ok} decoded, ${pngCounts.error} refused`);
    console.log(`[image_fuzz] ${counts.ok} decoded, ${counts.error} ImageDecodeError; slowest input ${slowest.toFixed(1)} ms`);
    expect(counts.ok + counts.error).toBe(2000);
    expect(counts.ok).toBeGreaterThan(50);
    expect(counts.error).toBeGreaterThan(50);
    expect(pngCounts.ok).toBeGreaterThan(50);
    expect(slowest).toBeLessThan(1000);
  });
});
