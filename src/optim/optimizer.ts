/**
 * The optimizer base class: parameter groups, per-parameter state, zeroGrad, stateDict / loadStateDict.
 * PyTorch equivalent: torch.optim.Optimizer (1.13).
 *
 * Arithmetic convention for every optimizer here: PyTorch runs these updates as float32 tensor ops, each op rounding
 * its result to float32, with Python-float hyperparameters cast to float32 (`alpha`, `value`, scalar multipliers).
 * We mirror that: hyperparameters are rounded with Math.fround once per step, and each PyTorch op becomes one float64
 * expression rounded to float32 (Math.fround or a Float32Array store). `x + a·y` (torch's add with alpha, which the
 * CPU kernels evaluate as a fused multiply-add) is one expression: the float64 product of two float32 values is exact.
 */

import { StateDictError, ValueError } from '../errors.js';
import { residentBuffer } from '../kernels/optim.js';
import { allocShared, fmt, sameShape } from '../shape.js';
import { Tensor } from '../tensor.js';

const isShared = (d: Float32Array): boolean => typeof SharedArrayBuffer === 'function' && d.buffer instanceof SharedArrayBuffer;

/**
 * d.fill(0), through an 8-byte view where d lies in shared memory at an 8-byte boundary: V8 fills a
 * SharedArrayBuffer element by element, so half the elements take about half the time (ResNet-18's 11M gradients:
 * 3.6 → 2.0 CPU ms).
 */
function fillZero(d: Float32Array): void {
  if (d.length < 1024 || !isShared(d) || d.byteOffset % 8 !== 0) {
    d.fill(0);
    return;
  }
  new BigInt64Array(d.buffer, d.byteOffset, d.length >> 1).fill(0n);
  if (d.length % 2 === 1) d[d.length - 1] = 0;
}

/** One parameter group: its tensors plus the hyperparameters that apply to them. */
export interface ParamGroup {
  params: Tensor[];
  /** Learning rate; schedulers assign it before each step. */
  lr: number;
  /** The lr a scheduler started from (torch's group['initial_lr']); set by the first scheduler attached. */
  initialLr?: number;
}

/** What a constructor accepts for one group: the tensors plus any subset of the optimizer's options. */
export type ParamGroupInput<O> = { params: Tensor[] } & Partial<O>;

/** Per-parameter state: float32 buffers (same length as the parameter) and plain numbers (e.g. Adam's `step`). */
export type ParamState = Record<string, Float32Array | number>;

/**
 * Plain-data snapshot of an optimizer (torch's optimizer.state_dict()).
 * - `state[i]`: the state of parameter i, numbering parameters across groups in order (torch's packed indices);
 *   keys are torch's (`momentum_buffer`, `step`, `exp_avg`, `exp_avg_sq`, `max_exp_avg_sq`). Buffers are copies.
 * - `paramGroups[g]`: the group's hyperparameters (our option names) and `params`, the indices of its parameters.
 */
export interface OptimizerStateDict {
  kind: string;
  state: Record<string, ParamState>;
  paramGroups: Array<Record<string, unknown> & { params: number[] }>;
}

/**
 * Which per-parameter state keys an optimizer keeps (torch's names), so that loadStateDict can check a state dict
 * before taking it: `buffers` are float32 arrays as long as the parameter, `counts` non-negative integers (e.g.
 * Adam's `step`), and `required` must all be present in every state entry that is given.
 */
export interface StateKeys {
  buffers: readonly string[];
  counts: readonly string[];
  required: readonly string[];
}

/** A short description of a value of the wrong type, for error messages: `string "ab"`, `null`, `a Tensor of shape [2, 3]`. */
export function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (v instanceof Tensor) return `a Tensor of shape ${fmt(v.shape)}`;
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'undefined' || typeof v === 'bigint') return `${typeof v} ${String(v)}`;
  if (typeof v === 'function') return 'a function';
  if (Array.isArray(v)) return `an array of ${v.length} items`;
  return `${(v as object).constructor?.name ?? 'an object'}`;
}

