// 2-D convolution kernels (PyTorch conv2d), NCHW activations and OIHW weights.
//
//   x: (N, C, H, W) · w: (O, C/groups, kH, kW) · bias: (O) → y: (N, O, oH, oW)
//
// Fast path: per image and per group, a GEMM over the im2col matrix
//   col_g: (K = C/groups·kH·kW) × (oH·oW), row index k = (ci·kH + ky)·kW + kx
//   forward:          y_g  (O/g × oHW)  = w_g (O/g × K) · col_g            (+ bias, folded into the GEMM's C)
//   backward input:   dcol (K × oHW)    = w_gᵀ · dy_g,   then col2im adds dcol into dx
//   backward weight:  dw_g (O/g × K)   += dy_g · col_gᵀ
// 1×1 convolutions with stride 1 and no padding skip im2col: x_g itself is the (C/g × HW) matrix.
// Groups are handled by offsets into the same buffers (no copies of x or w per group). Padding is skipped in
// im2col/col2im, never materialized in a padded copy of x.
//
// Summation order (forward): each output is bias + Σ_k w[o,k]·col[k,j] in float64 with k ascending, i.e. over
// (ci, ky, kx) in row-major order — the order the naive reference uses — rounded once to float32.
//
// The per-image functions (`conv2dForwardImage`, …) are the unit of work for a future thread pool; the im2col
// scratch buffer is module-level (one per worker) and grown on demand.

import { sgemm } from './gemm.js';

/** Shapes and hyper-parameters of a 2-D convolution. Padding is symmetric per axis (PyTorch). */
export interface Conv2dParams {
  n: number;
  c: number;
  h: number;
  w: number;
  o: number;
  kh: number;
  kw: number;
  strideH: number;
  strideW: number;
  padH: number;
  padW: number;
  dilH: number;
  dilW: number;
  groups: number;
  /** Output height, precomputed by the caller with conv2dOutSize. */
  oh: number;
  /** Output width, precomputed by the caller with conv2dOutSize. */
  ow: number;
}

/** PyTorch's output size: floor((in + 2·pad − dil·(k − 1) − 1) / stride) + 1. */
export function conv2dOutSize(inSize: number, k: number, stride: number, pad: number, dil: number): number {
  return Math.floor((inSize + 2 * pad - dil * (k - 1) - 1) / stride) + 1;
}

let colBuf: Float32Array = new Float32Array(0);

function colScratch(need: number): Float32Array {
  if (colBuf.length < need) {
    let len = Math.max(4096, colBuf.length);
    while (len < need) len *= 2;
    colBuf = new Float32Array(len);
  }
  return colBuf;
}

/** True when the convolution is a plain matrix product over channels (1×1 kernel, stride 1, no padding). */
function isPointwise(p: Conv2dParams): boolean {
  return p.kh === 1 && p.kw === 1 && p.strideH === 1 && p.strideW === 1 && p.padH === 0 && p.padW === 0;
}

// For one kernel column kx, the output columns [ox0, ox1) whose input column ix = start + ox·stride
// (start = kx·dW − pW) lies in [0, W): ox0 = firstValid(start, stride), ox1 = endValid(start, stride, W, oW).
function firstValid(start: number, stride: number): number {
  // smallest o ≥ 0 with start + o·stride ≥ 0
  return start >= 0 ? 0 : Math.floor((-start + stride - 1) / stride);
}
function endValid(start: number, stride: number, size: number, outSize: number): number {
  // one past the largest o < outSize with start + o·stride ≤ size − 1
  if (start > size - 1) return 0;
  return Math.min(outSize, Math.floor((size - 1 - start) / stride) + 1);
}

/**
 * im2col for one image and one group: col (cg·kH·kW × oH·oW) from x[xOff …] holding cg channels of H×W.
 * Out-of-bounds (padding) positions are written as 0.
 */
