// The SIMD backend of batchnorm.ts's training kernels. Its work units are blocks of whole images (every channel):
// a unit's block of a tensor is one contiguous range, copied into the thread's wasm memory at once, and where the
// tensors are in shared memory (a training step's, see fusion/arena.ts) the units run on the worker threads.
//
// The statistics need every image, so each kernel runs in two parallel passes with the per-channel totals made
// in between on the calling thread:
//   forward:  1. each unit: per channel, the sum of its values and the sum of squared deviations from the unit's
//                own mean (two passes over the block in wasm memory, as PyTorch's two-pass variance);
//             2. totals, in unit order: mean = Σ sums / M, and Σ(x − mean)² = Σ_u (ss_u + m_u·(mean_u − mean)²)
//                (the exact decomposition of the squared deviations over the units, Chan et al.'s parallel
//                variance); then each unit: y = relu?(x·α + β (+ r)).
//   backward: 1. each unit: the ReLU-masked gradient g (stored as the residual's gradient when wanted), Σ g and
//                Σ g·(x − mean) per channel;  2. totals in unit order, then each unit: dx (+)= its formula.
// The unit boundaries depend on the shape only, and the totals are added in unit order, so the results are
// bitwise the same on any number of threads (and whether the buffers are shared or not). The statistics and the
// float64 → float32 formulas are batchnorm.ts's; the order of the float64 sums differs from its JavaScript kernels.
//
// Where every tensor of a call lies in the resident memory (wasm/optim.ts: a training step's buffers, see
// fusion/arena.ts), the kernels run on them in place: no block is copied in or out (a call's `place` gives the
// tensors' byte addresses), and the work units are blocks of channels, each channel's passes in one (see the end
// of this file). The functions, the plane walks and the order of the sums are the same, so the results are the
// same bits.

import { noteFinite } from './finite.js';
import { allShared, parallelFor, registerTask, sharedFloat64 } from './parallel.js';
import { laneTotal, residentBatchNorm, simdBatchNorm, type SimdBatchNorm } from './wasm/batchnorm.js';
import { residentAddress, residentAlloc, residentMemory, type Resident } from './wasm/optim.js';

/** The shape of a task, its images per unit, the kernel call it belongs to (see keepBlocks), and where it runs in place. */
interface UnitParams {
  n: number;
  c: number;
  hw: number;
  perUnit: number;
  call: number;
  place: Place | null;
}

/**
 * Images per work unit: up to 8 units (a power of two, so 2 and 4 threads get even shares), each of at least
 * 1024 values per channel: a unit's kernels make a few wasm calls per channel, which on small planes cost more than
 * their values (ResNet-18's 8×512×2×2 is one unit).
 */
function imageUnits(n: number, hw: number): number {
  let units = 8;
  while (units > 1 && (n * hw) / units < 1024) units >>= 1;
  return Math.ceil(n / Math.min(units, n));
}

const unitCount = (q: UnitParams): number => Math.ceil(q.n / q.perUnit);

/** Unit u's images [i0, i0 + nn) and its block's range [from, to) in a tensor. */
function unitRange(q: UnitParams, u: number): { nn: number; from: number; to: number } {
  const i0 = u * q.perUnit, nn = Math.min(q.n, i0 + q.perUnit) - i0;
  return { nn, from: i0 * q.c * q.hw, to: (i0 + nn) * q.c * q.hw };
}

/** Bytes of a unit's block of one tensor, rounded up to 16. */
const blockBytes = (q: UnitParams, nn: number): number => (nn * q.c * q.hw * 4 + 15) & ~15;

// This thread's wasm memory: the lane sums a function leaves (OUT, up to 12 doubles), a finiteness check (FIN),
// then from BLOCKS the blocks the first pass of the current call kept (keepBlocks), then the second pass's others.
const OUT = 0, FIN = 96, BLOCKS = 128;

/**
 * A call in place: the resident memory, and the byte addresses there of the call's tensors (−1: absent) and of its
 * units' OUT/FIN areas (UNIT_AREA bytes per unit from `out`).
 */
interface Place extends Resident {
  at: Record<string, number>;
  out: number;
}

const UNIT_AREA = 128, MAX_UNITS = 8;
/** The calling thread's OUT/FIN areas in the resident memory (kept for the process). */
let unitAreas: Float32Array | null = null;

/**
 * The place of a call whose tensors (null: absent) all lie in the resident memory, apart from each other, else null
 * (the kernels then copy blocks through this thread's memory, where an output may also be an input).
 */
