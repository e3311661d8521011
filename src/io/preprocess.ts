/**
 * torchvision's ImageNet evaluation transform on 8-bit images, reproduced exactly:
 *
 *   transforms.Compose([Resize(256), CenterCrop(224), ToTensor(), Normalize(mean, std)])
 *
 * applied to a PIL image. Resize on a PIL image is Pillow's `Image.resize(size, BILINEAR)`, which is not plain
 * bilinear interpolation: its triangle filter widens with the downscale factor (antialiasing), and it runs in 8-bit
 * fixed point, horizontal pass first. `resizeBilinear` follows Pillow's Resample.c arithmetic step for step, so it
 * gives Pillow's bytes.
 */

import { AllocationError, ArgumentTypeError, describeArg, ShapeError, ValueError } from '../errors.js';
import { toRgb, type DecodedImage } from './image.js';

/** ImageNet channel means and standard deviations (torchvision's pretrained-model docs). */
export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;

/** Fixed-point bits of Pillow's 8-bit resampling coefficients: 32 - 8 - 2 (room for 8-bit data and overflow). */
const PRECISION_BITS = 22;

/** Pillow's resampling filters: the kernel and its support (half-width) at scale 1. */
export type Interpolation = 'bilinear' | 'bicubic';

const FILTERS: Record<Interpolation, { support: number; f: (x: number) => number }> = {
  bilinear: {
    support: 1,
    f: (x) => {
      if (x < 0) x = -x;
      return x < 1 ? 1 - x : 0;
    },
  },
  // Keys' cubic convolution with a = -0.5, as Pillow's bicubic_filter
  bicubic: {
    support: 2,
    f: (x) => {
      const a = -0.5;
      if (x < 0) x = -x;
      if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
      return 0;
    },
  },
};

interface Coeffs {
  /** Kernel taps per output sample (Pillow's ksize). */
  ksize: number;
  /** First input index and tap count for each output sample. */
  bounds: Int32Array;
  /** Fixed-point weights, ksize per output sample. */
  weights: Int32Array;
}

/**
 * Pillow's precompute_coeffs + normalize_coeffs_8bpc over the whole input (box 0..inSize): the filter's support is
 * scaled by the downscale factor (antialiasing), weights are normalized to sum to 1 in double precision, then
 * rounded half away from zero to PRECISION_BITS fixed point.
 */
