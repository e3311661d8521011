// 2-D pooling kernels with PyTorch's CPU semantics, NCHW. Every (n, c) plane is pooled independently.
//
//   max:      x: (N, C, H, W) → y, argmax: (N, C, oH, oW); argmax is the flat index ih·W + iw within the plane
//   avg:      same shapes, PyTorch's divisor rule (see avgPool2dForward)
//   adaptive: bins [floor(i·H/oH), ceil((i+1)·H/oH))

import { parallelFor, registerTask } from './parallel.js';
import { kernelBackend } from './wasm/features.js';
import { simdPool, simdPoolArgmax } from './wasm/pool.js';
import { simdGemm } from './wasm/sgemm.js';

/** Shapes and hyper-parameters of a 2-D pooling. Padding is symmetric per axis; oh/ow come from poolOutSize. */
export interface PoolParams {
  n: number;
  c: number;
  h: number;
  w: number;
  kh: number;
  kw: number;
  strideH: number;
  strideW: number;
  padH: number;
  padW: number;
  /** Dilation (max pooling only; PyTorch's avg pooling has none, so avg pooling requires 1 here). */
  dilH: number;
  dilW: number;
  oh: number;
  ow: number;
}

/** Average pooling extras: PyTorch's count_include_pad and divisor_override. */
export interface AvgPoolParams extends PoolParams {
  countIncludePad: boolean;
  divisorOverride?: number;
}

/** Output size of adaptive pooling: the input plane (h, w) is split into (oh, ow) bins. */
export interface AdaptivePoolParams {
  n: number;
  c: number;
  h: number;
  w: number;
  oh: number;
  ow: number;
}

/**
 * PyTorch's pooling output size: floor((in + 2·pad − dil·(k − 1) − 1 [+ stride − 1 if ceil]) / stride) + 1, and in
 * ceil mode the last window must start inside the input or the left padding: if (out − 1)·stride ≥ in + pad, out − 1.
 * E.g. in=5, k=2, stride=2, pad=1, ceil → 3 (not 4).
 */
export function poolOutSize(inSize: number, k: number, stride: number, pad: number, dil: number, ceilMode: boolean): number {
  const span = inSize + 2 * pad - dil * (k - 1) - 1 + (ceilMode ? stride - 1 : 0);
  let out = Math.floor(span / stride) + 1;
  if (ceilMode && (out - 1) * stride >= inSize + pad) out--;
  return out;
}

// ---- max pooling -------------------------------------------------------------------------------------------

/**
 * y, argmax: (N, C, oH, oW), overwritten, from x: (N, C, H, W). Padding counts as −∞. Within a window the scan is
 * row-major and a value replaces the running max when it is greater (so ties keep the first) or when it is NaN
 * (so a NaN makes the output NaN, and with several NaNs the argmax is the last NaN, as in PyTorch's CPU kernel).
 * A window with no input element in it (possible only with large dilation) gives −∞ and argmax −1.
 */
export function maxPool2dForward(y: Float32Array, argmax: Int32Array, x: Float32Array, p: PoolParams): void {
  const planes = p.n * p.c;
  const perUnit = Math.max(1, Math.ceil(POOL_UNIT_ELEMS / (p.oh * p.ow * p.kh * p.kw)));
  // Split over planes across threads, as maxPool2dBackward; the argmax travels as its float32 bit pattern. The cost
  // counts 8 per window element: about 3 ns each in the JavaScript scan, whose branches on the data random data
  // mispredicts, half that with the SIMD kernel's copies and borders (ResNet-18's stem pooling at 8×64×16×16, one
  // core: 1.05 and 0.47 ms, worth the threads either way).
  const idx = new Float32Array(argmax.buffer, argmax.byteOffset, argmax.length);
  parallelFor({
    kernel: 'pool.max', bufs: { y, idx, x }, writes: ['y', 'idx'], overwrites: ['y', 'idx'], params: { p, perUnit },
    units: Math.ceil(planes / perUnit), cost: 8 * planes * p.oh * p.ow * p.kh * p.kw,
  });
}

