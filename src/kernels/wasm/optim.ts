// SGD's usual updates in WebAssembly SIMD (with momentum past its first step, or without momentum; no Nesterov, not
// maximizing), emitted from this file when the library loads (see encoder.ts). Two ways in (optim.ts): on the resident
// memory (below), where the momentum buffer and usually the gradient live and only the parameter is copied in and out;
// or, for arrays elsewhere, through this thread's own memory: a block of the parameter, its momentum buffer and its
// gradient copied in, `sgd`, the parameter and the buffer copied back.
//
// The arithmetic is optim.ts's JavaScript expression, lane by lane, so the results are bitwise the same:
//   b = fround(fround(b·mu) + damp·fround(g + wd·x));  x = fround(x + negLr·b)
// (without momentum: x = fround(x + negLr·fround(g + wd·x))).
// fround(b·mu) is one f32x4.mul (the float64 product of two float32 values is exact, so rounding it once is the
// float32 product); the other steps are float64 (f64x2) sums of exact products, rounded to float32 once each.
// With wd = 0 the weight-decay term is left out (as the JavaScript loop does: 0·x would turn an infinite x into NaN).

import { block, br, br_if, encodeModule, f32, f32x4, f64x2, i32, local, Locals, loop, v128, ValType, type Expr, type Func } from './encoder.js';
import { growTo, hasSimd128, newMemory, wasm, type WasmMemory } from './features.js';

const { i32: I32, f64: F64, v128: V128 } = ValType;
const get = local.get;

const lo = (v: Expr): Expr => f64x2.promote_low_f32x4(v);
const hi = (v: Expr): Expr => f64x2.promote_low_f32x4(f32x4.high(v));
/** Two f64x2 rounded to one f32x4 (lanes 0, 1 from a). */
const demote2 = (a: Expr, b: Expr): Expr => f32x4.join_low(f32x4.demote_f64x2_zero(a), f32x4.demote_f64x2_zero(b));
/** fround(a + s·b) lane by lane, for float32 vectors a, b and local S holding s in both f64x2 lanes: s·b is exact. */
const addScaled = (a: Expr, S: number, b: Expr): Expr =>
  demote2(f64x2.add(lo(a), f64x2.mul(get(S), lo(b))), f64x2.add(hi(a), f64x2.mul(get(S), hi(b))));
/** `body` once per 16 bytes: local j from 0 to 16·count (count, a param; end, a local). */
const overVectors = (j: number, end: number, count: number, body: Expr[]): Expr[] => [
  local.set(end, i32.shl(get(count), i32.const(2))),
  local.set(j, i32.const(0)),
  block(loop(br_if(1, i32.ge_s(get(j), get(end))), ...body, local.set(j, i32.add(get(j), i32.const(16))), br(0))),
];

/**
 * `sgd{wd}{damp}(x, b, g, count, mu, damp, wd, negLr)`: x, b, g byte addresses of `count` float32 values each,
 * count a multiple of 4 (the caller pads); every scalar is a float32 value passed as an f64 (mu is narrowed
 * exactly). With `unitDamp` (damp = 1, no dampening) b's sum is one f32x4.add: a sum of two float32 values rounded
 * to float64 and then to float32 is the float32 sum (53 ≥ 2·24 + 2 bits: the double rounding is innocuous).
 */
