/** relu / softmax / logSoftmax (issue 3) against PyTorch fixtures: test/fixtures/ops/activation.json. */
import { nn } from '../../src/index.js';
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
