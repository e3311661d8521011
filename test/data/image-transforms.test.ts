// Image transforms against torchvision 0.14 + Pillow 9.4 (test/fixtures/gen_imagefolder.py): every 8-bit result is
// compared byte for byte; the random transforms with torchvision's functional ops at fixed parameters.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as T from '../../src/data/image-transforms.js';
import { decodeImage, toRgb, type DecodedImage } from '../../src/io/image.js';
import { centerCrop } from '../../src/io/preprocess.js';
import { Generator } from '../../src/random.js';

const DIR = join(__dirname, '..', 'fixtures', 'imagefolder');
interface Entry { shape: number[]; data: string }
interface Op { op: string; input: 'rgb' | 'small' | 'tiny'; params: Record<string, unknown>; out: Entry }
const M = JSON.parse(readFileSync(join(DIR, 'imagefolder.json'), 'utf8')) as { cases: { file: string; ops: Op[] }[] };

const bytes = (e: Entry): Uint8Array => new Uint8Array(Buffer.from(e.data, 'base64'));
/** A PIL array entry (H, W) or (H, W, 3) as a DecodedImage. */
function image(e: Entry): DecodedImage {
  const [h, w, c = 1] = e.shape as [number, number, number?];
  return { width: w, height: h, channels: c as 1 | 3, data: bytes(e) };
}

/** "resize: 3/507 bytes differ; first at 41: 17 vs 18". */
function diff(what: string, got: DecodedImage, want: DecodedImage): string {
  if (got.width !== want.width || got.height !== want.height || got.channels !== want.channels) {
    return `${what}: got ${got.height}×${got.width}×${got.channels}, want ${want.height}×${want.width}×${want.channels}`;
  }
  let n = 0;
  let first = -1;
  for (let i = 0; i < want.data.length; i++) if (got.data[i] !== want.data[i]) { n++; if (first < 0) first = i; }
  return n === 0 ? '' : `${what}: ${n}/${want.data.length} bytes differ; first at ${first}: ${got.data[first]} vs ${want.data[first]}`;
}

function run(op: Op, img: DecodedImage): DecodedImage {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const p = op.params as Record<string, any>;
  switch (op.op) {
    case 'resize': return T.resizeImage(img, p.size, p.interpolation);
    case 'centerCrop': return centerCrop(img, typeof p.size === 'number' ? p.size : (p.size as [number, number]));
    case 'hflip': return T.hflip(img);
    case 'resizedCrop': return T.resizedCrop(img, p.top, p.left, p.height, p.width, p.size, p.interpolation);
    case 'brightness': return T.adjustBrightness(img, p.factor);
    case 'contrast': return T.adjustContrast(img, p.factor);
    case 'saturation': return T.adjustSaturation(img, p.factor);
    case 'colorJitter': return T.applyColorJitter(img, { order: p.order, brightness: p.brightness, contrast: p.contrast, saturation: p.saturation });
    default: throw new Error(`unknown op ${op.op}`);
  }
}

describe('image transforms equal torchvision + Pillow byte for byte', () => {
  for (const c of M.cases) {
    it(`${c.file}: ${c.ops.length} ops (resize bilinear/bicubic, centerCrop, hflip, resizedCrop, color)`, () => {
      const inputs: Record<string, DecodedImage> = { rgb: toRgb(decodeImage(readFileSync(join(DIR, 'folder', c.file)))) };
      inputs.small = image(c.ops[0]!.out); // Resize(13) bilinear of rgb: checked first, below
      const problems: string[] = [];
      for (const op of c.ops) {
        if (op.op === 'centerCrop' && JSON.stringify(op.params.size) === '[6,7]') inputs.tiny = image(op.out);
      }
      for (const op of c.ops) {
        const d = diff(`${op.op} ${JSON.stringify(op.params)} on ${op.input}`, run(op, inputs[op.input]!), image(op.out));
        if (d) problems.push(d);
      }
      expect(problems).toEqual([]);
    });
  }
});