function residentPlace(tensors: Record<string, Float32Array | null>): Place | null {
  const at: Record<string, number> = {};
  const names = Object.keys(tensors);
  for (let i = 0; i < names.length; i++) {
    const t = tensors[names[i]!]!, a = t === null ? -1 : residentAddress(t);
    at[names[i]!] = a;
    if (t === null) continue;
    if (a < 0) return null;
    // (up to 5 tensors: each against those before it)
    for (let j = 0; j < i; j++) {
      const o = tensors[names[j]!]!;
      if (o !== null && a < at[names[j]!]! + o.byteLength && at[names[j]!]! < a + t.byteLength) return null;
    }
  }
  // (a tensor is resident only where this thread made the resident memory)
  const r = residentMemory()!;
  unitAreas ??= residentAlloc((MAX_UNITS * UNIT_AREA) / 4);
  return unitAreas === null ? null : { mem: r.mem, id: r.id, at, out: unitAreas.byteOffset };
}

/** A task's tensors when it copies them; none in place (the tasks find them in the resident memory). */
const copied = (place: Place | null, tensors: Record<string, Float32Array | null>): Record<string, Float32Array | null> =>
  (place !== null ? {} : tensors);

/** Unit u's OUT area (its FIN is 96 bytes on). */
const unitOut = (pl: Place, u: number): number => pl.out + u * UNIT_AREA;

/** Which call this thread's kept blocks belong to, and where each of its units' blocks start (bytes). */
let keptCall = -1, keptEnd = BLOCKS;
const keptAt = new Map<number, number>();

/**
 * The first pass of call `call` keeps unit u's blocks (`bytes` of them) in this thread's memory for the second
 * pass: when the same thread runs unit u's second pass (always on one thread), it uses them instead of copying
 * and recomputing them (the same values either way). Returns where they go.
 */
function keepBlocks(call: number, u: number, bytes: number): number {
  if (keptCall !== call) {
    keptCall = call;
    keptAt.clear();
    keptEnd = BLOCKS;
  }
  const at = keptEnd;
  keptAt.set(u, at);
  keptEnd += bytes;
  return at;
}

/** The second pass of call `call`: where this thread kept unit u's blocks, or −1; and where free memory starts. */
function keptBlocks(call: number, u: number): { at: number; free: number } {
  return keptCall === call ? { at: keptAt.get(u) ?? -1, free: keptEnd } : { at: -1, free: BLOCKS };
}

/**
 * A second pass's units are slots: the thread that takes one claims (in `claimed`, shared, one flag per unit) a
 * unit whose blocks it kept, else the first unclaimed one. Each slot claims one unit, so every unit runs once;
 * which thread runs it never changes its values. Returns the unit.
 */
function claimUnit(call: number, claimed: Float32Array, units: number): number {
  const flags = new Int32Array(claimed.buffer, claimed.byteOffset, units);
  if (keptCall === call) {
    for (const u of keptAt.keys()) if (Atomics.compareExchange(flags, u, 0, 1) === 0) return u;
  }
  for (let u = 0; u < units; u++) if (Atomics.compareExchange(flags, u, 0, 1) === 0) return u;
  throw new Error('batchnorm: more slots than units');
}

/**
 * A kernel call's id: this thread's count of calls over a random tag (so a call made inline on a worker, which has
 * its own count, cannot take the id of the main thread's).
 */
const callTag = Math.floor(Math.random() * 2 ** 20) * 2 ** 32;
let calls = 0;
const nextCall = (): number => callTag + (calls = (calls + 1) % 2 ** 32);

/**
 * Channel ch's statistics from its sum of values and of squared deviations over count values: stores mean, invstd
 * = 1/√(biased var + eps) and the unbiased variance, and returns the normalization as y = x·α + β' with α =
 * invstd·γ and β' = β − mean·α (float64, from the unrounded statistics), also stored at aff[2·ch], aff[2·ch + 1]
 * when aff is given. Both backends' training forward.
 */
export function channelAffine(
  ch: number, sum: number, ss: number, count: number, eps: number, weight: Float32Array | null, bias: Float32Array | null,
  mean: Float32Array, invstd: Float32Array, varUnbiased: Float32Array, aff: Float64Array | null,
): [number, number] {
  const mu = sum / count;
  const istd = 1 / Math.sqrt(ss / count + eps);
  mean[ch] = mu;
  invstd[ch] = istd;
  varUnbiased[ch] = ss / (count - 1);
  const alpha = istd * (weight ? weight[ch]! : 1), beta = (bias ? bias[ch]! : 0) - mu * alpha;
  if (aff !== null) {
    aff[2 * ch] = alpha;
    aff[2 * ch + 1] = beta;
  }
  return [alpha, beta];
}

