import { withConfig } from '../../src/config.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  adaptiveAvgPool2dBackward,
  adaptiveAvgPool2dForward,
  avgPool2dBackward,
  avgPool2dForward,
  globalAvgPool2dBackward,
  maxPool2dBackward,
  maxPool2dForward,
  maxPool2dForwardValues,
  poolOutSize,
  type AvgPoolParams,
  type PoolParams,
} from '../../src/kernels/pool.js';
import { assertClose, assertIdentical, randArray } from './compare.js';

interface Spec { n: number; c: number; h: number; w: number; kh: number; kw: number; sh: number; sw: number; ph: number; pw: number; dh: number; dw: number; ceil: boolean }

function params(s: Spec): PoolParams {
  return {
    n: s.n, c: s.c, h: s.h, w: s.w, kh: s.kh, kw: s.kw, strideH: s.sh, strideW: s.sw, padH: s.ph, padW: s.pw, dilH: s.dh, dilW: s.dw,
    oh: poolOutSize(s.h, s.kh, s.sh, s.ph, s.dh, s.ceil), ow: poolOutSize(s.w, s.kw, s.sw, s.pw, s.dw, s.ceil),
  };
}

/** A (1, 1, h, w) spec with the same settings on both axes unless given. */
const sq = (h: number, w: number, k: number, s: number, p: number, ceil = false, d = 1): Spec =>
  ({ n: 1, c: 1, h, w, kh: k, kw: k, sh: s, sw: s, ph: p, pw: p, dh: d, dw: d, ceil });

describe('poolOutSize', () => {
  it('ceil mode drops a last window that would start in the right padding', () => {
    expect(poolOutSize(5, 2, 2, 1, 1, true)).toBe(3); // not 4: window 4 would start at 6 ≥ 5 + 1
    expect(poolOutSize(5, 2, 2, 1, 1, false)).toBe(3);
    expect(poolOutSize(6, 3, 2, 1, 1, true)).toBe(4); // last window starts at 5 < 6 + 1 and hangs past 6 + 1
    expect(poolOutSize(6, 3, 2, 1, 1, false)).toBe(3);
    expect(poolOutSize(6, 3, 2, 0, 1, true)).toBe(3);
    expect(poolOutSize(6, 3, 2, 0, 1, false)).toBe(2);
    expect(poolOutSize(112, 3, 2, 1, 1, false)).toBe(56); // ResNet max pool
    expect(poolOutSize(4, 2, 1, 0, 2, false)).toBe(2); // dilation 2: effective kernel 3
  });
});

