/**
 * Writing files atomically (Node: node:fs lives here, in a *-file helper, so the rest of io/ stays browser-safe).
 * Checkpoints, metrics and experiment results are written with it.
 */

import { randomBytes } from 'node:crypto';
import { closeSync, fchmodSync, fsyncSync, openSync, readdirSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

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
