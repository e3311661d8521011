// Optimizer update kernels: one parameter's update, split into fixed-size chunks across threads (every element is
// updated on its own, so results do not depend on the split). The arithmetic is PyTorch's float32 op by op: see the
// convention at the top of src/optim/optimizer.ts.

import { config } from '../config.js';
import { getParallelBackend, parallelFor, registerTask } from './parallel.js';
import { kernelBackend } from './wasm/features.js';
import { claimSlot, OPTIM_BLOCK, releaseSlot, residentAddress, residentAlloc, residentKernels, residentMemory, residentSlots, sgdIndex, simdOptim, type Resident } from './wasm/optim.js';

/** Elements per work unit: a function of the parameter's length only. */
const CHUNK = 65536;

const fround = Math.fround;

/** SGD hyperparameters, already rounded to float32 as torch casts them (negLr = fround(−lr), damp = fround(1 − dampening)). */
export interface SgdParams {
  negLr: number;
  wd: number;
  /** Momentum factor; 0: no momentum buffer. */
  mu: number;
  damp: number;
  nesterov: boolean;
  maximize: boolean;
  /** The momentum buffer's first step: buf = d (its old contents are not read). */
  first: boolean;
}

interface SgdTask extends SgdParams {
  n: number;
}

/**
 * One SGD step of one parameter, in place: x (the parameter), buf (its momentum buffer, null when mu = 0), g (its
 * gradient). Per element, with g negated if maximize:
 *   d = g + wd·x;  buf = first ? d : mu·buf + damp·d;  d = nesterov ? d + mu·buf : buf;  x = x − lr·d
 */
export function sgdUpdate(x: Float32Array, buf: Float32Array | null, g: Float32Array, q: SgdParams): void {
  const n = x.length;
  parallelFor<SgdTask>({
    kernel: 'optim.sgd', bufs: { x, buf, g }, writes: buf ? ['x', 'buf'] : ['x'], overwrites: q.first && buf ? ['buf'] : [],
    params: { ...q, n }, units: Math.ceil(n / CHUNK), cost: 4 * n,
  });
}

registerTask<SgdTask>('optim.sgd', (bufs, q, u0, u1) => {
  sgdRange(bufs.x as Float32Array, bufs.buf as Float32Array | null, bufs.g as Float32Array, u0 * CHUNK, Math.min(q.n, u1 * CHUNK), q);
});

/** The update of elements [i0, i1) of one parameter (see sgdUpdate). */
function sgdRange(x: Float32Array, b: Float32Array | null, g: Float32Array, i0: number, i1: number, q: SgdParams): void {
  const { negLr, wd, mu, damp, nesterov, maximize, first } = q;
  if (b === null) {
    if (!maximize && kernelBackend() === 'simd') {
      sgdSimd(x, null, g, i0, i1, q);
      return;
    }
    for (let i = i0; i < i1; i++) {
      let d = maximize ? -g[i]! : g[i]!;
      if (wd !== 0) d = fround(d + wd * x[i]!);
      x[i] = x[i]! + negLr * d;
    }
    return;
  }
  if (!maximize && !nesterov && !first) {
    // The usual case (plain momentum), without the per-element flag tests.
    if (kernelBackend() === 'simd') {
      sgdSimd(x, b, g, i0, i1, q);
      return;
    }
    if (wd !== 0) {
      for (let i = i0; i < i1; i++) {
        const bi = fround(fround(b[i]! * mu) + damp * fround(g[i]! + wd * x[i]!));
        b[i] = bi;
        x[i] = x[i]! + negLr * bi;
      }
    } else {
      for (let i = i0; i < i1; i++) {
        const bi = fround(fround(b[i]! * mu) + damp * g[i]!);
        b[i] = bi;
        x[i] = x[i]! + negLr * bi;
      }
    }
    return;
  }
  for (let i = i0; i < i1; i++) {
    let d = maximize ? -g[i]! : g[i]!;
    if (wd !== 0) d = fround(d + wd * x[i]!);
    // torch: buf = clone(d) at the first step, else buf.mul_(momentum).add_(d, alpha=1 - dampening)
    const bi = first ? d : fround(fround(b[i]! * mu) + damp * d);
    b[i] = bi;
    d = nesterov ? fround(d + mu * bi) : bi;
    x[i] = x[i]! + negLr * d;
  }
}

