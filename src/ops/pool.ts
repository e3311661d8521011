import { defineOp, type Ctx } from '../autograd.js';
import { ShapeError, ValueError } from '../errors.js';
import {
  adaptiveAvgPool2dBackward,
  adaptiveAvgPool2dForward,
  avgPool2dBackward,
  avgPool2dForward,
  globalAvgPool2dBackward,
  maxPool2dBackward,
  maxPool2dForward,
  maxPool2dForwardValues,
  poolOutSize,
  type PoolParams,
} from '../kernels/pool.js';
import { alloc, fmt } from '../shape.js';
import { Tensor } from '../tensor.js';
import { pair, type Pair } from './conv.js';
import { gradBuffer, takeBuffer } from '../fusion/arena.js';

export interface MaxPool2dOptions {
  kernelSize: Pair;
  /** Default: kernelSize. */
  stride?: Pair | null;
  padding?: Pair;
  dilation?: Pair;
  ceilMode?: boolean;
}

export interface AvgPool2dOptions {
  kernelSize: Pair;
  stride?: Pair | null;
  padding?: Pair;
  ceilMode?: boolean;
  countIncludePad?: boolean;
  divisorOverride?: number;
}

/** Validates pooling options and computes the output size (PyTorch's pool2d_shape_check). */
function poolParams(op: string, x: Tensor, k: Pair, s: Pair | null | undefined, pd: Pair | undefined, dl: Pair | undefined, ceilMode: boolean): PoolParams {
  if (x.ndim !== 4) {
    throw new ShapeError(op, `expected 4-D input (N, C, H, W), got ${x.ndim}-D input of shape ${fmt(x.shape)}`);
  }
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const shapes = `input ${fmt(x.shape)}`;
  const [kh, kw] = pair(op, 'kernelSize', k, 1, shapes);
  const [sh, sw] = pair(op, 'stride', s ?? k, 1, shapes);
  const [ph, pw] = pair(op, 'padding', pd ?? 0, 0, shapes);
  const [dh, dw] = pair(op, 'dilation', dl ?? 1, 1, shapes);
  if (ph > kh / 2 || pw > kw / 2) {
    throw new ValueError(op, `pad should be smaller than or equal to half of kernel size, but got padW = ${pw}, padH = ${ph}, kW = ${kw}, kH = ${kh}; ${shapes}`);
  }
  const oh = poolOutSize(h, kh, sh, ph, dh, ceilMode);
  const ow = poolOutSize(w, kw, sw, pw, dw, ceilMode);
  if (oh < 1 || ow < 1) {
    throw new ShapeError(op, `Given input size: (${c}x${h}x${w}). Calculated output size: (${c}x${oh}x${ow}). Output size is too small; ${shapes}, kernel (${kh}, ${kw}), stride (${sh}, ${sw}), padding (${ph}, ${pw}), dilation (${dh}, ${dw})`);
  }
  return { n, c, h, w, kh, kw, strideH: sh, strideW: sw, padH: ph, padW: pw, dilH: dh, dilW: dw, oh, ow };
}

const maxPoolOp = defineOp('maxPool2d', {
  forward(ctx: Ctx<{ p: PoolParams; idx: Int32Array }>, x: Tensor, p: PoolParams) {
    if (ctx.needs.length === 0) {
      // No gradient will be asked for: values only (threaded, no argmax buffer), into a reusable buffer.
      const out = new Tensor(takeBuffer('maxPool2d', p.n * p.c * p.oh * p.ow), [p.n, p.c, p.oh, p.ow]);
      maxPool2dForwardValues(out.data, x.data, p);
      return out;
    }
    const y = new Tensor(alloc('maxPool2d', p.n * p.c * p.oh * p.ow), [p.n, p.c, p.oh, p.ow]);
    const idx = new Int32Array(y.size);
    maxPool2dForward(y.data, idx, x.data, p);
    ctx.idx = idx;
    ctx.p = p;
    return y;
  },
  backward(ctx, dy) {
    const p = ctx.p;
    const dx = new Tensor(gradBuffer('maxPool2d', p.n * p.c * p.h * p.w), [p.n, p.c, p.h, p.w]);
    maxPool2dBackward(dx.data, dy.data, ctx.idx, p);
    return [dx];
  },
});

