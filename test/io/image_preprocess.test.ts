/**
 * Resize / CenterCrop / ToTensor / Normalize against Pillow 9.4 and torchvision 0.14 (test/fixtures/gen_images.py).
 * The 8-bit steps must match Pillow exactly; the float tensor must be within 2/255 of torchvision (it is exact).
 */

import { describe, expect, it } from 'vitest';
import { decodePng } from '../../src/io/png.js';
import { toRgb, type DecodedImage } from '../../src/io/image.js';
import {
  centerCrop,
  IMAGENET_MEAN,
  IMAGENET_STD,
  imagenetPreprocess,
  resizeBilinear,
  resizeShorter,
  toFloatCHW,
} from '../../src/io/preprocess.js';
import { ValueError } from '../../src/errors.js';
import { manifest, maxDiff, readF32, readFixture, ref } from './image_fixtures.js';

const P = manifest.preprocess;
const rgbImage = (data: Uint8Array, width: number, height: number): DecodedImage => ({ width, height, channels: 3, data });

function expectBytes(got: DecodedImage, want: Uint8Array, what: string): void {
  expect(got.data.length, `${what}: size`).toBe(want.length);
  const d = maxDiff(got.data, want, got.width, got.channels);
  expect(d.max, `${what}: ${d.count}/${want.length} differ; worst at ${d.where}`).toBe(0);
}

