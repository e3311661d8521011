/**
 * The output folder of a training run: checked before any training (so that an unwritable --out fails in a
 * second, not after an epoch), created without ever blocking, and locked against a second trainer.
 *
 * The lock is OUT/train.lock, created with O_EXCL (exactly one process can create it) and holding the owner's pid,
 * the kernel's start time of that process (Linux: /proc/PID/stat field 22, so that a reused pid is not taken for
 * the owner), host and start date. A lock whose owner is gone is stale and is broken: renamed away (atomic: of
 * two processes breaking it, one rename fails), re-read to make sure it is still the stale one, then removed.
 */
import { closeSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, statfsSync, statSync, unlinkSync, writeSync, fsyncSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ResnetTsError } from '../errors.js';

/** A problem with the --out folder: missing parent, a file in the way, not writable, locked by another run. */
export class RunDirError extends ResnetTsError {
  constructor(message: string) {
    super('train --out', message);
  }
}

// procfs, sysfs, cgroup, cgroup2, debugfs, securityfs: kernel file systems where nothing of ours can be written
// (node's recursive mkdir loops forever under /proc, retrying the ENOENT it gets there).
const VIRTUAL_FS = new Map<number, string>([
  [0x9fa0, 'procfs'], [0x62656572, 'sysfs'], [0x27e0eb, 'cgroup'], [0x63677270, 'cgroup2'], [0x64626720, 'debugfs'], [0x73636673, 'securityfs'],
]);

const errno = (e: unknown): string => (e as NodeJS.ErrnoException).code ?? 'error';
const why = (e: unknown): string => `${errno(e)}: ${((e as Error).message ?? String(e)).replace(/^\w+: /, '').replace(/, \w+ '.*'$/, '')}`;

/**
 * Makes sure `out` is a directory this process can write, creating missing folders one level at a time (never
 * a recursive mkdir), and takes the run lock. Throws RunDirError naming the path and the reason.
 */
export function prepareRunDir(out: string): RunLock {
  const abs = resolve(out);
  const missing: string[] = [];
  let p = abs;
  for (;;) {
    let isDir: boolean;
    try {
      isDir = statSync(p).isDirectory();
    } catch (e) {
      if (errno(e) === 'ENOENT' && dirname(p) !== p) {
        missing.unshift(p);
        p = dirname(p);
        continue;
      }
      if (errno(e) === 'ENOTDIR') throw new RunDirError(`${out}: a path component is a file, not a folder (${abs})`);
      throw new RunDirError(`${out}: cannot look at ${p} (${why(e)})`);
    }
    if (!isDir) throw new RunDirError(p === abs ? `${out} is a file, not a folder` : `${out}: ${p} is a file, not a folder`);
    break;
  }
  try {
    const kind = VIRTUAL_FS.get(Number(statfsSync(p).type));
    if (kind !== undefined) throw new RunDirError(`${out} is on ${kind} (${p}), a kernel file system where no run can be saved`);
  } catch (e) {
    if (e instanceof RunDirError) throw e;
    // statfs unsupported here: the mkdir and the lock below still find out
  }
  for (const d of missing) {
    try {
      mkdirSync(d);
    } catch (e) {
      if (errno(e) !== 'EEXIST') throw new RunDirError(`${out}: cannot create the folder ${d} (${why(e)})`);
    }
  }
  return RunLock.take(abs, out);
}

interface LockInfo {
  pid: number;
  /** Kernel start time of the process in clock ticks since boot (Linux), or null where unknown. */
  startTicks: number | null;
  host: string;
  started: string;
}

/** The start time of process `pid` from /proc (Linux), or null. */
function startTicks(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the command name (field 2) is in parentheses and may hold spaces: count fields after its closing ')'
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const v = Number(fields[19]); // field 22 overall
    return Number.isInteger(v) ? v : null;
  } catch {
    return null;
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errno(e) === 'EPERM';
  }
}

/** Whether the owner named in a lock still runs (the same process, not a new one with its pid). */
function ownerRuns(l: LockInfo): boolean {
  if (l.host !== hostname()) return true; // cannot tell: assume so
  if (!pidAlive(l.pid)) return false;
  const now = startTicks(l.pid);
  return l.startTicks === null || now === null || now === l.startTicks;
}