function sgdFunc(decay: boolean, unitDamp: boolean): Func {
  const [x, b, g, count, mu, damp, wd, negLr] = [0, 1, 2, 3, 4, 5, 6, 7];
  const L = new Locals(8);
  const j = L.add(I32), end = L.add(I32);
  const MU = L.add(V128), DAMP = L.add(V128), WD = L.add(V128), LR = L.add(V128);
  const xv = L.add(V128), d = L.add(V128), bm = L.add(V128), bn = L.add(V128);
  const at = (base: number): Expr => i32.add(get(base), get(j));
  return {
    name: `sgd${decay ? 1 : 0}${unitDamp ? 1 : 0}`,
    params: [I32, I32, I32, I32, F64, F64, F64, F64],
    results: [],
    locals: L.types,
    body: [
      local.set(MU, f32x4.splat(f32.demote_f64(get(mu)))),
      local.set(DAMP, f64x2.splat(get(damp))),
      local.set(WD, f64x2.splat(get(wd))),
      local.set(LR, f64x2.splat(get(negLr))),
      ...overVectors(j, end, count, [
        local.set(xv, v128.load(at(x))),
        // d = fround(g + wd·x)
        local.set(d, decay ? addScaled(v128.load(at(g)), WD, get(xv)) : v128.load(at(g))),
        // b = fround(fround(b·mu) + damp·d)
        local.set(bm, f32x4.mul(v128.load(at(b)), get(MU))),
        local.set(bn, unitDamp ? f32x4.add(get(bm), get(d)) : addScaled(get(bm), DAMP, get(d))),
        v128.store(at(b), get(bn)),
        // x = fround(x + negLr·b)
        v128.store(at(x), addScaled(get(xv), LR, get(bn))),
      ]),
    ],
  };
}

/**
 * `sgdp{wd}(x, b, g, count, mu, damp, wd, negLr)`: SGD without momentum (b, mu and damp are not used; the same
 * signature as sgdFunc's), optim.ts's loop for that case lane by lane: d = fround(g + wd·x); x = fround(x + negLr·d),
 * each a float64 sum of an exact product, rounded to float32 once.
 */
function sgdPlainFunc(decay: boolean): Func {
  const [x, g, count, wd, negLr] = [0, 2, 3, 6, 7];
  const L = new Locals(8);
  const j = L.add(I32), end = L.add(I32);
  const WD = L.add(V128), LR = L.add(V128);
  const xv = L.add(V128), d = L.add(V128);
  const at = (base: number): Expr => i32.add(get(base), get(j));
  return {
    name: `sgdp${decay ? 1 : 0}`,
    params: [I32, I32, I32, I32, F64, F64, F64, F64],
    results: [],
    locals: L.types,
    body: [
      local.set(WD, f64x2.splat(get(wd))),
      local.set(LR, f64x2.splat(get(negLr))),
      ...overVectors(j, end, count, [
        local.set(xv, v128.load(at(x))),
        local.set(d, decay ? addScaled(v128.load(at(g)), WD, get(xv)) : v128.load(at(g))),
        v128.store(at(x), addScaled(get(xv), LR, get(d))),
      ]),
    ],
  };
}

/** Adam's weight decay: none, added to the gradient (Adam), or decoupled (AdamW: x = fround(x·decay) first). */
export const ADAM_NONE = 0, ADAM_L2 = 1, ADAM_DECOUPLED = 2;

/**
 * `adam{decay}(x, m, v, g, count, b1, c1, b2, c2, bc2Sqrt, eps, negStepSize, wd, decay)`: Adam's update without
 * amsgrad, not maximizing (src/optim/adam.ts's loop, lane by lane: the same bits). Every scalar is a float32 value
 * passed as an f64. A product of two float32 values rounded to float32 is one f32x4.mul, and so are a sum, a quotient
 * and a square root of float32 values (the float64 result rounded to float32 is the correctly rounded float32 one:
 * 53 ≥ 2·24 + 2 bits); m's update, a float32 plus an exact float64 product rounded once, and L2 decay's
 * fround(g + wd·x) run in f64x2:
 *   g = fround(g + wd·x)  (L2)            x = fround(x·decay)  (decoupled)
 *   m = fround(fround(m·b1) + c1·g);  v = fround(fround(v·b2) + fround(fround(c2·g)·g))
 *   x = fround(x + fround(fround(negStepSize·m) / fround(fround(√v / bc2Sqrt) + eps)))
 */
