/** relu / softmax / logSoftmax (issue 3) against PyTorch fixtures: test/fixtures/ops/activation.json. */
import { describe, expect, it } from 'vitest';
import { nn, tensor } from '../../src/index.js';
import { fixtureSuite } from '../helpers/fixtures.js';

const F = nn.functional;

fixtureSuite('activation', {
  relu_2x3x4: ['F.relu x=[2,3,4]', (x) => F.relu(x)],
  // forward: NaN stays NaN. backward: torch 1.13 passes dy through at NaN (its mask is `out <= 0`, false for NaN)
  relu_nan: ['F.relu x=[2,3] with NaN (propagates)', (x) => F.relu(x)],
  softmax_dim1: ['softmax x=[3,5] dim=1', (x) => F.softmax(x, 1)],
  softmax_dim0: ['softmax x=[3,5] dim=0', (x) => F.softmax(x, 0)],
  softmax_3d_dim1: ['softmax x=[2,3,4] dim=1', (x) => F.softmax(x, 1)],
  softmax_3d_dim_neg1: ['softmax x=[2,3,4] dim=-1', (x) => F.softmax(x, -1)],
  softmax_large_logits: ['softmax x=[2,6]·40 dim=1 (large logits)', (x) => F.softmax(x, 1)],
  softmax_extreme: ['softmax [[1000,0,-1000],[-5,3,1]] dim=1', (x) => F.softmax(x, 1)],
  log_softmax_dim1: ['logSoftmax x=[3,5] dim=1', (x) => F.logSoftmax(x, 1)],
  log_softmax_dim0: ['logSoftmax x=[3,5] dim=0', (x) => F.logSoftmax(x, 0)],
  log_softmax_3d_dim1: ['logSoftmax x=[2,3,4] dim=1', (x) => F.logSoftmax(x, 1)],
  log_softmax_3d_dim_neg1: ['logSoftmax x=[2,3,4] dim=-1', (x) => F.logSoftmax(x, -1)],
  log_softmax_extreme: ['logSoftmax [[1000,0,-1000],[-5,3,1]] dim=1 (finite)', (x) => F.logSoftmax(x, 1)],
});

describe('relu on special float32 values (bit-pattern implementation vs the plain definition)', () => {
  it('forward keeps positives and every NaN, gives +0 for −0, negatives and −inf; backward passes where y is not +0', () => {
    const f32 = new Float32Array(1);
    const i32 = new Int32Array(f32.buffer);
    const negNaN = (() => { i32[0] = 0xffc00001 | 0; return f32[0]!; })();
    const vals = [0, -0, 1, -1, 3.5e38, -3.5e38, Infinity, -Infinity, NaN, negNaN, 1e-45, -1e-45, 1.2e-38, -1.2e-38, 0.5, -0.5];
    const x = tensor(vals, [vals.length], { requiresGrad: true });
    const y = F.relu(x);
    for (let i = 0; i < vals.length; i++) {
      const v = Math.fround(vals[i]!);
      const want = v > 0 || v !== v ? v : 0;
      if (Number.isNaN(want)) expect(Number.isNaN(y.data[i]), `relu(${vals[i]})`).toBe(true);
      else expect(Object.is(y.data[i], want), `relu(${vals[i]}) = ${y.data[i]}`).toBe(true);
    }
    const dy = tensor(vals.map((_, i) => i + 1), [vals.length]);
    y.backward(dy);
    for (let i = 0; i < vals.length; i++) {
      const yv = y.data[i]!;
      const want = yv <= 0 ? 0 : i + 1;
      expect(Object.is(x.grad!.data[i], want), `grad at ${vals[i]}: ${x.grad!.data[i]}`).toBe(true);
    }
  });
});
