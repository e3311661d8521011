// Shared staging buffers for a pool call (browser-safe: used by the Node pool and the browser pool alike). Worker
// threads see only SharedArrayBuffer memory, so a task's buffers that are ordinary ArrayBuffer-backed arrays are
// copied into shared buffers for the call, and the ones it writes copied back after. See pool.ts for why tensors
// are not shared in the first place.

import type { Task, TaskBuffer } from '../kernels/parallel.js';

/**
 * What staging has cost since the process started (or the last `resetStagingStats`): pool calls, the calls that
 * staged anything, bytes copied into staging and back out, and the milliseconds those copies took.
 */
export interface StagingStats {
  calls: number;
  stagedCalls: number;
  bytesIn: number;
  bytesOut: number;
  ms: number;
}

const stats: StagingStats = { calls: 0, stagedCalls: 0, bytesIn: 0, bytesOut: 0, ms: 0 };

/** A copy of the staging counters (see StagingStats). */
export function stagingStats(): StagingStats {
  return { ...stats };
}

/** Zeroes the staging counters. */
export function resetStagingStats(): void {
  stats.calls = stats.stagedCalls = stats.bytesIn = stats.bytesOut = stats.ms = 0;
}

/** Copies the staged results back into the caller's buffers (counted in the stats). */
export function copyBackStaged(copyBack: [TaskBuffer, TaskBuffer][]): void {
  if (copyBack.length === 0) return;
  const t0 = performance.now();
  for (const [dst, src] of copyBack) {
    dst.set(src);
    stats.bytesOut += dst.byteLength;
  }
  stats.ms += performance.now() - t0;
}

/**
 * Copies the non-shared buffers of `task` into `staging` (grown as needed, reused across calls; the same array
 * named twice is staged once). Returns the buffers to send, and the [caller's, staged] pairs to copy back once
 * the call is done.
 */
export function stageTask(task: Task, staging: SharedArrayBuffer[]): { bufs: Record<string, TaskBuffer | null>; copyBack: [TaskBuffer, TaskBuffer][] } {
  stats.calls++;
  // The usual case in a training step (its buffers and the parameters are shared): the task's own buffers, no copies.
  let unshared = false;
  for (const name in task.bufs) {
    const b = task.bufs[name];
    if (b && !(b.buffer instanceof SharedArrayBuffer)) {
      unshared = true;
      break;
    }
  }
  if (!unshared) return { bufs: task.bufs, copyBack: [] };
  let slot = 0;
  let t0 = -1;
  const seen = new Map<TaskBuffer, TaskBuffer>();
  const bufs: Record<string, TaskBuffer | null> = {};
  const copyBack: [TaskBuffer, TaskBuffer][] = [];
  for (const [name, b] of Object.entries(task.bufs)) {
    if (b === null || b.buffer instanceof SharedArrayBuffer) {
      bufs[name] = b;
      continue;
    }
    let s = seen.get(b);
    if (s === undefined) {
      if (t0 < 0) t0 = performance.now();
      const bytes = b.byteLength;
      let sab = staging[slot];
      if (sab === undefined || sab.byteLength < bytes) {
        sab = new SharedArrayBuffer(Math.max(bytes, 1024));
        staging[slot] = sab;
      }
      slot++;
      s = b instanceof Float64Array ? new Float64Array(sab, 0, b.length) : new Float32Array(sab, 0, b.length);
      // (copied in unless every name it goes by is overwritten: an output may also be an input)
      if (Object.entries(task.bufs).some(([k, v]) => v === b && !task.overwrites?.includes(k))) {
        s.set(b);
        stats.bytesIn += bytes;
      }
      seen.set(b, s);
      if (task.writes.includes(name)) copyBack.push([b, s]);
    }
    bufs[name] = s;
  }
  if (t0 >= 0) {
    stats.stagedCalls++;
    stats.ms += performance.now() - t0;
  }
  return { bufs, copyBack };
}