interface SgdManyTask extends SgdParams {
  /** Parameter k's length, and its first unit (units[k] … units[k + 1] − 1; units has one entry more). */
  lens: number[];
  units: number[];
  /** Set when the momentum buffers lie in the resident memory (see sgdResident). */
  res: ResidentTask | null;
}

interface ResidentTask extends Resident {
  /**
   * Byte addresses of the parameters (−1: not resident, or a length that is not a multiple of 4, whose last vector
   * would run past it), the momentum buffers and the gradients (−1: a gradient that is not resident).
   */
  x: number[];
  b: number[];
  g: number[];
  slots: number[];
}

/**
 * A zero-filled Float32Array for an optimizer's state or a gradient, in the optimizer's resident memory (shared wasm
 * memory, where the SIMD update runs on it in place: see wasm/optim.ts), or null where that memory is unavailable.
 */
export function residentBuffer(n: number): Float32Array | null {
  return kernelBackend() === 'simd' ? residentAlloc(n) : null;
}

/**
 * A zero-filled Float32Array for a layer's parameter in the resident memory, where SGD updates it in place with its
 * momentum buffer and gradient, or null (no resident memory, or no room). A model's parameters are made there only
 * while the memory stays within config.residentParamBytes: the memory never shrinks, and a region comes back only
 * when its array is collected, which a loop making model after model outruns.
 */
export function residentParam(n: number): Float32Array | null {
  return kernelBackend() === 'simd' && config.residentParamBytes > 0 ? residentAlloc(n, config.residentParamBytes) : null;
}

/** Whether a is in the optimizer's resident memory. */
export const isResident = (a: Float32Array): boolean => residentAddress(a) >= 0;

/**
 * sgdUpdate of several parameters with the same hyperparameters, each with its momentum buffer (null without
 * momentum), as one task: the
 * units are the parameters' CHUNK-element pieces in order, so a step hands the threads one call instead of one per
 * parameter (ResNet-18: 62), and small parameters share the threads with the big ones. Each element's arithmetic is
 * sgdUpdate's: the same bits.
 */
export function sgdUpdateMany(xs: readonly Float32Array[], bufs: readonly (Float32Array | null)[], gs: readonly Float32Array[], q: SgdParams): void {
  const named: Record<string, Float32Array | null> = {}, writes: string[] = [], overwrites: string[] = [];
  const lens: number[] = [], units: number[] = [0];
  let n = 0;
  xs.forEach((x, k) => {
    named[`x${k}`] = x;
    named[`b${k}`] = bufs[k]!;
    named[`g${k}`] = gs[k]!;
    writes.push(`x${k}`);
    if (bufs[k]) writes.push(`b${k}`);
    if (q.first) overwrites.push(`b${k}`);
    lens.push(x.length);
    units.push(units[k]! + Math.ceil(x.length / CHUNK));
    n += x.length;
  });
  const r = residentMemory();
  let res: ResidentTask | null = null;
  // Without momentum there is no buffer: the parameter and the gradient are updated in place where both are resident.
  const plain = q.mu === 0;
  if (r !== null && kernelBackend() === 'simd' && !q.first && !q.maximize && !q.nesterov &&
    (plain ? xs.some(isResident) : bufs.every((b) => b !== null && isResident(b)))) {
    const x = xs.map((a) => (a.length % 4 === 0 ? residentAddress(a) : -1));
    res = { ...r, x, b: bufs.map((b) => (b === null ? -1 : residentAddress(b))), g: gs.map(residentAddress), slots: residentSlots(getParallelBackend()?.threads ?? 1) };
  }
  parallelFor<SgdManyTask>({ kernel: 'optim.sgdMany', bufs: named, writes, overwrites, params: { ...q, lens, units, res }, units: units[xs.length]!, cost: 4 * n });
}

