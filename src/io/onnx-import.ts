/**
 * Import: an ONNX graph as an nn.Module that runs with our differentiable ops. Float initializers become
 * parameters (requiresGrad) or, when a BatchNormalization reads them as its running mean/variance, buffers; so the
 * module trains and fine-tunes like any other. Integer initializers and Constant nodes (shapes, pads, indices) are
 * graph constants: they are not part of the state dict.
 *
 * Integer values (the Shape → Gather → Unsqueeze → Concat chains that PyTorch writes for flatten and pad) are
 * computed exactly, as plain numbers, outside autograd. Pure: no node imports.
 */

import { ResnetTsError } from '../errors.js';
import { conv2d } from '../ops/conv.js';
import { add, div, mul, relu, sub } from '../ops/elementwise.js';
import { dropout, linear } from '../ops/linear.js';
import { softmax } from '../ops/loss.js';
import { matmul } from '../ops/matmul.js';
import { cat, narrow, pad, permute, reshape, transpose } from '../ops/movement.js';
import { batchNorm2d } from '../ops/norm.js';
import { adaptiveAvgPool2d, avgPool2d, maxPool2d } from '../ops/pool.js';
import { mean } from '../ops/reduce.js';
import { Module } from '../nn/module.js';
import { allocShared, checkShape, fmt, numel, strides } from '../shape.js';
import { Tensor } from '../tensor.js';
import { AT, DT, dtypeName, ONNX_LIMITS, OnnxError, readModelProto, type OnnxAttribute, type OnnxModelProto, type OnnxNode, type OnnxTensor, type OnnxValueInfo } from './onnx-proto.js';

/** An exact integer tensor (shapes, indices, pads): values are JS numbers. */
interface IntValue {
  kind: 'int';
  shape: number[];
  data: number[];
}
type Value = Tensor | IntValue;

const q = (s: string): string => JSON.stringify(s);
const isInt = (v: Value): v is IntValue => !(v instanceof Tensor);
const intValue = (shape: number[], data: number[]): IntValue => ({ kind: 'int', shape, data });

/** Opset versions of the default domain whose op semantics the importer implements. */
export const ONNX_IMPORT_OPSETS = [9, 21] as const;

// ---------------------------------------------------------------------------------------------------------------
// Attributes
// ---------------------------------------------------------------------------------------------------------------

const TYPE_NAME: Record<number, string> = { 1: 'FLOAT', 2: 'INT', 3: 'STRING', 4: 'TENSOR', 5: 'GRAPH', 6: 'FLOATS', 7: 'INTS', 8: 'STRINGS', 9: 'TENSORS', 10: 'GRAPHS' };

function nodeLabel(n: OnnxNode): string {
  return `node ${q(n.name)} (${n.opType})`;
}

function attr(n: OnnxNode, name: string, type: number): OnnxAttribute | undefined {
  const a = n.attributes.get(name);
  if (a === undefined) return undefined;
  if (a.type !== type) {
    throw new OnnxError('InvalidAttribute', `${nodeLabel(n)}: attribute ${q(name)} is ${TYPE_NAME[a.type] ?? `type ${a.type}`}, expected ${TYPE_NAME[type]}`);
  }
  return a;
}

function attrInt(n: OnnxNode, name: string, def: number): number {
  return attr(n, name, AT.INT)?.i ?? def;
}
function attrFloat(n: OnnxNode, name: string, def: number): number {
  return attr(n, name, AT.FLOAT)?.f ?? def;
}
function attrString(n: OnnxNode, name: string, def: string): string {
  return attr(n, name, AT.STRING)?.s ?? def;
}
function attrInts(n: OnnxNode, name: string): number[] | undefined {
  const a = attr(n, name, AT.INTS);
  return a ? (a.ints ?? []) : undefined;
}
function required<T>(n: OnnxNode, name: string, v: T | undefined): T {
  if (v === undefined) throw new OnnxError('InvalidAttribute', `${nodeLabel(n)}: the required attribute ${q(name)} is missing`);
  return v;
}
function bad(n: OnnxNode, msg: string): never {
  throw new OnnxError('InvalidAttribute', `${nodeLabel(n)}: ${msg}`);
}
/** An error while running a node: shapes or values that do not fit. */
function failed(n: OnnxNode, msg: string): never {
  throw new OnnxError('NodeFailed', `${nodeLabel(n)}: ${msg}`);
}

/** Two spatial ints from an attribute (kernel, strides, dilations), each ≥ min. */
function spatial(n: OnnxNode, name: string, def: number, min: number): [number, number] {
  const v = attrInts(n, name);
  if (v === undefined) return [def, def];
  if (v.length !== 2 || !v.every((x) => Number.isSafeInteger(x) && x >= min)) bad(n, `${name} must be 2 integers ≥ ${min} (2-D ops only), got ${fmt(v)}`);
  return [v[0]!, v[1]!];
}

/** pads [top, left, bottom, right], each a non-negative integer. */
function pads4(n: OnnxNode): [number, number, number, number] {
  const v = attrInts(n, 'pads');
  if (v === undefined) return [0, 0, 0, 0];
  if (v.length !== 4 || !v.every((x) => Number.isSafeInteger(x) && x >= 0)) bad(n, `pads must be 4 non-negative integers (2-D ops only), got ${fmt(v)}`);
  return [v[0]!, v[1]!, v[2]!, v[3]!];
}

function checkAutoPad(n: OnnxNode): string {
  const a = attrString(n, 'auto_pad', 'NOTSET');
  if (!['NOTSET', 'VALID', 'SAME_UPPER', 'SAME_LOWER'].includes(a)) bad(n, `auto_pad ${q(a)} is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER`);
  if (a !== 'NOTSET' && n.attributes.has('pads')) bad(n, `auto_pad ${a} and explicit pads cannot both be given`);
  return a;
}

