// Buffer reuse: an arena around an eval forward, and around a training step.
//
// A model's eval forward makes tens of MB of activations that die within the call (43 MB for a ResNet-50 at batch
// 1). Left to the garbage collector they are freed only every forward or two, which is what the process's peak RSS
// then shows. Inside `withArena(fn)`, the inference kernels whose output overwrites every element (the fused conv,
// max pooling without gradients) take their output buffers with `takeBuffer`; when fn returns, every buffer handed
// out in the scope except those of fn's result goes back to a pool, and the next scope takes from there. Models know
// nothing of this: the scope is put around the forward by whoever calls it (evaluate, predict, a benchmark).
//
// Pooled buffers live in shared memory (SharedArrayBuffer, where it exists): the worker threads then read and write
// them in place, where an ordinary buffer is copied into shared staging memory and back on every kernel call. So a
// buffer the pool lacks is made shared at once inside a scope (an ordinary one is staged on every kernel call, and
// its shared replacement, made on return, doubles it until the collector runs: ResNet-50 at batch 1, peak RSS
// −33 MB). Only the buffers of the scope's result escape, one result per call, as they would from the pool. Bounded
// by config.arenaBytes in all; buffers shorter than config.arenaMinLength are left to the allocator. A returned
// ordinary buffer (a gradient recycled outside any scope) is swapped for a shared one of the same length.
//
// Within a scope, buffers go back as soon as nobody can read them: between two layers of a Sequential the output of
// the first (releaseEarly), and after a Sequential's child returns every buffer handed out during its forward but
// the one it returns (releaseSince: a residual block's intermediates). The pool then holds about one block's
// working set per size rather than a whole forward's (ResNet-50 at batch 1: 31 → 14 MB, peak RSS −17 MB).
//
// A training step (openStep/closeStep, behind withTrainingStep in scope.ts) goes further: every buffer of at least
// STEP_MIN_LENGTH elements that `alloc` makes inside it (activations, saved tensors) and every gradient buffer comes
// from the pool, or is made in shared memory, and is recorded. At the step's end all of them go back except those
// the caller proves alive (reachable from the step's result, the model, the optimizer), so the next step with the
// same shapes makes no new buffers and the workers use all of them in place. The shared buffers never become
// garbage: they circulate, and only buffers that neither of the last two steps used are dropped (so a batch of another
// size, such as an epoch's last, leaves the usual size's buffers for the step after it, which would otherwise make
// them anew: 139 MB for a Fashion-MNIST ResNet-20 at batch 128). A smaller batch runs in views of the usual one's
// buffers (takeLonger). A dropped buffer in the resident memory (config.residentSteps) frees its region at once for
// the next buffer of its size, rather than when the collector gets to its array (the memory never shrinks: a batch of
// another size would otherwise add a step's worth to it each time).

import { config } from '../config.js';
import { zeroFill } from '../kernels/elementwise.js';
import { forgetFinite } from '../kernels/finite.js';
import { residentBuffer } from '../kernels/optim.js';
import { kernelBackend } from '../kernels/wasm/features.js';
import { residentAddress, residentFree, residentMemory } from '../kernels/wasm/optim.js';
import { alloc, setStepAllocator } from '../shape.js';
import { Tensor } from '../tensor.js';

/**
 * The shortest buffer a training step pools (elements), where config.arenaMinLength is not shorter: a step holds all
 * of its buffers at once, so small ones cost the pool nothing but its bookkeeping, and they too then lie in shared
 * (resident) memory, where the kernels use them in place (ResNet-18 at batch 8: the 8×256×2×2 and 8×512×1×1 maps,
 * which in ordinary memory were made anew every step, copied through staging memory for the convolutions, and kept
 * the batch norm out of its in-place kernels). Shorter buffers (a batch norm's per-channel statistics) are left to
 * the allocator.
 */