function adamFunc(mode: number): Func {
  const [x, m, v, g, count, b1, c1, b2, c2, bc2, eps, nss, wd, decay] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13];
  const L = new Locals(14);
  const j = L.add(I32), end = L.add(I32);
  const B1 = L.add(V128), C1 = L.add(V128), B2 = L.add(V128), C2 = L.add(V128), BC2 = L.add(V128), EPS = L.add(V128), NSS = L.add(V128);
  const WD = L.add(V128), DECAY = L.add(V128);
  const xv = L.add(V128), gv = L.add(V128), mb = L.add(V128), mn = L.add(V128), vn = L.add(V128);
  const at = (base: number): Expr => i32.add(get(base), get(j));
  const f32splat = (a: number): Expr => f32x4.splat(f32.demote_f64(get(a)));
  const body: Expr[] = [local.set(xv, v128.load(at(x))), local.set(gv, v128.load(at(g)))];
  if (mode === ADAM_L2) {
    body.push(local.set(gv, addScaled(get(gv), WD, get(xv))));
  } else if (mode === ADAM_DECOUPLED) {
    body.push(local.set(xv, f32x4.mul(get(xv), get(DECAY))));
  }
  body.push(
    local.set(mb, f32x4.mul(v128.load(at(m)), get(B1))),
    local.set(mn, addScaled(get(mb), C1, get(gv))),
    v128.store(at(m), get(mn)),
    local.set(vn, f32x4.add(f32x4.mul(v128.load(at(v)), get(B2)), f32x4.mul(f32x4.mul(get(C2), get(gv)), get(gv)))),
    v128.store(at(v), get(vn)),
    v128.store(at(x), f32x4.add(get(xv), f32x4.div(f32x4.mul(get(NSS), get(mn)),
      f32x4.add(f32x4.div(f32x4.sqrt(get(vn)), get(BC2)), get(EPS))))),
  );
  return {
    name: `adam${mode}`,
    params: [I32, I32, I32, I32, I32, F64, F64, F64, F64, F64, F64, F64, F64, F64],
    results: [],
    locals: L.types,
    body: [
      local.set(B1, f32splat(b1)),
      local.set(C1, f64x2.splat(get(c1))),
      local.set(B2, f32splat(b2)),
      local.set(C2, f32splat(c2)),
      local.set(BC2, f32splat(bc2)),
      local.set(EPS, f32splat(eps)),
      local.set(NSS, f32splat(nss)),
      local.set(WD, f64x2.splat(get(wd))),
      local.set(DECAY, f32splat(decay)),
      ...overVectors(j, end, count, body),
    ],
  };
}

/** The module's bytes (importing env.mem, a shared memory when `shared`). */
export function optimModule(shared = false): Uint8Array {
  return encodeModule([
    sgdFunc(false, false), sgdFunc(false, true), sgdFunc(true, false), sgdFunc(true, true), sgdPlainFunc(false), sgdPlainFunc(true),
    adamFunc(ADAM_NONE), adamFunc(ADAM_L2), adamFunc(ADAM_DECOUPLED),
  ], 1, shared);
}

type SgdFn = (x: number, b: number, g: number, count: number, mu: number, damp: number, wd: number, negLr: number) => void;

/** The six update kernels, in the order `sgdIndex` picks from. */
export type SgdKernels = [SgdFn, SgdFn, SgdFn, SgdFn, SgdFn, SgdFn];

/** The kernel for these hyperparameters: momentum 2·(wd ≠ 0) + (damp = 1); without momentum 4 + (wd ≠ 0). */
export const sgdIndex = (mu: number, wd: number, damp: number): number =>
  mu === 0 ? 4 + (wd !== 0 ? 1 : 0) : (wd !== 0 ? 2 : 0) + (damp === 1 ? 1 : 0);

const kernelsOf = (e: Record<string, unknown>): SgdKernels =>
  (['sgd00', 'sgd01', 'sgd10', 'sgd11', 'sgdp0', 'sgdp1'] as const).map((k) => e[k] as SgdFn) as SgdKernels;

export type AdamFn = (x: number, m: number, v: number, g: number, count: number, b1: number, c1: number, b2: number, c2: number,
  bc2Sqrt: number, eps: number, negStepSize: number, wd: number, decay: number) => void;
/** adam[ADAM_NONE | ADAM_L2 | ADAM_DECOUPLED] */
export type AdamKernels = [AdamFn, AdamFn, AdamFn];
const adamOf = (e: Record<string, unknown>): AdamKernels => [e.adam0 as AdamFn, e.adam1 as AdamFn, e.adam2 as AdamFn];

