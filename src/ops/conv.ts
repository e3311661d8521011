import { defineOp, gradTarget, gradTargetOrFresh, type Ctx } from '../autograd.js';
import { checkArg, ShapeError, ValueError } from '../errors.js';
import {
  conv2dBackwardBias,
  conv2dBackwardInput,
  conv2dBackwardWeight,
  conv2dForward,
  conv2dOutSize,
  type Conv2dParams,
} from '../kernels/conv2d.js';
import { shortcutABackward, shortcutAForward, type ShortcutParams } from '../kernels/shortcut.js';
import { dims4, fmt } from '../shape.js';
import { Tensor } from '../tensor.js';
import { pad } from './movement.js';
import { outputBuffer } from '../fusion/arena.js';

/** An int for both spatial dims, or [h, w]. */
export type Pair = number | readonly [number, number];

export interface Conv2dOptions {
  stride?: Pair;
  /** Symmetric zero padding per side, or 'valid' (none) or 'same' (output size = input size; stride 1 only). */
  padding?: Pair | 'same' | 'valid';
  dilation?: Pair;
  groups?: number;
}

/**
 * Expands an int-or-pair option and checks every entry is an integer ≥ min. shapes: the operands' shapes for the
 * error message, or a function that formats them (called only for the error).
 */
export function pair(op: string, name: string, v: Pair, min: number, shapes: string | (() => string)): [number, number] {
  const ok = typeof v === 'number' || (Array.isArray(v) && v.length === 2);
  const p: [number, number] = typeof v === 'number' ? [v, v] : ok ? [v[0], v[1]] : [NaN, NaN];
  if (!ok || !p.every((x) => Number.isInteger(x) && x >= min)) {
    const what = min > 0 ? 'positive integers' : 'non-negative integers';
    throw new ValueError(op, `${name} must be one or two ${what}, got ${typeof v === 'number' ? String(v) : Array.isArray(v) ? `[${v.map(String).join(', ')}]` : JSON.stringify(v)}; ${typeof shapes === 'string' ? shapes : shapes()}`);
  }
  return p;
}

const conv2dOp = defineOp('conv2d', {
  forward(ctx: Ctx<{ p: Conv2dParams }, [Tensor, Tensor]>, x: Tensor, w: Tensor, b: Tensor | null, p: Conv2dParams) {
    ctx.save(x, w);
    ctx.p = p;
    const y = new Tensor(outputBuffer('conv2d', p.n * p.o * p.oh * p.ow), [p.n, p.o, p.oh, p.ow]);
    conv2dForward(y.data, x.data, w.data, b ? b.data : null, p);
    return y;
  },
  backward(ctx, dy) {
    const [x, w] = ctx.saved;
    const p = ctx.p;
    let dx: Tensor | null = null;
    let dw: Tensor | null = null;
    let db: Tensor | null = null;
    if (ctx.needs[0]) {
      // A fresh target is overwritten (no zero-fill, and no zeros for the kernel to read and add).
      const { t, fresh } = gradTargetOrFresh(ctx, 0, 'conv2d', x.shape);
      dx = t;
      conv2dBackwardInput(dx.data, dy.data, w.data, p, { overwrite: fresh });
    }
    if (ctx.needs[1]) {
      dw = gradTarget(ctx, 1, 'conv2d', w.shape);
      conv2dBackwardWeight(dw.data, dy.data, x.data, p);
    }
    if (ctx.needs[2]) {
      db = gradTarget(ctx, 2, 'conv2d', [p.o]);
      conv2dBackwardBias(db.data, dy.data, p);
    }
    return [dx, dw, db];
  },
});

/**
 * torch.nn.functional.conv2d. x: (N, C, H, W) or unbatched (C, H, W) · weight: (O, C/groups, kH, kW) · bias: (O)
 * → (N, O, oH, oW). Padding is symmetric and never materialized, except the one extra row/column that 'same'
 * needs when the total padding is odd (PyTorch pads that on the bottom/right too).
 */