const STEP_MIN_LENGTH = 1024;
/** The shortest buffer the pool takes now: STEP_MIN_LENGTH inside a training step, else config.arenaMinLength. */
const minLength = (): number => (stepStale !== null ? Math.min(STEP_MIN_LENGTH, config.arenaMinLength) : config.arenaMinLength);

const pool = new Map<number, Float32Array[]>();
let poolBytes = 0;
/** Bytes of the buffers made because the pool had none of the size (see arenaNewBytes). */
let newBytes = 0;
/** Buffers handed out in the open scope, or null outside any scope. */
let handedOut: Float32Array[] | null = null;
/**
 * While a training step's scope is open (openStep): the pooled buffers that were there when it opened and that it
 * has not taken since; null outside a step.
 */
let stepStale: Set<Float32Array> | null = null;
/** Pooled buffers of a training step that the last closed step did not use (dropped if the next one does not). */
let idleOnce = new Set<Float32Array>();
/** Pooled buffers a training step gave back (the rest came from eval scopes and plain backwards), and their bytes. */
const stepOwned = new WeakSet<Float32Array>();
let stepOwnedBytes = 0;

/**
 * Runs fn (an eval forward, under noGrad) in a buffer arena: tensors that inference kernels make inside it are
 * recycled when it returns, except the tensors fn returns (a Tensor, or an array or record of them). So fn must
 * not keep any other tensor made inside it (a forward hook that stores outputs: return them instead), and a module
 * in a Sequential no tensor made in its forward but the one it returns (see releaseSince). Nested scopes belong to
 * the outermost one.
 */
export function withArena<T>(fn: () => T): T {
  if (handedOut !== null) return fn();
  const mine: Float32Array[] = (handedOut = []);
  let result: T | undefined;
  try {
    result = fn();
    return result;
  } finally {
    handedOut = null;
    const keep = new Set<Float32Array>();
    collectData(result, keep);
    for (const d of mine) if (!keep.has(d)) giveBack(d);
  }
}

function collectData(v: unknown, into: Set<Float32Array>): void {
  if (v instanceof Tensor) into.add(v.data);
  else if (Array.isArray(v)) for (const e of v) collectData(e, into);
  else if (v !== null && typeof v === 'object') for (const e of Object.values(v)) collectData(e, into);
}

// The pool has two parts. A training step's part takes back whatever the step hands back (the step held all of it
// at once anyway), and closeStep drops what neither that step nor the one before used: it holds at most two steps'
// buffers, one step's while the shapes stay the same. The rest (eval scopes, backwards outside a step) is bounded by
// config.arenaBytes.
function giveBack(d: Float32Array): void {
  d = viewOf.get(d) ?? d; // (a view given back twice, recycled and again at the step's end, is one buffer)
  const inStep = stepStale !== null;
  if (d.length < minLength()) return;
  if (!inStep && poolBytes - stepOwnedBytes + d.byteLength > config.arenaBytes) {
    residentFree(d);
    return;
  }
  let list = pool.get(d.length);
  if (list === undefined) pool.set(d.length, (list = []));
  if (list.includes(d)) return;
  if (!(d.buffer instanceof SharedArrayBuffer) && typeof SharedArrayBuffer === 'function') {
    d = new Float32Array(new SharedArrayBuffer(d.byteLength));
  }
  list.push(d);
  poolBytes += d.byteLength;
  if (inStep) {
    stepOwned.add(d);
    stepOwnedBytes += d.byteLength;
  }
}

/**
 * Gives d back before the scope ends, so that the next output of its length reuses it while it is still in cache:
 * for a container that knows nobody reads d again (Sequential, between two layers). Only buffers handed out in the
 * open scope are taken; anything else is ignored.
 */
export function releaseEarly(d: Float32Array): void {
  // (in a training step the backward still reads the intermediates it saved)
  if (handedOut === null || stepStale !== null) return;
  const i = handedOut.lastIndexOf(d);
  if (i < 0) return;
  handedOut.splice(i, 1);
  giveBack(d);
}

/**
 * Where the open scope's record of handed-out buffers ends now, for `releaseSince`; −1 outside a scope and in a
 * training step (whose backward reads what its forward saved).
 */
