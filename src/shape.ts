import { AllocationError, ShapeError } from './errors.js';

/** Largest element count a tensor may have. Larger shapes get an AllocationError before anything is allocated. */
export const MAX_NUMEL = 2 ** 32 - 1;

/** `[2, 3, 4]` → `[2, 3, 4]` as text, for error messages. */
export const fmt = (shape: readonly number[]): string => `[${shape.join(', ')}]`;

/**
 * Checks that every dim is a non-negative safe integer and the product fits; returns the element count.
 * `context` (e.g. the input shapes of the op) is added to the messages.
 */
export function checkShape(op: string, shape: readonly number[], context?: string): number {
  if (!Array.isArray(shape)) throw new ShapeError(op, `shape must be an array of integers, got ${String(shape)}`);
  const ctx = context ? `; ${context}` : '';
  let n = 1;
  for (let i = 0; i < shape.length; i++) {
    const d = shape[i]!;
    if (typeof d !== 'number' || !Number.isInteger(d) || d < 0) {
      throw new ShapeError(op, `dim ${i} of shape ${fmt(shape)} is ${String(d)}; dims must be non-negative integers${ctx}`);
    }
    if (!Number.isSafeInteger(d)) {
      throw new AllocationError(op, `dim ${i} of shape ${fmt(shape)} is ${d}, not a safe integer (above 2^53 - 1): far more than can be allocated${ctx}`);
    }
    n *= d;
  }
  if (n > MAX_NUMEL) {
    throw new AllocationError(op, `shape ${fmt(shape)} has ${n} elements, more than the limit of 2^32 - 1${ctx}`);
  }
  return n;
}

/** Element count of a (trusted) shape. */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Row-major strides of a contiguous tensor. */
export function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

/**
 * While a training step's arena is open (withTrainingStep, fusion/arena.ts): where `alloc` takes unshared buffers
 * from (a zeroed buffer, or null to allocate as usual). Null otherwise.
 */
let stepAllocator: ((op: string, n: number) => Float32Array | null) | null = null;

/** Installs (or with null removes) the training step's allocator (for fusion/arena.ts alone). */
export function setStepAllocator(f: ((op: string, n: number) => Float32Array | null) | null): void {
  stepAllocator = f;
}

/**
 * Allocates a zeroed Float32Array of n elements; turns V8's RangeError into our AllocationError. `shared`: backed by
 * a SharedArrayBuffer where that exists (see allocShared). Inside a training step's arena an unshared request may be
 * served from the arena's pool (see setStepAllocator).
 */
export function alloc(op: string, n: number, shared = false): Float32Array {
  if (!Number.isInteger(n) || n < 0 || n > MAX_NUMEL) {
    throw new AllocationError(op, `cannot allocate ${n} float32 elements`);
  }
  if (!shared && stepAllocator !== null) {
    const d = stepAllocator(op, n);
    if (d !== null) return d;
  }
  return allocFresh(op, n, shared);
}

/** `alloc` that never takes from a training step's arena. */
export function allocFresh(op: string, n: number, shared = false): Float32Array {
  try {
    return shared && typeof SharedArrayBuffer === 'function' ? new Float32Array(new SharedArrayBuffer(n * 4)) : new Float32Array(n);
  } catch (e) {
    throw new AllocationError(op, `out of memory allocating ${n} float32 elements (${(n * 4 / 2 ** 20).toFixed(1)} MiB): ${(e as Error).message}`);
  }
}

/**
 * `alloc` in shared memory, for long-lived buffers such as parameters: worker threads read them in place, where an
 * ordinary buffer is copied into shared staging memory on every kernel call. (Only for long-lived data: V8 collects
 * unreachable SharedArrayBuffers lazily, so short-lived ones pile up.)
 */
export function allocShared(op: string, n: number): Float32Array {
  return alloc(op, n, true);
}

/** NumPy/PyTorch broadcasting of two shapes, right-aligned. */
export function broadcastShape(op: string, a: readonly number[], b: readonly number[]): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new ShapeError(
        op,
        `The size of tensor a (${da}) must match the size of tensor b (${db}) at non-singleton dimension ${i}; a ${fmt(a)}, b ${fmt(b)}`,
      );
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Normalizes a possibly negative dim against a rank, PyTorch-style. */
export function normDim(op: string, dim: number, rank: number, shape?: readonly number[]): number {
  const r = Math.max(rank, 1);
  if (!Number.isInteger(dim) || dim < -r || dim >= r) {
    throw new ShapeError(
      op,
      `Dimension out of range (expected to be in range of [${-r}, ${r - 1}], but got ${dim})${shape ? `; input ${fmt(shape)}` : ''}`,
    );
  }
  return dim < 0 ? dim + r : dim;
}

/** Normalizes a list of dims (undefined = all), sorted and without repeats. */
export function normDims(op: string, dims: number | readonly number[] | undefined, shape: readonly number[]): number[] {
  if (dims === undefined) return shape.map((_, i) => i);
  const list = typeof dims === 'number' ? [dims] : dims;
  const out = list.map((d) => normDim(op, d, shape.length, shape));
  const set = new Set(out);
  if (set.size !== out.length) throw new ShapeError(op, `dim ${JSON.stringify(list)} appears multiple times in the list of dims; input ${fmt(shape)}`);
  return [...set].sort((x, y) => x - y);
}

/** Unpacks a 4-D shape, or throws naming the op. */
export function dims4(op: string, shape: readonly number[], what = 'input'): [number, number, number, number] {
  if (shape.length !== 4) {
    throw new ShapeError(op, `expected a 4-D ${what} (N, C, H, W), got ${shape.length}-D ${what} of shape ${fmt(shape)}`);
  }
  return [shape[0]!, shape[1]!, shape[2]!, shape[3]!];
}

/** Two shapes equal elementwise. */
export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
