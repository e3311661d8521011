// The input gradient of a strided convolution by stride phases (sub-pixel decomposition), on the direct SIMD kernel
// (wasm/direct.ts's `conv`, built into wasm/phases.ts).
//
// dx[c][iy][ix] = Σ_o Σ_(ky,kx) w[o][c][ky][kx]·dy[o][oy][ox] over iy = oy·sH − pH + ky (ix likewise). The dx rows
// iy ≡ ry (mod sH) meet only the taps ky ≡ ry + pH (mod sH), and row iy = ry + t·sH reads dy row t + dY with
// dY = (ry + pH − ky) / sH. So each phase (ry, rx) of dx is a stride-1 correlation of dy with a sub-kernel of at most
// ⌈kH/sH⌉ × ⌈kW/sW⌉ taps (3×3/2: 1×1, 1×2, 2×1 and 2×2; 1×1/2: one phase of one tap, three of none): every tap of w
// falls in exactly one phase, so there is no col2im and no product with a zero.
//
// Units: one image each. Its dy is padded once (zero rows and columns, enough for every phase's taps), its dx is
// copied in, each phase's dx values are gathered into rows of their own, the kernel adds the phase's sums to them, and
// they are scattered back (at a stride of 2, both column phases of a row phase at once, by vector shuffles). Per dx
// value:
//   dx + Σ_blocks float64(Σ_{(o, tap) in block} dy·w in float32), rounded once,
// with blocks of whole dy channels of at most PHASE_KB terms: the order is a function of the shape alone, so the
// results are the same bits for any thread count.

import { config } from '../../config.js';
import { parallelFor, registerTask } from '../parallel.js';
import { DIRECT_R, DIRECT_V } from '../wasm/direct.js';
import { kernelBackend } from '../wasm/features.js';
import { simdPhases } from '../wasm/phases.js';
import { DIRECT_MAX_CHANNELS } from './direct.js';
import { allFinite, roundUp4, type Conv2dParams } from './plan.js';

/**
 * Terms per float32 block at most: 27 (a phase of 4 taps: blocks of 6 dy channels; 2 taps: 13; 1 tap: 27), against the
 * direct kernel's 9 elsewhere (wasm/direct.ts). Fashion-MNIST ResNet-20's 16→32/2 and 32→64/2 input gradients, one
 * core, CPU time: 0.89× and 0.86× of the 9-term blocks' time; test/models/numerics.test.ts's worst gradient error
 * 4.83e-7 (4.84e-7 with 9; 36 terms: 5.18e-7).
 */
export const PHASE_KB = 27;

/** One stride phase of dx: rows ry + t·sH, columns rx + u·sW (t < ho, u < wo), and its taps. */
interface Phase {
  ry: number;
  rx: number;
  ho: number;
  wo: number;
  /** Kernel taps ky·kW + kx, ky ascending then kx. */
  taps: number[];
  /** Per tap, its offset in the padded dy: (dY + padTop)·wq + dX + padLeft. */
  offs: number[];
  /** Where the phase's packed weights and tap table start (floats, ints). */
  wpAt: number;
  tabAt: number;
}

export interface PhaseTask {
  p: Conv2dParams;
  phases: Phase[];
  /** The padded dy: hp rows of wq floats per channel, dy row 0 at row padTop, column 0 at column padLeft. */
  padTop: number;
  padLeft: number;
  hp: number;
  wq: number;
  /** Which call (a counter on the calling thread): a thread copies the packed weights once per call. */
  call: number;
}

/**
 * Whether the input gradient of p runs by stride phases: SIMD backend with the direct kernel on, a stride above 1,
 * no groups or dilation, at most DIRECT_MAX_CHANNELS channels each side (ResNet-18's 128→256/2 and 256→512/2 on
 * 4×4 and 2×2 maps, one core, CPU time, against GEMM + col2im: 4.9× and 11× slower; their phases are 2×2 and 1×1
 * pixels, a tile of the kernel 8 columns), and finite weights: the kernel multiplies dy's zero border by them, where
 * the naive loop skips the border (0·Inf would make NaN there).
 */
export function phaseBackwardInput(p: Conv2dParams, w: Float32Array): boolean {
  if (!config.directConv || kernelBackend() !== 'simd' || p.c > DIRECT_MAX_CHANNELS || p.o > DIRECT_MAX_CHANNELS) return false;
  return p.groups === 1 && p.dilH === 1 && p.dilW === 1 && (p.strideH > 1 || p.strideW > 1) && allFinite(w);
}

