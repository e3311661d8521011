// The GEMM's inner block as an asm.js module: plain JavaScript in the asm.js subset, which V8 validates and compiles
// ahead of time without the checks its JIT keeps in an ordinary loop over typed arrays (in our 4×4 microkernel, per
// k step: two map checks and a reload of both arrays' base and length, an overflow check and a sign extension per
// index, a bounds check per load; about 150 instructions for 32 flops). Same arithmetic as the plain JS kernel, so
// the same bits; measured 4.5 → 6.2 GFLOP/s per core on sgemm 64×3136×256. No install, no binary: where asm.js is not
// validated (another engine, or a heap it refuses) the same function runs as ordinary JavaScript, slower, same results.
//
// Layout in the module's heap (float64, byte offsets passed in): packed A (k groups of 4 rows per 4-row panel),
// packed B (k groups of 4 columns per 4-column panel), and a C block (mcPad × ncPad, row-major) that `block` fills
// with one 4×4 register tile at a time: C[i][j] = (init ? C[i][j] : 0) + Σ_p A[i][p]·B[p][j], p ascending, in float64.
//
// Each thread has its own heap (a worker gets its own module instance). The heap grows by instantiating the module
// again over a bigger ArrayBuffer: asm.js heaps have a fixed size, a power of two up to 16 MB, then multiples of it.

