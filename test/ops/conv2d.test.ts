/**
 * conv2d (issue 3) against PyTorch fixtures: test/fixtures/ops/conv2d.json. The first fourteen cases are PyTorch's
 * own sample list (sample_inputs_conv2d in torch/testing/_internal/common_methods_invocations.py); the rest add
 * odd / non-square sizes, batch 1 and 3, rectangular kernels and ResNet's stem / downsample shapes.
 */
import { nn } from '../../src/index.js';
import { fixtureSuite } from '../helpers/fixtures.js';

const F = nn.functional;

fixtureSuite('conv2d', {
  conv2d_s2_p2: ['conv2d x=[1,3,4,4] w=[3,3,3,3] b s=2 p=2', (x, w, b) => F.conv2d(x, w, b!, { stride: [2, 2], padding: 2 })],
  conv2d_g2_d4: [
    'conv2d x=[2,4,8,8] w=[2,2,3,3] b s=(3,2) p=(2,1) groups=2 dilation=4',
    (x, w, b) => F.conv2d(x, w, b!, { stride: [3, 2], padding: [2, 1], groups: 2, dilation: [4, 4] }),
  ],
  conv2d_d2x3: ['conv2d x=[1,4,5,5] w=[1,4,2,3] b s=2 p=1 dilation=(2,3)', (x, w, b) => F.conv2d(x, w, b!, { stride: 2, padding: 1, dilation: [2, 3] })],
  conv2d_nobias_nonsquare_kernel: ['conv2d x=[1,2,4,3] w=[4,2,3,4] no bias s=2 p=1', (x, w) => F.conv2d(x, w, null, { stride: 2, padding: 1 })],
  conv2d_valid: ["conv2d x=[1,4,5,5] w=[1,4,2,3] b s=2 p='valid'", (x, w, b) => F.conv2d(x, w, b!, { stride: 2, padding: 'valid' })],
  conv2d_same_d3: ["conv2d x=[1,4,5,5] w=[1,4,2,3] b p='same' dilation=3", (x, w, b) => F.conv2d(x, w, b!, { stride: 1, padding: 'same', dilation: 3 })],
  conv2d_g4: ['conv2d x=[2,4,6,6] w=[4,1,3,3] b groups=4', (x, w, b) => F.conv2d(x, w, b!, { groups: 4 })],
  conv2d_g4_out8: ['conv2d x=[2,4,6,6] w=[8,1,3,3] b groups=4', (x, w, b) => F.conv2d(x, w, b!, { groups: 4 })],
  conv2d_g4_out8_nobias: ['conv2d x=[2,4,6,6] w=[8,1,3,3] no bias groups=4', (x, w) => F.conv2d(x, w, null, { groups: 4 })],
  conv2d_g4_s3x2: ['conv2d x=[2,4,6,6] w=[4,1,3,3] b groups=4 s=(3,2)', (x, w, b) => F.conv2d(x, w, b!, { groups: 4, stride: [3, 2] })],
  conv2d_g4_p1: ['conv2d x=[2,4,6,6] w=[4,1,3,3] b groups=4 p=(1,1)', (x, w, b) => F.conv2d(x, w, b!, { groups: 4, padding: [1, 1] })],
  conv2d_g4_d2: ['conv2d x=[2,4,5,5] w=[4,1,2,2] b groups=4 dilation=(2,2)', (x, w, b) => F.conv2d(x, w, b!, { groups: 4, dilation: [2, 2] })],
  conv2d_g2_nonsquare: ['conv2d x=[2,4,6,5] w=[6,2,3,2] b groups=2', (x, w, b) => F.conv2d(x, w, b!, { groups: 2 })],
  conv2d_defaults: ['conv2d x=[1,4,5,5] w=[3,4,3,3] no bias defaults', (x, w) => F.conv2d(x, w, null)],
  conv2d_s2_p1: ['conv2d x=[2,3,9,9] w=[4,3,3,3] b s=2 p=1', (x, w, b) => F.conv2d(x, w, b!, { stride: 2, padding: 1 })],
  conv2d_batch3_nonsquare: ['conv2d x=[3,2,7,5] w=[3,2,3,3] b p=1', (x, w, b) => F.conv2d(x, w, b!, { padding: 1 })],
  conv2d_batch1_odd_s2: ['conv2d x=[1,3,11,7] w=[5,3,3,3] b s=2 p=1', (x, w, b) => F.conv2d(x, w, b!, { stride: 2, padding: 1 })],
  conv2d_rect_kernel_1x3: ['conv2d x=[1,3,6,8] w=[2,3,1,3] no bias p=(0,1)', (x, w) => F.conv2d(x, w, null, { padding: [0, 1] })],
  conv2d_rect_kernel_5x2_s2x1: [
    'conv2d x=[2,2,9,6] w=[3,2,5,2] b s=(2,1) p=(2,0)',
    (x, w, b) => F.conv2d(x, w, b!, { stride: [2, 1], padding: [2, 0] }),
  ],
  conv2d_1x1_s2: ['conv2d x=[2,4,6,6] w=[8,4,1,1] no bias s=2 (ResNet downsample)', (x, w) => F.conv2d(x, w, null, { stride: 2 })],
  conv2d_7x7_s2_p3: ['conv2d x=[1,3,12,12] w=[3,3,7,7] no bias s=2 p=3 (ResNet stem)', (x, w) => F.conv2d(x, w, null, { stride: 2, padding: 3 })],
  conv2d_unbatched: ['conv2d x=[3,6,5] (unbatched) w=[2,3,3,3] b s=2 p=1', (x, w, b) => F.conv2d(x, w, b!, { stride: 2, padding: 1 })],
  conv2d_same_even_kernel: ["conv2d x=[1,2,5,6] w=[2,2,2,4] b p='same' even kernel (asymmetric pad)", (x, w, b) => F.conv2d(x, w, b!, { padding: 'same' })],
});