/** This thread's optimizer kernels over their own memory, with a float32 view of it. */
export interface SimdOptim {
  /** sgd[sgdIndex(mu, wd, damp)] */
  sgd: SgdKernels;
  adam: AdamKernels;
  f: Float32Array;
}

let current: SimdOptim | null = null;
let memory: WasmMemory | null = null;

/** This thread's optimizer kernels with a memory of at least `bytes` bytes (grown when needed; views renewed). */
export function simdOptim(bytes: number): SimdOptim {
  if (current === null) {
    memory = newMemory(bytes);
    const e = new wasm!.Instance(new wasm!.Module(optimModule()), { env: { mem: memory } }).exports;
    current = { sgd: kernelsOf(e), adam: adamOf(e), f: new Float32Array(memory.buffer) };
  }
  if (growTo(memory!, bytes)) {
    current = { ...current, f: new Float32Array(memory!.buffer) };
  }
  return current;
}

/**
 * The optimizer's resident memory: one shared wasm memory per thread that allocates from it (the main thread; the
 * workers get it with each task) holding SGD's momentum buffers and the gradients that `zeroGrad(false)` allocates.
 * The update then runs on them in place; only the parameter (and a gradient that lies elsewhere) is copied in and
 * out, a block at a time, through one of the per-thread slots below. The first page holds the slots' busy flags.
 *
 * Regions are handed out zero-filled, 16-byte aligned and rounded up to 4 floats (the kernel's last vector may run
 * past a length that is not a multiple of 4 into the region's own padding). A region returns to a free list when its
 * Float32Array is collected (a subarray of it must not outlive it), and serves the next request of its size, or of
 * more than half its size when no free region fits exactly (so the memory, which never shrinks, does not keep regions
 * of sizes no longer asked for beside new ones: an epoch's smaller last batch, another model).
 */
export interface Resident {
  mem: WasmMemory;
  /** Identifies the memory across threads (a worker receives a new Memory object with every task). */
  id: number;
}

/** Most threads that hold a slot at once (flags in the memory's first page). */
const MAX_SLOTS = 256;
/** Values per pass through wasm memory (optim.ts): a pass's blocks (192 KB) stay in the core's L2 cache. */
export const OPTIM_BLOCK = 16384;
/** Floats per slot: a block of the parameter and one of the gradient (when that is not resident). */
const SLOT_FLOATS = 2 * OPTIM_BLOCK;
const PAGE = 65536;
const MAX_PAGES = 65536;

let resident: Resident | null | undefined;
/** The memory's SharedArrayBuffer objects (a new one after each growth; earlier views keep theirs). */
const buffers = new WeakSet<ArrayBufferLike>();
let top = PAGE;
const free = new Map<number, number[]>();
const slots: number[] = [];
/** Puts a region back on the free list of its size. */
function freeRegion(addr: number, bytes: number): void {
  const list = free.get(bytes);
  if (list) list.push(addr);
  else free.set(bytes, [addr]);
}
const registry = typeof FinalizationRegistry === 'function'
  ? new FinalizationRegistry<[number, number]>(([addr, bytes]) => freeRegion(addr, bytes))
  : null;

/** The size in bytes of the region of each view residentAlloc made. */
const regionBytes = new WeakMap<Float32Array, number>();

/** The resident memory, created at the first call; null where there is no shared wasm memory with SIMD. */
export function residentMemory(): Resident | null {
  if (resident !== undefined) return resident;
  resident = null;
  if (!hasSimd128 || typeof SharedArrayBuffer !== 'function' || registry === null) return null;
  try {
    // a shared memory cannot move: the engine reserves its maximum (4 GiB) as address space up front
    const mem = new wasm!.Memory({ initial: 2, maximum: MAX_PAGES, shared: true });
    if (!(mem.buffer instanceof SharedArrayBuffer)) return null;
    buffers.add(mem.buffer);
    resident = { mem, id: 1 + Math.floor(Math.random() * 2 ** 30) };
  } catch {
    resident = null;
  }
  return resident;
}