/** Python's repr() of a float: 1.0, 0.1, 1e-08. Used so that error messages read exactly like PyTorch's. */
export function pyFloat(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const [mant, expStr] = x.toExponential().split('e') as [string, string];
  const exp = Number(expStr);
  if (exp < -4 || exp >= 16) {
    return `${mant}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  }
  const s = String(x); // JS prints fixed notation in this exponent range
  return s.includes('.') ? s : `${s}.0`;
}

/**
 * Shared machinery of SGD, Adam and AdamW. `O` is the optimizer's option set (without `params`); each group is
 * `{ params } & O`, filled from the defaults for any option a group does not set.
 */
export abstract class Optimizer<O extends { lr: number } = { lr: number }> {
  /** Name written into state dicts, checked on load and used in error messages ('SGD', 'Adam', 'AdamW'). A getter,
   * so that it is available while the base constructor validates the groups. */
  abstract get kind(): string;
  /** The constructor's options with defaults applied (torch's optimizer.defaults). */
  readonly defaults: Readonly<O>;
  /** Mutable: schedulers (or you) may assign `paramGroups[i].lr` and other hyperparameters between steps. */
  readonly paramGroups: Array<ParamGroup & O>;
  /** Per-parameter state, created lazily at a parameter's first step. */
  readonly state = new Map<Tensor, ParamState>();

  protected constructor(params: readonly Tensor[] | ReadonlyArray<ParamGroupInput<O>>, defaults: O) {
    this.defaults = Object.freeze({ ...defaults });
    this.paramGroups = [];
    // torch: "params argument given to the optimizer should be an iterable of Tensors or dicts, but got torch.FloatTensor"
    if (params instanceof Tensor || params === null || typeof params !== 'object' || typeof (params as Iterable<unknown>)[Symbol.iterator] !== 'function') {
      throw new ValueError(this.opName, `params argument given to the optimizer should be an iterable of Tensors or dicts, but got ${describeValue(params)}`);
    }
    const list = Array.from(params as ReadonlyArray<Tensor | ParamGroupInput<O>>);
    if (list.length === 0) throw new ValueError(this.opName, 'optimizer got an empty parameter list');
    const isGroup = (x: Tensor | ParamGroupInput<O>): x is ParamGroupInput<O> =>
      typeof x === 'object' && x !== null && Array.isArray((x as { params?: unknown }).params);
    if (isGroup(list[0]!)) {
      for (const g of list) {
        if (!isGroup(g)) throw new ValueError(this.opName, 'params must be all tensors or all parameter groups');
        this.addParamGroup(g);
      }
    } else {
      if (list.some(isGroup)) throw new ValueError(this.opName, 'params must be all tensors or all parameter groups');
      this.addParamGroup({ params: list as Tensor[] } as ParamGroupInput<O>);
    }
  }

  /** Prefix for error messages, e.g. "SGD". */
  protected get opName(): string {
    return this.kind;
  }

  /** Checks one group's hyperparameters; throws ValueError with PyTorch's message. */
  protected abstract validate(group: O): void;

  /** Adds a group (torch's add_param_group); options it omits come from the defaults. */
  addParamGroup(group: ParamGroupInput<O>): void {
    const op = this.opName;
    if (group === null || typeof group !== 'object' || !Array.isArray(group.params)) {
      throw new ValueError(op, `a parameter group must be an object with a params array, got ${describeValue(group === null || typeof group !== 'object' ? group : group.params)}`);
    }
    const params = Array.from(group.params);
    const seen = new Set<Tensor>();
    for (const g of this.paramGroups) for (const p of g.params) seen.add(p);
    for (const p of params) {
      if (!(p instanceof Tensor)) throw new ValueError(op, `optimizer can only optimize Tensors, but one of the params is ${describeValue(p)}`);
      // torch's check (is_leaf): the update would be lost on a tensor that an op recomputes from its inputs
      if (p.gradFn !== null) throw new ValueError(op, `can't optimize a non-leaf Tensor (one made by ${p.gradFn.op}, shape ${fmt(p.shape)})`);
      if (seen.has(p)) throw new ValueError(this.opName, 'some parameters appear in more than one parameter group');
      seen.add(p);
    }
    const full = { ...this.defaults, ...group, params } as ParamGroup & O;
    if ('betas' in full && Array.isArray(full.betas)) (full as { betas: number[] }).betas = full.betas.slice();
    this.validate(full);
    this.paramGroups.push(full);
  }

  /**
   * Clears gradients. `setToNone = true` (PyTorch 2.x's default) sets every `p.grad` to null, so the next step skips
   * parameters that got no gradient; `false` (PyTorch 1.13's default) fills existing gradients with zeros in place.
   * With `false`, a gradient of a parameter in shared memory (allocShared: every module parameter) that is itself in
   * ordinary memory is replaced once by a zero gradient in shared memory: the threaded kernels then read and
   * accumulate into it in place on every later step, where an ordinary buffer is copied into shared staging memory
   * and back on every kernel call (ResNet-18, 11M parameters: 2 × 44 MB per conv weight gradient and optimizer step).
   * Where the SIMD kernels have the optimizer's resident memory (shared wasm memory: see kernels/optim.ts), that new
   * gradient lies there, and SGD's update reads it in place.
   */
  zeroGrad(setToNone = true): void {
    for (const g of this.paramGroups) {
      for (const p of g.params) {
        if (p.grad === null) continue;
        if (setToNone) p.grad = null;
        else if (isShared(p.data) && !isShared(p.grad.data)) {
          p.grad = new Tensor(residentBuffer(p.grad.size) ?? allocShared('zeroGrad', p.grad.size), p.grad.shape);
        } else fillZero(p.grad.data);
      }
    }
  }

  /** Performs one update of every parameter that has a gradient (parameters with `grad === null` are skipped). */
  abstract step(): void;

  /** Every parameter in group order (the numbering used by stateDict). */
  protected allParams(): Tensor[] {
    return this.paramGroups.flatMap((g) => g.params);
  }

  /** Checks that a gradient fits its parameter (once per parameter per step, outside the inner loop). */
  protected gradData(p: Tensor, i: number): Float32Array | null {
    const g = p.grad;
    if (g === null) return null;
    if (!(g instanceof Tensor)) throw new ValueError(this.opName, `the gradient of parameter ${i} must be a Tensor or null, got ${describeValue(g)}`);
    if (g.data.length !== p.data.length) {
      throw new ValueError(this.opName, `parameter ${i} has ${p.data.length} elements but its gradient has ${g.data.length}; parameter ${fmt(p.shape)}, gradient ${fmt(g.shape)}`);
    }
    if (!sameShape(g.shape, p.shape)) {
      throw new ValueError(this.opName, `the gradient of parameter ${i} has shape ${fmt(g.shape)} but the parameter has shape ${fmt(p.shape)}`);
    }
    return g.data;
  }

  /** The per-parameter state keys this optimizer keeps (see StateKeys). The default accepts any keys. */
  protected stateKeys(): StateKeys | null {
    return null;
  }

  /** Plain data (plus Float32Array copies of the state buffers); see OptimizerStateDict. */
  stateDict(): OptimizerStateDict {
    const index = new Map<Tensor, number>();
    const paramGroups = this.paramGroups.map((g) => {
      const { params, ...hyper } = g;
      const ids = params.map((p) => {
        if (!index.has(p)) index.set(p, index.size);
        return index.get(p)!;
      });
      const copy: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(hyper)) copy[k] = Array.isArray(v) ? v.slice() : v;
      return { ...copy, params: ids };
    });
    const state: Record<string, ParamState> = {};
    for (const [p, st] of this.state) {
      const i = index.get(p);
      if (i === undefined) continue;
      const s: ParamState = {};
      for (const [k, v] of Object.entries(st)) s[k] = typeof v === 'number' ? v : v.slice();
      state[String(i)] = s;
    }
    return { kind: this.kind, state, paramGroups };
  }

  /**
   * Restores hyperparameters and state (torch's load_state_dict): the groups must have the same sizes; buffers are
   * copied and must match their parameter's length; the hyperparameters must pass the constructor's checks.
   * Throws StateDictError otherwise, having changed nothing: everything is checked before anything is assigned.
   */
  loadStateDict(sd: OptimizerStateDict): void {
    const op = `${this.opName}.loadStateDict`;
    if (sd === null || typeof sd !== 'object' || Array.isArray(sd)) throw new StateDictError(op, `expected a state dict object, got ${describeValue(sd)}`);
    if (sd.kind === undefined) throw new StateDictError(op, `the object has no "kind" field, so it is not an optimizer state dict (its keys: ${Object.keys(sd).slice(0, 8).join(', ') || 'none'}); this optimizer is ${this.kind}`);
    if (sd.kind !== this.kind) throw new StateDictError(op, `state dict is for ${String(sd.kind)}, this optimizer is ${this.kind}`);
    if (!Array.isArray(sd.paramGroups)) throw new StateDictError(op, `state dict has no paramGroups array (got ${describeValue(sd.paramGroups)})`);
    if (sd.state === null || typeof sd.state !== 'object' || Array.isArray(sd.state)) {
      throw new StateDictError(op, `state dict has no state object (got ${describeValue(sd.state)})`);
    }
    if (sd.paramGroups.length !== this.paramGroups.length) {
      throw new StateDictError(op, `loaded state dict has a different number of parameter groups (${sd.paramGroups.length} vs ${this.paramGroups.length})`);
    }
    // 1. the groups: sizes, parameter indices, and hyperparameters checked on a copy of each group
    const index = new Map<number, Tensor>();
    const updates = sd.paramGroups.map((sg: unknown, gi) => {
      const g = this.paramGroups[gi]!;
      if (sg === null || typeof sg !== 'object' || !Array.isArray((sg as { params?: unknown }).params)) {
        throw new StateDictError(op, `paramGroups[${gi}] must be an object with a params array, got ${describeValue(sg)}`);
      }
      const ids = (sg as { params: unknown[] }).params;
      if (ids.length !== g.params.length) {
        throw new StateDictError(op, `loaded state dict contains a parameter group that doesn't match the size of optimizer's group (group ${gi}: ${ids.length} vs ${g.params.length} parameters)`);
      }
      ids.forEach((id, k) => {
        if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
          throw new StateDictError(op, `paramGroups[${gi}].params[${k}] must be a parameter index (a non-negative integer), got ${describeValue(id)}`);
        }
        if (index.has(id)) throw new StateDictError(op, `parameter index ${id} appears more than once in paramGroups`);
        index.set(id, g.params[k]!);
      });
      const hyper: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(sg)) if (k !== 'params') hyper[k] = Array.isArray(v) ? v.slice() : v;
      const candidate = { ...g, ...hyper, params: g.params } as ParamGroup & O;
      try {
        this.validate(candidate);
      } catch (e) {
        if (!(e instanceof ValueError)) throw e;
        const listed = Object.entries(hyper).map(([k, v]) => `${k}=${Array.isArray(v) ? `[${v.map(String).join(', ')}]` : String(v)}`).join(', ');
        throw new StateDictError(op, `paramGroups[${gi}] (${listed}) is rejected: ${e.message.replace(/^\[[^\]]*\] /, '')}`);
      }
      const init = candidate.initialLr;
      if (init !== undefined && !(typeof init === 'number' && Number.isFinite(init) && init >= 0)) {
        throw new StateDictError(op, `paramGroups[${gi}].initialLr must be a finite non-negative number, got ${describeValue(init)}`);
      }
      return hyper;
    });
    // 2. the per-parameter state
    const spec = this.stateKeys();
    const newState = new Map<Tensor, ParamState>();
    for (const [key, st] of Object.entries(sd.state as Record<string, unknown>)) {
      const p = /^(0|[1-9]\d*)$/.test(key) ? index.get(Number(key)) : undefined;
      if (p === undefined) throw new StateDictError(op, `state for parameter ${key}, which is in no parameter group`);
      if (st === null || typeof st !== 'object' || Array.isArray(st)) throw new StateDictError(op, `state ${key} must be an object, got ${describeValue(st)}`);
      const s: ParamState = {};
      for (const [k, v] of Object.entries(st)) {
        const what = `state ${key}.${k}`;
        const isCount = spec === null ? typeof v === 'number' : spec.counts.includes(k);
        const isBuffer = spec === null ? !isCount : spec.buffers.includes(k);
        if (isCount) {
          if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
            throw new StateDictError(op, `${what} must be a number (a non-negative integer count), got ${describeValue(v)}`);
          }
          s[k] = v;
        } else if (isBuffer) {
          if (v === null) continue; // torch's None: no buffer yet
          const ok = v instanceof Float32Array || (Array.isArray(v) && v.every((x) => typeof x === 'number'));
          if (!ok) throw new StateDictError(op, `${what} must be a Float32Array of ${p.data.length} elements, got ${describeValue(v)}`);
          const buf = v as ArrayLike<number>;
          if (buf.length !== p.data.length) {
            throw new StateDictError(op, `${what} has ${buf.length} elements but parameter ${key} has ${p.data.length}`);
          }
          s[k] = Float32Array.from(buf);
        } else {
          throw new StateDictError(op, `${what} is not a state key of ${this.kind} (expected ${[...spec!.counts, ...spec!.buffers].join(', ')})`);
        }
      }
      for (const k of spec?.required ?? []) {
        if (!(k in s)) throw new StateDictError(op, `state ${key} has no ${k} (a ${this.kind} state needs ${spec!.required.join(', ')})`);
      }
      newState.set(p, s);
    }
    // 3. assign (in place: schedulers hold these group objects)
    updates.forEach((hyper, gi) => Object.assign(this.paramGroups[gi]!, hyper));
    this.state.clear();
    for (const [p, s] of newState) this.state.set(p, s);
  }
}

/** Throws PyTorch's "Invalid learning rate" / "Invalid weight_decay value" errors (shared by all optimizers). */
export function checkLr(op: string, lr: number): void {
  // torch 1.13 accepts lr=inf; we do not: one step would turn every parameter into ±inf or NaN
  if (typeof lr !== 'number' || !(lr >= 0 && lr < Infinity)) throw new ValueError(op, `Invalid learning rate: ${String(lr)}`);
}

export function checkWeightDecay(op: string, wd: number): void {
  if (typeof wd !== 'number' || !(wd >= 0 && wd < Infinity)) throw new ValueError(op, `Invalid weight_decay value: ${String(wd)}`);
}

/** Options that must be booleans (torch would take any truthy value; a typo such as nesterov: 'false' would be true). */
export function checkBool(op: string, name: string, v: unknown): void {
  if (typeof v !== 'boolean') throw new ValueError(op, `${name} must be true or false, got ${describeValue(v)}`);
}
