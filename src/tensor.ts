import { backward as runBackward, type BackwardOptions, type Node } from './autograd.js';
import { ArgumentTypeError, AutogradError, describeArg, ShapeError } from './errors.js';
import { alloc, checkShape, fmt, sameShape } from './shape.js';
import { defaultGenerator, type Generator } from './random.js';
import * as E from './ops/elementwise.js';
import * as R from './ops/reduce.js';
import * as M from './ops/movement.js';
import { matmul } from './ops/matmul.js';

/** Anything a Tensor or a plain number may stand for in a binary op. */
export type TensorLike = Tensor | number;

/** Nested arrays of numbers, as `toArray()` returns and `tensor()` accepts. */
export type NestedArray = number | NestedArray[];

export interface TensorOptions {
  requiresGrad?: boolean;
}

// Live-tensor accounting (like tfjs' memory()): counts rise in the constructor and fall when the GC collects a
// tensor. Views share data, so `liveBytes` may count a buffer more than once; `allocatedBytes` only ever grows.
let liveTensors = 0;
let liveBytes = 0;
let createdTensors = 0;
let createdBytes = 0;
const registry = new FinalizationRegistry<number>((bytes) => {
  liveTensors--;
  liveBytes -= bytes;
});

export interface MemoryInfo {
  /** Tensors created and not yet garbage-collected. */
  liveTensors: number;
  /** Their data bytes (a buffer shared by views counts once per view). */
  liveBytes: number;
  /** Tensors created since the process started. */
  createdTensors: number;
  /** Data bytes of all tensors created since the process started. */
  createdBytes: number;
}

/** Tensor counts and bytes, like tfjs' tf.memory(), without requiring dispose(): the GC frees tensors. */
export function memory(): MemoryInfo {
  return { liveTensors, liveBytes, createdTensors, createdBytes };
}

/**
 * A dense float32 tensor: row-major contiguous `data` and a `shape`. The PyTorch equivalent is a contiguous
 * torch.float32 tensor on the CPU. Views (reshape, flatten, squeeze, unsqueeze) share `data`.
 */
export class Tensor {
  readonly data: Float32Array;
  readonly shape: readonly number[];
  /** Record ops on this tensor for backward (torch's requires_grad). */
  requiresGrad = false;
  private gradValue: Tensor | null = null;
  /** Accumulated gradient of a leaf after backward (torch's .grad): null, or a Tensor of this tensor's shape. */
  get grad(): Tensor | null {
    return this.gradValue;
  }
  set grad(g: Tensor | null) {
    if (g !== null && !(g instanceof Tensor)) throw new ArgumentTypeError('grad', `a tensor's grad must be a Tensor or null, got ${describeArg(g)}`);
    if (g !== null && !sameShape(g.shape, this.shape)) {
      throw new AutogradError('grad', `assigned grad has shape ${fmt(g.shape)}, the tensor has shape ${fmt(this.shape)}`);
    }
    this.gradValue = g;
  }
  /** The op that made this tensor, when it was made with gradients on (torch's grad_fn). */
  gradFn: Node | null = null;

  /** Wraps `data` (no copy) as a tensor of `shape`; data.length must equal the product of shape. */
  constructor(data: Float32Array, shape: readonly number[]) {
    const n = checkShape('Tensor', shape);
    if (!(data instanceof Float32Array)) throw new ShapeError('Tensor', `data must be a Float32Array`);
    if (data.length !== n) {
      throw new ShapeError('Tensor', `data has ${data.length} elements but shape ${fmt(shape)} needs ${n}`);
    }
    this.data = data;
    this.shape = Object.freeze(shape.slice());
    const bytes = data.byteLength;
    liveTensors++;
    liveBytes += bytes;
    createdTensors++;
    createdBytes += bytes;
    registry.register(this, bytes);
  }

  /** Number of elements (torch's numel()). */
  get size(): number {
    return this.data.length;
  }

  get ndim(): number {
    return this.shape.length;
  }

  /** The value of a one-element tensor. */
  item(): number {
    if (this.data.length !== 1) {
      throw new ShapeError('item', `a Tensor with ${this.data.length} elements cannot be converted to a number; shape ${fmt(this.shape)}`);
    }
    return this.data[0]!;
  }

  /** Nested arrays of numbers (torch's tolist()). A 0-d tensor gives a number. */
  toArray(): NestedArray {
    const build = (dim: number, off: number): NestedArray => {
      if (dim === this.shape.length) return this.data[off]!;
      const n = this.shape[dim]!;
      let stride = 1;
      for (let i = dim + 1; i < this.shape.length; i++) stride *= this.shape[i]!;
      const out: NestedArray[] = new Array(n);
      for (let i = 0; i < n; i++) out[i] = build(dim + 1, off + i * stride);
      return out;
    };
    return build(0, 0);
  }

