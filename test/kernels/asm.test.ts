/**
 * The asm.js module behind the GEMM and Winograd tiles (src/kernels/asm.ts): its tiles against a plain float64 loop
 * (same summation order, so bit for bit), the heap sizes asm.js accepts, and that V8 really validates the module as
 * asm.js (otherwise it would still give the right results, as ordinary JavaScript, only ~30% slower: a silent
 * regression no other test would see).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { asmGemm, asmHeapBytes } from '../../src/kernels/asm.js';
import { buildDist } from '../reliability/build.js';
import { randArray } from './compare.js';

/** Σ_p a[ia + 4p + i]·b[ib + 4p + j], p ascending, from `start` (the tile's definition, in plain float64). */
function refTile(h: Float64Array, k: number, ia: number, ib: number, i: number, j: number, start: number): number {
  let s = start;
  for (let p = 0; p < k; p++) s += h[ia + 4 * p + i]! * h[ib + 4 * p + j]!;
  return s;
}

// V8 reports a module it refuses as a process warning ("Invalid asm.js: …") when the module is first instantiated,
// which happens in this file's first test: collect them from here on.
const asmWarnings: string[] = [];
process.on('warning', (w) => {
  if (/asm\.js/i.test(w.message)) asmWarnings.push(w.message);
});

