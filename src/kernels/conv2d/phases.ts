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
// copied in (or, resident, read where it lies: PhaseResident), each phase's dx values are gathered into rows of their
// own, the kernel adds the phase's sums to them, and they are scattered back (at a stride of 2, both column phases of a row phase at once, by vector shuffles). Per dx
// value:
//   dx + Σ_blocks float64(Σ_{(o, tap) in block} dy·w in float32), rounded once,
// with blocks of whole dy channels of at most PHASE_KB terms: the order is a function of the shape alone, so the
// results are the same bits for any thread count.

import { config } from '../../config.js';
import { getParallelBackend, parallelFor, registerTask } from '../parallel.js';
import { DIRECT_R, DIRECT_V } from '../wasm/direct.js';
import { kernelBackend } from '../wasm/features.js';
import { residentAddress, residentMemory } from '../wasm/optim.js';
import { residentPhases, simdPhases, type SimdPhases } from '../wasm/phases.js';
import { claimRegion, nextSerial, regionViews, releaseRegion, residentScratch, type ScratchRegions } from '../winograd-resident.js';
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
  /** The in-place form over the resident memory (PhaseResident), or null. */
  resident: PhaseResident | null;
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
  return { q: { p, phases, padTop, padLeft, hp, wq, call: ++calls, resident: null }, wp };
}

/**
 * Where a unit keeps things (4-byte indices from its memory's start), and its bytes: packed weights, tap tables, the
 * padding table, the float64 sums (even index), dy as given, its padded planes, dx as given, one phase's rows (two
 * at a stride of 2). A function of the task and the packed weights' length only.
 */
function unitLayout(q: PhaseTask, wpLen: number) {
  const { p, phases, hp, wq } = q;
  const { c, h, w, o, oh, ow } = p;
  const hw = h * w, ohw = oh * ow, plane = hp * wq, tiles = Math.ceil(c / DIRECT_R);
  let outLen = 0, nTab = 0;
  for (const ph of phases) {
    outLen = Math.max(outLen, tiles * DIRECT_R * ph.ho * ph.wo);
    nTab += ph.taps.length;
  }
  const tabAt = wpLen, qtAt = tabAt + nTab, accAt = qtAt + 3 + ((qtAt + 3) & 1);
  const rawAt = accAt + 2 * DIRECT_R * cols, xAt = roundUp4(rawAt + o * ohw), dxAt = xAt + o * plane;
  // (16 floats of slack after each: the kernel reads whole tiles of the last rows before adding to them.)
  const outAt = roundUp4(dxAt + c * hw), outAt2 = outAt + outLen + 16;
  return { plane, tiles, tabAt, qtAt, accAt, rawAt, xAt, dxAt, outAt, outAt2, bytes: 4 * (outAt2 + outLen + 16) };
}

/**
 * A call whose dx and dy lie in the resident memory (a training step's tensors with config.residentSteps): its
 * units read dy's rows (`pad`) and move dx's phases (`copy`, `split2`, `merge2`) at their addresses there, with their
 * scratch (the packed weights and tables once per call and region, the padded dy, the phase rows) in per-thread
 * regions of that memory (winograd-resident.ts), instead of copying dy and dx in and dx back out.
 */
interface PhaseResident {
  s: ScratchRegions;
  serial: number;
  dx: number;
  dy: number;
}

let inPlace = 0;

/** How many phase input gradients have run in place over the resident memory (for tests). */
export function phasesInPlaceCalls(): number {
  return inPlace;
}

/** The in-place form of a call (PhaseResident), or null. Main thread. */
function phaseResident(dx: Float32Array, dy: Float32Array, wpLen: number, q: PhaseTask): PhaseResident | null {
  const xa = residentAddress(dx), da = residentAddress(dy);
  if (xa < 0 || da < 0 || !(xa + dx.byteLength <= da || da + dy.byteLength <= xa)) return null;
  const threads = Math.max(1, getParallelBackend()?.threads ?? 1);
  const s = residentScratch(threads, unitLayout(q, wpLen).bytes);
  // (`pad` reads no more than a row past dy's last: a margin of a row and 64 bytes)
  const end = Math.max(xa + dx.byteLength, da + dy.byteLength + 4 * q.p.ow) + 64;
  if (s === null || end > residentMemory()!.mem.buffer.byteLength) return null;
  inPlace++;
  return { s, serial: nextSerial(), dx: xa, dy: da };
}

/** One unit: image img, every phase, every dx channel (in place where q.resident says so). */
function phaseUnit(dx: Float32Array, dy: Float32Array, wp: Float32Array, q: PhaseTask, img: number): void {
  const rs = q.resident;
  const slot = rs !== null ? claimRegion(rs.s) : -1;
  if (slot < 0) {
    unitIn(dx, dy, wp, q, img, null, 0);
    return;
  }
  try {
    unitIn(dx, dy, wp, q, img, rs, slot);
  } finally {
    releaseRegion(rs!.s, slot);
  }
}