/** The residues r < s of one axis with the taps k < kn, k ≡ r + pad (mod s), and their offsets d = (r + pad − k)/s. */
function axisPhases(s: number, kn: number, pad: number, size: number): { r: number; n: number; ks: number[]; ds: number[] }[] {
  const out = [];
  for (let r = 0; r < Math.min(s, size); r++) {
    const ks: number[] = [], ds: number[] = [];
    for (let k = 0; k < kn; k++) {
      if ((((r + pad - k) % s) + s) % s === 0) {
        ks.push(k);
        ds.push((r + pad - k) / s);
      }
    }
    out.push({ r, n: Math.ceil((size - r) / s), ks, ds });
  }
  return out;
}

const cols = 4 * DIRECT_V;

let calls = 0;
/** The call whose weights and tables this thread's kernel memory holds. */
let loadedCall = -1;

/** The task and the packed weights: per phase, per tile of R dx channels, float32 [o][tap][r] (zeros past c). */
function phasePlan(w: Float32Array, p: Conv2dParams): { q: PhaseTask; wp: Float32Array } {
  const { c, o, kh, kw } = p;
  const ys = axisPhases(p.strideH, kh, p.padH, p.h), xs = axisPhases(p.strideW, kw, p.padW, p.w);
  const all = (a: { ds: number[] }[]): number[] => a.flatMap((e) => e.ds);
  const dys = all(ys), dxs = all(xs);
  const padTop = Math.max(0, -Math.min(0, ...dys)), padLeft = Math.max(0, -Math.min(0, ...dxs));
  // Rows and columns the kernel reads: output row t < ho at t + dY; column tiles of 4V columns at u + dX.
  let hp = 1, wq = 4;
  for (const y of ys) for (const d of y.ds) hp = Math.max(hp, y.n + d + padTop);
  for (const x of xs) for (const d of x.ds) wq = Math.max(wq, roundUp4(Math.ceil(x.n / cols) * cols + d + padLeft));
  wq = Math.max(wq, roundUp4(padLeft + p.ow));
  const tiles = Math.ceil(c / DIRECT_R);
  const phases: Phase[] = [];
  const wp = new Float32Array(tiles * DIRECT_R * o * kh * kw);
  let wpAt = 0, tabAt = 0;
  for (const y of ys) {
    for (const x of xs) {
      const taps: number[] = [], offs: number[] = [];
      for (let a = 0; a < y.ks.length; a++) {
        for (let b = 0; b < x.ks.length; b++) {
          taps.push(y.ks[a]! * kw + x.ks[b]!);
          offs.push((y.ds[a]! + padTop) * wq + x.ds[b]! + padLeft);
        }
      }
      if (taps.length === 0 || y.n === 0 || x.n === 0) continue;
      const nt = taps.length;
      for (let t = 0; t < tiles; t++) {
        for (let r = 0; r < DIRECT_R && t * DIRECT_R + r < c; r++) {
          for (let oc = 0; oc < o; oc++) {
            const src = (oc * c + t * DIRECT_R + r) * kh * kw, dst = wpAt + ((t * o + oc) * nt) * DIRECT_R + r;
            for (let k = 0; k < nt; k++) wp[dst + k * DIRECT_R] = w[src + taps[k]!]!;
          }
        }
      }
      phases.push({ ry: y.r, rx: x.r, ho: y.n, wo: x.n, taps, offs, wpAt, tabAt });
      wpAt += tiles * DIRECT_R * o * nt;
      tabAt += nt;
    }
  }
  return { q: { p, phases, padTop, padLeft, hp, wq, call: ++calls }, wp };
}

