/**
 * Files a user hands the page (a File from an <input> or a drop, or any Blob): the same decoders and loaders as
 * on bytes, after one read. Works wherever Blob exists (browsers, Node ≥ 18).
 */
import type { Tensor } from '../tensor.js';
import { decodeImage, type DecodedImage } from './image.js';
import { loadSafetensors } from './safetensors.js';

/** The bytes of a File or Blob. */
export async function readBlob(blob: Blob): Promise<Uint8Array> {
  return new Uint8Array(await blob.arrayBuffer());
}

/** decodeImage on a File or Blob (PNG, JPEG or binary PNM, by magic bytes). */
export async function decodeImageBlob(blob: Blob): Promise<DecodedImage> {
  return decodeImage(await readBlob(blob));
}

/** loadSafetensors on a File or Blob. */
export async function loadSafetensorsBlob(blob: Blob): Promise<Record<string, Tensor>> {
  return loadSafetensors(await readBlob(blob));
}
