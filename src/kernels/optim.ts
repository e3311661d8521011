// Optimizer update kernels: one parameter's update, split into fixed-size chunks across threads (every element is
// updated on its own, so results do not depend on the split). The arithmetic is PyTorch's float32 op by op: see the
// convention at the top of src/optim/optimizer.ts.

import { config } from '../config.js';
import { getParallelBackend, parallelFor, registerTask } from './parallel.js';
import { kernelBackend } from './wasm/features.js';
import {
  ADAM_DECOUPLED, ADAM_L2, claimSlot, OPTIM_BLOCK, releaseSlot, residentAdam, residentAddress, residentAlloc, residentKernels, residentMemory, residentSlots, sgdIndex,
  simdOptim, type Resident,
} from './wasm/optim.js';

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

/** Adam's hyperparameters for one group, each a float32 value as torch casts them (see src/optim/adam.ts). */
export interface AdamParams {
  b1: number;
  /** 1 − β1, 1 − β2 */
  c1: number;
  b2: number;
  c2: number;
  eps: number;
  /** Weight decay added to the gradient (ADAM_L2), or the decoupled factor 1 − lr·wd (ADAM_DECOUPLED). */
  mode: number;
  wd: number;
  decay: number;
  amsgrad: boolean;
  maximize: boolean;
}

/** Per parameter: −lr/(1 − β1^t) and √(1 − β2^t), rounded to float32 (t is the parameter's own step count). */
export interface AdamStep {
  negStepSize: number;
  bc2Sqrt: number;
}

interface AdamTask extends AdamParams {
  steps: AdamStep[];
  lens: number[];
  units: number[];
  /** Byte addresses of x, m, v and g when all four are resident (x's length a multiple of 4), else −1. */
  res: (Resident & { at: number[][] }) | null;
}

/**
 * One Adam/AdamW step of several parameters (x, its gradient g, its state m = exp_avg, v = exp_avg_sq and with
 * amsgrad vmax = max_exp_avg_sq), as one task over CHUNK-element units (each element is updated on its own: the same
 * bits for any split and thread count). The arithmetic is PyTorch's float32 op by op (see adamRange). On the SIMD
 * backend, without amsgrad and not maximizing, it runs in wasm: in place where x, m, v and g lie in the resident
 * memory, else through this thread's own wasm memory a block at a time (the same bits).
 */
export function adamUpdateMany(xs: readonly Float32Array[], ms: readonly Float32Array[], vs: readonly Float32Array[], vmaxs: readonly (Float32Array | null)[],
  gs: readonly Float32Array[], steps: readonly AdamStep[], q: AdamParams): void {
  const named: Record<string, Float32Array | null> = {}, writes: string[] = [];
  const lens: number[] = [], units: number[] = [0];
  let n = 0;
  xs.forEach((x, k) => {
    Object.assign(named, { [`x${k}`]: x, [`m${k}`]: ms[k]!, [`v${k}`]: vs[k]!, [`w${k}`]: vmaxs[k] ?? null, [`g${k}`]: gs[k]! });
    writes.push(`x${k}`, `m${k}`, `v${k}`);
    if (vmaxs[k]) writes.push(`w${k}`);
    lens.push(x.length);
    units.push(units[k]! + Math.ceil(x.length / CHUNK));
    n += x.length;
  });
  const r = residentMemory();
  let res: AdamTask['res'] = null;
  if (r !== null && kernelBackend() === 'simd' && !q.amsgrad && !q.maximize) {
    const at = xs.map((x, k) => {
      const a = [x.length % 4 === 0 ? residentAddress(x) : -1, residentAddress(ms[k]!), residentAddress(vs[k]!), residentAddress(gs[k]!)];
      return a.every((v) => v >= 0) ? a : [-1];
    });
    if (at.some((a) => a[0]! >= 0)) res = { ...r, at };
  }
  parallelFor<AdamTask>({ kernel: 'optim.adamMany', bufs: named, writes, params: { ...q, steps: [...steps], lens, units, res }, units: units[xs.length]!, cost: 12 * n });
}

