/**
 * Transforms on one decoded image, torchvision.transforms on PIL images: resize, centerCrop, randomResizedCrop,
 * randomHorizontalFlip, colorJitter work on 8-bit images (DecodedImage, HWC) with Pillow's arithmetic, so their bytes
 * are Pillow's; toTensor turns the image into float32 CHW (FloatImage) and normalize works on that.
 *
 * A transform is data: `spec` is a JSON-able description ({ name, args }) from which `fromSpec` rebuilds it, so the
 * DataLoader's worker threads can run the same pipeline. Random transforms draw from the Generator they are given
 * (the DataLoader gives every sample its own, seeded from (seed, epoch, position)).
 */

import { ValueError } from '../errors.js';
import type { DecodedImage } from '../io/image.js';
import { centerCrop as centerCropImage, cropImage, resample, roundHalfEven, type Interpolation } from '../io/preprocess.js';
import type { Generator } from '../random.js';

export type { Interpolation } from '../io/preprocess.js';

/** A float32 image, CHW: data[(c * height + y) * width + x]. What toTensor returns (before batching). */
export interface FloatImage {
  channels: number;
  height: number;
  width: number;
  data: Float32Array;
}

/** What flows through an image pipeline: 8-bit HWC until toTensor, float32 CHW after. */
export type ImageSample = DecodedImage | FloatImage;

/** JSON-able description of a transform: the factory name and its arguments (compose: the child specs). */
export interface TransformSpec {
  name: string;
  args: unknown[];
}

export interface ImageTransform {
  readonly spec: TransformSpec;
  apply(img: ImageSample, gen: Generator): ImageSample;
}

export const isFloatImage = (img: ImageSample): img is FloatImage => img.data instanceof Float32Array;

function uint8(op: string, img: ImageSample): DecodedImage {
  if (isFloatImage(img)) throw new ValueError(op, `expects an 8-bit image (before toTensor), got a float image ${img.channels}×${img.height}×${img.width}`);
  return img;
}

function sizePair(op: string, size: number | readonly number[]): [number, number] {
  const [h, w] = typeof size === 'number' ? [size, size] : size.length === 1 ? [size[0]!, size[0]!] : [size[0]!, size[1]!];
  if (!(Number.isInteger(h) && Number.isInteger(w) && h >= 1 && w >= 1) || (typeof size !== 'number' && size.length > 2)) {
    throw new ValueError(op, `size must be a positive integer or [height, width], got ${JSON.stringify(size)}`);
  }
  return [h, w];
}

function checkInterpolation(op: string, v: unknown): Interpolation {
  if (v !== 'bilinear' && v !== 'bicubic') throw new ValueError(op, `interpolation must be 'bilinear' or 'bicubic', got ${JSON.stringify(v)}`);
  return v;
}

// ---- functional ops (torchvision.transforms.functional on PIL images) ----

/**
 * F.resize: `size` a number resizes the shorter side to it (the longer to int(size · long / short)); [h, w] resizes
 * to exactly that. Pillow resampling, antialiased when downscaling. An image already at that size is returned as is.
 */
export function resizeImage(img: DecodedImage, size: number | readonly number[], interpolation: Interpolation = 'bilinear'): DecodedImage {
  let h: number;
  let w: number;
  if (typeof size === 'number' || size.length === 1) {
    const s = typeof size === 'number' ? size : size[0]!;
    if (!Number.isInteger(s) || s < 1) throw new ValueError('resize', `size must be a positive integer, got ${s}`);
    const short = Math.min(img.width, img.height);
    const long = Math.max(img.width, img.height);
    const newLong = Math.trunc((s * long) / short);
    [w, h] = img.width <= img.height ? [s, newLong] : [newLong, s];
  } else {
    [h, w] = sizePair('resize', size);
  }
  if (h === img.height && w === img.width) return img;
  return resample(img, w, h, interpolation, 'resize');
}

