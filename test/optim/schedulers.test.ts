import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Tensor, ValueError, StateDictError } from '../../src/index.js';
import {
  SGD,
  Adam,
  StepLR,
  MultiStepLR,
  ConstantLR,
  LinearLR,
  ExponentialLR,
  CosineAnnealingLR,
  LambdaLR,
  SequentialLR,
  OneCycleLR,
  cifarResnetSchedule,
  type LRScheduler,
  type AnyOptimizer,
} from '../../src/optim/index.js';

// Reference: test/fixtures/gen_optim.py (torch.optim.lr_scheduler 1.13). lr sequences compared to rtol 1e-6.

interface SchedCase {
  scheduler: string;
  optimizer: { kind: 'SGD' | 'Adam'; lrs: number[]; momentum?: number };
  args: Record<string, any>;
  lrs: number[][];
  momentums?: number[][];
}
const load = <T>(name: string): T => JSON.parse(readFileSync(new URL(`../fixtures/optim/${name}`, import.meta.url), 'utf8')) as T;
const SCHED = load<Record<string, SchedCase>>('schedulers.json');
const CIFAR = load<{ iterations: number[]; plain: number[]; warmup: number[] }>('cifar_schedule.json');

function makeOpt(spec: SchedCase['optimizer']): AnyOptimizer {
  const groups = spec.lrs.map((lr) => ({ params: [new Tensor(new Float32Array(2), [2])], lr }));
  if (spec.kind === 'SGD') return new SGD(groups, { lr: spec.lrs[0]!, momentum: spec.momentum ?? 0 });
  return new Adam(groups, { lr: spec.lrs[0]! });
}

function makeSched(opt: AnyOptimizer, name: string, a: Record<string, any>): LRScheduler {
  switch (name) {
    case 'StepLR': return new StepLR(opt, a.stepSize, a.gamma);
    case 'MultiStepLR': return new MultiStepLR(opt, a.milestones, a.gamma);
    case 'ConstantLR': return new ConstantLR(opt, a);
    case 'LinearLR': return new LinearLR(opt, a);
    case 'ExponentialLR': return new ExponentialLR(opt, a.gamma);
    case 'CosineAnnealingLR': return new CosineAnnealingLR(opt, a.tMax, a.etaMin);
    case 'OneCycleLR': return new OneCycleLR(opt, a as any);
    case 'SequentialLR':
      return new SequentialLR(opt, a.schedulers.map((s: any) => makeSched(opt, s.scheduler, s.args)), a.milestones);
    default: throw new Error(`unknown scheduler ${name}`);
  }
}

function expectSeq(what: string, got: number[][], want: number[][], rtol = 1e-6): void {
  expect(got.length, `${what}: number of steps`).toBe(want.length);
  for (let k = 0; k < want.length; k++) {
    for (let g = 0; g < want[k]!.length; g++) {
      const w = want[k]![g]!;
      const v = got[k]![g]!;
      if (!(Math.abs(v - w) <= rtol * Math.abs(w) + 1e-15)) throw new Error(`${what}: step ${k} group ${g}: ${v} vs torch ${w} (|Δ|=${Math.abs(v - w)})`);
    }
  }
}

const momentumOf = (opt: AnyOptimizer): number[] =>
  opt.paramGroups.map((g: any) => (g.betas ? g.betas[0] : g.momentum) as number);

describe('schedulers reproduce torch lr sequences', () => {
  for (const [name, c] of Object.entries(SCHED)) {
    it(`${name}: ${c.scheduler} ${JSON.stringify(c.args)} over ${c.lrs.length - 1} steps`, () => {
      const opt = makeOpt(c.optimizer);
      const s = makeSched(opt, c.scheduler, c.args);
      const lrs = [s.getLastLr()];
      const moms = [momentumOf(opt)];
      for (let k = 1; k < c.lrs.length; k++) {
        opt.step();
        s.step();
        lrs.push(s.getLastLr());
        moms.push(momentumOf(opt));
        expect(opt.paramGroups.map((g) => g.lr)).toEqual(lrs[k]);
      }
      expectSeq(name, lrs, c.lrs);
      if (c.momentums) expectSeq(`${name} momentum`, moms, c.momentums);
    });
  }

  it('hand-computed: StepLR(2, 0.5) from 1 gives 1, 1, 0.5, 0.5, 0.25', () => {
    const opt = makeOpt({ kind: 'SGD', lrs: [1] });
    const s = new StepLR(opt, 2, 0.5);
    const got = [s.getLastLr()[0]];
    for (let i = 0; i < 4; i++) {
      s.step();
      got.push(s.getLastLr()[0]);
    }
    expect(got).toEqual([1, 1, 0.5, 0.5, 0.25]);
  });

  it('hand-computed: CosineAnnealingLR(4) from 1 gives (1 + cos(πk/4))/2', () => {
    const opt = makeOpt({ kind: 'SGD', lrs: [1] });
    const s = new CosineAnnealingLR(opt, 4);
    for (let k = 1; k <= 4; k++) {
      s.step();
      expect(s.getLastLr()[0]).toBeCloseTo((1 + Math.cos((Math.PI * k) / 4)) / 2, 12);
    }
  });

  it('OneCycleLR: stepping past totalSteps throws torch\'s ValueError', () => {
    const opt = makeOpt({ kind: 'SGD', lrs: [0.1], momentum: 0.9 });
    const s = new OneCycleLR(opt, { maxLr: 1, totalSteps: 3 });
    s.step();
    s.step();
    s.step();
    // torch's text (checked with torch 1.13: "Tried to step 5 times. The specified number of total steps is 3")
    let err: unknown;
    try {
      s.step();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ValueError);
    expect((err as Error).message).toBe('[OneCycleLR] Tried to step 5 times. The specified number of total steps is 3');
  });

  it('LinearLR / OneCycleLR / SequentialLR reject bad arguments', () => {
    const opt = makeOpt({ kind: 'SGD', lrs: [0.1] });
    expect(() => new LinearLR(opt, { startFactor: 1.5 })).toThrow('Starting multiplicative factor expected to be greater than 0 and less or equal to 1.');
    expect(() => new LinearLR(opt, { endFactor: -1 })).toThrow('Ending multiplicative factor expected to be between 0 and 1.');
    expect(() => new OneCycleLR(opt, { maxLr: 1 })).toThrow('You must define either total_steps OR (epochs AND steps_per_epoch)');
    expect(() => new OneCycleLR(opt, { maxLr: 1, totalSteps: 0 })).toThrow('Expected positive integer total_steps, but got 0');
    expect(() => new OneCycleLR(opt, { maxLr: 1, totalSteps: 10, pctStart: 1.5 })).toThrow('Expected float between 0 and 1 pct_start, but got 1.5');
    expect(() => new OneCycleLR(opt, { maxLr: [1, 2], totalSteps: 10 })).toThrow('expected 1 values for max_lr, got 2');
    const s1 = new StepLR(opt, 3);
    expect(() => new SequentialLR(opt, [s1], [5])).toThrow('expects number of schedulers provided to be one more than the number of milestone points');
    expect(() => new SequentialLR(opt, [s1, new StepLR(makeOpt({ kind: 'SGD', lrs: [0.1] }), 2)], [5])).toThrow(ValueError);
  });
});

