/**
 * crossEntropy / nllLoss (issue 3) against PyTorch fixtures: test/fixtures/ops/loss.json. Class targets are stored in
 * each case's params (integers); class weights are the second fixture input (no gradient).
 */
import { nn } from '../../src/index.js';
import { fixtureSuite, loadFixtures } from '../helpers/fixtures.js';

const F = nn.functional;
const fx = loadFixtures('loss');
/** The integer targets stored with a case. */
const T = (name: string): number[] => fx[name]!.params.target as number[];

fixtureSuite('loss', {
  ce_mean: ['crossEntropy logits=[4,5] mean', (x) => F.crossEntropy(x, T('ce_mean'))],
  ce_sum: ['crossEntropy logits=[4,5] sum', (x) => F.crossEntropy(x, T('ce_sum'), { reduction: 'sum' })],
  ce_none: ['crossEntropy logits=[4,5] none', (x) => F.crossEntropy(x, T('ce_none'), { reduction: 'none' })],
  ce_batch1: ['crossEntropy logits=[1,10] mean', (x) => F.crossEntropy(x, T('ce_batch1'))],
  ce_label_smoothing_0_1: ['crossEntropy logits=[4,5] labelSmoothing=0.1', (x) => F.crossEntropy(x, T('ce_label_smoothing_0_1'), { labelSmoothing: 0.1 })],
  ce_label_smoothing_none: [
    'crossEntropy logits=[4,5] labelSmoothing=0.1 none',
    (x) => F.crossEntropy(x, T('ce_label_smoothing_none'), { labelSmoothing: 0.1, reduction: 'none' }),
  ],
  ce_ignore_index_mean: ['crossEntropy logits=[5,4] ignoreIndex=-100 mean over non-ignored', (x) => F.crossEntropy(x, T('ce_ignore_index_mean'))],
  ce_ignore_index_sum: ['crossEntropy logits=[5,4] ignoreIndex=-100 sum', (x) => F.crossEntropy(x, T('ce_ignore_index_sum'), { reduction: 'sum' })],
  ce_ignore_index_none: [
    'crossEntropy logits=[5,4] ignoreIndex=-100 none (ignored rows 0)',
    (x) => F.crossEntropy(x, T('ce_ignore_index_none'), { reduction: 'none' }),
  ],
  ce_ignore_index_2: ['crossEntropy logits=[5,4] ignoreIndex=2', (x) => F.crossEntropy(x, T('ce_ignore_index_2'), { ignoreIndex: 2 })],
  ce_ignore_smoothing: [
    'crossEntropy logits=[5,4] ignoreIndex=-100 labelSmoothing=0.1',
    (x) => F.crossEntropy(x, T('ce_ignore_smoothing'), { labelSmoothing: 0.1 }),
  ],
  ce_weight_mean: ['crossEntropy logits=[6,4] weight=[4] mean (÷ Σ weight[target])', (x, w) => F.crossEntropy(x, T('ce_weight_mean'), { weight: w })],
  ce_weight_sum: ['crossEntropy logits=[6,4] weight=[4] sum', (x, w) => F.crossEntropy(x, T('ce_weight_sum'), { weight: w, reduction: 'sum' })],
  ce_weight_none: ['crossEntropy logits=[6,4] weight=[4] none', (x, w) => F.crossEntropy(x, T('ce_weight_none'), { weight: w, reduction: 'none' })],
  ce_weight_ignore: ['crossEntropy logits=[5,4] weight=[4] ignoreIndex=-100', (x, w) => F.crossEntropy(x, T('ce_weight_ignore'), { weight: w })],
  ce_weight_smoothing: [
    'crossEntropy logits=[6,4] weight=[4] labelSmoothing=0.1',
    (x, w) => F.crossEntropy(x, T('ce_weight_smoothing'), { weight: w, labelSmoothing: 0.1 }),
  ],
  ce_weight_smoothing_ignore: [
    'crossEntropy logits=[5,4] weight=[4] labelSmoothing=0.2 ignoreIndex=-100',
    (x, w) => F.crossEntropy(x, T('ce_weight_smoothing_ignore'), { weight: w, labelSmoothing: 0.2 }),
  ],
  ce_extreme_logits: [
    'crossEntropy [[1000,0,-1000]]×3 targets 0,1,2 none (loss 0, 1000, 2000; finite grads)',
    (x) => F.crossEntropy(x, T('ce_extreme_logits'), { reduction: 'none' }),
  ],
  ce_extreme_logits_mean: ['crossEntropy extreme logits=[2,3] mean', (x) => F.crossEntropy(x, T('ce_extreme_logits_mean'))],
  nll_mean: ['nllLoss x=[4,5] mean', (x) => F.nllLoss(x, T('nll_mean'))],
  nll_sum: ['nllLoss x=[4,5] sum', (x) => F.nllLoss(x, T('nll_sum'), { reduction: 'sum' })],
  nll_none: ['nllLoss x=[4,5] none', (x) => F.nllLoss(x, T('nll_none'), { reduction: 'none' })],
  nll_weight_mean: ['nllLoss x=[6,4] weight=[4] mean', (x, w) => F.nllLoss(x, T('nll_weight_mean'), { weight: w })],
  nll_ignore_index_mean: ['nllLoss x=[5,4] ignoreIndex=-100 mean', (x) => F.nllLoss(x, T('nll_ignore_index_mean'))],
});