/** One unit: image img, every phase, every dx channel. */
function phaseUnit(dx: Float32Array, dy: Float32Array, wp: Float32Array, q: PhaseTask, img: number): void {
  const { p, phases, padTop, padLeft, hp, wq } = q;
  const { c, h, w, o, oh, ow, strideH: sh, strideW: sw } = p;
  const hw = h * w, ohw = oh * ow, plane = hp * wq, tiles = Math.ceil(c / DIRECT_R);
  let outLen = 0, nTab = 0;
  for (const ph of phases) {
    outLen = Math.max(outLen, tiles * DIRECT_R * ph.ho * ph.wo);
    nTab += ph.taps.length;
  }
  // Memory (4-byte indices): packed weights, tap tables, the padding table, the float64 sums (even index), dy as
  // given, its padded planes, dx as given, one phase's rows.
  const tabAt = wp.length, qtAt = tabAt + nTab, accAt = qtAt + 3 + ((qtAt + 3) & 1);
  const rawAt = accAt + 2 * DIRECT_R * cols, xAt = roundUp4(rawAt + o * ohw), dxAt = xAt + o * plane;
  // (16 floats of slack after each: the kernel reads whole tiles of the last rows before adding to them.)
  const outAt = roundUp4(dxAt + c * hw), outAt2 = outAt + outLen + 16;
  const k = simdPhases(4 * (outAt2 + outLen + 16));
  const { f, i: ints } = k;
  if (loadedCall !== q.call) {
    f.set(wp, 0);
    for (const ph of phases) for (let t = 0; t < ph.offs.length; t++) ints[tabAt + ph.tabAt + t] = 4 * ph.offs[t]!;
    ints[qtAt] = padLeft;
    ints[qtAt + 1] = padLeft + ow;
    ints[qtAt + 2] = 0;
    loadedCall = q.call;
  }
  f.set(dy.subarray(img * o * ohw, (img + 1) * o * ohw), rawAt);
  k.pad(4 * rawAt, 4 * ohw, o, oh, ow, 4 * xAt, 4 * plane, wq, hp, 1, 1, -padTop, 4 * qtAt);
  f.set(dx.subarray(img * c * hw, (img + 1) * c * hw), dxAt);
  // The phase's sums added to its rows at out (tiles of R dx channels).
  const conv = (ph: Phase, out: number): void => {
    const nt = ph.taps.length, outCh = ph.ho * ph.wo, cblk = Math.max(1, Math.floor(PHASE_KB / nt));
    for (let t = 0; t < tiles; t++) {
      k.conv(4 * xAt, 4 * wq, 4 * plane, o, cblk, nt, 4 * (tabAt + ph.tabAt), 4 * (ph.wpAt + t * DIRECT_R * o * nt), 0, ph.ho,
        Math.ceil(ph.wo / cols), ph.wo, 4 * (out + t * DIRECT_R * outCh), 4 * outCh, 4 * accAt, 4 * accAt, 1);
    }
  };
  for (let j = 0; j < phases.length; j++) {
    const ph = phases[j]!, next = phases[j + 1];
    const at = 4 * (dxAt + ph.ry * w + ph.rx), ho = ph.ho;
    if (sw === 2 && next !== undefined && next.ry === ph.ry && ph.rx === 0) {
      // Both column phases of the row phase at once: dx's even and odd columns.
      const args = [at, 4 * hw, 4 * sh * w, 4 * outAt, 4 * ho * ph.wo, 4 * ph.wo, 4 * outAt2, 4 * ho * next.wo, 4 * next.wo, c, ho, ph.wo, next.wo] as const;
      k.split2(...args);
      conv(ph, outAt);
      conv(next, outAt2);
      k.merge2(...args);
      j++;
      continue;
    }
    const wo = ph.wo;
    k.copy(at, 4 * hw, 4 * sh * w, 4 * sw, 4 * outAt, 4 * ho * wo, 4 * wo, 4, c, ho, wo);
    conv(ph, outAt);
    k.copy(4 * outAt, 4 * ho * wo, 4 * wo, 4, at, 4 * hw, 4 * sh * w, 4 * sw, c, ho, wo);
  }
  dx.set(f.subarray(dxAt, dxAt + c * hw), img * c * hw);
}

registerTask<PhaseTask>('conv2d.backwardInputPhases', (bufs, q, u0, u1) => {
  for (let u = u0; u < u1; u++) phaseUnit(bufs.dx as Float32Array, bufs.dy as Float32Array, bufs.wp as Float32Array, q, u);
});

/** dx: (N, C, H, W) += ∂L/∂x by stride phases (file comment), given dy: (N, O, oH, oW) and w: (O, C, kH, kW). */
export function phaseConv2dBackwardInput(dx: Float32Array, dy: Float32Array, w: Float32Array, p: Conv2dParams): void {
  const { q, wp } = phasePlan(w, p);
  let cost = 0;
  for (const ph of q.phases) cost += 2 * p.n * p.o * p.c * ph.taps.length * ph.ho * ph.wo;
  parallelFor({ kernel: 'conv2d.backwardInputPhases', bufs: { dx, dy, wp }, writes: ['dx'], params: q, units: p.n, cost });
}