export function arenaMark(): number {
  return handedOut === null || stepStale !== null ? -1 : handedOut.length;
}

/**
 * Gives back every buffer handed out in the open scope since `mark` (arenaMark) except `keep`'s (its ArrayBuffer):
 * for a container whose child has returned `keep`, when nothing else the child made can be read again (Sequential).
 */
export function releaseSince(mark: number, keep: Float32Array): void {
  if (mark < 0 || handedOut === null || stepStale !== null) return;
  for (let i = handedOut.length - 1; i >= mark; i--) {
    const d = handedOut[i]!;
    if (d.buffer === keep.buffer) continue;
    handedOut.splice(i, 1);
    giveBack(d);
  }
}

/** Drops the pooled buffers (the memory an arena keeps between inference calls). */
export function emptyArena(): void {
  for (const list of pool.values()) for (const d of list) residentFree(d);
  pool.clear();
  idleOnce.clear();
  poolBytes = stepOwnedBytes = 0;
}

/** Bytes the arena's pool holds now. */
export function arenaBytes(): number {
  return poolBytes;
}

/**
 * Bytes of the buffers of at least config.arenaMinLength elements that takeBuffer, gradBuffer and a training step's
 * alloc found no pooled buffer for, and so made.
 */
export function arenaNewBytes(): number {
  return newBytes;
}

/**
 * A buffer of n elements for an output that will be overwritten entirely: inside a withArena scope a pooled one if
 * there is one (and the scope takes it back at its end), else a new one.
 */
export function takeBuffer(op: string, n: number): Float32Array {
  if (handedOut === null) return alloc(op, n);
  const d = obtain(op, n, false);
  handedOut.push(d);
  return d;
}

/**
 * A pooled buffer of n elements (zero-filled if `zero`), else a new one: in shared memory inside a scope (which
 * hands it back to the pool, so it never becomes shared garbage), ordinary memory elsewhere. With
 * config.residentSteps a step's buffers are in the resident memory (kernels/wasm/optim.ts) where the SIMD backend
 * has one and it is not full: the batch norm runs there in place; the pool's other buffers (an eval scope's) are
 * left to others.
 */
function obtain(op: string, n: number, zero: boolean): Float32Array {
  const min = minLength(), step = stepStale !== null && n >= min;
  const resident = step && config.residentSteps && !residentFull && kernelBackend() === 'simd' && residentMemory() !== null;
  // (a buffer shorter than arenaMinLength is taken at its own length only: taken as a view of a longer one, it would
  // keep that one's memory for itself; made anew, it costs little)
  const d = take(n, step, resident) ?? (step && n >= config.arenaMinLength ? takeLonger(n, resident) : undefined);
  if (d === undefined) {
    if (n >= config.arenaMinLength) newBytes += n * 4;
    const r = resident ? residentBuffer(n) : null;
    if (resident && r === null) residentFull = true;
    return r ?? alloc(op, n, handedOut !== null && n >= min);
  }
  poolBytes -= d.byteLength;
  if (stepOwned.delete(d)) stepOwnedBytes -= d.byteLength;
  stepStale?.delete(d);
  forgetFinite(d); // written by its next user
  let v = d;
  if (d.length !== n) {
    v = new Float32Array(d.buffer, d.byteOffset, n);
    viewOf.set(v, d);
  }
  if (zero) zeroFill(v);
  return v;
}

/**
 * Pooled buffers handed out as their first n elements (see takeLonger), by view: the view's return gives the buffer
 * back, and while the view lives it keeps the buffer (and a resident buffer's region) alive.
 */
const viewOf = new WeakMap<Float32Array, Float32Array>();

/**
 * For a training step's request that no pooled buffer of its length meets: the shortest pooled buffer of up to 2n
 * elements that take would hand a step, to be handed out as a view of its first n. So a smaller batch (an epoch's
 * last) runs in the usual batch's buffers instead of making a step's worth of new ones (Fashion-MNIST, 96 images
 * after steps of 128: 133 MB).
 */
