// The direct convolution (wasm/direct.ts) for few channels: the forward of 3×3 convs at stride 1 or 2 and the input
// gradient of stride-1 ones, on the SIMD backend; the fused (inference) forward of those and of 7×7 stride-2 stems in
// float32 (wasm/direct-eval.ts). No im2col and no GEMM packing: each unit pads the input rows it reads once into the
// kernel's memory (stride-phase planes) and the kernel reads them in place. Where x or y lies in the resident memory
// (DirectResident), the unit reads x's rows and writes y's where they lie, its scratch in a resident region.
//
// The input gradient of a stride-1 conv is itself a stride-1 conv: dx = dy ⋆ w', zero-padded by kH − 1 − pH, with
// w'[c][o][ky][kx] = w[o][c][kH − 1 − ky][kW − 1 − kx] (rotated 180°, in and out channels swapped).
//
// Units: (image, block of output rows). Every output value is computed by the same operations in the same order
// whatever the unit (wasm/direct.ts), so the results are the same bits for any thread count.

import { config } from '../../config.js';
import { getParallelBackend, parallelFor, registerTask } from '../parallel.js';
import {
  DIRECT_KB, DIRECT_KB_STEM, DIRECT_R, DIRECT_V, pad2Masks, residentDirect, simdDirect, SUM2, SUM32, type SimdDirect,
} from '../wasm/direct.js';
import { residentAddress, residentMemory } from '../wasm/optim.js';
import { claimRegion, nextSerial, regionViews, releaseRegion, residentScratch, type ScratchRegions } from '../winograd-resident.js';
import { kernelBackend } from '../wasm/features.js';
import { OUT_RELU, OUT_RES, OUT_SCALE } from '../wasm/winograd.js';
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
  /** Which call (a counter on the calling thread): a thread copies the packed weights once per call. */
  call: number;
  rowBlock: number;
  rowBlocks: number;
  /** y += result (y + the float64 sum, rounded once) instead of y = result + bias. */
  accumulate: boolean;
  /** The fused epilogue in the kernel's store (forward only), or null. */
  ep: Epilogue | null;
  /** Input channels per float32 block (directBlock). */
  cblk: number;
  /** One block, no bias, no epilogue, no accumulate: the kernel stores its float32 sums as they are (SUM32). */
  sum32: boolean;
  /** Two blocks, no bias, no epilogue, no accumulate: the kernel adds their float32 sums in float32 (SUM2). */
  sum2: boolean;
  /** The fused forward (an epilogue, no accumulate): wasm/direct-eval.ts's float32 `conv32` instead of `conv`. */
  f32: boolean;
  /** The in-place form over the resident memory (DirectResident), or null. */
  resident: DirectResident | null;
}

/** Largest channel count (in or out) the direct path takes. */
export const DIRECT_MAX_CHANNELS = 64;
/**
 * Most input channels at stride 1, where Winograd (its transforms in wasm) is the other path: the stems. One core, CPU
 * time, loaded machine, against Winograd: CIFAR 3→16 @32 b32 1.8–2.6×, Fashion-MNIST 1→16 @28 b128 1.4–3.1×; 16→16
 * was 0.8–1.2× (noisy), 32→32 @16 0.57×.
 */
export const DIRECT_MAX_CIN_S1 = 4;

/**
 * Whether the forward of p runs on the direct kernel: SIMD backend, 3×3, no groups or dilation, ≤ 64 channels; at
 * stride 2 (against im2col + GEMM: 2.0–2.4× on CIFAR's 16→32 and 32→64), or at stride 1 with at most
 * DIRECT_MAX_CIN_S1 input channels unless config.winograd is 'always'.
 */
export function directForward(p: Conv2dParams): boolean {
  if (!config.directConv || kernelBackend() !== 'simd') return false;
  if (p.groups !== 1 || p.kh !== 3 || p.kw !== 3 || p.dilH !== 1 || p.dilW !== 1 || p.strideH !== p.strideW) return false;
  if (p.c > DIRECT_MAX_CHANNELS || p.o > DIRECT_MAX_CHANNELS) return false;
  if (p.strideH === 2) return true;
  // Winograd 'always' takes every shape it applies to (stride 1, here).
  return p.strideH === 1 && p.c <= DIRECT_MAX_CIN_S1 && config.winograd !== 'always';
}