export function im2col(col: Float32Array, x: Float32Array, xOff: number, cg: number, p: Conv2dParams): void {
  const { h, w, kh, kw, strideH: sh, strideW: sw, padH: ph, padW: pw, dilH: dh, dilW: dw, oh, ow } = p;
  const ohw = oh * ow;
  let row = 0;
  for (let ci = 0; ci < cg; ci++) {
    const xc = xOff + ci * h * w;
    for (let ky = 0; ky < kh; ky++) {
      for (let kx = 0; kx < kw; kx++, row++) {
        const base = row * ohw;
        const ixStart = kx * dw - pw;
        const ox0 = Math.min(firstValid(ixStart, sw), ow);
        const ox1 = Math.max(endValid(ixStart, sw, w, ow), ox0);
        for (let oy = 0; oy < oh; oy++) {
          const iy = oy * sh - ph + ky * dh;
          const d = base + oy * ow;
          if (iy < 0 || iy >= h) {
            col.fill(0, d, d + ow);
            continue;
          }
          const src = xc + iy * w + ixStart;
          for (let ox = 0; ox < ox0; ox++) col[d + ox] = 0;
          if (sw === 1) {
            for (let ox = ox0; ox < ox1; ox++) col[d + ox] = x[src + ox]!;
          } else {
            for (let ox = ox0; ox < ox1; ox++) col[d + ox] = x[src + ox * sw]!;
          }
          for (let ox = ox1; ox < ow; ox++) col[d + ox] = 0;
        }
      }
    }
  }
}

/** col2im for one image and one group: dx[dxOff …] (cg × H × W) += col scattered back; padding entries dropped. */
export function col2im(dx: Float32Array, dxOff: number, col: Float32Array, cg: number, p: Conv2dParams): void {
  const { h, w, kh, kw, strideH: sh, strideW: sw, padH: ph, padW: pw, dilH: dh, dilW: dw, oh, ow } = p;
  const ohw = oh * ow;
  let row = 0;
  for (let ci = 0; ci < cg; ci++) {
    const xc = dxOff + ci * h * w;
    for (let ky = 0; ky < kh; ky++) {
      for (let kx = 0; kx < kw; kx++, row++) {
        const base = row * ohw;
        const ixStart = kx * dw - pw;
        const ox0 = Math.min(firstValid(ixStart, sw), ow);
        const ox1 = Math.max(endValid(ixStart, sw, w, ow), ox0);
        for (let oy = 0; oy < oh; oy++) {
          const iy = oy * sh - ph + ky * dh;
          if (iy < 0 || iy >= h) continue;
          const d = base + oy * ow;
          const dst = xc + iy * w + ixStart;
          if (sw === 1) {
            for (let ox = ox0; ox < ox1; ox++) dx[dst + ox] = dx[dst + ox]! + col[d + ox]!;
          } else {
            for (let ox = ox0; ox < ox1; ox++) dx[dst + ox * sw] = dx[dst + ox * sw]! + col[d + ox]!;
          }
        }
      }
    }
  }
}

// ---- forward -----------------------------------------------------------------------------------------------

/** y: (N, O, oH, oW), overwritten. x: (N, C, H, W) · w: (O, C/groups, kH, kW) · bias: (O) or null. */
export function conv2dForward(
  y: Float32Array,
  x: Float32Array,
  w: Float32Array,
  bias: Float32Array | null,
  p: Conv2dParams,
): void {
  for (let ni = 0; ni < p.n; ni++) conv2dForwardImage(y, x, w, bias, p, ni);
}

/** conv2dForward for image `ni` only (writes y[ni] only). */
export function conv2dForwardImage(
  y: Float32Array,
  x: Float32Array,
  w: Float32Array,
  bias: Float32Array | null,
  p: Conv2dParams,
  ni: number,
): void {
  const { c, h, o, kh, kw, groups, oh, ow } = p;
  const cg = c / groups, og = o / groups;
  const K = cg * kh * kw, ohw = oh * ow, hw = h * p.w;
  const pointwise = isPointwise(p);
  const col = pointwise ? null : colScratch(K * ohw);
  for (let g = 0; g < groups; g++) {
    const yOff = (ni * o + g * og) * ohw;
    const xOff = (ni * c + g * cg) * hw;
    // Bias goes into C first so that the GEMM's single rounding covers bias + Σ.
    if (bias) for (let oc = 0; oc < og; oc++) y.fill(bias[g * og + oc]!, yOff + oc * ohw, yOff + (oc + 1) * ohw);
    const acc = bias !== null;
    if (col === null) {
      sgemm(y, w, x, og, ohw, K, { aOff: g * og * K, bOff: xOff, cOff: yOff, accumulate: acc });
    } else {
      im2col(col, x, xOff, cg, p);
      sgemm(y, w, col, og, ohw, K, { aOff: g * og * K, cOff: yOff, accumulate: acc });
    }
  }
}