/** torch.nn.functional.max_pool2d: padding is -inf, ties send the gradient to the first max, NaN propagates. */
export function maxPool2d(x: Tensor, opts: MaxPool2dOptions): Tensor {
  const p = poolParams('maxPool2d', x, opts.kernelSize, opts.stride, opts.padding, opts.dilation, opts.ceilMode ?? false);
  return maxPoolOp(x, p);
}

type AvgParams = PoolParams & { countIncludePad: boolean; divisorOverride?: number };

const avgPoolOp = defineOp('avgPool2d', {
  forward(ctx: Ctx<{ p: AvgParams }>, x: Tensor, p: AvgParams) {
    const y = new Tensor(alloc('avgPool2d', p.n * p.c * p.oh * p.ow), [p.n, p.c, p.oh, p.ow]);
    avgPool2dForward(y.data, x.data, p);
    ctx.p = p;
    return y;
  },
  backward(ctx, dy) {
    const p = ctx.p;
    const dx = new Tensor(gradBuffer('avgPool2d', p.n * p.c * p.h * p.w), [p.n, p.c, p.h, p.w]);
    avgPool2dBackward(dx.data, dy.data, p);
    return [dx];
  },
});

/** torch.nn.functional.avg_pool2d (count_include_pad, ceil_mode and divisor_override as PyTorch). */
export function avgPool2d(x: Tensor, opts: AvgPool2dOptions): Tensor {
  const p = poolParams('avgPool2d', x, opts.kernelSize, opts.stride, opts.padding, 1, opts.ceilMode ?? false);
  const d = opts.divisorOverride;
  if (d !== undefined && !(Number.isInteger(d) && d > 0)) {
    throw new ValueError('avgPool2d', `divisor must be not zero (a positive integer), got ${d}; input ${fmt(x.shape)}`);
  }
  return avgPoolOp(x, { ...p, countIncludePad: opts.countIncludePad ?? true, divisorOverride: d });
}

interface AdaptiveParams { n: number; c: number; h: number; w: number; oh: number; ow: number }

const adaptiveOp = defineOp('adaptiveAvgPool2d', {
  forward(ctx: Ctx<{ p: AdaptiveParams }>, x: Tensor, p: AdaptiveParams) {
    const y = new Tensor(alloc('adaptiveAvgPool2d', p.n * p.c * p.oh * p.ow), [p.n, p.c, p.oh, p.ow]);
    adaptiveAvgPool2dForward(y.data, x.data, p);
    ctx.p = p;
    return y;
  },
  backward(ctx, dy) {
    const p = ctx.p;
    const global = p.oh === 1 && p.ow === 1; // (a ResNet's head: each plane's gradient filled, no zeros added onto)
    const dx = new Tensor(gradBuffer('adaptiveAvgPool2d', p.n * p.c * p.h * p.w, global), [p.n, p.c, p.h, p.w]);
    if (global) globalAvgPool2dBackward(dx.data, dy.data, p);
    else adaptiveAvgPool2dBackward(dx.data, dy.data, p);
    return [dx];
  },
});

/** torch.nn.functional.adaptive_avg_pool2d: bins [floor(i·H/oH), ceil((i+1)·H/oH)), also for non-divisible sizes. */
export function adaptiveAvgPool2d(x: Tensor, outputSize: Pair): Tensor {
  if (x.ndim !== 4) {
    throw new ShapeError('adaptiveAvgPool2d', `expected 4-D input (N, C, H, W), got ${x.ndim}-D input of shape ${fmt(x.shape)}`);
  }
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const [oh, ow] = pair('adaptiveAvgPool2d', 'outputSize', outputSize, 1, `input ${fmt(x.shape)}`);
  if (h === 0 || w === 0) {
    throw new ShapeError('adaptiveAvgPool2d', `input spatial size must be non-zero, got input ${fmt(x.shape)}`);
  }
  return adaptiveOp(x, { n, c, h, w, oh, ow });
}