describe('maxPool2d by hand', () => {
  it('ceil mode H=W=5, k=2, s=2, p=1 on x = 0..24', () => {
    const p = params(sq(5, 5, 2, 2, 1, true));
    expect([p.oh, p.ow]).toEqual([3, 3]);
    const x = Float32Array.from({ length: 25 }, (_, i) => i);
    const y = new Float32Array(9), am = new Int32Array(9);
    maxPool2dForward(y, am, x, p);
    // window rows {−1,0}, {1,2}, {3,4}; the max is the bottom-right element inside the input
    expect(Array.from(y)).toEqual([0, 2, 4, 10, 12, 14, 20, 22, 24]);
    expect(Array.from(am)).toEqual([0, 2, 4, 10, 12, 14, 20, 22, 24]);
  });

  it('padding is −∞, not 0: all-negative input, k=3 s=2 p=1', () => {
    const x = Float32Array.from([-1, -2, -3, -4, -5, -6, -7, -8, -9]);
    const p = params(sq(3, 3, 3, 2, 1));
    const y = new Float32Array(4), am = new Int32Array(4);
    maxPool2dForward(y, am, x, p);
    expect(Array.from(y)).toEqual([-1, -2, -4, -5]);
    expect(Array.from(am)).toEqual([0, 1, 3, 4]);
  });

  it('ties → first index in row-major window order', () => {
    const x = Float32Array.from([7, 7, 7, 7, 1, 3, 3, 2, 0, 3, 3, 3]); // (1, 1, 3, 4)
    const p = params({ ...sq(3, 4, 2, 2, 0), sh: 1, sw: 2 }); // windows rows {0,1},{1,2} × cols {0,1},{2,3}
    const y = new Float32Array(4), am = new Int32Array(4);
    maxPool2dForward(y, am, x, p);
    expect(Array.from(y)).toEqual([7, 7, 3, 3]);
    expect(Array.from(am)).toEqual([0, 2, 5, 6]);
  });

  it('NaN propagates and the argmax points at the NaN (the last NaN when there are several, as PyTorch CPU)', () => {
    const x = Float32Array.from([1, NaN, 3, NaN, 5, 9, NaN, 2]); // (1, 1, 1, 8)
    const p = params({ ...sq(1, 8, 4, 4, 0), kh: 1, sh: 1 });
    const y = new Float32Array(2), am = new Int32Array(2);
    maxPool2dForward(y, am, x, p);
    expect(Number.isNaN(y[0]) && Number.isNaN(y[1])).toBe(true);
    expect(Array.from(am)).toEqual([3, 6]);
  });

  it('dilation 2 on a 4×4 checkerboard of signs', () => {
    // x[i] = i·(−1)^i: [[0,−1,2,−3],[4,−5,6,−7],[8,−9,10,−11],[12,−13,14,−15]]; k=2 d=2 s=1 → taps (0,0),(0,2),(2,0),(2,2)
    const x = Float32Array.from({ length: 16 }, (_, i) => (i % 2 ? -i : i));
    const p = params(sq(4, 4, 2, 1, 0, false, 2));
    const y = new Float32Array(4), am = new Int32Array(4);
    maxPool2dForward(y, am, x, p);
    expect(Array.from(y)).toEqual([10, -1, 14, -5]);
    expect(Array.from(am)).toEqual([10, 1, 14, 5]);
  });

  it('backward routes dy to the argmax, accumulating where windows share a max', () => {
    const x = Float32Array.from([9, 1, 2, 3]); // (1,1,1,4), k=2 s=1 → windows {0,1},{1,2},{2,3}
    const p = params({ ...sq(1, 4, 2, 1, 0), kh: 1 });
    const y = new Float32Array(3), am = new Int32Array(3);
    maxPool2dForward(y, am, x, p);
    expect(Array.from(am)).toEqual([0, 2, 3]);
    const dx = Float32Array.from([1, 1, 1, 1]);
    maxPool2dBackward(dx, Float32Array.from([10, 20, 30]), am, p);
    expect(Array.from(dx)).toEqual([11, 1, 21, 31]);
  });
});

describe('avgPool2d by hand (H=6 k=3 s=2 p=1 ceil, so the last window hangs past H + pad)', () => {
  const base: PoolParams = params({ ...sq(6, 1, 3, 2, 1, true), kw: 1, sw: 1, pw: 0 });
  const x = Float32Array.from([1, 2, 3, 4, 5, 6]);
  // windows: [−1,2) [1,4) [3,6) [5,7→clipped at H+pad=7); real rows [0,2) [1,4) [3,6) [5,6)
  it('countIncludePad = true: divisors 3, 3, 3, 2', () => {
    expect(base.oh).toBe(4);
    const y = new Float32Array(4);
    avgPool2dForward(y, x, { ...base, countIncludePad: true });
    expect(Array.from(y)).toEqual([1, 3, 5, 3]);
  });
  it('countIncludePad = false: divisors 2, 3, 3, 1', () => {
    const y = new Float32Array(4);
    avgPool2dForward(y, x, { ...base, countIncludePad: false });
    expect(Array.from(y)).toEqual([1.5, 3, 5, 6]);
  });
  it('divisorOverride = 2', () => {
    const y = new Float32Array(4);
    avgPool2dForward(y, x, { ...base, countIncludePad: true, divisorOverride: 2 });
    expect(Array.from(y)).toEqual([1.5, 4.5, 7.5, 3]);
  });
  it('backward with countIncludePad, dy = 1', () => {
    const dx = new Float32Array(6);
    avgPool2dBackward(dx, Float32Array.from([1, 1, 1, 1]), { ...base, countIncludePad: true });
    const t = Math.fround(1 / 3);
    assertClose('avg bwd', dx, [t, 2 * t, t, 2 * t, t, t + 0.5], { atol: 1e-7, rtol: 1e-6 });
  });
});

