/**
 * Optimizer and schedule boundaries, table-driven: settings that cannot work, parameter lists that are not parameter
 * lists, state dicts from elsewhere, schedules driven past their end. Each row names the error class and message
 * fragments: the optimizer or schedule in brackets and the offending value, key or index.
 *
 * Not repeated here (test/optim/*.test.ts): negative lr / momentum / weight decay / eps, betas of 1.0 and -0.5,
 * Nesterov misuse, an empty parameter list, one tensor in two groups, SGD state into a 3-element parameter, a
 * 1-group state into 2 groups, SGD state into Adam, malformed checkpoint JSON, OneCycleLR stepped one past its end,
 * LinearLR / OneCycleLR / SequentialLR argument errors, another scheduler kind's state.
 */
import { describe, expect, it } from 'vitest';
import { AutogradError, mul, optim, StateDictError, tensor, Tensor, ValueError, zeros, ones } from '../../src/index.js';
import { runRows, type Row } from './rows.js';

const { SGD, Adam, AdamW, StepLR, CosineAnnealingLR, ConstantLR, LinearLR, OneCycleLR, LambdaLR, SequentialLR, clipGradNorm } = optim;

const p = (n = 2): Tensor => zeros([n], { requiresGrad: true });
const sgd = (momentum = 0.9): InstanceType<typeof SGD> => new SGD([p()], { lr: 0.1, momentum });