  /** A readable print like PyTorch's: `tensor([[1.0000, 2.5000], ...], requiresGrad=true)`. */
  toString(): string {
    return formatTensor(this);
  }

  /** Backpropagates from this tensor. Without `grad` the tensor must hold a single value. */
  backward(grad?: Tensor, opts?: BackwardOptions): void {
    runBackward(this, grad, opts);
  }

  /** A new tensor sharing data, cut from the graph. */
  detach(): Tensor {
    return new Tensor(this.data, this.shape);
  }

  /** A copy with its own data, cut from the graph. */
  clone(): Tensor {
    return new Tensor(this.data.slice(), this.shape);
  }

  /** Sets `grad` to null. */
  zeroGrad(): void {
    this.grad = null;
  }

  /** Sets requiresGrad and returns this (torch's requires_grad_()). */
  requiresGrad_(on = true): this {
    this.requiresGrad = on;
    return this;
  }

  add(o: TensorLike): Tensor { return E.add(this, o); }
  sub(o: TensorLike): Tensor { return E.sub(this, o); }
  mul(o: TensorLike): Tensor { return E.mul(this, o); }
  div(o: TensorLike): Tensor { return E.div(this, o); }
  pow(e: TensorLike): Tensor { return E.pow(this, e); }
  maximum(o: TensorLike): Tensor { return E.maximum(this, o); }
  minimum(o: TensorLike): Tensor { return E.minimum(this, o); }
  neg(): Tensor { return E.neg(this); }
  exp(): Tensor { return E.exp(this); }
  log(): Tensor { return E.log(this); }
  sqrt(): Tensor { return E.sqrt(this); }
  abs(): Tensor { return E.abs(this); }
  relu(): Tensor { return E.relu(this); }
  sigmoid(): Tensor { return E.sigmoid(this); }
  tanh(): Tensor { return E.tanh(this); }
  clamp(min?: number | null, max?: number | null): Tensor { return E.clamp(this, min, max); }

  sum(dim?: number | number[], keepDim = false): Tensor { return R.sum(this, dim, keepDim); }
  mean(dim?: number | number[], keepDim = false): Tensor { return R.mean(this, dim, keepDim); }
  max(dim?: number | number[], keepDim = false): Tensor { return R.max(this, dim, keepDim); }
  min(dim?: number | number[], keepDim = false): Tensor { return R.min(this, dim, keepDim); }
  argmax(dim?: number, keepDim = false): Tensor { return R.argmax(this, dim, keepDim); }
  var(dim?: number | number[], opts?: R.VarOptions): Tensor { return R.variance(this, dim, opts); }

  matmul(o: Tensor): Tensor { return matmul(this, o); }
  reshape(shape: readonly number[]): Tensor { return M.reshape(this, shape); }
  view(shape: readonly number[]): Tensor { return M.reshape(this, shape); }
  permute(dims: readonly number[]): Tensor { return M.permute(this, dims); }
  transpose(d0: number, d1: number): Tensor { return M.transpose(this, d0, d1); }
  flatten(startDim = 0, endDim = -1): Tensor { return M.flatten(this, startDim, endDim); }
  squeeze(dim?: number): Tensor { return M.squeeze(this, dim); }
  unsqueeze(dim: number): Tensor { return M.unsqueeze(this, dim); }
  expand(shape: readonly number[]): Tensor { return M.expand(this, shape); }
  narrow(dim: number, start: number, length: number): Tensor { return M.narrow(this, dim, start, length); }
  slice(dim: number, start?: number, end?: number): Tensor { return M.slice(this, dim, start, end); }
}

// ---------------------------------------------------------------------------------------------------------------
// Creation

function withGrad(t: Tensor, opts?: TensorOptions): Tensor {
  if (opts?.requiresGrad) t.requiresGrad = true;
  return t;
}

/** Nesting deeper than this is refused (PyTorch allows at most 64 dims too). */
const MAX_NESTING = 64;

function inferShape(data: unknown, op: string): number[] {
  const shape: number[] = [];
  let cur: unknown = data;
  while (Array.isArray(cur)) {
    if (shape.length === MAX_NESTING) throw new ShapeError(op, `nested arrays deeper than ${MAX_NESTING} levels (a tensor has at most ${MAX_NESTING} dims)`);
    shape.push(cur.length);
    if (cur.length === 0) break;
    cur = cur[0];
  }
  return shape;
}