// ---- backward ----------------------------------------------------------------------------------------------

/** dx: (N, C, H, W) += ∂L/∂x, given dy: (N, O, oH, oW) and w: (O, C/groups, kH, kW). Caller zeroes dx. */
export function conv2dBackwardInput(dx: Float32Array, dy: Float32Array, w: Float32Array, p: Conv2dParams): void {
  for (let ni = 0; ni < p.n; ni++) conv2dBackwardInputImage(dx, dy, w, p, ni);
}

/** conv2dBackwardInput for image `ni` only (touches dx[ni] only). */
export function conv2dBackwardInputImage(
  dx: Float32Array,
  dy: Float32Array,
  w: Float32Array,
  p: Conv2dParams,
  ni: number,
): void {
  const { c, h, o, kh, kw, groups, oh, ow } = p;
  const cg = c / groups, og = o / groups;
  const K = cg * kh * kw, ohw = oh * ow, hw = h * p.w;
  const pointwise = isPointwise(p);
  const col = pointwise ? null : colScratch(K * ohw);
  for (let g = 0; g < groups; g++) {
    const dyOff = (ni * o + g * og) * ohw;
    const dxOff = (ni * c + g * cg) * hw;
    // w_g is stored (og × K); op(A) = w_gᵀ (K × og).
    if (col === null) {
      sgemm(dx, w, dy, K, ohw, og, { transA: true, aOff: g * og * K, bOff: dyOff, cOff: dxOff, accumulate: true });
    } else {
      sgemm(col, w, dy, K, ohw, og, { transA: true, aOff: g * og * K, bOff: dyOff });
      col2im(dx, dxOff, col, cg, p);
    }
  }
}

/** dw: (O, C/groups, kH, kW) += ∂L/∂w, given dy: (N, O, oH, oW) and x: (N, C, H, W). Caller zeroes dw. */
export function conv2dBackwardWeight(dw: Float32Array, dy: Float32Array, x: Float32Array, p: Conv2dParams): void {
  for (let ni = 0; ni < p.n; ni++) conv2dBackwardWeightImage(dw, dy, x, p, ni);
}

/** The contribution of image `ni` to conv2dBackwardWeight (added into dw). */
export function conv2dBackwardWeightImage(
  dw: Float32Array,
  dy: Float32Array,
  x: Float32Array,
  p: Conv2dParams,
  ni: number,
): void {
  const { c, h, o, kh, kw, groups, oh, ow } = p;
  const cg = c / groups, og = o / groups;
  const K = cg * kh * kw, ohw = oh * ow, hw = h * p.w;
  const pointwise = isPointwise(p);
  const col = pointwise ? null : colScratch(K * ohw);
  for (let g = 0; g < groups; g++) {
    const dyOff = (ni * o + g * og) * ohw;
    const xOff = (ni * c + g * cg) * hw;
    // dw_g (og × K) += dy_g (og × oHW) · col_gᵀ; col_g is stored (K × oHW) so op(B) = colᵀ with ldb = oHW.
    if (col === null) {
      sgemm(dw, dy, x, og, K, ohw, { transB: true, aOff: dyOff, bOff: xOff, cOff: g * og * K, accumulate: true });
    } else {
      im2col(col, x, xOff, cg, p);
      sgemm(dw, dy, col, og, K, ohw, { transB: true, aOff: dyOff, cOff: g * og * K, accumulate: true });
    }
  }
}

/** db: (O) += Σ over (N, oH, oW) of dy (float64 sum per channel, one rounding). Caller zeroes db. */
export function conv2dBackwardBias(db: Float32Array, dy: Float32Array, p: Conv2dParams): void {
  const { n, o, oh, ow } = p;
  const ohw = oh * ow;
  for (let oc = 0; oc < o; oc++) {
    let s = 0;
    for (let ni = 0; ni < n; ni++) {
      const off = (ni * o + oc) * ohw;
      for (let j = 0; j < ohw; j++) s += dy[off + j]!;
    }
    db[oc] = db[oc]! + s;
  }
}

// ---- naive references (direct loops, float64 accumulators) ------------------------------------------------