/**
 * A zero-filled resident Float32Array of n elements, or null (no resident memory, or it is full, or a new region would
 * take the memory past `limit` bytes: a free region still serves).
 */
export function residentAlloc(n: number, limit = MAX_PAGES * PAGE): Float32Array | null {
  const r = residentMemory();
  if (r === null) return null;
  let bytes = Math.max(16, Math.ceil(n / 4) * 16);
  let addr = free.get(bytes)?.pop();
  if (addr === undefined) {
    // the shortest free region of up to twice the size, whole (it returns to the free list of its own size)
    let best = Infinity;
    for (const [size, list] of free) if (size > bytes && size <= 2 * bytes && size < best && list.length > 0) best = size;
    if (best !== Infinity) {
      addr = free.get(best)!.pop();
      bytes = best;
    }
  }
  const buffer = (): ArrayBufferLike => {
    const b = r.mem.buffer;
    buffers.add(b);
    return b;
  };
  if (addr !== undefined) {
    // a region handed out before (fresh memory is zero already); 8-byte stores: V8 fills shared memory element by element
    new BigInt64Array(buffer(), addr, bytes / 8).fill(0n);
  } else {
    if (top + bytes > Math.min(limit, MAX_PAGES * PAGE)) return null;
    try {
      growTo(r.mem, top + bytes);
    } catch {
      return null;
    }
    addr = top;
    top += bytes;
  }
  const view = new Float32Array(buffer(), addr, n);
  registry!.register(view, [addr, bytes], view);
  regionBytes.set(view, bytes);
  return view;
}

/**
 * Frees the region of `view` (made by residentAlloc) now rather than when the view is collected: for an owner that
 * drops a view nothing else holds (no subarray of it either), such as the arena's pool. False (nothing done) for an
 * array that is not such a view.
 */
export function residentFree(view: Float32Array): boolean {
  if (residentAddress(view) < 0 || !registry!.unregister(view)) return false;
  freeRegion(view.byteOffset, regionBytes.get(view)!);
  return true;
}

/** a's byte address in the resident memory, or −1 when it lies elsewhere. */
export function residentAddress(a: Float32Array): number {
  return resident && buffers.has(a.buffer) ? a.byteOffset : -1;
}

/** Views of the slots, kept for the process. */
const slotViews: Float32Array[] = [];

/** The byte addresses of at least `count` slots (fewer if the memory is full). */
export function residentSlots(count: number): number[] {
  while (slots.length < Math.min(count, MAX_SLOTS)) {
    const s = residentAlloc(SLOT_FLOATS);
    if (s === null) break;
    slots.push(s.byteOffset);
    slotViews.push(s);
  }
  return slots;
}

/** Takes a free slot among the first `count` (its index), or −1 when every one is busy. */
export function claimSlot(mem: WasmMemory, count: number): number {
  const flags = new Int32Array(mem.buffer, 0, MAX_SLOTS);
  for (let i = 0; i < count; i++) if (Atomics.compareExchange(flags, i, 0, 1) === 0) return i;
  return -1;
}

export function releaseSlot(mem: WasmMemory, i: number): void {
  Atomics.store(new Int32Array(mem.buffer, 0, MAX_SLOTS), i, 0);
}

let onResident: { id: number; sgd: SgdKernels; adam: AdamKernels } | null = null;

function residentModule(r: Resident): { sgd: SgdKernels; adam: AdamKernels } {
  if (onResident === null || onResident.id !== r.id) {
    const e = new wasm!.Instance(new wasm!.Module(optimModule(true)), { env: { mem: r.mem } }).exports;
    onResident = { id: r.id, sgd: kernelsOf(e), adam: adamOf(e) };
  }
  return onResident;
}

/** This thread's SGD kernels over the resident memory `r` (a worker instantiates them at its first task). */
export const residentKernels = (r: Resident): SgdKernels => residentModule(r).sgd;

/** This thread's Adam kernels over the resident memory `r`. */
export const residentAdam = (r: Resident): AdamKernels => residentModule(r).adam;