describe('optimizer settings and parameter lists', () => {
  const rows: Row[] = [
    ['SGD lr NaN', () => new SGD([p()], { lr: NaN }), ValueError, ['[SGD]', 'Invalid learning rate: NaN']],
    ['SGD lr missing', () => new SGD([p()], {} as { lr: number }), ValueError, ['[SGD]', 'lr']],
    ["SGD lr '0.1' (a string)", () => new SGD([p()], { lr: '0.1' as unknown as number }), ValueError, ['[SGD]', 'lr']],
    ['SGD momentum NaN', () => new SGD([p()], { lr: 0.1, momentum: NaN }), ValueError, ['[SGD]', 'Invalid momentum value: NaN']],
    ['SGD weightDecay NaN', () => new SGD([p()], { lr: 0.1, weightDecay: NaN }), ValueError, ['[SGD]', 'Invalid weight_decay value: NaN']],
    ['SGD group with lr NaN', () => new SGD([{ params: [p()] }, { params: [p()], lr: NaN }], { lr: 0.1 }), ValueError, ['[SGD]', 'Invalid learning rate: NaN']],
    ['Adam lr NaN', () => new Adam([p()], { lr: NaN }), ValueError, ['[Adam]', 'Invalid learning rate: NaN']],
    ['Adam eps NaN', () => new Adam([p()], { eps: NaN }), ValueError, ['[Adam]', 'Invalid epsilon value: nan']],
    ['Adam betas [NaN, 0.999]', () => new Adam([p()], { betas: [NaN, 0.999] }), ValueError, ['[Adam]', 'Invalid beta parameter at index 0: nan']],
    ['Adam betas [0.9] (one value)', () => new Adam([p()], { betas: [0.9] as unknown as [number, number] }), ValueError, ['[Adam]', 'beta parameter at index 1']],
    ['AdamW lr NaN', () => new AdamW([p()], { lr: NaN }), ValueError, ['[AdamW]', 'Invalid learning rate: NaN']],
    ['AdamW weightDecay NaN', () => new AdamW([p()], { weightDecay: NaN }), ValueError, ['[AdamW]', 'Invalid weight_decay value: NaN']],
    ['one tensor listed twice in one list', () => {
      const q = p();
      return new SGD([q, q], { lr: 0.1 });
    }, ValueError, ['[SGD]', 'some parameters appear in more than one parameter group']],
    ['addParamGroup with a tensor already in a group', () => {
      const q = p();
      new SGD([q], { lr: 0.1 }).addParamGroup({ params: [q] });
    }, ValueError, ['[SGD]', 'some parameters appear in more than one parameter group']],
    ['mixing tensors and groups', () => new SGD([p(), { params: [p()] }] as unknown as Tensor[], { lr: 0.1 }), ValueError,
      ['[SGD]', 'all tensors or all parameter groups']],
    ['step() with a gradient of 3 elements for a 2-element parameter', () => {
      const q = p();
      const o = new SGD([q], { lr: 0.1 });
      q.grad = zeros([3]); // refused here, as PyTorch refuses the assignment
      o.step();
    }, AutogradError, ['[grad]', 'assigned grad has shape [3], the tensor has shape [2]']],
    ['Adam step() with a gradient of 1 element for a 2-element parameter', () => {
      const q = p();
      const o = new Adam([q]);
      q.grad = zeros([1]);
      o.step();
    }, AutogradError, ['[grad]', 'assigned grad has shape [1], the tensor has shape [2]']],
    ['clipGradNorm normType -1', () => clipGradNorm([p()], 1, -1), ValueError, ['[clipGradNorm]', 'normType', '-1']],
    ['clipGradNorm normType NaN', () => clipGradNorm([p()], 1, NaN), ValueError, ['[clipGradNorm]', 'normType', 'NaN']],
    ['clipGradNorm of an Inf gradient with errorIfNonfinite', () => {
      const q = p();
      q.grad = new Tensor(Float32Array.from([Infinity, 1]), [2]);
      clipGradNorm([q], 1, 2, { errorIfNonfinite: true });
    }, ValueError, ['[clipGradNorm]', 'non-finite']],
    // issue 10: PyTorch 1.13 accepts lr=inf and the like; we reject non-finite values with PyTorch's wording
    ['O1 SGD lr Infinity', () => new SGD([p()], { lr: Infinity }), ValueError, ['[SGD]', 'Invalid learning rate: Infinity']],
    ['O1b Adam lr Infinity', () => new Adam([p()], { lr: Infinity }), ValueError, ['[Adam]', 'Invalid learning rate: Infinity']],
    ['O2 SGD momentum Infinity', () => new SGD([p()], { lr: 0.1, momentum: Infinity }), ValueError, ['[SGD]', 'Invalid momentum value: Infinity']],
    ['O2b SGD dampening NaN', () => new SGD([p()], { lr: 0.1, momentum: 0.9, dampening: NaN }), ValueError, ['[SGD]', 'dampening', 'NaN']],
    ['O2c SGD weightDecay Infinity', () => new SGD([p()], { lr: 0.1, weightDecay: Infinity }), ValueError, ['[SGD]', 'Invalid weight_decay value: Infinity']],
    ['O3 SGD([1, 2])', () => new SGD([1, 2] as unknown as Tensor[], { lr: 0.1 }), ValueError, ['[SGD]', 'can only optimize Tensors']],
    ['O4 SGD of a non-leaf', () => new SGD([mul(p(), 2)], { lr: 0.1 }), ValueError, ['[SGD]', "can't optimize a non-leaf Tensor"]],
    ['O5 SGD(a lone Tensor)', () => new SGD(p() as unknown as Tensor[], { lr: 0.1 }), ValueError, ['[SGD]', 'iterable']],
    ['O9 grad [3,2] for param [2,3]', () => {
      const q = zeros([2, 3], { requiresGrad: true });
      const o = new SGD([q], { lr: 0.1 });
      q.grad = zeros([3, 2]); // refused here, as PyTorch refuses the assignment
      o.step();
    }, AutogradError, ['[grad]', 'assigned grad has shape [3, 2], the tensor has shape [2, 3]']],
    ['O12 clipGradNorm maxNorm -1', () => {
      const q = p();
      q.grad = tensor([1, 1]);
      clipGradNorm([q], -1);
    }, ValueError, ['[clipGradNorm]', 'maxNorm', '-1']],
    ['O12b clipGradNorm maxNorm NaN', () => {
      const q = p();
      q.grad = tensor([1, 1]);
      clipGradNorm([q], NaN);
    }, ValueError, ['[clipGradNorm]', 'maxNorm', 'NaN']],
    ["Adam eps Infinity", () => new Adam([p()], { eps: Infinity }), ValueError, ['[Adam]', 'Invalid epsilon value: inf']],
    ["SGD nesterov 'false' (a string)", () => new SGD([p()], { lr: 0.1, momentum: 0.9, nesterov: 'false' as unknown as boolean }), ValueError, ['[SGD]', 'nesterov', 'false']],
    ['SGD group whose params hold a number', () => new SGD([{ params: [p(), 3 as unknown as Tensor] }], { lr: 0.1 }), ValueError, ['[SGD]', 'can only optimize Tensors', 'number 3']],
  ];
  runRows(rows);
});

