import { StateDictError } from '../errors.js';
import { fmt, sameShape } from '../shape.js';
import { Tensor } from '../tensor.js';

/** A forward pre-hook: sees the input before forward; may return a replacement input. */
export type ForwardPreHook<M extends Module = Module> = (module: M, input: Tensor) => Tensor | void;
/** A forward hook: sees the input and output after forward; may return a replacement output. */
export type ForwardHook<M extends Module = Module> = (module: M, input: Tensor, output: Tensor) => Tensor | void;

/** What registerForwardHook returns: `remove()` unregisters the hook (again: no effect), like torch's RemovableHandle. */
export interface RemovableHandle {
  remove(): void;
}

/**
 * Base class of every layer and model (torch.nn.Module). Parameters are the Tensor fields of a module, buffers are
 * registered with `registerBuffer` under their torchvision names, and submodules are the Module fields; dotted names
 * come from the fields in construction order, so `layer2.0.downsample.0.weight` is the name torchvision uses.
 * Fields whose names start with `_` are private and never walked.
 */
/** Forward hooks and pre-hooks registered on any module and not yet removed. */
let liveHooks = 0;

/** Whether any module anywhere has a forward hook (a hook may keep any output it sees). */
export function anyForwardHooks(): boolean {
  return liveHooks > 0;
}

export abstract class Module {
  /** Training mode (BatchNorm uses batch statistics, Dropout drops). Set with train()/eval(). */
  training = true;
  private readonly _buffers = new Map<string, Tensor>();
  private readonly _forwardPreHooks = new Map<number, ForwardPreHook>();
  private readonly _forwardHooks = new Map<number, ForwardHook>();
  private _nextHookId = 0;

  abstract forward(x: Tensor): Tensor;

  /** The name printed in summaries and errors (the class name). */
  get typeName(): string {
    return this.constructor.name;
  }

  /** Registers a non-parameter tensor saved in the state dict (torch's register_buffer). */
  protected registerBuffer(name: string, t: Tensor): Tensor {
    this._buffers.set(name, t);
    return t;
  }

  protected buffer(name: string): Tensor {
    return this._buffers.get(name)!;
  }

  /** Direct submodules with their names, in construction order. */
  namedChildren(): [string, Module][] {
    const out: [string, Module][] = [];
    for (const key of Object.keys(this)) {
      if (key.startsWith('_')) continue;
      const v = (this as Record<string, unknown>)[key];
      if (v instanceof Module) out.push([key, v]);
    }
    return out;
  }

  children(): Module[] {
    return this.namedChildren().map(([, m]) => m);
  }