/** F.resized_crop: crop (top, left, height, width), then resize to `size` ([h, w] or a square side). */
export function resizedCrop(
  img: DecodedImage, top: number, left: number, height: number, width: number,
  size: number | readonly number[], interpolation: Interpolation = 'bilinear',
): DecodedImage {
  const [h, w] = sizePair('resizedCrop', size);
  return resizeImage(cropImage(img, top, left, height, width, 'resizedCrop'), [h, w], interpolation);
}

/** F.hflip. */
export function hflip(img: DecodedImage): DecodedImage {
  const { width: w, height: h, channels: C, data } = img;
  const out = new Uint8Array(data.length);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const s = (y * w + (w - 1 - x)) * C;
      const d = (y * w + x) * C;
      for (let c = 0; c < C; c++) out[d + c] = data[s + c]!;
    }
  }
  return { width: w, height: h, channels: C, data: out };
}

/** Pillow's convert('L') of one RGB pixel: (19595 R + 38470 G + 7471 B + 0x8000) >> 16. */
const luma = (r: number, g: number, b: number): number => (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;

/**
 * Pillow's ImagingBlend(a, b, alpha): out = a + alpha · (b − a) in C float arithmetic, truncated to a byte; outside
 * [0, 1] (extrapolation) clamped to 0..255 first.
 */
function blend(a: Uint8Array, b: Uint8Array, alpha: number): Uint8Array {
  const f = Math.fround;
  const al = f(alpha);
  const out = new Uint8Array(b.length);
  const inside = al >= 0 && al <= 1;
  for (let i = 0; i < b.length; i++) {
    const t = f(a[i]! + f(al * (b[i]! - a[i]!)));
    out[i] = inside ? t : t <= 0 ? 0 : t >= 255 ? 255 : t; // Uint8Array stores truncate toward zero
  }
  return out;
}

function checkFactor(op: string, v: number): void {
  if (!(typeof v === 'number' && v >= 0 && v < Infinity)) throw new ValueError(op, `factor must be a finite number >= 0, got ${String(v)}`);
}

/** F.adjust_brightness: ImageEnhance.Brightness, a blend with black. */
export function adjustBrightness(img: DecodedImage, factor: number): DecodedImage {
  checkFactor('adjustBrightness', factor);
  return { ...img, data: blend(new Uint8Array(img.data.length), img.data, factor) };
}

/** F.adjust_contrast: ImageEnhance.Contrast, a blend with the gray level int(mean of convert('L') + 0.5). */
export function adjustContrast(img: DecodedImage, factor: number): DecodedImage {
  checkFactor('adjustContrast', factor);
  const { channels: C, data } = img;
  if (C !== 1 && C !== 3) throw new ValueError('adjustContrast', `expects a gray or RGB image, got ${C} channels`);
  const n = img.width * img.height;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += C === 1 ? data[i]! : luma(data[i * 3]!, data[i * 3 + 1]!, data[i * 3 + 2]!);
  const mean = Math.trunc(sum / n + 0.5);
  return { ...img, data: blend(new Uint8Array(data.length).fill(mean), data, factor) };
}

/** F.adjust_saturation: ImageEnhance.Color, a blend with the image's convert('L') (a gray image is unchanged). */
export function adjustSaturation(img: DecodedImage, factor: number): DecodedImage {
  checkFactor('adjustSaturation', factor);
  const { channels: C, data } = img;
  if (C !== 1 && C !== 3) throw new ValueError('adjustSaturation', `expects a gray or RGB image, got ${C} channels`);
  if (C === 1) return { ...img, data: blend(data, data, factor) };
  const gray = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i += 3) gray[i] = gray[i + 1] = gray[i + 2] = luma(data[i]!, data[i + 1]!, data[i + 2]!);
  return { ...img, data: blend(gray, data, factor) };
}

/** F.to_tensor: HWC bytes → CHW float32, v / 255 (float32 division, correctly rounded). */
export function toTensorImage(img: DecodedImage): FloatImage {
  const { width: W, height: H, channels: C, data } = img;
  const out = new Float32Array(C * H * W);
  const plane = H * W;
  for (let i = 0; i < plane; i++) for (let c = 0; c < C; c++) out[c * plane + i] = data[i * C + c]! / 255;
  return { channels: C, height: H, width: W, data: out };
}

