/**
 * Malformed and unsupported files: each must throw ImageDecodeError (a ResnetTsError) whose message names the format
 * ("[png]", "[jpeg]", "[pnm]", "[image]") and the part at fault (chunk, marker, byte offset).
 */

import { deflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { ResnetTsError } from '../../src/errors.js';
import { decodeImage, ImageDecodeError } from '../../src/io/image.js';
import { readFixture } from './image_fixtures.js';

// ----- PNG construction helpers (independent of the decoder) -----

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array | number[], badCrc = false): Uint8Array {
  const d = Uint8Array.from(data);
  const out = new Uint8Array(12 + d.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, d.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(d, 8);
  view.setUint32(8 + d.length, (crc32(out.subarray(4, 8 + d.length)) ^ (badCrc ? 1 : 0)) >>> 0);
  return out;
}

function ihdr(w: number, h: number, depth = 8, colorType = 2, interlace = 0): Uint8Array {
  const d = new Uint8Array(13);
  const v = new DataView(d.buffer);
  v.setUint32(0, w);
  v.setUint32(4, h);
  d.set([depth, colorType, 0, 0, interlace], 8);
  return chunk('IHDR', d);
}

const SIG = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const cat = (...parts: (Uint8Array | number[])[]) => {
  const arrays = parts.map((p) => Uint8Array.from(p));
  const out = new Uint8Array(arrays.reduce((n, a) => n + a.length, 0));
  let o = 0;
  for (const a of arrays) {
    out.set(a, o);
    o += a.length;
  }
  return out;
};
const idat = (raw: number[] | Uint8Array) => chunk('IDAT', deflateSync(Uint8Array.from(raw)));
const IEND = chunk('IEND', []);
/** A valid 2x2 RGB PNG: each row is filter byte 0 + 6 samples. */
const rows2x2 = [0, 1, 2, 3, 4, 5, 6, 0, 7, 8, 9, 10, 11, 12];
const goodPng = cat(SIG, ihdr(2, 2), idat(rows2x2), IEND);

// ----- JPEG helpers -----

/** Offsets of each marker segment in a JPEG, up to SOS: [marker, offsetOfFF, segmentLength]. */
function segments(b: Uint8Array): [number, number, number][] {
  const out: [number, number, number][] = [];
  let p = 2;
  while (p + 4 <= b.length && b[p] === 0xff) {
    const m = b[p + 1]!;
    const len = (b[p + 2]! << 8) | b[p + 3]!;
    out.push([m, p, len]);
    if (m === 0xda) break;
    p += 2 + len;
  }
  return out;
}
const seg = (b: Uint8Array, m: number) => {
  const s = segments(b).find((x) => x[0] === m);
  if (s === undefined) throw new Error(`test setup: marker ${m.toString(16)} not found`);
  return s;
};
const jpg = readFixture('jpg_base_420_33x17.jpg');
const progJpg = readFixture('jpg_prog_420_33x17.jpg');
function patched(b: Uint8Array, edits: [number, number][]): Uint8Array {
  const c = b.slice();
  for (const [i, v] of edits) c[i] = v;
  return c;
}
const sof = seg(jpg, 0xc0)[1]; // FF C0 Lh Ll P Yh Yl Xh Xl Nf ...
const sos = seg(jpg, 0xda)[1]; // FF DA Lh Ll Ns (Cs Tdta)* Ss Se AhAl
const dht = seg(jpg, 0xc4)[1]; // FF C4 Lh Ll TcTh L1..L16 ...
const dqt = seg(jpg, 0xdb)[1];
const eoiStripped = jpg.subarray(0, jpg.length - 2);

// ----- PNM helpers -----
const ascii = (s: string) => Uint8Array.from(s, (ch) => ch.charCodeAt(0));

const cases: [string, Uint8Array, RegExp][] = [
  // PNG
  ['png: bad signature', cat([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x00], goodPng.subarray(8)), /^\[png\] signature:/],
  ['png: missing IHDR (IDAT first)', cat(SIG, idat(rows2x2), IEND), /^\[png\] missing IHDR: the first chunk is IDAT at byte 8/],
  ['png: only a signature', SIG, /^\[png\] missing IHDR/],
  ['png: truncated chunk header', goodPng.subarray(0, 8 + 25 + 5), /^\[png\] truncated chunk header at byte 33/],
  ['png: truncated IDAT chunk', goodPng.subarray(0, goodPng.length - 20), /^\[png\] truncated chunk IDAT at byte 33/],
  ['png: IHDR CRC mismatch', cat(SIG, chunk('IHDR', ihdr(2, 2).subarray(8, 21), true), idat(rows2x2), IEND), /^\[png\] chunk IHDR at byte 8: CRC mismatch/],
  ['png: bad chunk type bytes', cat(SIG, ihdr(2, 2), chunk('ID#T', [1, 2]), IEND), /^\[png\] bad chunk type at byte 37/],
  ['png: bad filter type', cat(SIG, ihdr(2, 2), idat([0, 1, 2, 3, 4, 5, 6, 7, 7, 8, 9, 10, 11, 12]), IEND), /^\[png\] IDAT: bad filter type 7 at row 1/],
  ['png: bad filter type (interlaced)', cat(SIG, ihdr(1, 1, 8, 0, 1), idat([9, 1]), IEND), /^\[png\] IDAT: bad filter type 9 at row 0 of Adam7 pass 1/],
  ['png: too little image data', cat(SIG, ihdr(2, 2), idat(rows2x2.slice(0, 10)), IEND), /^\[png\] IDAT: decompressed size mismatch: 10 bytes, IHDR implies 14/],
  ['png: too much image data', cat(SIG, ihdr(2, 2), idat([...rows2x2, 0, 0, 0]), IEND), /^\[png\] IDAT: decompressed size mismatch: the data inflates to more than the 14 bytes/],
  ['png: corrupt zlib', cat(SIG, ihdr(2, 2), chunk('IDAT', [0x78, 0x9c, 0xff, 0xff, 0xff, 0x00]), IEND), /^\[png\] IDAT: zlib data is truncated or corrupt/],
  ['png: truncated zlib stream', cat(SIG, ihdr(2, 2), chunk('IDAT', deflateSync(Uint8Array.from(rows2x2)).subarray(0, 8)), IEND), /^\[png\] IDAT: zlib data is truncated or corrupt/],
  ['png: no IDAT', cat(SIG, ihdr(2, 2), IEND), /^\[png\] IDAT: the file has no IDAT chunk/],
  ['png: palette without PLTE', cat(SIG, ihdr(2, 2, 8, 3), idat([0, 0, 0, 0, 0, 0]), IEND), /^\[png\] PLTE: colour type 3/],
  ['png: PLTE length not a multiple of 3', cat(SIG, ihdr(1, 1, 8, 3), chunk('PLTE', [1, 2, 3, 4]), idat([0, 0]), IEND), /^\[png\] PLTE at byte 33: length 4/],
  ['png: bit depth not allowed for RGB', cat(SIG, ihdr(2, 2, 4, 2), idat(rows2x2), IEND), /^\[png\] IHDR: bit depth 4 is not allowed for colour type 2/],
  ['png: unknown colour type', cat(SIG, ihdr(2, 2, 8, 5), idat(rows2x2), IEND), /^\[png\] IHDR: unknown colour type 5/],
  ['png: unknown interlace method', cat(SIG, ihdr(2, 2, 8, 2, 2), idat(rows2x2), IEND), /^\[png\] IHDR: unknown interlace method 2/],
  ['png: zero width', cat(SIG, ihdr(0, 2), idat(rows2x2), IEND), /^\[png\] IHDR: image size 0x2 is invalid/],
  ['png: over the pixel limit', cat(SIG, ihdr(100000, 100000), idat(rows2x2), IEND), /^\[png\] IHDR: image size 100000x100000 exceeds the limit/],
  ['png: header implausible for the data', cat(SIG, ihdr(10000, 10000), idat(rows2x2), IEND), /^\[png\] IDAT: \d+ compressed bytes cannot hold the 300010000 bytes/],

  // JPEG
  ['jpeg: a lone FF D8', Uint8Array.from([0xff, 0xd8]), /^\[jpeg\] SOF: no frame header before the end of the file/],
  ['jpeg: truncated DQT segment', jpg.subarray(0, dqt + 30), /^\[jpeg\] truncated: marker 0xDB at byte \d+ declares 67 bytes/],
  ['jpeg: entropy data cut by the end of the file', jpg.subarray(0, sos + 14 + 40), /^\[jpeg\] truncated: image file is truncated \(entropy-coded data runs past the end of the file/],
  ['jpeg: lossless SOF3', patched(jpg, [[sof + 1, 0xc3]]), /^\[jpeg\] SOF3 at byte \d+: lossless JPEG is unsupported/],
  ['jpeg: arithmetic coding (cjpeg -arithmetic)', readFixture('jpg_arith_16x8.jpg'), /^\[jpeg\] SOF9 at byte \d+: arithmetic coding is unsupported/],
  ['jpeg: hierarchical SOF5', patched(jpg, [[sof + 1, 0xc5]]), /^\[jpeg\] SOF5 at byte \d+: hierarchical \(differential\) JPEG is unsupported/],
  ['jpeg: 12-bit precision (SOF1)', patched(jpg, [[sof + 1, 0xc1], [sof + 4, 12]]), /^\[jpeg\] SOF1 at byte \d+: 12-bit precision is unsupported/],
  ['jpeg: height 0 (DNL)', patched(jpg, [[sof + 5, 0], [sof + 6, 0]]), /^\[jpeg\] SOF0 at byte \d+: height 0 \(defined later by DNL\) is unsupported/],
  ['jpeg: 5 components', patched(jpg, [[sof + 9, 5]]), /^\[jpeg\] SOF0 at byte \d+: 5 components is unsupported \(only 1, 3 or 4\)/],
  ['jpeg: 2 components', patched(jpg, [[sof + 9, 2]]), /^\[jpeg\] SOF0 at byte \d+: 2 components is unsupported/],
  ['jpeg: sampling factor 0', patched(jpg, [[sof + 11, 0x00]]), /^\[jpeg\] SOF0 at byte \d+: component 1 has sampling factors 0x0/],
  ['jpeg: size implausible for the file', patched(jpg, [[sof + 5, 0x30], [sof + 7, 0x30]]), /^\[jpeg\] SOF0 at byte \d+: 12321x12305 needs \d+ blocks, more than the \d+ bytes after it \(up to EOI\) can encode/],
  ['jpeg: SOS names an undefined Huffman table', patched(jpg, [[sos + 6, 0x33]]), /^\[jpeg\] SOS at byte \d+: DC Huffman table 3 \(component 1\) was not defined/],
  ['jpeg: SOS names a component not in the frame', patched(jpg, [[sos + 5, 9]]), /^\[jpeg\] SOS at byte \d+: component id 9 is not in the frame/],
  ['jpeg: over-subscribed Huffman table', patched(jpg, [[dht + 5, 2], [dht + 6, 0], [dht + 7, 4]]), /^\[jpeg\] DHT at byte \d+: Huffman table has too many codes of length 1/],
  ['jpeg: undefined quantization table', patched(jpg, [[sof + 12, 3]]), /^\[jpeg\] SOS at byte \d+: quantization table 3 \(component 1\) was not defined/],
  ['jpeg: scan before frame', cat([0xff, 0xd8], jpg.subarray(sos)), /^\[jpeg\] SOS at byte 2: scan before any SOF frame header/],
  ['jpeg: frame but no scan', cat(jpg.subarray(0, sos), [0xff, 0xd9]), /^\[jpeg\] SOS: the file has no scan/],
  ['jpeg: bad progressive parameters', patched(progJpg, [[seg(progJpg, 0xda)[1] + 4 + 1 + 2 * progJpg[seg(progJpg, 0xda)[1] + 4]! + 1, 5]]), /^\[jpeg\] SOS at byte \d+: invalid progressive parameters Ss=0 Se=5/],
  ['jpeg: segment length below 2', patched(jpg, [[dqt + 2, 0], [dqt + 3, 1]]), /^\[jpeg\] marker 0xDB at byte \d+: segment length 1 is less than 2/],
  ['jpeg: second SOI', cat([0xff, 0xd8, 0xff, 0xd8], jpg.subarray(2)), /^\[jpeg\] SOI: a second SOI marker at byte 2/],

  // PNM
  ['pnm: plain P3', ascii('P3\n1 1\n255\n1 2 3\n'), /^\[pnm\] signature: P3 \(plain\/bitmap PNM\) is unsupported/],
  ['pnm: not a number', ascii('P6\nx 1\n255\n'), /^\[pnm\] header: expected a decimal width at byte 3/],
  ['pnm: maxval 0', ascii('P5 1 1 0\n\x00'), /^\[pnm\] header: maxval 0 is outside 1..65535/],
  ['pnm: maxval 70000', ascii('P5 1 1 70000\n\x00\x00'), /^\[pnm\] header: maxval 70000 is outside 1..65535/],
  ['pnm: truncated raster', ascii('P6 2 2 255\n\x01\x02\x03'), /^\[pnm\] raster: truncated at byte 14: 2x2x3 samples need 12 bytes from byte 11, 3 remain/],
  ['pnm: truncated 16-bit raster', ascii('P5 2 1 1000\n\x01\x02\x03'), /^\[pnm\] raster: truncated .* need 4 bytes/],
  ['pnm: header ends early', ascii('P5 2 '), /^\[pnm\] header: file ends at byte 5 before the height/],
  ['pnm: over the pixel limit', ascii('P5 70000 70000 255\n'), /^\[pnm\] header: image size 70000x70000 exceeds the limit/],
  ['pnm: garbage after a number', ascii('P5 2x 1 255\n'), /^\[pnm\] header: width at byte 3 is followed by byte 0x78/],

  // dispatch
  ['image: unknown format', ascii('GIF89a....'), /^\[image\] unknown format at byte 0 \(first bytes: 47 49 46 38 39 61 2e 2e\)/],
  ['image: empty file', new Uint8Array(0), /^\[image\] unknown format at byte 0 \(first bytes: none\)/],
];

describe('malformed and unsupported files give ImageDecodeError naming the part', () => {
  it('the valid bases decode (so each case below fails for its own defect)', () => {
    expect(decodeImage(goodPng).data.length).toBe(12);
    expect(decodeImage(jpg).width).toBe(33);
    expect(decodeImage(progJpg).width).toBe(33);
    // A JPEG that lacks only its EOI is "truncated", as in Pillow, and decodes whole with allowTruncated.
    expect(() => decodeImage(eoiStripped)).toThrow(/image file is truncated/);
    expect(decodeImage(eoiStripped, { allowTruncated: true }).data).toEqual(decodeImage(jpg).data);
    // A progressive JPEG cut mid-way and closed with EOI decodes too (libjpeg's block smoothing of the missing
    // coefficients is not reproduced, so no pixel reference here).
    const sosP = seg(progJpg, 0xda)[1];
    const cutProg = decodeImage(cat(progJpg.subarray(0, sosP + 20), [0xff, 0xd9])); // 6 bytes into the first scan
    expect([cutProg.width, cutProg.height, cutProg.channels]).toEqual([33, 17, 3]);
  });
  for (const [name, bytes, pattern] of cases) {
    it(name, () => {
      let err: unknown = null;
      try {
        decodeImage(bytes);
      } catch (e) {
        err = e;
      }
      expect(err, 'no error was thrown').toBeInstanceOf(ImageDecodeError);
      expect(err).toBeInstanceOf(ResnetTsError);
      expect((err as Error).message).toMatch(pattern);
    });
  }
});
