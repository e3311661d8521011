/** linear (issue 3) against PyTorch fixtures: test/fixtures/ops/linear.json. */
import { nn } from '../../src/index.js';
import { fixtureSuite } from '../helpers/fixtures.js';

const F = nn.functional;

fixtureSuite('linear', {
  linear_bias: ['linear x=[4,5] w=[3,5] b=[3]', (x, w, b) => F.linear(x, w, b)],
  linear_nobias: ['linear x=[4,5] w=[3,5] no bias', (x, w) => F.linear(x, w)],
  linear_batch3d: ['linear x=[2,3,5] w=[4,5] b=[4]', (x, w, b) => F.linear(x, w, b)],
  linear_1d: ['linear x=[5] w=[3,5] b=[3]', (x, w, b) => F.linear(x, w, b)],
  linear_batch1: ['linear x=[1,6] w=[2,6] b=[2]', (x, w, b) => F.linear(x, w, b)],
});
