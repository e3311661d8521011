/**
 * Module boundaries, table-driven: layer and model forwards given the wrong channels, rank or size; layer and model
 * constructors given impossible arguments; loadStateDict given checkpoints that do not fit. Each row names the error
 * class and message fragments: the op or module in brackets and the offending shape or key.
 *
 * Not repeated here: the functional ops (test/ops/errors.test.ts), resnet50 given 4 channels and resnet18 given a
 * 3-D input, resnet34's keys into resnet18 and a 10-class fc into a 1000-class resnet18
 * (test/models/torchvision.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { AllocationError, models, nn, ShapeError, StateDictError, Tensor, ValueError, zeros, full } from '../../src/index.js';
import { runRows, expectError, type Row } from './rows.js';

const z = (...shape: number[]): Tensor => zeros(shape);
const F = nn.functional;

// The big models are built once, on first use (resnet50 takes ~1 s to initialize).
const lazy = <T>(make: () => T): (() => T) => {
  let v: T | undefined;
  return () => (v ??= make());
};
const r18 = lazy(() => models.resnet18());
const r50 = lazy(() => models.resnet50());
const pre18 = lazy(() => models.preactResnet18());
const r20 = lazy(() => models.resnet20());
const r20gray = lazy(() => models.resnet20({ inChannels: 1 }));
const pre110 = lazy(() => models.preactResnet110());

describe('layer forward: wrong channels, rank or size', () => {
  const rows: Row[] = [
    ['Conv2d(3, 8, 3) given 4 channels [1,4,8,8]', () => new nn.Conv2d(3, 8, 3).forward(z(1, 4, 8, 8)), ShapeError,
      ['[conv2d]', 'expected input[1, 4, 8, 8] to have 3 channels, but got 4 channels', '[8, 3, 3, 3]']],
    ['Conv2d(3, 8, 3) given a 2-D input [8,8]', () => new nn.Conv2d(3, 8, 3).forward(z(8, 8)), ShapeError, ['[conv2d]', '[8, 8]', '[8, 3, 3, 3]']],
    ['Conv2d(3, 8, 3) given an unbatched (4, 8, 8) input', () => new nn.Conv2d(3, 8, 3).forward(z(4, 8, 8)), ShapeError,
      ['[conv2d]', 'to have 3 channels, but got 4 channels']],
    ['Conv2d(3, 8, 5) given a 2×2 image: kernel larger than the input', () => new nn.Conv2d(3, 8, 5).forward(z(1, 3, 2, 2)), ShapeError,
      ['[conv2d]', 'Kernel size: (5 x 5)', '[1, 3, 2, 2]', '[8, 3, 5, 5]']],
    ['Conv2d(3, 8, 3, dilation 3) given a 4×4 image: effective kernel 7×7', () => new nn.Conv2d(3, 8, 3, { dilation: 3 }).forward(z(1, 3, 4, 4)),
      ShapeError, ['[conv2d]', 'Kernel size: (7 x 7)', '[1, 3, 4, 4]']],
    ['Conv2d(4, 8, 3, groups 2) given 6 channels', () => new nn.Conv2d(4, 8, 3, { groups: 2 }).forward(z(1, 6, 8, 8)), ShapeError,
      ['[conv2d]', 'groups=2', 'expected input[1, 6, 8, 8] to have 4 channels']],
    ["F.conv2d with padding 'same' and stride 2 (the functional checks at call time)", () => F.conv2d(z(1, 3, 8, 8), z(4, 3, 3, 3), null, { padding: 'same', stride: 2 }),
      ValueError, ['[conv2d]', "padding='same'", 'stride 2']],
    ['BatchNorm2d(3) given 4 channels', () => new nn.BatchNorm2d(3).forward(z(2, 4, 2, 2)), ShapeError, ['[BatchNorm2d]', '[2, 4, 2, 2]', 'BatchNorm2d(3)']],
    ['BatchNorm2d(3) given a 2-D input [2,3]', () => new nn.BatchNorm2d(3).forward(z(2, 3)), ShapeError, ['[BatchNorm2d]', '4D', '[2, 3]']],
    ['BatchNorm2d(3) given a 3-D input [3,4,4]', () => new nn.BatchNorm2d(3).forward(z(3, 4, 4)), ShapeError, ['[BatchNorm2d]', '[3, 4, 4]']],
    ['BatchNorm2d(3) training on one value per channel [1,3,1,1]', () => new nn.BatchNorm2d(3).forward(z(1, 3, 1, 1)), ValueError,
      ['[batchNorm2d]', 'Expected more than 1 value per channel when training', '[1, 3, 1, 1]']],
    ['BatchNorm2d(3, eps 0) at forward', () => new nn.BatchNorm2d(3, { eps: 0 }).forward(z(2, 3, 2, 2)), ValueError, ['[batchNorm2d]', 'eps', '[2, 3, 2, 2]']],
    ['BatchNorm2d(3, momentum 2) at a training forward', () => new nn.BatchNorm2d(3, { momentum: 2 }).forward(z(2, 3, 2, 2)), ValueError,
      ['[batchNorm2d]', 'momentum', '2', '[2, 3, 2, 2]']],
    ['Linear(4, 3) given 5 features [2,5]', () => new nn.Linear(4, 3).forward(z(2, 5)), ShapeError, ['[linear]', '[2, 5]', '[3, 4]']],
    ['Linear(4, 3) given a 0-d input', () => new nn.Linear(4, 3).forward(zeros([])), ShapeError, ['[linear]', 'input []', '[3, 4]']],
    ['Linear(4, 3) given an unflattened [2,3,8,8] input', () => new nn.Linear(4, 3).forward(z(2, 3, 8, 8)), ShapeError,
      ['[linear]', '[2, 3, 8, 8]', '[3, 4]']],
    ['MaxPool2d(2) given a 3-D input [3,8,8]', () => new nn.MaxPool2d({ kernelSize: 2 }).forward(z(3, 8, 8)), ShapeError, ['[maxPool2d]', '[3, 8, 8]']],
    ['MaxPool2d(3) given a 2×2 image: output size 0', () => new nn.MaxPool2d({ kernelSize: 3 }).forward(z(1, 1, 2, 2)), ShapeError,
      ['[maxPool2d]', 'Output size is too small', '[1, 1, 2, 2]']],
    ['MaxPool2d(kernelSize 0) at forward', () => new nn.MaxPool2d({ kernelSize: 0 }).forward(z(1, 1, 4, 4)), ValueError,
      ['[maxPool2d]', 'kernelSize', '[1, 1, 4, 4]']],
    ['MaxPool2d(kernelSize 2, stride 1.5) at forward', () => new nn.MaxPool2d({ kernelSize: 2, stride: 1.5 }).forward(z(1, 1, 4, 4)), ValueError,
      ['[maxPool2d]', 'stride', '1.5']],
    ['AvgPool2d(kernelSize 3, padding 2) at forward', () => new nn.AvgPool2d({ kernelSize: 3, padding: 2 }).forward(z(1, 1, 8, 8)), ValueError,
      ['[avgPool2d]', 'half of kernel size', '[1, 1, 8, 8]']],
    ['AvgPool2d(kernelSize 2, divisorOverride 0) at forward', () => new nn.AvgPool2d({ kernelSize: 2, divisorOverride: 0 }).forward(z(1, 1, 4, 4)),
      ValueError, ['[avgPool2d]', 'divisor', '[1, 1, 4, 4]']],
    ['AdaptiveAvgPool2d(1) given a 3-D input [3,8,8]', () => new nn.AdaptiveAvgPool2d(1).forward(z(3, 8, 8)), ShapeError,
      ['[adaptiveAvgPool2d]', '[3, 8, 8]']],
    ['AdaptiveAvgPool2d(1) given an empty 0×4 image', () => new nn.AdaptiveAvgPool2d(1).forward(z(1, 1, 0, 4)), ShapeError,
      ['[adaptiveAvgPool2d]', '[1, 1, 0, 4]']],
    ['AdaptiveAvgPool2d(0) at forward', () => new nn.AdaptiveAvgPool2d(0).forward(z(1, 1, 4, 4)), ValueError, ['[adaptiveAvgPool2d]', 'outputSize', '[1, 1, 4, 4]']],
    ['AdaptiveAvgPool2d([2, 1.5]) at forward', () => new nn.AdaptiveAvgPool2d([2, 1.5]).forward(z(1, 1, 4, 4)), ValueError,
      ['[adaptiveAvgPool2d]', 'outputSize', '1.5']],
    ['Flatten(5) given [2,3]', () => new nn.Flatten(5).forward(z(2, 3)), ShapeError, ['[flatten]', '5', '[2, 3]']],
    ['Sequential(Conv2d(3, 8, 3), BatchNorm2d(4)): the BN gets 8 channels', () => new nn.Sequential(new nn.Conv2d(3, 8, 3), new nn.BatchNorm2d(4)).forward(z(2, 3, 8, 8)),
      ShapeError, ['[BatchNorm2d]', '[2, 8, 6, 6]', 'BatchNorm2d(4)']],
    ['Sequential(Conv2d, Flatten, Linear(10, 2)): the Linear gets 288 features', () =>
      new nn.Sequential(new nn.Conv2d(3, 8, 3), new nn.Flatten(), new nn.Linear(10, 2)).forward(z(2, 3, 8, 8)), ShapeError,
    ['[linear]', '[2, 288]', '[2, 10]']],
    ['Sequential(2 layers).at(5)', () => new nn.Sequential(new nn.ReLU(), new nn.ReLU()).at(5), ValueError, ['[Sequential]', 'index 5', '2 layers']],
  ];
  runRows(rows);
});

describe('model forward: wrong channels, rank or size', () => {
  const rows: Row[] = [
    ['resnet18 given 1 channel [2,1,32,32]', () => r18().forward(z(2, 1, 32, 32)), ShapeError, ['[ResNet]', 'to have 3 channels, but got 1 channels', '[2, 1, 32, 32]']],
    ['resnet18 given a 5-D input', () => r18().forward(z(1, 1, 3, 32, 32)), ShapeError, ['[ResNet]', '4-D', '[1, 1, 3, 32, 32]']],
    ['resnet18 given a 0×0 image: conv1 kernel larger than the padded input', () => r18().forward(z(1, 3, 0, 0)), ShapeError,
      ['[conv2d]', 'Kernel size: (7 x 7)', '[1, 3, 0, 0]', '[64, 3, 7, 7]']],
    // PyTorch 1.13 gives the same: resnet50 in training mode on one 1×1 image fails at bn1 (its input is [1, 64, 1, 1])
    ['resnet50 training on one 1×1 image', () => r50().train().forward(z(1, 3, 1, 1)), ValueError,
      ['[batchNorm2d]', 'Expected more than 1 value per channel when training', '[1, 64, 1, 1]']],
    ['resnet20 given 4 channels', () => r20().forward(z(2, 4, 8, 8)), ShapeError, ['[ResNet20]', 'to have 3 channels, but got 4 channels', '[2, 4, 8, 8]']],
    ['resnet20 given a 3-D input', () => r20().forward(z(3, 8, 8)), ShapeError, ['[ResNet20]', '4-D', '[3, 8, 8]']],
    ['resnet20({ inChannels: 1 }) given an RGB batch', () => r20gray().forward(z(2, 3, 28, 28)), ShapeError, ['to have 1 channels, but got 3 channels', '[2, 3, 28, 28]']],
    ['resnet20 training on one 1×1 image', () => r20().train().forward(z(1, 3, 1, 1)), ValueError, ['[batchNorm2d]', '[1, 16, 1, 1]']],
    ['preactResnet18 given 4 channels', () => pre18().forward(z(2, 4, 32, 32)), ShapeError, ['[PreActResNet]', 'to have 3 channels', '[2, 4, 32, 32]']],
    ['preactResnet18 given a 3-D input', () => pre18().forward(z(3, 32, 32)), ShapeError, ['[PreActResNet]', '4-D', '[3, 32, 32]']],
    ['preactResnet18 training on one 1×1 image', () => pre18().train().forward(z(1, 3, 1, 1)), ValueError, ['[batchNorm2d]', '[1, 64, 1, 1]']],
    ['preactResnet110 given 1 channel', () => pre110().forward(z(2, 1, 32, 32)), ShapeError, ['to have 3 channels, but got 1 channels', '[2, 1, 32, 32]']],
  ];
  runRows(rows);

  it('resnet50 in eval mode accepts a 1×1 image (as PyTorch does): every stage keeps 1×1', () => {
    const m = r50().eval();
    const y = m.forward(z(1, 3, 1, 1));
    expect(y.shape).toEqual([1, 1000]);
    // zeros in, so every conv gives 0 and every eval-mode BN with fresh stats gives its bias 0: the logits are fc.bias
    expect(Array.from(y.data)).toEqual(Array.from(m.fc.bias!.data));
  });
});

describe('constructors: impossible arguments', () => {
  const rows: Row[] = [
    ["Conv2d(3, 4, 3, padding 'same', stride 2): refused at construction, as PyTorch does", () => new nn.Conv2d(3, 4, 3, { padding: 'same', stride: 2 }), ValueError, ['[Conv2d]', "padding='same'", 'stride (2, 2)']],
    ['Conv2d(3, 4, NaN): the message shows NaN', () => new nn.Conv2d(3, 4, NaN), ValueError, ['[Conv2d]', 'kernelSize', 'NaN']],
    ['loadStateDict(null)', () => new nn.Linear(2, 2).loadStateDict(null as unknown as Record<string, Tensor>), StateDictError, ['[loadStateDict]', 'null', 'Linear']],
    ['Conv2d(65536, 65536, 3): the layer names itself and the weight shape', () => new nn.Conv2d(65536, 65536, 3), AllocationError, ['[Conv2d]', '[65536, 65536, 3, 3]']],
    ['Conv2d(0, 8, 3)', () => new nn.Conv2d(0, 8, 3), ValueError, ['[Conv2d]', 'Conv2d(0, 8']],
    ['Conv2d(3, 0, 3)', () => new nn.Conv2d(3, 0, 3), ValueError, ['[Conv2d]', 'Conv2d(3, 0']],
    ['Conv2d(1.5, 4, 3)', () => new nn.Conv2d(1.5, 4, 3), ValueError, ['[Conv2d]', 'Conv2d(1.5, 4']],
    ['Conv2d(NaN, 4, 3)', () => new nn.Conv2d(NaN, 4, 3), ValueError, ['[Conv2d]', 'Conv2d(NaN, 4']],
    ['Conv2d(4, 6, 3, groups 4): out channels not divisible', () => new nn.Conv2d(4, 6, 3, { groups: 4 }), ValueError, ['[Conv2d]', 'out_channels', 'groups 4']],
    ['Conv2d(5, 10, 3, groups 2): in channels not divisible', () => new nn.Conv2d(5, 10, 3, { groups: 2 }), ValueError, ['[Conv2d]', 'in_channels', 'groups 2']],
    ['Conv2d(4, 4, 3, groups 0)', () => new nn.Conv2d(4, 4, 3, { groups: 0 }), ValueError, ['[Conv2d]', 'groups']],
    ['Conv2d(3, 4, 0)', () => new nn.Conv2d(3, 4, 0), ValueError, ['[Conv2d]', 'kernelSize', '0']],
    ['Conv2d(3, 4, 1.5)', () => new nn.Conv2d(3, 4, 1.5), ValueError, ['[Conv2d]', 'kernelSize', '1.5']],
    ['Conv2d(3, 4, [3]): a one-element kernel pair', () => new nn.Conv2d(3, 4, [3] as unknown as [number, number]), ValueError, ['[Conv2d]', 'kernelSize', '[3]']],
    ['Conv2d(3, 4, 3, stride 0)', () => new nn.Conv2d(3, 4, 3, { stride: 0 }), ValueError, ['[Conv2d]', 'stride', '0']],
    ['Conv2d(3, 4, 3, padding -1)', () => new nn.Conv2d(3, 4, 3, { padding: -1 }), ValueError, ['[Conv2d]', 'padding', '-1']],
    ["Conv2d(3, 4, 3, padding 'full')", () => new nn.Conv2d(3, 4, 3, { padding: 'full' as 'same' }), ValueError, ['[Conv2d]', 'padding', 'full']],
    ['Conv2d(3, 4, 3, dilation 0)', () => new nn.Conv2d(3, 4, 3, { dilation: 0 }), ValueError, ['[Conv2d]', 'dilation', '0']],
    ['Conv2d(65536, 65536, 3): weight over 2^32 elements, refused before allocating', () => new nn.Conv2d(65536, 65536, 3), AllocationError,
      ['[65536, 65536, 3, 3]']],
    ['BatchNorm2d(0)', () => new nn.BatchNorm2d(0), ValueError, ['[BatchNorm2d]', '0']],
    ['BatchNorm2d(1.5)', () => new nn.BatchNorm2d(1.5), ValueError, ['[BatchNorm2d]', '1.5']],
    ['Linear(0, 3)', () => new nn.Linear(0, 3), ValueError, ['[Linear]', 'Linear(0, 3)']],
    ['Linear(3, 0)', () => new nn.Linear(3, 0), ValueError, ['[Linear]', 'Linear(3, 0)']],
    ['Linear(1.5, 3)', () => new nn.Linear(1.5, 3), ValueError, ['[Linear]', 'Linear(1.5, 3)']],
    ['Dropout(-0.1)', () => new nn.Dropout(-0.1), ValueError, ['[Dropout]', '-0.1']],
    ['Dropout(NaN)', () => new nn.Dropout(NaN), ValueError, ['[Dropout]', 'NaN']],
    ['resnet18({ numClasses: 0 })', () => models.resnet18({ numClasses: 0 }), ValueError, ['[Linear]', 'Linear(512, 0)']],
    ['resnet18({ inChannels: 0 })', () => models.resnet18({ inChannels: 0 }), ValueError, ['[Conv2d]', 'Conv2d(0, 64']],
    ['resnet18({ groups: 2 }): BasicBlock has no groups', () => models.resnet18({ groups: 2 }), ValueError, ['[BasicBlock]', 'groups 2']],
    ['resnet18 with replaceStrideWithDilation [false, true, false]', () => models.resnet18({ replaceStrideWithDilation: [false, true, false] }), ValueError,
      ['[BasicBlock]', 'Dilation > 1']],
    ['resnet50 with replaceStrideWithDilation of 2 entries', () => models.resnet50({ replaceStrideWithDilation: [true, true] as unknown as [boolean, boolean, boolean] }),
      ValueError, ['[ResNet]', 'replaceStrideWithDilation', '[true,true]']],
    ['cifarResnet(21): depth not 6n + 2', () => models.cifarResnet(21), ValueError, ['[cifarResnet]', '6n + 2', '21']],
    ['resnet20({ widths: [0, 8, 8] })', () => models.resnet20({ widths: [0, 8, 8] }), ValueError, ['[Conv2d]', 'Conv2d(3, 0']],
  ];
  runRows(rows);
});

describe('loadStateDict: checkpoints that do not fit', () => {
  // keys: 0.weight [2,1,3,3], 0.bias [2], 1.weight/bias/running_mean/running_var [2], 1.num_batches_tracked [], 2.weight [3,4], 2.bias [3]
  const net = (): nn.Sequential => new nn.Sequential(new nn.Conv2d(1, 2, 3), new nn.BatchNorm2d(2), new nn.Linear(4, 3));
  const sd = (edit: (s: Record<string, unknown>) => void = () => {}): Record<string, Tensor> => {
    const s: Record<string, unknown> = {};
    for (const [k, t] of Object.entries(net().stateDict())) s[k] = full(t.shape.slice(), 7);
    edit(s);
    return s as Record<string, Tensor>;
  };
  const head = 'Error(s) in loading state_dict for Sequential';
  const rows: Row[] = [
    ['a missing key', () => net().loadStateDict(sd((s) => delete s['0.weight'])), StateDictError,
      ['[loadStateDict]', head, 'Missing key(s) in state_dict: "0.weight".']],
    ['an unexpected key', () => net().loadStateDict(sd((s) => (s['3.weight'] = z(1)))), StateDictError,
      ['[loadStateDict]', 'Unexpected key(s) in state_dict: "3.weight".']],
    ['a size mismatch', () => net().loadStateDict(sd((s) => (s['2.weight'] = z(3, 5)))), StateDictError,
      ['size mismatch for 2.weight: copying a param with shape [3, 5] from checkpoint, the shape in current model is [3, 4].']],
    ['the same element count transposed [4,3] for [3,4]', () => net().loadStateDict(sd((s) => (s['2.weight'] = z(4, 3)))), StateDictError,
      ['size mismatch for 2.weight', '[4, 3]', '[3, 4]']],
    ['num_batches_tracked as [1] instead of a 0-d tensor', () => net().loadStateDict(sd((s) => (s['1.num_batches_tracked'] = z(1)))), StateDictError,
      ['size mismatch for 1.num_batches_tracked', 'shape [1] from checkpoint', 'current model is [].']],
    ['a nested array instead of a Tensor', () => net().loadStateDict(sd((s) => (s['2.weight'] = [[1, 2, 3, 4]]))), StateDictError,
      ['value for 2.weight is not a Tensor']],
    ['null instead of a Tensor', () => net().loadStateDict(sd((s) => (s['0.bias'] = null))), StateDictError, ['value for 0.bias is not a Tensor']],
    ['strict: false still rejects a size mismatch', () => net().loadStateDict(sd((s) => (s['2.weight'] = z(3, 5))), { strict: false }), StateDictError,
      ['size mismatch for 2.weight', '[3, 5]', '[3, 4]']],
    ['strict: false still rejects a non-Tensor value', () => net().loadStateDict(sd((s) => (s['2.bias'] = 5)), { strict: false }), StateDictError,
      ['value for 2.bias is not a Tensor']],
    ['strict: false with a size mismatch and extra keys: only the mismatch is an error', () =>
      net().loadStateDict(sd((s) => { s['2.weight'] = z(3, 5); s.extra = z(1); }), { strict: false }), StateDictError,
    ['size mismatch for 2.weight']],
  ];
  runRows(rows);

  it('every problem at once (missing, unexpected, size, non-Tensor) is reported in ONE StateDictError', () => {
    const bad = sd((s) => {
      delete s['0.weight'];
      s['3.weight'] = z(1);
      s['2.weight'] = z(3, 5);
      s['1.bias'] = 'x';
    });
    const e = expectError(() => net().loadStateDict(bad), StateDictError, [
      head,
      'Unexpected key(s) in state_dict: "3.weight".',
      'Missing key(s) in state_dict: "0.weight".',
      'value for 1.bias is not a Tensor',
      'size mismatch for 2.weight',
    ]);
    expect(e.message.split('\n').length).toBe(5); // the header and one line per problem
  });

  it('strict: false with no size problem loads, and reports what it skipped', () => {
    const m = net();
    const r = m.loadStateDict(sd((s) => { delete s['0.weight']; s.extra = z(1); }), { strict: false });
    expect(r).toEqual({ missingKeys: ['0.weight'], unexpectedKeys: ['extra'] });
    expect(Array.from(m.stateDict()['2.bias']!.data)).toEqual([7, 7, 7]);
  });

  it('a failed load changes nothing in the module (all checks before any copy)', () => {
    const m = net();
    const before = Object.fromEntries(Object.entries(m.stateDict()).map(([k, t]) => [k, Array.from(t.data)]));
    // every value is 7 and only the last key is wrong: a copy-as-you-go loader would have written the others
    expect(() => m.loadStateDict(sd((s) => (s['2.bias'] = z(4))))).toThrow(StateDictError);
    for (const [k, t] of Object.entries(m.stateDict())) expect(Array.from(t.data), k).toEqual(before[k]);
  });

  it('num_batches_tracked may be absent (older torchvision checkpoints)', () => {
    const m = net();
    expect(m.loadStateDict(sd((s) => delete s['1.num_batches_tracked']))).toEqual({ missingKeys: [], unexpectedKeys: [] });
  });
});