describe('scheduler stateDict', () => {
  it('resuming SequentialLR(LinearLR, Cosine) from its state dict continues the torch sequence', () => {
    const c = SCHED.sequential_warmup_cosine!;
    const optA = makeOpt(c.optimizer);
    const a = makeSched(optA, c.scheduler, c.args);
    for (let k = 0; k < 37; k++) a.step();
    const saved = JSON.parse(JSON.stringify(a.stateDict()));
    const optSaved = optA.stateDict();
    const optB = makeOpt(c.optimizer);
    const b = makeSched(optB, c.scheduler, c.args);
    optB.loadStateDict(optSaved);
    b.loadStateDict(saved);
    const lrs = [];
    for (let k = 38; k < c.lrs.length; k++) {
      b.step();
      lrs.push(b.getLastLr());
    }
    expectSeq('resumed', lrs, c.lrs.slice(38));
  });

  it('resuming OneCycleLR restores momentum cycling and the step count', () => {
    const c = SCHED.onecycle_cos_300!;
    const optA = makeOpt(c.optimizer);
    const a = makeSched(optA, c.scheduler, c.args);
    for (let k = 0; k < 100; k++) a.step();
    const optB = makeOpt(c.optimizer);
    const b = makeSched(optB, c.scheduler, c.args);
    optB.loadStateDict(optA.stateDict());
    b.loadStateDict(JSON.parse(JSON.stringify(a.stateDict())));
    b.step();
    expectSeq('lr after resume', [b.getLastLr()], [c.lrs[101]!]);
    expectSeq('momentum after resume', [momentumOf(optB)], [c.momentums![101]!]);
  });

  it('loadStateDict rejects another scheduler kind', () => {
    const opt = makeOpt({ kind: 'SGD', lrs: [0.1] });
    const s = new StepLR(opt, 3);
    expect(() => s.loadStateDict(new ExponentialLR(opt, 0.5).stateDict())).toThrow(StateDictError);
  });
});

describe('cifarResnetSchedule (He et al. 2015 §4.2)', () => {
  for (const warmup of [false, true]) {
    it(`warmup=${warmup}: matches torch LambdaLR at iterations ${CIFAR.iterations.join(',')}`, () => {
      const p = new Tensor(new Float32Array(1), [1]);
      const opt = new SGD([p], { lr: 0.5, momentum: 0.9, weightDecay: 1e-4 });
      const s = cifarResnetSchedule(opt, { warmup });
      expect(s.totalIters).toBe(64000);
      const at = new Set(CIFAR.iterations);
      const got: number[][] = [];
      for (let it = 0; it <= 64000; it++) {
        if (at.has(it)) got.push(s.getLastLr());
        s.step();
      }
      expectSeq(`cifar warmup=${warmup}`, got, (warmup ? CIFAR.warmup : CIFAR.plain).map((v) => [v]));
    });
  }
  it('hand-derived values: 0.01 for iterations 0..399 with warm-up, 0.1 until 32k, 0.01 until 48k, then 0.001', () => {
    const opt = new SGD([new Tensor(new Float32Array(1), [1])], { lr: 0.1 });
    const s = cifarResnetSchedule(opt, { warmup: true });
    const lrAt = new Map<number, number>();
    for (let it = 0; it <= 48000; it++) {
      lrAt.set(it, s.getLastLr()[0]!);
      s.step();
    }
    const want: Array<[number, number]> = [[0, 0.01], [399, 0.01], [400, 0.1], [31999, 0.1], [32000, 0.01], [47999, 0.01], [48000, 0.001]];
    for (const [it, lr] of want) expect(lrAt.get(it), `iteration ${it}`).toBeCloseTo(lr, 15);
  });
  it('LambdaLR with one function per group', () => {
    const opt = makeOpt({ kind: 'SGD', lrs: [1, 2] });
    const s = new LambdaLR(opt, [(e) => 1 / (e + 1), (e) => e]);
    s.step();
    s.step();
    expect(s.getLastLr()).toEqual([1 / 3, 4]);
  });
});
