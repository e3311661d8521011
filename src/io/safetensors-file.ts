/**
 * Node file helpers for safetensors (node:fs lives here so that safetensors.ts stays browser-safe); files are
 * written atomically (atomic-file.ts).
 */

import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { Tensor } from '../tensor.js';
import { writeFileAtomic } from './atomic-file.js';
import { decodeSpan, headerLength, parseSafetensorsHeader, saveSafetensors, SafetensorsError, type SafetensorsSpan } from './safetensors.js';

/** Rethrows a SafetensorsError with the file path in front of its message. */
function withPath<T>(path: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof SafetensorsError && !e.detail.startsWith(`${path}: `)) throw new SafetensorsError(e.kind, `${path}: ${e.detail}`, e.tensor);
    throw e;
  }
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
/** Small tensors are read through one window of this size (one read per window, not per tensor). */
const WINDOW = 1 << 20;

/** A file-system error as a SafetensorsError naming the path (ENOENT, EISDIR, EACCES, ...). */
function ioError(path: string, e: unknown): SafetensorsError {
  const code = (e as NodeJS.ErrnoException).code;
  const what = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory, not a file' : code === 'EACCES' || code === 'EPERM' ? 'permission denied' : ((e as Error).message ?? String(e));
  return new SafetensorsError('Io', `${path}: ${what}${code ? ` (${code})` : ''}`);
}

/** Reads exactly `length` bytes at `position` into `into` (from `at`); a short read means the file shrank. */
function readExactly(path: string, fd: number, into: Uint8Array, at: number, length: number, position: number): void {
  for (let done = 0; done < length; ) {
    let k: number;
    try {
      k = readSync(fd, into, at + done, Math.min(length - done, 1 << 30), position + done); // readSync takes < 2 GiB per call
    } catch (e) {
      throw ioError(path, e);
    }
    if (k === 0) throw new SafetensorsError('MetadataIncompleteBuffer', `${path}: the file ended at byte ${position + done} while being read (did it change meanwhile?)`);
    done += k;
  }
}

/** Opens `path`, reads and validates only its header (8 + N bytes), and hands the open file to `fn`. */
function withHeader<T>(path: string, fn: (fd: number, h: { metadata: Record<string, string>; spans: SafetensorsSpan[] }) => T): T {
  if (typeof path !== 'string') throw new SafetensorsError('InvalidInput', `the path must be a string, got ${path === null ? 'null' : typeof path}`);
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw ioError(path, e);
  }
  try {
    let size: number;
    try {
      const st = fstatSync(fd);
      if (st.isDirectory()) throw Object.assign(new Error('EISDIR'), { code: 'EISDIR' });
      size = st.size;
    } catch (e) {
      throw ioError(path, e);
    }
    const h = withPath(path, () => {
      const first8 = new Uint8Array(8);
      if (size >= 8) readExactly(path, fd, first8, 0, 8, 0);
      const n = headerLength(first8, size);
      const head = new Uint8Array(8 + n);
      head.set(first8);
      readExactly(path, fd, head, 8, n, 8);
      return parseSafetensorsHeader(head, size);
    });
    return fn(fd, h);
  } finally {
    closeSync(fd);
  }
}

/**
 * Reads a .safetensors file: every tensor as a float32 Tensor, keyed by name (null-prototype object). The header
 * is read and validated first (a malformed file costs no more than its header); then each tensor is read into its
 * own buffer (F32 straight into the tensor's memory, small tensors through a 1 MiB window and into shared slabs),
 * so files over 2 GiB load and the peak memory is the tensors themselves.
 */
export function loadSafetensorsFile(path: string): Record<string, Tensor> {
  return withHeader(path, (fd, { spans }) => {
    const out: Record<string, Tensor> = Object.create(null);
    let win = new Uint8Array(0);
    let winStart = 0, winEnd = 0; // file bytes [winStart, winEnd) are in win
    // tensors under 1 KiB are views into shared 1 MiB slabs: a million tiny tensors do not cost a million buffers
    let slab = new Float32Array(0);
    let slabUsed = 0;
    const last = spans[spans.length - 1];
    for (let i = 0; i < spans.length; i++) {
      const sp = spans[i]!;
      // spans already read are garbage: a collection during this loop makes room for the tensors
      (spans as (SafetensorsSpan | null)[])[i] = null;
      let data: Float32Array;
      if (sp.numel * 4 < 1024) {
        if (slabUsed + sp.numel > slab.length) {
          slab = new Float32Array(WINDOW / 4);
          slabUsed = 0;
        }
        data = slab.subarray(slabUsed, slabUsed + sp.numel);
        slabUsed += sp.numel;
      } else {
        data = new Float32Array(sp.numel);
      }
      if (sp.bytes >= WINDOW && sp.dtype === 'F32' && LITTLE_ENDIAN) {
        readExactly(path, fd, new Uint8Array(data.buffer, data.byteOffset, sp.bytes), 0, sp.bytes, sp.offset);
      } else if (sp.bytes >= WINDOW) {
        const tmp = new Uint8Array(sp.bytes);
        readExactly(path, fd, tmp, 0, sp.bytes, sp.offset);
        decodeSpan(data, tmp, 0, sp);
      } else if (sp.bytes > 0) {
        if (sp.offset < winStart || sp.offset + sp.bytes > winEnd) {
          // spans are in file order and contiguous: refill from this one on
          const len = Math.min(WINDOW, last!.offset + last!.bytes - sp.offset);
          if (win.length < len) win = new Uint8Array(WINDOW);
          readExactly(path, fd, win, 0, len, sp.offset);
          winStart = sp.offset;
          winEnd = sp.offset + len;
        }
        decodeSpan(data, win, sp.offset - winStart, sp);
      }
      out[sp.name] = new Tensor(data, sp.shape);
    }
    return out;
  });
}

/** Reads only the `__metadata__` map of a .safetensors file (after validating its header); the tensor data is not read. */
export function readSafetensorsMetadataFile(path: string): Record<string, string> {
  return withHeader(path, (_fd, h) => h.metadata);
}

/**
 * Writes tensors as an F32 .safetensors file, atomically (see writeFileAtomic). Serialization errors are thrown
 * before the file system is touched.
 */
export function saveSafetensorsFile(path: string, tensors: Record<string, Tensor>, metadata?: Record<string, string>): void {
  if (typeof path !== 'string') throw new SafetensorsError('InvalidInput', `the path must be a string, got ${path === null ? 'null' : typeof path}`);
  const bytes = withPath(path, () => saveSafetensors(tensors, metadata));
  try {
    writeFileAtomic(path, bytes);
  } catch (e) {
    throw ioError(path, e);
  }
}