/** [top, left, bottom, right] padding of a 2-D window op on an input of size h×w. */
function windowPads(n: OnnxNode, h: number, w: number, k: [number, number], s: [number, number], d: [number, number]): [number, number, number, number] {
  const mode = checkAutoPad(n);
  if (mode === 'NOTSET') return pads4(n);
  if (mode === 'VALID') return [0, 0, 0, 0];
  const side = (size: number, i: 0 | 1): [number, number] => {
    const out = Math.ceil(size / s[i]);
    const total = Math.max(0, (out - 1) * s[i] + (k[i] - 1) * d[i] + 1 - size);
    const small = Math.floor(total / 2);
    return mode === 'SAME_UPPER' ? [small, total - small] : [total - small, small];
  };
  const [t, b] = side(h, 0);
  const [l, r] = side(w, 1);
  return [t, l, b, r];
}

// ---------------------------------------------------------------------------------------------------------------
// Integer tensors
// ---------------------------------------------------------------------------------------------------------------

/** Output values from a function of the output multi-index. */
function intFromIndex(shape: number[], at: (idx: number[]) => number): IntValue {
  const n = numel(shape);
  if (n > ONNX_LIMITS.maxIntElements) throw new OnnxError('LimitExceeded', `an integer tensor of shape ${fmt(shape)} has more than ${ONNX_LIMITS.maxIntElements} elements`);
  const data = new Array<number>(n);
  const idx = new Array<number>(shape.length).fill(0);
  for (let i = 0; i < n; i++) {
    data[i] = at(idx);
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++idx[d]! < shape[d]!) break;
      idx[d] = 0;
    }
  }
  return intValue(shape, data);
}

function broadcastShapes(n: OnnxNode, a: readonly number[], b: readonly number[]): number[] {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const x = a[a.length - r + i] ?? 1;
    const y = b[b.length - r + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) failed(n, `shapes ${fmt(a)} and ${fmt(b)} do not broadcast`);
    out.push(x === 1 ? y : x);
  }
  return out;
}

function intBinary(n: OnnxNode, a: IntValue, b: IntValue, f: (x: number, y: number) => number): IntValue {
  const shape = broadcastShapes(n, a.shape, b.shape);
  const at = (v: IntValue, idx: number[]): number => {
    const st = strides(v.shape);
    let o = 0;
    for (let i = 0; i < v.shape.length; i++) o += (v.shape[i] === 1 ? 0 : idx[idx.length - v.shape.length + i]!) * st[i]!;
    return v.data[o]!;
  };
  return intFromIndex(shape, (idx) => f(at(a, idx), at(b, idx)));
}

// ---------------------------------------------------------------------------------------------------------------
// The ops
// ---------------------------------------------------------------------------------------------------------------

interface RunContext {
  opset: number;
  training: boolean;
}

interface OpDef {
  /** Attributes the op accepts (others are an error at load). */
  attrs: readonly string[];
  /** Inputs: [min, max]; outputs: at most this many. */
  inputs: [number, number];
  outputs?: number;
  /** Load-time checks of attribute types and values. */
  check?(n: OnnxNode, opset: number): void;
  run(n: OnnxNode, x: (Value | null)[], c: RunContext): Value;
}

function float(n: OnnxNode, v: Value | null | undefined, what: string): Tensor {
  v ??= null;
  if (v === null) failed(n, `the input ${what} is missing`);
  if (isInt(v)) failed(n, `the input ${what} must be a float tensor, got an integer tensor of shape ${fmt(v.shape)}`);
  return v;
}
function ints(n: OnnxNode, v: Value | null | undefined, what: string): IntValue {
  v ??= null;
  if (v === null) failed(n, `the input ${what} is missing`);
  if (!isInt(v)) failed(n, `the input ${what} must be an integer tensor, got a float tensor of shape ${fmt(v.shape)}`);
  return v;
}
const shapeOf = (v: Value): number[] => (isInt(v) ? v.shape : [...v.shape]);

/** Normalizes an axis in [-rank, rank). */
function axis(n: OnnxNode, a: number, rank: number, what = 'axis'): number {
  if (!Number.isInteger(a) || a < -rank || a >= rank) failed(n, `${what} ${a} is out of range for rank ${rank}`);
  return a < 0 ? a + rank : a;
}

/** Reshapes a float or int value. */
function reshapeValue(v: Value, shape: number[]): Value {
  return isInt(v) ? intValue(shape, v.data) : reshape(v, shape);
}

/** x[start:end:step] along one axis, on a float tensor, built from pad/reshape/narrow so that it is differentiable. */
function sliceAxis(x: Tensor, ax: number, start: number, end: number, step: number): Tensor {
  const size = x.shape[ax]!;
  if (step === 1) return narrow(x, ax, start, Math.max(0, end - start));
  const idx: number[] = [];
  for (let i = start; step > 0 ? i < end : i > end; i += step) idx.push(i);
  if (step < 0 || idx.length === 0) return takeAlong(x, ax, idx);
  // keep [start, start + count·step) (padding the end with zeros if it runs past), fold into (count, step), take column 0
  const count = idx.length;
  const kept = narrow(x, ax, start, Math.min(size - start, count * step));
  const grown = pad(kept, padAt(x.ndim, ax, 0, count * step - kept.shape[ax]!));
  const split = reshape(grown, [...x.shape.slice(0, ax), count, step, ...x.shape.slice(ax + 1)]);
  return reshape(narrow(split, ax + 1, 0, 1), [...x.shape.slice(0, ax), count, ...x.shape.slice(ax + 1)]);
}

/** pad()'s list (pairs from the last dim) that pads one axis by (before, after). */
function padAt(rank: number, ax: number, before: number, after: number): number[] {
  const p = new Array<number>(2 * rank).fill(0);
  p[2 * (rank - 1 - ax)] = before;
  p[2 * (rank - 1 - ax) + 1] = after;
  return p;
}

/** The entries idx of x along ax, in order (one narrow per index, concatenated). */
function takeAlong(x: Tensor, ax: number, idx: number[]): Tensor {
  if (idx.length === 0) return narrow(x, ax, 0, 0);
  return idx.length === 1 ? narrow(x, ax, idx[0]!, 1) : cat(idx.map((i) => narrow(x, ax, i, 1)), ax);
}

/** ONNX Slice's clamping of one axis: the first index and the end (exclusive) for the step's direction. */
function sliceBounds(size: number, start: number, end: number, step: number): [number, number] {
  if (start < 0) start += size;
  if (end < 0) end += size;
  if (step > 0) return [Math.min(Math.max(start, 0), size), Math.min(Math.max(end, 0), size)];
  return [Math.min(Math.max(start, 0), size - 1), Math.min(Math.max(end, -1), size - 1)];
}