describe('adaptiveAvgPool2d by hand', () => {
  it('10 → 3: bins [0,4) [3,7) [6,10)', () => {
    const x = Float32Array.from({ length: 10 }, (_, i) => i);
    const y = new Float32Array(3);
    adaptiveAvgPool2dForward(y, x, { n: 1, c: 1, h: 10, w: 1, oh: 3, ow: 1 });
    expect(Array.from(y)).toEqual([1.5, 4.5, 7.5]);
  });
  it('5 → 7 (upsampling, overlapping bins) forward and backward', () => {
    const p = { n: 1, c: 1, h: 1, w: 5, oh: 1, ow: 7 };
    const y = new Float32Array(7);
    adaptiveAvgPool2dForward(y, Float32Array.from([1, 2, 3, 4, 5]), p);
    // bins [0,1) [0,2) [1,3) [2,3) [2,4) [3,5) [4,5)
    expect(Array.from(y)).toEqual([1, 1.5, 2.5, 3, 3.5, 4.5, 5]);
    const dx = new Float32Array(5);
    adaptiveAvgPool2dBackward(dx, new Float32Array(7).fill(1), p);
    expect(Array.from(dx)).toEqual([1.5, 1, 2, 1, 1.5]);
  });
  it('global pooling backward overwrites dx with what the accumulating kernel adds onto zeros (bit for bit)', () => {
    for (const [n, c, h, w] of [[2, 3, 7, 7], [4, 64, 8, 8], [1, 2, 1, 5], [8, 16, 1, 1], [2, 5, 4, 4]] as const) {
      const p = { n, c, h, w, oh: 1, ow: 1 };
      const dy = randArray(11, n * c);
      [NaN, Infinity, -Infinity, -0].forEach((v, k) => (dy[(3 * k) % dy.length] = v));
      const want = new Float32Array(n * c * h * w);
      adaptiveAvgPool2dBackward(want, dy, p);
      const got = new Float32Array(want.length).fill(9);
      globalAvgPool2dBackward(got, dy, p);
      assertIdentical(`global backward [${n},${c},${h},${w}]`, got, want);
    }
  });
  it('global pooling 7×7 → 1×1 over 2 planes', () => {
    const x = randArray(3, 2 * 49);
    const y = new Float32Array(2);
    adaptiveAvgPool2dForward(y, x, { n: 1, c: 2, h: 7, w: 7, oh: 1, ow: 1 });
    for (let pl = 0; pl < 2; pl++) {
      let s = 0;
      for (let i = 0; i < 49; i++) s += x[pl * 49 + i]!;
      expect(y[pl]).toBe(Math.fround(s / 49));
    }
  });
});

// ---- brute-force references: every kernel tap, PyTorch's rules restated per element -----------------------

