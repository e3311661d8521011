/**
 * The option-A shortcut kernels against a reference written element by element from the definition
 * y[i, before + ch, r, q] = x[i, ch, r·s, q·s] (zero elsewhere): bit for bit, with NaN, ±Inf and −0 in the data, for
 * strides 1–3, odd sizes and zero channels on either side; the backward both overwriting and accumulating; y and dx
 * on plain arrays and in the resident memory (a training step's case: the zeros written there by wasm).
 */
import { describe, expect, it } from 'vitest';
import { shortcutABackward, shortcutAForward, type ShortcutParams } from '../../src/kernels/shortcut.js';
import { hasSimd128 } from '../../src/kernels/wasm/features.js';
import { residentAlloc, residentMemory } from '../../src/kernels/wasm/optim.js';
import { assertIdentical, randArray } from './compare.js';

function params(n: number, c: number, h: number, w: number, oc: number, stride: number): ShortcutParams {
  return { n, c, h, w, oc, oh: Math.ceil(h / stride), ow: Math.ceil(w / stride), stride, before: Math.floor((oc - c) / 2) };
}

/** Calls f(k, s) for every element k of y (flat index), with s the flat index in x it copies, or −1 (a zero channel). */
function eachOutput(p: ShortcutParams, f: (k: number, s: number) => void): void {
  for (let i = 0; i < p.n; i++)
    for (let o = 0; o < p.oc; o++)
      for (let r = 0; r < p.oh; r++)
        for (let q = 0; q < p.ow; q++) {
          const ch = o - p.before;
          const s = ch < 0 || ch >= p.c ? -1 : ((i * p.c + ch) * p.h + r * p.stride) * p.w + q * p.stride;
          f(((i * p.oc + o) * p.oh + r) * p.ow + q, s);
        }
}

/** Random data with a NaN, +Inf, −Inf and −0 planted. */
function data(seed: number, len: number): Float32Array {
  const a = randArray(seed, len);
  const special = [NaN, Infinity, -Infinity, -0];
  special.forEach((v, k) => (a[(k * 7919 + seed) % len] = v));
  return a;
}

const CASES: [string, ShortcutParams][] = [
  ['CIFAR 16→32 s2 [2,16,8,8]', params(2, 16, 8, 8, 32, 2)],
  ['odd 5→9 s2 [2,5,5,7] (2 channels before, 2 after)', params(2, 5, 5, 7, 9, 2)],
  ['3→8 s1 [3,3,4,4] (2 before, 3 after)', params(3, 3, 4, 4, 8, 1)],
  ['4→4 s3 [1,4,7,5] (no zero channels)', params(1, 4, 7, 5, 4, 3)],
  ['1→2 s2 [2,1,1,1]', params(2, 1, 1, 1, 2, 2)],
];

/** A Float32Array of len floats filled with v: plain, or in the resident memory. */
function filled(len: number, v: number, inResident: boolean): Float32Array {
  const a = inResident ? residentAlloc(len)! : new Float32Array(len);
  return a.fill(v);
}

describe('shortcutA kernels vs the definition', () => {
  it('has a resident memory where wasm SIMD and SharedArrayBuffer are', () => {
    if (hasSimd128 && typeof SharedArrayBuffer === 'function') expect(residentMemory()).not.toBeNull();
  });
  for (const [where, name, p] of CASES.flatMap(([nm, q]) => [['plain', nm, q], ['resident', nm, q]] as const)) {
    const inResident = where === 'resident';
    if (inResident && residentMemory() === null) continue;
    const xLen = p.n * p.c * p.h * p.w, yLen = p.n * p.oc * p.oh * p.ow;
    it(`${name} (${where}): forward`, () => {
      const x = data(1, xLen);
      const y = filled(yLen, 5, inResident); // stale contents must not survive
      shortcutAForward(y, x, p);
      const ref = new Float32Array(yLen);
      eachOutput(p, (k, s) => (ref[k] = s < 0 ? 0 : x[s]!));
      assertIdentical(`${name} y`, y, ref);
    });

    it(`${name} (${where}): backward, overwriting and accumulating`, () => {
      const dy = data(2, yLen), old = data(3, xLen);
      const sent = new Float32Array(xLen); // the gradient the shortcut sends x: dy where x was read, else 0
      const read = new Uint8Array(xLen);
      eachOutput(p, (k, s) => {
        if (s < 0) return;
        sent[s] = dy[k]!;
        read[s] = 1;
      });
      const over = filled(xLen, 7, inResident);
      shortcutABackward(over, dy, p, true);
      assertIdentical(`${name} dx overwritten`, over, sent);
      const acc = filled(xLen, 0, inResident);
      acc.set(old);
      shortcutABackward(acc, dy, p, false);
      // float32 addition where x was read; untouched elsewhere (so a −0 there stays −0)
      const ref = old.map((v, k) => (read[k] ? Math.fround(v + sent[k]!) : v));
      assertIdentical(`${name} dx accumulated`, acc, ref);
    });
  }
});