describe("optimizer loadStateDict: another optimizer's state", () => {
  const trained = (opt: InstanceType<typeof SGD>): InstanceType<typeof SGD> => {
    for (const g of opt.paramGroups) for (const q of g.params) q.grad = ones(q.shape.slice());
    opt.step();
    return opt;
  };
  const rows: Row[] = [
    ['AdamW state into Adam', () => new Adam([p()]).loadStateDict(new AdamW([p()]).stateDict()), StateDictError,
      ['[Adam.loadStateDict]', 'state dict is for AdamW, this optimizer is Adam']],
    ["an SGD with 2 parameters' state into an SGD with 1 (same group count)", () =>
      sgd().loadStateDict(trained(new SGD([p(), p()], { lr: 0.1, momentum: 0.9 })).stateDict()), StateDictError,
    ['[SGD.loadStateDict]', "doesn't match the size of optimizer's group", 'group 0: 2 vs 1']],
    ['a 2-group state into 1 group', () => sgd().loadStateDict(new SGD([{ params: [p()] }, { params: [p()] }], { lr: 0.1 }).stateDict()), StateDictError,
      ['[SGD.loadStateDict]', 'different number of parameter groups (2 vs 1)']],
    ['state for parameter 7 of a 1-parameter optimizer', () => {
      const s = trained(sgd()).stateDict();
      s.state['7'] = { momentum_buffer: new Float32Array(2) };
      sgd().loadStateDict(s);
    }, StateDictError, ['[SGD.loadStateDict]', 'state for parameter 7, which is in no parameter group']],
    ["a momentum buffer of a 5-element parameter into a 2-element one", () =>
      sgd().loadStateDict(trained(new SGD([p(5)], { lr: 0.1, momentum: 0.9 })).stateDict()), StateDictError,
    ['[SGD.loadStateDict]', 'state 0.momentum_buffer has 5 elements but parameter 0 has 2']],
    ['Adam state whose exp_avg_sq is short', () => {
      const a = new Adam([p()]);
      a.paramGroups[0]!.params[0]!.grad = ones([2]);
      a.step();
      const s = a.stateDict();
      s.state['0']!.exp_avg_sq = new Float32Array(1);
      new Adam([p()]).loadStateDict(s);
    }, StateDictError, ['[Adam.loadStateDict]', 'state 0.exp_avg_sq has 1 elements but parameter 0 has 2']],
    ['optimizerStateFromTensors with metadata missing "paramGroups"', () => optim.optimizerStateFromTensors(sgd(), {}, '{"kind":"SGD","state":{}}'),
      StateDictError, ['[optimizerStateFromTensors]', '"paramGroups"']],
    ['optimizerStateFromTensors with a 3-element buffer tensor for a 2-element parameter', () =>
      optim.optimizerStateFromTensors(sgd(), { 'optimizer.state.0.momentum_buffer': zeros([3]) }, JSON.stringify({ kind: 'SGD', paramGroups: sgd().stateDict().paramGroups, state: {} })),
    StateDictError, ['state 0.momentum_buffer has 3 elements but parameter 0 has 2']],
    ['O6 loadStateDict with lr -1: StateDictError and unchanged', () => {
      const o = sgd();
      const s = o.stateDict();
      s.paramGroups[0]!.lr = -1;
      try {
        o.loadStateDict(s);
      } finally {
        expect(o.paramGroups[0]!.lr).toBe(0.1);
      }
    }, StateDictError, ['[SGD.loadStateDict]', 'lr', '-1']],
    ['O7 optimizer loadStateDict(null)', () => sgd().loadStateDict(null as unknown as optim.OptimizerStateDict), StateDictError, ['[SGD.loadStateDict]']],
    ['O7b optimizer loadStateDict({kind: SGD})', () => sgd().loadStateDict({ kind: 'SGD' } as unknown as optim.OptimizerStateDict), StateDictError,
      ['[SGD.loadStateDict]', 'paramGroups']],
    ["O8 momentum_buffer 'ab' (a string)", () => {
      const o = sgd();
      const s = o.stateDict();
      s.state['0'] = { momentum_buffer: 'ab' as unknown as Float32Array };
      o.loadStateDict(s);
    }, StateDictError, ['state 0.momentum_buffer']],
    ["O8b Adam step 'x'", () => {
      const a = new Adam([p()]);
      a.paramGroups[0]!.params[0]!.grad = zeros([2]);
      a.step();
      const s = a.stateDict();
      s.state['0']!.step = 'x' as unknown as number;
      new Adam([p()]).loadStateDict(s);
    }, StateDictError, ['state 0.step', 'number']],
    ['Adam state without exp_avg_sq (step() would read a missing buffer)', () => {
      const a = new Adam([p()]);
      a.paramGroups[0]!.params[0]!.grad = ones([2]);
      a.step();
      const s = a.stateDict();
      delete s.state['0']!.exp_avg_sq;
      new Adam([p()]).loadStateDict(s);
    }, StateDictError, ['[Adam.loadStateDict]', 'state 0 has no exp_avg_sq']],
    ['SGD state with a key SGD does not keep', () => {
      const s = trained(sgd()).stateDict();
      s.state['0']!.exp_avg = new Float32Array(2);
      sgd().loadStateDict(s);
    }, StateDictError, ['[SGD.loadStateDict]', 'state 0.exp_avg', 'momentum_buffer']],
    ['paramGroups listing parameter 0 twice', () => {
      const two = new SGD([{ params: [p()] }, { params: [p()] }], { lr: 0.1 });
      const s = two.stateDict();
      s.paramGroups[1]!.params = [0];
      new SGD([{ params: [p()] }, { params: [p()] }], { lr: 0.1 }).loadStateDict(s);
    }, StateDictError, ['[SGD.loadStateDict]', 'parameter index 0 appears more than once']],
  ];
  runRows(rows);

  it('a rejected state dict leaves the optimizer as it was (state and hyperparameters)', () => {
    const q = p();
    const o = new SGD([q], { lr: 0.1, momentum: 0.9 });
    q.grad = ones([2]);
    o.step();
    const before = o.stateDict();
    const bad = new SGD([p(5)], { lr: 0.5, momentum: 0.5 });
    bad.paramGroups[0]!.params[0]!.grad = ones([5]);
    bad.step();
    expect(() => o.loadStateDict(bad.stateDict())).toThrow(StateDictError);
    expect(o.stateDict()).toEqual(before);
  });

  it('a state dict rejected for its state (not its groups) leaves the hyperparameters as they were too', () => {
    const q = p();
    const o = new SGD([q], { lr: 0.1, momentum: 0.9 });
    q.grad = ones([2]);
    o.step();
    const before = o.stateDict();
    const s = o.stateDict();
    s.paramGroups[0]!.lr = 0.5; // valid, and listed before the bad state
    s.state['0'] = { momentum_buffer: 'ab' as unknown as Float32Array };
    expect(() => o.loadStateDict(s)).toThrow(StateDictError);
    expect(o.stateDict()).toEqual(before);
    expect(o.paramGroups[0]!.lr).toBe(0.1);
  });
});

