// Per-thread scratch regions in the resident memory (wasm/optim.ts) for kernels that run over it in place: the
// Winograd convolution reads x's rows and writes y's rows at their addresses there, and keeps its transformed tiles,
// weights and GEMM results in one of these regions; likewise the Winograd and direct weight gradients
// (conv2d/backward-winograd.ts, conv2d/backward.ts), the direct convolution (conv2d/direct.ts) and the stride-phase
// input gradient (conv2d/phases.ts) keep their padded rows, packed weights and sums in one. The regions are allocated on the main thread (the allocator
// lives there) and handed to the tasks as addresses; a task's thread claims one for the units it runs (a busy flag
// per region, also in the resident memory) and releases it after.
//
// Each region starts with a header (HEADER bytes) that records what it holds, so that a thread that claims it later
// knows whether the transformed tiles or weights of a call are still there (see winograd.ts's convUnitsSimd):
// i32 [call serial of V, tile block of V, call serial of U]. The direct kernels record their packed weights as U (and
// clear V's entries); the weight gradients, which keep nothing from unit to unit, leave the header as it is (a call's
// serial is new, so no later call takes what they overwrote for its own).

import { residentBackward } from './wasm/backward.js';
import { residentAddress, residentAlloc, residentFree, residentMemory, type Resident } from './wasm/optim.js';

/**
 * a[from, to) = 0: in the resident memory by wasm's `memory.fill` (3.5–5× faster than `TypedArray.prototype.fill`
 * on shared memory, Node 20), elsewhere by `fill`.
 */
export function zeroFloats(a: Float32Array, from: number, to: number): void {
  if (to <= from) return;
  const at = residentAddress(a);
  if (at < 0) {
    a.fill(0, from, to);
    return;
  }
  residentBackward(residentMemory()!).zero(at + 4 * from, 4 * (to - from));
}

/** Bytes before a region's scratch (the header, then padding to a 64-byte boundary). */
export const HEADER = 64;
/** Most regions (one per thread). */
const MAX_REGIONS = 64;

/** A call's regions: the busy flags (i32 each, from `flags`) and the scratch's byte addresses (64-byte aligned). */
export interface ScratchRegions extends Resident {
  flags: number;
  /** Byte address of each region's scratch (its header is the HEADER bytes before). */
  at: number[];
  /** Bytes of scratch in each region. */
  bytes: number;
}

let flagRegion: Float32Array | null = null;
const regions: Float32Array[] = [];
const bases: number[] = [];
let serial = 0;

/** A new call's serial (positive): tells the headers' records of different calls apart. */
export function nextSerial(): number {
  serial = serial >= 2 ** 30 ? 1 : serial + 1;
  return serial;
}

/**
 * `count` regions of at least `bytes` bytes of scratch each (grown as needed, kept for the process), or null (no
 * resident memory, or it is full). Main thread only.
 */
export function residentScratch(count: number, bytes: number): ScratchRegions | null {
  const r = residentMemory();
  if (r === null || count > MAX_REGIONS) return null;
  flagRegion ??= residentAlloc(MAX_REGIONS);
  if (flagRegion === null) return null;
  for (let i = 0; i < count; i++) {
    const have = regions[i];
    if (have !== undefined && have.byteOffset + have.byteLength >= bases[i]! + bytes) continue;
    if (have !== undefined) residentFree(have);
    // room for the header and the alignment; a little more than asked, so that growing by small steps is rare
    const v = residentAlloc(Math.ceil((1.125 * bytes + 2 * HEADER) / 4));
    if (v === null) {
      regions.length = bases.length = i;
      return null;
    }
    regions[i] = v;
    bases[i] = Math.ceil((v.byteOffset + HEADER) / 64) * 64;
  }
  return { mem: r.mem, id: r.id, flags: flagRegion.byteOffset, at: bases.slice(0, count), bytes };
}

/** The region this thread claimed last: it tries that one first, whose lines are likely still in its core's cache. */
let lastClaimed = 0;

let flagView: Int32Array | null = null;
let flagMemory = 0;

/**
 * The busy flags of s's regions (a view kept while the memory and the flags stay the same: a shared memory's buffer
 * is not detached when it grows, so a view of an older buffer still reaches what was allocated before; reading
 * `mem.buffer` costs about 0.1 µs, a task's unit of the direct kernels 1–2 µs on the smallest maps).
 */
function flagsOf(s: ScratchRegions): Int32Array {
  if (flagView === null || flagMemory !== s.id || flagView.byteOffset !== s.flags || flagView.length !== s.at.length) {
    flagView = new Int32Array(s.mem.buffer, s.flags, s.at.length);
    flagMemory = s.id;
  }
  return flagView;
}

/** Claims a free region of s (its index), or −1 when every one is busy. */
export function claimRegion(s: ScratchRegions): number {
  const flags = flagsOf(s), n = s.at.length;
  for (let k = 0; k < n; k++) {
    const i = (lastClaimed + k) % n;
    if (Atomics.compareExchange(flags, i, 0, 1) === 0) return (lastClaimed = i);
  }
  return -1;
}

export function releaseRegion(s: ScratchRegions, i: number): void {
  Atomics.store(flagsOf(s), i, 0);
}

/** The header of region i of s: i32 [call serial of V, tile block of V, call serial of U]. */
export function regionHeader(s: ScratchRegions, i: number): Int32Array {
  return new Int32Array(s.mem.buffer, s.at[i]! - HEADER, 3);
}

/** Views of a region's scratch (from its start, s.bytes long) and of its header. */
export interface RegionViews {
  f: Float32Array;
  h: Float64Array;
  i: Int32Array;
  header: Int32Array;
}

const viewCache: ({ id: number; at: number; bytes: number; v: RegionViews } | undefined)[] = [];

/** This thread's views of region i of s, kept while the region stays the same (memory, address and size: see flagsOf). */
export function regionViews(s: ScratchRegions, i: number): RegionViews {
  const at = s.at[i]!, c = viewCache[i];
  if (c !== undefined && c.id === s.id && c.at === at && c.bytes === s.bytes) return c.v;
  const buf = s.mem.buffer;
  const v = {
    f: new Float32Array(buf, at, s.bytes >> 2), h: new Float64Array(buf, at, s.bytes >> 3), i: new Int32Array(buf, at, s.bytes >> 2),
    header: new Int32Array(buf, at - HEADER, 3),
  };
  viewCache[i] = { id: s.id, at, bytes: s.bytes, v };
  return v;
}
