// Node only: PNG decoding inflates with node:zlib (same bytes as inflate.ts, less CPU time). Imported for its side
// effect by the Node io namespace (node.ts).
import { inflateSync } from 'node:zlib';
import { InflateError, setZlibInflate } from './inflate.js';

/** node:zlib's inflate with inflate.ts's contract (InflateError, kind 'size' past the limit). */
export function nodeInflate(input: Uint8Array, maxOutputLength: number): Uint8Array {
  try {
    return inflateSync(input, { maxOutputLength });
  } catch (e) {
    const err = e as { code?: string; message?: string };
    if (err.code === 'ERR_BUFFER_TOO_LARGE') throw new InflateError(`output exceeds ${maxOutputLength} bytes`, 'size');
    throw new InflateError(err.message ?? String(e));
  }
}

setZlibInflate(nodeInflate);