/**
 * Whether the fused forward of p runs on the direct kernel (in float32: wasm/direct-eval.ts): directForward's shapes,
 * and ImageNet's 7×7 stride-2 stem on at most DIRECT_MAX_CIN_S1 channels (ResNet's conv1 3→64 @224, one core, CPU
 * time, against im2col + GEMM: 0.84–0.90×; its plain forward stays there, whose float64 blocks set its bits).
 */
export function directForwardFused(p: Conv2dParams): boolean {
  if (directForward(p)) return true;
  if (!config.directConv || kernelBackend() !== 'simd') return false;
  return p.groups === 1 && p.kh === 7 && p.kw === 7 && p.dilH === 1 && p.dilW === 1 && p.strideH === 2 && p.strideW === 2 &&
    p.c <= DIRECT_MAX_CIN_S1 && p.o <= DIRECT_MAX_CHANNELS;
}

/** Whether the input gradient of p runs on the direct kernel (stride 1, padding ≤ kernel − 1, as directForward). */
export function directBackwardInput(p: Conv2dParams): boolean {
  return directForward(p) && p.strideH === 1 && p.padH <= p.kh - 1 && p.padW <= p.kw - 1;
}

const tilesOf = (co: number): number => Math.ceil(co / DIRECT_R);

/** packDirectWeights' buffer, reused from call to call (shared memory where there is some, so workers read it in place). */
let packed: Float32Array = new Float32Array(0);

/**
 * The weights as the kernel reads them: for each tile of R output channels, float32 [ci][ky][kx][r] (zeros past co).
 * flip: w is the forward's (O, C, kH, kW) and the packed weights are those of the input gradient (file comment).
 * The result is valid until the next call (a buffer of the module: a new 73 KB array per call cost more than the
 * packing, 0.14 of 0.24 ms for CIFAR's 32→64).
 */
export function packDirectWeights(w: Float32Array, d: DirectShape, flip: boolean): Float32Array {
  const { ci, co, kh, kw } = d, taps = kh * kw, len = tilesOf(co) * DIRECT_R * ci * taps;
  if (packed.length < len) packed = typeof SharedArrayBuffer === 'function' ? new Float32Array(new SharedArrayBuffer(len * 4)) : new Float32Array(len);
  const out = packed.subarray(0, len);
  if (co % DIRECT_R !== 0) out.fill(0, (tilesOf(co) - 1) * DIRECT_R * ci * taps);
  for (let o = 0; o < co; o++) {
    const t = Math.floor(o / DIRECT_R), r = o - t * DIRECT_R;
    for (let c = 0; c < ci; c++) {
      let dst = ((t * ci + c) * taps) * DIRECT_R + r;
      if (!flip) {
        const src = (o * ci + c) * taps;
        for (let k = 0; k < taps; k++, dst += DIRECT_R) out[dst] = w[src + k]!;
      } else {
        // w'[o][c] = w[c][o] rotated: here o is an input channel of the forward, c an output channel.
        const src = (c * co + o) * taps + taps - 1;
        for (let k = 0; k < taps; k++, dst += DIRECT_R) out[dst] = w[src - k]!;
      }
    }
  }
  return out;
}

/**
 * Output rows between y (co channels of hw values from yOff, each from column j0) and the kernel's output at outAt
 * (co channels of len values): into the kernel's memory (toKernel) or back to y.
 */
function copyRows(f: Float32Array, outAt: number, y: Float32Array, yOff: number, co: number, hw: number, j0: number, len: number, toKernel: boolean): void {
  if (len === hw) {
    if (toKernel) f.set(y.subarray(yOff, yOff + co * hw), outAt);
    else y.set(f.subarray(outAt, outAt + co * hw), yOff);
    return;
  }
  for (let o = 0; o < co; o++) {
    const src = outAt + o * len, dst = yOff + o * hw + j0;
    if (toKernel) f.set(y.subarray(dst, dst + len), src);
    else y.set(f.subarray(src, src + len), dst);
  }
}

/**
 * The `pad` kernel's table of s stride-phase planes at ints[qtAt …]: plane ph, column qc holds input column
 * qc·s + ph − pW; those in [0, wi) are qc in [q0, q1) (q0, q1 and the input column of q0, per plane).
 */