export function conv2d(x: Tensor, weight: Tensor, bias: Tensor | null = null, opts: Conv2dOptions = {}): Tensor {
  checkArg(x instanceof Tensor, 'conv2d', 'the input (argument 1)', 'a Tensor (N, C, H, W)', x);
  checkArg(weight instanceof Tensor, 'conv2d', 'weight', 'a Tensor', weight);
  checkArg(bias === null || bias === undefined || bias instanceof Tensor, 'conv2d', 'bias', 'a Tensor or null', bias);
  checkArg(opts !== null && typeof opts === 'object', 'conv2d', 'opts', 'an options object', opts);
  const shapes = `input ${fmt(x.shape)}, weight ${fmt(weight.shape)}${bias ? `, bias ${fmt(bias.shape)}` : ''}`;
  if (x.ndim === 3) return conv2d(x.reshape([1, ...x.shape]), weight, bias, opts).squeeze(0);
  if (x.ndim !== 4) {
    throw new ShapeError('conv2d', `Expected 3D (unbatched) or 4D (batched) input to conv2d, but got input of size: ${fmt(x.shape)}; weight ${fmt(weight.shape)}`);
  }
  const [n, c] = x.shape as [number, number, number, number];
  const [o, wc, kh, kw] = dims4('conv2d', weight.shape, 'weight');
  const groups = opts.groups ?? 1;
  if (!Number.isInteger(groups) || groups < 1) throw new ValueError('conv2d', `non-positive groups is not supported: groups=${groups}; ${shapes}`);
  const [sh, sw] = pair('conv2d', 'stride', opts.stride ?? 1, 1, shapes);
  const [dh, dw] = pair('conv2d', 'dilation', opts.dilation ?? 1, 1, shapes);
  if (o % groups !== 0) {
    throw new ShapeError('conv2d', `out_channels ${o} must be divisible by groups ${groups}; ${shapes}`);
  }
  if (c !== wc * groups) {
    throw new ShapeError(
      'conv2d',
      `Given groups=${groups}, weight of size ${fmt(weight.shape)}, expected input${fmt(x.shape)} to have ${wc * groups} channels, but got ${c} channels instead`,
    );
  }
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== o)) {
    throw new ShapeError('conv2d', `bias must have shape [${o}] (one per output channel), got ${fmt(bias.shape)}; ${shapes}`);
  }
  let ph: number, pw: number;
  let xin = x;
  const padOpt = opts.padding ?? 0;
  if (padOpt === 'valid') {
    ph = pw = 0;
  } else if (padOpt === 'same') {
    if (sh !== 1 || sw !== 1) throw new ValueError('conv2d', `padding='same' is not supported for strided convolutions (stride ${sh}, ${sw}); ${shapes}`);
    const th = dh * (kh - 1), tw = dw * (kw - 1);
    ph = th >> 1;
    pw = tw >> 1;
    if (th % 2 === 1 || tw % 2 === 1) xin = pad(x, [0, tw % 2, 0, th % 2]);
  } else {
    [ph, pw] = pair('conv2d', 'padding', padOpt as Pair, 0, shapes);
  }
  const hin = xin.shape[2]!, win = xin.shape[3]!;
  const effH = dh * (kh - 1) + 1, effW = dw * (kw - 1) + 1;
  if (hin + 2 * ph < effH || win + 2 * pw < effW) {
    throw new ShapeError(
      'conv2d',
      `Calculated padded input size per channel: (${hin + 2 * ph} x ${win + 2 * pw}). Kernel size: (${effH} x ${effW}). Kernel size can't be greater than actual input size; ${shapes}`,
    );
  }
  const p: Conv2dParams = {
    n, c, h: hin, w: win, o, kh, kw, strideH: sh, strideW: sw, padH: ph, padW: pw, dilH: dh, dilW: dw, groups,
    oh: conv2dOutSize(hin, kh, sh, ph, dh), ow: conv2dOutSize(win, kw, sw, pw, dw),
  };
  return conv2dOp(xin, weight, bias, p);
}

// ---- the paper's option-A shortcut ---------------------------------------------------------------------------

const shortcutAOp = defineOp('shortcutA', {
  forward(ctx: Ctx<{ p: ShortcutParams }>, x: Tensor, p: ShortcutParams) {
    ctx.p = p;
    const y = new Tensor(outputBuffer('shortcutA', p.n * p.oc * p.oh * p.ow), [p.n, p.oc, p.oh, p.ow]);
    shortcutAForward(y.data, x.data, p);
    return y;
  },
  backward(ctx, dy) {
    const p = ctx.p;
    // A fresh target (the usual case: the shortcut's gradient reaches a unit's input first) is overwritten.
    const { t: dx, fresh } = gradTargetOrFresh(ctx, 0, 'shortcutA', [p.n, p.c, p.h, p.w]);
    shortcutABackward(dx.data, dy.data, p, fresh);
    return [dx];
  },
});

/**
 * The option-A shortcut of He et al. 2015 (§3.3, used by the CIFAR nets): x[:, :, ::stride, ::stride] with
 * zero channels added, floor((out − in)/2) before and the rest after, as the common CIFAR implementation's
 * F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, p, p)). Parameter-free.
 */
export function shortcutA(x: Tensor, outChannels: number, stride: number): Tensor {
  const [n, c, h, w] = dims4('shortcutA', x.shape);
  if (!Number.isInteger(stride) || stride < 1) throw new ValueError('shortcutA', `stride must be a positive integer, got ${stride}; input ${fmt(x.shape)}`);
  if (!Number.isInteger(outChannels) || outChannels < c) {
    throw new ShapeError('shortcutA', `outChannels (${outChannels}) must be an integer ≥ the input channels (${c}); input ${fmt(x.shape)}`);
  }
  const before = Math.floor((outChannels - c) / 2);
  return shortcutAOp(x, { n, c, h, w, oc: outChannels, oh: Math.ceil(h / stride), ow: Math.ceil(w / stride), stride, before });
}