// The asm.js module. Written in the subset's own style (coercions as type annotations); TypeScript only strips the
// parameter types.
export function AsmGemmModule(stdlib: any, _foreign: any, heap: ArrayBuffer): AsmKernels {
  'use asm';
  var H = new stdlib.Float64Array(heap);
  var F = new stdlib.Float32Array(heap);
  var imul = stdlib.Math.imul;

  // One 4×4 register tile: out[i][j] (row i at byte o + i·ldo) = (init ? out[i][j] : 0) + Σ_p A[i][p]·B[p][j],
  // p ascending, with A's 4 values per p at ia + 32p and B's at ib + 32p.
  function tile(k: any, ia: any, ib: any, o: any, ldo: any, init: any) {
    k = k | 0; ia = ia | 0; ib = ib | 0; o = o | 0; ldo = ldo | 0; init = init | 0;
    var p = 0, r1 = 0, r2 = 0, r3 = 0;
    // `= .5` declares a double (asm.js types a local by its initializer's literal). Not `0.0`: TypeScript keeps
    // that, but other compilers (Vite's, esbuild) print it as `0`, an int, and the module would fail validation.
    var a0 = .5, a1 = .5, a2 = .5, a3 = .5, b0 = .5, b1 = .5, b2 = .5, b3 = .5;
    var c00 = .5, c01 = .5, c02 = .5, c03 = .5, c10 = .5, c11 = .5, c12 = .5, c13 = .5;
    var c20 = .5, c21 = .5, c22 = .5, c23 = .5, c30 = .5, c31 = .5, c32 = .5, c33 = .5;
    r1 = (o + ldo) | 0; r2 = (r1 + ldo) | 0; r3 = (r2 + ldo) | 0;
    if (init) {
      c00 = +H[o >> 3]; c01 = +H[(o + 8) >> 3]; c02 = +H[(o + 16) >> 3]; c03 = +H[(o + 24) >> 3];
      c10 = +H[r1 >> 3]; c11 = +H[(r1 + 8) >> 3]; c12 = +H[(r1 + 16) >> 3]; c13 = +H[(r1 + 24) >> 3];
      c20 = +H[r2 >> 3]; c21 = +H[(r2 + 8) >> 3]; c22 = +H[(r2 + 16) >> 3]; c23 = +H[(r2 + 24) >> 3];
      c30 = +H[r3 >> 3]; c31 = +H[(r3 + 8) >> 3]; c32 = +H[(r3 + 16) >> 3]; c33 = +H[(r3 + 24) >> 3];
    } else {
      c00 = +0; c01 = +0; c02 = +0; c03 = +0; c10 = +0; c11 = +0; c12 = +0; c13 = +0;
      c20 = +0; c21 = +0; c22 = +0; c23 = +0; c30 = +0; c31 = +0; c32 = +0; c33 = +0;
    }
    // Two k steps per iteration (measured 7.3 → 7.8 GFLOP/s per core on a 96×384×256 block), then the odd one;
    // each sum still adds p = 0, 1, 2, … in order. The k step is written out three times on purpose: asm.js has no
    // way to share it (a function cannot return 16 accumulators), and padding k to even with a zero step would turn
    // 0·Inf into NaN.
    for (p = 0; ((p + 1) | 0) < (k | 0); p = (p + 2) | 0) {
      a0 = +H[ia >> 3]; a1 = +H[(ia + 8) >> 3]; a2 = +H[(ia + 16) >> 3]; a3 = +H[(ia + 24) >> 3];
      b0 = +H[ib >> 3]; b1 = +H[(ib + 8) >> 3]; b2 = +H[(ib + 16) >> 3]; b3 = +H[(ib + 24) >> 3];
      c00 = c00 + a0 * b0; c01 = c01 + a0 * b1; c02 = c02 + a0 * b2; c03 = c03 + a0 * b3;
      c10 = c10 + a1 * b0; c11 = c11 + a1 * b1; c12 = c12 + a1 * b2; c13 = c13 + a1 * b3;
      c20 = c20 + a2 * b0; c21 = c21 + a2 * b1; c22 = c22 + a2 * b2; c23 = c23 + a2 * b3;
      c30 = c30 + a3 * b0; c31 = c31 + a3 * b1; c32 = c32 + a3 * b2; c33 = c33 + a3 * b3;
      a0 = +H[(ia + 32) >> 3]; a1 = +H[(ia + 40) >> 3]; a2 = +H[(ia + 48) >> 3]; a3 = +H[(ia + 56) >> 3];
      b0 = +H[(ib + 32) >> 3]; b1 = +H[(ib + 40) >> 3]; b2 = +H[(ib + 48) >> 3]; b3 = +H[(ib + 56) >> 3];
      c00 = c00 + a0 * b0; c01 = c01 + a0 * b1; c02 = c02 + a0 * b2; c03 = c03 + a0 * b3;
      c10 = c10 + a1 * b0; c11 = c11 + a1 * b1; c12 = c12 + a1 * b2; c13 = c13 + a1 * b3;
      c20 = c20 + a2 * b0; c21 = c21 + a2 * b1; c22 = c22 + a2 * b2; c23 = c23 + a2 * b3;
      c30 = c30 + a3 * b0; c31 = c31 + a3 * b1; c32 = c32 + a3 * b2; c33 = c33 + a3 * b3;
      ia = (ia + 64) | 0; ib = (ib + 64) | 0;
    }
    if ((p | 0) < (k | 0)) {
      a0 = +H[ia >> 3]; a1 = +H[(ia + 8) >> 3]; a2 = +H[(ia + 16) >> 3]; a3 = +H[(ia + 24) >> 3];
      b0 = +H[ib >> 3]; b1 = +H[(ib + 8) >> 3]; b2 = +H[(ib + 16) >> 3]; b3 = +H[(ib + 24) >> 3];
      c00 = c00 + a0 * b0; c01 = c01 + a0 * b1; c02 = c02 + a0 * b2; c03 = c03 + a0 * b3;
      c10 = c10 + a1 * b0; c11 = c11 + a1 * b1; c12 = c12 + a1 * b2; c13 = c13 + a1 * b3;
      c20 = c20 + a2 * b0; c21 = c21 + a2 * b1; c22 = c22 + a2 * b2; c23 = c23 + a2 * b3;
      c30 = c30 + a3 * b0; c31 = c31 + a3 * b1; c32 = c32 + a3 * b2; c33 = c33 + a3 * b3;
    }
    H[o >> 3] = c00; H[(o + 8) >> 3] = c01; H[(o + 16) >> 3] = c02; H[(o + 24) >> 3] = c03;
    H[r1 >> 3] = c10; H[(r1 + 8) >> 3] = c11; H[(r1 + 16) >> 3] = c12; H[(r1 + 24) >> 3] = c13;
    H[r2 >> 3] = c20; H[(r2 + 8) >> 3] = c21; H[(r2 + 16) >> 3] = c22; H[(r2 + 24) >> 3] = c23;
    H[r3 >> 3] = c30; H[(r3 + 8) >> 3] = c31; H[(r3 + 16) >> 3] = c32; H[(r3 + 24) >> 3] = c33;
  }

  // C block (at byte offset pc, ncPad doubles per row) ← all 4×4 tiles of the packed panels at pa (mcPad rows, k
  // groups of 4 per 4-row panel) and pb (ncPad columns, likewise), k deep.
  function blockTiles(k: any, mcPad: any, ncPad: any, pa: any, pb: any, pc: any, init: any) {
    k = k | 0; mcPad = mcPad | 0; ncPad = ncPad | 0; pa = pa | 0; pb = pb | 0; pc = pc | 0; init = init | 0;
    var ir = 0, jr = 0, ldc = 0;
    ldc = ncPad << 3;
    for (jr = 0; (jr | 0) < (ncPad | 0); jr = (jr + 4) | 0) {
      for (ir = 0; (ir | 0) < (mcPad | 0); ir = (ir + 4) | 0) {
        tile(k, (pa + (imul(ir, k) << 3)) | 0, (pb + (imul(jr, k) << 3)) | 0, (pc + (imul(ir, ncPad) << 3) + (jr << 3)) | 0, ldc, init);
      }
    }
  }

  // Winograd: the 36 tiles M_ξ = U_ξ-panel · V_ξ-panel (k deep) of one 4-channel × 4-tile block, ξ-slices xiU / xiV
  // bytes apart from ua / vb, into 36 consecutive 4×4 blocks from mo.
  function winoTiles(k: any, ua: any, xiU: any, vb: any, xiV: any, mo: any) {
    k = k | 0; ua = ua | 0; xiU = xiU | 0; vb = vb | 0; xiV = xiV | 0; mo = mo | 0;
    var xi = 0;
    for (xi = 0; (xi | 0) < 36; xi = (xi + 1) | 0) {
      tile(k, ua, vb, mo, 32, 0);
      ua = (ua + xiU) | 0; vb = (vb + xiV) | 0; mo = (mo + 128) | 0;
    }
  }

  // Winograd weight transform U = G g Gᵀ of 4 output channels × ci input channels (float32 3×3 filters at byte
  // offset src: filter (lane, ic) at src + ic·icStep + lane·laneStep, its 9 taps in order, or reversed (180°
  // rotation) when flip) into the GEMM A-panel at dst: U[ξ] of (lane, ic) at dst + ξ·xiStep + (4·ic + lane)·8.
  // Lanes from `lanes` on (channels past the last) get zeros and read nothing. Returns 1 if a filter read holds a NaN
  // or ±Inf (their sum times 0 is then NaN; a sum of nine float32 values cannot overflow a double), else 0.
  // G's rows: (1/4, 0, 0), −(1, 1, 1)/6, −(1, −1, 1)/6, (1/24, 1/12, 1/6), (1/24, −1/12, 1/6), (0, 0, 1); one row of
  // G g (a, b, c) at a time, then G along it (the same arithmetic, in the same order, as a plain JS transform). The six
  // rows are written out: an asm.js function per row, called six times, measured 16.6 → 19.6 ms for a whole
  // 512→512 @7 Winograd conv on one core (V8 does not inline asm.js calls).
  function transformWeights(src: any, ci: any, icStep: any, laneStep: any, flip: any, lanes: any, dst: any, xiStep: any) {
    src = src | 0; ci = ci | 0; icStep = icStep | 0; laneStep = laneStep | 0; flip = flip | 0; lanes = lanes | 0; dst = dst | 0;
    xiStep = xiStep | 0;
    var ic = 0, lane = 0, s = 0, t = 0, d = 0, o = 0, e = 0;
    var g0 = .5, g1 = .5, g2 = .5, g3 = .5, g4 = .5, g5 = .5, g6 = .5, g7 = .5, g8 = .5;
    var a = .5, b = .5, c = .5, sum = .5, bad = .5;
    bad = +0;
    t = flip ? -4 : 4;
    for (ic = 0; (ic | 0) < (ci | 0); ic = (ic + 1) | 0) {
      for (lane = 0; (lane | 0) < 4; lane = (lane + 1) | 0) {
        o = (dst + ((((ic << 2) + lane) | 0) << 3)) | 0;
        d = o;
        if ((lane | 0) >= (lanes | 0)) {
          for (e = 0; (e | 0) < 36; e = (e + 1) | 0) {
            H[d >> 3] = +0; d = (d + xiStep) | 0;
          }
          continue;
        }
        s = (src + (imul(ic, icStep) | 0) + (imul(lane, laneStep) | 0)) | 0;
        if (flip) s = (s + 32) | 0;
        g0 = +F[s >> 2]; g1 = +F[(s + t) >> 2]; g2 = +F[(s + (t << 1)) >> 2];
        g3 = +F[(s + (imul(t, 3) | 0)) >> 2]; g4 = +F[(s + (t << 2)) >> 2]; g5 = +F[(s + (imul(t, 5) | 0)) >> 2];
        g6 = +F[(s + (imul(t, 6) | 0)) >> 2]; g7 = +F[(s + (imul(t, 7) | 0)) >> 2]; g8 = +F[(s + (t << 3)) >> 2];
        bad = bad + (g0 + g1 + g2 + g3 + g4 + g5 + g6 + g7 + g8) * +0;
        a = g0 * 0.25; b = g1 * 0.25; c = g2 * 0.25; sum = a + c;
        H[d >> 3] = a * 0.25; d = (d + xiStep) | 0;
        H[d >> 3] = -(sum + b) * 0.16666666666666666; d = (d + xiStep) | 0;
        H[d >> 3] = (b - sum) * 0.16666666666666666; d = (d + xiStep) | 0;
        H[d >> 3] = a * 0.041666666666666664 + b * 0.08333333333333333 + c * 0.16666666666666666; d = (d + xiStep) | 0;
        H[d >> 3] = a * 0.041666666666666664 - b * 0.08333333333333333 + c * 0.16666666666666666; d = (d + xiStep) | 0;
        H[d >> 3] = c; d = (d + xiStep) | 0;
        a = -(g0 + g6 + g3) * 0.16666666666666666; b = -(g1 + g7 + g4) * 0.16666666666666666; c = -(g2 + g8 + g5) * 0.16666666666666666; sum = a + c;
        H[d >> 3] = a * 0.25; d = (d + xiStep) | 0;
        H[d >> 3] = -(sum + b) * 0.16666666666666666; d = (d + xiStep) | 0;
        H[d >> 3] = (b - sum) * 0.16666666666666666; d = (d + xiStep) | 0;
        H[d >> 3] = a * 0.041666666666666664 + b * 0.08333333333333333 + c * 0.16666666666666666; d = (d + xiStep) | 0;
        H[d >> 3] = a * 0.041666666666666664 - b * 0.08333333333333333 + c * 0.16666666666666666; d = (d + xiStep) | 0;
        H[d >> 3] = c; d = (d + xiStep) | 0;
        a = (g3 - (g0 + g6)) * 0.16666666666666666; b = (g4 - (g1 + g7)) * 0.16666666666666666; c = (g5 - (g2 + g8)) * 0.16666666666666666; sum = a + c;
        H[d >> 3] = a * 0.25; d = (d + xiStep) | 0;
        H[d >> 3] = -(sum + b) * 0.16666666666666666; d = (d + xiStep) | 0;
        H[d >> 3] = (b - sum) * 0.16666666666666666; d = (d + xiStep) | 0;
        H[d >> 3] = a * 0.041666666666666664 + b * 0.08333333333333333 + c * 0.16666666666666666; d = (d + xiStep) | 0;
        H[d >> 3] = a * 0.041666666666666664 - b * 0.08333333333333333 + c * 0.16666666666666666; d = (d + xiStep) | 0;
        H[d >> 3] = c; d = (d + xiStep) | 0;
        a = g0 * 0.041666666666666664 + g3 * 0.08333333333333333 + g6 * 0.16666666666666666; b = g1 * 0.041666666666666664 + g4 * 0.08333333333333333 + g7 * 0.16666666666666666; c = g2 * 0.041666666666666664 + g5 * 0.08333333333333333 + g8 * 0.16666666666666666; sum = a + c;
        H[d >> 3] = a * 0.25; d = (d + xiStep) | 0;
        H[d >> 3] = -(sum + b) * 0.16666666666666666; d = (d + xiStep) | 0;
        H[d >> 3] = (b - sum) * 0.16666666666666666; d = (d + xiStep) | 0;
        H[d >> 3] = a * 0.041666666666666664 + b * 0.08333333333333333 + c * 0.16666666666666666; d = (d + xiStep) | 0;
        H[d >> 3] = a * 0.041666666666666664 - b * 0.08333333333333333 + c * 0.16666666666666666; d = (d + xiStep) | 0;
        H[d >> 3] = c; d = (d + xiStep) | 0;
        a = g0 * 0.041666666666666664 - g3 * 0.08333333333333333 + g6 * 0.16666666666666666; b = g1 * 0.041666666666666664 - g4 * 0.08333333333333333 + g7 * 0.16666666666666666; c = g2 * 0.041666666666666664 - g5 * 0.08333333333333333 + g8 * 0.16666666666666666; sum = a + c;
        H[d >> 3] = a * 0.25; d = (d + xiStep) | 0;
        H[d >> 3] = -(sum + b) * 0.16666666666666666; d = (d + xiStep) | 0;
        H[d >> 3] = (b - sum) * 0.16666666666666666; d = (d + xiStep) | 0;
        H[d >> 3] = a * 0.041666666666666664 + b * 0.08333333333333333 + c * 0.16666666666666666; d = (d + xiStep) | 0;
        H[d >> 3] = a * 0.041666666666666664 - b * 0.08333333333333333 + c * 0.16666666666666666; d = (d + xiStep) | 0;
        H[d >> 3] = c; d = (d + xiStep) | 0;
        a = g6; b = g7; c = g8; sum = a + c;
        H[d >> 3] = a * 0.25; d = (d + xiStep) | 0;
        H[d >> 3] = -(sum + b) * 0.16666666666666666; d = (d + xiStep) | 0;
        H[d >> 3] = (b - sum) * 0.16666666666666666; d = (d + xiStep) | 0;
        H[d >> 3] = a * 0.041666666666666664 + b * 0.08333333333333333 + c * 0.16666666666666666; d = (d + xiStep) | 0;
        H[d >> 3] = a * 0.041666666666666664 - b * 0.08333333333333333 + c * 0.16666666666666666; d = (d + xiStep) | 0;
        H[d >> 3] = c;
      }
    }
    return (bad != bad ? 1 : 0) | 0;
  }

  // Keys unlike the names: some compilers print `{ block: block }` as `{ block }`, which asm.js does not accept.
  return { block: blockTiles, wino: winoTiles, weights: transformWeights };
}

