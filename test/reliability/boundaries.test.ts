/**
 * Strict boundaries: plain-JavaScript misuse of public entry points gets our error naming the function and the
 * argument (never V8's TypeError), nothing is coerced silently (torch.tensor refuses holes, null and strings),
 * results PyTorch gives as NaN are NaN, and errors of ops written in terms of other ops carry the caller's op name.
 */
import { describe, expect, it } from 'vitest';
import {
  add, AllocationError, ArgumentTypeError, AutogradError, cat, io, models, nn, optim, randn, ShapeError, slice, StateDictError, tensor,
  transpose, ValueError, variance, zeros,
} from '../../src/index.js';
import { ImageDecodeError } from '../../src/io/image.js';
import { ResnetTsError } from '../../src/errors.js';
import { expectError, runRows, thrown, type Row } from './rows.js';

const t = zeros([2, 3]);
const any = (v: unknown): never => v as never;
let deep: unknown = [1];
for (let i = 0; i < 20_000; i++) deep = [deep];

describe('misuse from JavaScript: our ArgumentTypeError naming the function and the argument', () => {
  const rows: Row[] = [
    ['model.forward([[...]]) (an array, not a Tensor)', () => models.resnet20().forward(any([[1, 2, 3]])), ArgumentTypeError, ['.forward] x must be a Tensor (N, 3, H, W), got an Array of 1']],
    ["add(t, 'x')", () => add(t, any('x')), ArgumentTypeError, ['[add] other must be a Tensor or a number, got a string "x"']],
    ["add('x', t)", () => add(any('x'), t), ArgumentTypeError, ['[add] input must be a Tensor or a number']],
    ['cat([t, null])', () => cat([t, any(null)]), ArgumentTypeError, ['[cat] tensors[1] must be a Tensor, got null']],
    ['cat(t) (not an array)', () => cat(any(t)), ArgumentTypeError, ['[cat] tensors must be an array of Tensors, got a Tensor of shape [2, 3]']],
    ['backward(1)', () => randn([1], { requiresGrad: true }).mul(2).backward(any(1)), ArgumentTypeError, ['[backward] grad must be a Tensor', 'got the number 1']],
    ["decodeImage('file.png')", () => io.decodeImage(any('file.png')), ImageDecodeError, ['[decodeImage] bytes must be a Uint8Array', 'the string "file.png"', 'readFileSync']],
    ['t.grad = 5', () => (randn([2]).grad = any(5)), ArgumentTypeError, ["[grad] a tensor's grad must be a Tensor or null, got the number 5"]],
    ['t.grad = a tensor of another shape', () => (randn([2]).grad = zeros([3])), AutogradError, ['[grad] assigned grad has shape [3], the tensor has shape [2]']],
    ['tensor(BigInt64Array)', () => tensor(any(new BigInt64Array(2))), ArgumentTypeError, ['[tensor] data is a BigInt64Array', 'Float32Array.from(data, Number)']],
    ['tensor([1, , 3]) (a hole)', () => tensor(any([1, , 3])), ArgumentTypeError, ['[tensor] element 1 is a hole']],
    ['tensor([1, null, 3])', () => tensor(any([1, null, 3])), ArgumentTypeError, ['[tensor] element 1 is null, not a number']],
    ["tensor([1, '1'])", () => tensor(any([1, '1'])), ArgumentTypeError, ['[tensor] element 1 is a string "1"']],
    ['tensor([[1, null]])', () => tensor(any([[1, null]])), ArgumentTypeError, ['[tensor] expected a number at depth 2, got null']],
    ['tensor([[1], [, 2]]) (a hole in a nested row)', () => tensor(any([[1, 2], [, 2]])), ArgumentTypeError, ['[tensor] a hole']],
    ['tensor of 20,000-deep nesting (was a RangeError)', () => tensor(any(deep)), ShapeError, ['[tensor] nested arrays deeper than 64 levels']],
    ['relu(null)', () => nn.functional.relu(any(null)), ArgumentTypeError, ['[relu] the input (argument 1) must be a Tensor, got null']],
  ];
  runRows(rows);

  it('control: numbers, typed arrays and nested arrays of numbers still work', () => {
    expect(Array.from(tensor([1, 2, 3]).data)).toEqual([1, 2, 3]);
    expect(Array.from(tensor(new Int32Array([4, 5])).data)).toEqual([4, 5]);
    expect(tensor([[1, 2], [3, 4]]).shape).toEqual([2, 2]);
    expect(add(t, 1).data[0]).toBe(1);
  });
});