/** Whether the 4 lanes of an affine or dx function's finiteness check at byte `at` are all +0 (see wasm/batchnorm.ts). */
const checkedFinite = (f: Float32Array, at: number): boolean =>
  f[at / 4] === 0 && f[at / 4 + 1] === 0 && f[at / 4 + 2] === 0 && f[at / 4 + 3] === 0;

/**
 * The cost (config.minParallelCost's flops) of both passes of a kernel call, so that both run on the threads or
 * both inline: inline unless every tensor is in shared memory (the thread pool's staging copies, made on the calling
 * thread, would cost about what the kernel does), and 2 per value: a pass is a few memory-speed sweeps over each
 * value, and below about 2^19 values (the default threshold) waking the workers twice costs more wall time than they
 * save (CIFAR ResNet-20's 32×32×16×16 layers, measured on 2 loaded cores: 1 thread 9.5–9.7 ms wall per step's
 * forwards, 2 threads 11.0–12.7).
 */
const callCost = (len: number, ...tensors: (Float32Array | null)[]): number => (allShared(...tensors) ? 2 * len : 0);

/**
 * The calling thread's scratch for a kernel's per-unit and per-channel values, in shared memory (the threads write
 * them in place), reused from call to call: a fresh SharedArrayBuffer per call would pile up (V8 does not count
 * them towards collecting garbage). `f64(n)` and `f32(n)` hand out consecutive zero-based ranges of one call's
 * scratch (each call starts at `begin()`).
 */
const scratch = {
  d: sharedFloat64(0),
  f: new Float32Array(sharedFloat64(0).buffer),
  used: 0,
  usedF: 0,
  begin(): void {
    this.used = 0;
    this.usedF = 0;
  },
  f64(n: number): Float64Array {
    if (this.d.length < this.used + n) this.d = sharedFloat64(Math.max(2 * this.d.length, this.used + n, 1024));
    // (a grown buffer serves this range and the next: ranges handed out before stay on the old one)
    return this.d.subarray(this.used, (this.used += n));
  },
  f32(n: number): Float32Array {
    if (this.f.length < this.usedF + n) this.f = new Float32Array(sharedFloat64(Math.max(this.f.length, this.usedF + n, 256)).buffer);
    return this.f.subarray(this.usedF, (this.usedF += n));
  },
};

/** batchnorm.ts's batchNormTrainForward on the SIMD backend (same arguments; see there). */
export function simdTrainForward(
  y: Float32Array, mean: Float32Array, invstd: Float32Array, varUnbiased: Float32Array, x: Float32Array,
  weight: Float32Array | null, bias: Float32Array | null, p: { n: number; c: number; hw: number; eps: number },
  res: Float32Array | null, relu: boolean, affine: Float64Array | null,
): void {
  const { n, c, hw } = p;
  const place = residentPlace({ x, y, res });
  const q: UnitParams = { n, c, hw, perUnit: imageUnits(n, hw), call: nextCall(), place };
  const units = unitCount(q), cost = callCost(n * c * hw, x, y, res);
  scratch.begin();
  if (place !== null) {
    residentForward(y, mean, invstd, varUnbiased, weight, bias, p.eps, q, relu, affine, cost);
    return;
  }
  const part = scratch.f64(2 * units * c);
  parallelFor<UnitParams>({
    kernel: 'batchnorm.simdStats', bufs: { ...copied(place, { x }), part }, writes: ['part'], overwrites: ['part'],
    params: q, units, cost,
  });
  const aff = affine ?? scratch.f64(2 * c), count = n * hw;
  for (let ch = 0; ch < c; ch++) {
    let sum = 0;
    for (let u = 0; u < units; u++) sum += part[2 * (u * c + ch)]!;
    const mu = sum / count;
    let ss = 0;
    for (let u = 0; u < units; u++) {
      const m = unitRange(q, u).nn * hw, d = part[2 * (u * c + ch)]! / m - mu;
      ss += part[2 * (u * c + ch) + 1]! + m * d * d;
    }
    channelAffine(ch, sum, ss, count, p.eps, weight, bias, mean, invstd, varUnbiased, aff);
  }
  const finite = scratch.f32(units), claimed = scratch.f32(units).fill(0);
  parallelFor<UnitParams & { relu: boolean }>({
    kernel: 'batchnorm.simdAffine', bufs: { ...copied(place, { y, x, res }), aff, finite, claimed }, writes: ['y', 'finite', 'claimed'], overwrites: ['y', 'finite'],
    params: { ...q, relu }, units, cost,
  });
  noteFinite(y, finite.every((f) => f === 1));
}