export function phaseTable(ints: Int32Array, qtAt: number, s: number, wq: number, wi: number, padW: number): void {
  for (let ph = 0; ph < s; ph++) {
    const q0 = Math.min(wq, Math.max(0, Math.ceil((padW - ph) / s)));
    const q1 = Math.max(q0, Math.min(wq, Math.floor((wi - 1 + padW - ph) / s) + 1));
    ints[qtAt + 3 * ph] = q0;
    ints[qtAt + 3 * ph + 1] = q1;
    ints[qtAt + 3 * ph + 2] = q0 * s + ph - padW;
  }
}

let calls = 0;
/** The call whose weights this thread's kernel memory holds. */
let loadedCall = -1;

/**
 * Where a unit keeps things (4-byte indices from its memory's start) for `rows` output rows and rawCh floats of
 * each input channel as given, and its bytes: weights, the taps' byte offsets, the padding table, biases, the
 * epilogue's scales and shifts and the float64 sums (even indices), the image as given, its padded planes, the output
 * (holding the residual before the kernel runs, with an epilogue that has one).
 */
function unitLayout(q: DirectTask, wpLen: number, epwLen: number, rows: number, rawCh: number) {
  const { ci, co, wo, kh, kw, stride: s } = q.d;
  const cols = 4 * DIRECT_V, tiles = Math.ceil(wo / cols), tilesO = tilesOf(co);
  // Padded rows of the unit, and plane columns (the last tile's 4V columns plus the taps' reach, whole vectors).
  const hp = (rows - 1) * s + kh, wq = 4 * Math.ceil((tiles * cols + Math.floor((kw - 1) / s)) / 4);
  const plane = hp * wq;
  const taps = kh * kw, tabAt = wpLen, qtAt = tabAt + taps, qtEnd = qtAt + 3 * s;
  // Stride 2: pad2's masks, 2 per plane column (whole vectors).
  const maskAt = qtEnd + ((4 - (qtEnd & 3)) & 3), maskEnd = s === 2 ? maskAt + 2 * wq : qtEnd;
  const biasAt = maskEnd + (maskEnd & 1), epAt = biasAt + 2 * tilesO * DIRECT_R, accAt = epAt + epwLen * 2;
  // (The image's channels as given: rawCh floats each and one of slack, see unitIn.)
  const rawEnd = accAt + 2 * DIRECT_R * cols + ci * (rawCh + 1) + 1;
  const rawAt = accAt + 2 * DIRECT_R * cols, xAt = rawEnd + (4 - (rawEnd & 3)) % 4;
  const outAt = xAt + ci * s * plane, outCh = rows * wo;
  // (16 bytes of slack: a partial tile's first vectors may read past the last output row.)
  const bytes = 4 * (outAt + tilesO * DIRECT_R * outCh) + 64;
  return { cols, tiles, tilesO, hp, wq, plane, taps, tabAt, qtAt, maskAt, biasAt, epAt, accAt, rawAt, xAt, outAt, outCh, bytes };
}

/**
 * A direct call whose x or y (or both) lie in the resident memory (a training step's tensors with
 * config.residentSteps): its units read x's rows (`pad`) and write y's rows (`conv`, reading them first when
 * accumulating) at their addresses there, with their scratch (the packed weights once per call and region, the
 * padded planes, the sums) in per-thread regions of that memory (winograd-resident.ts), instead of copying rows
 * through the thread's own memory. Not with an epilogue or a residual (the fused forward), nor for output channels
 * that do not fill the last register tile (its rows past co would land in the next image).
 */
interface DirectResident {
  s: ScratchRegions;
  serial: number;
  /** x's and y's byte addresses in the resident memory, or −1 (its rows are copied as before). */
  x: number;
  y: number;
}

let inPlace = 0;

/** How many direct convolutions have run in place over the resident memory (for tests). */
export function directInPlaceCalls(): number {
  return inPlace;
}

