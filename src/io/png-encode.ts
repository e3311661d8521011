/**
 * A small PNG encoder (Node only: deflate by node:zlib): 8-bit gray, gray + alpha, RGB or RGBA, filter type 0 (None)
 * on every row, one IDAT chunk. Enough to write datasets out as image folders; the decoder in png.ts reads it back
 * bit for bit.
 */

import { deflateSync } from 'node:zlib';
import { ValueError } from '../errors.js';
import type { DecodedImage } from './image.js';
import { crc32 } from './png.js';

const COLOR_TYPE = { 1: 0, 2: 4, 3: 2, 4: 6 } as const;

function chunk(type: string, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + body.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, body.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(body, 8);
  v.setUint32(8 + body.length, crc32(out, 4, 8 + body.length));
  return out;
}

/** PNG file bytes of an 8-bit image (HWC, 1–4 channels). */
export function encodePng(img: DecodedImage, level = 6): Uint8Array {
  const { width: w, height: h, channels: c, data } = img;
  if (!(Number.isInteger(w) && Number.isInteger(h) && w >= 1 && h >= 1) || !(c in COLOR_TYPE) || data.length !== w * h * c) {
    throw new ValueError('encodePng', `expects a non-empty 8-bit image with 1-4 channels and width × height × channels bytes, got ${w}×${h}×${c} with ${data?.length} bytes`);
  }
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, w);
  v.setUint32(4, h);
  ihdr[8] = 8;
  ihdr[9] = COLOR_TYPE[c];
  const raw = new Uint8Array(h * (1 + w * c)); // each row: filter byte 0, then the samples
  for (let y = 0; y < h; y++) raw.set(data.subarray(y * w * c, (y + 1) * w * c), y * (1 + w * c) + 1);
  return pngFile(ihdr, deflateSync(raw, { level }));
}

/** A PNG file of the signature, an IHDR chunk with these 13 bytes, one IDAT chunk with these bytes, and IEND. */
export function pngFile(ihdr: Uint8Array, idat: Uint8Array): Uint8Array {
  const parts = [Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a), chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', new Uint8Array(0))];
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