// part[2·(u·c + ch)], part[2·(u·c + ch) + 1]: unit u's sum of channel ch's values and of their squared deviations
// from the unit's mean. Keeps x's block (when it copies it).
registerTask<UnitParams>('batchnorm.simdStats', (bufs, q, u0, u1) => {
  const x = bufs.x as Float32Array, part = bufs.part as Float64Array, pl = q.place;
  const { c, hw } = q, stride = c * hw * 4;
  for (let u = u0; u < u1; u++) {
    const { nn, from, to } = unitRange(q, u);
    let m: SimdBatchNorm, X: number, out = OUT;
    if (pl !== null) {
      m = residentBatchNorm(pl);
      X = pl.at.x! + from * 4;
      out = unitOut(pl, u);
    } else {
      const rb = blockBytes(q, nn);
      X = keepBlocks(q.call, u, rb);
      m = simdBatchNorm(X + rb);
      m.f.set(x.subarray(from, to), X >> 2);
    }
    const count = nn * hw;
    for (let ch = 0; ch < c; ch++) {
      m.sum(X + ch * hw * 4, nn, hw, stride, out);
      const sum = laneTotal(m.h, out / 8);
      m.sqdev(X + ch * hw * 4, nn, hw, stride, sum / count, out);
      part[2 * (u * c + ch)] = sum;
      part[2 * (u * c + ch) + 1] = laneTotal(m.h, out / 8);
    }
  }
});

registerTask<UnitParams & { relu: boolean }>('batchnorm.simdAffine', (bufs, q, u0, u1) => {
  const y = bufs.y as Float32Array, x = bufs.x as Float32Array, res = bufs.res as Float32Array | null;
  const aff = bufs.aff as Float64Array, finite = bufs.finite as Float32Array, claimed = bufs.claimed as Float32Array;
  const { c, hw } = q, stride = c * hw * 4;
  const pl = q.place, hasRes = pl !== null ? pl.at.res! >= 0 : res !== null;
  for (let slot = u0; slot < u1; slot++) {
    const u = claimUnit(q.call, claimed, unitCount(q));
    const { nn, from, to } = unitRange(q, u);
    let m: SimdBatchNorm, Y: number, X: number, R: number, fin = FIN;
    if (pl !== null) {
      m = residentBatchNorm(pl);
      [Y, X, R] = [pl.at.y! + from * 4, pl.at.x! + from * 4, hasRes ? pl.at.res! + from * 4 : 0];
      fin = unitOut(pl, u) + 96;
    } else {
      const rb = blockBytes(q, nn), kept = keptBlocks(q.call, u);
      X = Y = kept.at >= 0 ? kept.at : kept.free;
      R = kept.at >= 0 ? kept.free : X + rb;
      m = simdBatchNorm(R + rb);
      if (kept.at < 0) m.f.set(x.subarray(from, to), X >> 2);
      if (res !== null) m.f.set(res.subarray(from, to), R >> 2);
    }
    const fn = m.affine[(hasRes ? 2 : 0) + (q.relu ? 1 : 0)]!;
    let ok = true;
    for (let ch = 0; ch < c; ch++) {
      const off = ch * hw * 4;
      fn(Y + off, X + off, R + off, nn, hw, stride, aff[2 * ch]!, aff[2 * ch + 1]!, fin);
      ok &&= checkedFinite(m.f, fin);
    }
    if (pl === null) y.set(m.f.subarray(Y >> 2, (Y >> 2) + to - from), from);
    finite[u] = ok ? 1 : 0;
  }
});

/** The backward's parameters: the shape, how dy is masked, and whether dx is overwritten. */
interface BackwardParams extends UnitParams {
  /** 0: no ReLU; 1: masked where reluOut is +0; 2: where relu(x·α + β) is +0 (recomputed from x with aff). */
  mask: 0 | 1 | 2;
  overwriteDx: boolean;
}

/**
 * batchnorm.ts's batchNormBackward on the SIMD backend (same arguments; see there). `aff`, when given with a ReLU,
 * is used to recompute the mask from x instead of reading reluOut.
 */