registerTask<{ p: PoolParams; perUnit: number }>('pool.max', (bufs, q, u0, u1) => {
  const { p } = q, f = bufs.idx as Float32Array;
  const y = bufs.y as Float32Array, x = bufs.x as Float32Array, pl0 = u0 * q.perUnit, pl1 = Math.min(p.n * p.c, u1 * q.perUnit);
  const argmax = new Int32Array(f.buffer, f.byteOffset, f.length);
  if (stride2Window3(p) && kernelBackend() === 'simd') max3s2Simd(y, argmax, x, p, pl0, pl1);
  else maxPlanes(y, argmax, x, p, pl0, pl1);
});

/** 3×3 windows, stride 2, dilation 1: the shape max3s2Simd computes. */
function stride2Window3(p: PoolParams): boolean {
  return p.kh === 3 && p.kw === 3 && p.strideH === 2 && p.strideW === 2 && p.dilH === 1 && p.dilW === 1;
}

/** Planes [pl0, pl1) of max pooling; argmax null: values only. */
function maxPlanes(y: Float32Array, argmax: Int32Array | null, x: Float32Array, p: PoolParams, pl0: number, pl1: number): void {
  const { h, w, kh, kw, strideH, strideW, padH, padW, dilH, dilW, oh, ow } = p;
  // Per output column: the kernel columns [kx0, kx1) whose input column x0 + kx·dilW lies in [0, W).
  const kxRange = tapRanges(ow, strideW, padW, dilW, kw, w);
  for (let pl = pl0; pl < pl1; pl++) {
    const xOff = pl * h * w;
    const yOff = pl * oh * ow;
    for (let oy = 0; oy < oh; oy++) {
      // Rows of the window that fall inside the input: iy = y0 + ky·dilH for ky in [ky0, ky1).
      const y0 = oy * strideH - padH;
      const ky0 = firstTap(y0, dilH);
      const ky1 = endTap(y0, dilH, kh, h);
      // Whole 3×3 windows (dilation 1): the same scan, unrolled.
      const rows3 = kh === 3 && kw === 3 && dilH === 1 && dilW === 1 && ky0 === 0 && ky1 === 3;
      for (let ox = 0; ox < ow; ox++) {
        const x0 = ox * strideW - padW;
        const kx0 = kxRange[2 * ox]!, kx1 = kxRange[2 * ox + 1]!;
        let best = -Infinity;
        let bestIdx = -1;
        if (rows3 && kx0 === 0 && kx1 === 3) {
          const i0 = y0 * w + x0, i1 = i0 + w, i2 = i1 + w, b = xOff;
          let v = x[b + i0]!;
          best = v; bestIdx = i0;
          v = x[b + i0 + 1]!; if (v > best || v !== v) { best = v; bestIdx = i0 + 1; }
          v = x[b + i0 + 2]!; if (v > best || v !== v) { best = v; bestIdx = i0 + 2; }
          v = x[b + i1]!; if (v > best || v !== v) { best = v; bestIdx = i1; }
          v = x[b + i1 + 1]!; if (v > best || v !== v) { best = v; bestIdx = i1 + 1; }
          v = x[b + i1 + 2]!; if (v > best || v !== v) { best = v; bestIdx = i1 + 2; }
          v = x[b + i2]!; if (v > best || v !== v) { best = v; bestIdx = i2; }
          v = x[b + i2 + 1]!; if (v > best || v !== v) { best = v; bestIdx = i2 + 1; }
          v = x[b + i2 + 2]!; if (v > best || v !== v) { best = v; bestIdx = i2 + 2; }
        } else if (ky0 < ky1 && kx0 < kx1) {
          bestIdx = (y0 + ky0 * dilH) * w + x0 + kx0 * dilW;
          for (let ky = ky0; ky < ky1; ky++) {
            const rowIdx = (y0 + ky * dilH) * w + x0;
            for (let kx = kx0; kx < kx1; kx++) {
              const idx = rowIdx + kx * dilW;
              const v = x[xOff + idx]!;
              if (v > best || v !== v) {
                best = v;
                bestIdx = idx;
              }
            }
          }
        }
        y[yOff + oy * ow + ox] = best;
        if (argmax !== null) argmax[yOff + oy * ow + ox] = bestIdx;
      }
    }
  }
}

/**
 * The values of maxPool2dForward without the argmax (inference: nothing will route a gradient), the same scan and
 * so the same values, NaN and −0 included; split over planes across threads.
 */