function sliceArgs(n: OnnxNode, x: (Value | null)[], c: RunContext, rank: number): { axes: number[]; starts: number[]; ends: number[]; steps: number[] } {
  let starts: number[], ends: number[], axes: number[] | undefined, steps: number[] | undefined;
  if (c.opset < 10) {
    starts = required(n, 'starts', attrInts(n, 'starts'));
    ends = required(n, 'ends', attrInts(n, 'ends'));
    axes = attrInts(n, 'axes');
  } else {
    starts = ints(n, x[1] ?? null, 'starts').data;
    ends = ints(n, x[2] ?? null, 'ends').data;
    axes = x[3] ? ints(n, x[3], 'axes').data : undefined;
    steps = x[4] ? ints(n, x[4], 'steps').data : undefined;
  }
  axes ??= starts.map((_, i) => i);
  steps ??= starts.map(() => 1);
  if (ends.length !== starts.length || axes.length !== starts.length || steps.length !== starts.length) {
    failed(n, `starts, ends, axes and steps must have the same length, got ${starts.length}, ${ends.length}, ${axes.length}, ${steps.length}`);
  }
  const seen = new Set<number>();
  axes = axes.map((a) => {
    const d = axis(n, a, rank, 'slice axis');
    if (seen.has(d)) failed(n, `axis ${d} appears twice`);
    seen.add(d);
    return d;
  });
  if (steps.some((s) => s === 0)) failed(n, 'a step is 0');
  return { axes, starts, ends, steps };
}

function unsqueezeShape(n: OnnxNode, shape: number[], axes: number[]): number[] {
  const r = shape.length + axes.length;
  const at = new Set(axes.map((a) => axis(n, a, r, 'unsqueeze axis')));
  if (at.size !== axes.length) failed(n, `repeated axes ${fmt(axes)}`);
  const out: number[] = [];
  let k = 0;
  for (let i = 0; i < r; i++) out.push(at.has(i) ? 1 : shape[k++]!);
  return out;
}

const INT_TYPES = new Set<number>([DT.INT64, DT.INT32, DT.INT16, DT.INT8, DT.UINT8, DT.UINT16, DT.UINT32, DT.UINT64, DT.BOOL]);
const FLOAT_TYPES = new Set<number>([DT.FLOAT, DT.DOUBLE, DT.FLOAT16, DT.BFLOAT16]);

/** A Constant node's or an initializer's value. */
function tensorValue(t: OnnxTensor): Value {
  return t.value.kind === 'float' ? new Tensor(t.value.data, t.dims) : intValue(t.dims, t.value.data);
}

function binary(fl: (a: Tensor, b: Tensor) => Tensor, it: (a: number, b: number) => number): OpDef {
  return {
    attrs: [],
    inputs: [2, 2],
    run(n, [a, b]) {
      if (!a || !b) failed(n, 'two inputs are needed');
      if (isInt(a) && isInt(b)) return intBinary(n, a, b, it);
      return fl(float(n, a, 'A'), float(n, b, 'B'));
    },
  };
}

