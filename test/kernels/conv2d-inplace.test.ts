import { describe, it } from 'vitest';
import { conv2dForward, conv2dForwardFused, conv2dForwardNaive, conv2dOutSize, type Conv2dParams } from '../../src/kernels/conv2d.js';
import { epilogueRows, sgemm } from '../../src/kernels/gemm.js';
import { densePairTaps } from '../../src/kernels/conv2d/small-map.js';
import { hasSimd128 } from '../../src/kernels/wasm/features.js';
import { useKernelBackend } from './backend-hooks.js';
import { assertClose, assertIdentical, fusedEpilogueReference, randArray } from './compare.js';

// The forward GEMM units that write their outputs in place on the SIMD backend (conv2d/inplace.ts,
// wasm/pointwise.ts) against the naive float64 loops, and against the packed SIMD GEMM on the same operands (sgemm on
// an explicit im2col per image and group, then the JavaScript epilogue), whose bits they must reproduce: 1×1
// convolutions without padding (x read in place) and im2col panels. Shapes with channel counts that are not multiples
// of 4 or 8, maps whose positions end in a partial 8-column tile, k over several 64-term blocks and not a multiple of
// them, groups, batch 1, strides, and a map wider than one pass of x's copy. The fused epilogue of a 1×1 conv (any
// stride, with or without a residual) runs in float32 (wasm/pointwise.ts's PW_EP32), that of the im2col panels in
// float64.

function params(n: number, c: number, h: number, w: number, o: number, groups = 1, sh = 1, sw = sh, k = 1, pad = 0): Conv2dParams {
  return {
    n, c, h, w, o, kh: k, kw: k, strideH: sh, strideW: sw, padH: pad, padW: pad, dilH: 1, dilW: 1, groups,
    oh: conv2dOutSize(h, k, sh, pad, 1), ow: conv2dOutSize(w, k, sw, pad, 1),
  };
}

const label = (p: Conv2dParams): string =>
  `x=[${p.n},${p.c},${p.h},${p.w}] w=[${p.o},${p.c / p.groups},${p.kh},${p.kw}] g=${p.groups} s=${p.strideH},${p.strideW} p=${p.padH}`;

/**
 * im2col per image: (N, C·kH·kW, oH·oW), row (c, ky, kx), column (oy, ox): x at (oy·s − pad + ky, ox·s − pad + kx),
 * 0 in the padding. For a 1×1 conv without padding, x's values at the positions the stride meets.
 */
function im2col(x: Float32Array, p: Conv2dParams): Float32Array {
  const { kh, kw, oh, ow } = p, out = new Float32Array(p.n * p.c * kh * kw * oh * ow);
  let d = 0;
  for (let nc = 0; nc < p.n * p.c; nc++) {
    for (let ky = 0; ky < kh; ky++) {
      for (let kx = 0; kx < kw; kx++) {
        for (let oy = 0; oy < oh; oy++) {
          for (let ox = 0; ox < ow; ox++) {
            const iy = oy * p.strideH - p.padH + ky, ix = ox * p.strideW - p.padW + kx;
            out[d++] = iy >= 0 && iy < p.h && ix >= 0 && ix < p.w ? x[(nc * p.h + iy) * p.w + ix]! : 0;
          }
        }
      }
    }
  }
  return out;
}

/**
 * The packed GEMM's result: y_g = w_g · x_g per image and group (+ bias, one rounding), then the epilogue: in float64
 * (epilogueRows), or for a 1×1 conv without padding (except the tiny maps small-map.ts takes) in float32 (the inference epilogue forward.ts asks
 * wasm/pointwise.ts for: round(round(round(v·f32(scale)) + f32(shift)) + res), then ReLU on the bits).
 */
