/**
 * The TypeScript inflate against node:zlib (the reference): the same bytes for every stream zlib accepts, an
 * error for every stream zlib refuses. Streams: zlib's own output over every level, strategy and window size, the
 * IDAT streams of every committed PNG fixture, and thousands of corrupted copies (bit flips, byte overwrites,
 * truncations) of both.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { constants, crc32, deflateSync, inflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { decodePng } from '../../src/io/png.js';
import { inflate, InflateError, setZlibInflate } from '../../src/io/inflate.js';
import { nodeInflate } from '../../src/io/zlib.js';
import { FIXTURES } from './image_fixtures.js';

/** mulberry32: a small seeded generator, so every run tests the same streams. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Data with the statistics that exercise deflate: random bytes, runs, repeats at many distances, text. */
function sample(kind: number, n: number, r: () => number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    if (kind === 0) b[i] = (r() * 256) | 0;
    else if (kind === 1) b[i] = i > 0 && r() < 0.9 ? b[i - 1]! : (r() * 4) | 0;
    else if (kind === 2) b[i] = i >= 300 && r() < 0.7 ? b[i - 1 - ((r() * 300) | 0)]! : 97 + ((r() * 26) | 0);
    else b[i] = (Math.sin(i / 7) * 60 + 128 + r() * 8) | 0;
  }
  return b;
}

/** Runs both inflaters; 'error' when zlib refuses the stream. */
function reference(z: Uint8Array): Uint8Array | 'error' {
  try {
    return new Uint8Array(inflateSync(z));
  } catch {
    return 'error';
  }
}

function ours(z: Uint8Array): Uint8Array | 'error' {
  try {
    return inflate(z);
  } catch (e) {
    if (!(e instanceof InflateError)) throw e;
    return 'error';
  }
}

/** The first difference between two outcomes, or null. */
function compare(z: Uint8Array, what: string): string | null {
  const want = reference(z);
  const got = ours(z);
  if (want === 'error' || got === 'error') {
    return want === got ? null : `${what}: zlib ${want === 'error' ? 'refuses' : `gives ${want.length} bytes`}, ours ${got === 'error' ? 'refuses' : `gives ${got.length} bytes`}`;
  }
  if (want.length !== got.length) return `${what}: ${got.length} bytes, zlib ${want.length}`;
  for (let i = 0; i < want.length; i++) if (want[i] !== got[i]) return `${what}: byte ${i} is ${got[i]}, zlib ${want[i]}`;
  return null;
}

/** The zlib streams inside every committed PNG fixture (IDAT chunks joined). */
function pngStreams(): { name: string; z: Uint8Array }[] {
  const out: { name: string; z: Uint8Array }[] = [];
  for (const f of readdirSync(FIXTURES).filter((f) => f.endsWith('.png')).sort()) {
    const b = new Uint8Array(readFileSync(join(FIXTURES, f)));
    const parts: Uint8Array[] = [];
    for (let p = 8; p + 8 <= b.length; ) {
      const len = ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;
      const type = String.fromCharCode(...b.subarray(p + 4, p + 8));
      if (type === 'IDAT') parts.push(b.subarray(p + 8, p + 8 + len));
      p += 12 + len;
    }
    if (parts.length === 0) continue;
    const z = new Uint8Array(parts.reduce((s, x) => s + x.length, 0));
    let o = 0;
    for (const x of parts) {
      z.set(x, o);
      o += x.length;
    }
    out.push({ name: f, z });
  }
  return out;
}

function zlibStreams(): { name: string; z: Uint8Array }[] {
  const r = rng(1);
  const out: { name: string; z: Uint8Array }[] = [];
  const strategies = [constants.Z_DEFAULT_STRATEGY, constants.Z_FILTERED, constants.Z_HUFFMAN_ONLY, constants.Z_RLE, constants.Z_FIXED];
  for (const n of [0, 1, 17, 1000, 70_000]) {
    for (let kind = 0; kind < 4; kind++) {
      const data = sample(kind, n, r);
      for (let level = 0; level <= 9; level += 3) {
        for (const strategy of strategies) {
          const windowBits = 9 + ((r() * 7) | 0);
          out.push({ name: `n=${n} kind=${kind} level=${level} strategy=${strategy} windowBits=${windowBits}`, z: deflateSync(data, { level, strategy, windowBits }) });
        }
      }
    }
  }
  return out;
}