describe('asm.js tiles', () => {
  it('block: every 4×4 tile of a 12×8 C block from packed panels (k = 37), from zero and continued (init)', () => {
    const k = 37, mcPad = 12, ncPad = 8;
    const g = asmGemm(1 << 14);
    const h = g.h;
    const aAt = 0, bAt = mcPad * k, cAt = bAt + ncPad * k;
    h.set(randArray(1, mcPad * k), aAt);
    h.set(randArray(2, ncPad * k), bAt);
    g.block(k, mcPad, ncPad, aAt * 8, bAt * 8, cAt * 8, 0);
    const first = h.slice(cAt, cAt + mcPad * ncPad);
    for (let r = 0; r < mcPad; r++) {
      for (let c = 0; c < ncPad; c++) {
        const ia = aAt + (r >> 2) * 4 * k, ib = bAt + (c >> 2) * 4 * k;
        expect(first[r * ncPad + c]).toBe(refTile(h, k, ia, ib, r & 3, c & 3, 0));
      }
    }
    // init = 1: each sum goes on from the C block's value (how a KC slice continues the previous one)
    g.block(k, mcPad, ncPad, aAt * 8, bAt * 8, cAt * 8, 1);
    for (let r = 0; r < mcPad; r++) {
      for (let c = 0; c < ncPad; c++) {
        const ia = aAt + (r >> 2) * 4 * k, ib = bAt + (c >> 2) * 4 * k;
        expect(h[cAt + r * ncPad + c]).toBe(refTile(h, k, ia, ib, r & 3, c & 3, first[r * ncPad + c]!));
      }
    }
  });

  it('wino: 36 tiles from ξ-slices a stride apart, into 36 consecutive 4×4 blocks', () => {
    const k = 5, xiU = 4 * k + 8, xiV = 4 * k + 3;
    const g = asmGemm(1 << 14);
    const h = g.h;
    const uAt = 0, vAt = 36 * xiU, mAt = vAt + 36 * xiV;
    h.set(randArray(3, 36 * xiU), uAt);
    h.set(randArray(4, 36 * xiV), vAt);
    g.wino(k, uAt * 8, xiU * 8, vAt * 8, xiV * 8, mAt * 8);
    for (let xi = 0; xi < 36; xi++) {
      for (let i = 0; i < 4; i++) {
        for (let j = 0; j < 4; j++) {
          expect(h[mAt + xi * 16 + i * 4 + j]).toBe(refTile(h, k, uAt + xi * xiU, vAt + xi * xiV, i, j, 0));
        }
      }
    }
  });

  it('weights: U = G g Gᵀ of 4 channels × ci filters into the A-panel layout, taps in order or rotated 180°', () => {
    // G of F(4×4, 3×3) (Lavin & Gray 2015), and U = G g Gᵀ as a plain float64 matrix product.
    const G = [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6], [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]];
    const ref = (g: number[]): number[] => {
      const u: number[] = [];
      for (let r = 0; r < 6; r++) {
        for (let c = 0; c < 6; c++) {
          let s = 0;
          for (let a = 0; a < 3; a++) for (let b = 0; b < 3; b++) s += G[r]![a]! * g[3 * a + b]! * G[c]![b]!;
          u.push(s);
        }
      }
      return u;
    };
    const ci = 3, xi = 4 * ci + 5; // ξ-slices a stride apart, not packed tight
    const g = asmGemm(1 << 14);
    for (const flip of [0, 1]) {
      const filters = randArray(5 + flip, 4 * ci * 9);
      // not flipped: [lane][ic][9] (icStep 36 bytes, laneStep ci·36); flipped: [ic][lane][9] (144, 36)
      const at = (lane: number, ic: number) => (flip ? ic * 36 + lane * 9 : lane * ci * 9 + ic * 9);
      const src = 1000, dst = 2000;
      g.f.set(filters, src);
      g.h.fill(NaN, dst, dst + 36 * xi);
      g.weights(src * 4, ci, flip ? 144 : 36, flip ? 36 : ci * 36, flip, 4, dst * 8, xi * 8);
      for (let lane = 0; lane < 4; lane++) {
        for (let ic = 0; ic < ci; ic++) {
          const taps = Array.from(filters.subarray(at(lane, ic), at(lane, ic) + 9));
          const u = ref(flip ? taps.reverse() : taps);
          for (let x = 0; x < 36; x++) {
            const got = g.h[dst + x * xi + 4 * ic + lane]!;
            expect(Math.abs(got - u[x]!)).toBeLessThanOrEqual(1e-15 * (1 + Math.abs(u[x]!)));
          }
        }
      }
    }
  });

  it('the heap grows (a new instance over a bigger buffer) and keeps valid asm.js sizes', () => {
    expect(asmHeapBytes(1)).toBe(2 ** 16);
    expect(asmHeapBytes(2 ** 16 + 1)).toBe(2 ** 17);
    expect(asmHeapBytes(2 ** 24)).toBe(2 ** 24);
    expect(asmHeapBytes(2 ** 24 + 1)).toBe(2 ** 25);
    expect(asmHeapBytes(3 * 2 ** 24 + 5)).toBe(4 * 2 ** 24);
    const small = asmGemm(10);
    const big = asmGemm(small.h.length + 1);
    expect(big.h.length).toBeGreaterThan(small.h.length);
    expect(asmGemm(10)).toBe(big); // never shrinks
  });

  it('V8 accepted the module as this test runner compiled it (no "Invalid asm.js" warning)', async () => {
    await new Promise((r) => setTimeout(r, 10)); // warnings are emitted on a later tick
    expect(asmWarnings).toEqual([]);
  });
});

describe('V8 compiles the module as asm.js', () => {
  let root = '';
  beforeAll(() => {
    root = buildDist();
  }, 300_000);

  it('%IsAsmWasmCode is true after the first use (and false with --no-validate-asm, so the check can fail)', () => {
    const script = `import(${JSON.stringify(join(root, 'dist', 'kernels', 'asm.js'))}).then((m) => {
      m.asmGemm(1000).block(0, 0, 0, 0, 0, 0, 0);
      console.log(%IsAsmWasmCode(m.AsmGemmModule));
    });`;
    const run = (flags: string[]) => spawnSync(process.execPath, ['--allow-natives-syntax', ...flags, '-e', script], { encoding: 'utf8', timeout: 60_000 });
    const yes = run([]);
    expect(yes.stderr).toBe('');
    expect(yes.stdout.trim()).toBe('true');
    expect(run(['--no-validate-asm']).stdout.trim()).toBe('false');
  });
});
