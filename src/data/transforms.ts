/**
 * Image transforms on float32 tensors, one image (C, H, W) or a batch (N, C, H, W), like torchvision.transforms on
 * tensors. Random transforms draw from the Generator passed in, image by image in batch order, so a seeded
 * generator gives the same augmentation every run. They return new tensors (no autograd: data preparation).
 */

import { ShapeError, ValueError } from '../errors.js';
import { Generator } from '../random.js';
import { alloc, checkShape, fmt } from '../shape.js';
import { Tensor } from '../tensor.js';

/** x: (C, H, W) or (N, C, H, W) float32 → a tensor of the same rank. */
export type Transform = (x: Tensor, gen: Generator) => Tensor;

/** The (N, C, H, W) view of x (N = 1 for a single image). */
function nchw(op: string, x: Tensor): [number, number, number, number] {
  if (!(x instanceof Tensor)) throw new ValueError(op, `expected a Tensor, got ${x === null ? 'null' : typeof x}`);
  if (x.shape.length === 3) return [1, x.shape[0]!, x.shape[1]!, x.shape[2]!];
  if (x.shape.length === 4) return [x.shape[0]!, x.shape[1]!, x.shape[2]!, x.shape[3]!];
  throw new ShapeError(op, `expected an image (C, H, W) or a batch (N, C, H, W), got shape [${x.shape.join(', ')}]`);
}

/** (x − mean[c]) / std[c] per channel, in float32 (torchvision Normalize: sub_ then div_). */
export function normalize(mean: readonly number[], std: readonly number[]): Transform {
  for (const [name, v] of [['mean', mean], ['std', std]] as const) {
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
      throw new ValueError('normalize', `${name} must be a list of finite numbers, got ${Array.isArray(v) ? `[${v.map(String).join(', ')}]` : String(v)}`);
    }
  }
  if (mean.length !== std.length) throw new ValueError('normalize', `mean has ${mean.length} values but std has ${std.length}`);
  const m = mean.map(Math.fround);
  const s = std.map(Math.fround);
  if (s.some((v) => v === 0)) {
    throw new ValueError('normalize', `std evaluated to zero after conversion to float32, leading to division by zero: std [${std.join(', ')}]`);
  }
  return (x) => {
    const [n, c, h, w] = nchw('normalize', x);
    if (c !== m.length) throw new ShapeError('normalize', `mean and std have ${m.length} values but the input has ${c} channels; input [${x.shape.join(', ')}]`);
    const out = alloc('normalize', x.data.length);
    const plane = h * w;
    for (let i = 0; i < n; i++) {
      for (let ch = 0; ch < c; ch++) {
        const mc = m[ch]!;
        const sc = s[ch]!;
        const base = (i * c + ch) * plane;
        for (let k = base; k < base + plane; k++) out[k] = Math.fround(x.data[k]! - mc) / sc;
      }
    }
    return new Tensor(out, x.shape.slice());
  };
}

/**
 * Zero-pads each side by `padding`, then crops a random size×size window (torchvision RandomCrop(size, padding),
 * fill 0). Per image: top = gen.randint(H + 2p − h + 1), then left = gen.randint(W + 2p − w + 1).
 */
export function randomCrop(size: number | [number, number], padding = 0): Transform {
  const [th, tw] = typeof size === 'number' ? [size, size] : size;
  if (!(Number.isInteger(th) && Number.isInteger(tw) && th > 0 && tw > 0)) throw new ValueError('randomCrop', `size must be positive integers, got ${String(size)}`);
  if (!(Number.isInteger(padding) && padding >= 0)) throw new ValueError('randomCrop', `padding must be a non-negative integer, got ${padding}`);
  return (x, gen) => {
    const [n, c, h, w] = nchw('randomCrop', x);
    const ph = h + 2 * padding;
    const pw = w + 2 * padding;
    if (th > ph || tw > pw) {
      throw new ShapeError('randomCrop', `Required crop size (${th}, ${tw}) is larger than input image size (${ph}, ${pw}) after padding ${padding}`);
    }
    // gen.randint draws from at most 2^32 values
    if (ph - th + 1 > 2 ** 32 || pw - tw + 1 > 2 ** 32) {
      throw new ValueError('randomCrop', `padding ${padding} leaves more than 2^32 crop positions in a ${h}×${w} image; input ${fmt(x.shape)}`);
    }
    const outShape = x.shape.length === 3 ? [c, th, tw] : [n, c, th, tw];
    const out = alloc('randomCrop', checkShape('randomCrop', outShape)); // zeros: the padding
    for (let i = 0; i < n; i++) {
      const top = gen.randint(ph - th + 1) - padding; // window origin in unpadded coordinates
      const left = gen.randint(pw - tw + 1) - padding;
      for (let ch = 0; ch < c; ch++) {
        const src = (i * c + ch) * h * w;
        const dst = (i * c + ch) * th * tw;
        for (let y = 0; y < th; y++) {
          const sy = top + y;
          if (sy < 0 || sy >= h) continue;
          for (let xx = 0; xx < tw; xx++) {
            const sx = left + xx;
            if (sx >= 0 && sx < w) out[dst + y * tw + xx] = x.data[src + sy * w + sx]!;
          }
        }
      }
    }
    return new Tensor(out, outShape);
  };
}

/** Mirrors each image left-right with probability p (torchvision RandomHorizontalFlip): flip iff gen.uniform() < p. */
export function randomHorizontalFlip(p = 0.5): Transform {
  if (!(p >= 0 && p <= 1)) throw new ValueError('randomHorizontalFlip', `p must be in [0, 1], got ${p}`);
  return (x, gen) => {
    const [n, c, h, w] = nchw('randomHorizontalFlip', x);
    const out = x.data.slice();
    for (let i = 0; i < n; i++) {
      if (!(gen.uniform() < p)) continue;
      for (let ch = 0; ch < c; ch++) {
        const base = (i * c + ch) * h * w;
        for (let y = 0; y < h; y++) {
          const row = base + y * w;
          for (let xx = 0; xx < w; xx++) out[row + xx] = x.data[row + w - 1 - xx]!;
        }
      }
    }
    return new Tensor(out, x.shape.slice());
  };
}

/** Applies transforms left to right, sharing the generator (torchvision Compose). */
export function compose(...transforms: Transform[]): Transform {
  return (x, gen) => transforms.reduce((acc, t) => t(acc, gen), x);
}

/** CIFAR-10 training statistics commonly used with normalize (per channel, on the 0..1 scale). */
export const CIFAR10_MEAN = Object.freeze([0.4914, 0.4822, 0.4465]);
export const CIFAR10_STD = Object.freeze([0.247, 0.2435, 0.2616]);

/**
 * The augmentation of He et al. 2015 §4.2 for CIFAR: "4 pixels are padded on each side, and a 32×32 crop is randomly
 * sampled from the padded image or its horizontal flip", followed by per-channel normalization (the paper subtracts
 * the per-pixel mean instead; per-channel mean/std is the usual PyTorch reimplementation).
 */
export function cifarTrainTransform(mean: readonly number[] = CIFAR10_MEAN, std: readonly number[] = CIFAR10_STD): Transform {
  return compose(randomCrop(32, 4), randomHorizontalFlip(0.5), normalize(mean, std));
}
