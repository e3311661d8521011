/**
 * Decoded images and the format dispatcher. The decoders themselves live in png.ts, jpeg.ts and pnm.ts; each one
 * aims to give the pixels Pillow gives (torchvision's default loader is `Image.open(f).convert('RGB')`).
 *
 * Every decoding failure is an `ImageDecodeError` whose message names the format and the part of the file at fault
 * (chunk name, marker, byte offset), e.g. `[png] IDAT: zlib data is corrupt (invalid distance too far back)`.
 */

import { describeArg, ResnetTsError } from '../errors.js';
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

/** Pillow's Image.MAX_IMAGE_PIXELS: 1024 · 1024 · 1024 / 4 / 3 pixels (a 256 MiB RGB image). */
export const DEFAULT_MAX_IMAGE_PIXELS = 89_478_485;
let maxImagePixels: number | null = DEFAULT_MAX_IMAGE_PIXELS;

/**
 * The decompression-bomb limit, Pillow's policy: an image over `n` pixels decodes with a warning
 * (DecompressionBombWarning), one over 2·n is refused (ImageDecodeError) before anything is allocated. Default
 * 89,478,485 (Pillow's Image.MAX_IMAGE_PIXELS); null turns the check off (MAX_PIXELS, 2^28, still holds).
 */
export function setMaxImagePixels(n: number | null): void {
  if (n !== null && !(typeof n === 'number' && Number.isInteger(n) && n >= 1)) {
    throw new ImageDecodeError('setMaxImagePixels', `the limit must be a positive integer number of pixels or null, got ${typeof n === 'number' ? n : typeof n}`);
  }
  maxImagePixels = n;
}

/** The current decompression-bomb limit (see setMaxImagePixels). */
export function getMaxImagePixels(): number | null {
  return maxImagePixels;
}

function warn(message: string): void {
  const p = (globalThis as { process?: { emitWarning?: (m: string, o: { type: string }) => void } }).process;
  if (typeof p?.emitWarning === 'function') p.emitWarning(message, { type: 'DecompressionBombWarning' });
  else console.warn(`DecompressionBombWarning: ${message}`);
}

/**
 * Throws unless width x height is a non-empty image of at most MAX_PIXELS pixels and at most twice the
 * decompression-bomb limit; warns above the limit (see setMaxImagePixels).
 */
export function checkDimensions(format: string, part: string, width: number, height: number): void {
  if (!(width >= 1 && height >= 1)) {
    throw new ImageDecodeError(format, `${part}: image size ${width}x${height} is empty`);
  }
  const pixels = width * height;
  if (pixels > MAX_PIXELS) {
    throw new ImageDecodeError(format, `${part}: image size ${width}x${height} exceeds the limit of ${MAX_PIXELS} pixels`);
  }
  if (maxImagePixels === null || pixels <= maxImagePixels) return;
  if (pixels > 2 * maxImagePixels) {
    throw new ImageDecodeError(format, `${part}: image size ${width}x${height} (${pixels} pixels) exceeds limit of ${2 * maxImagePixels} pixels, could be decompression bomb DOS attack; raise it with io.setMaxImagePixels(n) if the file is trusted`);
  }
  warn(`[${format}] ${part}: image size ${width}x${height} (${pixels} pixels) exceeds limit of ${maxImagePixels} pixels, could be decompression bomb DOS attack.`);
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

export interface DecodeOptions {
  /**
   * Decode a JPEG that ends early (no EOI, or entropy data cut off) with what it has, the rest left as it would be
   * with no more data, like Pillow's ImageFile.LOAD_TRUNCATED_IMAGES. Default false: "image file is truncated".
   */
  allowTruncated?: boolean;
}

/** Decodes a PNG, JPEG or binary PGM/PPM (P5/P6), chosen by magic bytes. */
export function decodeImage(bytes: Uint8Array, opts: DecodeOptions = {}): DecodedImage {
  if (!(bytes instanceof Uint8Array)) {
    const got = typeof bytes === 'string' ? `the string ${JSON.stringify(String(bytes).slice(0, 60))} (read the file first, e.g. fs.readFileSync(path))` : describeArg(bytes);
    throw new ImageDecodeError('decodeImage', `bytes must be a Uint8Array (the file's contents), got ${got}`);
  }
  const format = sniffFormat(bytes);
  if (format === 'png') return decodePng(bytes);
  if (format === 'jpeg') return decodeJpeg(bytes, opts);
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