/** Reference forward: direct 7-loop convolution; each output is bias + Σ over (ci, ky, kx) ascending, in float64. */
export function conv2dForwardNaive(
  y: Float32Array,
  x: Float32Array,
  w: Float32Array,
  bias: Float32Array | null,
  p: Conv2dParams,
): void {
  const { n, c, h, o, kh, kw, strideH, strideW, padH, padW, dilH, dilW, groups, oh, ow } = p;
  const W = p.w;
  const cg = c / groups, og = o / groups;
  for (let ni = 0; ni < n; ni++) {
    for (let oc = 0; oc < o; oc++) {
      const g = Math.floor(oc / og);
      for (let oy = 0; oy < oh; oy++) {
        for (let ox = 0; ox < ow; ox++) {
          let s = 0;
          for (let ci = 0; ci < cg; ci++) {
            for (let ky = 0; ky < kh; ky++) {
              const iy = oy * strideH - padH + ky * dilH;
              if (iy < 0 || iy >= h) continue;
              for (let kx = 0; kx < kw; kx++) {
                const ix = ox * strideW - padW + kx * dilW;
                if (ix < 0 || ix >= W) continue;
                s += x[((ni * c + g * cg + ci) * h + iy) * W + ix]! * w[((oc * cg + ci) * kh + ky) * kw + kx]!;
              }
            }
          }
          y[((ni * o + oc) * oh + oy) * ow + ox] = bias ? bias[oc]! + s : s;
        }
      }
    }
  }
}

/** Reference backward input: scatter dy·w into a float64 copy of dx, then add it to dx once. */
export function conv2dBackwardInputNaive(dx: Float32Array, dy: Float32Array, w: Float32Array, p: Conv2dParams): void {
  const { n, c, h, o, kh, kw, strideH, strideW, padH, padW, dilH, dilW, groups, oh, ow } = p;
  const W = p.w;
  const cg = c / groups, og = o / groups;
  const acc = new Float64Array(n * c * h * W);
  for (let ni = 0; ni < n; ni++) {
    for (let oc = 0; oc < o; oc++) {
      const g = Math.floor(oc / og);
      for (let oy = 0; oy < oh; oy++) {
        for (let ox = 0; ox < ow; ox++) {
          const d = dy[((ni * o + oc) * oh + oy) * ow + ox]!;
          for (let ci = 0; ci < cg; ci++) {
            for (let ky = 0; ky < kh; ky++) {
              const iy = oy * strideH - padH + ky * dilH;
              if (iy < 0 || iy >= h) continue;
              for (let kx = 0; kx < kw; kx++) {
                const ix = ox * strideW - padW + kx * dilW;
                if (ix < 0 || ix >= W) continue;
                acc[((ni * c + g * cg + ci) * h + iy) * W + ix]! += d * w[((oc * cg + ci) * kh + ky) * kw + kx]!;
              }
            }
          }
        }
      }
    }
  }
  for (let i = 0; i < acc.length; i++) dx[i] = dx[i]! + acc[i]!;
}

/** Reference backward weight: each dw entry += Σ over (n, oy, ox) of dy·x, in float64. */
export function conv2dBackwardWeightNaive(dw: Float32Array, dy: Float32Array, x: Float32Array, p: Conv2dParams): void {
  const { n, c, h, o, kh, kw, strideH, strideW, padH, padW, dilH, dilW, groups, oh, ow } = p;
  const W = p.w;
  const cg = c / groups, og = o / groups;
  for (let oc = 0; oc < o; oc++) {
    const g = Math.floor(oc / og);
    for (let ci = 0; ci < cg; ci++) {
      for (let ky = 0; ky < kh; ky++) {
        for (let kx = 0; kx < kw; kx++) {
          let s = 0;
          for (let ni = 0; ni < n; ni++) {
            for (let oy = 0; oy < oh; oy++) {
              const iy = oy * strideH - padH + ky * dilH;
              if (iy < 0 || iy >= h) continue;
              for (let ox = 0; ox < ow; ox++) {
                const ix = ox * strideW - padW + kx * dilW;
                if (ix < 0 || ix >= W) continue;
                s += dy[((ni * o + oc) * oh + oy) * ow + ox]! * x[((ni * c + g * cg + ci) * h + iy) * W + ix]!;
              }
            }
          }
          const wi = ((oc * cg + ci) * kh + ky) * kw + kx;
          dw[wi] = dw[wi]! + s;
        }
      }
    }
  }
}