/** F.normalize: (x − mean[c]) / std[c] in float32, on a float image. */
export function normalizeImage(img: FloatImage, mean: readonly number[], std: readonly number[]): FloatImage {
  if (mean.length !== img.channels || std.length !== img.channels) {
    throw new ValueError('normalize', `mean and std have ${mean.length} and ${std.length} values but the image has ${img.channels} channels`);
  }
  const f = Math.fround;
  const out = new Float32Array(img.data.length);
  const plane = img.height * img.width;
  for (let c = 0; c < img.channels; c++) {
    const m = f(mean[c]!);
    const s = f(std[c]!);
    for (let k = c * plane; k < (c + 1) * plane; k++) out[k] = f(img.data[k]! - m) / s;
  }
  return { ...img, data: out };
}

// ---- random parameters (torchvision's get_params, drawing from our Generator) ----

/**
 * RandomResizedCrop.get_params: up to 10 tries of area fraction ~ U(scale) and log aspect ratio ~ U(log ratio),
 * w = round(sqrt(area · ratio)), h = round(sqrt(area / ratio)), kept if it fits; top and left uniform over the
 * positions; else the central crop clamped to the ratio range. Returns [top, left, height, width].
 */
export function randomResizedCropParams(
  height: number, width: number, scale: readonly [number, number], ratio: readonly [number, number], gen: Generator,
): [number, number, number, number] {
  const area = height * width;
  const logLo = Math.log(ratio[0]);
  const logHi = Math.log(ratio[1]);
  for (let attempt = 0; attempt < 10; attempt++) {
    const targetArea = area * (scale[0] + (scale[1] - scale[0]) * gen.uniform());
    const aspect = Math.exp(logLo + (logHi - logLo) * gen.uniform());
    const w = roundHalfEven(Math.sqrt(targetArea * aspect));
    const h = roundHalfEven(Math.sqrt(targetArea / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const top = gen.randint(height - h + 1);
      const left = gen.randint(width - w + 1);
      return [top, left, h, w];
    }
  }
  const inRatio = width / height;
  let w = width;
  let h = height;
  if (inRatio < Math.min(ratio[0], ratio[1])) h = roundHalfEven(w / Math.min(ratio[0], ratio[1]));
  else if (inRatio > Math.max(ratio[0], ratio[1])) w = roundHalfEven(h * Math.max(ratio[0], ratio[1]));
  return [Math.floor((height - h) / 2), Math.floor((width - w) / 2), h, w];
}

/** A ColorJitter range: a number b means [max(0, 1 − b), 1 + b]; a pair is taken as it is. */
function jitterRange(op: string, name: string, v: number | readonly [number, number] | undefined): [number, number] | null {
  if (v === undefined) return null;
  if (typeof v === 'number') {
    if (!(v >= 0 && v < Infinity)) throw new ValueError(op, `${name} must be a non-negative number, got ${v}`);
    return v === 0 ? null : [Math.max(0, 1 - v), 1 + v];
  }
  const [lo, hi] = v;
  if (!(lo >= 0 && lo <= hi && hi < Infinity)) throw new ValueError(op, `${name} values should be between 0 and infinity and ordered, got [${lo}, ${hi}]`);
  return lo === 1 && hi === 1 ? null : [lo, hi];
}

export interface ColorJitterOptions {
  brightness?: number | readonly [number, number];
  contrast?: number | readonly [number, number];
  saturation?: number | readonly [number, number];
}

/** One ColorJitter draw: the order of the three adjustments (0 brightness, 1 contrast, 2 saturation) and factors. */
export interface ColorJitterParams {
  order: number[];
  brightness: number | null;
  contrast: number | null;
  saturation: number | null;
}

/** ColorJitter.get_params: a random order, then each enabled factor ~ U(range). */
export function colorJitterParams(o: ColorJitterOptions, gen: Generator): ColorJitterParams {
  const ranges = [jitterRange('colorJitter', 'brightness', o.brightness), jitterRange('colorJitter', 'contrast', o.contrast), jitterRange('colorJitter', 'saturation', o.saturation)];
  const order = Array.from(gen.permutation(3));
  const [b, c, s] = ranges.map((r) => (r === null ? null : r[0] + (r[1] - r[0]) * gen.uniform()));
  return { order, brightness: b!, contrast: c!, saturation: s! };
}

/** Applies a ColorJitter draw (torchvision's forward with fixed parameters). */
export function applyColorJitter(img: DecodedImage, p: ColorJitterParams): DecodedImage {
  let out = img;
  for (const k of p.order) {
    if (k === 0 && p.brightness !== null) out = adjustBrightness(out, p.brightness);
    else if (k === 1 && p.contrast !== null) out = adjustContrast(out, p.contrast);
    else if (k === 2 && p.saturation !== null) out = adjustSaturation(out, p.saturation);
  }
  return out;
}

// ---- transforms (torchvision.transforms classes) ----

type Factory = (...args: never[]) => ImageTransform;

/** Resize(size, interpolation): see resizeImage. */
export function resize(size: number | readonly number[], interpolation: Interpolation = 'bilinear'): ImageTransform {
  if (typeof size !== 'number' && size.length !== 1) sizePair('resize', size);
  else if (!(Number.isInteger(typeof size === 'number' ? size : size[0]) && (typeof size === 'number' ? size : size[0]!) >= 1)) {
    throw new ValueError('resize', `size must be a positive integer or [height, width], got ${JSON.stringify(size)}`);
  }
  checkInterpolation('resize', interpolation);
  return { spec: { name: 'resize', args: [size, interpolation] }, apply: (img) => resizeImage(uint8('resize', img), size, interpolation) };
}

/** CenterCrop(size): see io's centerCrop (zero padding where the image is smaller). */
export function centerCrop(size: number | readonly number[]): ImageTransform {
  const hw = sizePair('centerCrop', size);
  return { spec: { name: 'centerCrop', args: [size] }, apply: (img) => centerCropImage(uint8('centerCrop', img), hw) };
}

export interface RandomResizedCropOptions {
  /** Range of the crop's area as a fraction of the image's. Default [0.08, 1]. */
  scale?: readonly [number, number];
  /** Range of the crop's aspect ratio (width / height). Default [3/4, 4/3]. */
  ratio?: readonly [number, number];
  interpolation?: Interpolation;
}

/** RandomResizedCrop(size, scale, ratio): a random crop (randomResizedCropParams) resized to `size`. */
export function randomResizedCrop(size: number | readonly number[], opts: RandomResizedCropOptions = {}): ImageTransform {
  const op = 'randomResizedCrop';
  const hw = sizePair(op, size);
  const scale = opts.scale ?? [0.08, 1.0];
  const ratio = opts.ratio ?? [3 / 4, 4 / 3];
  const interpolation = checkInterpolation(op, opts.interpolation ?? 'bilinear');
  if (!(scale[0] > 0 && scale[0] <= scale[1] && scale[1] < Infinity)) throw new ValueError(op, `scale must be an ordered pair of positive numbers, got [${scale.join(', ')}]`);
  if (!(ratio[0] > 0 && ratio[0] <= ratio[1] && ratio[1] < Infinity)) throw new ValueError(op, `ratio must be an ordered pair of positive numbers, got [${ratio.join(', ')}]`);
  return {
    spec: { name: op, args: [size, { scale, ratio, interpolation }] },
    apply: (img, gen) => {
      const im = uint8(op, img);
      const [top, left, h, w] = randomResizedCropParams(im.height, im.width, scale, ratio, gen);
      return resizedCrop(im, top, left, h, w, hw, interpolation);
    },
  };
}

/** RandomHorizontalFlip(p): flips iff gen.uniform() < p. */
export function randomHorizontalFlip(p = 0.5): ImageTransform {
  if (!(p >= 0 && p <= 1)) throw new ValueError('randomHorizontalFlip', `p must be in [0, 1], got ${p}`);
  return {
    spec: { name: 'randomHorizontalFlip', args: [p] },
    apply: (img, gen) => (gen.uniform() < p ? hflip(uint8('randomHorizontalFlip', img)) : img),
  };
}

/** ColorJitter(brightness, contrast, saturation) (no hue). */
export function colorJitter(o: ColorJitterOptions): ImageTransform {
  for (const k of ['brightness', 'contrast', 'saturation'] as const) jitterRange('colorJitter', k, o[k]);
  return {
    spec: { name: 'colorJitter', args: [o] },
    apply: (img, gen) => applyColorJitter(uint8('colorJitter', img), colorJitterParams(o, gen)),
  };
}

/** ToTensor(): 8-bit HWC → float32 CHW in [0, 1]. */
export function toTensor(): ImageTransform {
  return { spec: { name: 'toTensor', args: [] }, apply: (img) => (isFloatImage(img) ? img : toTensorImage(img)) };
}

/** Normalize(mean, std) on the float image (after toTensor). */
export function normalize(mean: readonly number[], std: readonly number[]): ImageTransform {
  for (const [name, v] of [['mean', mean], ['std', std]] as const) {
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
      throw new ValueError('normalize', `${name} must be a list of finite numbers, got ${JSON.stringify(v)}`);
    }
  }
  if (mean.length !== std.length) throw new ValueError('normalize', `mean has ${mean.length} values but std has ${std.length}`);
  if (std.some((v) => Math.fround(v) === 0)) throw new ValueError('normalize', `std evaluated to zero, leading to division by zero: std [${std.join(', ')}]`);
  return {
    spec: { name: 'normalize', args: [mean, std] },
    apply: (img) => {
      if (!isFloatImage(img)) throw new ValueError('normalize', 'expects a float image: put toTensor() before normalize');
      return normalizeImage(img, mean, std);
    },
  };
}