export function maxPool2dForwardValues(y: Float32Array, x: Float32Array, p: PoolParams): void {
  const planes = p.n * p.c;
  const perUnit = Math.max(1, Math.ceil(POOL_UNIT_ELEMS / (p.oh * p.ow * p.kh * p.kw)));
  parallelFor({
    kernel: 'pool.maxValues', bufs: { y, x }, writes: ['y'], overwrites: ['y'], params: { p, perUnit },
    units: Math.ceil(planes / perUnit), cost: 2 * planes * p.oh * p.ow * p.kh * p.kw,
  });
}

/** Window elements per work unit of the threaded pooling (so small planes are grouped). */
const POOL_UNIT_ELEMS = 65536;

registerTask<{ p: PoolParams; perUnit: number }>('pool.maxValues', (bufs, q, u0, u1) => {
  const { p } = q, planes = p.n * p.c;
  const y = bufs.y as Float32Array, x = bufs.x as Float32Array, pl0 = u0 * q.perUnit, pl1 = Math.min(planes, u1 * q.perUnit);
  if (stride2Window3(p) && kernelBackend() === 'simd') max3s2Simd(y, null, x, p, pl0, pl1);
  else maxPlanes(y, null, x, p, pl0, pl1);
});

/**
 * Planes [pl0, pl1) of 3×3 stride-2 max pooling (dilation 1), values (and the argmax, unless null) on the SIMD
 * backend: a plane is copied into wasm memory, its outputs whose windows lie inside it computed there (wasm/pool.ts:
 * maxPlanes' bits, without its branches on the data, which random data mispredicts: ResNet's stem pooling @112, one
 * core, 8 → 1.5 ms values only; with the argmax, ResNet-18's stem pooling at 8×64×16×16, 1.05 → 0.47 ms), the others
 * here, and the plane's outputs copied out at once.
 */
function max3s2Simd(y: Float32Array, argmax: Int32Array | null, x: Float32Array, p: PoolParams, pl0: number, pl1: number): void {
  const { h, w, padH, padW, oh, ow } = p;
  const hw = h * w, ohw = oh * ow, outF = Math.ceil(hw / 4) * 4;
  // Output rows [oyA, oyB) and columns [oxA, oxB) have their windows inside the plane.
  const oyA = Math.min(oh, Math.ceil(padH / 2)), oyB = Math.max(oyA, Math.min(oh, Math.floor((h - 3 + padH) / 2) + 1));
  const oxA = Math.min(ow, Math.ceil(padW / 2)), oxB = Math.max(oxA, Math.min(ow, Math.floor((w - 3 + padW) / 2) + 1));
  const cols = oxB - oxA, n4 = cols >> 2;
  if (n4 === 0 || oyB === oyA) {
    maxPlanes(y, argmax, x, p, pl0, pl1);
    return;
  }
  // The plane at 0, its values at outF, its argmax at idxF (int32).
  const ohw4 = Math.ceil(ohw / 4) * 4, idxF = outF + ohw4;
  const f = simdGemm(4 * (idxF + ohw4)).f;
  const fi = argmax === null ? null : new Int32Array(f.buffer, f.byteOffset, f.length);
  const max3s2 = simdPool(), max3s2i = argmax === null ? null : simdPoolArgmax();
  const srcAt = (ox: number): number => 4 * ((2 * oyA - padH) * w + 2 * ox - padW);
  const dstAt = (ox: number): number => 4 * (outF + oyA * ow + ox);
  const idxAt = (ox: number): number => 4 * (idxF + oyA * ow + ox);
  const base = (ox: number): number => (2 * oyA - padH) * w + 2 * ox - padW;
  for (let pl = pl0; pl < pl1; pl++) {
    f.set(x.subarray(pl * hw, (pl + 1) * hw));
    if (max3s2i !== null) {
      max3s2i(srcAt(oxA), w, dstAt(oxA), idxAt(oxA), ow, oyB - oyA, n4, base(oxA));
      // The last columns as one more vector that ends at oxB (overlapping: the same values and indices again).
      if (cols > 4 * n4) max3s2i(srcAt(oxB - 4), w, dstAt(oxB - 4), idxAt(oxB - 4), ow, oyB - oyA, 1, base(oxB - 4));
    } else {
      max3s2(srcAt(oxA), w, dstAt(oxA), ow, oyB - oyA, n4);
      if (cols > 4 * n4) max3s2(srcAt(oxB - 4), w, dstAt(oxB - 4), ow, oyB - oyA, 1);
    }
    for (let oy = 0; oy < oh; oy++) {
      if (oy < oyA || oy >= oyB) maxRow(f, outF, fi, idxF, x, p, pl, oy, 0, ow);
      else {
        maxRow(f, outF, fi, idxF, x, p, pl, oy, 0, oxA);
        maxRow(f, outF, fi, idxF, x, p, pl, oy, oxB, ow);
      }
    }
    y.set(f.subarray(outF, outF + ohw), pl * ohw);
    if (argmax !== null) argmax.set(fi!.subarray(idxF, idxF + ohw), pl * ohw);
  }
}