function flattenNested(data: unknown, shape: number[], op: string): number[] {
  const out: number[] = [];
  const walk = (x: unknown, dim: number): void => {
    if (dim === shape.length) {
      if (typeof x !== 'number') throw new ArgumentTypeError(op, `expected a number at depth ${dim}, got ${Array.isArray(x) ? 'an array' : describeArg(x)}; shape ${fmt(shape)} (no coercion, as torch.tensor)`);
      out.push(x);
      return;
    }
    if (!Array.isArray(x) || x.length !== shape[dim]) {
      throw new ShapeError(op, `ragged nested array: expected length ${shape[dim]} at depth ${dim}, got ${Array.isArray(x) ? x.length : typeof x}; inferred shape ${fmt(shape)}`);
    }
    for (let i = 0; i < x.length; i++) {
      if (!(i in x)) throw new ArgumentTypeError(op, `a hole (empty slot) at index ${i}, depth ${dim}; shape ${fmt(shape)}`);
      walk(x[i], dim + 1);
    }
  };
  walk(data, 0);
  return out;
}

/**
 * Makes a tensor from numbers (copied into a new Float32Array): a flat ArrayLike with an optional shape (default
 * 1-D), nested arrays (shape inferred), or a single number (0-d). torch.tensor.
 */
export function tensor(data: ArrayLike<number> | NestedArray, shape?: readonly number[], opts?: TensorOptions): Tensor {
  let flat: ArrayLike<number>;
  let inferred: number[];
  if (typeof data === 'number') {
    flat = [data];
    inferred = [];
  } else if (Array.isArray(data) && data.some((x) => Array.isArray(x))) {
    inferred = inferShape(data, 'tensor');
    flat = flattenNested(data, inferred, 'tensor');
  } else {
    flat = data as ArrayLike<number>;
    if (flat === null || typeof flat !== 'object' || typeof flat.length !== 'number') {
      throw new ArgumentTypeError('tensor', `data must be an array-like of numbers, nested arrays or a number, got ${describeArg(data)}`);
    }
    if (flat instanceof BigInt64Array || flat instanceof BigUint64Array) {
      throw new ArgumentTypeError('tensor', `data is ${describeArg(flat)}: 64-bit integer arrays are not converted implicitly; use Float32Array.from(data, Number)`);
    }
    if (!ArrayBuffer.isView(flat)) {
      for (let i = 0; i < flat.length; i++) {
        const v = (flat as ArrayLike<unknown>)[i];
        if (typeof v !== 'number') {
          throw new ArgumentTypeError('tensor', `element ${i} is ${i in (flat as object) ? describeArg(v) : 'a hole (empty slot)'}, not a number (no coercion, as torch.tensor)`);
        }
      }
    }
    inferred = [flat.length];
  }
  const s = shape ?? inferred;
  const n = checkShape('tensor', s);
  if (n !== flat.length) {
    throw new ShapeError('tensor', `data has ${flat.length} elements but shape ${fmt(s)} needs ${n}`);
  }
  const buf = alloc('tensor', n);
  buf.set(flat);
  return withGrad(new Tensor(buf, s), opts);
}

function filled(op: string, shape: readonly number[], value: number, opts?: TensorOptions): Tensor {
  const n = checkShape(op, shape);
  const buf = alloc(op, n);
  if (value !== 0) buf.fill(value);
  return withGrad(new Tensor(buf, shape), opts);
}

/** torch.full. */
export const full = (shape: readonly number[], value: number, opts?: TensorOptions): Tensor => filled('full', shape, value, opts);
/** torch.zeros. */
export const zeros = (shape: readonly number[], opts?: TensorOptions): Tensor => filled('zeros', shape, 0, opts);
/** torch.ones. */
export const ones = (shape: readonly number[], opts?: TensorOptions): Tensor => filled('ones', shape, 1, opts);

/** torch.arange: arange(end) or arange(start, end, step = 1); values computed as start + i·step. */
export function arange(startOrEnd: number, end?: number, step = 1, opts?: TensorOptions): Tensor {
  const start = end === undefined ? 0 : startOrEnd;
  const stop = end === undefined ? startOrEnd : end;
  if (!Number.isFinite(start) || !Number.isFinite(stop) || !Number.isFinite(step) || step === 0) {
    throw new ShapeError('arange', `start ${start}, end ${stop} and step ${step} must be finite and step non-zero`);
  }
  if ((stop - start) * step < 0) {
    throw new ShapeError('arange', `upper bound and larger bound inconsistent with step sign: start ${start}, end ${stop}, step ${step}`);
  }
  const n = Math.max(0, Math.ceil((stop - start) / step));
  checkShape('arange', [n]);
  const buf = alloc('arange', n);
  for (let i = 0; i < n; i++) buf[i] = start + i * step;
  return withGrad(new Tensor(buf, [n]), opts);
}