describe('schedules: settings that cannot work, and stepping past the end', () => {
  const rows: Row[] = [
    ['StepLR stepSize 0', () => new StepLR(sgd(), 0), ValueError, ['[StepLR]', 'stepSize', '0']],
    ['StepLR stepSize 1.5', () => new StepLR(sgd(), 1.5), ValueError, ['[StepLR]', 'stepSize', '1.5']],
    ['StepLR stepSize NaN', () => new StepLR(sgd(), NaN), ValueError, ['[StepLR]', 'stepSize', 'NaN']],
    ['CosineAnnealingLR tMax 0', () => new CosineAnnealingLR(sgd(), 0), ValueError, ['[CosineAnnealingLR]', 'tMax', '0']],
    ['CosineAnnealingLR tMax -5', () => new CosineAnnealingLR(sgd(), -5), ValueError, ['[CosineAnnealingLR]', 'tMax', '-5']],
    ['CosineAnnealingLR tMax NaN', () => new CosineAnnealingLR(sgd(), NaN), ValueError, ['[CosineAnnealingLR]', 'tMax', 'NaN']],
    ['ConstantLR factor 1.5', () => new ConstantLR(sgd(), { factor: 1.5 }), ValueError, ['[ConstantLR]', 'between 0 and 1']],
    ['ConstantLR factor -0.5', () => new ConstantLR(sgd(), { factor: -0.5 }), ValueError, ['[ConstantLR]', 'between 0 and 1']],
    ['LinearLR startFactor 0 (would divide by zero at epoch 1)', () => new LinearLR(sgd(), { startFactor: 0 }), ValueError,
      ['[LinearLR]', 'Starting multiplicative factor']],
    ['LinearLR startFactor NaN', () => new LinearLR(sgd(), { startFactor: NaN }), ValueError, ['[LinearLR]', 'Starting multiplicative factor']],
    ['LinearLR endFactor NaN', () => new LinearLR(sgd(), { endFactor: NaN }), ValueError, ['[LinearLR]', 'Ending multiplicative factor']],
    ['LambdaLR with 2 functions for 1 group', () => new LambdaLR(sgd(), [() => 1, () => 1]), ValueError, ['[LambdaLR]', 'Expected 1 lr_lambdas, but got 2']],
    ['OneCycleLR totalSteps 1.5', () => new OneCycleLR(sgd(), { maxLr: 1, totalSteps: 1.5 }), ValueError, ['[OneCycleLR]', 'total_steps, but got 1.5']],
    ['OneCycleLR totalSteps NaN', () => new OneCycleLR(sgd(), { maxLr: 1, totalSteps: NaN }), ValueError, ['[OneCycleLR]', 'total_steps, but got NaN']],
    ['OneCycleLR epochs without stepsPerEpoch', () => new OneCycleLR(sgd(), { maxLr: 1, epochs: 3 }), ValueError,
      ['[OneCycleLR]', 'steps_per_epoch, but got undefined']],
    ['OneCycleLR epochs 0', () => new OneCycleLR(sgd(), { maxLr: 1, epochs: 0, stepsPerEpoch: 5 }), ValueError, ['[OneCycleLR]', 'epochs, but got 0']],
    ['OneCycleLR pctStart NaN', () => new OneCycleLR(sgd(), { maxLr: 1, totalSteps: 10, pctStart: NaN }), ValueError, ['[OneCycleLR]', 'pct_start, but got NaN']],
    ["OneCycleLR annealStrategy 'exp'", () => new OneCycleLR(sgd(), { maxLr: 1, totalSteps: 10, annealStrategy: 'exp' as 'cos' }), ValueError,
      ['[OneCycleLR]', "'cos' or 'linear'", 'exp']],
    ['OneCycleLR maxMomentum with 2 values for 1 group', () => new OneCycleLR(sgd(), { maxLr: 1, totalSteps: 10, maxMomentum: [0.9, 0.95] }), ValueError,
      ['[OneCycleLR]', 'max_momentum', 'got 2']],
    ['OneCycleLR stepped to epoch 100 of 3 with step(100)', () => new OneCycleLR(sgd(), { maxLr: 1, totalSteps: 3 }).step(100), ValueError,
      ['[OneCycleLR]', 'Tried to step 101 times', 'total steps is 3']],
    ['OneCycleLR state of a 5-step schedule into a 3-step one', () => {
      const a = new OneCycleLR(sgd(), { maxLr: 1, totalSteps: 5 });
      new OneCycleLR(sgd(), { maxLr: 1, totalSteps: 3 }).loadStateDict(a.stateDict());
    }, StateDictError, ['[OneCycleLR.loadStateDict]', '5 total steps', 'has 3']],
    ['SequentialLR over a scheduler of another optimizer', () => {
      const o = sgd();
      return new SequentialLR(o, [new StepLR(o, 2), new StepLR(sgd(), 2)], [3]);
    }, ValueError, ['[SequentialLR]', 'index 1']],
    ['StepLR state with 2 base lrs into a 1-group optimizer', () => {
      const two = new SGD([{ params: [p()] }, { params: [p()] }], { lr: 0.1 });
      new StepLR(sgd(), 2).loadStateDict(new StepLR(two, 2).stateDict());
    }, StateDictError, ['[StepLR.loadStateDict]', '2 base lrs', '1 groups']],
    ['O10 StepLR gamma NaN', () => new StepLR(sgd(), 2, NaN), ValueError, ['[StepLR]', 'gamma', 'NaN']],
    ['O10b ExponentialLR gamma NaN', () => new optim.ExponentialLR(sgd(), NaN), ValueError, ['[ExponentialLR]', 'gamma', 'NaN']],
    ['O10c MultiStepLR milestones [NaN]', () => new optim.MultiStepLR(sgd(), [NaN]), ValueError, ['[MultiStepLR]', 'milestones']],
    ['O10d CosineAnnealingLR etaMin NaN', () => new CosineAnnealingLR(sgd(), 10, NaN), ValueError, ['[CosineAnnealingLR]', 'etaMin', 'NaN']],
    ['O10e ConstantLR factor NaN', () => new ConstantLR(sgd(), { factor: NaN }), ValueError, ['[ConstantLR]', 'NaN']],
    ['O10f LinearLR totalIters NaN', () => new LinearLR(sgd(), { totalIters: NaN }), ValueError, ['[LinearLR]', 'totalIters', 'NaN']],
    ['O10g OneCycleLR maxLr NaN', () => new OneCycleLR(sgd(), { maxLr: NaN, totalSteps: 10 }), ValueError, ['[OneCycleLR]', 'max_lr', 'NaN']],
    ['O10h OneCycleLR divFactor 0', () => new OneCycleLR(sgd(), { maxLr: 1, totalSteps: 10, divFactor: 0 }), ValueError, ['[OneCycleLR]', 'div_factor', '0']],
    ['O10i LambdaLR(5)', () => new LambdaLR(sgd(), 5 as unknown as () => number), ValueError, ['[LambdaLR]', 'function']],
    ['O10j cifarResnetSchedule lr -1', () => optim.cifarResnetSchedule(sgd(), { lr: -1 }), ValueError, ['Invalid learning rate: -1']],
    ['O11 scheduler loadStateDict(null)', () => new StepLR(sgd(), 2).loadStateDict(null as unknown as optim.SchedulerStateDict), StateDictError, ['[StepLR.loadStateDict]']],
    ["O11b scheduler lastEpoch 'x'", () => {
      const s = new StepLR(sgd(), 2);
      s.loadStateDict({ ...s.stateDict(), lastEpoch: 'x' as unknown as number });
    }, StateDictError, ['[StepLR.loadStateDict]', 'lastEpoch']],
    ['ConstantLR factor 0 (torch divides by it at epoch totalIters)', () => new ConstantLR(sgd(), { factor: 0 }), ValueError, ['[ConstantLR]', 'divide by zero']],
    ['LambdaLR whose function returns NaN at epoch 3', () => {
      const s = new LambdaLR(sgd(), (e) => (e === 3 ? NaN : 1));
      for (let i = 0; i < 3; i++) s.step();
    }, ValueError, ['[LambdaLR]', 'learning rate NaN', 'epoch 3']],
    ['StepLR step(1.5)', () => new StepLR(sgd(), 2).step(1.5), ValueError, ['[StepLR]', 'epoch', '1.5']],
    ['OneCycleLR maxMomentum 1 on Adam (beta1 must stay below 1)', () => new OneCycleLR(new Adam([p()]), { maxLr: 1, totalSteps: 10, maxMomentum: 1 }), ValueError,
      ['[OneCycleLR]', 'max_momentum', '[0, 1)', 'got 1']],
    ['SequentialLR state whose second scheduler has lastEpoch NaN', () => {
      const o = sgd();
      const s = new SequentialLR(o, [new StepLR(o, 2), new StepLR(o, 3)], [4]);
      const sd = s.stateDict();
      (sd.schedulers as optim.SchedulerStateDict[])[1]!.lastEpoch = NaN;
      s.loadStateDict(sd);
    }, StateDictError, ['[SequentialLR.loadStateDict]', 'schedulers[1]', 'lastEpoch', 'NaN']],
    ['new StepLR(null)', () => new StepLR(null as unknown as optim.AnyOptimizer, 2), ValueError, ['[StepLR]', 'optimizer', 'null']],
  ];
  runRows(rows);

  it('OneCycleLR rejected for its momentum leaves the optimizer as it was (initialLr, momentum)', () => {
    const o = sgd();
    expect(() => new OneCycleLR(o, { maxLr: 1, totalSteps: 10, baseMomentum: NaN })).toThrow(ValueError);
    expect(o.paramGroups[0]!.initialLr).toBeUndefined();
    expect(o.paramGroups[0]!.momentum).toBe(0.9);
  });

  it('a rejected SequentialLR state leaves every scheduler as it was', () => {
    const o = sgd();
    const s = new SequentialLR(o, [new StepLR(o, 2), new StepLR(o, 3)], [4]);
    for (let i = 0; i < 5; i++) s.step();
    const before = s.stateDict();
    const fresh = new SequentialLR(o, [new StepLR(o, 2), new StepLR(o, 3)], [4]).stateDict();
    (fresh.schedulers as optim.SchedulerStateDict[])[1]!.baseLrs = [-1];
    expect(() => s.loadStateDict(fresh)).toThrow('baseLrs[0] must be a finite number >= 0, got number -1');
    expect(s.stateDict()).toEqual(before);
  });

  it('OneCycleLR: stepping past the total throws on every further step, and leaves the last lr in place', () => {
    const o = sgd();
    const s = new OneCycleLR(o, { maxLr: 1, totalSteps: 4 });
    for (let i = 0; i < 4; i++) s.step(); // lastEpoch 4 = totalSteps: PyTorch allows this one (its check is step_num > total_steps)
    const lr = o.paramGroups[0]!.lr;
    expect(() => s.step()).toThrow('Tried to step 6 times. The specified number of total steps is 4');
    expect(() => s.step()).toThrow('Tried to step 7 times');
    expect(o.paramGroups[0]!.lr).toBe(lr);
  });
});

describe('clipGradNorm with maxNorm Infinity measures without clipping (as in PyTorch)', () => {
  it('returns the total norm and leaves the gradients as they were', () => {
    const q = new Tensor(new Float32Array([3, 4]), [2]);
    q.requiresGrad = true;
    q.grad = new Tensor(new Float32Array([3, 4]), [2]);
    expect(clipGradNorm([q], Infinity)).toBeCloseTo(5, 5);
    expect(Array.from(q.grad.data)).toEqual([3, 4]);
  });
});
