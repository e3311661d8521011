// The direct convolution (wasm/direct.ts) for few channels: the forward of 3×3 convs at stride 1 or 2 and the input
// gradient of stride-1 ones, on the SIMD backend. No im2col and no GEMM packing: each unit pads its image's input
// rows once into the kernel's memory (stride-phase planes) and the kernel reads them in place.
//
// The input gradient of a stride-1 conv is itself a stride-1 conv: dx = dy ⋆ w', zero-padded by kH − 1 − pH, with
// w'[c][o][ky][kx] = w[o][c][kH − 1 − ky][kW − 1 − kx] (rotated 180°, in and out channels swapped).
//
// Units: (image, block of output rows). Every output value is computed by the same operations in the same order
// whatever the unit (wasm/direct.ts), so the results are the same bits for any thread count.

import { config } from '../../config.js';
import { epilogueRows } from '../gemm.js';
import { parallelFor, registerTask } from '../parallel.js';
import { DIRECT_KB, DIRECT_R, DIRECT_V, simdDirect } from '../wasm/direct.js';
import { kernelBackend } from '../wasm/features.js';
import type { Epilogue } from '../winograd.js';
import type { Conv2dParams } from './plan.js';

/** A direct convolution: ci → co channels, hi × wi → ho × wo, kernel kh × kw, one stride, padding per axis. */
export interface DirectShape {
  n: number;
  ci: number;
  hi: number;
  wi: number;
  co: number;
  ho: number;
  wo: number;
  kh: number;
  kw: number;
  stride: number;
  padH: number;
  padW: number;
}

export interface DirectTask {
  d: DirectShape;
  rowBlock: number;
  rowBlocks: number;
  /** y += result (one rounding for the conv, one for the add) instead of y = result. */
  accumulate: boolean;
  /** The fused epilogue on the stored values (forward only), or null. */
  ep: Epilogue | null;
}

/** Largest channel count (in or out) the direct path takes. */
export const DIRECT_MAX_CHANNELS = 64;

/** Whether the forward of p runs on the direct kernel: SIMD backend, 3×3, stride 1 or 2, ≤ 64 channels, no groups. */
export function directForward(p: Conv2dParams): boolean {
  return config.directConv && kernelBackend() === 'simd' && p.groups === 1 && p.kh === 3 && p.kw === 3 && p.dilH === 1 && p.dilW === 1
    && p.strideH === p.strideW && p.strideH <= 2 && p.c <= DIRECT_MAX_CHANNELS && p.o <= DIRECT_MAX_CHANNELS;
}

/** Whether the input gradient of p runs on the direct kernel (stride 1, padding ≤ kernel − 1, as directForward). */
export function directBackwardInput(p: Conv2dParams): boolean {
  return directForward(p) && p.strideH === 1 && p.padH <= p.kh - 1 && p.padW <= p.kw - 1;
}

const tilesOf = (co: number): number => Math.ceil(co / DIRECT_R);

/**
 * The weights as the kernel reads them: for each tile of R output channels, float32 [ci][ky][kx][r] (zeros past co).
 * flip: w is the forward's (O, C, kH, kW) and the packed weights are those of the input gradient (file comment).
 */
export function packDirectWeights(w: Float32Array, d: DirectShape, flip: boolean): Float32Array {
  const { ci, co, kh, kw } = d, taps = kh * kw;
  const out = new Float32Array(tilesOf(co) * DIRECT_R * ci * taps);
  for (let o = 0; o < co; o++) {
    const t = Math.floor(o / DIRECT_R), r = o - t * DIRECT_R;
    for (let c = 0; c < ci; c++) {
      const dst = ((t * ci + c) * taps) * DIRECT_R + r;
      if (!flip) {
        const src = (o * ci + c) * taps;
        for (let k = 0; k < taps; k++) out[dst + k * DIRECT_R] = w[src + k]!;
      } else {
        // w'[o][c] = w[c][o] rotated: here o is an input channel of the forward, c an output channel.
        const src = (c * co + o) * taps;
        for (let k = 0; k < taps; k++) out[dst + k * DIRECT_R] = w[src + taps - 1 - k]!;
      }
    }
  }
  return out;
}