describe('resizeBilinear = PIL Image.resize(BILINEAR)', () => {
  const src = rgbImage(ref(P.resize.src), P.resize.width, P.resize.height);
  for (const c of P.resize.cases) {
    it(`${P.resize.width}x${P.resize.height} -> ${c.width}x${c.height}`, () => {
      const out = resizeBilinear(src, c.width, c.height);
      expect([out.width, out.height, out.channels]).toEqual([c.width, c.height, 3]);
      expectBytes(out, ref(c.ref), `resize ${c.width}x${c.height}`);
    });
  }
  it(`gray ${P.resize.width}x${P.resize.height} -> ${P.resizeGray.width}x${P.resizeGray.height}`, () => {
    const g: DecodedImage = { width: P.resize.width, height: P.resize.height, channels: 1, data: ref(P.resizeGray.src) };
    const out = resizeBilinear(g, P.resizeGray.width, P.resizeGray.height);
    expect(out.channels).toBe(1);
    expectBytes(out, ref(P.resizeGray.ref), 'gray resize');
  });
  it('same size is a copy; alpha images and bad sizes are refused', () => {
    const img = rgbImage(new Uint8Array([1, 2, 3, 4, 5, 6]), 2, 1);
    const same = resizeBilinear(img, 2, 1);
    expect(Array.from(same.data)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(same.data).not.toBe(img.data);
    expect(() => resizeBilinear({ width: 1, height: 1, channels: 4, data: new Uint8Array(4) }, 2, 2)).toThrow(ValueError);
    expect(() => resizeBilinear(img, 0, 3)).toThrow(/output size/);
  });
  it('a constant image stays constant (weights sum to one after rounding)', () => {
    const img = rgbImage(new Uint8Array(37 * 23 * 3).fill(200), 37, 23);
    for (const [w, h] of [[5, 3], [100, 71], [37, 9], [8, 23]] as const) {
      expect(resizeBilinear(img, w, h).data.every((v) => v === 200), `${w}x${h}`).toBe(true);
    }
  });
});

describe('resizeShorter = torchvision Resize(size)', () => {
  const src = rgbImage(ref(P.resize.src), P.resize.width, P.resize.height);
  for (const c of P.resizeShorter) {
    it(`Resize(${c.size}) of ${P.resize.width}x${P.resize.height} -> ${c.width}x${c.height}`, () => {
      const out = resizeShorter(src, c.size);
      expect([out.width, out.height]).toEqual([c.width, c.height]);
      expectBytes(out, ref(c.ref), `Resize(${c.size})`);
    });
  }
  it('long side is int(size * long / short); portrait keeps orientation; same size returns the input', () => {
    const portrait = rgbImage(new Uint8Array(3 * 7 * 3), 3, 7);
    const r = resizeShorter(portrait, 5); // int(5 * 7 / 3) = int(11.67) = 11
    expect([r.width, r.height]).toEqual([5, 11]);
    expect(resizeShorter(portrait, 3)).toBe(portrait); // int(3 * 7 / 3) = 7: already that size
  });
});

describe('centerCrop = torchvision CenterCrop(size)', () => {
  const src = rgbImage(ref(P.resize.src), P.resize.width, P.resize.height);
  for (const c of P.centerCrop) {
    it(`CenterCrop(${c.size}) of ${P.resize.width}x${P.resize.height}`, () => {
      const out = centerCrop(src, c.size);
      expect([out.width, out.height]).toEqual([c.size, c.size]);
      expectBytes(out, ref(c.ref), `CenterCrop(${c.size})`);
    });
  }
  it('rounds the offset half to even, by hand: 1x5 column, crop 2 starts at row round(1.5)=2', () => {
    const col: DecodedImage = { width: 1, height: 5, channels: 1, data: new Uint8Array([10, 11, 12, 13, 14]) };
    // width 1 < 2 is padded: left pad (2-1)//2 = 0, so column 0 is the image, column 1 zeros.
    expect(Array.from(centerCrop(col, 2).data)).toEqual([12, 0, 13, 0]);
    const col7: DecodedImage = { width: 1, height: 7, channels: 1, data: new Uint8Array([0, 1, 2, 3, 4, 5, 6]) };
    // (7-2)/2 = 2.5 -> 2 (even)
    expect(Array.from(centerCrop(col7, 2).data)).toEqual([2, 0, 3, 0]);
  });
});

describe('ImageNet transform = torchvision Resize(256), CenterCrop(224), ToTensor, Normalize', () => {
  const png = decodePng(readFixture(P.imagenet.png));
  const want = readF32(P.imagenet.toTensor);

  it('ToTensor output of a 300x200 PNG is within 2/255 of torchvision (reports max |diff|)', () => {
    const t = toFloatCHW(centerCrop(resizeShorter(toRgb(png), 256), 224));
    expect(t.shape).toEqual([3, 224, 224]);
    expect(t.data.length).toBe(want.length);
    let max = 0;
    let worst = -1;
    for (let i = 0; i < want.length; i++) {
      const d = Math.abs(t.data[i]! - want[i]!);
      if (d > max) {
        max = d;
        worst = i;
      }
    }
    console.log(`[image_preprocess] ToTensor max |diff| vs torchvision: ${max} (${(max * 255).toFixed(3)}/255)`);
    expect(max, `worst at flat index ${worst}: ${t.data[worst]} vs ${want[worst]}`).toBeLessThanOrEqual(2 / 255);
    // It is in fact exact: same bytes out of the resize, and v / 255 rounded to float32 as PyTorch does.
    expect(max).toBe(0);
  });

  it('imagenetPreprocess matches torchvision Normalize (every 97th value) to float32 rounding', () => {
    const t = imagenetPreprocess(png);
    expect(t.shape).toEqual([3, 224, 224]);
    const norm = readF32(P.imagenet.normalized);
    let max = 0;
    for (let j = 0; j < norm.length; j++) max = Math.max(max, Math.abs(t.data[j * P.imagenet.normStride]! - norm[j]!));
    console.log(`[image_preprocess] normalized max |diff| vs torchvision: ${max}`);
    expect(max).toBe(0);
  });

  it('downscaling case: 150x100 -> Resize(64) -> CenterCrop(56) matches PIL bytes', () => {
    const d = P.downscale;
    const img = decodePng(readFixture(d.src));
    expect([img.width, img.height]).toEqual([d.width, d.height]);
    const out = centerCrop(resizeShorter(img, d.resize), d.crop);
    expectBytes(out, ref(d.ref), 'downscale');
  });

  it('toFloatCHW by hand: CHW order, v/255, (x - mean) / std', () => {
    const img = rgbImage(new Uint8Array([0, 51, 255, 255, 102, 0]), 2, 1);
    const t = toFloatCHW(img);
    expect(t.shape).toEqual([3, 1, 2]);
    expect(Array.from(t.data)).toEqual([0, 1, 0.2, 0.4, 1, 0].map(Math.fround));
    const n = toFloatCHW(img, [0.5, 0.5, 0.5], [0.25, 0.5, 1]);
    const byHand = [(0 - 0.5) / 0.25, (1 - 0.5) / 0.25, (0.2 - 0.5) / 0.5, (0.4 - 0.5) / 0.5, (1 - 0.5) / 1, (0 - 0.5) / 1];
    byHand.forEach((v, i) => expect(n.data[i], `element ${i}`).toBeCloseTo(v, 6));
    expect(IMAGENET_MEAN).toEqual([0.485, 0.456, 0.406]);
    expect(IMAGENET_STD).toEqual([0.229, 0.224, 0.225]);
    expect(() => toFloatCHW({ width: 1, height: 1, channels: 1, data: new Uint8Array(1) })).toThrow(ValueError);
  });
});