/**
 * Outputs [ox0, ox1) of row oy of plane pl as maxPlanes computes them, into dst[dOff + oy·oW + ox], and their argmax
 * into idx[iOff + oy·oW + ox] unless idx is null.
 */
function maxRow(
  dst: Float32Array, dOff: number, idx: Int32Array | null, iOff: number, x: Float32Array, p: PoolParams, pl: number, oy: number, ox0: number, ox1: number,
): void {
  const { h, w, kh, kw, strideH, strideW, padH, padW, dilH, dilW, ow } = p;
  const y0 = oy * strideH - padH, ky0 = firstTap(y0, dilH), ky1 = endTap(y0, dilH, kh, h);
  const xOff = pl * h * w;
  for (let ox = ox0; ox < ox1; ox++) {
    const x0 = ox * strideW - padW, kx0 = firstTap(x0, dilW), kx1 = endTap(x0, dilW, kw, w);
    let best = -Infinity;
    let bestIdx = ky0 < ky1 && kx0 < kx1 ? (y0 + ky0 * dilH) * w + x0 + kx0 * dilW : -1;
    for (let ky = ky0; ky < ky1; ky++) {
      const rowIdx = (y0 + ky * dilH) * w + x0;
      for (let kx = kx0; kx < kx1; kx++) {
        const v = x[xOff + rowIdx + kx * dilW]!;
        if (v > best || v !== v) {
          best = v;
          bestIdx = rowIdx + kx * dilW;
        }
      }
    }
    dst[dOff + oy * ow + ox] = best;
    if (idx !== null) idx[iOff + oy * ow + ox] = bestIdx;
  }
}

// Taps of a dilated window starting at s (possibly negative): tap t sits at s + t·dil; the ones inside [0, size)
// are t in [firstTap, endTap); endTap is clamped to k, and an empty range has firstTap ≥ endTap.
function firstTap(s: number, dil: number): number {
  return s >= 0 ? 0 : Math.ceil(-s / dil);
}
function endTap(s: number, dil: number, k: number, size: number): number {
  return s >= size ? 0 : Math.min(k, Math.floor((size - 1 - s) / dil) + 1);
}

let tapBuf: Int32Array = new Int32Array(0);

/** [first, end) tap pairs for every output position along one axis, in a reused module-level buffer. */
function tapRanges(out: number, stride: number, pad: number, dil: number, k: number, size: number): Int32Array {
  if (tapBuf.length < 2 * out) tapBuf = new Int32Array(Math.max(2 * out, 2 * tapBuf.length));
  for (let o = 0; o < out; o++) {
    const s = o * stride - pad;
    tapBuf[2 * o] = firstTap(s, dil);
    tapBuf[2 * o + 1] = endTap(s, dil, k, size);
  }
  return tapBuf;
}

/**
 * dx: (N, C, H, W) += dy routed to the argmax positions (windows with argmax −1 are skipped). Caller zeroes dx.
 * Split over planes across threads (a plane's windows only route into that plane).
 */
export function maxPool2dBackward(dx: Float32Array, dy: Float32Array, argmax: Int32Array, p: PoolParams): void {
  const planes = p.n * p.c;
  const perUnit = Math.max(1, Math.ceil(POOL_UNIT_ELEMS / (p.h * p.w)));
  // The argmax travels as its float32 bit pattern (task buffers are float arrays); the bits are read back as int32.
  const idx = new Float32Array(argmax.buffer, argmax.byteOffset, argmax.length);
  parallelFor({
    kernel: 'pool.maxBackward', bufs: { dx, dy, idx }, writes: ['dx'], params: { p, perUnit },
    units: Math.ceil(planes / perUnit), cost: 2 * planes * (p.h * p.w + p.oh * p.ow),
  });
}