function parseLock(text: string): LockInfo | null {
  try {
    const j = JSON.parse(text) as Partial<LockInfo>;
    if (Number.isInteger(j.pid) && typeof j.host === 'string') return { pid: j.pid!, startTicks: j.startTicks ?? null, host: j.host, started: String(j.started) };
  } catch {
    // fall through
  }
  return null;
}

/** An unreadable lock younger than this may be one whose owner is still writing it. */
const UNREADABLE_GRACE_MS = 10_000;

export class RunLock {
  private released = false;
  private constructor(readonly path: string, private readonly text: string) {}

  /** Takes OUT/train.lock, breaking a stale one; RunDirError when a live run holds it or OUT is not writable. */
  static take(dir: string, shown: string): RunLock {
    const path = join(dir, 'train.lock');
    const me: LockInfo = { pid: process.pid, startTicks: startTicks(process.pid), host: hostname(), started: new Date().toISOString() };
    const text = JSON.stringify(me) + '\n';
    for (let attempt = 0; attempt < 5; attempt++) {
      let fd: number;
      try {
        fd = openSync(path, 'wx', 0o644); // O_CREAT | O_EXCL: atomic
      } catch (e) {
        if (errno(e) !== 'EEXIST') throw new RunDirError(`${shown} is not writable: cannot create ${path} (${why(e)})`);
        RunLock.breakIfStale(path, shown);
        continue;
      }
      try {
        writeSync(fd, text);
        fsyncSync(fd);
      } catch (e) {
        closeSync(fd);
        unlinkSync(path);
        throw new RunDirError(`${shown} is not writable: cannot write ${path} (${why(e)})`);
      }
      closeSync(fd);
      return new RunLock(path, text);
    }
    throw new RunDirError(`${shown}: could not take ${path} (other processes keep replacing it)`);
  }

  /** Throws if the lock at `path` belongs to a running process; removes it if its owner is gone. */
  private static breakIfStale(path: string, shown: string): void {
    let seen: string;
    let mtime: number;
    try {
      seen = readFileSync(path, 'utf8');
      mtime = statSync(path).mtimeMs;
    } catch (e) {
      if (errno(e) === 'ENOENT') return; // released meanwhile: try again
      throw new RunDirError(`${shown}: cannot read ${path} (${why(e)})`);
    }
    const info = parseLock(seen);
    if (info !== null && ownerRuns(info)) {
      throw new RunDirError(
        `another training run (pid ${info.pid} on ${info.host}, started ${info.started}) is using ${shown}; wait for it to finish, or choose another --out` +
          (info.host !== hostname() ? ` (if that run is gone, delete ${path})` : ''),
      );
    }
    if (info === null && Date.now() - mtime < UNREADABLE_GRACE_MS) {
      throw new RunDirError(`another training run is starting in ${shown} (${path} was just created); wait for it, or choose another --out`);
    }
    // stale: move it aside (only one breaker's rename succeeds), and check that it is the lock we judged
    const aside = `${path}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      renameSync(path, aside);
    } catch (e) {
      if (errno(e) === 'ENOENT') return; // another process broke it first
      throw new RunDirError(`${shown}: cannot remove the stale lock ${path} (${why(e)})`);
    }
    let moved = '';
    try {
      moved = readFileSync(aside, 'utf8');
    } catch {
      // gone: nothing to put back
    }
    if (moved !== seen) {
      // a new owner's lock was taken for the stale one: put it back (link fails if yet another lock is there)
      try {
        linkSync(aside, path);
      } catch {
        // a newer lock exists: that one stands
      }
    }
    try {
      unlinkSync(aside);
    } catch {
      // already gone
    }
  }

  /** Removes the lock if it is still this run's. Idempotent. */
  release(): void {
    if (this.released) return;
    this.released = true;
    try {
      if (readFileSync(this.path, 'utf8') === this.text) unlinkSync(this.path);
    } catch {
      // gone already
    }
  }
}
