/**
 * Bad inputs, table-driven: each row calls an op wrongly and asserts the error class AND message fragments that name
 * the op and the shapes involved (STYLE rule 5). Fragments only, so the wording around them may change.
 */
import { describe, expect, it } from 'vitest';
import {
  add, AllocationError, AutogradError, cat, expand, matmul, mul, nn, ones, permute, reshape, ShapeError, sum, tensor, Tensor, ValueError,
  zeros,
} from '../../src/index.js';

const F = nn.functional;
type ErrorClass = new (...args: never[]) => Error;
type Row = [name: string, call: () => unknown, cls: ErrorClass, fragments: string[]];

const z = (...shape: number[]): Tensor => zeros(shape);
const g = (...shape: number[]): Tensor => ones(shape, { requiresGrad: true });

const rows: Row[] = [
  // ---- conv2d
  ['conv2d input [1,4,224,224] with weight [64,3,7,7]: channel mismatch', () => F.conv2d(z(1, 4, 224, 224), z(64, 3, 7, 7)), ShapeError,
    ['[conv2d]', 'expected input[1, 4, 224, 224] to have 3 channels', '[64, 3, 7, 7]']],
  ['conv2d 2-D input [8,8]', () => F.conv2d(z(8, 8), z(4, 3, 3, 3)), ShapeError, ['[conv2d]', '[8, 8]']],
  ['conv2d 5-D input [1,1,3,8,8]', () => F.conv2d(z(1, 1, 3, 8, 8), z(4, 3, 3, 3)), ShapeError, ['[conv2d]', '[1, 1, 3, 8, 8]']],
  ['conv2d 3-D weight [4,3,3]', () => F.conv2d(z(1, 3, 8, 8), z(4, 3, 3)), ShapeError, ['[conv2d]', '[4, 3, 3]']],
  ['conv2d kernel 5×5 larger than padded input 2×2 + p=1', () => F.conv2d(z(1, 1, 2, 2), z(1, 1, 5, 5), null, { padding: 1 }), ShapeError,
    ['[conv2d]', '[1, 1, 2, 2]', '[1, 1, 5, 5]']],
  ['conv2d bias [3] for 4 output channels', () => F.conv2d(z(1, 3, 5, 5), z(4, 3, 3, 3), z(3)), ShapeError, ['[conv2d]', '[3]', '[4, 3, 3, 3]']],
  ['conv2d stride 0', () => F.conv2d(z(1, 3, 5, 5), z(4, 3, 3, 3), null, { stride: 0 }), ValueError, ['[conv2d]', 'stride', '[1, 3, 5, 5]']],
  ['conv2d stride -1', () => F.conv2d(z(1, 3, 5, 5), z(4, 3, 3, 3), null, { stride: -1 }), ValueError, ['[conv2d]', 'stride']],
  ['conv2d dilation 0', () => F.conv2d(z(1, 3, 5, 5), z(4, 3, 3, 3), null, { dilation: 0 }), ValueError, ['[conv2d]', 'dilation']],
  ['conv2d groups 0', () => F.conv2d(z(1, 3, 5, 5), z(4, 3, 3, 3), null, { groups: 0 }), ValueError, ['[conv2d]', 'groups']],
  ['conv2d groups 1.5', () => F.conv2d(z(1, 3, 5, 5), z(4, 3, 3, 3), null, { groups: 1.5 }), ValueError, ['[conv2d]', 'groups']],
  ['conv2d negative padding', () => F.conv2d(z(1, 3, 5, 5), z(4, 3, 3, 3), null, { padding: -1 }), ValueError, ['[conv2d]', 'padding']],
  ['conv2d input channels 5 not divisible by groups 2', () => F.conv2d(z(1, 5, 5, 5), z(4, 2, 3, 3), null, { groups: 2 }), ShapeError,
    ['[conv2d]', '[1, 5, 5, 5]', '[4, 2, 3, 3]']],
  ['conv2d output channels 3 not divisible by groups 2', () => F.conv2d(z(1, 4, 5, 5), z(3, 2, 3, 3), null, { groups: 2 }), ShapeError,
    ['[conv2d]', '[3, 2, 3, 3]']],
  ["conv2d padding 'same' with stride 2", () => F.conv2d(z(1, 3, 5, 5), z(4, 3, 3, 3), null, { padding: 'same', stride: 2 }), ValueError,
    ['[conv2d]', 'same']],
  // ---- pooling
  ['maxPool2d k=3 on 2×2 input: output size < 1', () => F.maxPool2d(z(1, 1, 2, 2), { kernelSize: 3 }), ShapeError, ['[maxPool2d]', '[1, 1, 2, 2]']],
  ['avgPool2d k=3 on 2×2 input: output size < 1', () => F.avgPool2d(z(1, 1, 2, 2), { kernelSize: 3 }), ShapeError, ['[avgPool2d]', '[1, 1, 2, 2]']],
  ['maxPool2d padding 2 > kernel 2 / 2', () => F.maxPool2d(z(1, 1, 8, 8), { kernelSize: 2, padding: 2 }), ValueError, ['[maxPool2d]', 'half']],
  ['avgPool2d padding 2 > kernel 3 / 2', () => F.avgPool2d(z(1, 1, 8, 8), { kernelSize: 3, padding: 2 }), ValueError, ['[avgPool2d]', 'half']],
  ['maxPool2d stride 0', () => F.maxPool2d(z(1, 1, 8, 8), { kernelSize: 2, stride: 0 }), ValueError, ['[maxPool2d]', 'stride']],
  ['maxPool2d kernel 0', () => F.maxPool2d(z(1, 1, 8, 8), { kernelSize: 0 }), ValueError, ['[maxPool2d]', 'kernel']],
  ['maxPool2d 2-D input [8,8]', () => F.maxPool2d(z(8, 8), { kernelSize: 2 }), ShapeError, ['[maxPool2d]', '[8, 8]']],
  ['adaptiveAvgPool2d output size 0', () => F.adaptiveAvgPool2d(z(1, 1, 4, 4), 0), ValueError, ['[adaptiveAvgPool2d]']],
  // ---- batchNorm2d
  ['batchNorm2d training with one value per channel [1,3,1,1]',
    () => F.batchNorm2d(z(1, 3, 1, 1), z(3), ones([3]), null, null, { training: true }), ValueError,
    ['[batchNorm2d]', 'Expected more than 1 value per channel when training', '[1, 3, 1, 1]']],
  ['batchNorm2d weight [4] for 3 channels', () => F.batchNorm2d(z(2, 3, 4, 4), z(3), ones([3]), z(4), z(3), { training: true }), ShapeError,
    ['[batchNorm2d]', '[4]', '[2, 3, 4, 4]']],
  ['batchNorm2d running_mean [2] for 3 channels', () => F.batchNorm2d(z(2, 3, 4, 4), z(2), ones([3])), ShapeError,
    ['[batchNorm2d]', '[2]', '[2, 3, 4, 4]']],
  // ---- losses / linear / matmul
  ['crossEntropy target 3 out of range for 3 classes', () => F.crossEntropy(z(2, 3), [0, 3]), ValueError, ['[crossEntropy]', '3', '[2, 3]']],
  ['crossEntropy target -1 (not ignoreIndex)', () => F.crossEntropy(z(2, 3), [-1, 0]), ValueError, ['[crossEntropy]', '-1', '[2, 3]']],
  ['crossEntropy logits [2,3] with 3 targets: batch mismatch', () => F.crossEntropy(z(2, 3), [0, 1, 2]), ShapeError,
    ['[crossEntropy]', '[2, 3]', '[3]']],
  ['crossEntropy class weight [4] for 3 classes', () => F.crossEntropy(z(2, 3), [0, 1], { weight: z(4) }), ShapeError, ['[crossEntropy]', '[4]', '[2, 3]']],
  ["crossEntropy reduction 'avg'", () => F.crossEntropy(z(2, 3), [0, 1], { reduction: 'avg' as 'mean' }), ValueError, ['[crossEntropy]', 'avg']],
  ['nllLoss input [2,3] with 1 target: batch mismatch', () => F.nllLoss(z(2, 3), [0]), ShapeError, ['[nllLoss]', '[2, 3]', '[1]']],
  ['linear x [2,5] with weight [3,4]', () => F.linear(z(2, 5), z(3, 4)), ShapeError, ['[linear]', '[2, 5]', '[3, 4]']],
  ['matmul [2,3] @ [4,5]', () => matmul(z(2, 3), z(4, 5)), ShapeError, ['[matmul]', '[2, 3]', '[4, 5]']],
  ['matmul batch dims [2,3,4] @ [3,4,5] do not broadcast', () => matmul(z(2, 3, 4), z(3, 4, 5)), ShapeError, ['[matmul]', '[2, 3, 4]', '[3, 4, 5]']],
  ['shortcutA out channels 2 < in channels 4', () => F.shortcutA(z(1, 4, 4, 4), 2, 1), ShapeError, ['[shortcutA]', '[1, 4, 4, 4]']],
  // ---- broadcasting and shape ops
  ['add [2,3] + [2,4]: broadcasting mismatch', () => add(z(2, 3), z(2, 4)), ShapeError,
    ['[add]', 'The size of tensor a (3) must match the size of tensor b (4)', '[2, 3]', '[2, 4]']],
  ['mul [3] * [4]: broadcasting mismatch', () => mul(z(3), z(4)), ShapeError, ['[mul]', 'The size of tensor a (3) must match the size of tensor b (4)']],
  ['reshape [2,3] → [4,2]', () => reshape(z(2, 3), [4, 2]), ShapeError, ['[reshape]', '[2, 3]', '[4, 2]']],
  ['reshape [2,3] → [-1,-1]', () => reshape(z(2, 3), [-1, -1]), ShapeError, ['[reshape]', '[-1, -1]']],
  ['reshape [2,3] → [-1,4]', () => reshape(z(2, 3), [-1, 4]), ShapeError, ['[reshape]', '[2, 3]', '[-1, 4]']],
  ['expand [3,2] → [3,4]', () => expand(z(3, 2), [3, 4]), ShapeError, ['[expand]', '[3, 2]', '[3, 4]']],
  ['cat [2,3] and [2,4] along dim 0', () => cat([z(2, 3), z(2, 4)], 0), ShapeError, ['[cat]', '[2, 3]', '[2, 4]']],
  ['permute [2,3] with dims [0,0]', () => permute(z(2, 3), [0, 0]), ShapeError, ['[permute]', '[2, 3]']],
  ['sum [2,3] over dim 2: out of range', () => sum(z(2, 3), 2), ShapeError, ['[sum]', '[2, 3]']],
  ['item() of a [2,3] tensor', () => z(2, 3).item(), ShapeError, ['[item]', '[2, 3]']],
  // ---- creation: shapes that are not shapes, sizes that cannot be allocated
  ['tensor(data of 3, shape [2,2])', () => tensor([1, 2, 3], [2, 2]), ShapeError, ['[tensor]', '[2, 2]', '3']],
  ['zeros([-1, 2]): negative dim', () => zeros([-1, 2]), ShapeError, ['[zeros]', '[-1, 2]']],
  ['zeros([1.5, 2]): fractional dim', () => zeros([1.5, 2]), ShapeError, ['[zeros]', '[1.5, 2]']],
  ['zeros([NaN]): NaN dim', () => zeros([NaN]), ShapeError, ['[zeros]', '[NaN]']],
  ['tensor([], [2.5]): fractional dim', () => tensor([], [2.5]), ShapeError, ['[tensor]', '[2.5]']],
  ['zeros([65536, 65537]): over 2^32 elements, refused before allocating', () => zeros([65536, 65537]), AllocationError,
    ['[zeros]', '[65536, 65537]']],
  ['ones([2^31, 4]): over 2^32 elements', () => ones([2 ** 31, 4]), AllocationError, ['[ones]', '[2147483648, 4]']],
  // ---- autograd misuse
  ['backward twice through a freed graph', () => {
    const x = g(2, 3);
    const y = sum(mul(x, x));
    y.backward();
    y.backward();
  }, AutogradError, ['[backward]', 'second time']],
  ['implicit backward on a non-scalar [2,3]', () => mul(g(2, 3), 2).backward(), AutogradError, ['[backward]', 'scalar', '[2, 3]']],
  ['backward with a gradient of shape [3,2] for output [2,3]', () => mul(g(2, 3), 2).backward(z(3, 2)), AutogradError,
    ['[backward]', '[3, 2]', '[2, 3]']],
];

describe('bad inputs throw typed errors naming the op and the shapes', () => {
  for (const [name, call, cls, fragments] of rows) {
    it(name, () => {
      let err: unknown = null;
      try {
        call();
      } catch (e) {
        err = e;
      }
      expect(err, 'expected an error, got none').not.toBeNull();
      const e = err as Error;
      expect(e instanceof cls, `expected ${cls.name}, got ${e.name}: ${e.message}`).toBe(true);
      for (const f of fragments) expect(e.message).toContain(f);
    });
  }
});