export function simdTrainBackward(
  dx: Float32Array | null, dweight: Float32Array | null, dbias: Float32Array | null, dy: Float32Array, x: Float32Array,
  mean: Float32Array, invstd: Float32Array, weight: Float32Array | null, p: { n: number; c: number; hw: number },
  reluOut: Float32Array | null, aff: Float64Array | null, dres: Float32Array | null, overwriteDx: boolean,
): void {
  const { n, c, hw } = p;
  const mask = reluOut === null ? 0 : aff !== null ? 2 : 1;
  const r = mask === 1 ? reluOut : null, a = mask === 2 ? aff : null;
  // in place, the masked gradient goes to dres, or else to dx (which the dx pass then overwrites value by value)
  const place = dx !== null && overwriteDx ? residentPlace({ dy, x, r, dres, dx }) : null;
  const q: BackwardParams = { n, c, hw, perUnit: imageUnits(n, hw), call: nextCall(), place, mask, overwriteDx };
  const units = unitCount(q), count = n * hw, cost = callCost(n * c * hw, dx, dy, x, reluOut, dres);
  scratch.begin();
  if (place !== null) {
    residentBackward(dx!, dweight, dbias, mean, invstd, weight, q, a, cost);
    return;
  }
  const part = scratch.f64(2 * units * c);
  parallelFor<BackwardParams>({
    kernel: 'batchnorm.simdGradSums', bufs: { ...copied(place, { dy, x, r, dres }), aff: a, mean, part },
    writes: ['dres', 'part'], overwrites: ['dres', 'part'], params: q, units, cost,
  });
  // coef[3·ch ..]: the dx formula's s = γ·invstd, mean(g) and k = invstd²·mean(g·(x − mean))
  const coef = scratch.f64(3 * c);
  for (let ch = 0; ch < c; ch++) {
    let sg = 0, sgx = 0;
    for (let u = 0; u < units; u++) {
      sg += part[2 * (u * c + ch)]!;
      sgx += part[2 * (u * c + ch) + 1]!;
    }
    const istd = invstd[ch]!;
    if (dbias) dbias[ch] = dbias[ch]! + sg;
    if (dweight) dweight[ch] = dweight[ch]! + sgx * istd;
    coef[3 * ch] = (weight ? weight[ch]! : 1) * istd;
    coef[3 * ch + 1] = sg / count;
    coef[3 * ch + 2] = (istd * istd * sgx) / count;
  }
  if (dx === null) return;
  const finite = scratch.f32(units), claimed = scratch.f32(units).fill(0);
  // dres holds the masked gradient: the dx pass reads it instead of masking dy again
  parallelFor<BackwardParams>({
    kernel: 'batchnorm.simdDx', bufs: { ...copied(place, { dx, dy: dres === null ? dy : null, g: dres, x, r: dres === null ? r : null }), aff: dres === null ? a : null, mean, coef, finite, claimed },
    writes: ['dx', 'finite', 'claimed'], overwrites: overwriteDx ? ['dx', 'finite'] : ['finite'],
    params: q, units, cost,
  });
  noteFinite(dx, finite.every((f) => f === 1));
}

/**
 * Unit u's gradient g into wasm memory at G: dy, masked as q.mask says (reluOut copied to D, or recomputed from x
 * at X, which must be there already). With `sums`, hands it each channel's Σ g and Σ g·(x − mean) lane sums (at
 * OUT) in turn. The memory must reach past G's, X's and D's blocks.
 */
function unitGrad(
  m: SimdBatchNorm, bufs: Record<string, unknown>, q: BackwardParams, from: number, to: number, nn: number,
  G: number, X: number, D: number, sums: ((ch: number) => void) | null,
): void {
  const dy = bufs.dy as Float32Array, r = bufs.r as Float32Array | null;
  m.f.set(dy.subarray(from, to), G >> 2);
  if (q.mask === 1) m.f.set(r!.subarray(from, to), D >> 2);
  if (q.mask === 0 && sums === null) return;
  gradPass(m, bufs, q, nn, G, G, D, X, OUT, sums);
}

/**
 * g = dy masked as q.mask says (ReLU output at R, or recomputed from x) over a unit's planes, stored at G (but for
 * q.mask = 0), each channel's lane sums left at `out` and handed to `sums`.
 */
function gradPass(
  m: SimdBatchNorm, bufs: Record<string, unknown>, q: BackwardParams, nn: number,
  G: number, DY: number, R: number, X: number, out: number, sums: ((ch: number) => void) | null,
): void {
  const { c, hw } = q, stride = c * hw * 4;
  const aff = bufs.aff as Float64Array | null, mean = bufs.mean as Float32Array;
  for (let ch = 0; ch < c; ch++) {
    const off = ch * hw * 4;
    if (q.mask === 2) m.gradX(G + off, DY + off, X + off, nn, hw, stride, mean[ch]!, aff![2 * ch]!, aff![2 * ch + 1]!, out);
    else m.grad[q.mask]!(G + off, DY + off, R + off, X + off, nn, hw, stride, mean[ch]!, out);
    sums?.(ch);
  }
}

/** Where unit u's masked gradient lies in place (dres, else dx), or dy itself without a mask; from: the unit's start. */
const placedGrad = (pl: Place, q: BackwardParams, from: number): number =>
  (q.mask === 0 ? pl.at.dy! : pl.at.dres! >= 0 ? pl.at.dres! : pl.at.dx!) + from * 4;