registerTask<SgdManyTask>('optim.sgdMany', (bufs, q, u0, u1) => {
  let k = 0;
  for (let u = u0; u < u1; u++) {
    while (q.units[k + 1]! <= u) k++;
    const i0 = (u - q.units[k]!) * CHUNK, i1 = Math.min(q.lens[k]!, i0 + CHUNK);
    if (q.res !== null && sgdResident(bufs[`x${k}`] as Float32Array, q.res.x[k]!, q.res.b[k]!, bufs[`g${k}`] as Float32Array, q.res.g[k]!, i0, i1, q, q.res)) continue;
    sgdRange(bufs[`x${k}`] as Float32Array, bufs[`b${k}`] as Float32Array | null, bufs[`g${k}`] as Float32Array, i0, i1, q);
  }
});

/**
 * The plain-momentum update of [i0, i1) (or, with b null, the update without momentum) on the SIMD backend,
 * OPTIM_BLOCK values at a time: x, buf and g copied into wasm memory, updated there (wasm/optim.ts: the same
 * arithmetic as the loops above, bit for bit), x and buf copied back. A block's
 * last values past a multiple of 4 are zeros in wasm memory (updated, never copied back). One thread, ResNet-18's
 * 11M parameters: 30 → 22 CPU ms (the copies are 14 of them).
 */
function sgdSimd(x: Float32Array, b: Float32Array | null, g: Float32Array, i0: number, i1: number, q: SgdParams): void {
  const m = simdOptim(3 * OPTIM_BLOCK * 4);
  const X = 0, B = OPTIM_BLOCK, G = 2 * OPTIM_BLOCK;
  const fn = m.sgd[sgdIndex(q.mu, q.wd, q.damp)]!;
  for (let s = i0; s < i1; s += OPTIM_BLOCK) {
    const len = Math.min(OPTIM_BLOCK, i1 - s), len4 = (len + 3) & ~3;
    const f = m.f;
    f.set(x.subarray(s, s + len), X);
    if (b !== null) f.set(b.subarray(s, s + len), B);
    f.set(g.subarray(s, s + len), G);
    for (let k = len; k < len4; k++) f[X + k] = f[B + k] = f[G + k] = 0;
    fn(X * 4, B * 4, G * 4, len4, q.mu, q.damp, q.wd, q.negLr);
    x.set(f.subarray(X, X + len), s);
    if (b !== null) b.set(f.subarray(B, B + len), s);
  }
}

/**
 * sgdSimd with the momentum buffer (none without momentum; and the parameter and the gradient, when xAddr, gAddr ≥ 0)
 * in the resident memory: updated there in place, with only a parameter or gradient that is not resident copied through one of the
 * slots, a block at a time. The same kernel as sgdSimd, so the same bits. False (nothing done) when a slot is needed
 * and none is free.
 */
function sgdResident(x: Float32Array, xAddr: number, bAddr: number, g: Float32Array, gAddr: number, i0: number, i1: number, q: SgdParams, r: ResidentTask): boolean {
  const fn = residentKernels(r)[sgdIndex(q.mu, q.wd, q.damp)]!;
  if (xAddr >= 0 && gAddr >= 0) {
    // (x's length is a multiple of 4, and so is i1 − i0: the last vector ends at x's end, or at a chunk's)
    fn(xAddr + i0 * 4, bAddr + i0 * 4, gAddr + i0 * 4, (i1 - i0 + 3) & ~3, q.mu, q.damp, q.wd, q.negLr);
    return true;
  }
  const slot = claimSlot(r.mem, r.slots.length);
  if (slot < 0) return false;
  try {
    const f = new Float32Array(r.mem.buffer);
    const X = r.slots[slot]! >> 2, G = X + OPTIM_BLOCK;
    for (let s = i0; s < i1; s += OPTIM_BLOCK) {
      const len = Math.min(OPTIM_BLOCK, i1 - s), len4 = (len + 3) & ~3;
      f.set(x.subarray(s, s + len), X);
      if (gAddr < 0) f.set(g.subarray(s, s + len), G);
      // past len (to a multiple of 4): padding of the slot and of the resident regions, never copied back
      fn(X * 4, bAddr + s * 4, gAddr < 0 ? G * 4 : gAddr + s * 4, len4, q.mu, q.damp, q.wd, q.negLr);
      x.set(f.subarray(X, X + len), s);
    }
  } finally {
    releaseSlot(r.mem, slot);
  }
  return true;
}