/** Compose([...]): applies the transforms left to right with the same generator. */
export function compose(transforms: readonly ImageTransform[]): ImageTransform {
  if (!Array.isArray(transforms) || !transforms.every((t) => t && typeof t.apply === 'function' && t.spec)) {
    throw new ValueError('compose', 'expects an array of image transforms (from data.imageTransforms)');
  }
  return {
    spec: { name: 'compose', args: transforms.map((t) => t.spec) },
    apply: (img, gen) => transforms.reduce((acc, t) => t.apply(acc, gen), img),
  };
}

const FACTORIES: Record<string, Factory> = {
  resize, centerCrop, randomResizedCrop, randomHorizontalFlip, colorJitter, toTensor, normalize,
} as unknown as Record<string, Factory>;

/** Rebuilds a transform from its spec (how the DataLoader's workers get the pipeline). */
export function fromSpec(spec: TransformSpec): ImageTransform {
  if (spec.name === 'compose') return compose((spec.args as TransformSpec[]).map(fromSpec));
  const f = FACTORIES[spec.name];
  if (!f) throw new ValueError('fromSpec', `unknown image transform '${spec.name}'`);
  return (f as (...a: unknown[]) => ImageTransform)(...spec.args);
}

/** The usual ImageNet training pipeline at `size`: RandomResizedCrop, RandomHorizontalFlip, ToTensor, Normalize. */
export function trainTransform(size: number, mean: readonly number[], std: readonly number[]): ImageTransform {
  return compose([randomResizedCrop(size), randomHorizontalFlip(), toTensor(), normalize(mean, std)]);
}

/** The usual ImageNet evaluation pipeline at `size`: Resize(size · 256 / 224), CenterCrop(size), ToTensor, Normalize. */
export function evalTransform(size: number, mean: readonly number[], std: readonly number[]): ImageTransform {
  return compose([resize(Math.round((size * 256) / 224)), centerCrop(size), toTensor(), normalize(mean, std)]);
}