// Keeps the masked gradient's and x's blocks (G, then X) when it copies them.
registerTask<BackwardParams>('batchnorm.simdGradSums', (bufs, q, u0, u1) => {
  const x = bufs.x as Float32Array, dres = bufs.dres as Float32Array | null, part = bufs.part as Float64Array, pl = q.place;
  const { c } = q;
  for (let u = u0; u < u1; u++) {
    const { nn, from, to } = unitRange(q, u);
    const sums = (m: SimdBatchNorm, out: number) => (ch: number) => {
      part[2 * (u * c + ch)] = laneTotal(m.h, out / 8);
      part[2 * (u * c + ch) + 1] = laneTotal(m.h, out / 8 + 6);
    };
    if (pl !== null) {
      const m = residentBatchNorm(pl), out = unitOut(pl, u), DY = pl.at.dy! + from * 4;
      const R = pl.at.r! >= 0 ? pl.at.r! + from * 4 : 0;
      gradPass(m, bufs, q, nn, placedGrad(pl, q, from), DY, R, pl.at.x! + from * 4, out, sums(m, out));
      // (unmasked, the residual's gradient is dy)
      if (q.mask === 0 && pl.at.dres! >= 0) m.f.copyWithin((pl.at.dres! + from * 4) / 4, DY / 4, DY / 4 + to - from);
      continue;
    }
    const rb = blockBytes(q, nn), G = keepBlocks(q.call, u, 2 * rb), X = G + rb, D = X + rb;
    const m = simdBatchNorm(D + (q.mask === 1 ? rb : 0));
    m.f.set(x.subarray(from, to), X >> 2);
    unitGrad(m, bufs, q, from, to, nn, G, X, D, sums(m, OUT));
    if (dres !== null) dres.set(m.f.subarray(G >> 2, (G >> 2) + to - from), from);
  }
});

registerTask<BackwardParams>('batchnorm.simdDx', (bufs, q, u0, u1) => {
  const dx = bufs.dx as Float32Array, x = bufs.x as Float32Array, g = bufs.g as Float32Array | null;
  const mean = bufs.mean as Float32Array, coef = bufs.coef as Float64Array, finite = bufs.finite as Float32Array;
  const claimed = bufs.claimed as Float32Array, pl = q.place;
  const { c, hw } = q, stride = c * hw * 4;
  for (let slot = u0; slot < u1; slot++) {
    const u = claimUnit(q.call, claimed, unitCount(q));
    const { nn, from, to } = unitRange(q, u);
    let m: SimdBatchNorm, DX: number, G: number, X: number, fin = FIN;
    if (pl !== null) {
      // dx is overwritten, where it holds g: each value is read before it is stored
      m = residentBatchNorm(pl);
      [DX, G, X] = [pl.at.dx! + from * 4, placedGrad(pl, q, from), pl.at.x! + from * 4];
      fin = unitOut(pl, u) + 96;
    } else {
      // G: the masked gradient, then dx when it is overwritten (in place: each value is read before it is stored);
      // X: x; D: the ReLU output while masking, then dx's old contents and dx when accumulating.
      const rb = blockBytes(q, nn), kept = keptBlocks(q.call, u);
      G = kept.at >= 0 ? kept.at : kept.free;
      X = G + rb;
      const D = kept.at >= 0 ? kept.free : X + rb;
      m = simdBatchNorm(D + rb);
      if (kept.at < 0) {
        m.f.set(x.subarray(from, to), X >> 2);
        if (g !== null) m.f.set(g.subarray(from, to), G >> 2);
        else unitGrad(m, bufs, q, from, to, nn, G, X, D, null);
      }
      DX = q.overwriteDx ? G : D;
      if (!q.overwriteDx) m.f.set(dx.subarray(from, to), D >> 2);
    }
    const fn = m.dx[q.overwriteDx ? 0 : 1]!;
    let ok = true;
    for (let ch = 0; ch < c; ch++) {
      const off = ch * hw * 4;
      fn(DX + off, G + off, X + off, nn, hw, stride, coef[3 * ch]!, coef[3 * ch + 1]!, mean[ch]!, coef[3 * ch + 2]!, fin);
      ok &&= checkedFinite(m.f, fin);
    }
    if (pl === null) dx.set(m.f.subarray(DX >> 2, (DX >> 2) + to - from), from);
    finite[u] = ok ? 1 : 0;
  }
});

// ---- in place: work units are blocks of channels ----------------------------------------------------------------
//
// Where a call's tensors all lie in the resident memory, one pass does everything for a channel: the forward's
// statistics (per image unit, as the two-pass kernels above make them: the units' sums and squared deviations from
// their own means, then the totals in unit order) and its affine pass; the backward's masked gradient and sums (per
// image unit), the totals in unit order and the dx pass. The same wasm functions over the same planes and the same
// float64 operations in the same order as the two-pass kernels, so the same bits; the affine and dx passes are
// elementwise (one call over every image of a channel instead of one per unit). Each channel is one thread's, so one
// hand-off to the threads per call instead of two, and the per-channel results go to shared scratch that the calling
// thread copies out.

