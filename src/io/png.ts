/**
 * PNG decoder (ISO/IEC 15948): every colour type (0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA), bit depths
 * 1/2/4/8/16, palette + tRNS, tRNS on gray/RGB, Adam7 interlacing, the five filter types, any number of IDAT chunks.
 * The zlib stream is inflated by `zlibInflate` (inflate.ts: our own inflate, or node:zlib's where the Node entry
 * installed it; both give the same bytes and check the Adler-32).
 *
 * Output (8 bits per sample, HWC), chosen to match Pillow:
 * - gray → 1 channel; sub-8-bit gray is scaled to 0..255 (1 bit: ×255, 2 bits: ×85, 4 bits: ×17), as Pillow's
 *   "1"/"L;2"/"L;4" unpackers do.
 * - 16-bit samples keep their high byte (v >> 8), as Pillow's RGB;16B / RGBA;16B / LA;16B unpackers do. Pillow opens
 *   16-bit gray as mode "I" whose convert('RGB') clips every value above 255 to 255; we deliberately do not copy
 *   that and keep the high byte here too.
 * - palette → RGB, or RGBA when a tRNS chunk is present (entries past tRNS are opaque). An index past the PLTE
 *   entries shows as gray (i, i, i), which is what Pillow 9.4 shows.
 * - tRNS on gray / RGB adds an alpha channel (0 where the raw sample, compared at full bit depth, equals the tRNS
 *   value), as libpng's png_set_tRNS_to_alpha does. `toRgb` then drops it, as convert('RGB') does.
 *
 * CRCs are verified: a mismatch in a critical chunk (IHDR, PLTE, IDAT, IEND) is an error, a mismatch in an
 * ancillary chunk (tRNS, gAMA, text...) makes us ignore that chunk, which is libpng's default policy.
 */

import { checkDimensions, ImageDecodeError, type DecodedImage } from './image.js';
import { zlibInflate, InflateError } from './inflate.js';

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Adam7 passes: [x0, y0, dx, dy]. */
const ADAM7: readonly (readonly [number, number, number, number])[] = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
];

/** Samples per pixel for each colour type. */
const CHANNELS_OF: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
/** Allowed bit depths for each colour type. */
const DEPTHS_OF: Record<number, readonly number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };

/**
 * zlib cannot expand data by more than about 1032:1 (a 258-byte match per ~2 bits); a header that implies more raw
 * bytes than this times the IDAT bytes is rejected before anything is allocated.
 */
const MAX_INFLATE_RATIO = 1100;

