/**
 * Decoded images and the format dispatcher. The decoders themselves live in png.ts, jpeg.ts and pnm.ts; each one
 * aims to give the pixels Pillow gives (torchvision's default loader is `Image.open(f).convert('RGB')`).
 *
 * Every decoding failure is an `ImageDecodeError` whose message names the format and the part of the file at fault
 * (chunk name, marker, byte offset), e.g. `[png] IDAT: zlib data is corrupt (invalid distance too far back)`.
 */

import { ResnetTsError } from '../errors.js';
import { decodeJpeg } from './jpeg.js';
import { decodePng } from './png.js';
import { decodePnm } from './pnm.js';

/** An 8-bit image, pixels stored row-major and interleaved: data[(y * width + x) * channels + c]. */
export interface DecodedImage {
  width: number;
  height: number;
  /** 1 = gray, 2 = gray + alpha, 3 = RGB, 4 = RGBA. */
  channels: 1 | 2 | 3 | 4;
  /** HWC, length width * height * channels. */
  data: Uint8Array;
}

/** A file that cannot be decoded: bad signature, corrupt or truncated data, or an unsupported feature. */
export class ImageDecodeError extends ResnetTsError {}

/**
 * Largest image any decoder will allocate, in pixels (2^28: 16384 x 16384). Decoders also check that the file is
 * big enough to hold that many pixels before they allocate (see each decoder's plausibility check).
 */
export const MAX_PIXELS = 2 ** 28;

/** Throws unless width x height is a non-empty image of at most MAX_PIXELS pixels. */
export function checkDimensions(format: string, part: string, width: number, height: number): void {
  if (!(width >= 1 && height >= 1)) {
    throw new ImageDecodeError(format, `${part}: image size ${width}x${height} is empty`);
  }
  if (width * height > MAX_PIXELS) {
    throw new ImageDecodeError(format, `${part}: image size ${width}x${height} exceeds the limit of ${MAX_PIXELS} pixels`);
  }
}

const isPnmSpace = (c: number) => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || c === 0x23; /* # */

/** Which decoder a file needs, from its first bytes; null when no supported signature matches. */
export function sniffFormat(bytes: Uint8Array): 'png' | 'jpeg' | 'pnm' | null {
  if (bytes.length >= 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47) return 'png';
  if (bytes.length >= 2 && bytes[0] === 0xff && bytes[1] === 0xd8) return 'jpeg';
  // P1..P6: the PNM decoder reads P5/P6 and names the others as unsupported.
  if (bytes.length >= 3 && bytes[0] === 0x50 && bytes[1]! >= 0x31 && bytes[1]! <= 0x36 && isPnmSpace(bytes[2]!)) return 'pnm';
  return null;
}

/** Decodes a PNG, JPEG or binary PGM/PPM (P5/P6), chosen by magic bytes. */
export function decodeImage(bytes: Uint8Array): DecodedImage {
  const format = sniffFormat(bytes);
  if (format === 'png') return decodePng(bytes);
  if (format === 'jpeg') return decodeJpeg(bytes);
  if (format === 'pnm') return decodePnm(bytes);
  const head = Array.from(bytes.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join(' ');
  throw new ImageDecodeError(
    'image',
    `unknown format at byte 0 (first bytes: ${head || 'none'}); expected PNG (89 50 4e 47), JPEG (ff d8) or binary PNM (P5/P6)`,
  );
}

/**
 * Converts to 3-channel RGB the way PIL's `convert('RGB')` does: gray is replicated, alpha is dropped (not
 * composited onto any background). An RGB image is returned as it is (same object).
 */
export function toRgb(img: DecodedImage): DecodedImage {
  const { width, height, channels, data } = img;
  if (channels === 3) return img;
  const n = width * height;
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    if (channels === 4) {
      out[i * 3] = data[i * 4]!;
      out[i * 3 + 1] = data[i * 4 + 1]!;
      out[i * 3 + 2] = data[i * 4 + 2]!;
    } else {
      const v = data[i * channels]!;
      out[i * 3] = v;
      out[i * 3 + 1] = v;
      out[i * 3 + 2] = v;
    }
  }
  return { width, height, channels: 3, data: out };
}