/** The in-place tasks' parameters: the shape, image units (for the statistics), channels per work unit. */
interface ChannelParams extends UnitParams {
  perBlock: number;
  eps: number;
  relu: boolean;
  mask: 0 | 1 | 2;
}

/** Channels per work unit: up to MAX_UNITS units (each needs its own OUT/FIN area). */
const channelBlocks = (c: number): { perBlock: number; blocks: number } => {
  const perBlock = Math.ceil(c / Math.min(MAX_UNITS, c));
  return { perBlock, blocks: Math.ceil(c / perBlock) };
};

let inPlaceCalls = 0;

/** How many training forward and backward calls have run in place over channel blocks (for tests). */
export const batchNormInPlaceCalls = (): number => inPlaceCalls;

/** A work unit's per-image-unit partial sums (per thread: a worker has its own module). */
let unitSums = new Float64Array(2 * MAX_UNITS);

/**
 * What a channel-block task (forward or backward) starts from: the placed buffers and their module, the shape, the
 * byte stride between images, the count of image units and of values per channel, and room for the units' two
 * partial sums each.
 */
function channelTask(q: ChannelParams) {
  const pl = q.place!, m = residentBatchNorm(pl);
  const { n, c, hw } = q, units = unitCount(q);
  if (unitSums.length < 2 * units) unitSums = new Float64Array(2 * units);
  return { pl, m, n, c, hw, stride: c * hw * 4, units, count: n * hw, part: unitSums };
}

function residentForward(
  y: Float32Array, mean: Float32Array, invstd: Float32Array, varUnbiased: Float32Array, weight: Float32Array | null,
  bias: Float32Array | null, eps: number, q: UnitParams, relu: boolean, affine: Float64Array | null, cost: number,
): void {
  const { c } = q, { perBlock, blocks } = channelBlocks(c);
  inPlaceCalls++;
  const stats = scratch.f32(3 * c), aff = scratch.f64(2 * c), finite = scratch.f32(blocks);
  parallelFor<ChannelParams>({
    kernel: 'batchnorm.simdChannelsForward', bufs: { weight, bias, stats, aff, finite }, writes: ['stats', 'aff', 'finite'],
    overwrites: ['stats', 'aff', 'finite'], params: { ...q, perBlock, eps, relu, mask: 0 }, units: blocks, cost,
  });
  mean.set(stats.subarray(0, c));
  invstd.set(stats.subarray(c, 2 * c));
  varUnbiased.set(stats.subarray(2 * c, 3 * c));
  affine?.set(aff);
  noteFinite(y, finite.every((f) => f === 1));
}

// stats: mean, invstd, varUnbiased (c each); aff: the float64 maps; finite[b]: whether block b's outputs are finite.
registerTask<ChannelParams>('batchnorm.simdChannelsForward', (bufs, q, b0, b1) => {
  const weight = bufs.weight as Float32Array | null, bias = bufs.bias as Float32Array | null;
  const stats = bufs.stats as Float32Array, aff = bufs.aff as Float64Array, finite = bufs.finite as Float32Array;
  const { pl, m, n, c, hw, stride, units, count, part } = channelTask(q);
  const mean = stats.subarray(0, c), invstd = stats.subarray(c, 2 * c), varUnbiased = stats.subarray(2 * c, 3 * c);
  const hasRes = pl.at.res! >= 0, fn = m.affine[(hasRes ? 2 : 0) + (q.relu ? 1 : 0)]!;
  for (let b = b0; b < b1; b++) {
    const out = unitOut(pl, b), fin = out + 96;
    let ok = true;
    for (let ch = b * q.perBlock; ch < Math.min(c, (b + 1) * q.perBlock); ch++) {
      const off = ch * hw * 4;
      // (unit u: images [u·perUnit, min(n, (u + 1)·perUnit)), as unitRange says)
      for (let u = 0; u < units; u++) {
        const i0 = u * q.perUnit, nn = Math.min(n, i0 + q.perUnit) - i0;
        const X = pl.at.x! + i0 * stride + off;
        m.sum(X, nn, hw, stride, out);
        const sum = laneTotal(m.h, out / 8);
        m.sqdev(X, nn, hw, stride, sum / (nn * hw), out);
        part[2 * u] = sum;
        part[2 * u + 1] = laneTotal(m.h, out / 8);
      }
      let sum = 0;
      for (let u = 0; u < units; u++) sum += part[2 * u]!;
      const mu = sum / count;
      let ss = 0;
      for (let u = 0; u < units; u++) {
        const i0 = u * q.perUnit, mm = (Math.min(n, i0 + q.perUnit) - i0) * hw, d = part[2 * u]! / mm - mu;
        ss += part[2 * u + 1]! + mm * d * d;
      }
      channelAffine(ch, sum, ss, count, q.eps, weight, bias, mean, invstd, varUnbiased, aff);
      fn(pl.at.y! + off, pl.at.x! + off, hasRes ? pl.at.res! + off : 0, n, hw, stride, aff[2 * ch]!, aff[2 * ch + 1]!, fin);
      ok &&= checkedFinite(m.f, fin);
    }
    finite[b] = ok ? 1 : 0;
  }
});