/** One unit: image img, output rows [oy0, oy1), every output channel. */
function directUnit(y: Float32Array, x: Float32Array, wp: Float32Array, bias: Float64Array, res: Float32Array | null, q: DirectTask, unit: number): void {
  const { d } = q;
  const { ci, hi, wi, co, ho, wo, kh, kw, stride: s, padH, padW } = d;
  const rb = unit % q.rowBlocks, img = (unit - rb) / q.rowBlocks;
  const oy0 = rb * q.rowBlock, oy1 = Math.min(ho, oy0 + q.rowBlock), rows = oy1 - oy0;
  const cols = 4 * DIRECT_V, tiles = Math.ceil(wo / cols), tilesO = tilesOf(co);
  // Padded rows of this unit, and plane columns (the last tile's 4V columns plus the taps' reach).
  const hp = (rows - 1) * s + kh, wq = tiles * cols + Math.floor((kw - 1) / s);
  const plane = hp * wq;
  // Memory (4-byte indices): weights, the taps' byte offsets, biases and the float64 sums (even indices), padded
  // input, output.
  const taps = kh * kw, tabAt = wp.length, tabEnd = tabAt + taps;
  const biasAt = tabEnd + (tabEnd & 1), accAt = biasAt + 2 * tilesO * DIRECT_R;
  const xAt = accAt + 2 * DIRECT_R * cols, outAt = xAt + ci * s * plane;
  const outCh = rows * wo;
  const k = simdDirect(4 * (outAt + tilesO * DIRECT_R * outCh));
  const { f, h } = k;
  f.set(wp, 0);
  // Tap (ky, kx) of output column ox reads plane kx mod s, row ky, column ox + ⌊kx/s⌋.
  for (let ky = 0; ky < kh; ky++) {
    for (let kx = 0; kx < kw; kx++) k.i[tabAt + ky * kw + kx] = 4 * (ky * wq + (kx % s) * plane + Math.floor(kx / s));
  }
  h.set(bias, biasAt / 2);
  // Plane ph of channel c, row r, column qc: x[c][oy0·s + r − pH][qc·s + ph − pW], 0 outside.
  for (let c = 0; c < ci; c++) {
    const xc = (img * ci + c) * hi * wi;
    for (let ph = 0; ph < s; ph++) {
      const q0 = Math.min(wq, Math.max(0, Math.ceil((padW - ph) / s)));
      const q1 = Math.max(q0, Math.min(wq, Math.floor((wi - 1 + padW - ph) / s) + 1));
      let dst = xAt + (c * s + ph) * plane;
      for (let r = 0; r < hp; r++, dst += wq) {
        const iy = oy0 * s + r - padH;
        if (iy < 0 || iy >= hi) {
          f.fill(0, dst, dst + wq);
          continue;
        }
        f.fill(0, dst, dst + q0);
        const src = xc + iy * wi + q0 * s + ph - padW;
        if (s === 1) f.set(x.subarray(src, src + q1 - q0), dst + q0);
        else for (let qc = q0, e = src; qc < q1; qc++, e += s) f[dst + qc] = x[e]!;
        f.fill(0, dst + q1, dst + wq);
      }
    }
  }
  // The kernel reads output row oy's input rows from xp + oy·s·wq·4: this unit's planes start at row oy0·s.
  const wBytes = 4 * ci * taps * DIRECT_R, xp = 4 * (xAt - oy0 * s * wq), cblk = Math.max(1, Math.floor(DIRECT_KB / taps));
  for (let t = 0; t < tilesO; t++) {
    k.conv(xp, 4 * s * wq, 4 * s * plane, ci, cblk, taps, 4 * tabAt, t * wBytes, oy0, oy1, tiles, wo,
      4 * (outAt + t * DIRECT_R * outCh), 4 * outCh, 4 * accAt, 4 * (biasAt + 2 * t * DIRECT_R));
  }
  const hw = ho * wo, yOff = img * co * hw;
  for (let o = 0; o < co; o++) {
    const src = outAt + o * outCh, dst = yOff + o * hw + oy0 * wo;
    if (q.accumulate) for (let e = 0; e < outCh; e++) y[dst + e] = y[dst + e]! + f[src + e]!;
    else y.set(f.subarray(src, src + outCh), dst);
  }
  if (q.ep !== null) epilogueRows(y, { ...q.ep, res, ch0: 0 }, yOff, hw, 0, co, oy0 * wo, oy1 * wo);
}

registerTask<DirectTask>('conv2d.direct', (bufs, q, u0, u1) => {
  for (let u = u0; u < u1; u++) {
    directUnit(bufs.y as Float32Array, bufs.x as Float32Array, bufs.wp as Float32Array, bufs.bias as Float64Array, bufs.res as Float32Array | null, q, u);
  }
});

/** Units at least (where the images alone give fewer, the output rows are split too). */
const MIN_UNITS = 8;

/**
 * y (N, co, ho, wo) = (or += with accumulate) the direct convolution of x (N, ci, hi, wi) with the packed weights
 * (packDirectWeights) plus bias (float64, one per output channel, or null), then the epilogue if given.
 */
export function runDirect(
  y: Float32Array, x: Float32Array, wp: Float32Array, bias: Float64Array | null, res: Float32Array | null, d: DirectShape,
  accumulate: boolean, ep: Epilogue | null,
): void {
  const rowBlocks = Math.max(1, Math.min(d.ho, Math.ceil(MIN_UNITS / d.n)));
  const rowBlock = Math.ceil(d.ho / rowBlocks);
  const q: DirectTask = { d, rowBlock, rowBlocks: Math.ceil(d.ho / rowBlock), accumulate, ep };
  const b = new Float64Array(tilesOf(d.co) * DIRECT_R);
  if (bias !== null) b.set(bias);
  const cost = 2 * d.n * d.co * d.ci * d.kh * d.kw * d.ho * d.wo;
  parallelFor({
    kernel: 'conv2d.direct', bufs: { y, x, wp, bias: b, res }, writes: ['y'], overwrites: accumulate ? [] : ['y'], params: q,
    units: d.n * q.rowBlocks, cost,
  });
}

/** The forward's direct shape. */
export function forwardShape(p: Conv2dParams): DirectShape {
  return { n: p.n, ci: p.c, hi: p.h, wi: p.w, co: p.o, ho: p.oh, wo: p.ow, kh: p.kh, kw: p.kw, stride: p.strideH, padH: p.padH, padW: p.padW };
}

/** The input gradient's direct shape (stride 1): dy (N, O, oH, oW) → dx (N, C, H, W). */
export function backwardInputShape(p: Conv2dParams): DirectShape {
  return { n: p.n, ci: p.o, hi: p.oh, wi: p.ow, co: p.c, ho: p.h, wo: p.w, kh: p.kh, kw: p.kw, stride: 1, padH: p.kh - 1 - p.padH, padW: p.kw - 1 - p.padW };
}
