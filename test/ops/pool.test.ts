/** maxPool2d / avgPool2d / adaptiveAvgPool2d (issue 3) against PyTorch fixtures: test/fixtures/ops/pool.json. */
import { nn } from '../../src/index.js';
import { fixtureSuite } from '../helpers/fixtures.js';

const F = nn.functional;

fixtureSuite('pool', {
  maxpool_k3_s2_p1: ['maxPool2d x=[2,3,8,8] k=3 s=2 p=1 (ResNet)', (x) => F.maxPool2d(x, { kernelSize: 3, stride: 2, padding: 1 })],
  maxpool_k3_s2_p1_odd: ['maxPool2d x=[1,2,7,9] k=3 s=2 p=1', (x) => F.maxPool2d(x, { kernelSize: 3, stride: 2, padding: 1 })],
  maxpool_k2_default_stride: ['maxPool2d x=[1,2,4,6] k=2 (stride = kernel)', (x) => F.maxPool2d(x, { kernelSize: 2 })],
  maxpool_ceil_h5_k2_s2_p1: [
    'maxPool2d x=[1,2,5,5] k=2 s=2 p=1 ceilMode → 3×3 (last window would start in padding)',
    (x) => F.maxPool2d(x, { kernelSize: 2, stride: 2, padding: 1, ceilMode: true }),
  ],
  maxpool_ceil_k3_s2: ['maxPool2d x=[1,2,8,6] k=3 s=2 ceilMode', (x) => F.maxPool2d(x, { kernelSize: 3, stride: 2, ceilMode: true })],
  maxpool_dilation2: ['maxPool2d x=[1,2,7,7] k=2 s=1 dilation=2', (x) => F.maxPool2d(x, { kernelSize: 2, stride: 1, dilation: 2 })],
  maxpool_rect_k3x2_s2x1: [
    'maxPool2d x=[1,2,7,5] k=(3,2) s=(2,1) p=(1,0)',
    (x) => F.maxPool2d(x, { kernelSize: [3, 2], stride: [2, 1], padding: [1, 0] }),
  ],
  maxpool_negative_values_padded: [
    'maxPool2d x=[1,1,4,4] all negative k=3 s=2 p=1 (padding is -inf)',
    (x) => F.maxPool2d(x, { kernelSize: 3, stride: 2, padding: 1 }),
  ],
  maxpool_nan: ['maxPool2d x=[1,1,4,4] with NaN k=2 (NaN wins, gets the gradient)', (x) => F.maxPool2d(x, { kernelSize: 2 })],
  maxpool_ties_first_max: [
    'maxPool2d x=[1,1,5,5] ties k=3 s=2 p=1 (gradient to the first max)',
    (x) => F.maxPool2d(x, { kernelSize: 3, stride: 2, padding: 1 }),
  ],
  maxpool_ties_k2: ['maxPool2d x=[1,1,2,4] ties k=2 (gradient to the first max)', (x) => F.maxPool2d(x, { kernelSize: 2 })],
  avgpool_k2: ['avgPool2d x=[1,2,4,4] k=2', (x) => F.avgPool2d(x, { kernelSize: 2 })],
  avgpool_k3_s2_p1_include_pad: [
    'avgPool2d x=[2,2,7,7] k=3 s=2 p=1 countIncludePad',
    (x) => F.avgPool2d(x, { kernelSize: 3, stride: 2, padding: 1, countIncludePad: true }),
  ],
  avgpool_k3_s2_p1_exclude_pad: [
    'avgPool2d x=[2,2,7,7] k=3 s=2 p=1 countIncludePad=false',
    (x) => F.avgPool2d(x, { kernelSize: 3, stride: 2, padding: 1, countIncludePad: false }),
  ],
  avgpool_ceil_h5_k2_s2_p1_include: [
    'avgPool2d x=[1,1,5,5] k=2 s=2 p=1 ceilMode countIncludePad',
    (x) => F.avgPool2d(x, { kernelSize: 2, stride: 2, padding: 1, ceilMode: true, countIncludePad: true }),
  ],
  avgpool_ceil_h5_k2_s2_p1_exclude: [
    'avgPool2d x=[1,1,5,5] k=2 s=2 p=1 ceilMode countIncludePad=false',
    (x) => F.avgPool2d(x, { kernelSize: 2, stride: 2, padding: 1, ceilMode: true, countIncludePad: false }),
  ],
  avgpool_ceil_nopad: ['avgPool2d x=[1,2,5,6] k=2 s=2 ceilMode (edge windows cut off)', (x) => F.avgPool2d(x, { kernelSize: 2, stride: 2, ceilMode: true })],
  avgpool_ceil_k3_s2_p1_include: [
    'avgPool2d x=[1,2,6,6] k=3 s=2 p=1 ceilMode countIncludePad',
    (x) => F.avgPool2d(x, { kernelSize: 3, stride: 2, padding: 1, ceilMode: true, countIncludePad: true }),
  ],
  avgpool_rect: ['avgPool2d x=[1,2,6,5] k=(3,2) s=(2,1) p=(1,0)', (x) => F.avgPool2d(x, { kernelSize: [3, 2], stride: [2, 1], padding: [1, 0] })],
  avgpool_divisor_override: [
    'avgPool2d x=[1,2,5,5] k=3 s=2 p=1 divisorOverride=3',
    (x) => F.avgPool2d(x, { kernelSize: 3, stride: 2, padding: 1, divisorOverride: 3 }),
  ],
  adaptive_avg_10_to_3: ['adaptiveAvgPool2d x=[1,2,10,10] → 3', (x) => F.adaptiveAvgPool2d(x, 3)],
  adaptive_avg_5_to_7: ['adaptiveAvgPool2d x=[1,2,5,5] → 7 (upsampling)', (x) => F.adaptiveAvgPool2d(x, 7)],
  adaptive_avg_7_to_1: ['adaptiveAvgPool2d x=[2,3,7,7] → 1 (global)', (x) => F.adaptiveAvgPool2d(x, 1)],
  adaptive_avg_6x9_to_4x5: ['adaptiveAvgPool2d x=[1,2,6,9] → (4,5)', (x) => F.adaptiveAvgPool2d(x, [4, 5])],
  adaptive_avg_7x5_to_3x2: ['adaptiveAvgPool2d x=[2,1,7,5] → (3,2)', (x) => F.adaptiveAvgPool2d(x, [3, 2])],
});