/** The in-place form of a direct call (DirectResident), or null. Main thread. */
function directResident(y: Float32Array, x: Float32Array, wpLen: number, res: Float32Array | null, q: DirectTask): DirectResident | null {
  if (q.ep !== null || res !== null || q.d.co % DIRECT_R !== 0) return null;
  const ya = residentAddress(y), xa = residentAddress(x);
  if (ya < 0 && xa < 0) return null;
  if (ya >= 0 && xa >= 0 && !(ya + y.byteLength <= xa || xa + x.byteLength <= ya)) return null;
  const { d } = q;
  const threads = Math.max(1, getParallelBackend()?.threads ?? 1);
  const rawCh = Math.min(d.hi, (q.rowBlock - 1) * d.stride + d.kh) * d.wi;
  const s = residentScratch(threads, unitLayout(q, wpLen, 0, q.rowBlock, rawCh).bytes);
  // (`pad` reads no more than a row past x's last; `conv` a vector past y's last row: a margin of a row and 64 bytes)
  const end = Math.max(xa < 0 ? 0 : xa + x.byteLength + 4 * d.wi, ya < 0 ? 0 : ya + y.byteLength) + 64;
  if (s === null || end > residentMemory()!.mem.buffer.byteLength) return null;
  inPlace++;
  return { s, serial: nextSerial(), x: xa, y: ya };
}

/** One unit: image img, output rows [oy0, oy1), every output channel (in place where q.resident says so). */
function directUnit(
  y: Float32Array, x: Float32Array, wp: Float32Array, bias: Float64Array, epw: Float64Array | null, res: Float32Array | null, q: DirectTask, unit: number,
): void {
  const rs = q.resident;
  const slot = rs !== null ? claimRegion(rs.s) : -1;
  if (slot < 0) {
    unitIn(y, x, wp, bias, epw, res, q, unit, null, 0);
    return;
  }
  try {
    unitIn(y, x, wp, bias, epw, res, q, unit, rs, slot);
  } finally {
    releaseRegion(rs!.s, slot);
  }
}