registerTask<{ p: PoolParams; perUnit: number }>('pool.maxBackward', (bufs, q, u0, u1) => {
  const { h, w, oh, ow } = q.p;
  const dx = bufs.dx as Float32Array, dy = bufs.dy as Float32Array, f = bufs.idx as Float32Array;
  const argmax = new Int32Array(f.buffer, f.byteOffset, f.length);
  const ohw = oh * ow;
  const pl1 = Math.min(q.p.n * q.p.c, u1 * q.perUnit);
  for (let pl = u0 * q.perUnit; pl < pl1; pl++) {
    const xOff = pl * h * w;
    const yOff = pl * ohw;
    for (let j = 0; j < ohw; j++) {
      const i = argmax[yOff + j]!;
      if (i >= 0) dx[xOff + i] = dx[xOff + i]! + dy[yOff + j]!;
    }
  }
});

// ---- average pooling ---------------------------------------------------------------------------------------

// PyTorch's window for output (oy, ox): rows [y0, y1) with y0 = oy·s − pad, y1 = min(y0 + k, H + pad); the
// count_include_pad divisor is (y1 − y0)·(x1 − x0) taken before clipping to the input, so a ceil-mode window that
// hangs past H + pad is clipped there. The sum (and the other divisor) then uses the window clipped to [0, H).
function avgDivisor(p: AvgPoolParams, y0: number, y1: number, x0: number, x1: number, cy0: number, cy1: number, cx0: number, cx1: number): number {
  if (p.divisorOverride !== undefined) return p.divisorOverride;
  return p.countIncludePad ? (y1 - y0) * (x1 - x0) : (cy1 - cy0) * (cx1 - cx0);
}

/**
 * y: (N, C, oH, oW), overwritten, from x: (N, C, H, W): mean over each window (float64 sum / divisor). A window with
 * no input element gives 0 (PyTorch). Dilation is not part of avg pooling (dilH/dilW are ignored).
 */
export function avgPool2dForward(y: Float32Array, x: Float32Array, p: AvgPoolParams): void {
  const { n, c, h, w, kh, kw, strideH, strideW, padH, padW, oh, ow } = p;
  const planes = n * c;
  for (let pl = 0; pl < planes; pl++) {
    const xOff = pl * h * w;
    const yOff = pl * oh * ow;
    for (let oy = 0; oy < oh; oy++) {
      const y0 = oy * strideH - padH;
      const y1 = Math.min(y0 + kh, h + padH);
      const cy0 = Math.max(y0, 0), cy1 = Math.min(y1, h);
      for (let ox = 0; ox < ow; ox++) {
        const x0 = ox * strideW - padW;
        const x1 = Math.min(x0 + kw, w + padW);
        const cx0 = Math.max(x0, 0), cx1 = Math.min(x1, w);
        if (cy0 >= cy1 || cx0 >= cx1) {
          y[yOff + oy * ow + ox] = 0;
          continue;
        }
        let s = 0;
        for (let iy = cy0; iy < cy1; iy++) {
          const r = xOff + iy * w;
          for (let ix = cx0; ix < cx1; ix++) s += x[r + ix]!;
        }
        y[yOff + oy * ow + ox] = s / avgDivisor(p, y0, y1, x0, x1, cy0, cy1, cx0, cx1);
      }
    }
  }
}

/** dx: (N, C, H, W) += each dy spread evenly (dy / divisor) over its window's input elements. Caller zeroes dx. */
export function avgPool2dBackward(dx: Float32Array, dy: Float32Array, p: AvgPoolParams): void {
  const { n, c, h, w, kh, kw, strideH, strideW, padH, padW, oh, ow } = p;
  const planes = n * c;
  for (let pl = 0; pl < planes; pl++) {
    const xOff = pl * h * w;
    const yOff = pl * oh * ow;
    for (let oy = 0; oy < oh; oy++) {
      const y0 = oy * strideH - padH;
      const y1 = Math.min(y0 + kh, h + padH);
      const cy0 = Math.max(y0, 0), cy1 = Math.min(y1, h);
      for (let ox = 0; ox < ow; ox++) {
        const x0 = ox * strideW - padW;
        const x1 = Math.min(x0 + kw, w + padW);
        const cx0 = Math.max(x0, 0), cx1 = Math.min(x1, w);
        if (cy0 >= cy1 || cx0 >= cx1) continue;
        const g = Math.fround(dy[yOff + oy * ow + ox]! / avgDivisor(p, y0, y1, x0, x1, cy0, cy1, cx0, cx1));
        for (let iy = cy0; iy < cy1; iy++) {
          const r = xOff + iy * w;
          for (let ix = cx0; ix < cx1; ix++) dx[r + ix] = dx[r + ix]! + g;
        }
      }
    }
  }
}

