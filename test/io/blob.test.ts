/** File/Blob loaders: the same result as the decoders and loaders on bytes (Blob is global in Node ≥ 18). */
import { describe, expect, it } from 'vitest';
import { decodeImageBlob, loadSafetensorsBlob, readBlob } from '../../src/io/blob.js';
import { decodeImage, ImageDecodeError } from '../../src/io/image.js';
import { saveSafetensors } from '../../src/io/safetensors.js';
import { tensor } from '../../src/tensor.js';
import { readFixture } from './image_fixtures.js';

describe('io from a Blob', () => {
  it('decodeImageBlob gives decodeImage\'s pixels, for PNG and JPEG', async () => {
    for (const name of ['png_rgb8_13x9.png', 'jpg_base_420_33x17.jpg']) {
      const bytes = readFixture(name);
      const img = await decodeImageBlob(new Blob([bytes]));
      expect(img).toEqual(decodeImage(bytes));
    }
  });

  it('loadSafetensorsBlob loads what saveSafetensors wrote; readBlob returns the bytes', async () => {
    const bytes = saveSafetensors({ w: tensor([[1, 2], [3, 4.5]]) });
    expect(Array.from(await readBlob(new Blob([bytes])))).toEqual(Array.from(bytes));
    const sd = await loadSafetensorsBlob(new Blob([bytes.slice(0, 40), bytes.slice(40)]));
    expect(sd.w!.shape).toEqual([2, 2]);
    expect(Array.from(sd.w!.data)).toEqual([1, 2, 3, 4.5]);
  });

  it('a Blob that is not an image is an ImageDecodeError', async () => {
    await expect(decodeImageBlob(new Blob(['hello']))).rejects.toThrow(ImageDecodeError);
  });
});