function precomputeCoeffs(inSize: number, outSize: number, interpolation: Interpolation): Coeffs {
  const filter = FILTERS[interpolation];
  const scale = inSize / outSize;
  const filterscale = scale < 1 ? 1 : scale;
  const support = filter.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const weights = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  const ss = 1.0 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = 0 + (xx + 0.5) * scale;
    let xmin = Math.trunc(center - support + 0.5); // C's (int) truncates toward zero
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const w = filter.f((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (let x = 0; x < xmax; x++) {
      const w = ww !== 0 ? k[x]! / ww : k[x]!;
      weights[xx * ksize + x] = w < 0 ? Math.trunc(-0.5 + w * (1 << PRECISION_BITS)) : Math.trunc(0.5 + w * (1 << PRECISION_BITS));
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, weights };
}

/** Pillow's clip8: drop the fixed-point fraction (floor) and clamp to 0..255. */
function clip8(ss: number): number {
  const v = ss >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** Largest image buffer the resizers build (2^31 bytes, what a Uint8Array can hold everywhere). */
const MAX_IMAGE_BYTES = 2 ** 31 - 1;

/** An image must be { width, height, channels 1–4, data: Uint8Array of width·height·channels }. */
function checkImage(op: string, img: DecodedImage): void {
  if (img === null || typeof img !== 'object') throw new ArgumentTypeError(op, `img must be a decoded image { width, height, channels, data }, got ${describeArg(img)}`);
  const { width, height, channels, data } = img;
  if (!(Number.isInteger(width) && width >= 1 && Number.isInteger(height) && height >= 1)) throw new ValueError(op, `image size must be positive integers, got ${String(width)}x${String(height)}`);
  if (!(channels === 1 || channels === 2 || channels === 3 || channels === 4)) throw new ValueError(op, `channels must be 1, 2, 3 or 4, got ${String(channels)}`);
  if (!(data instanceof Uint8Array)) throw new ArgumentTypeError(op, `img.data must be a Uint8Array, got ${describeArg(data)}`);
  if (data.length !== width * height * channels) {
    throw new ShapeError(op, `img.data has ${data.length} bytes, a ${width}x${height} image with ${channels} channels needs ${width * height * channels}`);
  }
}

/**
 * Resizes a gray or RGB image to outWidth x outHeight exactly as Pillow's `Image.resize((w, h), Image.BILINEAR)`
 * (ImagingResample, 8 bits per channel): separable, horizontal pass first with an 8-bit intermediate.
 * Gray+alpha and RGBA are refused: Pillow premultiplies alpha before resampling; convert with toRgb first.
 */
export function resizeBilinear(img: DecodedImage, outWidth: number, outHeight: number): DecodedImage {
  return resample(img, outWidth, outHeight, 'bilinear', 'resizeBilinear');
}

/**
 * `Image.resize((outWidth, outHeight), BILINEAR or BICUBIC)` on a gray or RGB 8-bit image, Pillow's ImagingResample
 * step for step (see resizeBilinear). A bicubic result can overshoot; it is clamped to 0..255 as Pillow's clip8 does.
 */
export function resample(img: DecodedImage, outWidth: number, outHeight: number, interpolation: Interpolation, op = 'resample'): DecodedImage {
  checkImage(op, img);
  const { width: inW, height: inH, channels: C, data } = img;
  if (C !== 1 && C !== 3) {
    throw new ValueError(op, `expects a gray or RGB image, got ${C} channels (use toRgb first)`);
  }
  if (!Number.isInteger(outWidth) || !Number.isInteger(outHeight) || outWidth < 1 || outHeight < 1) {
    throw new ValueError(op, `output size must be positive integers, got ${outWidth}x${outHeight}`);
  }
  if (!Object.prototype.hasOwnProperty.call(FILTERS, interpolation)) {
    throw new ValueError(op, `interpolation must be 'bilinear' or 'bicubic', got ${String(interpolation)}`);
  }
  if (outWidth * outHeight * C > MAX_IMAGE_BYTES || outWidth > MAX_IMAGE_BYTES / inH || outHeight > MAX_IMAGE_BYTES / inW) {
    throw new AllocationError(op, `output ${outWidth}x${outHeight}x${C} from ${inW}x${inH} is too large (the result or its intermediate rows would exceed ${MAX_IMAGE_BYTES} bytes)`);
  }
  const needH = outWidth !== inW;
  const needV = outHeight !== inH;
  if (!needH && !needV) return { width: inW, height: inH, channels: C, data: data.slice() };

  const vert = precomputeCoeffs(inH, outHeight, interpolation);
  // Rows of the input that the vertical pass reads; the horizontal pass only computes those.
  const yFirst = vert.bounds[0]!;
  const yLast = vert.bounds[(outHeight - 1) * 2]! + vert.bounds[(outHeight - 1) * 2 + 1]!;

  let src = data;
  let srcW = inW;
  let rowOffset = 0; // input row that row 0 of `src` corresponds to
  if (needH) {
    const hor = precomputeCoeffs(inW, outWidth, interpolation);
    const rows = yLast - yFirst;
    const tmp = new Uint8Array(rows * outWidth * C);
    const half = 1 << (PRECISION_BITS - 1);
    for (let y = 0; y < rows; y++) {
      const inRow = (y + yFirst) * inW * C;
      for (let xx = 0; xx < outWidth; xx++) {
        const xmin = hor.bounds[xx * 2]!;
        const xmax = hor.bounds[xx * 2 + 1]!;
        const kOff = xx * hor.ksize;
        for (let c = 0; c < C; c++) {
          let ss = half;
          for (let x = 0; x < xmax; x++) ss += data[inRow + (x + xmin) * C + c]! * hor.weights[kOff + x]!;
          tmp[(y * outWidth + xx) * C + c] = clip8(ss);
        }
      }
    }
    src = tmp;
    srcW = outWidth;
    rowOffset = yFirst;
  }
  if (!needV) return { width: srcW, height: inH, channels: C, data: src };

  const out = new Uint8Array(outHeight * srcW * C);
  const half = 1 << (PRECISION_BITS - 1);
  for (let yy = 0; yy < outHeight; yy++) {
    const ymin = vert.bounds[yy * 2]! - rowOffset;
    const ymax = vert.bounds[yy * 2 + 1]!;
    const kOff = yy * vert.ksize;
    for (let xx = 0; xx < srcW; xx++) {
      for (let c = 0; c < C; c++) {
        let ss = half;
        for (let y = 0; y < ymax; y++) ss += src[((y + ymin) * srcW + xx) * C + c]! * vert.weights[kOff + y]!;
        out[(yy * srcW + xx) * C + c] = clip8(ss);
      }
    }
  }
  return { width: srcW, height: outHeight, channels: C, data: out };
}

/**
 * torchvision `Resize(size)` on a PIL image: the shorter side becomes `size`, the longer one
 * int(size * long / short) (truncated), then Pillow bilinear resampling. An image already at that size is returned
 * unchanged (as torchvision returns the same PIL image).
 */
export function resizeShorter(img: DecodedImage, size: number): DecodedImage {
  if (!Number.isInteger(size) || size < 1) throw new ValueError('resizeShorter', `size must be a positive integer, got ${size}`);
  const { width: w, height: h } = img;
  const [short, long] = w <= h ? [w, h] : [h, w];
  const newLong = Math.trunc((size * long) / short);
  const [newW, newH] = w <= h ? [size, newLong] : [newLong, size];
  if (newW === w && newH === h) return img;
  return resizeBilinear(img, newW, newH);
}

/** Python's round(): nearest integer, ties to even (torchvision rounds the crop offset with it). */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * PIL's `img.crop((left, top, left + width, top + height))`: the window may reach outside the image, where the
 * result is zero (black).
 */
export function cropImage(img: DecodedImage, top: number, left: number, height: number, width: number, op = 'crop'): DecodedImage {
  for (const [k, v] of Object.entries({ top, left, height, width })) {
    if (!Number.isInteger(v) || ((k === 'height' || k === 'width') && v < 1)) {
      throw new ValueError(op, `${k} must be ${k === 'height' || k === 'width' ? 'a positive' : 'an'} integer, got ${v}`);
    }
  }
  const { width: w, height: h, channels: C, data } = img;
  const out = new Uint8Array(height * width * C);
  const x0 = Math.max(0, -left);
  const x1 = Math.min(width, w - left);
  for (let y = 0; y < height; y++) {
    const sy = y + top;
    if (sy < 0 || sy >= h || x1 <= x0) continue;
    out.set(data.subarray((sy * w + left + x0) * C, (sy * w + left + x1) * C), (y * width + x0) * C);
  }
  return { width, height, channels: C, data: out };
}

/**
 * torchvision `CenterCrop(size)` (size, or [height, width]): top = int(round((h - size) / 2)), left likewise, with
 * Python's half-to-even round. A side shorter than the crop is first padded with zeros, (size - side) // 2 before and
 * the rest after.
 */
export function centerCrop(img: DecodedImage, size: number | readonly [number, number]): DecodedImage {
  const [ch, cw] = typeof size === 'number' ? [size, size] : size;
  if (!Number.isInteger(ch) || ch < 1 || !Number.isInteger(cw) || cw < 1) {
    throw new ValueError('centerCrop', `size must be a positive integer or [height, width] of them, got ${String(size)}`);
  }
  const { width: w, height: h } = img;
  // Padding offsets (left/top), zero when the side is long enough.
  const padL = cw > w ? Math.floor((cw - w) / 2) : 0;
  const padT = ch > h ? Math.floor((ch - h) / 2) : 0;
  const top = roundHalfEven((Math.max(h, ch) - ch) / 2);
  const left = roundHalfEven((Math.max(w, cw) - cw) / 2);
  return cropImage(img, top - padT, left - padL, ch, cw, 'centerCrop');
}

/**
 * torchvision `ToTensor()` then (optionally) `Normalize(mean, std)`: HWC uint8 RGB → CHW float32, v / 255, then
 * (x - mean[c]) / std[c]. Each step is rounded to float32 as PyTorch computes it in float32.
 */
export function toFloatCHW(
  img: DecodedImage,
  mean?: readonly number[],
  std?: readonly number[],
): { data: Float32Array; shape: [3, number, number] } {
  const { width: W, height: H, channels, data } = img;
  if (channels !== 3) throw new ValueError('toFloatCHW', `expects an RGB image, got ${channels} channels (use toRgb first)`);
  if ((mean === undefined) !== (std === undefined)) throw new ValueError('toFloatCHW', 'give both mean and std, or neither');
  if (mean !== undefined && std !== undefined && (mean.length !== 3 || std.length !== 3)) {
    throw new ValueError('toFloatCHW', `mean and std need 3 values each, got ${mean.length} and ${std.length}`);
  }
  const out = new Float32Array(3 * H * W);
  const f = Math.fround;
  for (let c = 0; c < 3; c++) {
    const m = mean !== undefined ? f(mean[c]!) : 0;
    const s = std !== undefined ? f(std[c]!) : 1;
    for (let i = 0; i < H * W; i++) {
      const x = f(data[i * 3 + c]! / 255); // float32 division, correctly rounded
      out[c * H * W + i] = mean !== undefined ? f(f(x - m) / s) : x;
    }
  }
  return { data: out, shape: [3, H, W] };
}

/**
 * The standard ImageNet evaluation transform: Resize(256) → CenterCrop(224) → ToTensor → Normalize(IMAGENET_MEAN,
 * IMAGENET_STD). Gray and alpha images are converted as PIL's convert('RGB') would be, first.
 */
export function imagenetPreprocess(img: DecodedImage): { data: Float32Array; shape: [3, 224, 224] } {
  checkImage('imagenetPreprocess', img);
  const rgb = toRgb(img);
  const t = toFloatCHW(centerCrop(resizeShorter(rgb, 256), 224), IMAGENET_MEAN, IMAGENET_STD);
  return { data: t.data, shape: [3, 224, 224] };
}
