/**
 * CMYK and YCCK JPEGs decode to the RGB that Pillow's Image.open(f).convert('RGB') gives (test/fixtures/gen_browser.py
 * makes the files and the references): Adobe transform 0 and 2, no Adobe marker, transform 1, subsampled and
 * progressive files.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { decodeImage } from '../../src/io/image.js';
import { decodeJpeg } from '../../src/io/jpeg.js';
import { maxDiff } from './image_fixtures.js';

const DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'browser');
interface CmykCase {
  name: string;
  file: string;
  ref: string;
  width: number;
  height: number;
  pillowMode: string;
  note: string;
}
const { cases } = JSON.parse(readFileSync(join(DIR, 'cmyk.json'), 'utf8')) as { cases: CmykCase[] };
const read = (f: string) => new Uint8Array(readFileSync(join(DIR, f)));

describe('4-component JPEG decodes as Pillow decodes it, then convert("RGB")', () => {
  it('the fixtures cover CMYK and YCCK, and Pillow opened every one in mode CMYK', () => {
    expect(cases.length).toBe(8);
    expect(cases.every((c) => c.pillowMode === 'CMYK')).toBe(true);
    expect(cases.filter((c) => c.name.startsWith('ycck')).length).toBe(4);
  });

  for (const c of cases) {
    it(`${c.name}: ${c.note}`, () => {
      const img = decodeJpeg(read(c.file));
      expect([img.width, img.height, img.channels]).toEqual([c.width, c.height, 3]);
      const want = read(c.ref);
      const d = maxDiff(img.data, want, c.width, 3);
      expect(d.max, d.where).toBe(0);
      // Through the dispatcher too.
      expect(decodeImage(read(c.file)).data).toEqual(img.data);
    });
  }

  it('a YCCK file read as CMYK would differ (the transform flag matters)', () => {
    const ycck = read('ycck_444_13x9.jpg');
    const cmyk = read('cmyk_444_13x9.jpg');
    expect(ycck.length).toBe(cmyk.length);
    expect(maxDiff(decodeJpeg(ycck).data, decodeJpeg(cmyk).data, 13, 3).max).toBeGreaterThan(50);
  });
});