const OPS: Record<string, OpDef> = {
  Conv: {
    attrs: ['auto_pad', 'dilations', 'group', 'kernel_shape', 'pads', 'strides'],
    inputs: [2, 3],
    check(n) {
      checkAutoPad(n);
      spatial(n, 'strides', 1, 1);
      spatial(n, 'dilations', 1, 1);
      spatial(n, 'kernel_shape', 1, 1);
      pads4(n);
      if (attrInt(n, 'group', 1) < 1) bad(n, `group must be ≥ 1, got ${attrInt(n, 'group', 1)}`);
    },
    run(n, [xv, wv, bv]) {
      const x = float(n, xv, 'X');
      const w = float(n, wv, 'W');
      const b = bv ? float(n, bv, 'B') : null;
      if (x.ndim !== 4 || w.ndim !== 4) failed(n, `only 2-D convolutions are supported: X ${fmt(x.shape)}, W ${fmt(w.shape)}`);
      const k: [number, number] = [w.shape[2]!, w.shape[3]!];
      const ks = attrInts(n, 'kernel_shape');
      if (ks && (ks[0] !== k[0] || ks[1] !== k[1])) failed(n, `kernel_shape ${fmt(ks)} does not match W ${fmt(w.shape)}`);
      const s = spatial(n, 'strides', 1, 1);
      const d = spatial(n, 'dilations', 1, 1);
      const [t, l, bo, r] = windowPads(n, x.shape[2]!, x.shape[3]!, k, s, d);
      const groups = attrInt(n, 'group', 1);
      if (t === bo && l === r) return conv2d(x, w, b, { stride: s, padding: [t, l], dilation: d, groups });
      return conv2d(pad(x, [l, r, t, bo]), w, b, { stride: s, dilation: d, groups });
    },
  },
  BatchNormalization: {
    attrs: ['epsilon', 'momentum', 'spatial', 'training_mode'],
    inputs: [5, 5],
    outputs: 1,
    check(n) {
      if (attrInt(n, 'training_mode', 0) !== 0) bad(n, 'training_mode 1 (a training graph) is not supported; export the model in eval mode');
      if (attrInt(n, 'spatial', 1) !== 1) bad(n, 'spatial 0 is not supported');
      if (!(attrFloat(n, 'epsilon', 1e-5) > 0)) bad(n, 'epsilon must be positive');
      attrFloat(n, 'momentum', 0.9);
    },
    run(n, [x, scale, b, m, v], c) {
      return batchNorm2d(float(n, x, 'X'), float(n, m, 'input_mean'), float(n, v, 'input_var'), float(n, scale, 'scale'), float(n, b, 'B'), {
        training: c.training,
        momentum: 1 - attrFloat(n, 'momentum', 0.9),
        eps: attrFloat(n, 'epsilon', 1e-5),
      });
    },
  },
  Relu: { attrs: [], inputs: [1, 1], run: (n, [x]) => relu(float(n, x, 'X')) },
  MaxPool: {
    attrs: ['auto_pad', 'ceil_mode', 'dilations', 'kernel_shape', 'pads', 'storage_order', 'strides'],
    inputs: [1, 1],
    outputs: 1,
    check(n) {
      checkAutoPad(n);
      spatial(n, 'kernel_shape', 1, 1);
      required(n, 'kernel_shape', attrInts(n, 'kernel_shape'));
      spatial(n, 'strides', 1, 1);
      spatial(n, 'dilations', 1, 1);
      pads4(n);
      attrInt(n, 'ceil_mode', 0);
      if (attrInt(n, 'storage_order', 0) !== 0) bad(n, 'storage_order 1 (column major) is not supported');
    },
    run(n, [xv]) {
      const x = float(n, xv, 'X');
      if (x.ndim !== 4) failed(n, `only 2-D pooling is supported: X ${fmt(x.shape)}`);
      const k = spatial(n, 'kernel_shape', 1, 1);
      const s = spatial(n, 'strides', 1, 1);
      const d = spatial(n, 'dilations', 1, 1);
      const [t, l, b, r] = windowPads(n, x.shape[2]!, x.shape[3]!, k, s, d);
      const ceilMode = attrInt(n, 'ceil_mode', 0) === 1;
      if (t === b && l === r && 2 * t <= k[0] && 2 * l <= k[1]) return maxPool2d(x, { kernelSize: k, stride: s, padding: [t, l], dilation: d, ceilMode });
      return maxPool2d(pad(x, [l, r, t, b], -Infinity), { kernelSize: k, stride: s, dilation: d, ceilMode });
    },
  },
  AveragePool: {
    attrs: ['auto_pad', 'ceil_mode', 'count_include_pad', 'dilations', 'kernel_shape', 'pads', 'strides'],
    inputs: [1, 1],
    check(n) {
      checkAutoPad(n);
      required(n, 'kernel_shape', attrInts(n, 'kernel_shape'));
      spatial(n, 'kernel_shape', 1, 1);
      spatial(n, 'strides', 1, 1);
      const d = spatial(n, 'dilations', 1, 1);
      if (d[0] !== 1 || d[1] !== 1) bad(n, `dilations ${fmt(d)} are not supported for AveragePool`);
      pads4(n);
    },
    run(n, [xv]) {
      const x = float(n, xv, 'X');
      if (x.ndim !== 4) failed(n, `only 2-D pooling is supported: X ${fmt(x.shape)}`);
      const k = spatial(n, 'kernel_shape', 1, 1);
      const s = spatial(n, 'strides', 1, 1);
      const [t, l, b, r] = windowPads(n, x.shape[2]!, x.shape[3]!, k, s, [1, 1]);
      const ceilMode = attrInt(n, 'ceil_mode', 0) === 1;
      const countIncludePad = attrInt(n, 'count_include_pad', 0) === 1;
      if (t === b && l === r && 2 * t <= k[0] && 2 * l <= k[1]) return avgPool2d(x, { kernelSize: k, stride: s, padding: [t, l], ceilMode, countIncludePad });
      if (!countIncludePad) failed(n, `asymmetric or large pads ${fmt([t, l, b, r])} need count_include_pad 1`);
      return avgPool2d(pad(x, [l, r, t, b]), { kernelSize: k, stride: s, ceilMode });
    },
  },
  GlobalAveragePool: {
    attrs: [],
    inputs: [1, 1],
    run(n, [xv]) {
      const x = float(n, xv, 'X');
      if (x.ndim < 3) failed(n, `X must be (N, C, ...), got ${fmt(x.shape)}`);
      if (x.ndim === 4) return adaptiveAvgPool2d(x, [1, 1]);
      return mean(x, x.shape.slice(2).map((_, i) => i + 2), true);
    },
  },
  Add: binary(add, (a, b) => a + b),
  Sub: binary(sub, (a, b) => a - b),
  Mul: binary(mul, (a, b) => a * b),
  Div: binary(div, (a, b) => (b === 0 ? 0 : Math.trunc(a / b))),
  Flatten: {
    attrs: ['axis'],
    inputs: [1, 1],
    run(n, [x]) {
      if (!x) failed(n, 'the input is missing');
      const shape = shapeOf(x);
      const a = attrInt(n, 'axis', 1);
      if (a < -shape.length || a > shape.length) failed(n, `axis ${a} is out of range for input ${fmt(shape)}`);
      const k = a < 0 ? a + shape.length : a;
      return reshapeValue(x, [numel(shape.slice(0, k)), numel(shape.slice(k))]);
    },
  },
  Gemm: {
    attrs: ['alpha', 'beta', 'transA', 'transB', 'broadcast'],
    inputs: [2, 3],
    check(n) {
      attrFloat(n, 'alpha', 1);
      attrFloat(n, 'beta', 1);
      attrInt(n, 'transA', 0);
      attrInt(n, 'transB', 0);
    },
    run(n, [av, bv, cv]) {
      const a = float(n, av, 'A');
      const b = float(n, bv, 'B');
      const c = cv ? float(n, cv, 'C') : null;
      if (a.ndim !== 2 || b.ndim !== 2) failed(n, `A and B must be 2-D, got ${fmt(a.shape)} and ${fmt(b.shape)}`);
      const alpha = attrFloat(n, 'alpha', 1);
      const beta = attrFloat(n, 'beta', 1);
      const ta = attrInt(n, 'transA', 0) === 1;
      const tb = attrInt(n, 'transB', 0) === 1;
      // the layer a Linear exports to: y = x·Wᵀ + b
      if (!ta && tb && alpha === 1 && beta === 1 && (c === null || (c.ndim === 1 && c.shape[0] === b.shape[0]))) return linear(a, b, c);
      let y = matmul(ta ? transpose(a, 0, 1) : a, tb ? transpose(b, 0, 1) : b);
      if (alpha !== 1) y = mul(y, alpha);
      if (c) y = add(y, beta === 1 ? c : mul(c, beta));
      return y;
    },
  },
  MatMul: { attrs: [], inputs: [2, 2], run: (n, [a, b]) => matmul(float(n, a, 'A'), float(n, b, 'B')) },
  Reshape: {
    attrs: ['allowzero', 'shape'],
    inputs: [1, 2],
    run(n, [x, s], c) {
      if (!x) failed(n, 'the input is missing');
      const want = c.opset < 5 ? required(n, 'shape', attrInts(n, 'shape')) : ints(n, s ?? null, 'shape').data;
      const from = shapeOf(x);
      const allowZero = attrInt(n, 'allowzero', 0) === 1;
      let infer = -1;
      const shape = want.map((d, i) => {
        if (d === 0 && !allowZero) {
          if (i >= from.length) failed(n, `shape ${fmt(want)} copies dim ${i}, which input ${fmt(from)} does not have`);
          return from[i]!;
        }
        if (d === -1) {
          if (infer >= 0) failed(n, `shape ${fmt(want)} has more than one -1`);
          infer = i;
          return 1;
        }
        if (!Number.isSafeInteger(d) || d < 0) failed(n, `shape ${fmt(want)} has an invalid dim ${d}`);
        return d;
      });
      const total = numel(from);
      if (infer >= 0) {
        const rest = numel(shape);
        if (rest === 0 || total % rest !== 0) failed(n, `cannot reshape ${fmt(from)} into ${fmt(want)}`);
        shape[infer] = total / rest;
      }
      if (numel(shape) !== total) failed(n, `cannot reshape ${fmt(from)} (${total} elements) into ${fmt(shape)}`);
      return reshapeValue(x, shape);
    },
  },
  Concat: {
    attrs: ['axis'],
    inputs: [1, ONNX_LIMITS.maxNodeIO],
    check(n) {
      required(n, 'axis', attr(n, 'axis', AT.INT));
    },
    run(n, xs) {
      const vs = xs.map((v, i) => {
        if (!v) failed(n, `input ${i} is missing`);
        return v;
      });
      const rank = shapeOf(vs[0]!).length;
      const ax = axis(n, attrInt(n, 'axis', 0), rank);
      if (vs.every(isInt)) {
        const parts = vs as IntValue[];
        for (const p of parts) {
          if (p.shape.length !== rank || p.shape.some((d, i) => i !== ax && d !== parts[0]!.shape[i])) failed(n, `shapes ${parts.map((v) => fmt(v.shape)).join(', ')} do not fit along axis ${ax}`);
        }
        const shape = parts[0]!.shape.slice();
        shape[ax] = parts.reduce((s, p) => s + p.shape[ax]!, 0);
        const offsets: number[] = [];
        let o = 0;
        for (const p of parts) {
          offsets.push(o);
          o += p.shape[ax]!;
        }
        return intFromIndex(shape, (idx) => {
          let k = parts.length - 1;
          while (offsets[k]! > idx[ax]!) k--;
          const p = parts[k]!;
          const st = strides(p.shape);
          let off = 0;
          for (let i = 0; i < rank; i++) off += (i === ax ? idx[i]! - offsets[k]! : idx[i]!) * st[i]!;
          return p.data[off]!;
        });
      }
      return cat(vs.map((v, i) => float(n, v, `${i}`)), ax);
    },
  },
  Pad: {
    attrs: ['mode', 'pads', 'value'],
    inputs: [1, 4],
    check(n) {
      const mode = attrString(n, 'mode', 'constant');
      if (mode !== 'constant') bad(n, `mode ${q(mode)} is not supported (only constant)`);
    },
    run(n, [xv, pv, cv, av], c) {
      const x = float(n, xv, 'data');
      const r = x.ndim;
      let pads: number[];
      let value = 0;
      if (c.opset < 11) {
        pads = required(n, 'pads', attrInts(n, 'pads'));
        value = attrFloat(n, 'value', 0);
      } else {
        pads = ints(n, pv ?? null, 'pads').data;
        if (cv) {
          const t = isInt(cv) ? cv.data : Array.from(cv.data);
          if (t.length !== 1) failed(n, `constant_value must have one element, got ${t.length}`);
          value = t[0]!;
        }
      }
      const axes = av ? ints(n, av, 'axes').data.map((a) => axis(n, a, r)) : x.shape.map((_, i) => i);
      if (pads.length !== 2 * axes.length) failed(n, `pads ${fmt(pads)} must have 2 × ${axes.length} entries for input ${fmt(x.shape)}`);
      const list = new Array<number>(2 * r).fill(0);
      axes.forEach((a, i) => {
        list[2 * (r - 1 - a)] = pads[i]!;
        list[2 * (r - 1 - a) + 1] = pads[i + axes.length]!;
      });
      return pad(x, list, value);
    },
  },
  Slice: {
    attrs: ['axes', 'ends', 'starts'],
    inputs: [1, 5],
    run(n, x, c) {
      const data = x[0];
      if (!data) failed(n, 'the input data is missing');
      const shape = shapeOf(data);
      const { axes, starts, ends, steps } = sliceArgs(n, x, c, shape.length);
      const plan = shape.map((d) => ({ start: 0, end: d, step: 1, count: d }));
      axes.forEach((a, i) => {
        const [s, e] = sliceBounds(shape[a]!, starts[i]!, ends[i]!, steps[i]!);
        const st = steps[i]!;
        const count = st > 0 ? Math.max(0, Math.ceil((e - s) / st)) : Math.max(0, Math.ceil((s - e) / -st));
        plan[a] = { start: s, end: e, step: st, count };
      });
      if (isInt(data)) {
        const st = strides(data.shape);
        return intFromIndex(plan.map((p) => p.count), (idx) => data.data[idx.reduce((o, v, i) => o + (plan[i]!.start + v * plan[i]!.step) * st[i]!, 0)]!);
      }
      let y = data;
      for (const a of axes) {
        const p = plan[a]!;
        if (p.start === 0 && p.step === 1 && p.count === shape[a]) continue;
        y = sliceAxis(y, a, p.start, p.end, p.step);
      }
      return y;
    },
  },
  Softmax: {
    attrs: ['axis'],
    inputs: [1, 1],
    run(n, [xv], c) {
      const x = float(n, xv, 'input');
      const a = axis(n, attrInt(n, 'axis', c.opset < 13 ? 1 : -1), x.ndim);
      if (c.opset >= 13) return softmax(x, a);
      // before opset 13: the input is flattened to 2-D at axis and normalized per row
      const flat = reshape(x, [numel(x.shape.slice(0, a)), numel(x.shape.slice(a))]);
      return reshape(softmax(flat, 1), [...x.shape]);
    },
  },
  Identity: {
    attrs: [],
    inputs: [1, 1],
    run(n, [x]) {
      if (!x) failed(n, 'the input is missing');
      return x;
    },
  },
  Dropout: {
    attrs: ['ratio', 'seed', 'is_test'],
    inputs: [1, 3],
    outputs: 1,
    run(n, [xv, rv], c) {
      const x = float(n, xv, 'data');
      if (!c.training) return x;
      const ratio = c.opset < 12 ? attrFloat(n, 'ratio', 0.5) : rv ? float(n, rv, 'ratio').data[0]! : 0.5;
      return dropout(x, ratio, true);
    },
  },
  Constant: {
    attrs: ['value', 'value_float', 'value_floats', 'value_int', 'value_ints', 'sparse_value', 'value_string', 'value_strings'],
    inputs: [0, 0],
    check(n) {
      constantValue(n);
    },
    run: (n) => constantValue(n),
  },
  Shape: {
    attrs: ['start', 'end'],
    inputs: [1, 1],
    run(n, [x]) {
      if (!x) failed(n, 'the input is missing');
      const s = shapeOf(x);
      const r = s.length;
      const clamp = (v: number): number => Math.min(Math.max(v < 0 ? v + r : v, 0), r);
      const part = s.slice(clamp(attrInt(n, 'start', 0)), clamp(attrInt(n, 'end', r)));
      return intValue([part.length], part);
    },
  },
  Gather: {
    attrs: ['axis'],
    inputs: [2, 2],
    run(n, [dv, iv]) {
      if (!dv) failed(n, 'the input data is missing');
      const ind = ints(n, iv ?? null, 'indices');
      const shape = shapeOf(dv);
      const a = axis(n, attrInt(n, 'axis', 0), shape.length);
      const size = shape[a]!;
      const idx = ind.data.map((i) => {
        if (!Number.isInteger(i) || i < -size || i >= size) failed(n, `index ${i} is out of range for dim ${a} of size ${size}`);
        return i < 0 ? i + size : i;
      });
      const outShape = [...shape.slice(0, a), ...ind.shape, ...shape.slice(a + 1)];
      if (isInt(dv)) {
        const st = strides(shape);
        const ir = ind.shape.length;
        const ist = strides(ind.shape);
        return intFromIndex(outShape, (o) => {
          let off = 0;
          for (let i = 0; i < a; i++) off += o[i]! * st[i]!;
          let k = 0;
          for (let i = 0; i < ir; i++) k += o[a + i]! * ist[i]!;
          off += idx[k]! * st[a]!;
          for (let i = a + 1; i < shape.length; i++) off += o[i + ir - 1]! * st[i]!;
          return dv.data[off]!;
        });
      }
      return reshape(takeAlong(dv, a, idx), outShape);
    },
  },
  Unsqueeze: {
    attrs: ['axes'],
    inputs: [1, 2],
    run(n, [x, av], c) {
      if (!x) failed(n, 'the input is missing');
      const axes = c.opset < 13 ? required(n, 'axes', attrInts(n, 'axes')) : ints(n, av ?? null, 'axes').data;
      return reshapeValue(x, unsqueezeShape(n, shapeOf(x), axes));
    },
  },
  Squeeze: {
    attrs: ['axes'],
    inputs: [1, 2],
    run(n, [x, av], c) {
      if (!x) failed(n, 'the input is missing');
      const shape = shapeOf(x);
      const given = c.opset < 13 ? attrInts(n, 'axes') : av ? ints(n, av, 'axes').data : undefined;
      const axes = new Set(given ? given.map((a) => axis(n, a, shape.length)) : shape.flatMap((d, i) => (d === 1 ? [i] : [])));
      for (const a of axes) if (shape[a] !== 1) failed(n, `cannot squeeze dim ${a} of size ${shape[a]} (input ${fmt(shape)})`);
      return reshapeValue(x, shape.filter((_, i) => !axes.has(i)));
    },
  },
  Cast: {
    attrs: ['to', 'saturate'],
    inputs: [1, 1],
    check(n) {
      const to = required(n, 'to', attr(n, 'to', AT.INT)?.i);
      if (!INT_TYPES.has(to) && !FLOAT_TYPES.has(to)) bad(n, `casting to ${dtypeName(to)} is not supported`);
    },
    run(n, [x]) {
      if (!x) failed(n, 'the input is missing');
      const to = attrInt(n, 'to', DT.FLOAT);
      if (FLOAT_TYPES.has(to)) return isInt(x) ? new Tensor(Float32Array.from(x.data), x.shape) : x;
      const src = isInt(x) ? x.data : Array.from(x.data);
      if (src.length > ONNX_LIMITS.maxIntElements) failed(n, `casting ${src.length} elements to ${dtypeName(to)} is over the integer tensor limit`);
      const out = src.map((v) => (to === DT.BOOL ? (v !== 0 ? 1 : 0) : Number.isFinite(v) ? Math.trunc(v) : 0));
      return intValue(shapeOf(x), out);
    },
  },
  ConstantOfShape: {
    attrs: ['value'],
    inputs: [1, 1],
    run(n, [sv]) {
      const shape = ints(n, sv ?? null, 'input').data;
      const t = attr(n, 'value', AT.TENSOR)?.t;
      const v = t ? tensorValue(t) : null;
      if (v && numel(shapeOf(v)) !== 1) failed(n, `value must have one element, got shape ${fmt(shapeOf(v))}`);
      const count = checkShape('ConstantOfShape', shape);
      if (v && isInt(v)) return intFromIndex(shape, () => v.data[0]!);
      const data = new Float32Array(count);
      if (v) data.fill((v as Tensor).data[0]!);
      return new Tensor(data, shape);
    },
  },
  Transpose: {
    attrs: ['perm'],
    inputs: [1, 1],
    run(n, [x]) {
      if (!x) failed(n, 'the input is missing');
      const shape = shapeOf(x);
      const perm = attrInts(n, 'perm') ?? shape.map((_, i) => shape.length - 1 - i);
      if (perm.length !== shape.length || new Set(perm.map((p) => axis(n, p, shape.length))).size !== shape.length) failed(n, `perm ${fmt(perm)} is not a permutation of ${shape.length} axes`);
      const p = perm.map((a) => (a < 0 ? a + shape.length : a));
      if (!isInt(x)) return permute(x, p);
      const st = strides(shape);
      return intFromIndex(p.map((a) => shape[a]!), (idx) => x.data[idx.reduce((o, v, i) => o + v * st[p[i]!]!, 0)]!);
    },
  },
};