function maxRef(x: Float32Array, p: PoolParams): { y: Float64Array; am: Int32Array } {
  const { n, c, h, w, kh, kw, strideH, strideW, padH, padW, dilH, dilW, oh, ow } = p;
  const y = new Float64Array(n * c * oh * ow), am = new Int32Array(y.length);
  for (let pl = 0; pl < n * c; pl++)
    for (let oy = 0; oy < oh; oy++)
      for (let ox = 0; ox < ow; ox++) {
        let best = -Infinity, idx = -1;
        for (let ky = 0; ky < kh; ky++)
          for (let kx = 0; kx < kw; kx++) {
            const iy = oy * strideH - padH + ky * dilH, ix = ox * strideW - padW + kx * dilW;
            if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue; // −∞ padding never wins
            const v = x[pl * h * w + iy * w + ix]!;
            // the first tap inside the input always counts (even −∞); later ones must be greater, or NaN
            if (idx < 0 || v > best || Number.isNaN(v)) {
              idx = iy * w + ix;
              best = v;
            }
          }
        y[pl * oh * ow + oy * ow + ox] = best;
        am[pl * oh * ow + oy * ow + ox] = idx;
      }
  return { y, am };
}

function avgRef(x: Float32Array, p: AvgPoolParams): Float64Array {
  const { n, c, h, w, kh, kw, strideH, strideW, padH, padW, oh, ow } = p;
  const y = new Float64Array(n * c * oh * ow);
  for (let pl = 0; pl < n * c; pl++)
    for (let oy = 0; oy < oh; oy++)
      for (let ox = 0; ox < ow; ox++) {
        let s = 0, inInput = 0, inPadded = 0;
        for (let ky = 0; ky < kh; ky++)
          for (let kx = 0; kx < kw; kx++) {
            const iy = oy * strideH - padH + ky, ix = ox * strideW - padW + kx;
            if (iy < h + padH && ix < w + padW) inPadded++; // taps past in + pad (ceil mode) are not counted
            if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
            inInput++;
            s += x[pl * h * w + iy * w + ix]!;
          }
        const div = p.divisorOverride ?? (p.countIncludePad ? inPadded : inInput);
        y[pl * oh * ow + oy * ow + ox] = inInput === 0 ? 0 : s / div;
      }
  return y;
}

const poolSpec = fc
  .record({
    n: fc.integer({ min: 1, max: 2 }),
    c: fc.integer({ min: 1, max: 3 }),
    h: fc.integer({ min: 1, max: 10 }),
    w: fc.integer({ min: 1, max: 10 }),
    kh: fc.integer({ min: 1, max: 4 }),
    kw: fc.integer({ min: 1, max: 4 }),
    sh: fc.integer({ min: 1, max: 3 }),
    sw: fc.integer({ min: 1, max: 3 }),
    ph: fc.integer({ min: 0, max: 2 }),
    pw: fc.integer({ min: 0, max: 2 }),
    dh: fc.integer({ min: 1, max: 3 }),
    dw: fc.integer({ min: 1, max: 3 }),
    ceil: fc.boolean(),
    seed: fc.integer({ min: 0, max: 1e9 }),
  })
  // PyTorch's own constraints: pad ≤ k/2, and at least one output
  .filter((r) => 2 * r.ph <= r.kh && 2 * r.pw <= r.kw)
  .filter((r) => poolOutSize(r.h, r.kh, r.sh, r.ph, r.dh, r.ceil) >= 1 && poolOutSize(r.w, r.kw, r.sw, r.pw, r.dw, r.ceil) >= 1);

