/**
 * batchNormRelu2d (the fused training op: relu(batch_norm(x)) in one pass, the ReLU mask applied inside the BN
 * backward) against PyTorch's F.relu(F.batch_norm(...)): test/fixtures/ops/batchnorm_relu.json. Inputs are
 * (x, weight, bias, runningMean, runningVar) minus what the case name says is absent; the running stats are updated
 * in place and compared with the fixture's `extra` (unbiased variance in running_var).
 */
import { describe, expect, it } from 'vitest';
import { manualSeed, nn, randn, type Tensor } from '../../src/index.js';
import { batchNormRelu2d } from '../../src/ops/norm.js';
import { decode, expectClose, fixtureSuite, type Case, type CheckResult } from '../helpers/fixtures.js';
import { assertClose } from '../kernels/compare.js';

const runningStats =
  (meanAt: number, varAt: number) =>
  (c: Case, r: CheckResult): void => {
    for (const [name, at] of [['running_mean', meanAt], ['running_var', varAt]] as const) {
      const want = c.extra![name]!;
      expectClose(r.inputs[at]!.data, decode(want.data), want.shape, `batchNormRelu2d ${name}`);
    }
  };

/** Runs the op and checks that the fused op (not a composition) made the output in training mode. */
const fused = (training: boolean) => (t: Tensor): Tensor => {
  expect(t.gradFn?.op).toBe(training ? 'batchNormRelu2d' : 'relu');
  return t;
};

fixtureSuite('batchnorm_relu', {
  bnrelu_train: [
    'batchNormRelu2d training x=[4,3,5,5] momentum=0.1',
    (x, w, b, rm, rv) => fused(true)(batchNormRelu2d(x, rm!, rv!, w!, b!, { training: true, momentum: 0.1, eps: 1e-5 })),
    { after: runningStats(3, 4) },
  ],
  bnrelu_train_momentum_eps_odd_plane: [
    'batchNormRelu2d training x=[3,4,3,7] momentum=0.3 eps=1e-3',
    (x, w, b, rm, rv) => fused(true)(batchNormRelu2d(x, rm!, rv!, w!, b!, { training: true, momentum: 0.3, eps: 1e-3 })),
    { after: runningStats(3, 4) },
  ],
  bnrelu_train_no_affine: [
    'batchNormRelu2d training x=[2,3,4,4] no weight/bias',
    (x, rm, rv) => fused(true)(batchNormRelu2d(x, rm!, rv!, null, null, { training: true, momentum: 0.1, eps: 1e-5 })),
    { after: runningStats(1, 2) },
  ],
  bnrelu_train_no_running_stats: [
    'batchNormRelu2d training x=[5,2,3,3] no running stats',
    (x, w, b) => fused(true)(batchNormRelu2d(x, null, null, w!, b!, { training: true, eps: 1e-5 })),
  ],
  bnrelu_train_2d: [
    'batchNormRelu2d training x=[6,5] (N, C)',
    (x, w, b, rm, rv) => fused(true)(batchNormRelu2d(x, rm!, rv!, w!, b!, { training: true, momentum: 0.1, eps: 1e-5 })),
    { after: runningStats(3, 4) },
  ],
  bnrelu_train_residual: [
    'batchNormRelu2d training x=[4,3,5,4] + residual (its gradient too)',
    (x, w, b, r, rm, rv) => fused(true)(batchNormRelu2d(x, rm!, rv!, w!, b!, { training: true, momentum: 0.1, eps: 1e-5, residual: r! })),
    { after: runningStats(4, 5) },
  ],
  bnrelu_train_residual_no_affine: [
    'batchNormRelu2d training x=[3,2,3,3] + residual, no weight/bias, momentum=0.2',
    (x, r, rm, rv) => fused(true)(batchNormRelu2d(x, rm!, rv!, null, null, { training: true, momentum: 0.2, eps: 1e-5, residual: r! })),
    { after: runningStats(2, 3) },
  ],
  bnrelu_eval_residual: [
    'batchNormRelu2d eval x=[2,3,2,3] + residual',
    (x, w, b, r, rm, rv) => fused(false)(batchNormRelu2d(x, rm!, rv!, w!, b!, { training: false, eps: 1e-5, residual: r! })),
    { after: runningStats(4, 5) },
  ],
  bnrelu_eval: [
    'batchNormRelu2d eval x=[2,3,4,3] (running stats used, unchanged)',
    (x, w, b, rm, rv) => fused(false)(batchNormRelu2d(x, rm!, rv!, w!, b!, { training: false, eps: 1e-5 })),
    { after: runningStats(3, 4) },
  ],
});

describe('batchNormRelu2d vs batchNorm2d, add, relu', () => {
  it('same output, gradients and running stats on a ResNet-sized input (x=[8,16,12,12] + residual)', () => {
    const run = (fuse: boolean) => {
      const x = randn([8, 16, 12, 12], { requiresGrad: true }), r = randn([8, 16, 12, 12], { requiresGrad: true });
      const w = randn([16], { requiresGrad: true }), b = randn([16], { requiresGrad: true });
      const rm = randn([16]), rv = randn([16]).abs();
      const opts = { training: true, momentum: 0.1, eps: 1e-5 };
      const F = nn.functional;
      const y = fuse ? batchNormRelu2d(x, rm, rv, w, b, { ...opts, residual: r }) : F.relu(F.batchNorm2d(x, rm, rv, w, b, opts).add(r));
      y.backward(randn(y.shape));
      return [y.data, x.grad!.data, w.grad!.data, b.grad!.data, r.grad!.data, rm.data, rv.data];
    };
    manualSeed(3);
    const ref = run(false);
    manualSeed(3);
    const got = run(true);
    const names = ['y', 'dx', 'dweight', 'dbias', 'dresidual', 'running_mean', 'running_var'];
    got.forEach((g, i) => assertClose(`fused vs composed ${names[i]}`, g, ref[i]!, { atol: 1e-5, rtol: 1e-4 }));
  });
});
