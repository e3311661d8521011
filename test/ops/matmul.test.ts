/** matmul (issue 2) against PyTorch fixtures: test/fixtures/ops/matmul.json. */
import { matmul } from '../../src/index.js';
import { fixtureSuite } from '../helpers/fixtures.js';

fixtureSuite('matmul', {
  matmul_1d_1d: ['matmul a=[4] b=[4] (dot)', (a, b) => matmul(a, b)],
  matmul_1d_2d: ['matmul a=[3] b=[3,5]', (a, b) => matmul(a, b)],
  matmul_2d_1d: ['matmul a=[3,4] b=[4]', (a, b) => matmul(a, b)],
  matmul_2d_2d: ['matmul a=[3,4] b=[4,5]', (a, b) => matmul(a, b)],
  matmul_3d_3d: ['matmul a=[2,3,4] b=[2,4,5]', (a, b) => matmul(a, b)],
  matmul_bcast_2x1x3x4_5x4x2: ['matmul a=[2,1,3,4] b=[5,4,2] (broadcast batch)', (a, b) => matmul(a, b)],
  matmul_3d_2d: ['matmul a=[2,3,4] b=[4,5]', (a, b) => matmul(a, b)],
  matmul_1d_3d: ['matmul a=[4] b=[2,4,5]', (a, b) => matmul(a, b)],
  matmul_3d_1d: ['matmul a=[2,3,4] b=[4]', (a, b) => matmul(a, b)],
});
