// The naive reference kernels: direct loops with float64 accumulators (what the fast kernels are tested against).

import type { Conv2dParams } from './plan.js';

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
