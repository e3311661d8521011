/**
 * The weight gradient's column split (`s2rows`, src/kernels/wasm/backward.ts) and Winograd dy transform against scalar
 * references, bit for bit: odd widths, negative column starts, rows above and below the input, and NaN in the memory
 * around the rows (the kernels read whole vectors across a row's ends and must mask those lanes to +0).
 */
import { describe, expect, it } from 'vitest';
import { simdBackward, U_ROW } from '../../src/kernels/wasm/backward.js';
import { hasSimd128 } from '../../src/kernels/wasm/features.js';
import { randArray } from './compare.js';

/** Plane 2c + φ, row r, column j = input (row0 + r, col0 + 2j + φ), 0 outside. */
function splitReference(x: Float32Array, ch: number, hi: number, wi: number, wq: number, hp: number, row0: number, col0: number): Float32Array {
  const out = new Float32Array(ch * 2 * hp * wq);
  for (let c = 0; c < ch; c++) {
    for (let ph = 0; ph < 2; ph++) {
      for (let r = 0; r < hp; r++) {
        for (let j = 0; j < wq; j++) {
          const iy = row0 + r, ix = col0 + 2 * j + ph;
          out[((2 * c + ph) * hp + r) * wq + j] = iy >= 0 && iy < hi && ix >= 0 && ix < wi ? x[(c * hi + iy) * wi + ix]! : 0;
        }
      }
    }
  }
  return out;
}

describe.runIf(hasSimd128)('s2rows as the Winograd weight gradient\'s phase planes (row step 1)', () => {
  const cases: [ch: number, hi: number, wi: number, wq: number, hp: number, row0: number, col0: number][] = [
    [3, 7, 9, 8, 10, -1, -1], // 3×3 pad 1 on 7×9: x planes (txPad + 4 columns)
    [2, 28, 28, 20, 30, -1, -1], // Fashion-MNIST 28×28
    [4, 7, 7, 4, 8, 0, 0], // dy planes of a 7×7 map
    [1, 5, 3, 8, 9, -2, -2], // padding 2, a row narrower than one vector
    [2, 14, 14, 8, 14, 0, 0],
    [2, 10, 17, 12, 12, -2, -2],
  ];
  for (const [ch, hi, wi, wq, hp, row0, col0] of cases) {
    it(`ch ${ch}, ${hi}×${wi} → ${hp}×${wq}, from (${row0}, ${col0})`, () => {
      const x = randArray(ch * 7 + wi, ch * hi * wi);
      const ref = splitReference(x, ch, hi, wi, wq, hp, row0, col0);
      const k = simdBackward(1 << 16);
      // NaN before and after the input; the planes prefilled with NaN too.
      // Planes 4 floats apart (s2rows writes 4 zeros after each).
      const srcAt = 64, dstAt = srcAt + ch * hi * wi + 2 * wq + 64, plane = hp * wq + 4;
      k.f.fill(NaN, 0, dstAt + 2 * ch * plane + 64);
      k.f.set(x, srcAt);
      k.s2rows[1](4 * srcAt, 4 * hi * wi, ch, hi, wi, 4 * dstAt, 8 * plane, 4 * plane, hp, wq, 1, row0, col0);
      const got = new Float32Array(ref.length);
      for (let i = 0; i < 2 * ch; i++) got.set(k.f.subarray(dstAt + i * plane, dstAt + i * plane + hp * wq), i * hp * wq);
      expect(Array.from(new Uint32Array(got.buffer))).toEqual(Array.from(new Uint32Array(ref.buffer)));
    });
  }
});

/** Plane (c, φ): element oy·ow + ox = input (row0 + oy·rowStep, col0 + 2·ox + φ), 0 outside; then four zeros. */
function stride2RowsReference(
  x: Float32Array, ch: number, hi: number, wi: number, phases: number, oh: number, ow: number, rowStep: number, row0: number, col0: number,
): Float32Array[] {
  const planes: Float32Array[] = [];
  for (let c = 0; c < ch; c++) {
    for (let ph = 0; ph < phases; ph++) {
      const out = new Float32Array(oh * ow + 4);
      for (let oy = 0; oy < oh; oy++) {
        for (let ox = 0; ox < ow; ox++) {
          const iy = row0 + oy * rowStep, ix = col0 + 2 * ox + ph;
          out[oy * ow + ox] = iy >= 0 && iy < hi && ix >= 0 && ix < wi ? x[(c * hi + iy) * wi + ix]! : 0;
        }
      }
      planes.push(out);
    }
  }
  return planes;
}

