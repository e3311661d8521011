/**
 * The IDX format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/): a 4-byte big-endian magic number
 * 0x0000TTNN (TT = data type, 0x08 for unsigned bytes; NN = number of dims), NN big-endian uint32 dims, then the
 * data, row-major. Images are 0x00000803 (N, rows, cols), labels 0x00000801 (N).
 */

import { DatasetError } from './dataset.js';

export interface IdxArray {
  dims: number[];
  /** A view into the input bytes (no copy). */
  data: Uint8Array;
}

const hex = (v: number): string => `0x${(v >>> 0).toString(16).padStart(8, '0')}`;

/**
 * Parses an uncompressed IDX file of unsigned bytes. `name` (e.g. the file path) is used in error messages.
 * Throws DatasetError for a bad magic number (including gzip data that was not unpacked), a data type other than
 * unsigned byte, a truncated header, or a body whose size differs from the product of the dims.
 */
export function readIdx(bytes: Uint8Array, name = 'IDX data'): IdxArray {
  const op = 'readIdx';
  if (bytes.length < 4) throw new DatasetError(op, `${name}: ${bytes.length} bytes is too short for an IDX file (4-byte magic number first)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, false);
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    const gz = bytes[0] === 0x1f && bytes[1] === 0x8b ? ' (this is gzip data: gunzip it first)' : '';
    throw new DatasetError(op, `${name}: bad magic number ${hex(magic)}, expected 0x00000801 (labels) or 0x00000803 (images)${gz}`);
  }
  const type = bytes[2]!;
  const ndims = bytes[3]!;
  if (type !== 0x08) {
    throw new DatasetError(op, `${name}: magic number ${hex(magic)} has data type 0x${type.toString(16).padStart(2, '0')}; only 0x08 (unsigned byte) is supported`);
  }
  if (ndims === 0) throw new DatasetError(op, `${name}: magic number ${hex(magic)} declares 0 dimensions`);
  const header = 4 + 4 * ndims;
  if (bytes.length < header) {
    throw new DatasetError(op, `${name}: truncated header: ${ndims} dims need a ${header}-byte header, the data has ${bytes.length} bytes`);
  }
  const dims: number[] = [];
  let count = 1;
  for (let i = 0; i < ndims; i++) {
    const d = view.getUint32(4 + 4 * i, false);
    dims.push(d);
    count *= d;
  }
  const body = bytes.length - header;
  if (count !== body) {
    const what = count > body ? 'truncated body' : 'trailing bytes';
    throw new DatasetError(op, `${name}: ${what}: dims ${dims.join('×')} need ${count} bytes after the ${header}-byte header, found ${body}`);
  }
  return { dims, data: bytes.subarray(header) };
}

/** Builds IDX bytes (magic 0x000008NN, big-endian dims, data): for tests and for writing small datasets. */
export function writeIdx(dims: readonly number[], data: Uint8Array): Uint8Array {
  const count = dims.reduce((a, b) => a * b, 1);
  if (dims.length === 0 || dims.length > 255 || count !== data.length) {
    throw new DatasetError('writeIdx', `dims ${dims.join('×')} do not fit ${data.length} bytes of data`);
  }
  const header = 4 + 4 * dims.length;
  const out = new Uint8Array(header + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, 0x00000800 | dims.length, false);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(data, header);
  return out;
}