/** The value of a Constant node (its one value attribute). */
function constantValue(n: OnnxNode): Value {
  const given = [...n.attributes.keys()];
  if (given.length !== 1) bad(n, `a Constant needs exactly one value attribute, got ${given.length ? given.join(', ') : 'none'}`);
  const name = given[0]!;
  switch (name) {
    case 'value': {
      const t = required(n, 'value', attr(n, 'value', AT.TENSOR)?.t);
      return tensorValue(t);
    }
    case 'value_float':
      return new Tensor(new Float32Array([required(n, name, attr(n, name, AT.FLOAT)?.f)]), []);
    case 'value_floats': {
      const v = required(n, name, attr(n, name, AT.FLOATS)?.floats ?? (n.attributes.get(name)?.type === AT.FLOATS ? [] : undefined));
      return new Tensor(Float32Array.from(v), [v.length]);
    }
    case 'value_int':
      return intValue([], [required(n, name, attr(n, name, AT.INT)?.i)]);
    case 'value_ints': {
      const v = required(n, name, attrInts(n, name));
      return intValue([v.length], v);
    }
    default:
      bad(n, `the Constant attribute ${q(name)} is not supported`);
  }
}

/** Ops the importer runs, by op type (default domain). */
export const ONNX_IMPORT_OPS: readonly string[] = Object.freeze(Object.keys(OPS).sort());