describe.runIf(hasSimd128)('s2rows (stride-2 weight gradient, x rows flattened per map)', () => {
  const cases: [ch: number, hi: number, wi: number, phases: number, oh: number, ow: number, rowStep: number, row0: number, col0: number][] = [
    [3, 28, 28, 3, 14, 14, 2, -1, -1], // Fashion-MNIST 16→32 /2, kernel columns 0, 1, 2
    [2, 28, 28, 2, 14, 14, 2, -1, -1], // … 0 and 1
    [2, 28, 28, 1, 14, 14, 2, 1, 1], // … kernel column 2 alone
    [3, 14, 14, 3, 7, 7, 2, 1, -1], // 7×7 maps, three phases
    [4, 14, 14, 2, 7, 7, 2, 0, -1], // 7×7 maps: rows end mid-vector
    [2, 9, 9, 2, 4, 4, 2, -2, -2], // padding 2
    [1, 7, 17, 3, 3, 8, 2, 0, 0], // no padding, columns past the output row inside the input
    [2, 5, 3, 1, 3, 1, 2, -1, -1], // rows of one output
    [1, 12, 10, 2, 4, 5, 3, 0, -1], // row step 3
    [2, 9, 11, 3, 4, 6, 2, -2, -2], // padding 2, three phases
  ];
  for (const [ch, hi, wi, phases, oh, ow, rowStep, row0, col0] of cases) {
    it(`ch ${ch}, ${hi}×${wi} → ${phases} × ${oh}×${ow}, rows ${row0} + ${rowStep}·oy, columns ${col0} + 2·ox`, () => {
      const x = randArray(ch * 5 + wi, ch * hi * wi);
      const ref = stride2RowsReference(x, ch, hi, wi, phases, oh, ow, rowStep, row0, col0);
      const k = simdBackward(1 << 16);
      // NaN before and after the input and in the planes; planes of one channel apart by phaseBytes, with a gap.
      const srcAt = 64, dstAt = srcAt + ch * hi * wi + 2 * ow + 64, phaseLen = oh * ow + 12, chLen = 3 * phaseLen + 8;
      k.f.fill(NaN, 0, dstAt + ch * chLen + 64);
      k.f.set(x, srcAt);
      k.s2rows[phases - 1]!(4 * srcAt, 4 * hi * wi, ch, hi, wi, 4 * dstAt, 4 * chLen, 4 * phaseLen, oh, ow, rowStep, row0, col0);
      const bits = (a: Float32Array): number[] => Array.from(new Uint32Array(a.slice().buffer));
      for (let c = 0; c < ch; c++) {
        for (let ph = 0; ph < phases; ph++) {
          const at = dstAt + c * chLen + ph * phaseLen;
          expect(bits(k.f.subarray(at, at + oh * ow + 4)), `channel ${c}, phase ${ph}`).toEqual(bits(ref[c * phases + ph]!));
        }
        // The next phase untouched.
        if (phases < 3) expect(Number.isNaN(k.f[dstAt + c * chLen + phases * phaseLen]!)).toBe(true);
      }
    });
  }
});

/** U = A g Aᵀ per 2×2 dy tile (A = [1 0; 1 1; 1 −1; 0 −1]), in float32 as the kernel's adds: [ξ][row][tile]. */
function dyTransformReference(dy: Float32Array, rows: number, oh: number, ow: number, tilesY: number, tilesX: number): Float32Array[] {
  const f = Math.fround;
  const out = Array.from({ length: 16 }, () => new Float32Array(rows * tilesY * tilesX));
  const at = (a: number[], i: number): number => [a[0]!, f(a[0]! + a[1]!), f(a[0]! - a[1]!), -a[1]!][i]!;
  for (let r = 0; r < rows; r++) {
    for (let ty = 0; ty < tilesY; ty++) {
      for (let tx = 0; tx < tilesX; tx++) {
        const g = (a: number, b: number): number => {
          const y = 2 * ty + a, x = 2 * tx + b;
          return y < oh && x < ow ? dy[(r * oh + y) * ow + x]! : 0;
        };
        for (let i = 0; i < 4; i++) {
          const t = [at([g(0, 0), g(1, 0)], i), at([g(0, 1), g(1, 1)], i)];
          for (let j = 0; j < 4; j++) out[4 * i + j]![(r * tilesY + ty) * tilesX + tx] = at(t, j);
        }
      }
    }
  }
  return out;
}

describe.runIf(hasSimd128)('wdy (Winograd weight gradient, dy transform read from dy as given)', () => {
  // Tile rows [ty0, ty1), flattened (tilesX tiles per row, rowBytes = 4·tilesX) into the row-split panel of `dwu`.
  for (const [rows, oh, ow, ty0, ty1] of [[5, 7, 7, 0, 4], [4, 28, 28, 0, 14], [3, 6, 9, 1, 3], [8, 14, 14, 2, 7], [1, 3, 1, 0, 2]] as const) {
    it(`${rows} rows of ${oh}×${ow}, tile rows ${ty0}…${ty1 - 1}`, () => {
      const tilesY = Math.ceil(oh / 2), tilesX = Math.ceil(ow / 2), vecs = Math.ceil(tilesX / 4);
      const dy = randArray(rows * 13 + ow, rows * oh * ow);
      const ref = dyTransformReference(dy, rows, oh, ow, tilesY, tilesX);
      const own = (ty1 - ty0) * tilesX, overhang = 4 * vecs - tilesX;
      const tileBytes = 4 * U_ROW + 64, xiBytes = Math.ceil(rows / 4) * tileBytes + 64;
      const k = simdBackward(1 << 21);
      const srcAt = 64, dstAt = srcAt + rows * oh * ow + 8 * vecs + 64;
      k.f.fill(NaN, 0, dstAt + (16 * xiBytes) / 4 + 64);
      k.f.set(dy, srcAt);
      k.wdy(4 * srcAt, oh, ow, rows, ty0, ty1, vecs, 4 * dstAt, xiBytes, tileBytes, 4 * tilesX);
      for (let xi = 0; xi < 16; xi++) {
        const got: number[] = [], want: number[] = [];
        for (let r = 0; r < rows; r++) {
          const row = dstAt + (xi * xiBytes + (r >> 2) * tileBytes + (r & 3) * U_ROW) / 4;
          // The range's tiles, then the last vector's tiles past the map (zero).
          for (let t = 0; t < own + overhang; t++) {
            got.push(k.f[row + t]!);
            want.push(t < own ? ref[xi]![(r * tilesY + ty0) * tilesX + t]! : 0);
          }
          // Nothing after them.
          expect(Number.isNaN(k.f[row + own + overhang]!), `ξ = ${xi}, row ${r}`).toBe(true);
        }
        // Same bits (a tile past the map is +0 or −0: A's last row negates).
        expect(got.map((x) => x + 0), `ξ = ${xi}`).toEqual(want.map((x) => x + 0));
      }
    });
  }
});