/** directUnit's work through this thread's memory (rs null), or with its scratch in region `slot` of rs. */
function unitIn(
  y: Float32Array, x: Float32Array, wp: Float32Array, bias: Float64Array, epw: Float64Array | null, res: Float32Array | null, q: DirectTask, unit: number,
  rs: DirectResident | null, slot: number,
): void {
  const { d } = q;
  const { ci, hi, wi, co, ho, wo, kh, kw, stride: s, padH, padW } = d;
  const rb = unit % q.rowBlocks, img = (unit - rb) / q.rowBlocks;
  const oy0 = rb * q.rowBlock, oy1 = Math.min(ho, oy0 + q.rowBlock), rows = oy1 - oy0;
  const hp = (rows - 1) * s + kh, hwi = hi * wi;
  // The input rows the unit reads, [r0, r1) of each channel (all of them unless the output rows are split).
  const row0 = oy0 * s - padH, r0 = Math.max(0, row0), r1 = Math.max(r0, Math.min(hi, row0 + hp)), rawCh = (r1 - r0) * wi;
  const L = unitLayout(q, wp.length, epw === null ? 0 : epw.length, rows, rawCh);
  const { tiles, tilesO, wq, plane, taps, tabAt, qtAt, maskAt, biasAt, epAt, accAt, rawAt, xAt, outAt, outCh } = L;
  // B: the scratch's byte address for the wasm functions (0 in the thread's own memory); f, h, ints: views from there.
  let k: Pick<SimdDirect, 'conv' | 'conv32' | 'pad' | 'pad2'>, f: Float32Array, h: Float64Array, ints: Int32Array, B = 0;
  if (rs !== null) {
    B = rs.s.at[slot]!;
    k = residentDirect(rs.s);
    const v = regionViews(rs.s, slot), header = v.header;
    ({ f, h, i: ints } = v);
    // The region's header names the call whose packed weights it holds (winograd-resident.ts: U's entry).
    if (header[2] !== rs.serial) {
      f.set(wp, 0);
      header[0] = header[1] = 0;
      header[2] = rs.serial;
    }
  } else {
    const own = simdDirect(L.bytes);
    k = own;
    ({ f, h, i: ints } = own);
    if (loadedCall !== q.call) {
      f.set(wp, 0);
      loadedCall = q.call;
    }
  }
  // Tap (ky, kx) of output column ox reads plane kx mod s, row ky, column ox + ⌊kx/s⌋.
  for (let ky = 0; ky < kh; ky++) {
    for (let kx = 0; kx < kw; kx++) ints[tabAt + ky * kw + kx] = 4 * (ky * wq + (kx % s) * plane + Math.floor(kx / s));
  }
  phaseTable(ints, qtAt, s, wq, wi, padW);
  const qv = s === 2 ? pad2Masks(ints, maskAt, wq, wi, padW) : 0;
  /** The padded planes of the channels' rows from srcAt (row iy at srcAt + c·srcCh + iy·wi·4): pad2 at stride 2. */
  const padPlanes = (srcAt: number, srcCh: number): void => {
    if (s === 2) k.pad2(srcAt, srcCh, ci, hi, wi, B + 4 * xAt, 4 * plane, wq, hp, row0, padW, B + 4 * maskAt, qv);
    else k.pad(srcAt, srcCh, ci, hi, wi, B + 4 * xAt, 4 * plane, wq, hp, s, s, row0, B + 4 * qtAt);
  };
  h.set(bias, biasAt / 2);
  // conv32 reads the epilogue's scales and shifts as float32 (the values are float32 already: runDirect).
  if (epw !== null && q.f32) f.set(epw, epAt);
  else if (epw !== null) h.set(epw, epAt / 2);
  // pad reads input row iy of channel c at src + c·srcCh + iy·wi·4, only for iy in [r0, r1).
  if (rs !== null && rs.x >= 0) {
    padPlanes(rs.x + 4 * img * ci * hwi, 4 * hwi);
  } else {
    // The channels' rows copied in, rawS floats apart (rawS ≡ hwi mod 2), from rawAt or rawAt + 1: whichever agrees
    // with x's addresses mod 8 (copies between shared and other memory go byte by byte where they do not: copy.ts).
    const rawS = rawCh + ((hwi - rawCh) & 1), first = img * ci * hwi + r0 * wi;
    const at0 = rawAt + ((((x.byteOffset - f.byteOffset) >> 2) + first - rawAt) & 1);
    if (rawCh === hwi) f.set(x.subarray(first, first + ci * hwi), at0);
    else for (let c = 0; c < ci; c++) f.set(x.subarray(first + c * hwi, first + c * hwi + rawCh), at0 + c * rawS);
    padPlanes(B + 4 * (at0 - r0 * wi), 4 * rawS);
  }
  // The kernel reads output row oy's input rows from xp + oy·s·wq·4: this unit's planes start at row oy0·s.
  const wBytes = 4 * ci * taps * DIRECT_R, xp = B + 4 * (xAt - oy0 * s * wq), cblk = q.cblk;
  const hw = ho * wo, yOff = img * co * hw;
  // The output: y's rows where they lie (channels hw apart), or the scratch at outAt (channels outCh apart).
  const yIn = rs !== null && rs.y >= 0;
  const outBase = yIn ? rs.y + 4 * (yOff + oy0 * wo) : B + 4 * outAt, outStride = yIn ? hw : outCh;
  if (q.accumulate && !yIn) copyRows(f, outAt, y, yOff, co, hw, oy0 * wo, outCh, true);
  if (res !== null) copyRows(f, outAt, res, yOff, co, hw, oy0 * wo, outCh, true);
  const flags = q.ep === null ? (q.sum32 ? SUM32 : q.sum2 ? SUM2 : 0) : OUT_SCALE | (res !== null ? OUT_RES : 0) | (q.ep.relu ? OUT_RELU : 0);
  const shiftAt = epAt + 2 * tilesO * DIRECT_R;
  for (let t = 0; t < tilesO; t++) {
    const out = outBase + 4 * t * DIRECT_R * outStride;
    if (q.f32) {
      k.conv32(xp, 4 * s * wq, 4 * s * plane, ci, taps, B + 4 * tabAt, B + t * wBytes, oy0, oy1, tiles, wo, out,
        4 * outStride, B + 4 * accAt, flags & (OUT_RES | OUT_RELU), B + 4 * (epAt + t * DIRECT_R), B + 4 * (epAt + (tilesO + t) * DIRECT_R));
      continue;
    }
    k.conv(xp, 4 * s * wq, 4 * s * plane, ci, cblk, taps, B + 4 * tabAt, B + t * wBytes, oy0, oy1, tiles, wo,
      out, 4 * outStride, B + 4 * accAt, B + 4 * (biasAt + 2 * t * DIRECT_R), q.accumulate ? 1 : 0,
      flags, B + 4 * (epAt + 2 * t * DIRECT_R), B + 4 * (shiftAt + 2 * t * DIRECT_R));
  }
  if (!yIn) copyRows(f, outAt, y, yOff, co, hw, oy0 * wo, outCh, false);
}