describe('pooling vs brute-force references (fast-check)', () => {
  it('max pool forward (values, argmax) and backward, with dilation, ceil mode, ties and NaNs', () => {
    fc.assert(
      fc.property(poolSpec, (r) => {
        const p = params(r);
        const xs = p.n * p.c * p.h * p.w, ys = p.n * p.c * p.oh * p.ow;
        // coarse values so ties are common; a few NaNs
        const x = randArray(r.seed, xs, 0, 4).map(Math.floor);
        if (r.seed % 3 === 0) x[r.seed % xs] = NaN;
        const y = new Float32Array(ys), am = new Int32Array(ys);
        maxPool2dForward(y, am, x, p);
        const ref = maxRef(x, p);
        const what = JSON.stringify(r);
        assertClose(`max fwd ${what}`, y, ref.y, { atol: 0, rtol: 0 });
        expect(Array.from(am), `argmax ${what}`).toEqual(Array.from(ref.am));
        // The values-only (inference) kernel: the same bits.
        const yv = new Float32Array(ys).fill(7);
        maxPool2dForwardValues(yv, x, p);
        expect(Array.from(yv), `values-only ${what}`).toEqual(Array.from(y));
        const dy = randArray(r.seed + 1, ys), dx = randArray(r.seed + 2, xs), dxr = Float64Array.from(dx);
        maxPool2dBackward(dx, dy, am, p);
        for (let pl = 0; pl < p.n * p.c; pl++)
          for (let j = 0; j < p.oh * p.ow; j++) {
            const idx = ref.am[pl * p.oh * p.ow + j]!;
            if (idx >= 0) dxr[pl * p.h * p.w + idx]! += dy[pl * p.oh * p.ow + j]!;
          }
        assertClose(`max bwd ${what}`, dx, dxr);
      }),
      { seed: 42, numRuns: 300 },
    );
  });

  it('3×3 stride-2 max pool, values and argmax (the SIMD kernels where there are): the JavaScript kernel\'s bits and indices, NaN payloads and −0 included', () => {
    // Sizes whose vectors of 4 outputs fit a row exactly, leave 1–3 columns over (the overlapping last vector), or
    // none at all; odd and even sides, padding 0 and 1, ceil mode. A third of the values are ±0 (ties of different
    // bits), a tenth NaNs of distinct payloads and both signs.
    const shapes: [number, number, number, number, boolean][] = [
      [112, 112, 1, 1, false], [17, 19, 1, 1, false], [16, 18, 0, 0, true], [9, 10, 1, 0, true], [5, 25, 0, 1, false],
      [3, 3, 0, 0, false], [4, 9, 1, 1, true], [33, 8, 1, 1, false],
    ];
    for (const [h, w, ph, pw, ceil] of shapes) {
      const p = params({ n: 2, c: 3, h, w, kh: 3, kw: 3, sh: 2, sw: 2, ph, pw, dh: 1, dw: 1, ceil });
      const x = randArray(h * w + ph, p.n * p.c * h * w, -2, 2).map(Math.round);
      const bits = new Int32Array(x.buffer);
      for (let i = 0; i < x.length; i++) {
        const r = (i * 2654435761) % 30;
        if (r < 3) bits[i] = (0x7fc00001 + i) | (r === 0 ? 0x80000000 : 0);
        else if (r < 8) x[i] = -0;
        else if (r < 13) x[i] = 0;
      }
      const ys = p.n * p.c * p.oh * p.ow;
      const y = new Float32Array(ys), am = new Int32Array(ys), yv = new Float32Array(ys).fill(7);
      const yj = new Float32Array(ys), amj = new Int32Array(ys).fill(-7);
      maxPool2dForward(y, am, x, p);
      maxPool2dForwardValues(yv, x, p);
      withConfig({ kernelBackend: 'js' }, () => maxPool2dForward(yj, amj, x, p));
      const a = new Int32Array(y.buffer), b = new Int32Array(yv.buffer), j = new Int32Array(yj.buffer);
      const what = `${h}×${w} pad ${ph},${pw} ceil ${ceil}`;
      expect(a.findIndex((v, i) => v !== j[i]), `${what}: first output differing from the JavaScript kernel's`).toBe(-1);
      expect(b.findIndex((v, i) => v !== j[i]), `${what}: first values-only output differing from the JavaScript kernel's`).toBe(-1);
      expect(am.findIndex((v, i) => v !== amj[i]), `${what}: first argmax differing from the JavaScript kernel's`).toBe(-1);
    }
  });

  it('avg pool forward matches the tap-counting reference; backward is its adjoint', () => {
    fc.assert(
      fc.property(poolSpec, fc.boolean(), fc.option(fc.integer({ min: 1, max: 7 })), (r, cip, div) => {
        const p: AvgPoolParams = { ...params({ ...r, dh: 1, dw: 1 }), countIncludePad: cip };
        if (div !== null) p.divisorOverride = div;
        const xs = p.n * p.c * p.h * p.w, ys = p.n * p.c * p.oh * p.ow;
        const x = randArray(r.seed, xs);
        const y = new Float32Array(ys);
        avgPool2dForward(y, x, p);
        const what = JSON.stringify(p);
        assertClose(`avg fwd ${what}`, y, avgRef(x, p));
        // ⟨avg(x), dy⟩ = ⟨x, avgᵀ(dy)⟩ — checked in float64 on the reference forward
        const dy = randArray(r.seed + 1, ys), dx = new Float32Array(xs);
        avgPool2dBackward(dx, dy, p);
        const yr = avgRef(x, p);
        let lhs = 0, rhs = 0, mag = 0;
        for (let i = 0; i < ys; i++) { lhs += yr[i]! * dy[i]!; mag += Math.abs(yr[i]! * dy[i]!); }
        for (let i = 0; i < xs; i++) rhs += x[i]! * dx[i]!;
        expect(Math.abs(lhs - rhs), `avg adjoint ${what}: ${lhs} vs ${rhs}`).toBeLessThan(1e-5 * Math.max(1, mag));
      }),
      { seed: 42, numRuns: 300 },
    );
  });

  it('adaptive avg pool: forward vs a per-bin reference, backward is its adjoint', () => {
    const spec = fc.record({
      n: fc.integer({ min: 1, max: 2 }), c: fc.integer({ min: 1, max: 3 }),
      h: fc.integer({ min: 1, max: 12 }), w: fc.integer({ min: 1, max: 12 }),
      oh: fc.integer({ min: 1, max: 9 }), ow: fc.integer({ min: 1, max: 9 }), seed: fc.integer({ min: 0, max: 1e9 }),
    });
    fc.assert(
      fc.property(spec, (p) => {
        const xs = p.n * p.c * p.h * p.w, ys = p.n * p.c * p.oh * p.ow;
        const x = randArray(p.seed, xs);
        const y = new Float32Array(ys);
        adaptiveAvgPool2dForward(y, x, p);
        // reference: bin i covers rows r with r·oH < (i+1)·H and (r+1)·oH > i·H (integer arithmetic only)
        const yr = new Float64Array(ys);
        for (let pl = 0; pl < p.n * p.c; pl++)
          for (let i = 0; i < p.oh; i++)
            for (let j = 0; j < p.ow; j++) {
              let s = 0, cnt = 0;
              for (let r = 0; r < p.h; r++) {
                if (!(r * p.oh < (i + 1) * p.h && (r + 1) * p.oh > i * p.h)) continue;
                for (let q = 0; q < p.w; q++) {
                  if (!(q * p.ow < (j + 1) * p.w && (q + 1) * p.ow > j * p.w)) continue;
                  s += x[pl * p.h * p.w + r * p.w + q]!;
                  cnt++;
                }
              }
              yr[pl * p.oh * p.ow + i * p.ow + j] = s / cnt;
            }
        assertClose(`adaptive fwd ${JSON.stringify(p)}`, y, yr);
        const dy = randArray(p.seed + 1, ys), dx = new Float32Array(xs);
        adaptiveAvgPool2dBackward(dx, dy, p);
        let lhs = 0, rhs = 0, mag = 0;
        for (let i = 0; i < ys; i++) { lhs += yr[i]! * dy[i]!; mag += Math.abs(yr[i]! * dy[i]!); }
        for (let i = 0; i < xs; i++) rhs += x[i]! * dx[i]!;
        expect(Math.abs(lhs - rhs), `adaptive adjoint ${JSON.stringify(p)}`).toBeLessThan(1e-5 * Math.max(1, mag));
      }),
      { seed: 42, numRuns: 200 },
    );
  });
});