  /** This module's own parameters (not its children's). */
  ownParameters(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const key of Object.keys(this)) {
      if (key.startsWith('_')) continue;
      const v = (this as Record<string, unknown>)[key];
      if (v instanceof Tensor) out.push([key, v]);
    }
    return out;
  }

  ownBuffers(): [string, Tensor][] {
    return [...this._buffers.entries()];
  }

  /** Every module in the tree, depth first, this one first with name ''. */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [name, m] of this.namedChildren()) out.push(...m.namedModules(prefix ? `${prefix}.${name}` : name));
    return out;
  }

  namedParameters(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [prefix, m] of this.namedModules()) {
      for (const [name, t] of m.ownParameters()) out.push([prefix ? `${prefix}.${name}` : name, t]);
    }
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  namedBuffers(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [prefix, m] of this.namedModules()) {
      for (const [name, t] of m.ownBuffers()) out.push([prefix ? `${prefix}.${name}` : name, t]);
    }
    return out;
  }

  /**
   * Parameters and buffers by dotted name, in torchvision's order (each module's parameters, then its buffers,
   * then its children). The tensors are the module's own (no copy), as in PyTorch.
   */
  stateDict(): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    const walk = (m: Module, prefix: string): void => {
      for (const [name, t] of m.ownParameters()) out[prefix + name] = t;
      for (const [name, t] of m.ownBuffers()) out[prefix + name] = t;
      for (const [name, c] of m.namedChildren()) walk(c, `${prefix}${name}.`);
    };
    walk(this, '');
    return out;
  }

  /**
   * Copies a state dict into this module's tensors (in place). strict: every key must match. Size mismatches are
   * errors either way, as in PyTorch; all problems are reported in one StateDictError. `num_batches_tracked` may be
   * absent.
   */
  loadStateDict(sd: Record<string, Tensor>, opts: { strict?: boolean } = {}): { missingKeys: string[]; unexpectedKeys: string[] } {
    if (sd === null || typeof sd !== 'object') {
      throw new StateDictError('loadStateDict', `expected a state dict (an object of name → Tensor) for ${this.typeName}, got ${sd === null ? 'null' : typeof sd}`);
    }
    const strict = opts.strict ?? true;
    const own = this.stateDict();
    const missing: string[] = [];
    const mismatches: string[] = [];
    for (const [key, t] of Object.entries(own)) {
      const src = Object.prototype.hasOwnProperty.call(sd, key) ? sd[key] : undefined;
      if (src === undefined) {
        if (!key.endsWith('num_batches_tracked')) missing.push(key);
        continue;
      }
      if (!(src instanceof Tensor)) {
        mismatches.push(`value for ${key} is not a Tensor`);
      } else if (!sameShape(src.shape, t.shape)) {
        mismatches.push(`size mismatch for ${key}: copying a param with shape ${fmt(src.shape)} from checkpoint, the shape in current model is ${fmt(t.shape)}.`);
      }
    }
    const unexpected = Object.keys(sd).filter((k) => !Object.prototype.hasOwnProperty.call(own, k));
    const ownKeys = Object.keys(own).length;
    // another model's weights: many unexpected keys as well as many missing or misfit ones (a deeper or wider
    // model of the same family keeps PyTorch's full list below)
    if ((strict && unexpected.length > 10 && missing.length + mismatches.length > 10) || mismatches.length > 20) {
      // weights of another model: a short message saying what they look like, not hundreds of keys
      const list = (ks: string[]): string => `${ks.slice(0, 3).map((k) => `"${k}"`).join(', ')}${ks.length > 3 ? `, … (${ks.length} in all)` : ''}`;
      throw new StateDictError('loadStateDict', `these weights are not for ${this.typeName}: of its ${ownKeys} keys ${missing.length} are missing and ` +
        `${mismatches.length} have another size, and ${unexpected.length} keys are unexpected. The weights look like ${guessModel(Object.keys(sd))}. ` +
        `Missing: ${list(missing)}; unexpected: ${list(unexpected)}${mismatches.length ? `; first mismatch: ${mismatches[0]}` : ''}`);
    }
    const problems: string[] = [];
    if (strict && unexpected.length) problems.push(`Unexpected key(s) in state_dict: ${unexpected.map((k) => `"${k}"`).join(', ')}.`);
    if (strict && missing.length) problems.push(`Missing key(s) in state_dict: ${missing.map((k) => `"${k}"`).join(', ')}.`);
    problems.push(...mismatches);
    if (problems.length) {
      throw new StateDictError('loadStateDict', `Error(s) in loading state_dict for ${this.typeName}:\n\t${problems.join('\n\t')}`);
    }
    for (const [key, t] of Object.entries(own)) {
      const src = sd[key];
      if (src) t.data.set(src.data);
    }
    return { missingKeys: missing, unexpectedKeys: unexpected };
  }

  /**
   * Registers a hook called before every forward of this module (torch's register_forward_pre_hook): hook(module,
   * input); a returned tensor replaces the input. Hooks run in registration order.
   */
  registerForwardPreHook(hook: ForwardPreHook<this>): RemovableHandle {
    return this.addHook(this._forwardPreHooks, hook as ForwardPreHook);
  }

  /**
   * Registers a hook called after every forward of this module (torch's register_forward_hook): hook(module, input,
   * output); a returned tensor replaces the output. Hooks run in registration order. A hooked conv, BatchNorm or
   * ReLU always runs its own forward: inference fusion leaves it out (see fusion/conv-bn.ts), so the hook sees it.
   */
  registerForwardHook(hook: ForwardHook<this>): RemovableHandle {
    return this.addHook(this._forwardHooks, hook as ForwardHook);
  }

  /** True when a forward hook or pre-hook is registered on this module. */
  hasForwardHooks(): boolean {
    return this._forwardHooks.size > 0 || this._forwardPreHooks.size > 0;
  }

  // Hooks run around `forward` itself, so that every caller (a parent's forward, a user) triggers them: while any
  // hook is registered, the instance carries its own `forward` that runs the hooks around its class's forward.
  private addHook<H>(hooks: Map<number, H>, hook: H): RemovableHandle {
    const id = this._nextHookId++;
    hooks.set(id, hook);
    liveHooks++;
    if (!Object.prototype.hasOwnProperty.call(this, 'forward')) {
      const inner = Object.getPrototypeOf(this).forward as (x: Tensor) => Tensor;
      Object.defineProperty(this, 'forward', { value: (x: Tensor) => this.runHooked(inner, x), configurable: true, writable: true, enumerable: false });
    }
    return {
      remove: () => {
        if (hooks.delete(id)) liveHooks--;
        if (!this.hasForwardHooks()) delete (this as { forward?: unknown }).forward;
      },
    };
  }

  private runHooked(inner: (x: Tensor) => Tensor, x: Tensor): Tensor {
    for (const h of [...this._forwardPreHooks.values()]) {
      const r = h(this, x);
      if (r !== undefined) x = r;
    }
    let y = inner.call(this, x);
    for (const h of [...this._forwardHooks.values()]) {
      const r = h(this, x, y);
      if (r !== undefined) y = r;
    }
    return y;
  }

  /** Sets requiresGrad on every parameter (torch's requires_grad_): false freezes the module for fine-tuning. */
  requiresGrad_(requiresGrad = true): this {
    for (const p of this.parameters()) p.requiresGrad = requiresGrad;
    return this;
  }

  /** Training mode on (or off) for this module and every submodule. */
  train(on = true): this {
    for (const [, m] of this.namedModules()) m.training = on;
    return this;
  }

  /** Evaluation mode: BatchNorm uses running stats, Dropout is the identity. */
  eval(): this {
    return this.train(false);
  }

  /** Drops every parameter's gradient (sets .grad to null, like PyTorch's set_to_none). */
  zeroGrad(): void {
    for (const p of this.parameters()) p.grad = null;
  }

  /** Calls fn on every submodule (children first) and then on this module, like torch's apply. */
  apply(fn: (m: Module) => void): this {
    for (const c of this.children()) c.apply(fn);
    fn(this);
    return this;
  }

  /** PyTorch-like multi-line print of the module tree. */
  toString(): string {
    const kids = this.namedChildren();
    const head = `${this.typeName}(${this.extraRepr()}`;
    if (!kids.length) return `${head})`;
    const lines = kids.map(([n, m]) => `  (${n}): ${m.toString().split('\n').join('\n  ')}`);
    return `${head}\n${lines.join('\n')}\n)`;
  }

  /** Extra text for toString, e.g. "3, 64, kernel_size=(7, 7)". */
  extraRepr(): string {
    return '';
  }
}