function takeLonger(n: number, resident: boolean): Float32Array | undefined {
  let best: Float32Array[] | undefined, at = -1, bestLength = Infinity;
  for (const [m, list] of pool) {
    if (m <= n || m > 2 * n || m >= bestLength) continue;
    for (let i = list.length - 1; i >= 0; i--) {
      if (resident && residentAddress(list[i]!) < 0) continue;
      [best, at, bestLength] = [list, i, m];
      break;
    }
  }
  return best?.splice(at, 1)[0];
}

/** Set when the resident memory could not serve a step's buffer: steps then take any pooled buffer. */
let residentFull = false;

/**
 * A pooled buffer of n elements taken from the pool's list: inside a training step (`step`) any (with `resident`,
 * one in the resident memory); elsewhere (an eval scope, a backward outside any step) one that no training step gave
 * back. A step's buffers wait for the next step: taken by other work in between, they would go back to the bounded
 * part of the pool or be dropped, and the next step would make new ones.
 */
function take(n: number, step: boolean, resident: boolean): Float32Array | undefined {
  const list = pool.get(n);
  if (list === undefined) return undefined;
  if (step && !resident) return list.pop();
  for (let i = list.length - 1; i >= 0; i--) {
    const d = list[i]!;
    if (step ? residentAddress(d) >= 0 : !stepOwned.has(d)) return list.splice(i, 1)[0];
  }
  return undefined;
}

/**
 * A buffer of n elements for an op's output that its kernel overwrites entirely (contents unspecified): inside a
 * training step, a pooled one as it comes (no zero fill: 0.3–0.5 ns per element, ~15 ms of a Fashion-MNIST
 * ResNet-20 step at batch 128) and recorded as alloc's are; elsewhere alloc's.
 */
export function outputBuffer(op: string, n: number): Float32Array {
  if (stepStale === null || n < minLength()) return alloc(op, n);
  const d = obtain(op, n, false);
  handedOut!.push(d);
  return d;
}

/** alloc's source inside a training step: every unshared buffer of at least STEP_MIN_LENGTH elements. */
function stepAlloc(op: string, n: number): Float32Array | null {
  if (n < minLength() || handedOut === null) return null;
  const d = obtain(op, n, true);
  handedOut.push(d);
  return d;
}

/**
 * Opens a training step's scope (see withTrainingStep in scope.ts): until closeStep, every unshared buffer of at
 * least STEP_MIN_LENGTH elements that `alloc` makes, and every gradient buffer, comes from the pool (or is
 * new and shared) and is recorded. Returns false (and opens nothing) inside another scope.
 */
export function openStep(): boolean {
  if (handedOut !== null) return false;
  handedOut = [];
  stepStale = new Set();
  for (const list of pool.values()) for (const d of list) if (stepOwned.has(d)) stepStale.add(d);
  setStepAllocator(stepAlloc);
  return true;
}

/**
 * Closes the step opened by openStep. With `keep` (the typed arrays of everything that outlives the step), the
 * step's buffers that none of them shares memory with go back to the pool, and pooled buffers that neither this step
 * nor the one before used are dropped, so that the pool holds the last two steps' buffers. Without (the step threw:
 * who holds what is unknown), nothing is reused.
 */
export function closeStep(keep: Set<ArrayBufferView> | null): void {
  const mine = handedOut!;
  const stale = stepStale!;
  handedOut = null;
  setStepAllocator(null);
  try {
    if (keep === null) return;
    const kept = keptMemory(keep);
    for (const d of mine) {
      if (kept(d)) continue;
      gradBuffers.delete(d);
      // With anomaly detection on, a tensor that wrongly outlived the step reads NaN instead of another step's data.
      if (config.detectAnomaly) d.fill(NaN);
      giveBack(d);
    }
    // A buffer the step did not use is dropped when the step before did not use it either: a batch of another size
    // (an epoch's last) leaves the usual size's buffers in the pool for the step after it.
    const spare = new Set<Float32Array>();
    for (const d of stale) {
      if (!idleOnce.has(d)) {
        spare.add(d);
        continue;
      }
      const list = pool.get(d.length)!;
      list.splice(list.indexOf(d), 1);
      poolBytes -= d.byteLength;
      stepOwned.delete(d);
      stepOwnedBytes -= d.byteLength;
      residentFree(d);
    }
    idleOnce = spare;
  } finally {
    stepStale = null;
  }
}

