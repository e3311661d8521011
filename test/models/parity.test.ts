/**
 * Numerical parity with torchvision 0.14 on full-size models: both sides load the same formula weights
 * (test/helpers/formula.ts ≡ gen_models.py) and we compare against float64 PyTorch results
 * (test/fixtures/models/logits.json and train_resnet18.json).
 *
 * Tolerances, for a float32 engine against a float64 reference:
 *  - eval logits: |Δ| ≤ 1e-4·max|y|. Each logit is ~20 layers of dot products of up to 4608 terms; float32 rounding
 *    (eps 6e-8) accumulates to ~1e-6 relative per layer, so 1e-4 leaves ~10× headroom while any wrong layer
 *    (a missing bias, a transposed weight, a wrong stride or padding) moves logits by O(max|y|).
 *  - loss: rtol 1e-4 (same reasoning).
 *  - a gradient element: |Δ| ≤ 1e-5 + 1e-4·max|g| of its tensor. The backward of train-mode BN subtracts means
 *    (cancellation), so element errors are judged against the tensor's scale, not the element's own size.
 *  - gradient sums over n elements: |Δ| ≤ 1e-3·|ref| + 1e-5·√n·max|g| (independent element errors of ~1e-5·max|g|
 *    add up like √n; 1e-3·|ref| covers correlated error). Sum of squares: same with 2·max|g|·(the absolute term),
 *    since δ(g²) = 2g·δg. Sum of |g|: as the sum.
 *  - BN running stats after the step: |Δ| ≤ 1e-5 + 1e-4·|ref|.
 *  - parameters after one SGD step p − lr·(g + wd·p): the gradient tolerances scaled by lr, plus float32 rounding of p
 *    (1e-6·|ref| per element, 1e-6·Σ|p| on sums).
 * Set PARITY_REPORT=1 to print the observed worst errors per case.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { models, nn, noGrad } from '../../src/index.js';
import { SGD } from '../../src/optim/sgd.js';
import { formulaInput, loadFormula } from '../helpers/formula.js';

interface FT {
  shape: number[];
  data: number[];
}
interface Summary {
  n: number;
  sum: number;
  sumsq: number;
  abssum: number;
  maxabs: number;
  samples: [number, number][];
}
interface LogitCase {
  model: 'resnet18' | 'resnet50' | 'resnext50_32x4d';
  numClasses: number;
  input: number[];
  logits: FT;
}
interface TrainCase {
  model: 'resnet18';
  numClasses: number;
  input: number[];
  targets: number[];
  loss: number;
  logits: FT;
  sgd: { lr: number; momentum: number; weightDecay: number };
  grads: Record<string, Summary>;
  after: Record<string, Summary>;
  running: Record<string, { running_mean: number[]; running_var: number[]; num_batches_tracked: number }>;
}

const read = <T>(f: string): T => JSON.parse(readFileSync(new URL(`../fixtures/models/${f}`, import.meta.url), 'utf8')) as T;
const logitCases = read<Record<string, LogitCase>>('logits.json');
const train = read<TrainCase>('train_resnet18.json');

const REPORT = !!process.env.PARITY_REPORT;
const report = (msg: string): void => {
  if (REPORT) console.log(msg);
};

/** One comparison: |got − want| ≤ tol, with a name for the failure message; `group` and `scale` (what the error is
 * relative to) only feed the PARITY_REPORT summary. */
interface Check {
  group: string;
  what: string;
  got: number;
  want: number;
  tol: number;
  scale: number;
}

/** Collects checks; `assert` fails listing how many failed and the worst few (by |Δ|/tol). */
class Checks {
  readonly list: Check[] = [];
  add(group: string, what: string, got: number, want: number, tol: number, scale = Math.abs(want)): void {
    this.list.push({ group, what, got, want, tol, scale });
  }
  /** Per group: the worst relative error |Δ|/scale and the worst fraction of the tolerance used, |Δ|/tol. */
  summary(): string {
    const g = new Map<string, [number, number]>();
    for (const c of this.list) {
      const d = Math.abs(c.got - c.want);
      const [r, t] = g.get(c.group) ?? [0, 0];
      g.set(c.group, [Math.max(r, c.scale > 0 ? d / c.scale : d), Math.max(t, c.tol > 0 ? d / c.tol : d)]);
    }
    return [...g].map(([k, [r, t]]) => `  ${k}: max rel err ${r.toExponential(2)}, ${(100 * t).toFixed(1)}% of tol`).join('\n');
  }
  assert(): void {
    const bad = this.list.filter((c) => !(Math.abs(c.got - c.want) <= c.tol));
    bad.sort((a, b) => Math.abs(b.got - b.want) / b.tol - Math.abs(a.got - a.want) / a.tol);
    const lines = bad.slice(0, 12).map((c) => `  ${c.what}: ${c.got} vs ${c.want} (|Δ|=${Math.abs(c.got - c.want).toExponential(2)}, tol ${c.tol.toExponential(2)})`);
    expect(bad.length, `${bad.length}/${this.list.length} checks fail; worst:\n${lines.join('\n')}`).toBe(0);
  }
}

function summarize(data: Float32Array): Omit<Summary, 'samples'> {
  let sum = 0;
  let sumsq = 0;
  let abssum = 0;
  let maxabs = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    sum += v;
    sumsq += v * v;
    abssum += Math.abs(v);
    if (Math.abs(v) > maxabs) maxabs = Math.abs(v);
  }
  return { n: data.length, sum, sumsq, abssum, maxabs };
}