function gemmReference(
  x: Float32Array, w: Float32Array, bias: Float32Array | null, p: Conv2dParams, ep: { scale: Float64Array; shift: Float64Array; relu: boolean; res: Float32Array | null } | null,
  float64Epilogue = false,
): Float32Array {
  const f32 = !float64Epilogue && ep !== null && p.kh === 1 && p.kw === 1 && p.padH === 0 && p.padW === 0 && densePairTaps(p) === null;
  const cg = (p.c / p.groups) * p.kh * p.kw, og = p.o / p.groups, hw = p.oh * p.ow, xs = im2col(x, p);
  const y = new Float32Array(p.n * p.o * hw);
  for (let i = 0; i < p.n; i++) {
    for (let g = 0; g < p.groups; g++) {
      const cOff = (i * p.o + g * og) * hw;
      if (bias !== null) for (let r = 0; r < og; r++) y.fill(bias[g * og + r]!, cOff + r * hw, cOff + (r + 1) * hw);
      sgemm(y, w, xs, og, hw, cg, { aOff: g * og * cg, bOff: (i * p.groups + g) * cg * hw, cOff, accumulate: bias !== null });
      if (ep !== null && f32) {
        for (let r = 0; r < og; r++) {
          const sc = Math.fround(ep.scale[g * og + r]!), sh = Math.fround(ep.shift[g * og + r]!);
          for (let j = cOff + r * hw; j < cOff + (r + 1) * hw; j++) {
            let v = Math.fround(Math.fround(y[j]! * sc) + sh);
            if (ep.res !== null) v = Math.fround(v + ep.res[j]!);
            y[j] = ep.relu && (v < 0 || Object.is(v, -0)) ? 0 : v;
          }
        }
      } else if (ep !== null) epilogueRows(y, { ...ep, ch0: g * og }, cOff, hw, 0, og, 0, hw);
    }
  }
  return y;
}

function check(p: Conv2dParams, seed: number): void {
  const xs = p.n * p.c * p.h * p.w, ys = p.n * p.o * p.oh * p.ow, name = label(p);
  const x = randArray(seed, xs), w = randArray(seed + 1, p.o * (p.c / p.groups) * p.kh * p.kw), bias = randArray(seed + 2, p.o);
  for (const b of [null, bias]) {
    const y = new Float32Array(ys).fill(NaN), yr = new Float32Array(ys);
    conv2dForward(y, x, w, b, p);
    conv2dForwardNaive(yr, x, w, b, p);
    assertClose(`fwd${b ? '+bias' : ''} ${name}`, y, yr);
    assertIdentical(`fwd${b ? '+bias' : ''} ${name} vs packed GEMM`, y, gemmReference(x, w, b, p, null));
  }
  const res = randArray(seed + 3, ys), scale = Float64Array.from(randArray(seed + 4, p.o)), shift = Float64Array.from(randArray(seed + 5, p.o));
  const conv = new Float32Array(ys);
  conv2dForwardNaive(conv, x, w, null, p);
  for (const r of [res, null]) {
    for (const relu of [true, false]) {
      const y = new Float32Array(ys).fill(NaN);
      conv2dForwardFused(y, x, w, r, p, { scale, shift, relu });
      const what = `fused${r ? ' +res' : ''}${relu ? ' relu' : ''} ${name}`;
      if (relu) assertClose(what, y, fusedEpilogueReference(conv, scale, shift, r ?? new Float32Array(ys), p.o, p.oh * p.ow));
      assertIdentical(`${what} vs packed GEMM`, y, gemmReference(x, w, null, p, { scale, shift, relu, res: r }));
    }
  }
}

