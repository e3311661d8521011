/**
 * The generator (src/random.ts) against an independent Python implementation of its documented algorithm
 * (test/fixtures/gen_random.py → test/fixtures/random/streams.json), and its bulk fill against one-at-a-time draws.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Generator, nn, zeros } from '../../src/index.js';

interface Stream {
  uint32: number[];
  uniform: number[];
  normal: number[];
  normal_mean_std: { mean: number; std: number; values: number[] };
}
const streams = JSON.parse(readFileSync(new URL('../fixtures/random/streams.json', import.meta.url), 'utf8')) as Record<string, Stream>;

describe('Generator: the documented algorithm, checked against an independent implementation', () => {
  for (const [name, s] of Object.entries(streams)) {
    const seed = Number(name.split(' ')[1]);
    it(`${name}: uint32 and uniform exactly, normal within 4 ulp (libm sin/cos/log may differ by an ulp)`, () => {
      const g = new Generator(seed);
      expect(s.uint32.map(() => g.nextUint32())).toEqual(s.uint32);
      const gu = new Generator(seed);
      expect(s.uniform.map(() => gu.uniform())).toEqual(s.uniform);
      const gn = new Generator(seed);
      for (const want of s.normal) {
        const got = gn.normal();
        expect(Math.abs(got - want)).toBeLessThanOrEqual(4 * Number.EPSILON * Math.max(1, Math.abs(want)));
      }
      // normal_ (nn.init) on 7 values: float32(mean + std·normal()) in stream order, the last pair half used.
      const t = zeros([7]);
      nn.init.normal_(t, s.normal_mean_std.mean, s.normal_mean_std.std, new Generator(seed));
      s.normal_mean_std.values.forEach((want, i) => expect(Math.abs(t.data[i]! - want)).toBeLessThanOrEqual(1e-7 * Math.abs(want)));
    });
  }

  it('fillNormal gives the bits of repeated normal() calls, whatever the length and a pending spare', () => {
    for (const pending of [false, true]) {
      for (let n = 0; n < 10; n++) {
        const a = new Generator(77), b = new Generator(77);
        if (pending) {
          a.normal();
          b.normal();
        }
        const bulk = new Float32Array(n);
        a.fillNormal(bulk, 0.5, 2);
        const one = Float32Array.from({ length: n }, () => 0.5 + 2 * b.normal());
        expect(Array.from(bulk), `n=${n} pending=${pending}`).toEqual(Array.from(one));
        // and the streams stay in step afterwards (the spare, if any, carries over)
        expect(a.normal()).toBe(b.normal());
        expect(a.getState()).toEqual(b.getState());
      }
    }
  });

  it('getState/setState carry a pending Box–Muller value', () => {
    const g = new Generator(5);
    g.normal();
    const st = g.getState();
    expect(Number.isNaN(st[4])).toBe(false);
    const want = g.normal();
    const h = new Generator(0).setState(st);
    expect(h.normal()).toBe(want);
    const none = new Generator(5).getState();
    expect(Number.isNaN(none[4])).toBe(true);
  });
});
