/**
 * Node file helpers for safetensors, and the atomic file write the rest of io/ reuses.
 * (node:fs lives here so that safetensors.ts stays browser-safe.)
 */

import { randomBytes } from 'node:crypto';
import { closeSync, fchmodSync, fstatSync, fsyncSync, openSync, readdirSync, readSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { Tensor } from '../tensor.js';
import { decodeSpan, headerLength, parseSafetensorsHeader, saveSafetensors, SafetensorsError, type SafetensorsSpan } from './safetensors.js';

/**
 * Writes `bytes` to `path` so that readers see either the old file or the complete new one, never a partial one:
 * write a uniquely named temp file in the same directory (so the rename stays on one file system), fsync it, rename
 * it over the target, then fsync the directory (best effort). On any error the temp file is removed, the target is
 * left as it was, and the error is rethrown. A replaced file's permission bits are kept.
 */
export function writeFileAtomic(path: string, bytes: Uint8Array): void {
  const dir = dirname(path);
  // dot-prefixed, and the name cut short so that a long target name cannot push the temp name past NAME_MAX
  const stem = `.${basename(path).slice(0, 100)}.`;
  removeStaleTemps(dir, stem);
  const tmp = join(dir, `${stem}${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  let fd: number | null = null;
  try {
    fd = openSync(tmp, 'wx', 0o666); // wx: never reuse an existing file
    let mode: number | null = null;
    try {
      mode = statSync(path).mode & 0o7777;
    } catch {
      // no previous file: keep the default (0o666 & ~umask)
    }
    if (mode !== null) fchmodSync(fd, mode);
    for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
    closeSync(fd);
    fd = null;
    renameSync(tmp, path);
  } catch (e) {
    if (fd !== null) {
      try {
        closeSync(fd);
      } catch {
        // already failing; the original error is the one to report
      }
    }
    try {
      unlinkSync(tmp);
    } catch {
      // the temp file was never created, or is already gone
    }
    throw e;
  }
  try {
    // make the rename itself durable; directories cannot be opened or fsynced on every platform (Windows)
    const dfd = openSync(dir, 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    // best effort only
  }
}

/** Whether a process with this pid is running (signal 0 probes without signalling). */
function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes temp files of earlier writes to the same target whose writer process is gone (killed mid-write): they
 * are never renamed, so without this each crash would leave a full-size file behind. Temps of live writers stay.
 */
function removeStaleTemps(dir: string, stem: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return; // the directory is missing: the write below reports it
  }
  for (const name of names) {
    if (!name.startsWith(stem) || !name.endsWith('.tmp')) continue;
    const m = /^(\d+)\.[0-9a-f]{12}\.tmp$/.exec(name.slice(stem.length));
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || pidAlive(pid)) continue;
    try {
      unlinkSync(join(dir, name));
    } catch {
      // gone already, or not ours to remove
    }
  }
}

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
    for (const sp of spans) {
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
          const last = spans[spans.length - 1]!;
          const len = Math.min(WINDOW, last.offset + last.bytes - sp.offset);
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
