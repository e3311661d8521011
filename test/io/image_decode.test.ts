/**
 * Decoders against Pillow 9.4 (libjpeg-turbo 2.1.5): every fixture in test/fixtures/images/images.json, made by
 * test/fixtures/gen_images.py. PNG and PNM must match exactly. JPEG is allowed ±2 per sample by the spec we work to,
 * but the decoder reproduces libjpeg-turbo's integer arithmetic, so these tests demand (and get) exact equality;
 * a ±2 tolerance would hide real bugs (a wrong fancy-upsampling bias is off by exactly 2).
 */

import { describe, expect, it } from 'vitest';
import { decodeImage, sniffFormat, toRgb, type DecodedImage } from '../../src/io/image.js';
import { decodeJpeg } from '../../src/io/jpeg.js';
import { decodePng } from '../../src/io/png.js';
import { decodePnm } from '../../src/io/pnm.js';
import { manifest, maxDiff, readFixture, ref, type ImageCase } from './image_fixtures.js';

function checkCase(c: ImageCase, decode: (b: Uint8Array) => DecodedImage, tolerance: number): void {
  const img = decode(readFixture(c.file));
  expect([img.width, img.height, img.channels], `${c.name}: W, H, C`).toEqual([c.width, c.height, c.channels]);
  expect(img.data.length).toBe(c.width * c.height * c.channels);
  const d = maxDiff(img.data, ref(c.native), c.width, c.channels);
  expect(d.max, `${c.name}: ${d.count}/${img.data.length} samples differ; worst at ${d.where}`).toBeLessThanOrEqual(tolerance);
  // convert('RGB') reference: gray replicated, alpha dropped, palette expanded.
  const rgb = toRgb(img);
  const rgbRef = c.rgb === null ? ref(c.native) : ref(c.rgb);
  const dr = maxDiff(rgb.data, rgbRef, c.width, 3);
  expect(dr.max, `${c.name} toRgb: ${dr.count} samples differ; worst at ${dr.where}`).toBeLessThanOrEqual(tolerance);
}

describe('PNG vs Pillow (exact)', () => {
  it('fixture set covers every colour type, bit depth, interlacing and tRNS', () => {
    const names = manifest.png.map((c) => c.name);
    for (const n of ['png_g1', 'png_g2', 'png_g4', 'png_g8', 'png_g16', 'png_rgb8', 'png_rgb16', 'png_p1', 'png_p2', 'png_p4', 'png_p8',
      'png_p8t', 'png_ga8', 'png_ga16', 'png_rgba8', 'png_rgba16', 'png_g8t', 'png_rgb8t', 'png_rgb16t']) {
      expect(names.some((x) => x.startsWith(n + '_')), n).toBe(true);
      expect(names.some((x) => x.startsWith(n + '_i_')) || n.endsWith('t'), `${n} interlaced`).toBe(true);
    }
  });
  for (const c of manifest.png) {
    it(`${c.name} ${c.width}x${c.height}x${c.channels}${c.note ? ` (${c.note})` : ''}`, () => checkCase(c, decodePng, 0));
  }
});

describe('JPEG vs Pillow/libjpeg-turbo (exact; the contract is ±2)', () => {
  for (const c of manifest.jpeg) {
    it(`${c.name} ${c.width}x${c.height}x${c.channels}${c.note ? ` (${c.note})` : ''}`, () => checkCase(c, decodeJpeg, 0));
  }
});

describe('PNM vs Pillow (exact)', () => {
  for (const c of manifest.pnm) {
    it(`${c.name} ${c.width}x${c.height}x${c.channels}${c.note ? ` (${c.note})` : ''}`, () => checkCase(c, decodePnm, 0));
  }
});

describe('decodeImage dispatch', () => {
  it('sniffs each format from its magic bytes and gives the same pixels as the direct decoder', () => {
    const picks: [string, (b: Uint8Array) => DecodedImage, string][] = [
      ['png_rgba8_13x9.png', decodePng, 'png'],
      ['jpg_base_420_33x17.jpg', decodeJpeg, 'jpeg'],
      ['ppm_p6_255.pnm', decodePnm, 'pnm'],
      ['pgm_p5_255.pnm', decodePnm, 'pnm'],
    ];
    for (const [file, decode, format] of picks) {
      const bytes = readFixture(file);
      expect(sniffFormat(bytes), file).toBe(format);
      const a = decodeImage(bytes);
      const b = decode(bytes);
      expect([a.width, a.height, a.channels]).toEqual([b.width, b.height, b.channels]);
      expect(Buffer.from(a.data).equals(Buffer.from(b.data)), file).toBe(true);
    }
  });

  it('toRgb by hand: gray replicates, gray+alpha and RGBA drop alpha, RGB is returned as is', () => {
    const g = toRgb({ width: 2, height: 1, channels: 1, data: new Uint8Array([7, 200]) });
    expect(Array.from(g.data)).toEqual([7, 7, 7, 200, 200, 200]);
    const ga = toRgb({ width: 2, height: 1, channels: 2, data: new Uint8Array([7, 0, 200, 255]) });
    expect(Array.from(ga.data)).toEqual([7, 7, 7, 200, 200, 200]);
    const rgba = toRgb({ width: 1, height: 2, channels: 4, data: new Uint8Array([1, 2, 3, 0, 4, 5, 6, 128]) });
    expect([rgba.width, rgba.height, rgba.channels]).toEqual([1, 2, 3]);
    expect(Array.from(rgba.data)).toEqual([1, 2, 3, 4, 5, 6]);
    const rgb = { width: 1, height: 1, channels: 3 as const, data: new Uint8Array([9, 8, 7]) };
    expect(toRgb(rgb)).toBe(rgb);
  });
});