let crcTable: Uint32Array | null = null;
/** CRC-32 (ISO 3309, as PNG chunks use) of bytes[start..end). */
export function crc32(bytes: Uint8Array, start: number, end: number): number {
  if (crcTable === null) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = crcTable[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function fail(msg: string): never {
  throw new ImageDecodeError('png', msg);
}

function u32(b: Uint8Array, p: number): number {
  return ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;
}

interface Header {
  width: number;
  height: number;
  bitDepth: number;
  colorType: number;
  interlace: number;
}

/** Decodes a PNG file into 8-bit HWC pixels (see the module comment for the channel layout). */
export function decodePng(bytes: Uint8Array): DecodedImage {
  if (bytes.length < 8 || SIGNATURE.some((v, i) => bytes[i] !== v)) {
    fail('signature: the file does not start with the 8-byte PNG signature 89 50 4e 47 0d 0a 1a 0a');
  }
  let header: Header | null = null;
  let palette: Uint8Array | null = null; // 3 bytes per entry
  let trns: Uint8Array | null = null;
  const idat: Uint8Array[] = [];
  let idatBytes = 0;
  let sawIend = false;

  // Chunk walk: each chunk takes at least 12 bytes, so the loop is bounded by the file length.
  let p = 8;
  while (p < bytes.length && !sawIend) {
    if (p + 8 > bytes.length) fail(`truncated chunk header at byte ${p}: ${bytes.length - p} bytes left, need 8`);
    const length = u32(bytes, p);
    const typeBytes = bytes.subarray(p + 4, p + 8);
    const isLetter = (c: number) => (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
    if (!Array.from(typeBytes).every(isLetter)) {
      fail(`bad chunk type at byte ${p + 4} (bytes ${Array.from(typeBytes, (c) => c.toString(16).padStart(2, '0')).join(' ')})`);
    }
    const type = String.fromCharCode(...typeBytes);
    if (length > 0x7fffffff) fail(`chunk ${type} at byte ${p}: length ${length} exceeds 2^31-1`);
    if (p + 12 + length > bytes.length) {
      fail(`truncated chunk ${type} at byte ${p}: declares ${length} data bytes + 4 CRC bytes, only ${bytes.length - p - 8} remain`);
    }
    const data = bytes.subarray(p + 8, p + 8 + length);
    const critical = (typeBytes[0]! & 0x20) === 0;
    const crcOk = crc32(bytes, p + 4, p + 8 + length) === u32(bytes, p + 8 + length);
    if (!crcOk && critical) fail(`chunk ${type} at byte ${p}: CRC mismatch`);
    if (header === null && type !== 'IHDR') fail(`missing IHDR: the first chunk is ${type} at byte ${p}`);

    if (type === 'IHDR') {
      if (header !== null) fail(`IHDR at byte ${p}: a second IHDR chunk`);
      header = parseIhdr(data, p);
    } else if (type === 'PLTE') {
      if (length === 0 || length % 3 !== 0 || length > 768) {
        fail(`PLTE at byte ${p}: length ${length} is not 3 x (1..256) entries`);
      }
      palette = data;
    } else if (type === 'tRNS' && crcOk) {
      trns = data;
    } else if (type === 'IDAT') {
      idat.push(data);
      idatBytes += length;
    } else if (type === 'IEND') {
      sawIend = true;
    }
    p += 12 + length;
  }

  if (header === null) fail('missing IHDR: the file has no chunks after the signature');
  const { width, height, bitDepth, colorType, interlace } = header;
  if (colorType === 3 && palette === null) fail('PLTE: colour type 3 (palette) needs a PLTE chunk before IDAT');
  if (idat.length === 0) fail('IDAT: the file has no IDAT chunk');

  // Validate tRNS against the colour type (a wrong-sized tRNS is ignored, as libpng does with a warning).
  if (trns !== null) {
    const okLen = colorType === 0 ? trns.length === 2 : colorType === 2 ? trns.length === 6 : colorType === 3 ? trns.length >= 1 : false;
    if (!okLen) trns = null;
  }

  const inCh = CHANNELS_OF[colorType]!;
  const bitsPerPixel = inCh * bitDepth;
  const bpp = Math.max(1, bitsPerPixel >> 3); // filter distance in bytes
  const passes = interlace === 1 ? ADAM7 : ([[0, 0, 1, 1]] as const);

  // Raw (filtered) size implied by the header: per pass, rows of (1 filter byte + packed samples).
  let rawSize = 0;
  const passDims: [number, number][] = [];
  for (const [x0, y0, dx, dy] of passes) {
    const pw = width > x0 ? Math.ceil((width - x0) / dx) : 0;
    const ph = height > y0 ? Math.ceil((height - y0) / dy) : 0;
    passDims.push([pw, ph]);
    if (pw > 0 && ph > 0) rawSize += ph * (1 + Math.ceil((pw * bitsPerPixel) / 8));
  }
  if (rawSize > idatBytes * MAX_INFLATE_RATIO + 4096) {
    fail(`IDAT: ${idatBytes} compressed bytes cannot hold the ${rawSize} bytes that IHDR (${width}x${height}) implies`);
  }

  const compressed = idat.length === 1 ? idat[0]! : concat(idat, idatBytes);
  let raw: Uint8Array;
  try {
    raw = zlibInflate(compressed, rawSize);
  } catch (e) {
    if (!(e instanceof InflateError)) throw e;
    if (e.kind === 'size') {
      fail(`IDAT: decompressed size mismatch: the data inflates to more than the ${rawSize} bytes IHDR implies`);
    }
    fail(`IDAT: zlib data is truncated or corrupt (${e.message.replace('[inflate] ', '')})`);
  }
  if (raw.length !== rawSize) {
    fail(`IDAT: decompressed size mismatch: ${raw.length} bytes, IHDR implies ${rawSize}`);
  }

  const outCh = (colorType === 3 ? (trns !== null ? 4 : 3) : inCh + (trns !== null ? 1 : 0)) as 1 | 2 | 3 | 4;
  const out = new Uint8Array(width * height * outCh);
  const convert = makeConverter(colorType, bitDepth, palette, trns, outCh);

  let rawPos = 0;
  for (let pi = 0; pi < passes.length; pi++) {
    const [x0, y0, dx, dy] = passes[pi]!;
    const [pw, ph] = passDims[pi]!;
    if (pw === 0 || ph === 0) continue;
    const rowBytes = Math.ceil((pw * bitsPerPixel) / 8);
    const samples = new Uint16Array(pw * inCh);
    let prev: Uint8Array | null = null;
    for (let r = 0; r < ph; r++) {
      const ftype = raw[rawPos]!;
      const row = raw.subarray(rawPos + 1, rawPos + 1 + rowBytes);
      if (ftype > 4) {
        const where = interlace === 1 ? `row ${r} of Adam7 pass ${pi + 1}` : `row ${r}`;
        fail(`IDAT: bad filter type ${ftype} at ${where} (decompressed byte ${rawPos})`);
      }
      unfilter(ftype, row, prev, bpp);
      unpackSamples(samples, row, pw * inCh, bitDepth);
      const y = y0 + r * dy;
      convert(out, (y * width + x0) * outCh, dx * outCh, samples, pw);
      prev = row;
      rawPos += 1 + rowBytes;
    }
  }
  return { width, height, channels: outCh, data: out };
}

function parseIhdr(d: Uint8Array, at: number): Header {
  if (d.length !== 13) fail(`IHDR at byte ${at}: length ${d.length}, expected 13`);
  const width = u32(d, 0);
  const height = u32(d, 4);
  const bitDepth = d[8]!;
  const colorType = d[9]!;
  if (width === 0 || height === 0 || width > 0x7fffffff || height > 0x7fffffff) {
    fail(`IHDR: image size ${width}x${height} is invalid`);
  }
  checkDimensions('png', 'IHDR', width, height);
  const depths = DEPTHS_OF[colorType];
  if (depths === undefined) fail(`IHDR: unknown colour type ${colorType}`);
  if (!depths.includes(bitDepth)) fail(`IHDR: bit depth ${bitDepth} is not allowed for colour type ${colorType}`);
  if (d[10] !== 0) fail(`IHDR: unknown compression method ${d[10]}`);
  if (d[11] !== 0) fail(`IHDR: unknown filter method ${d[11]}`);
  if (d[12] !== 0 && d[12] !== 1) fail(`IHDR: unknown interlace method ${d[12]}`);
  return { width, height, bitDepth, colorType, interlace: d[12]! };
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let o = 0;
  for (const part of parts) {
    out.set(part, o);
    o += part.length;
  }
  return out;
}

/** Reverses one row's filter in place. prev is the previous unfiltered row of the same pass (null for the first). */
function unfilter(ftype: number, row: Uint8Array, prev: Uint8Array | null, bpp: number): void {
  const n = row.length;
  if (ftype === 0) return;
  if (ftype === 1) {
    for (let i = bpp; i < n; i++) row[i] = (row[i]! + row[i - bpp]!) & 0xff;
  } else if (ftype === 2) {
    if (prev === null) return;
    for (let i = 0; i < n; i++) row[i] = (row[i]! + prev[i]!) & 0xff;
  } else if (ftype === 3) {
    for (let i = 0; i < n; i++) {
      const a = i >= bpp ? row[i - bpp]! : 0;
      const b = prev === null ? 0 : prev[i]!;
      row[i] = (row[i]! + ((a + b) >> 1)) & 0xff;
    }
  } else {
    for (let i = 0; i < n; i++) {
      const a = i >= bpp ? row[i - bpp]! : 0;
      const b = prev === null ? 0 : prev[i]!;
      const c = prev !== null && i >= bpp ? prev[i - bpp]! : 0;
      const pa = Math.abs(b - c); // |p - a| with p = a + b - c
      const pb = Math.abs(a - c);
      const pc = Math.abs(a + b - 2 * c);
      const pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      row[i] = (row[i]! + pred) & 0xff;
    }
  }
}

/** Unpacks n big-endian samples of bitDepth bits from a packed row. */
function unpackSamples(out: Uint16Array, row: Uint8Array, n: number, bitDepth: number): void {
  if (bitDepth === 8) {
    for (let i = 0; i < n; i++) out[i] = row[i]!;
  } else if (bitDepth === 16) {
    for (let i = 0; i < n; i++) out[i] = (row[2 * i]! << 8) | row[2 * i + 1]!;
  } else {
    const perByte = 8 / bitDepth;
    const mask = (1 << bitDepth) - 1;
    for (let i = 0; i < n; i++) {
      const byte = row[Math.floor(i / perByte)]!;
      const shift = 8 - bitDepth * ((i % perByte) + 1);
      out[i] = (byte >> shift) & mask;
    }
  }
}

type Converter = (out: Uint8Array, start: number, step: number, samples: Uint16Array, count: number) => void;

/** Returns a function writing `count` pixels of raw samples as 8-bit output pixels at out[start + k*step]. */
function makeConverter(
  colorType: number,
  bitDepth: number,
  palette: Uint8Array | null,
  trns: Uint8Array | null,
  outCh: number,
): Converter {
  // Raw sample → 8 bits: sub-byte gray is stretched, 16-bit keeps the high byte.
  const to8 = (v: number) => (bitDepth === 16 ? v >> 8 : bitDepth === 8 ? v : (v * 255) / ((1 << bitDepth) - 1));
  if (colorType === 3) {
    const pal = palette!;
    const nPal = pal.length / 3;
    return (out, start, step, s, count) => {
      for (let k = 0, o = start; k < count; k++, o += step) {
        const idx = s[k]!;
        if (idx < nPal) {
          out[o] = pal[idx * 3]!;
          out[o + 1] = pal[idx * 3 + 1]!;
          out[o + 2] = pal[idx * 3 + 2]!;
        } else {
          out[o] = idx;
          out[o + 1] = idx;
          out[o + 2] = idx;
        }
        if (outCh === 4) out[o + 3] = idx < trns!.length ? trns![idx]! : 255;
      }
    };
  }
  const inCh = CHANNELS_OF[colorType]!;
  // tRNS key colour, compared against raw samples at full bit depth.
  const key = trns === null ? null : colorType === 0 ? [(trns[0]! << 8) | trns[1]!] : [0, 1, 2].map((i) => (trns[2 * i]! << 8) | trns[2 * i + 1]!);
  return (out, start, step, s, count) => {
    for (let k = 0, o = start; k < count; k++, o += step) {
      let match = key !== null;
      for (let c = 0; c < inCh; c++) {
        const v = s[k * inCh + c]!;
        out[o + c] = to8(v);
        if (key !== null && v !== key[c]) match = false;
      }
      if (key !== null) out[o + inCh] = match ? 0 : 255;
    }
  };
}
