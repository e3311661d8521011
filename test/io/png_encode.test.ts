// The PNG encoder behind export-images: what it writes, our decoder (exact against Pillow) reads back unchanged.
import { describe, expect, it } from 'vitest';
import { ValueError } from '../../src/errors.js';
import { decodePng } from '../../src/io/png.js';
import { encodePng } from '../../src/io/png-encode.js';

describe('encodePng', () => {
  for (const channels of [1, 2, 3, 4] as const) {
    it(`round-trips a 13×7 image with ${channels} channel(s), every byte value`, () => {
      const data = Uint8Array.from({ length: 13 * 7 * channels }, (_, i) => (i * 37 + 11) % 256);
      const png = encodePng({ width: 13, height: 7, channels, data });
      expect(Array.from(png.subarray(0, 8))).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
      const back = decodePng(png);
      expect([back.width, back.height, back.channels]).toEqual([13, 7, channels]);
      expect(Buffer.from(back.data).equals(Buffer.from(data))).toBe(true);
    });
  }
  it('refuses an image whose byte count does not match its size', () => {
    expect(() => encodePng({ width: 4, height: 4, channels: 3, data: new Uint8Array(47) })).toThrow(ValueError);
    expect(() => encodePng({ width: 4, height: 4, channels: 3, data: new Uint8Array(47) })).toThrow(/\[encodePng\] .*4×4×3 with 47 bytes/);
  });
});
