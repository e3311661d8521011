/**
 * Limits: tensors over 2^32 − 1 elements, shapes whose product overflows, and ops whose OUTPUT would be that large
 * get our AllocationError (or a ShapeError for a shape that is not a shape) before any allocation is attempted.
 * "Before" is measured: every row runs under the allocation meter (./alloc.ts) and may request at most 1 MiB in all
 * before it throws. Shapes are chosen over the limit, never just under it: a 2^31-element float32 tensor would
 * really be allocated (V8 allows typed arrays of 2^32 elements).
 *
 * Not repeated here (test/ops/errors.test.ts): zeros([65536, 65537]), ones([2^31, 4]), negative / fractional /
 * NaN dims.
 */
import { describe, expect, it } from 'vitest';
import {
  add, AllocationError, arange, data, expand, full, Generator, matmul, nn, pad, rand, randn, reshape, ShapeError, tensor, Tensor, zeros,
} from '../../src/index.js';
import { measured } from './alloc.js';
import type { ErrorClass } from './rows.js';

const F = nn.functional;
const z = (...shape: number[]): Tensor => zeros(shape);
const MiB = 2 ** 20;

type LimitRow = [name: string, call: () => unknown, cls: ErrorClass, fragments: readonly string[]];

function runLimitRows(rows: readonly LimitRow[]): void {
  for (const [name, call, cls, fragments] of rows) {
    it(name, () => {
      const m = measured(call);
      expect(m.error, 'expected an error, got none').toBeDefined();
      const e = m.error as Error;
      expect(e instanceof cls, `expected ${cls.name}, got ${e.name}: ${e.message}`).toBe(true);
      for (const f of fragments) expect(e.message, `fragment ${JSON.stringify(f)}`).toContain(f);
      expect(m.bytes, 'bytes requested before the error').toBeLessThanOrEqual(MiB);
      expect(m.ms, 'time to refuse (ms)').toBeLessThan(1000);
    });
  }
}

describe('creation: over 2^32 − 1 elements, or a product that overflows', () => {
  runLimitRows([
    ['full([65536, 65537], 1)', () => full([65536, 65537], 1), AllocationError, ['[full]', '[65536, 65537]', '4295032832']],
    ['rand([65536, 65537])', () => rand([65536, 65537]), AllocationError, ['[rand]', '[65536, 65537]']],
    ['randn([65536, 65537])', () => randn([65536, 65537]), AllocationError, ['[randn]', '[65536, 65537]']],
    ['zeros([2^32]): one past the limit', () => zeros([2 ** 32]), AllocationError, ['[zeros]', '[4294967296]', 'limit of 2^32 - 1']],
    ['tensor([], [65536, 65537]): the shape is checked before the data', () => tensor([], [65536, 65537]), AllocationError, ['[tensor]', '[65536, 65537]']],
    ['new Tensor(empty data, [65536, 65537])', () => new Tensor(new Float32Array(0), [65536, 65537]), AllocationError, ['[Tensor]', '[65536, 65537]']],
    ['arange(2^33)', () => arange(2 ** 33), AllocationError, ['[arange]', '8589934592']],
    ['arange(0, 1, 1e-10): 10^10 steps', () => arange(0, 1, 1e-10), AllocationError, ['[arange]', '10000000000']],
    ['zeros([2^53, 2^53]): 8.1e31 elements', () => zeros([2 ** 53, 2 ** 53]), AllocationError, ['[zeros]', '[9007199254740992, 9007199254740992]']],
    ['zeros([2^1023, 2^1023]): dims beyond 2^53, the product Infinity', () => zeros([2 ** 1023, 2 ** 1023]), AllocationError, ['[zeros]', 'dim 0', 'not a safe integer']],
    ['zeros([Infinity]): not a dim', () => zeros([Infinity]), ShapeError, ['[zeros]', '[Infinity]']],
    ['arange(Infinity)', () => arange(Infinity), ShapeError, ['[arange]', 'Infinity']],
    ['nn.Conv2d(65536, 65536, 3): the weight alone is 3.9e10 elements', () => new nn.Conv2d(65536, 65536, 3), AllocationError, ['[65536, 65536, 3, 3]']],
    ['nn.Linear(65536, 65537)', () => new nn.Linear(65536, 65537), AllocationError, ['[65537, 65536]']],
  ]);
});

describe('ops whose output would be over 2^32 − 1 elements', () => {
  runLimitRows([
    ['reshape [2,3] → [2^32, 2^32]', () => reshape(z(2, 3), [2 ** 32, 2 ** 32]), AllocationError, ['[reshape]', '[4294967296, 4294967296]']],
    ['expand [1,1] → [65536, 65537]', () => expand(z(1, 1), [65536, 65537]), AllocationError, ['[expand]', '[65536, 65537]']],
    ['add [65536,1] + [1,65537]: the broadcast result', () => add(z(65536, 1), z(1, 65537)), AllocationError, ['[65536, 65537]']],
    ['matmul [65536,1] @ [1,65537]', () => matmul(z(65536, 1), z(1, 65537)), AllocationError, ['[matmul]', '4295032832']],
    ['linear [65536,1] by weight [65537,1]', () => F.linear(z(65536, 1), z(65537, 1)), AllocationError, ['[linear]', '4295032832']],
    ['pad [1] by 2^31 on both sides', () => pad(z(1), [2 ** 31, 2 ** 31]), AllocationError, ['[pad]', '4294967297']],
    ['conv2d of a 1×1 image, 65536 filters, padding 300: [1, 65536, 601, 601]', () => F.conv2d(z(1, 1, 1, 1), z(65536, 1, 1, 1), null, { padding: 300 }),
      AllocationError, ['[conv2d]', '23671668736']],
    ['conv2d with padding 2^20 on a 1×1 image', () => F.conv2d(z(1, 1, 1, 1), z(1, 1, 1, 1), null, { padding: 2 ** 20 }), AllocationError, ['[conv2d]']],
    ['adaptiveAvgPool2d of a 1×1 image to 65536×65537', () => F.adaptiveAvgPool2d(z(1, 1, 1, 1), [65536, 65537]), AllocationError,
      ['[adaptiveAvgPool2d]', '4295032832']],
    ['shortcutA from 1 to 2^33 channels', () => F.shortcutA(z(1, 1, 1, 1), 2 ** 33, 1), AllocationError, ['[shortcutA]', '8589934592']],
  ]);
});

describe('data: transforms and batches over 2^32 − 1 elements', () => {
  runLimitRows([
    ['L1 randomCrop(100000, 50000) of [1,1,4,4]', () => data.randomCrop(100000, 50000)(z(1, 1, 4, 4), new Generator(0)), AllocationError,
      ['[randomCrop]', '[1, 1, 100000, 100000]']],
    ['L2 DataLoader batch of one 3×40000×40000 image', () => [...new data.DataLoader({ length: 1, channels: 3, height: 40000, width: 40000, numClasses: 1, images: new Uint8Array(0), labels: new Uint8Array(1) }, { batchSize: 1 })],
      AllocationError, ['[DataLoader]', '[1, 3, 40000, 40000]']],
  ]);
});

describe('the meter sees a real allocation', () => {
  it('zeros([512, 1024]) requests 2 MiB, so a row that allocated first would fail its 1 MiB bound', () => {
    const m = measured(() => zeros([512, 1024]));
    expect(m.error).toBeUndefined();
    expect(m.bytes).toBeGreaterThanOrEqual(2 * MiB);
  });
});