/**
 * Compares a tensor to its fixture summary. `elem`: the per-element error budget (absolute); `rounding`: relative
 * float32 rounding of each element (added per element to samples and as rounding·Σ|x| to sums).
 */
function checkSummary(c: Checks, group: string, name: string, data: Float32Array, ref: Summary, elem: number, scale: number, rounding = 0): void {
  expect(data.length, `${name} size`).toBe(ref.n);
  const s = summarize(data);
  const root = Math.sqrt(ref.n);
  const roundSum = rounding * ref.abssum;
  // report: sum errors relative to Σ|x| (a sum may cancel to ~0), samples relative to max|x| (gradients) or |x|
  c.add(`${group} sum (rel. to Σ|x|)`, `${name} sum`, s.sum, ref.sum, 1e-3 * Math.abs(ref.sum) + 1e-5 * root * scale + roundSum, ref.abssum);
  c.add(`${group} sumsq`, `${name} sumsq`, s.sumsq, ref.sumsq, 1e-3 * ref.sumsq + 2 * ref.maxabs * (1e-5 * root * scale + roundSum));
  c.add(`${group} abssum`, `${name} abssum`, s.abssum, ref.abssum, 1e-3 * ref.abssum + 1e-5 * root * scale + roundSum);
  for (const [i, v] of ref.samples) {
    c.add(`${group} samples (rel. to ${rounding ? '|x|' : 'max|x|'})`, `${name}[${i}]`, data[i]!, v, elem + rounding * Math.abs(v), rounding ? Math.abs(v) : ref.maxabs);
  }
}

describe('parity with torchvision (formula weights, float64 PyTorch reference)', () => {
  for (const [name, fc] of Object.entries(logitCases)) {
    it(`eval logits ${name}: |Δ| ≤ 1e-4·max|y|`, () => {
      const m = models[fc.model]({ numClasses: fc.numClasses });
      loadFormula(m);
      m.eval();
      const y = noGrad(() => m.forward(formulaInput(fc.input)));
      expect([...y.shape]).toEqual(fc.logits.shape);
      const want = fc.logits.data;
      let maxRef = 0;
      for (const v of want) maxRef = Math.max(maxRef, Math.abs(v));
      const c = new Checks();
      want.forEach((v, i) => c.add('logits (rel. to max|y|)', `logit ${i}`, y.data[i]!, v, 1e-4 * maxRef, maxRef));
      report(`${name} (max|y| ${maxRef.toFixed(3)}):\n${c.summary()}`);
      c.assert();
    });
  }

  it('resnet18 train step (4x3x32x32, 10 classes): loss, every gradient, BN running stats, params after SGD', () => {
    const m = models.resnet18({ numClasses: train.numClasses });
    loadFormula(m);
    m.train();
    const y = m.forward(formulaInput(train.input));
    const loss = nn.functional.crossEntropy(y, train.targets);
    loss.backward();

    const c = new Checks();
    c.add('loss', 'loss', loss.item(), train.loss, 1e-4 * Math.abs(train.loss));
    let maxLogit = 0;
    for (const v of train.logits.data) maxLogit = Math.max(maxLogit, Math.abs(v));
    train.logits.data.forEach((v, i) => c.add('logits (rel. to max|y|)', `train logit ${i}`, y.data[i]!, v, 1e-4 * maxLogit, maxLogit));

    const params = m.namedParameters();
    expect(params.map(([k]) => k)).toEqual(Object.keys(train.grads));
    const before = new Map<string, Float32Array>();
    for (const [k, p] of params) {
      const ref = train.grads[k]!;
      expect(p.grad, `${k}.grad`).not.toBeNull();
      checkSummary(c, 'grad', `grad ${k}`, p.grad!.data, ref, 1e-5 + 1e-4 * ref.maxabs, ref.maxabs);
      before.set(k, p.data.slice());
    }

    const sd = m.stateDict();
    for (const [prefix, r] of Object.entries(train.running)) {
      const mean = sd[`${prefix}.running_mean`]!;
      const vr = sd[`${prefix}.running_var`]!;
      expect(mean.size, `${prefix}.running_mean size`).toBe(r.running_mean.length);
      expect(vr.size, `${prefix}.running_var size`).toBe(r.running_var.length);
      r.running_mean.forEach((v, i) => c.add('running_mean', `${prefix}.running_mean[${i}]`, mean.data[i]!, v, 1e-5 + 1e-4 * Math.abs(v)));
      r.running_var.forEach((v, i) => c.add('running_var', `${prefix}.running_var[${i}]`, vr.data[i]!, v, 1e-5 + 1e-4 * Math.abs(v)));
      c.add('num_batches_tracked', `${prefix}.num_batches_tracked`, sd[`${prefix}.num_batches_tracked`]!.item(), r.num_batches_tracked, 0);
    }

    const { lr, momentum, weightDecay } = train.sgd;
    const opt = new SGD(m.parameters(), { lr, momentum, weightDecay });
    opt.step();
    for (const [k, p] of params) {
      const g = train.grads[k]!;
      checkSummary(c, 'param after SGD', `after ${k}`, p.data, train.after[k]!, lr * (1e-5 + 1e-4 * g.maxabs), lr * g.maxabs, 1e-6);
    }

    report(`train step:\n${c.summary()}`);
    c.assert();
  });
});
