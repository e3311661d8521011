/**
 * batchNorm2d (issue 3) against PyTorch fixtures: test/fixtures/ops/batchnorm.json. Inputs are
 * (x, weight, bias, runningMean, runningVar) unless the case name says otherwise; in training mode the running stats
 * are updated in place and compared with the fixture's `extra` (torch updates running_var with the unbiased variance).
 */
import { nn, zeros, type Tensor } from '../../src/index.js';
import { decode, expectClose, fixtureSuite, type Case, type CheckResult } from '../helpers/fixtures.js';

const F = nn.functional;

/** Compares the tensors at the given input positions with the named extras after the op ran. */
const runningStats =
  (meanAt: number, varAt: number) =>
  (c: Case, r: CheckResult): void => {
    for (const [name, at] of [['running_mean', meanAt], ['running_var', varAt]] as const) {
      const want = c.extra![name]!;
      expectClose(r.inputs[at]!.data, decode(want.data), want.shape, `batchNorm2d ${name}`);
    }
  };

/**
 * Three training steps on x1, x2, x3 (the output and gradients are step 3's), snapshotting the running stats after
 * each step. momentum null = cumulative average, counted in a numBatchesTracked buffer (torch's BatchNorm2d
 * momentum=None; generate.py checks the fixture against that module).
 */
function threeSteps(momentum: number | null) {
  const snaps: Float32Array[][] = [];
  const fn = (x1: Tensor, x2: Tensor, x3: Tensor, w: Tensor, b: Tensor, rm: Tensor, rv: Tensor): Tensor => {
    snaps.length = 0;
    const numBatchesTracked = zeros([]);
    let y: Tensor | null = null;
    [x1, x2, x3].forEach((x) => {
      y = F.batchNorm2d(x, rm, rv, w, b, { training: true, momentum, eps: 1e-5, numBatchesTracked });
      snaps.push([rm.data.slice(), rv.data.slice()]);
    });
    return y!;
  };
  const after = (c: Case): void => {
    snaps.forEach(([m, v], k) => {
      const wm = c.extra![`running_mean_${k + 1}`]!;
      const wv = c.extra![`running_var_${k + 1}`]!;
      expectClose(m!, decode(wm.data), wm.shape, `batchNorm2d running_mean after step ${k + 1}`);
      expectClose(v!, decode(wv.data), wv.shape, `batchNorm2d running_var after step ${k + 1}`);
    });
  };
  return { fn: fn as (...t: Tensor[]) => Tensor, after };
}

const steps01 = threeSteps(0.1);
const stepsNone = threeSteps(null);

fixtureSuite('batchnorm', {
  bn_train: [
    'batchNorm2d training x=[4,3,5,5] momentum=0.1',
    (x, w, b, rm, rv) => F.batchNorm2d(x, rm!, rv!, w!, b!, { training: true, momentum: 0.1, eps: 1e-5 }),
    { after: runningStats(3, 4) },
  ],
  bn_train_nonsquare_eps_momentum: [
    'batchNorm2d training x=[2,2,3,4] momentum=0.3 eps=1e-3',
    (x, w, b, rm, rv) => F.batchNorm2d(x, rm!, rv!, w!, b!, { training: true, momentum: 0.3, eps: 1e-3 }),
    { after: runningStats(3, 4) },
  ],
  bn_train_batch1: [
    'batchNorm2d training x=[1,3,4,4] (batch 1)',
    (x, w, b, rm, rv) => F.batchNorm2d(x, rm!, rv!, w!, b!, { training: true, momentum: 0.1, eps: 1e-5 }),
    { after: runningStats(3, 4) },
  ],
  bn_train_no_affine: [
    'batchNorm2d training x=[3,2,3,3] no weight/bias',
    (x, rm, rv) => F.batchNorm2d(x, rm!, rv!, null, null, { training: true, momentum: 0.1, eps: 1e-5 }),
    { after: runningStats(1, 2) },
  ],
  bn_train_no_running_stats: [
    'batchNorm2d training x=[2,3,3,2] no running stats',
    (x, w, b) => F.batchNorm2d(x, null, null, w!, b!, { training: true, eps: 1e-5 }),
  ],
  bn_train_3steps_momentum_0_1: [
    'batchNorm2d training 3 steps x=[2,3,3,3] momentum=0.1 (running stats after each)',
    steps01.fn,
    { after: steps01.after },
  ],
  bn_train_3steps_momentum_none: [
    'batchNorm2d training 3 steps x=[2,3,3,3] momentum=null (cumulative average)',
    stepsNone.fn,
    { after: stepsNone.after },
  ],
  bn_eval: [
    'batchNorm2d eval x=[2,3,4,3] (running stats used, unchanged)',
    (x, w, b, rm, rv) => F.batchNorm2d(x, rm!, rv!, w!, b!, { training: false, eps: 1e-5 }),
    { after: runningStats(3, 4) },
  ],
  bn_eval_single_pixel: [
    'batchNorm2d eval x=[1,4,1,1] (one value per channel is fine in eval)',
    (x, w, b, rm, rv) => F.batchNorm2d(x, rm!, rv!, w!, b!, { training: false, eps: 1e-5 }),
  ],
});