describe('random transforms: parameters and seeding', () => {
  const img: DecodedImage = { width: 40, height: 30, channels: 3, data: new Uint8Array(40 * 30 * 3).map((_, i) => (i * 7) % 256) };
  it('randomResizedCropParams: crops inside the image, area and ratio in range, same seed same crop', () => {
    const gen = new Generator(3);
    for (let k = 0; k < 200; k++) {
      const [top, left, h, w] = T.randomResizedCropParams(30, 40, [0.08, 1], [3 / 4, 4 / 3], gen);
      expect(top >= 0 && left >= 0 && top + h <= 30 && left + w <= 40).toBe(true);
      expect(h * w).toBeGreaterThanOrEqual(Math.floor(0.08 * 1200 * 0.8));
    }
    expect(T.randomResizedCropParams(30, 40, [0.08, 1], [3 / 4, 4 / 3], new Generator(9)))
      .toEqual(T.randomResizedCropParams(30, 40, [0.08, 1], [3 / 4, 4 / 3], new Generator(9)));
  });
  it('randomResizedCropParams falls back to the central crop at the ratio bound (torchvision rule)', () => {
    // a 10×100 image cannot hold any crop of ratio ≤ 4/3 and area ≥ 90%: central 10×13
    expect(T.randomResizedCropParams(10, 100, [0.9, 1], [3 / 4, 4 / 3], new Generator(0))).toEqual([0, 43, 10, 13]);
  });
  it('randomResizedCrop applies the drawn crop with resizedCrop', () => {
    const t = T.randomResizedCrop([8, 9], { interpolation: 'bicubic' });
    const [top, left, h, w] = T.randomResizedCropParams(30, 40, [0.08, 1], [3 / 4, 4 / 3], new Generator(5));
    expect(t.apply(img, new Generator(5))).toEqual(T.resizedCrop(img, top, left, h, w, [8, 9], 'bicubic'));
  });
  it('colorJitter draws an order and factors in range, then applies them', () => {
    const p = T.colorJitterParams({ brightness: 0.4, contrast: [0.5, 0.7], saturation: 0.2 }, new Generator(1));
    expect([...p.order].sort()).toEqual([0, 1, 2]);
    expect(p.brightness! >= 0.6 && p.brightness! <= 1.4 && p.contrast! >= 0.5 && p.contrast! <= 0.7 && p.saturation! >= 0.8 && p.saturation! <= 1.2).toBe(true);
    const t = T.colorJitter({ brightness: 0.4, contrast: [0.5, 0.7], saturation: 0.2 });
    expect(t.apply(img, new Generator(1))).toEqual(T.applyColorJitter(img, p));
  });
  it('a transform rebuilt from its spec gives the same result (what worker threads run)', () => {
    const t = T.compose([T.randomResizedCrop(12, { scale: [0.2, 1] }), T.randomHorizontalFlip(), T.colorJitter({ brightness: 0.3 }), T.toTensor(), T.normalize([0.5, 0.4, 0.3], [0.2, 0.25, 0.3])]);
    const u = T.fromSpec(JSON.parse(JSON.stringify(t.spec)) as T.TransformSpec);
    for (let s = 0; s < 5; s++) expect(u.apply(img, new Generator(s))).toEqual(t.apply(img, new Generator(s)));
  });
  it('bad arguments are ValueErrors naming the transform', () => {
    expect(() => T.resize(0)).toThrow(/\[resize\] size must be a positive integer/);
    expect(() => T.randomResizedCrop(8, { scale: [0.5, 0.1] })).toThrow(/\[randomResizedCrop\] scale/);
    expect(() => T.colorJitter({ brightness: -1 })).toThrow(/\[colorJitter\] brightness/);
    expect(() => T.normalize([0.5], [0])).toThrow(/\[normalize\] std evaluated to zero/);
    expect(() => T.normalize([0.5], [0.5]).apply(img, new Generator(0))).toThrow(/toTensor\(\) before normalize/);
    expect(() => T.fromSpec({ name: 'sharpen', args: [] })).toThrow(/unknown image transform 'sharpen'/);
  });
});