// ---- adaptive average pooling ------------------------------------------------------------------------------

/** y: (N, C, oH, oW), overwritten: mean of x over bins rows [floor(i·H/oH), ceil((i+1)·H/oH)) × likewise for columns. */
export function adaptiveAvgPool2dForward(y: Float32Array, x: Float32Array, p: AdaptivePoolParams): void {
  const { n, c, h, w, oh, ow } = p;
  const planes = n * c;
  for (let pl = 0; pl < planes; pl++) {
    const xOff = pl * h * w;
    const yOff = pl * oh * ow;
    for (let oy = 0; oy < oh; oy++) {
      const y0 = Math.floor((oy * h) / oh), y1 = Math.ceil(((oy + 1) * h) / oh);
      for (let ox = 0; ox < ow; ox++) {
        const x0 = Math.floor((ox * w) / ow), x1 = Math.ceil(((ox + 1) * w) / ow);
        let s = 0;
        for (let iy = y0; iy < y1; iy++) {
          const r = xOff + iy * w;
          for (let ix = x0; ix < x1; ix++) s += x[r + ix]!;
        }
        y[yOff + oy * ow + ox] = s / ((y1 - y0) * (x1 - x0));
      }
    }
  }
}

/**
 * adaptiveAvgPool2dBackward of global pooling (oh = ow = 1) into a dx of any contents: every element of a plane is
 * 0 + dy / (h·w), what the accumulating kernel leaves in a zeroed dx (+0 for a −0 gradient). Small planes by a loop
 * of stores: a TypedArray fill call costs about 15 ns before it stores anything (ResNet-18's 8×512 planes of 1×1 on
 * 32×32 images: 0.066 → 0.005 ms; 4×4 planes 2×); planes of 8×8 and up by fill (CIFAR ResNet-20's 32×64×8×8: the
 * loop is 1.15× fill's time).
 */
export function globalAvgPool2dBackward(dx: Float32Array, dy: Float32Array, p: AdaptivePoolParams): void {
  const hw = p.h * p.w, planes = p.n * p.c;
  if (hw >= 64) {
    for (let pl = 0; pl < planes; pl++) dx.fill(0 + Math.fround(dy[pl]! / hw), pl * hw, (pl + 1) * hw);
    return;
  }
  for (let pl = 0, at = 0; pl < planes; pl++) {
    const v = 0 + Math.fround(dy[pl]! / hw);
    for (const end = at + hw; at < end; at++) dx[at] = v;
  }
}

/** dx: (N, C, H, W) += each dy / (bin size) over its bin (bins may overlap). Caller zeroes dx. */
export function adaptiveAvgPool2dBackward(dx: Float32Array, dy: Float32Array, p: AdaptivePoolParams): void {
  const { n, c, h, w, oh, ow } = p;
  const planes = n * c;
  for (let pl = 0; pl < planes; pl++) {
    const xOff = pl * h * w;
    const yOff = pl * oh * ow;
    for (let oy = 0; oy < oh; oy++) {
      const y0 = Math.floor((oy * h) / oh), y1 = Math.ceil(((oy + 1) * h) / oh);
      for (let ox = 0; ox < ow; ox++) {
        const x0 = Math.floor((ox * w) / ow), x1 = Math.ceil(((ox + 1) * w) / ow);
        const g = Math.fround(dy[yOff + oy * ow + ox]! / ((y1 - y0) * (x1 - x0)));
        for (let iy = y0; iy < y1; iy++) {
          const r = xOff + iy * w;
          for (let ix = x0; ix < x1; ix++) dx[r + ix] = dx[r + ix]! + g;
        }
      }
    }
  }
}
