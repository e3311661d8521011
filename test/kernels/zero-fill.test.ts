/**
 * zeroFill (kernels/elementwise.ts, the step arena's zero fill): zeroes exactly the array's elements, with wasm's
 * memory.fill in the resident memory, an 8-byte view elsewhere in shared memory, and fill(0) otherwise. And
 * zeroGrad(false) zeroes resident gradients in place.
 */
import { describe, expect, it } from 'vitest';
import { zeroFill } from '../../src/kernels/elementwise.js';
import { isResident } from '../../src/kernels/optim.js';
import { hasSimd128 } from '../../src/kernels/wasm/features.js';
import { residentAlloc } from '../../src/kernels/wasm/optim.js';
import { nn, optim, randn, withConfig } from '../../src/index.js';

/** A view of `n` elements at element `at` of a buffer of at + n + 3 elements, all 7 but the view, which gets 1..n. */
function padded(buf: Float32Array, at: number, n: number): Float32Array {
  buf.fill(7);
  const v = new Float32Array(buf.buffer, buf.byteOffset + at * 4, n);
  for (let i = 0; i < n; i++) v[i] = i + 1;
  return v;
}

function check(buf: Float32Array, at: number, n: number): void {
  const v = padded(buf, at, n);
  zeroFill(v);
  for (let i = 0; i < buf.length; i++) {
    const want = i >= at && i < at + n ? 0 : 7;
    if (!Object.is(buf[i], want)) expect.fail(`element ${i} (view ${at}..${at + n}): ${buf[i]}, want ${want}`);
  }
}

describe('zeroFill', () => {
  for (const n of [5, 1023, 1024, 1025, 4099]) {
    for (const at of [0, 1, 2]) {
      it(`${n} elements at offset ${at}: ordinary, shared and resident memory`, () => {
        check(new Float32Array(n + 3 + at), at, n);
        check(new Float32Array(new SharedArrayBuffer((n + 3 + at) * 4)), at, n);
        if (hasSimd128) {
          const r = residentAlloc(n + 3 + at)!;
          expect(isResident(r)).toBe(true);
          check(r, at, n);
        }
      });
    }
  }

  it.runIf(hasSimd128)('zeroGrad(false) zeroes resident gradients in place', () => withConfig({ kernelBackend: 'simd' }, () => {
    const lin = new nn.Linear(64, 48);
    const opt = new optim.SGD(lin.parameters(), { lr: 0.1 });
    lin.forward(randn([3, 64])).sum().backward();
    opt.zeroGrad(false);
    lin.forward(randn([3, 64])).sum().backward();
    const g = lin.weight.grad!;
    expect(isResident(g.data), 'the gradient, after zeroGrad(false)').toBe(true);
    expect(g.data.some((v) => v !== 0)).toBe(true);
    opt.zeroGrad(false);
    expect(lin.weight.grad, 'the same tensor').toBe(g);
    expect(g.data.every((v) => Object.is(v, 0))).toBe(true);
    expect(lin.bias!.grad!.data.every((v) => Object.is(v, 0))).toBe(true);
  }));
});
