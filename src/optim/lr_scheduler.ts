/**
 * Learning-rate schedules with PyTorch's chainable semantics (torch.optim.lr_scheduler, 1.13): a scheduler is built
 * on an optimizer, immediately sets the epoch-0 learning rate, and each `step()` advances one epoch (or iteration)
 * and writes the new rate into `optimizer.paramGroups[i].lr`. Chainable formulas update the group's current lr
 * (so they compose with other changes to it), exactly as torch's `get_lr()` does; `step(epoch)` uses the closed form.
 *
 * Usage: `optimizer.step(); scheduler.step();` once per epoch (per iteration for OneCycleLR and the CIFAR preset).
 */

import { ValueError, StateDictError } from '../errors.js';
import { checkLr, describeValue, Optimizer, type ParamGroup } from './optimizer.js';

/** Any optimizer from this module. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyOptimizer = Optimizer<any>;

/** A scheduler's plain-JSON state (torch's scheduler.state_dict() minus the optimizer and callables). */
export type SchedulerStateDict = Record<string, unknown> & { kind: string; lastEpoch: number };

function bisectRight(sorted: readonly number[], x: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (x < sorted[mid]!) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** Python's a % b for b > 0 (never negative). */
function pmod(a: number, b: number): number {
  return ((a % b) + b) % b;
}

function checkPositiveInt(op: string, name: string, v: number): void {
  if (!Number.isInteger(v) || v <= 0) throw new ValueError(op, `${name} must be a positive integer, got ${String(v)}`);
}

/** A multiplier or bound such as gamma or etaMin: a finite number >= 0 (torch does not check; NaN or Infinity would
 * reach the optimizer as its lr). */
function checkNonNegative(op: string, name: string, v: number): void {
  if (typeof v !== 'number' || !(v >= 0 && v < Infinity)) throw new ValueError(op, `${name} must be a finite number >= 0, got ${String(v)}`);
}

/** Epoch (iteration) indices such as milestones: non-negative integers. Returns a sorted copy. */
function checkMilestones(op: string, milestones: readonly number[]): number[] {
  if (!Array.isArray(milestones) || !milestones.every((m) => Number.isInteger(m) && m >= 0)) {
    const shown = Array.isArray(milestones) ? `[${milestones.map(String).join(', ')}]` : describeValue(milestones);
    throw new ValueError(op, `milestones must be a list of non-negative integers, got ${shown}`);
  }
  return milestones.slice().sort((a, b) => a - b);
}

function checkOptimizer(op: string, optimizer: unknown): void {
  if (!(optimizer instanceof Optimizer)) throw new ValueError(op, `expected an optimizer (SGD, Adam, AdamW), got ${describeValue(optimizer)}`);
}

/** The base class (torch's _LRScheduler). Subclasses call `this.initialStep()` at the end of their constructor. */
export abstract class LRScheduler {
  readonly optimizer: AnyOptimizer;
  /** Index of the last epoch (iteration) stepped; 0 after construction. */
  lastEpoch = -1;
  /** The groups' initial learning rates (torch's base_lrs, from group.initialLr). */
  baseLrs: number[];
  protected lastLr: number[] = [];
  /** Number of step() calls including the constructor's (torch's _step_count). */
  protected stepCount = 0;

  constructor(optimizer: AnyOptimizer) {
    const self: LRScheduler = this; // kind is a prototype getter, so it is available here
    checkOptimizer(self.kind, optimizer);
    this.optimizer = optimizer;
    for (const g of this.groups) if (g.initialLr === undefined) g.initialLr = g.lr;
    this.baseLrs = this.groups.map((g) => g.initialLr!);
  }

  /** Name used in state dicts (a getter, not constructor.name, so that minified builds keep it). */
  abstract get kind(): string;

  protected get groups(): ParamGroup[] {
    return this.optimizer.paramGroups;
  }

  /** The chainable formula for the current lastEpoch (torch's get_lr). */
  protected abstract getLr(): number[];

  /** The closed form used by step(epoch) (torch's _get_closed_form_lr); null where torch has none. */
  protected closedFormLr(): number[] | null {
    return null;
  }

  /** torch's _initial_step: resets the step count and takes the epoch-0 step. */
  initialStep(): void {
    this.stepCount = 0;
    this.step();
  }

  /** Advances one epoch (or, given `epoch`, jumps there using the closed form) and sets the groups' lr. */
  step(epoch?: number): void {
    if (epoch !== undefined && !(Number.isInteger(epoch) && epoch >= 0)) {
      throw new ValueError(this.kind, `step(epoch): epoch must be a non-negative integer, got ${String(epoch)}`);
    }
    this.stepCount++;
    let values: number[];
    if (epoch === undefined) {
      this.lastEpoch++;
      values = this.getLr();
    } else {
      this.lastEpoch = epoch;
      values = this.closedFormLr() ?? this.getLr();
    }
    // e.g. a LambdaLR function that returned NaN: refuse before the optimizer steps with it
    values.forEach((v, i) => {
      if (typeof v !== 'number' || !(v >= 0 && v < Infinity)) {
        throw new ValueError(this.kind, `the schedule gave group ${i} the learning rate ${String(v)} at epoch ${this.lastEpoch}; a learning rate must be a finite number >= 0`);
      }
    });
    this.groups.forEach((g, i) => {
      g.lr = values[i]!;
    });
    this.lastLr = this.groups.map((g) => g.lr);
  }

  /** The learning rates the last step() set, one per group (torch's get_last_lr()). */
  getLastLr(): number[] {
    return this.lastLr.slice();
  }

  /** Subclass fields to save (configuration and counters that step() reads). */
  protected extraState(): Record<string, unknown> {
    return {};
  }

  protected loadExtraState(_sd: Record<string, unknown>): void {}

  /** Checks the subclass fields of a state dict (called by checkStateDict before anything is loaded). */
  protected checkExtraState(_sd: Record<string, unknown>, _op: string, _where: string): void {}

  stateDict(): SchedulerStateDict {
    return {
      kind: this.kind,
      lastEpoch: this.lastEpoch,
      stepCount: this.stepCount,
      baseLrs: this.baseLrs.slice(),
      lastLr: this.lastLr.slice(),
      ...structuredClone(this.extraState()),
    };
  }

  /**
   * Throws StateDictError (naming `op`, default "<kind>.loadStateDict") if `sd` cannot be loaded into this scheduler:
   * not an object, another kind of scheduler, counters that are not integers, another number of groups, learning
   * rates that are not finite numbers >= 0. Changes nothing.
   */
  checkStateDict(sd: unknown, op = `${this.kind}.loadStateDict`, where = ''): asserts sd is SchedulerStateDict {
    const fail: (msg: string) => never = (msg) => {
      throw new StateDictError(op, `${where}${msg}`);
    };
    if (sd === null || typeof sd !== 'object' || Array.isArray(sd)) fail(`expected a scheduler state dict object, got ${describeValue(sd)}`);
    const d = sd as Record<string, unknown>;
    if (d.kind === undefined) fail(`the object has no "kind" field, so it is not a scheduler state dict (its keys: ${Object.keys(d).slice(0, 8).join(', ') || 'none'}); this scheduler is ${this.kind}`);
    if (d.kind !== this.kind) fail(`state dict is for ${String(d.kind)}, this scheduler is ${this.kind}`);
    // -1: a scheduler inside a SequentialLR that has not started yet
    if (!(Number.isInteger(d.lastEpoch) && (d.lastEpoch as number) >= -1)) {
      fail(`lastEpoch must be an integer >= -1, got ${describeValue(d.lastEpoch)}`);
    }
    if (d.stepCount !== undefined && !(Number.isInteger(d.stepCount) && (d.stepCount as number) >= 0)) {
      fail(`stepCount must be a non-negative integer, got ${describeValue(d.stepCount)}`);
    }
    const lrList = (name: string, v: unknown): void => {
      if (!Array.isArray(v) || v.length !== this.groups.length) {
        fail(`state dict has ${Array.isArray(v) ? v.length : 'no'} ${name === 'baseLrs' ? 'base lrs' : name}, the optimizer has ${this.groups.length} groups`);
      }
      v.forEach((x: unknown, i) => {
        if (typeof x !== 'number' || !(x >= 0 && x < Infinity)) fail(`${name}[${i}] must be a finite number >= 0, got ${describeValue(x)}`);
      });
    };
    lrList('baseLrs', d.baseLrs);
    if (d.lastLr !== undefined) lrList('lastLr', d.lastLr);
    this.checkExtraState(d, op, where);
  }

  /**
   * Restores the counters (not the optimizer's lr: that is in the optimizer's own state dict, as in torch).
   * Throws StateDictError (see checkStateDict) and then changes nothing.
   */
  loadStateDict(sd: SchedulerStateDict): void {
    this.checkStateDict(sd);
    this.lastEpoch = sd.lastEpoch;
    this.stepCount = (sd.stepCount as number | undefined) ?? this.stepCount;
    this.baseLrs = (sd.baseLrs as number[]).slice();
    this.lastLr = ((sd.lastLr as number[] | undefined) ?? this.lastLr).slice();
    this.loadExtraState(structuredClone(sd));
  }
}

/** lr = initial lr · gamma^(epoch // stepSize). PyTorch: StepLR(optimizer, step_size, gamma=0.1). */
export class StepLR extends LRScheduler {
  get kind(): string {
    return 'StepLR';
  }
  constructor(optimizer: AnyOptimizer, readonly stepSize: number, readonly gamma = 0.1) {
    checkPositiveInt('StepLR', 'stepSize', stepSize);
    checkNonNegative('StepLR', 'gamma', gamma);
    super(optimizer);
    this.initialStep();
  }
  protected getLr(): number[] {
    if (this.lastEpoch === 0 || this.lastEpoch % this.stepSize !== 0) return this.groups.map((g) => g.lr);
    return this.groups.map((g) => g.lr * this.gamma);
  }
  protected override closedFormLr(): number[] {
    return this.baseLrs.map((b) => b * this.gamma ** Math.floor(this.lastEpoch / this.stepSize));
  }
}

/** lr multiplied by gamma at each milestone (a repeated milestone multiplies repeatedly). PyTorch: MultiStepLR. */
export class MultiStepLR extends LRScheduler {
  readonly milestones: number[];
  get kind(): string {
    return 'MultiStepLR';
  }
  constructor(optimizer: AnyOptimizer, milestones: readonly number[], readonly gamma = 0.1) {
    const sorted = checkMilestones('MultiStepLR', milestones);
    checkNonNegative('MultiStepLR', 'gamma', gamma);
    super(optimizer);
    this.milestones = sorted;
    this.initialStep();
  }
  protected getLr(): number[] {
    let count = 0;
    for (const m of this.milestones) if (m === this.lastEpoch) count++;
    if (count === 0) return this.groups.map((g) => g.lr);
    return this.groups.map((g) => g.lr * this.gamma ** count);
  }
  protected override closedFormLr(): number[] {
    return this.baseLrs.map((b) => b * this.gamma ** bisectRight(this.milestones, this.lastEpoch));
  }
}

/** lr · factor until epoch totalIters, then lr. PyTorch: ConstantLR(factor=1/3, total_iters=5). */
export class ConstantLR extends LRScheduler {
  readonly factor: number;
  readonly totalIters: number;
  get kind(): string {
    return 'ConstantLR';
  }
  constructor(optimizer: AnyOptimizer, opts: { factor?: number; totalIters?: number } = {}) {
    const factor = opts.factor ?? 1 / 3;
    const totalIters = opts.totalIters ?? 5;
    if (typeof factor !== 'number' || !(factor >= 0 && factor <= 1)) {
      throw new ValueError('ConstantLR', `Constant multiplicative factor expected to be between 0 and 1, got ${String(factor)}`);
    }
    // torch 1.13 accepts 0 and then divides by it at epoch totalIters (ZeroDivisionError); we refuse it up front
    if (factor === 0) throw new ValueError('ConstantLR', 'Constant multiplicative factor 0 would divide by zero at epoch totalIters; expected a factor between 0 (excluded) and 1');
    checkPositiveInt('ConstantLR', 'totalIters', totalIters);
    super(optimizer);
    this.factor = factor;
    this.totalIters = totalIters;
    this.initialStep();
  }
  protected getLr(): number[] {
    const e = this.lastEpoch;
    if (e === 0) return this.groups.map((g) => g.lr * this.factor);
    if (e > this.totalIters || e !== this.totalIters) return this.groups.map((g) => g.lr);
    return this.groups.map((g) => g.lr * (1 / this.factor));
  }
  protected override closedFormLr(): number[] {
    return this.baseLrs.map((b) => b * (this.factor + (this.lastEpoch >= this.totalIters ? 1 - this.factor : 0)));
  }
}

/**
 * Linear change of the multiplicative factor from startFactor (epoch 0) to endFactor (epoch totalIters), e.g. a
 * linear warm-up. PyTorch: LinearLR(start_factor=1/3, end_factor=1.0, total_iters=5).
 */
export class LinearLR extends LRScheduler {
  readonly startFactor: number;
  readonly endFactor: number;
  readonly totalIters: number;
  get kind(): string {
    return 'LinearLR';
  }
  constructor(optimizer: AnyOptimizer, opts: { startFactor?: number; endFactor?: number; totalIters?: number } = {}) {
    const startFactor = opts.startFactor ?? 1 / 3;
    const endFactor = opts.endFactor ?? 1;
    const totalIters = opts.totalIters ?? 5;
    // torch 1.13 accepts startFactor 0 and then divides by zero at epoch 1; later versions reject it, as we do
    if (typeof startFactor !== 'number' || !(startFactor > 0 && startFactor <= 1)) {
      throw new ValueError('LinearLR', `Starting multiplicative factor expected to be greater than 0 and less or equal to 1. Got ${String(startFactor)}`);
    }
    if (typeof endFactor !== 'number' || !(endFactor >= 0 && endFactor <= 1)) {
      throw new ValueError('LinearLR', `Ending multiplicative factor expected to be between 0 and 1. Got ${String(endFactor)}`);
    }
    // the closed form divides by totalIters
    checkPositiveInt('LinearLR', 'totalIters', totalIters);
    super(optimizer);
    this.startFactor = startFactor;
    this.endFactor = endFactor;
    this.totalIters = totalIters;
    this.initialStep();
  }
  protected getLr(): number[] {
    const e = this.lastEpoch;
    const { startFactor: s, endFactor: f, totalIters: n } = this;
    if (e === 0) return this.groups.map((g) => g.lr * s);
    if (e > n) return this.groups.map((g) => g.lr);
    return this.groups.map((g) => g.lr * (1 + (f - s) / (n * s + (e - 1) * (f - s))));
  }
  protected override closedFormLr(): number[] {
    const { startFactor: s, endFactor: f, totalIters: n } = this;
    return this.baseLrs.map((b) => b * (s + ((f - s) * Math.min(n, this.lastEpoch)) / n));
  }
}

/** lr · gamma every epoch. PyTorch: ExponentialLR(gamma). */
export class ExponentialLR extends LRScheduler {
  get kind(): string {
    return 'ExponentialLR';
  }
  constructor(optimizer: AnyOptimizer, readonly gamma: number) {
    checkNonNegative('ExponentialLR', 'gamma', gamma);
    super(optimizer);
    this.initialStep();
  }
  protected getLr(): number[] {
    if (this.lastEpoch === 0) return this.groups.map((g) => g.lr);
    return this.groups.map((g) => g.lr * this.gamma);
  }
  protected override closedFormLr(): number[] {
    return this.baseLrs.map((b) => b * this.gamma ** this.lastEpoch);
  }
}

/**
 * Cosine annealing from the initial lr to etaMin over tMax epochs (and back up after, periodically), using torch's
 * recursive formula, so values match torch's to rounding (not the closed form, which differs after restarts and when
 * something else changes the lr). PyTorch: CosineAnnealingLR(T_max, eta_min=0).
 */
export class CosineAnnealingLR extends LRScheduler {
  get kind(): string {
    return 'CosineAnnealingLR';
  }
  constructor(optimizer: AnyOptimizer, readonly tMax: number, readonly etaMin = 0) {
    if (typeof tMax !== 'number' || !(tMax > 0 && tMax < Infinity)) throw new ValueError('CosineAnnealingLR', `tMax must be a positive finite number, got ${String(tMax)}`);
    checkNonNegative('CosineAnnealingLR', 'etaMin', etaMin);
    super(optimizer);
    this.initialStep();
  }
  protected getLr(): number[] {
    const e = this.lastEpoch;
    const { tMax: T, etaMin } = this;
    if (e === 0) return this.groups.map((g) => g.lr);
    if (this.stepCount === 1 && e > 0) {
      return this.baseLrs.map((b) => etaMin + ((b - etaMin) * (1 + Math.cos((e * Math.PI) / T))) / 2);
    }
    if (pmod(e - 1 - T, 2 * T) === 0) {
      return this.groups.map((g, i) => g.lr + ((this.baseLrs[i]! - etaMin) * (1 - Math.cos(Math.PI / T))) / 2);
    }
    return this.groups.map(
      (g) => ((1 + Math.cos((Math.PI * e) / T)) / (1 + Math.cos((Math.PI * (e - 1)) / T))) * (g.lr - etaMin) + etaMin,
    );
  }
  protected override closedFormLr(): number[] {
    const e = this.lastEpoch;
    return this.baseLrs.map((b) => this.etaMin + ((b - this.etaMin) * (1 + Math.cos((Math.PI * e) / this.tMax))) / 2);
  }
}

/** lr = initial lr · lrLambda(epoch), one function or one per group. PyTorch: LambdaLR. Functions are not saved. */
export class LambdaLR extends LRScheduler {
  readonly lrLambdas: Array<(epoch: number) => number>;
  get kind(): string {
    return 'LambdaLR';
  }
  constructor(optimizer: AnyOptimizer, lrLambda: ((epoch: number) => number) | Array<(epoch: number) => number>) {
    const fns = Array.isArray(lrLambda) ? lrLambda : [lrLambda];
    fns.forEach((f, i) => {
      if (typeof f !== 'function') {
        throw new ValueError('LambdaLR', `lr_lambda must be a function or a list of functions, got ${Array.isArray(lrLambda) ? `${describeValue(f)} at index ${i}` : describeValue(f)}`);
      }
    });
    super(optimizer);
    const n = this.groups.length;
    if (Array.isArray(lrLambda)) {
      if (lrLambda.length !== n) throw new ValueError('LambdaLR', `Expected ${n} lr_lambdas, but got ${lrLambda.length}`);
      this.lrLambdas = lrLambda.slice();
    } else {
      this.lrLambdas = Array.from({ length: n }, () => lrLambda);
    }
    this.initialStep();
  }
  protected getLr(): number[] {
    return this.baseLrs.map((b, i) => b * this.lrLambdas[i]!(this.lastEpoch));
  }
}

/**
 * Runs `schedulers` one after another, switching at each milestone (epoch counts from the start); the scheduler that
 * takes over is started with its closed form at its own epoch 0. PyTorch: SequentialLR(schedulers, milestones),
 * including its construction protocol (lrs reset to the initial lr, only the first scheduler's initial step kept).
 */
export class SequentialLR extends LRScheduler {
  readonly schedulers: LRScheduler[];
  readonly milestones: number[];
  get kind(): string {
    return 'SequentialLR';
  }
  constructor(optimizer: AnyOptimizer, schedulers: LRScheduler[], milestones: readonly number[]) {
    if (!Array.isArray(schedulers) || schedulers.length === 0) {
      throw new ValueError('SequentialLR', `expected a non-empty list of schedulers, got ${describeValue(schedulers)}`);
    }
    schedulers.forEach((s, i) => {
      if (!(s instanceof LRScheduler)) throw new ValueError('SequentialLR', `schedulers[${i}] is not a scheduler: ${describeValue(s)}`);
    });
    const sorted = checkMilestones('SequentialLR', milestones);
    if (sorted.some((m, i) => m !== milestones[i])) {
      throw new ValueError('SequentialLR', `milestones must be in increasing order, got [${milestones.join(', ')}]`);
    }
    super(optimizer);
    schedulers.forEach((s, i) => {
      if (s.optimizer !== optimizer) {
        throw new ValueError('SequentialLR', `Sequential Schedulers expects all schedulers to belong to the same optimizer, but got schedulers at index ${i} to be different than the optimizer passed in.`);
      }
    });
    if (milestones.length !== schedulers.length - 1) {
      throw new ValueError('SequentialLR', `Sequential Schedulers expects number of schedulers provided to be one more than the number of milestone points, but got number of schedulers ${schedulers.length} and the number of milestones to be equal to ${milestones.length}`);
    }
    this.schedulers = schedulers.slice();
    this.milestones = milestones.slice();
    this.lastEpoch = 0;
    for (const g of this.groups) g.lr = g.initialLr!;
    for (const s of this.schedulers) s.lastEpoch -= 1;
    this.schedulers[0]!.initialStep();
    this.lastLr = this.schedulers[0]!.getLastLr();
  }
  protected getLr(): number[] {
    return this.groups.map((g) => g.lr);
  }
  override step(): void {
    this.lastEpoch++;
    const idx = bisectRight(this.milestones, this.lastEpoch);
    const s = this.schedulers[idx]!;
    if (idx > 0 && this.milestones[idx - 1] === this.lastEpoch) s.step(0);
    else s.step();
    this.lastLr = s.getLastLr();
  }
  protected override extraState(): Record<string, unknown> {
    return { milestones: this.milestones.slice(), schedulers: this.schedulers.map((s) => s.stateDict()) };
  }
  protected override checkExtraState(sd: Record<string, unknown>, op: string, where: string): void {
    const subs = sd.schedulers;
    if (!Array.isArray(subs) || subs.length !== this.schedulers.length) {
      throw new StateDictError(op, `${where}state dict has ${Array.isArray(subs) ? subs.length : 'no'} schedulers, this one has ${this.schedulers.length}`);
    }
    subs.forEach((s: unknown, i) => this.schedulers[i]!.checkStateDict(s, op, `${where}schedulers[${i}]: `));
  }
  protected override loadExtraState(sd: Record<string, unknown>): void {
    (sd.schedulers as SchedulerStateDict[]).forEach((s, i) => this.schedulers[i]!.loadStateDict(s));
  }
}

export interface OneCycleOptions {
  /** Peak lr, one number or one per group. */
  maxLr: number | number[];
  /** Total number of steps; or give epochs and stepsPerEpoch. */
  totalSteps?: number;
  epochs?: number;
  stepsPerEpoch?: number;
  pctStart?: number;
  annealStrategy?: 'cos' | 'linear';
  cycleMomentum?: boolean;
  baseMomentum?: number | number[];
  maxMomentum?: number | number[];
  divFactor?: number;
  finalDivFactor?: number;
  threePhase?: boolean;
}

interface Phase {
  endStep: number;
  startLr: 'initial' | 'max' | 'min';
  endLr: 'initial' | 'max' | 'min';
  startMomentum: 'max' | 'base';
  endMomentum: 'max' | 'base';
}

/**
 * The 1cycle policy (Smith & Topin): lr rises from maxLr/divFactor to maxLr over pctStart of the steps, then anneals
 * to initial/finalDivFactor; momentum (SGD's momentum or Adam's beta1) cycles inversely between maxMomentum and
 * baseMomentum. Step once per batch. PyTorch: OneCycleLR (same defaults: pctStart 0.3, 'cos', divFactor 25,
 * finalDivFactor 1e4, threePhase false, cycleMomentum true with 0.85..0.95). Not chainable.
 */
export class OneCycleLR extends LRScheduler {
  readonly totalSteps: number;
  readonly cycleMomentum: boolean;
  readonly annealStrategy: 'cos' | 'linear';
  private readonly phases: Phase[];
  private readonly useBeta1: boolean;
  private readonly initialLrs: number[];
  private readonly maxLrs: number[];
  private readonly minLrs: number[];
  private readonly maxMomentums: number[];
  private readonly baseMomentums: number[];

  get kind(): string {
    return 'OneCycleLR';
  }

  constructor(optimizer: AnyOptimizer, opts: OneCycleOptions) {
    const op = 'OneCycleLR';
    checkOptimizer(op, optimizer);
    const groups = optimizer.paramGroups as Array<ParamGroup & { momentum?: number; betas?: [number, number] }>;
    // one value per group, each a finite number >= 0 (below `below` when given)
    const perGroup = (name: string, v: number | number[], below = Infinity): number[] => {
      if (Array.isArray(v) && v.length !== groups.length) throw new ValueError(op, `expected ${groups.length} values for ${name}, got ${v.length}`);
      const list = Array.isArray(v) ? v.slice() : groups.map(() => v);
      for (const x of list) {
        if (typeof x !== 'number' || !(x >= 0 && x < below)) {
          throw new ValueError(op, `${name} must be ${below === Infinity ? 'a finite number >= 0' : `a number in [0, ${below})`}, got ${String(x)}`);
        }
      }
      return list;
    };
    const positive = (name: string, v: number): number => {
      if (typeof v !== 'number' || !(v > 0 && v < Infinity)) throw new ValueError(op, `${name} must be a finite number > 0, got ${String(v)}`);
      return v;
    };
    let totalSteps: number;
    if (opts.totalSteps === undefined && opts.epochs === undefined && opts.stepsPerEpoch === undefined) {
      throw new ValueError(op, 'You must define either total_steps OR (epochs AND steps_per_epoch)');
    } else if (opts.totalSteps !== undefined) {
      if (!Number.isInteger(opts.totalSteps) || opts.totalSteps <= 0) throw new ValueError(op, `Expected positive integer total_steps, but got ${opts.totalSteps}`);
      totalSteps = opts.totalSteps;
    } else {
      const { epochs, stepsPerEpoch } = opts;
      if (epochs === undefined || !Number.isInteger(epochs) || epochs <= 0) throw new ValueError(op, `Expected positive integer epochs, but got ${epochs}`);
      if (stepsPerEpoch === undefined || !Number.isInteger(stepsPerEpoch) || stepsPerEpoch <= 0) {
        throw new ValueError(op, `Expected positive integer steps_per_epoch, but got ${stepsPerEpoch}`);
      }
      totalSteps = epochs * stepsPerEpoch;
    }
    const pct = opts.pctStart ?? 0.3;
    if (!(pct >= 0 && pct <= 1)) throw new ValueError(op, `Expected float between 0 and 1 pct_start, but got ${pct}`);
    const anneal = opts.annealStrategy ?? 'cos';
    if (anneal !== 'cos' && anneal !== 'linear') throw new ValueError(op, `anneal_strategy must by one of 'cos' or 'linear', instead got ${String(anneal)}`);
    const divFactor = positive('div_factor', opts.divFactor ?? 25);
    const finalDivFactor = positive('final_div_factor', opts.finalDivFactor ?? 1e4);
    const maxLrs = perGroup('max_lr', opts.maxLr);
    const initialLrs = maxLrs.map((m) => m / divFactor);
    const cycleMomentum = opts.cycleMomentum ?? true;
    if (typeof cycleMomentum !== 'boolean') throw new ValueError(op, `cycleMomentum must be true or false, got ${describeValue(cycleMomentum)}`);
    const threePhase = opts.threePhase ?? false;
    if (typeof threePhase !== 'boolean') throw new ValueError(op, `threePhase must be true or false, got ${describeValue(threePhase)}`);
    const defaults = optimizer.defaults as Record<string, unknown>;
    const useBeta1 = 'betas' in defaults;
    let maxMomentums: number[] = [];
    let baseMomentums: number[] = [];
    if (cycleMomentum) {
      if (!('momentum' in defaults) && !useBeta1) throw new ValueError(op, 'optimizer must support momentum with `cycle_momentum` option enabled');
      // Adam's beta1 must stay below 1
      maxMomentums = perGroup('max_momentum', opts.maxMomentum ?? 0.95, useBeta1 ? 1 : Infinity);
      baseMomentums = perGroup('base_momentum', opts.baseMomentum ?? 0.85, useBeta1 ? 1 : Infinity);
    }
    // everything is checked: now change the groups. torch sets group['initial_lr'] before the base constructor reads it
    groups.forEach((g, i) => {
      g.initialLr = initialLrs[i]!;
    });
    if (cycleMomentum) {
      groups.forEach((g, i) => {
        if (useBeta1) g.betas = [maxMomentums[i]!, g.betas![1]];
        else g.momentum = maxMomentums[i]!;
      });
    }
    super(optimizer);
    this.totalSteps = totalSteps;
    this.cycleMomentum = cycleMomentum;
    this.annealStrategy = anneal;
    this.useBeta1 = useBeta1;
    this.initialLrs = initialLrs;
    this.maxLrs = maxLrs;
    this.minLrs = initialLrs.map((l) => l / finalDivFactor);
    this.maxMomentums = maxMomentums;
    this.baseMomentums = baseMomentums;
    this.phases = threePhase
      ? [
          { endStep: pct * totalSteps - 1, startLr: 'initial', endLr: 'max', startMomentum: 'max', endMomentum: 'base' },
          { endStep: 2 * pct * totalSteps - 2, startLr: 'max', endLr: 'initial', startMomentum: 'base', endMomentum: 'max' },
          { endStep: totalSteps - 1, startLr: 'initial', endLr: 'min', startMomentum: 'max', endMomentum: 'max' },
        ]
      : [
          { endStep: pct * totalSteps - 1, startLr: 'initial', endLr: 'max', startMomentum: 'max', endMomentum: 'base' },
          { endStep: totalSteps - 1, startLr: 'max', endLr: 'min', startMomentum: 'base', endMomentum: 'max' },
        ];
    this.initialStep();
  }

  private anneal(start: number, end: number, pct: number): number {
    if (this.annealStrategy === 'cos') return end + ((start - end) / 2) * (Math.cos(Math.PI * pct) + 1);
    return (end - start) * pct + start;
  }

  protected getLr(): number[] {
    const stepNum = this.lastEpoch;
    if (stepNum > this.totalSteps) {
      throw new ValueError('OneCycleLR', `Tried to step ${stepNum + 1} times. The specified number of total steps is ${this.totalSteps}`);
    }
    const groups = this.groups as Array<ParamGroup & { momentum?: number; betas?: [number, number] }>;
    return groups.map((g, gi) => {
      const lrOf = (k: Phase['startLr']): number => (k === 'initial' ? this.initialLrs[gi]! : k === 'max' ? this.maxLrs[gi]! : this.minLrs[gi]!);
      const momOf = (k: Phase['startMomentum']): number => (k === 'max' ? this.maxMomentums[gi]! : this.baseMomentums[gi]!);
      let startStep = 0;
      let lr = 0;
      for (let i = 0; i < this.phases.length; i++) {
        const ph = this.phases[i]!;
        if (stepNum <= ph.endStep || i === this.phases.length - 1) {
          const pct = (stepNum - startStep) / (ph.endStep - startStep);
          lr = this.anneal(lrOf(ph.startLr), lrOf(ph.endLr), pct);
          if (this.cycleMomentum) {
            const m = this.anneal(momOf(ph.startMomentum), momOf(ph.endMomentum), pct);
            if (this.useBeta1) g.betas = [m, g.betas![1]];
            else g.momentum = m;
          }
          break;
        }
        startStep = ph.endStep;
      }
      return lr;
    });
  }

  protected override extraState(): Record<string, unknown> {
    return { totalSteps: this.totalSteps };
  }

  protected override checkExtraState(sd: Record<string, unknown>, op: string, where: string): void {
    if (sd.totalSteps !== this.totalSteps) {
      throw new StateDictError(op, `${where}state dict is for ${String(sd.totalSteps)} total steps, this scheduler has ${this.totalSteps}`);
    }
  }
}

export interface CifarScheduleOptions {
  /** ResNet-110's warm-up: lr·warmupFactor (0.1 → 0.01) for the first warmupIters (400) iterations. Default false. */
  warmup?: boolean;
  /** Base lr, assigned to every group (paper: 0.1). */
  lr?: number;
  /** Iterations where the lr is divided by 10 (paper: 32k and 48k). */
  milestones?: number[];
  /** Where training stops (paper: 64k); exposed as `totalIters`, the schedule itself just continues. */
  totalIters?: number;
  warmupIters?: number;
  warmupFactor?: number;
}

/** The CIFAR-10 recipe of He et al. 2015 §4.2 (a LambdaLR stepped once per iteration); see cifarResnetSchedule. */
export class CifarResnetSchedule extends LambdaLR {
  override get kind(): string {
    return 'CifarResnetSchedule';
  }
  constructor(optimizer: AnyOptimizer, factor: (it: number) => number, readonly totalIters: number) {
    super(optimizer, factor);
  }
}

/**
 * He et al. 2015 ("Deep Residual Learning", §4.2) CIFAR-10 schedule, stepped once per iteration (mini-batch 128):
 * lr 0.1, divided by 10 at 32k and 48k iterations, training stops at 64k (`schedule.totalIters`). With
 * `warmup: true`, ResNet-110's variant: "we use 0.01 to warm up the training until the training error is below 80%
 * (about 400 iterations), and then go back to 0.1" (a fixed 400 iterations here). Sets every group's lr (and
 * initialLr) to `lr`. The paper's optimizer: new SGD(params, { lr: 0.1, momentum: 0.9, weightDecay: 1e-4 }).
 */
export function cifarResnetSchedule(optimizer: AnyOptimizer, opts: CifarScheduleOptions = {}): CifarResnetSchedule {
  const op = 'cifarResnetSchedule';
  checkOptimizer(op, optimizer);
  const lr = opts.lr ?? 0.1;
  checkLr(op, lr);
  const milestones = checkMilestones(op, opts.milestones ?? [32000, 48000]);
  const warmupIters = opts.warmup ? (opts.warmupIters ?? 400) : 0;
  if (!(Number.isInteger(warmupIters) && warmupIters >= 0)) throw new ValueError(op, `warmupIters must be a non-negative integer, got ${String(warmupIters)}`);
  const warmupFactor = opts.warmupFactor ?? 0.1;
  checkNonNegative(op, 'warmupFactor', warmupFactor);
  checkPositiveInt(op, 'totalIters', opts.totalIters ?? 64000);
  for (const g of optimizer.paramGroups as ParamGroup[]) {
    g.lr = lr;
    g.initialLr = lr;
  }
  const factor = (it: number): number => 0.1 ** bisectRight(milestones, it) * (it < warmupIters ? warmupFactor : 1);
  return new CifarResnetSchedule(optimizer, factor, opts.totalIters ?? 64000);
}