/** The module's functions (arguments are byte offsets into the heap, and counts). */
interface AsmKernels {
  block: (k: number, mcPad: number, ncPad: number, pa: number, pb: number, pc: number, init: number) => void;
  wino: (k: number, ua: number, xiU: number, vb: number, xiV: number, mo: number) => void;
  weights: (src: number, ci: number, icStep: number, laneStep: number, flip: number, lanes: number, dst: number, xiStep: number) => number;
}

/** A heap and the module instance over it. */
export interface AsmGemm extends AsmKernels {
  /** The heap as float64 (what packing and transforms write, and results are read from). */
  h: Float64Array;
  /** The same heap as float32 (where filters are copied for `weights`). */
  f: Float32Array;
}

let current: AsmGemm | null = null;

/** asm.js heap sizes: a power of two from 64 KB up to 16 MB, then multiples of 16 MB. */
export function asmHeapBytes(needBytes: number): number {
  const MB16 = 2 ** 24;
  if (needBytes > MB16) return Math.ceil(needBytes / MB16) * MB16;
  let size = 2 ** 16;
  while (size < needBytes) size *= 2;
  return size;
}

/** This thread's module with a heap of at least `doubles` float64s (instantiated again, bigger, when needed). */
export function asmGemm(doubles: number): AsmGemm {
  if (current === null || current.h.length < doubles) {
    const heap = new ArrayBuffer(asmHeapBytes(doubles * 8));
    const mod = AsmGemmModule(globalThis, null, heap);
    current = { h: new Float64Array(heap), f: new Float32Array(heap), block: mod.block, wino: mod.wino, weights: mod.weights };
  }
  return current;
}
