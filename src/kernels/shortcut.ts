// The option-A shortcut of the CIFAR ResNets (He et al. 2015 §3.3): y = x[:, :, ::s, ::s] with zero channels
// added, `before` of them ahead of x's channels and the rest after. Pure copies, no arithmetic, so results are
// bit-exact (NaN payloads and −0 included). Memory-bound: a plane's rows are copied with hoisted offsets (stride 1:
// one typed-array copy per plane), the zero channels filled natively (in the resident memory, where a training
// step's tensors lie, by wasm's `memory.fill`: 3.5–5× faster than `TypedArray.prototype.fill` on shared memory).

import { zeroFloats as zero } from './winograd-resident.js';

/** x: (n, c, h, w) → y: (n, oc, oh, ow) with oh = ⌈h/stride⌉, ow = ⌈w/stride⌉, x's channels at [before, before + c). */
export interface ShortcutParams {
  n: number;
  c: number;
  h: number;
  w: number;
  oc: number;
  oh: number;
  ow: number;
  stride: number;
  before: number;
}

/** y = shortcut(x), every element of y written (y's prior contents do not matter). */
export function shortcutAForward(y: Float32Array, x: Float32Array, p: ShortcutParams): void {
  const { n, c, h, w, oc, oh, ow, stride, before } = p;
  const plane = oh * ow, xPlane = h * w;
  for (let i = 0; i < n; i++) {
    const yi = i * oc * plane;
    zero(y, yi, yi + before * plane);
    zero(y, yi + (before + c) * plane, yi + oc * plane);
    for (let ch = 0; ch < c; ch++) {
      const xo = (i * c + ch) * xPlane;
      let yo = yi + (before + ch) * plane;
      if (stride === 1) {
        y.set(x.subarray(xo, xo + xPlane), yo);
        continue;
      }
      for (let r = 0; r < oh; r++) {
        let xr = xo + r * stride * w;
        for (let q = 0; q < ow; q++, xr += stride) y[yo++] = x[xr]!;
      }
    }
  }
}

/**
 * The shortcut's input gradient: dx[:, :, ::s, ::s] += dy[:, before : before + c]. With `overwrite`, dx is written
 * entirely instead (zeros where the shortcut did not read x), whatever it held.
 */
export function shortcutABackward(dx: Float32Array, dy: Float32Array, p: ShortcutParams, overwrite: boolean): void {
  const { n, c, h, w, oc, oh, ow, stride, before } = p;
  const plane = oh * ow, xPlane = h * w;
  if (overwrite && stride !== 1) zero(dx, 0, n * c * xPlane);
  for (let i = 0; i < n; i++) {
    for (let ch = 0; ch < c; ch++) {
      const xo = (i * c + ch) * xPlane;
      let yo = (i * oc + before + ch) * plane;
      if (stride === 1) {
        if (overwrite) dx.set(dy.subarray(yo, yo + plane), xo);
        else for (let k = 0; k < plane; k++) dx[xo + k]! += dy[yo + k]!;
        continue;
      }
      for (let r = 0; r < oh; r++) {
        let xr = xo + r * stride * w;
        if (overwrite) for (let q = 0; q < ow; q++, xr += stride) dx[xr] = dy[yo++]!;
        else for (let q = 0; q < ow; q++, xr += stride) dx[xr]! += dy[yo++]!;
      }
    }
  }
}