describe.runIf(hasSimd128)('forward GEMM units with outputs in place (SIMD): 1×1 with x in place, im2col panels', () => {
  // (The direct kernel off: it would take the 3×3/2 shapes with few channels.)
  useKernelBackend('simd', { directConv: false });

  it('matches the naive loops and the packed GEMM bit for bit: odd channels, partial tiles, several k blocks', () => {
    check(params(1, 3, 9, 11, 5), 1); // k < 4, one partial row tile, 99 positions (last tile 3 wide: one vector)
    check(params(1, 70, 8, 9, 13), 11); // k = 64 + 6, 13 output channels
    check(params(1, 130, 7, 7, 9), 21); // 49 positions (last tile 1 wide), k in three blocks
    check(params(1, 64, 11, 13, 20), 31); // k one whole block, 143 positions (last tile 7 wide)
    check(params(1, 12, 10, 10, 8, 2), 41); // groups, 100 positions (last tile one whole vector)
    check(params(3, 257, 8, 9, 6), 51); // k = 4·64 + 1
    check(params(1, 10, 5, 5, 70), 56); // 70 output channels: a last row tile of 2 (the weights' rows read past the last, never stored)
  });

  it('small maps (≤ 64 positions): the rows of x packed into 8-column panels', () => {
    check(params(1, 33, 1, 1, 5), 141); // 1 position: the one panel 7 columns past x's end
    check(params(1, 9, 3, 5, 6), 142); // 15 positions: the last panel 7 wide, k < 64
    check(params(1, 300, 7, 7, 70), 143); // 49 positions (ResNet-50's layer4), k over five blocks, 70 rows
    check(params(2, 67, 8, 8, 13), 144); // 64 positions (whole panels), two images, k = 64 + 3
  });

  it('ReLU on the bits: −0 gives +0, NaN and ±Inf pass as the JavaScript epilogue passes them', () => {
    // Channel 0's weights are +0: its sums are +0, times a negative scale −0; with shift −0 and a residual of −0 its
    // outputs before the ReLU are −0. Channel 1's residual holds NaN, −Inf and +Inf in whole and partial tiles.
    for (const p of [params(1, 5, 3, 3, 4), params(1, 70, 5, 9, 6), params(1, 9, 11, 12, 5)]) {
      const hw = p.oh * p.ow, x = randArray(201, p.n * p.c * p.h * p.w);
      const w = randArray(202, p.o * p.c).fill(0, 0, p.c);
      const scale = Float64Array.from(randArray(203, p.o), (v) => Math.abs(v) + 0.5), shift = Float64Array.from(randArray(204, p.o));
      scale[0] = -1.5;
      shift[0] = -0;
      const res = randArray(205, p.o * hw).fill(-0, 0, hw);
      res[hw + 1] = NaN;
      res[hw + 2] = -Infinity;
      res[hw + hw - 1] = Infinity;
      const y = new Float32Array(p.o * hw).fill(NaN);
      conv2dForwardFused(y, x, w, res, p, { scale, shift, relu: true });
      assertIdentical(`fused relu ${label(p)} vs packed GEMM`, y, gemmReference(x, w, null, p, { scale, shift, relu: true, res }));
      for (let j = 0; j < hw; j++) if (!Object.is(y[j], 0)) throw new Error(`${label(p)}: channel 0 position ${j}: ${y[j]}, not +0`);
      if (!Number.isNaN(y[hw + 1]) || !Object.is(y[hw + 2], 0) || y[hw + hw - 1] !== Infinity) throw new Error(`${label(p)}: NaN/±Inf lanes ${y[hw + 1]} ${y[hw + 2]} ${y[hw + hw - 1]}`);
    }
  });

  it('at a stride (the downsampling 1×1/2 of ResNets, and uneven strides)', () => {
    check(params(1, 70, 17, 16, 12, 1, 2), 71); // 9 × 8 positions
    check(params(1, 9, 21, 22, 6, 1, 3, 2), 81); // 7 × 11 positions
    check(params(2, 16, 20, 20, 10, 2, 2), 91); // groups, two images (10 × 10 positions)
  });

  it('1×1 fused epilogue in float32, with and without a residual, at stride 1 and 2: its bits, not float64\'s', () => {
    // The float32 reference matches bit for bit (check) and the float64 epilogue's bits differ somewhere, so the
    // comparison tells the two apart.
    for (const [p, seed] of [[params(1, 64, 11, 13, 20), 301], [params(1, 130, 7, 7, 12), 302], [params(1, 70, 17, 16, 12, 1, 2), 303]] as const) {
      check(p, seed);
      const ys = p.n * p.o * p.oh * p.ow, x = randArray(seed, p.n * p.c * p.h * p.w), w = randArray(seed + 1, p.o * p.c);
      const scale = Float64Array.from(randArray(seed + 4, p.o)), shift = Float64Array.from(randArray(seed + 5, p.o));
      for (const res of [randArray(seed + 3, ys), null]) {
        const y = new Float32Array(ys).fill(NaN);
        conv2dForwardFused(y, x, w, res, p, { scale, shift, relu: false });
        const y64 = gemmReference(x, w, null, p, { scale, shift, relu: false, res }, true);
        let diff = 0;
        for (let i = 0; i < ys; i++) if (!Object.is(y[i], y64[i])) diff++;
        if (diff === 0) throw new Error(`${label(p)}${res ? ' +res' : ''}: the float32 epilogue gave the float64 one's bits everywhere`);
      }
    }
  });

  it('im2col panels into the same kernel (conv1-like 7×7/2, 3×3/2, 5×5), every tap live', () => {
    check(params(1, 3, 29, 31, 10, 1, 2, 2, 7, 3), 101); // K = 147 in three blocks, 15 × 16 positions
    check(params(1, 13, 15, 15, 9, 1, 2, 2, 3, 1), 111); // K = 117, 8 × 8 positions
    check(params(2, 6, 12, 11, 5, 1, 1, 1, 5, 2), 121); // K = 150, 132 positions (last tile 4 wide)
    check(params(1, 70, 33, 33, 6, 1, 2, 2, 3, 1), 131); // K = 630: panel chunks of 208 columns (289 positions)
  });

  it('a map wider than one pass of x (COL_CAP floats): several passes per unit', () => {
    // K = 600: passes of 1744 positions; 45 × 45 = 2025.
    check(params(1, 600, 45, 45, 4), 61);
    // K = 5, 600 output channels: x's copy whole, y's rows in passes of 1744 positions (the copy read at an offset).
    check(params(1, 5, 45, 45, 600), 62);
  });
});