registerTask<DirectTask>('conv2d.direct', (bufs, q, u0, u1) => {
  for (let u = u0; u < u1; u++) {
    directUnit(bufs.y as Float32Array, bufs.x as Float32Array, bufs.wp as Float32Array, bufs.bias as Float64Array, bufs.epw as Float64Array | null, bufs.res as Float32Array | null, q, u);
  }
});

/**
 * Input channels per float32 block: whole channels of at most DIRECT_KB terms, or all of them where they make at most
 * DIRECT_KB_STEM terms (a 1-channel 3×3 stem: one block of 9).
 */
export function directBlock(d: DirectShape): number {
  const taps = d.kh * d.kw;
  return d.ci * taps <= DIRECT_KB_STEM ? d.ci : Math.max(1, Math.floor(DIRECT_KB / taps));
}

/** Units at least (where the images alone give fewer, the output rows are split too). */
const MIN_UNITS = 8;

/**
 * y (N, co, ho, wo) = (or += with accumulate) the direct convolution of x (N, ci, hi, wi) with the packed weights
 * (packDirectWeights) plus bias (float64, one per output channel, or null). With an epilogue (the fused forward, not
 * accumulating) all in float32 (wasm/direct-eval.ts: y = relu?(Σ·scale + (bias·scale + shift) + res), one float32 sum
 * per output; one core, CPU time, CIFAR's 3→16 stem 0.77–0.81×, its stride-2 convs 0.84–0.87× the time of the float64
 * flushes and epilogue).
 */
export function runDirect(
  y: Float32Array, x: Float32Array, wp: Float32Array, bias: Float64Array | null, res: Float32Array | null, d: DirectShape,
  accumulate: boolean, ep: Epilogue | null,
): void {
  const rowBlocks = Math.max(1, Math.min(d.ho, Math.ceil(MIN_UNITS / d.n)));
  const rowBlock = Math.ceil(d.ho / rowBlocks);
  const cblk = directBlock(d);
  const sum32 = bias === null && ep === null && !accumulate && d.ci <= cblk;
  const sum2 = bias === null && ep === null && !accumulate && d.ci > cblk && d.ci <= 2 * cblk;
  const f32 = ep !== null && !accumulate;
  const q: DirectTask = { d, call: ++calls, rowBlock, rowBlocks: Math.ceil(d.ho / rowBlock), accumulate, ep, cblk, sum32, sum2, f32, resident: null };
  q.resident = directResident(y, x, wp.length, res, q);
  const b = new Float64Array(tilesOf(d.co) * DIRECT_R);
  if (bias !== null) b.set(bias);
  // The epilogue's scales (1 where none) then shifts (0 where none), each padded to whole tiles of channels.
  let epw: Float64Array | null = null;
  if (ep !== null) {
    const pad = tilesOf(d.co) * DIRECT_R;
    epw = new Float64Array(2 * pad);
    if (ep.scale !== null) epw.set(ep.scale.subarray(0, d.co));
    else epw.fill(1, 0, pad);
    if (ep.shift !== null) epw.set(ep.shift.subarray(0, d.co), pad);
    // conv32: (Σ + bias)·scale + shift = Σ·scale + (bias·scale + shift), each rounded to float32.
    if (f32) {
      for (let c = 0; c < d.co; c++) epw[pad + c] = Math.fround(b[c]! * epw[c]! + epw[pad + c]!);
      for (let c = 0; c < d.co; c++) epw[c] = Math.fround(epw[c]!);
    }
  }
  const cost = 2 * d.n * d.co * d.ci * d.kh * d.kw * d.ho * d.wo;
  parallelFor({
    kernel: 'conv2d.direct', bufs: { y, x, wp, bias: b, epw, res }, writes: ['y'], overwrites: accumulate ? [] : ['y'], params: q,
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
