import { describe, expect, it } from 'vitest';
import { SPIN_MS, spinWhile } from '../../src/parallel/protocol.js';

// The pool's bounded spin before Atomics.wait (protocol.ts): it returns as soon as the word differs, and gives up
// (false) once SPIN_MS have passed with the word unchanged, so a waiting thread then sleeps.
describe('spinWhile', () => {
  it('returns true at once when the word already differs', () => {
    const ctrl = new Int32Array(new SharedArrayBuffer(16));
    Atomics.store(ctrl, 2, 7);
    expect(spinWhile(ctrl, 2, 6)).toBe(true);
  });

  it('gives up after SPIN_MS when the word stays the same', () => {
    const ctrl = new Int32Array(new SharedArrayBuffer(16));
    Atomics.store(ctrl, 1, 3);
    const t0 = performance.now();
    expect(spinWhile(ctrl, 1, 3)).toBe(false);
    const dt = performance.now() - t0;
    expect(dt).toBeGreaterThanOrEqual(SPIN_MS);
    expect(dt).toBeLessThan(1000);
  });
});