/** Uniform [0, 1) from the seeded generator (see random.ts for the algorithm). */
export function rand(shape: readonly number[], opts?: TensorOptions & { generator?: Generator }): Tensor {
  const n = checkShape('rand', shape);
  const g = opts?.generator ?? defaultGenerator;
  const buf = alloc('rand', n);
  for (let i = 0; i < n; i++) buf[i] = g.uniform();
  return withGrad(new Tensor(buf, shape), opts);
}

/** Standard normal from the seeded generator (Box–Muller; see random.ts). */
export function randn(shape: readonly number[], opts?: TensorOptions & { generator?: Generator }): Tensor {
  const n = checkShape('randn', shape);
  const g = opts?.generator ?? defaultGenerator;
  const buf = alloc('randn', n);
  for (let i = 0; i < n; i++) buf[i] = g.normal();
  return withGrad(new Tensor(buf, shape), opts);
}

/** Turns a number into a 0-d tensor; passes tensors through. */
export function asTensor(x: TensorLike, op = 'asTensor', name = 'the argument'): Tensor {
  if (typeof x === 'number') return new Tensor(new Float32Array([x]), []);
  if (!(x instanceof Tensor)) throw new ArgumentTypeError(op, `${name} must be a Tensor or a number, got ${describeArg(x)}`);
  return x;
}

// ---------------------------------------------------------------------------------------------------------------
// Printing, like torch's: 4 decimals, integers as "1.", scientific when the range is wide, "..." past 1000 elements.

function formatTensor(t: Tensor): string {
  const summarize = t.size > 1000;
  const edge = 3;
  const vals: number[] = [];
  const collect = (dim: number, off: number): void => {
    if (dim === t.shape.length) {
      vals.push(t.data[off]!);
      return;
    }
    const n = t.shape[dim]!;
    let stride = 1;
    for (let i = dim + 1; i < t.shape.length; i++) stride *= t.shape[i]!;
    for (let i = 0; i < n; i++) {
      if (summarize && n > 2 * edge && i === edge) i = n - edge;
      collect(dim + 1, off + i * stride);
    }
  };
  collect(0, 0);
  const finite = vals.filter((v) => Number.isFinite(v));
  const allInt = finite.every((v) => Number.isInteger(v));
  const maxAbs = finite.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  const minAbs = finite.filter((v) => v !== 0).reduce((m, v) => Math.min(m, Math.abs(v)), Infinity);
  const sci = !allInt && finite.length > 0 && (maxAbs >= 1e8 || (minAbs < 1e-4 && minAbs !== Infinity) || maxAbs / minAbs > 1000);
  const f = (v: number): string => {
    if (Number.isNaN(v)) return 'nan';
    if (!Number.isFinite(v)) return v > 0 ? 'inf' : '-inf';
    if (allInt) return `${v}.`;
    return sci ? v.toExponential(4).replace(/e([+-])(\d)$/, 'e$10$2') : v.toFixed(4);
  };
  const strs = vals.map(f);
  const width = strs.reduce((m, s) => Math.max(m, s.length), 0);
  let k = 0;
  const indent = 'tensor('.length;
  const build = (dim: number): string => {
    if (dim === t.shape.length) return strs[k++]!.padStart(width);
    const n = t.shape[dim]!;
    const parts: string[] = [];
    for (let i = 0; i < n; i++) {
      if (summarize && n > 2 * edge && i === edge) {
        parts.push('...');
        i = n - edge;
      }
      parts.push(build(dim + 1));
    }
    const last = dim === t.shape.length - 1;
    const sep = last ? ', ' : ',' + '\n'.repeat(t.shape.length - dim - 1) + ' '.repeat(indent + dim + 1);
    return `[${parts.join(sep)}]`;
  };
  const body = t.shape.length === 0 ? f(t.data[0]!) : build(0);
  const extras: string[] = [];
  if (t.size === 0) extras.push(`size=${fmt(t.shape)}`);
  if (t.gradFn) extras.push(`gradFn=<${t.gradFn.op}>`);
  else if (t.requiresGrad) extras.push('requiresGrad=true');
  return `tensor(${body}${extras.map((e) => ', ' + e).join('')})`;
}
