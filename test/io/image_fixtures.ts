/** Loads the Pillow/torchvision references written by test/fixtures/gen_images.py. */

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'images');

export type Ref = [offset: number, length: number];

export interface ImageCase {
  name: string;
  file: string;
  width: number;
  height: number;
  channels: 1 | 2 | 3 | 4;
  native: Ref;
  rgb: Ref | null;
  note: string;
}

export interface Manifest {
  pillow: string;
  png: ImageCase[];
  jpeg: ImageCase[];
  pnm: ImageCase[];
  preprocess: {
    resize: { src: Ref; width: number; height: number; cases: { width: number; height: number; ref: Ref }[] };
    resizeShorter: { size: number; width: number; height: number; ref: Ref }[];
    centerCrop: { size: number; ref: Ref }[];
    resizeGray: { src: Ref; width: number; height: number; ref: Ref };
    imagenet: { png: string; toTensor: string; normalized: string; normStride: number };
    downscale: { src: string; width: number; height: number; resize: number; crop: number; ref: Ref };
  };
}

export const manifest: Manifest = JSON.parse(readFileSync(join(FIXTURES, 'images.json'), 'utf8'));
const refs = new Uint8Array(readFileSync(join(FIXTURES, 'refs.bin')));

export function ref(r: Ref): Uint8Array {
  return refs.subarray(r[0], r[0] + r[1]);
}

export function readFixture(name: string): Uint8Array {
  return new Uint8Array(readFileSync(join(FIXTURES, name)));
}

export function readF32(name: string): Float32Array {
  const b = readFileSync(join(FIXTURES, name));
  const out = new Float32Array(b.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = b.readFloatLE(i * 4);
  return out;
}

/** Largest |a - b| over two byte arrays, with where it happens (pixel x, y, channel) for failure messages. */
export function maxDiff(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  width: number,
  channels: number,
): { max: number; count: number; where: string } {
  let max = 0;
  let count = 0;
  let at = -1;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (d > 0) count++;
    if (d > max) {
      max = d;
      at = i;
    }
  }
  const px = Math.floor(at / channels);
  const where = at < 0 ? '-' : `(x=${px % width}, y=${Math.floor(px / width)}, c=${at % channels}): ${a[at]} vs ${b[at]}`;
  return { max, count, where };
}