// ---------------------------------------------------------------------------------------------------------------
// The module
// ---------------------------------------------------------------------------------------------------------------

/**
 * An imported ONNX graph as a Module. forward(x) runs the nodes in order with our ops and returns the first graph
 * output. Parameters and buffers carry the initializers' names (`stateDict()`, `namedParameters()`), so optimizers,
 * `loadStateDict` and saveSafetensors work on it as on our own models. Loaded in eval mode; `train()` makes its
 * BatchNormalization nodes use batch statistics and update the running ones, and Dropout drop.
 */
export class OnnxModel extends Module {
  /** The default domain's opset version. */
  readonly opset: number;
  readonly graphName: string;
  readonly producer: string;
  /** The image input's name and declared dims (a number, a symbolic name or null per dim; null if undeclared). */
  readonly inputName: string;
  readonly inputDims: readonly (number | string | null)[] | null;
  readonly outputNames: readonly string[];
  private readonly _params = new Map<string, Tensor>();
  private readonly _consts = new Map<string, Value>();
  private readonly _nodes: OnnxNode[];
  /** For each node, the values whose last reader it is (dropped after it runs). */
  private readonly _lastUse: string[][];

  constructor(proto: OnnxModelProto) {
    super();
    const g = proto.graph;
    const opset = proto.opsets.get('')!;
    if (opset < ONNX_IMPORT_OPSETS[0] || opset > ONNX_IMPORT_OPSETS[1]) {
      throw new OnnxError('InvalidModel', `opset ${opset} of the default domain is not supported (${ONNX_IMPORT_OPSETS[0]}–${ONNX_IMPORT_OPSETS[1]})`);
    }
    this.opset = opset;
    this.graphName = g.name;
    this.producer = `${proto.producerName} ${proto.producerVersion}`.trim();

    // 1. every op must be one we run: list all that are not, with their nodes
    const unsupported = g.nodes.filter((n) => n.domain !== '' || !Object.prototype.hasOwnProperty.call(OPS, n.opType));
    if (unsupported.length) {
      const byOp = new Map<string, string[]>();
      for (const n of unsupported) {
        const key = n.domain ? `${n.domain}.${n.opType}` : n.opType;
        byOp.set(key, [...(byOp.get(key) ?? []), q(n.name)]);
      }
      const list = [...byOp].map(([op, names]) => `${op} (${names.length} node${names.length > 1 ? 's' : ''}: ${names.slice(0, 20).join(', ')}${names.length > 20 ? ', …' : ''})`);
      throw new OnnxError('UnsupportedOp', `the graph uses ${byOp.size} op type${byOp.size > 1 ? 's' : ''} that resnet-ts does not run: ${list.join('; ')}. Supported: ${ONNX_IMPORT_OPS.join(', ')}`);
    }

    // 2. initializers: unique names, float ones become parameters or buffers
    const init = new Map<string, OnnxTensor>();
    for (const t of g.initializers) {
      if (init.has(t.name)) throw new OnnxError('InvalidGraph', `the initializer ${q(t.name)} appears twice`);
      init.set(t.name, t);
    }
    const runningStats = new Set<string>();
    for (const n of g.nodes) if (n.opType === 'BatchNormalization') for (const i of [3, 4]) if (n.inputs[i]) runningStats.add(n.inputs[i]!);
    for (const t of g.initializers) {
      if (t.value.kind === 'int') {
        this._consts.set(t.name, intValue(t.dims, t.value.data));
        continue;
      }
      // in shared memory, as our layers' parameters are, so the worker pool reads them without a copy per call
      const data = allocShared('loadOnnx', t.value.data.length);
      data.set(t.value.data);
      const tensor = new Tensor(data, t.dims);
      if (runningStats.has(t.name)) this.registerBuffer(t.name, tensor);
      else {
        tensor.requiresGrad = true;
        this._params.set(t.name, tensor);
      }
    }

    // 3. the image input: the one graph input that is not an initializer
    const images = g.inputs.filter((v) => !init.has(v.name));
    if (images.length !== 1) {
      throw new OnnxError('InvalidGraph', `the graph must have exactly one input besides its initializers, got ${images.length}${images.length ? `: ${images.map((v) => q(v.name)).join(', ')}` : ''}`);
    }
    const input: OnnxValueInfo = images[0]!;
    if (input.elemType !== 0 && !FLOAT_TYPES.has(input.elemType)) throw new OnnxError('InvalidGraph', `the input ${q(input.name)} is ${dtypeName(input.elemType)}; only float inputs are supported`);
    this.inputName = input.name;
    this.inputDims = input.dims;
    if (g.outputs.length === 0) throw new OnnxError('InvalidGraph', 'the graph has no outputs');
    this.outputNames = g.outputs.map((o) => o.name);

    // 4. nodes in order: inputs made before use, outputs made once, attributes valid, Constant values computed now
    const made = new Set<string>([...init.keys(), input.name]);
    const lastReader = new Map<string, number>();
    g.nodes.forEach((n, k) => {
      const def = OPS[n.opType]!;
      const given = n.inputs.length;
      if (given < def.inputs[0] || given > def.inputs[1]) {
        throw new OnnxError('InvalidGraph', `${nodeLabel(n)} has ${given} inputs, expected ${def.inputs[0] === def.inputs[1] ? def.inputs[0] : `${def.inputs[0]} to ${def.inputs[1]}`}`);
      }
      const outs = n.outputs.filter((o) => o !== '');
      if (outs.length === 0 || n.outputs[0] === '') throw new OnnxError('InvalidGraph', `${nodeLabel(n)} has no output`);
      if (n.outputs.length > (def.outputs ?? 1)) {
        throw new OnnxError('InvalidAttribute', `${nodeLabel(n)} has ${n.outputs.length} outputs; resnet-ts computes only the first (${def.outputs ?? 1})`);
      }
      const unknown = [...n.attributes.keys()].filter((a) => !def.attrs.includes(a));
      if (unknown.length) throw new OnnxError('InvalidAttribute', `${nodeLabel(n)}: unknown attribute${unknown.length > 1 ? 's' : ''} ${unknown.map(q).join(', ')}`);
      def.check?.(n, opset);
      for (const i of n.inputs) {
        if (i === '') continue;
        if (!made.has(i)) throw new OnnxError('InvalidGraph', `${nodeLabel(n)} reads ${q(i)} before any node makes it (nodes must be in topological order)`);
        lastReader.set(i, k);
      }
      for (const o of outs) {
        if (made.has(o)) throw new OnnxError('InvalidGraph', `${nodeLabel(n)} makes ${q(o)}, which is already defined`);
        made.add(o);
      }
      if (n.opType === 'Constant') this._consts.set(n.outputs[0]!, constantValue(n));
    });
    for (const o of this.outputNames) {
      if (!made.has(o)) throw new OnnxError('InvalidGraph', `the graph output ${q(o)} is not made by any node`);
      lastReader.set(o, g.nodes.length);
    }
    this._nodes = g.nodes;
    this._lastUse = g.nodes.map(() => []);
    for (const [v, k] of lastReader) if (k < g.nodes.length && !init.has(v) && !this._consts.has(v)) this._lastUse[k]!.push(v);
    this.eval();
  }