describe('wrong results with no error, now right or refused', () => {
  it('empty unbiased variance is NaN (torch.var); one element unbiased is NaN; biased of one is 0', () => {
    expect(variance(zeros([0])).item()).toBeNaN();
    expect(variance(zeros([1])).item()).toBeNaN();
    expect(variance(zeros([1]), undefined, { unbiased: false }).item()).toBe(0);
    expect(variance(tensor([1, 3])).item()).toBe(2);
  });

  it('backward refuses to accumulate into a .grad of the wrong shape (left by a reshape of its data)', () => {
    const w = randn([4], { requiresGrad: true });
    w.mul(2).sum().backward();
    // a .grad whose data has another length cannot come through the setter; simulate a stale one from outside
    (w as unknown as { gradValue: unknown }).gradValue = zeros([2]);
    expectError(() => w.mul(2).sum().backward(), AutogradError, ['[backward] cannot accumulate a gradient of shape [4] into .grad of shape [2]']);
  });

  const img = (w: number, h: number, c: number, len = w * h * c) => ({ width: w, height: h, channels: c as 3, data: new Uint8Array(len) });
  const rows: Row[] = [
    ['imagenetPreprocess with short data', () => io.imagenetPreprocess(img(8, 8, 3, 10)), ShapeError, ['[imagenetPreprocess] img.data has 10 bytes, a 8x8 image with 3 channels needs 192']],
    ['imagenetPreprocess with channels: 5', () => io.imagenetPreprocess(img(8, 8, 5)), ValueError, ['[imagenetPreprocess] channels must be 1, 2, 3 or 4, got 5']],
    ['conv2d with stride [1, 1, 1]', () => nn.functional.conv2d(zeros([1, 1, 4, 4]), zeros([1, 1, 3, 3]), null, { stride: any([1, 1, 1]) }), ValueError, ['[conv2d] stride must be one or two positive integers, got [1, 1, 1]']],
    ['resizeBilinear to 1e6 × 1e6 (was a RangeError)', () => io.resizeBilinear(img(4, 4, 3), 1e6, 1e6), AllocationError, ['[resizeBilinear] output 1000000x1000000x3 from 4x4 is too large']],
  ];
  runRows(rows);
});

describe('messages name the op the caller used, and say what matters', () => {
  const rows: Row[] = [
    ['slice out of range reports [slice], not [narrow]', () => slice(t, 5, 0, 1), ResnetTsError, ['[slice]', 'input [2, 3]']],
    ['transpose of a bad dim reports [transpose], not [permute]', () => transpose(t, 0, 7), ResnetTsError, ['[transpose]']],
    ['an optimizer state dict without a kind: not "is for undefined"', () => new optim.SGD([randn([2], { requiresGrad: true })], { lr: 0.1 }).loadStateDict(any({ a: 1 })), StateDictError,
      ['no "kind" field', 'not an optimizer state dict', 'its keys: a']],
    ['ResNet-18 weights into ResNet-20: a short message saying what the keys look like', () => models.resnet20().loadStateDict(models.resnet18().stateDict()), StateDictError,
      ['these weights are not for', 'look like a torchvision-style ResNet (BasicBlocks: resnet18/34, 8 blocks)']],
    ['ResNet-50 weights into ResNet-18', () => models.resnet18().loadStateDict(models.resnet50().stateDict()), StateDictError, ['Bottleneck blocks: resnet50/101/152']],
  ];
  runRows(rows);

  it('the weights-for-another-model message is short (it was a 7.8 KB dump of keys)', () => {
    const e = thrown(() => models.resnet20().loadStateDict(models.resnet50().stateDict()))!;
    expect(e.message.length).toBeLessThan(600);
  });

  it('an add whose broadcast result is too large names add and both shapes, not [expand]', () => {
    const e = thrown(() => add(zeros([70000, 1]), zeros([1, 70000])));
    expect(e).toBeInstanceOf(ResnetTsError);
    expect(e!.message).toMatch(/^\[add\]/);
    expect(e!.message).toContain('[70000, 1]');
    expect(e!.message).toContain('[1, 70000]');
  });
});