/**
 * Buffers that a view outliving the step shares memory with. Elsewhere a buffer is its own ArrayBuffer; in the
 * resident memory (one ArrayBuffer for all) it is a region, shared with the kept views that start inside it. A
 * buffer kept for a view that is not itself (a subarray) is tied to that view: its region returns to the free list
 * when the buffer is collected (wasm/optim.ts), which must not happen while the view is alive.
 */
function keptMemory(keep: Set<ArrayBufferView>): (d: Float32Array) => boolean {
  const buffers = new Set<ArrayBufferLike>(), starts: number[] = [], views: ArrayBufferView[] = [];
  for (const v of keep) {
    const at = residentAddress(v as Float32Array); // (it reads buffer and byteOffset only)
    if (at < 0) buffers.add(v.buffer);
    else {
      starts.push(at);
      views.push(v);
    }
  }
  const order = starts.map((_, i) => i).sort((a, b) => starts[a]! - starts[b]!);
  return (d) => {
    const at = residentAddress(d);
    if (at < 0) return buffers.has(d.buffer);
    // the first kept view starting at or after d's start
    let lo = 0, hi = order.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (starts[order[mid]!]! < at) lo = mid + 1;
      else hi = mid;
    }
    let held = false;
    for (let i = lo; i < order.length && starts[order[i]!]! < at + Math.max(d.byteLength, 1); i++) {
      const v = views[order[i]!]!;
      if (v !== d) heldBy.set(v, d);
      held = true;
    }
    return held;
  };
}

/** A resident buffer kept alive by a view of its memory (see keptMemory). */
const heldBy = new WeakMap<ArrayBufferView, Float32Array>();

// Gradient buffers of the backward pass. An op's backward takes the buffer of a gradient it returns from
// `gradBuffer` (zero-filled: backward kernels accumulate). Such a buffer is referenced only by that one returned
// gradient, so autograd knows when it dies: once the gradient has been consumed (passed to the next op's backward,
// added into another gradient, or copied into a leaf's .grad), autograd hands it back with `recycleGradBuffer`, and
// a later gradient of the same size (in this backward or the next step's) reuses it. A buffer that autograd sees
// referenced twice (an op returned it for two inputs, or passed its incoming gradient through, as add and reshape
// do) is dropped from the set with `untagGradBuffer` and left to the collector.

const gradBuffers = new WeakSet<Float32Array>();

/**
 * A buffer of n elements for a gradient an op's backward returns (see above): zero-filled, or with `overwrite` (the
 * kernel writes every element) as it comes.
 */
export function gradBuffer(op: string, n: number, overwrite = false): Float32Array {
  const out = obtain(op, n, !overwrite);
  gradBuffers.add(out);
  // (a training step also takes back the gradient buffers that autograd could not prove dead)
  if (stepStale !== null) handedOut!.push(out);
  return out;
}

/** Whether d came from gradBuffer and has not been recycled or untagged since. */
export function isGradBuffer(d: Float32Array): boolean {
  return gradBuffers.has(d);
}

/** d is referenced by more than one gradient, or handed to a leaf: never recycle it. */
export function untagGradBuffer(d: Float32Array): void {
  gradBuffers.delete(d);
}

/** d (from gradBuffer) is dead: keep it for the next gradBuffer/takeBuffer of its size. */
export function recycleGradBuffer(d: Float32Array): void {
  if (!gradBuffers.delete(d)) return;
  giveBack(d);
}
