// A linear layer at a few rows in inference on the SIMD backend: y (m × n) = x (m × k) · wᵀ + bias, w stored n × k
// and read once, as it lies, by the wasm kernel `fc` (wasm/fc.ts: float32 lane sums over blocks of 64 terms, float64
// carries, the bias added before the one rounding), instead of packed into the GEMM's panels on every call
// (ResNet-50's fc 1000 × 2048: 8 MB). Where w lies in the resident memory (wasm/optim.ts: a layer's parameters are
// made there on the SIMD backend), x, the bias and y, a few KB, are staged there by the calling thread, and units of
// FC_UNIT features go to the threads; each output is computed whole by one unit in an order that depends on k alone,
// so the bits do not depend on the thread count. Elsewhere (a plain Float32Array weight, or no shared memory, as in
// a page that is not cross-origin isolated) w is copied with x and the bias into the calling thread's private wasm
// memory and the same function runs there, inline: the same bits.

import { parallelFor, registerTask } from './parallel.js';
import { privateFc, residentFc } from './wasm/fc.js';
import { kernelBackend } from './wasm/features.js';
import { residentAddress, residentAlloc, residentFree, residentMemory, type Resident } from './wasm/optim.js';

/**
 * Most rows of x that take `fcRows`: past it the GEMM, whose packing of w is shared by more rows, takes over
 * (bench/README.md, "fc at batch 1–2 in wasm").
 */
export const FC_MAX_ROWS = 16;
/** Output features per unit of work. */
const FC_UNIT = 64;

interface FcTask extends Resident {
  k: number;
  n: number;
  m: number;
  /** Byte addresses in the resident memory: w, and the staged x, y and bias. */
  w: number;
  x: number;
  y: number;
  b: number;
}

/** The calling thread's staging area in the resident memory (kept for the process; replaced when too short). */
let stage: Float32Array | null = null;

const round4 = (v: number): number => (v + 3) & ~3;

/**
 * y = x · wᵀ (+ bias) through the wasm kernel, when it applies (SIMD backend, 1 ≤ m ≤ FC_MAX_ROWS, k, n ≥ 1): then
 * true, else false with y untouched (the caller runs the GEMM).
 */
export function fcRows(y: Float32Array, x: Float32Array, w: Float32Array, bias: Float32Array | null, m: number, k: number, n: number): boolean {
  if (m < 1 || m > FC_MAX_ROWS || k < 1 || n < 1 || kernelBackend() !== 'simd') return false;
  const xLen = round4(m * k), yLen = round4(m * n), need = xLen + yLen + n;
  const wAt = residentAddress(w);
  if (wAt < 0) return fcPrivate(y, x, w, bias, m, k, n, xLen, yLen);
  const r = residentMemory()!;
  if (stage === null || stage.length < need) {
    if (stage !== null) residentFree(stage);
    stage = residentAlloc(need);
    if (stage === null) return fcPrivate(y, x, w, bias, m, k, n, xLen, yLen);
  }
  const s = stage, xAt = 0, yAt = xLen, bAt = xLen + yLen;
  s.set(x.subarray(0, m * k), xAt);
  if (bias !== null) s.set(bias.subarray(0, n), bAt);
  else s.fill(0, bAt, bAt + n);
  const base = s.byteOffset;
  parallelFor<FcTask>({
    kernel: 'fc.rows', bufs: {}, writes: [], units: Math.ceil(n / FC_UNIT), cost: 2 * m * n * k,
    params: { mem: r.mem, id: r.id, k, n, m, w: wAt, x: base + 4 * xAt, y: base + 4 * yAt, b: base + 4 * bAt },
  });
  y.set(s.subarray(yAt, yAt + m * n));
  return true;
}

/**
 * fcRows for a weight outside the resident memory: w, x and the bias copied into the calling thread's private wasm
 * memory and `fc` run there, inline (the same function and order, so the same bits as the resident path).
 */
function fcPrivate(y: Float32Array, x: Float32Array, w: Float32Array, bias: Float32Array | null, m: number, k: number, n: number, xLen: number, yLen: number): boolean {
  const wLen = round4(n * k);
  const { fc, heap } = privateFc(4 * (wLen + xLen + yLen + n));
  const xAt = wLen, yAt = xAt + xLen, bAt = yAt + yLen;
  heap.set(w.subarray(0, n * k), 0);
  heap.set(x.subarray(0, m * k), xAt);
  if (bias !== null) heap.set(bias.subarray(0, n), bAt);
  else heap.fill(0, bAt, bAt + n);
  fc(k, n, m, 0, n, 0, 4 * xAt, 4 * yAt, 4 * bAt);
  y.set(heap.subarray(yAt, yAt + m * n));
  return true;
}

registerTask<FcTask>('fc.rows', (_bufs, q, u0, u1) => {
  residentFc(q)(q.k, q.n, q.m, u0 * FC_UNIT, Math.min(q.n, u1 * FC_UNIT), q.w, q.x, q.y, q.b);
});