registerTask<AdamTask>('optim.adamMany', (bufs, q, u0, u1) => {
  let k = 0;
  for (let u = u0; u < u1; u++) {
    while (q.units[k + 1]! <= u) k++;
    const i0 = (u - q.units[k]!) * CHUNK, i1 = Math.min(q.lens[k]!, i0 + CHUNK);
    const [x, m, v, w, g] = (['x', 'm', 'v', 'w', 'g'] as const).map((b) => bufs[`${b}${k}`] as Float32Array | null);
    const st = q.steps[k]!;
    const at = q.res?.at[k];
    if (at !== undefined && at[0]! >= 0) {
      const [xa, ma, va, ga] = at as [number, number, number, number];
      residentAdam(q.res!)[q.mode]!(xa + 4 * i0, ma + 4 * i0, va + 4 * i0, ga + 4 * i0, (i1 - i0 + 3) & ~3, q.b1, q.c1, q.b2, q.c2, st.bc2Sqrt, q.eps,
        st.negStepSize, q.wd, q.decay);
    } else if (kernelBackend() === 'simd' && !q.amsgrad && !q.maximize) {
      adamSimd(x!, m!, v!, g!, i0, i1, q, st);
    } else {
      adamRange(x!, m!, v!, w ?? null, g!, i0, i1, q, st);
    }
  }
});

/** adamUpdateMany's update of elements [i0, i1) of one parameter, in JavaScript: PyTorch's float32 ops. */
function adamRange(x: Float32Array, m: Float32Array, v: Float32Array, vmax: Float32Array | null, g: Float32Array, i0: number, i1: number, q: AdamParams, st: AdamStep): void {
  const { b1, c1, b2, c2, eps, mode, wd, decay, maximize } = q;
  const { negStepSize, bc2Sqrt } = st;
  for (let i = i0; i < i1; i++) {
    let gi = maximize ? -g[i]! : g[i]!;
    if (mode === ADAM_DECOUPLED) x[i] = x[i]! * decay;
    else if (mode === ADAM_L2) gi = fround(gi + wd * x[i]!);
    const mi = fround(fround(m[i]! * b1) + c1 * gi); // exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
    m[i] = mi;
    // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2): value·g rounded, ·g rounded, + rounded
    let vi = fround(fround(v[i]! * b2) + fround(fround(c2 * gi) * gi));
    v[i] = vi;
    if (vmax !== null) {
      vi = Math.max(vmax[i]!, vi);
      vmax[i] = vi;
    }
    const denom = fround(fround(fround(Math.sqrt(vi)) / bc2Sqrt) + eps); // (sqrt(v) / bc2_sqrt).add_(eps)
    // param.addcdiv_(exp_avg, denom, value=-step_size): the kernel evaluates self + value * t1 / t2 left to right
    x[i] = x[i]! + fround(fround(negStepSize * mi) / denom);
  }
}

/** adamRange on the SIMD backend (no amsgrad, not maximizing) through this thread's wasm memory, a block at a time. */
function adamSimd(x: Float32Array, m: Float32Array, v: Float32Array, g: Float32Array, i0: number, i1: number, q: AdamParams, st: AdamStep): void {
  const w = simdOptim(4 * OPTIM_BLOCK * 4);
  const X = 0, M = OPTIM_BLOCK, V = 2 * OPTIM_BLOCK, G = 3 * OPTIM_BLOCK;
  const fn = w.adam[q.mode]!;
  for (let s = i0; s < i1; s += OPTIM_BLOCK) {
    const len = Math.min(OPTIM_BLOCK, i1 - s), len4 = (len + 3) & ~3;
    const f = w.f;
    f.set(x.subarray(s, s + len), X);
    f.set(m.subarray(s, s + len), M);
    f.set(v.subarray(s, s + len), V);
    f.set(g.subarray(s, s + len), G);
    for (let k = len; k < len4; k++) f[X + k] = f[M + k] = f[V + k] = f[G + k] = 0;
    fn(X * 4, M * 4, V * 4, G * 4, len4, q.b1, q.c1, q.b2, q.c2, st.bc2Sqrt, q.eps, st.negStepSize, q.wd, q.decay);
    x.set(f.subarray(X, X + len), s);
    m.set(f.subarray(M, M + len), s);
    v.set(f.subarray(V, V + len), s);
  }
}