/** What a state dict's keys look like, for the message of loadStateDict when they belong to another model. */
export function guessModel(keys: readonly string[]): string {
  const has = (re: RegExp): boolean => keys.some((k) => re.test(k));
  if (keys.length === 0) return 'nothing (the state dict is empty)';
  if (has(/^(module\.|model\.)/)) return `a wrapped model: its keys start with "${keys[0]!.split('.')[0]}." (strip that prefix, e.g. a DataParallel or checkpoint wrapper)`;
  if (has(/^layer4\./)) {
    const blocks = new Set(keys.filter((k) => /^layer\d\.\d+\./.test(k)).map((k) => k.split('.').slice(0, 2).join('.')));
    return `a torchvision-style ResNet (${has(/conv3\.weight$/) ? 'Bottleneck blocks: resnet50/101/152 or wide/resnext' : 'BasicBlocks: resnet18/34'}, ${blocks.size} blocks)`;
  }
  if (has(/^layer3\./)) return 'a CIFAR ResNet (three stages, layer1–layer3: resnet20/32/44/56/110 or a pre-activation net)';
  if (has(/^features\./)) return 'a VGG, DenseNet, MobileNet or similar torchvision model (keys under "features.")';
  if (has(/^(blocks|encoder\.layers?|transformer)\./) || has(/attn|attention/)) return 'a transformer (ViT or similar)';
  return `another architecture (first keys: ${keys.slice(0, 3).join(', ')})`;
}