/** phaseUnit's work through this thread's memory (rs null), or with its scratch in region `slot` of rs. */
function unitIn(dx: Float32Array, dy: Float32Array, wp: Float32Array, q: PhaseTask, img: number, rs: PhaseResident | null, slot: number): void {
  const { p, phases, padTop, padLeft, hp, wq } = q;
  const { c, h, w, o, oh, ow, strideH: sh, strideW: sw } = p;
  const hw = h * w, ohw = oh * ow;
  const L = unitLayout(q, wp.length);
  const { plane, tiles, tabAt, qtAt, accAt, rawAt, xAt, dxAt, outAt, outAt2 } = L;
  // B: the scratch's byte address for the wasm functions (0 in the thread's own memory); f, ints: views from there.
  let k: Pick<SimdPhases, 'conv' | 'pad' | 'copy' | 'split2' | 'merge2'>, f: Float32Array, ints: Int32Array, B = 0, load: boolean;
  if (rs !== null) {
    B = rs.s.at[slot]!;
    k = residentPhases(rs.s);
    const v = regionViews(rs.s, slot), header = v.header;
    ({ f, i: ints } = v);
    // The region's header names the call whose packed weights and tables it holds (winograd-resident.ts: U's entry).
    load = header[2] !== rs.serial;
    if (load) {
      header[0] = header[1] = 0;
      header[2] = rs.serial;
    }
  } else {
    const own = simdPhases(L.bytes);
    k = own;
    ({ f, i: ints } = own);
    load = loadedCall !== q.call;
    loadedCall = q.call;
  }
  if (load) {
    f.set(wp, 0);
    for (const ph of phases) for (let t = 0; t < ph.offs.length; t++) ints[tabAt + ph.tabAt + t] = 4 * ph.offs[t]!;
    ints[qtAt] = padLeft;
    ints[qtAt + 1] = padLeft + ow;
    ints[qtAt + 2] = 0;
  }
  // dy's rows (in place, or copied in) padded into the planes at xAt; dx's rows in place, or copied in at dxAt.
  const dyIn = rs !== null ? rs.dy + 4 * img * o * ohw : B + 4 * rawAt;
  if (rs === null) f.set(dy.subarray(img * o * ohw, (img + 1) * o * ohw), rawAt);
  k.pad(dyIn, 4 * ohw, o, oh, ow, B + 4 * xAt, 4 * plane, wq, hp, 1, 1, -padTop, B + 4 * qtAt);
  const dxImg = rs !== null ? rs.dx + 4 * img * c * hw : B + 4 * dxAt;
  if (rs === null) f.set(dx.subarray(img * c * hw, (img + 1) * c * hw), dxAt);
  // The phase's sums added to its rows at out (tiles of R dx channels; out a byte address).
  const conv = (ph: Phase, out: number): void => {
    const nt = ph.taps.length, outCh = ph.ho * ph.wo, cblk = Math.max(1, Math.floor(PHASE_KB / nt));
    for (let t = 0; t < tiles; t++) {
      k.conv(B + 4 * xAt, 4 * wq, 4 * plane, o, cblk, nt, B + 4 * (tabAt + ph.tabAt), B + 4 * (ph.wpAt + t * DIRECT_R * o * nt), 0, ph.ho,
        Math.ceil(ph.wo / cols), ph.wo, out + 4 * t * DIRECT_R * outCh, 4 * outCh, B + 4 * accAt, B + 4 * accAt, 1);
    }
  };
  const out1 = B + 4 * outAt, out2 = B + 4 * outAt2;
  for (let j = 0; j < phases.length; j++) {
    const ph = phases[j]!, next = phases[j + 1];
    const at = dxImg + 4 * (ph.ry * w + ph.rx), ho = ph.ho;
    if (sw === 2 && next !== undefined && next.ry === ph.ry && ph.rx === 0) {
      // Both column phases of the row phase at once: dx's even and odd columns.
      const args = [at, 4 * hw, 4 * sh * w, out1, 4 * ho * ph.wo, 4 * ph.wo, out2, 4 * ho * next.wo, 4 * next.wo, c, ho, ph.wo, next.wo] as const;
      k.split2(...args);
      conv(ph, out1);
      conv(next, out2);
      k.merge2(...args);
      j++;
      continue;
    }
    const wo = ph.wo;
    k.copy(at, 4 * hw, 4 * sh * w, 4 * sw, out1, 4 * ho * wo, 4 * wo, 4, c, ho, wo);
    conv(ph, out1);
    k.copy(out1, 4 * ho * wo, 4 * wo, 4, at, 4 * hw, 4 * sh * w, 4 * sw, c, ho, wo);
  }
  if (rs === null) dx.set(f.subarray(dxAt, dxAt + c * hw), img * c * hw);
}

registerTask<PhaseTask>('conv2d.backwardInputPhases', (bufs, q, u0, u1) => {
  for (let u = u0; u < u1; u++) phaseUnit(bufs.dx as Float32Array, bufs.dy as Float32Array, bufs.wp as Float32Array, q, u);
});

/** dx: (N, C, H, W) += ∂L/∂x by stride phases (file comment), given dy: (N, O, oH, oW) and w: (O, C, kH, kW). */
export function phaseConv2dBackwardInput(dx: Float32Array, dy: Float32Array, w: Float32Array, p: Conv2dParams): void {
  const { q, wp } = phasePlan(w, p);
  q.resident = phaseResident(dx, dy, wp.length, q);
  let cost = 0;
  for (const ph of q.phases) cost += 2 * p.n * p.o * p.c * ph.taps.length * ph.ho * ph.wo;
  parallelFor({ kernel: 'conv2d.backwardInputPhases', bufs: { dx, dy, wp }, writes: ['dx'], params: q, units: p.n, cost });
}
