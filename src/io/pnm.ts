/**
 * Binary PGM (P5) and PPM (P6) decoder, maxval 1..65535 (two big-endian bytes per sample above 255).
 *
 * Samples are scaled to 8 bits as Pillow's PPM decoder does: min(255, round(v / maxval * 255)) with round half to
 * even (Python's round); maxval 255 is taken as it is. Pillow opens a P5 with maxval > 255 as 32-bit mode "I"
 * instead; we scale it to 8 bits like every other case. Header comments (# ... end of line) are allowed between
 * tokens. Plain (ASCII) P1-P3 and bitmap P4 are refused as unsupported.
 */

import { checkDimensions, ImageDecodeError, type DecodedImage } from './image.js';

function fail(msg: string): never {
  throw new ImageDecodeError('pnm', msg);
}

const isSpace = (c: number) => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || c === 0x0b || c === 0x0c;

/** Python's round(): nearest integer, ties to even. */
function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** Decodes a binary PGM/PPM into 8-bit gray (1 channel) or RGB (3 channels). */
export function decodePnm(bytes: Uint8Array): DecodedImage {
  if (bytes.length < 2 || bytes[0] !== 0x50 /* P */) fail('signature: the file does not start with P5 or P6');
  const kind = bytes[1]!;
  if (kind >= 0x31 && kind <= 0x34) {
    fail(`signature: P${String.fromCharCode(kind)} (plain/bitmap PNM) is unsupported; only binary P5 and P6 are`);
  }
  if (kind !== 0x35 && kind !== 0x36) fail('signature: the file does not start with P5 or P6');
  const channels = kind === 0x36 ? 3 : 1;

  // Header: three decimal tokens (width, height, maxval) separated by whitespace and comments, then exactly one
  // whitespace byte before the raster.
  let p = 2;
  const names = ['width', 'height', 'maxval'];
  const values: number[] = [];
  for (const name of names) {
    for (;;) {
      while (p < bytes.length && isSpace(bytes[p]!)) p++;
      if (p < bytes.length && bytes[p] === 0x23 /* # */) {
        while (p < bytes.length && bytes[p] !== 0x0a && bytes[p] !== 0x0d) p++;
        continue;
      }
      break;
    }
    if (p >= bytes.length) fail(`header: file ends at byte ${p} before the ${name}`);
    const start = p;
    let v = 0;
    while (p < bytes.length && bytes[p]! >= 0x30 && bytes[p]! <= 0x39) {
      v = v * 10 + (bytes[p]! - 0x30);
      if (v > 0x7fffffff) fail(`header: ${name} at byte ${start} is too large`);
      p++;
    }
    if (p === start) fail(`header: expected a decimal ${name} at byte ${start}, found byte 0x${bytes[p]!.toString(16)}`);
    if (p < bytes.length && !isSpace(bytes[p]!) && bytes[p] !== 0x23) {
      fail(`header: ${name} at byte ${start} is followed by byte 0x${bytes[p]!.toString(16)}, not whitespace`);
    }
    values.push(v);
  }
  const [width, height, maxval] = values as [number, number, number];
  if (maxval < 1 || maxval > 65535) fail(`header: maxval ${maxval} is outside 1..65535`);
  checkDimensions('pnm', 'header', width, height);
  if (p >= bytes.length || !isSpace(bytes[p]!)) fail(`header: no whitespace byte after maxval at byte ${p}`);
  p++;

  const bytesPerSample = maxval > 255 ? 2 : 1;
  const n = width * height * channels;
  const need = n * bytesPerSample;
  if (bytes.length - p < need) {
    fail(`raster: truncated at byte ${bytes.length}: ${width}x${height}x${channels} samples need ${need} bytes from byte ${p}, ${bytes.length - p} remain`);
  }
  const out = new Uint8Array(n);
  if (maxval === 255) {
    out.set(bytes.subarray(p, p + n));
  } else {
    // Scale table over every possible sample value (values above maxval clip to 255, as Pillow's min() does).
    const lut = new Uint8Array(bytesPerSample === 2 ? 65536 : 256);
    for (let v = 0; v < lut.length; v++) lut[v] = Math.min(255, roundHalfEven((v / maxval) * 255));
    if (bytesPerSample === 1) {
      for (let i = 0; i < n; i++) out[i] = lut[bytes[p + i]!]!;
    } else {
      for (let i = 0; i < n; i++) out[i] = lut[(bytes[p + 2 * i]! << 8) | bytes[p + 2 * i + 1]!]!;
    }
  }
  return { width, height, channels: channels as 1 | 3, data: out };
}
