// Shared staging buffers for a pool call (browser-safe: used by the Node pool and the browser pool alike). Worker
// threads see only SharedArrayBuffer memory, so a task's buffers that are ordinary ArrayBuffer-backed arrays are
// copied into shared buffers for the call, and the ones it writes copied back after. See pool.ts for why tensors
// are not shared in the first place.

import type { Task, TaskBuffer } from '../kernels/parallel.js';

/**
 * Copies the non-shared buffers of `task` into `staging` (grown as needed, reused across calls; the same array
 * named twice is staged once). Returns the buffers to send, and the [caller's, staged] pairs to copy back once
 * the call is done.
 */
export function stageTask(task: Task, staging: SharedArrayBuffer[]): { bufs: Record<string, TaskBuffer | null>; copyBack: [TaskBuffer, TaskBuffer][] } {
  let slot = 0;
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
      const bytes = b.byteLength;
      let sab = staging[slot];
      if (sab === undefined || sab.byteLength < bytes) {
        sab = new SharedArrayBuffer(Math.max(bytes, 1024));
        staging[slot] = sab;
      }
      slot++;
      s = b instanceof Float64Array ? new Float64Array(sab, 0, b.length) : new Float32Array(sab, 0, b.length);
      if (!task.overwrites?.includes(name)) s.set(b);
      seen.set(b, s);
      if (task.writes.includes(name)) copyBack.push([b, s]);
    }
    bufs[name] = s;
  }
  return { bufs, copyBack };
}