describe('inflate (TypeScript) gives the bytes node:zlib gives', () => {
  it('zlib output over levels 0..9, every strategy, window sizes 9..15, sizes 0..70000', () => {
    const streams = zlibStreams();
    const bad = streams.map(({ name, z }) => compare(z, name)).filter((m) => m !== null);
    expect(streams.length).toBe(400);
    expect(bad).toEqual([]);
  });

  it('the IDAT streams of every PNG fixture (Pillow and the fixture writer)', () => {
    const streams = pngStreams();
    expect(streams.length).toBeGreaterThan(30);
    const bad = streams.map(({ name, z }) => compare(z, name)).filter((m) => m !== null);
    expect(bad).toEqual([]);
  });

  it('corrupted streams: accepted and refused exactly as zlib does them, same bytes when accepted', () => {
    const r = rng(7);
    const seeds = [...zlibStreams().filter((_, i) => i % 7 === 0), ...pngStreams()].filter(({ z }) => z.length > 4);
    const bad: string[] = [];
    let refused = 0;
    let trials = 0;
    for (const { name, z } of seeds) {
      for (let t = 0; t < 12; t++) {
        const m = z.slice();
        const mode = t % 4;
        let what: string;
        if (mode === 0) {
          const bit = (r() * m.length * 8) | 0;
          m[bit >> 3]! ^= 1 << (bit & 7);
          what = `bit ${bit} flipped`;
        } else if (mode === 1) {
          const at = 2 + ((r() * (m.length - 2)) | 0);
          m[at] = (r() * 256) | 0;
          what = `byte ${at} set to ${m[at]}`;
        } else if (mode === 2) {
          const at = (r() * m.length) | 0;
          what = `cut at ${at}`;
          const msg = compare(m.subarray(0, at), `${name}, ${what}`);
          trials++;
          if (msg) bad.push(msg);
          if (reference(m.subarray(0, at)) === 'error') refused++;
          continue;
        } else {
          // Header bytes: every header zlib rejects (FCHECK, method, window, dictionary) must be rejected here.
          m[(r() * 2) | 0] = (r() * 256) | 0;
          what = 'header byte changed';
        }
        trials++;
        if (reference(m) === 'error') refused++;
        const msg = compare(m, `${name}, ${what}`);
        if (msg) bad.push(msg);
      }
    }
    expect(bad).toEqual([]);
    // Both outcomes occur often enough for the comparison to mean something.
    expect(trials).toBeGreaterThan(1000);
    expect(refused).toBeGreaterThan(trials / 4);
    expect(refused).toBeLessThan(trials);
  });

  it('hand-made edge cases: a single-code distance tree, stored blocks, trailing bytes, empty stream', () => {
    // zlib output with a 1-byte repeated run uses a one-symbol distance code (incomplete, length 1: allowed).
    for (const data of [new Uint8Array(5000).fill(65), new Uint8Array(0), Uint8Array.from({ length: 300 }, (_, i) => i & 255)]) {
      for (const level of [0, 1, 9]) {
        const z = deflateSync(data, { level });
        expect(Array.from(inflate(z))).toEqual(Array.from(data));
        const trailing = new Uint8Array(z.length + 5);
        trailing.set(z);
        expect(compare(trailing, `level ${level} with 5 trailing bytes`)).toBeNull();
      }
    }
  });

  it('maxOutputLength: exactly the size passes, one byte less is a size error', () => {
    const data = sample(2, 5000, rng(3));
    const z = deflateSync(data);
    expect(inflate(z, 5000).length).toBe(5000);
    let err: unknown;
    try {
      inflate(z, 4999);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InflateError);
    expect((err as InflateError).kind).toBe('size');
    expect(() => inflate(Uint8Array.of(0x78, 0x9c, 0x03))).toThrow(/\[inflate\] unexpected end of file/);
    expect(() => inflate(Uint8Array.of(0x78, 0x9d, 0x03, 0x00))).toThrow(/\[inflate\] incorrect header check/);
  });
});

describe('decodePng gives the same result with either inflater', () => {
  it('every PNG fixture, and every one with a byte of its IDAT data changed: same pixels or an error in the same chunk', () => {
    const files = readdirSync(FIXTURES).filter((f) => f.endsWith('.png')).sort();
    const run = (b: Uint8Array) => {
      try {
        const img = decodePng(b);
        return `${img.width}x${img.height}x${img.channels}:${Buffer.from(img.data).toString('base64')}`;
      } catch (e) {
        // Which of two faults is met first (a stream that is both corrupt and too long) may differ: node:zlib
        // inflates in 16 KB pieces and checks the size between them. Both name the IDAT chunk.
        return `error ${(e as Error).message.split(':')[0]}`;
      }
    };
    const r = rng(11);
    let compared = 0;
    let inflateErrors = 0;
    try {
      for (const f of files) {
        const b = new Uint8Array(readFileSync(join(FIXTURES, f)));
        const variants = [b];
        // A byte of the first IDAT chunk's data changed, and the chunk's CRC fixed so that the change reaches inflate.
        const idat = Buffer.from(b).indexOf('IDAT');
        const len = idat > 0 ? new DataView(b.buffer, b.byteOffset).getUint32(idat - 4) : 0;
        for (let k = 0; k < 4 && len > 0; k++) {
          const m = b.slice();
          m[idat + 4 + ((r() * len) | 0)]! ^= 1 << ((r() * 8) | 0);
          new DataView(m.buffer).setUint32(idat + 4 + len, crc32(m.subarray(idat, idat + 4 + len)));
          variants.push(m);
        }
        for (const v of variants) {
          setZlibInflate(null);
          const ts = run(v);
          setZlibInflate(nodeInflate);
          let node: string;
          try {
            node = run(v);
          } finally {
            setZlibInflate(null);
          }
          expect(ts, `${f}`).toBe(node);
          compared++;
          if (ts.startsWith('error [png] IDAT')) inflateErrors++;
        }
      }
    } finally {
      setZlibInflate(null);
    }
    expect(compared).toBeGreaterThan(300);
    expect(inflateErrors, 'corrupted streams that inflate refused').toBeGreaterThan(50);
  });
});