function residentBackward(
  dx: Float32Array, dweight: Float32Array | null, dbias: Float32Array | null, mean: Float32Array, invstd: Float32Array,
  weight: Float32Array | null, q: BackwardParams, aff: Float64Array | null, cost: number,
): void {
  const { c } = q, { perBlock, blocks } = channelBlocks(c);
  inPlaceCalls++;
  const sums = scratch.f64(2 * c), finite = scratch.f32(blocks);
  parallelFor<ChannelParams>({
    kernel: 'batchnorm.simdChannelsBackward', bufs: { aff, mean, invstd, weight, sums, finite }, writes: ['sums', 'finite'],
    overwrites: ['sums', 'finite'], params: { ...q, perBlock, eps: 0, relu: false }, units: blocks, cost,
  });
  for (let ch = 0; ch < c; ch++) {
    if (dbias) dbias[ch] = dbias[ch]! + sums[2 * ch]!;
    if (dweight) dweight[ch] = dweight[ch]! + sums[2 * ch + 1]! * invstd[ch]!;
  }
  noteFinite(dx, finite.every((f) => f === 1));
}

// sums[2·ch], sums[2·ch + 1]: Σ g and Σ g·(x − mean) of channel ch; finite[b] as the forward's. dx is overwritten.
registerTask<ChannelParams>('batchnorm.simdChannelsBackward', (bufs, q, b0, b1) => {
  const aff = bufs.aff as Float64Array | null, mean = bufs.mean as Float32Array, invstd = bufs.invstd as Float32Array;
  const weight = bufs.weight as Float32Array | null, sums = bufs.sums as Float64Array, finite = bufs.finite as Float32Array;
  const { pl, m, n, c, hw, stride, units, count, part } = channelTask(q);
  const q2 = q as ChannelParams & BackwardParams;
  for (let b = b0; b < b1; b++) {
    const out = unitOut(pl, b), fin = out + 96;
    let ok = true;
    for (let ch = b * q.perBlock; ch < Math.min(c, (b + 1) * q.perBlock); ch++) {
      const off = ch * hw * 4, mu = mean[ch]!;
      for (let u = 0; u < units; u++) {
        const i0 = u * q.perUnit, nn = Math.min(n, i0 + q.perUnit) - i0, from = i0 * c * hw;
        const G = placedGrad(pl, q2, from) + off, DY = pl.at.dy! + from * 4 + off, X = pl.at.x! + from * 4 + off;
        if (q.mask === 2) m.gradX(G, DY, X, nn, hw, stride, mu, aff![2 * ch]!, aff![2 * ch + 1]!, out);
        else m.grad[q.mask]!(G, DY, pl.at.r! >= 0 ? pl.at.r! + from * 4 + off : 0, X, nn, hw, stride, mu, out);
        part[2 * u] = laneTotal(m.h, out / 8);
        part[2 * u + 1] = laneTotal(m.h, out / 8 + 6);
      }
      // (unmasked, the residual's gradient is dy)
      if (q.mask === 0 && pl.at.dres! >= 0) {
        for (let i = 0; i < n; i++) {
          const at = (i * stride + off) / 4;
          m.f.copyWithin(pl.at.dres! / 4 + at, pl.at.dy! / 4 + at, pl.at.dy! / 4 + at + hw);
        }
      }
      let sg = 0, sgx = 0;
      for (let u = 0; u < units; u++) {
        sg += part[2 * u]!;
        sgx += part[2 * u + 1]!;
      }
      sums[2 * ch] = sg;
      sums[2 * ch + 1] = sgx;
      const istd = invstd[ch]!;
      const s = (weight ? weight[ch]! : 1) * istd, mg = sg / count, k = (istd * istd * sgx) / count;
      m.dx[0]!(pl.at.dx! + off, placedGrad(pl, q2, 0) + off, pl.at.x! + off, n, hw, stride, s, mg, mu, k, fin);
      ok &&= checkedFinite(m.f, fin);
    }
    finite[b] = ok ? 1 : 0;
  }
});