  override get typeName(): string {
    return 'OnnxModel';
  }

  override ownParameters(): [string, Tensor][] {
    return [...this._params];
  }

  override extraRepr(): string {
    return `${q(this.graphName)}, ${this._nodes.length} nodes, opset ${this.opset}${this.producer ? `, from ${q(this.producer)}` : ''}`;
  }

  /** Runs the graph on x and returns its first output. */
  forward(x: Tensor): Tensor {
    const out = this.run(x)[this.outputNames[0]!]!;
    return out;
  }

  /** Runs the graph on x; every graph output by name. */
  run(x: Tensor): Record<string, Tensor> {
    if (!(x instanceof Tensor)) throw new OnnxError('InvalidInput', `the input must be a Tensor, got ${x === null ? 'null' : typeof x}`);
    const dims = this.inputDims;
    if (dims) {
      const ok = x.ndim === dims.length && dims.every((d, i) => typeof d !== 'number' || d <= 0 || d === x.shape[i]);
      if (!ok) {
        const want = `[${dims.map((d) => (typeof d === 'number' && d > 0 ? String(d) : typeof d === 'string' && d ? d : '?')).join(', ')}]`;
        throw new OnnxError('InvalidInput', `the input ${q(this.inputName)} must have shape ${want}, got ${fmt(x.shape)}`);
      }
    }
    const env = new Map<string, Value>();
    for (const [k, v] of this._consts) env.set(k, v);
    for (const [k, v] of this._params) env.set(k, v);
    for (const [k, v] of this.ownBuffers()) env.set(k, v);
    env.set(this.inputName, x);
    const c: RunContext = { opset: this.opset, training: this.training };
    this._nodes.forEach((n, k) => {
      if (n.opType === 'Constant') return;
      const args = n.inputs.map((i) => (i === '' ? null : env.get(i)!));
      let y: Value;
      try {
        y = OPS[n.opType]!.run(n, args, c);
      } catch (e) {
        if (e instanceof OnnxError) throw e;
        if (e instanceof ResnetTsError) throw new OnnxError('NodeFailed', `${nodeLabel(n)}: ${e.message}`);
        throw e;
      }
      env.set(n.outputs[0]!, y);
      for (const v of this._lastUse[k]!) env.delete(v);
    });
    const out: Record<string, Tensor> = Object.create(null);
    for (const o of this.outputNames) {
      const v = env.get(o)!;
      out[o] = isInt(v) ? new Tensor(Float32Array.from(v.data), v.shape) : v;
    }
    return out;
  }
}

/**
 * Reads an ONNX model and returns it as a Module (see OnnxModel). Throws OnnxError (with `kind`) on malformed
 * bytes, limits, unsupported ops (all listed at once) or an invalid graph, before running anything.
 */
export function loadOnnx(bytes: Uint8Array | ArrayBuffer): OnnxModel {
  const u8 = bytes instanceof Uint8Array ? bytes : bytes instanceof ArrayBuffer ? new Uint8Array(bytes) : null;
  if (!u8) throw new OnnxError('InvalidModel', `expected the bytes of an .onnx file (Uint8Array or ArrayBuffer), got ${bytes === null ? 'null' : typeof bytes}`);
  return new OnnxModel(readModelProto(u8));
}
