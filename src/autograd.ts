import { config, setConfig, withConfig } from './config.js';
import { AutogradError, checkArg } from './errors.js';
import { addForward } from './kernels/elementwise.js';
import { forgetFinite } from './kernels/finite.js';
import { gradBuffer, isGradBuffer, recycleGradBuffer, untagGradBuffer } from './fusion/arena.js';
import { fmt, numel, sameShape } from './shape.js';
import { Tensor } from './tensor.js';

/**
 * Define-by-run reverse-mode autograd.
 *
 * Every differentiable op is made with `defineOp(name, { forward, backward })`. forward runs with gradients off and
 * returns a new Tensor; when any Tensor argument requires grad, the result gets a `gradFn` Node that remembers the
 * arguments and the ctx. `backward()` walks the graph in reverse topological order (iterative: ResNet-152 graphs have
 * thousands of nodes), checks every gradient's shape against its input's, accumulates into leaf `.grad`, and frees
 * each node as it goes, so that nothing of the graph stays reachable and a second backward throws.
 */

let gradEnabled = true;
/** True while backward() runs node backwards: the ops they call are checked as part of that backward, not as forwards. */
let inBackward = false;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs fn without recording a graph (torch.no_grad). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** Runs fn with gradient recording on (torch.enable_grad). */
export function enableGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = true;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/**
 * Anomaly detection (torch.autograd.detect_anomaly; `config.detectAnomaly`): while on, the first op whose forward
 * output or backward gradient holds NaN or ±Inf throws, naming the op and its input shapes. Off by default; when off
 * it costs one boolean test per op.
 */
export function setDetectAnomaly(on: boolean): void {
  setConfig({ detectAnomaly: on });
}

/** Runs fn with anomaly detection on (withConfig({ detectAnomaly: true }, fn)). */
export function detectAnomaly<T>(fn: () => T): T {
  return withConfig({ detectAnomaly: true }, fn);
}

/** The part of a ctx every op has: the saved tensors and which arguments need a gradient. */
export interface CtxBase<T extends Tensor[] = Tensor[]> {
  saved: T;
  /** needs[i]: argument i is a Tensor that requires grad (only then compute its gradient). */
  needs: boolean[];
  save(...ts: T): void;
  /**
   * Set by backward() just before this op's backward: into[i] is argument i's existing .grad when the argument is a
   * leaf that has one, or, for an argument made by an op, the gradient that earlier consumers already sent it when
   * that is a buffer of autograd's own (from gradBuffer, referenced by nothing else). A backward whose kernel
   * accumulates may add argument i's gradient into it in place and return it (PyTorch's AccumulateGrad also adds into
   * an existing .grad in place); backward() then adds nothing. (A residual unit's input gets the shortcut's gradient
   * first: the convolution's input gradient is then accumulated into it, with no zero-filled buffer and no add.)
   */
  into?: (Tensor | null)[];
}

/** ctx.into[i] if the op may accumulate into it, else a new zero-filled gradient of `shape` (see CtxBase.into). */
export function gradTarget(ctx: CtxBase, i: number, op: string, shape: readonly number[]): Tensor {
  const t = ctx.into?.[i];
  if (t) {
    forgetFinite(t.data); // the op adds into it
    return t;
  }
  return new Tensor(gradBuffer(op, numel(shape)), shape);
}

/**
 * gradTarget for a kernel that can either add into its target or overwrite it: `fresh` when there is no gradient to
 * add into, and the target is then a buffer of autograd's own with arbitrary contents (not zero-filled), which the
 * kernel must overwrite entirely.
 */
export function gradTargetOrFresh(ctx: CtxBase, i: number, op: string, shape: readonly number[]): { t: Tensor; fresh: boolean } {
  if (ctx.into?.[i]) return { t: gradTarget(ctx, i, op, shape), fresh: false };
  return { t: new Tensor(gradBuffer(op, numel(shape), true), shape), fresh: true };
}

/** Untyped extra fields: the ctx of an op that does not declare what it saves. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type LooseSaved = { [key: string]: any };

/**
 * What a forward leaves for its backward: the tensors it saves (`ctx.save(a, b)`, typed by T) and the plain fields
 * of `Saved`, which the forward sets and the backward reads. Declare both on the forward's ctx parameter and the
 * backward's ctx gets the same type:
 *   forward(ctx: Ctx<{ p: Conv2dParams }, [Tensor, Tensor]>, x: Tensor, w: Tensor) { ctx.save(x, w); ctx.p = p; … }
 */
export type Ctx<Saved extends object = LooseSaved, T extends Tensor[] = Tensor[]> = CtxBase<T> & Saved;

function makeCtx<S extends object, T extends Tensor[]>(): Ctx<S, T> {
  const ctx: CtxBase<Tensor[]> = {
    saved: [],
    needs: [],
    save(...ts: Tensor[]) {
      this.saved = ts;
    },
  };
  return ctx as Ctx<S, T>;
}

type Grads = readonly (Tensor | null | undefined)[];

export interface OpImpl<A extends unknown[], S extends object = LooseSaved, T extends Tensor[] = Tensor[]> {
  forward(ctx: Ctx<S, T>, ...args: A): Tensor;
  /** Returns one gradient per argument position (null/undefined where there is none). Runs with gradients off. */
  backward(ctx: Ctx<S, T>, dy: Tensor): Grads;
}

/** A recorded application of an op: the edge list of the graph. */
export class Node {
  freed = false;
  constructor(
    readonly op: string,
    public inputs: (Tensor | null)[] | null,
    public ctx: CtxBase | null,
    private readonly backwardFn: (ctx: never, dy: Tensor) => Grads,
    readonly inputShapes: readonly (readonly number[])[],
  ) {}

  apply(dy: Tensor): Grads {
    if (this.freed || this.ctx === null) {
      throw new AutogradError(
        'backward',
        `Trying to backward through the graph a second time (op ${this.op}); its saved tensors were freed after the first backward. Pass { retainGraph: true } to the first backward if you need to.`,
      );
    }
    return (this.backwardFn as (ctx: CtxBase, dy: Tensor) => Grads)(this.ctx, dy);
  }

  free(): void {
    this.freed = true;
    this.inputs = null;
    this.ctx = null;
  }
}

function argShapes(args: readonly unknown[]): string {
  return args
    .filter((a): a is Tensor => a instanceof Tensor)
    .map((t) => fmt(t.shape))
    .join(', ');
}

function checkFinite(op: string, where: string, t: Tensor, shapes: string): void {
  const d = t.data;
  for (let i = 0; i < d.length; i++) {
    const v = d[i]!;
    if (v - v !== 0) {
      throw new AutogradError(op, `anomaly detected: ${where} produced ${v} at flat index ${i} of ${fmt(t.shape)}; inputs ${shapes}`);
    }
  }
}

/** Makes a differentiable op out of a forward and its mirror backward. */
export function defineOp<A extends unknown[], S extends object = LooseSaved, T extends Tensor[] = Tensor[]>(name: string, impl: OpImpl<A, S, T>): (...args: A) => Tensor {
  return (...args: A): Tensor => {
    // every op takes at least one Tensor: a JavaScript caller passing none gets our error, not a TypeError
    if (!args.some((a) => a instanceof Tensor)) checkArg(false, name, 'the input (argument 1)', 'a Tensor', args[0]);
    let track = false;
    if (gradEnabled) {
      for (const a of args) {
        if (a instanceof Tensor && a.requiresGrad) {
          track = true;
          break;
        }
      }
    }
    const ctx = makeCtx<S, T>();
    if (track) ctx.needs = args.map((a) => a instanceof Tensor && a.requiresGrad);
    const prev = gradEnabled;
    gradEnabled = false;
    let out: Tensor;
    try {
      out = impl.forward(ctx, ...args);
    } finally {
      gradEnabled = prev;
    }
    // An op must return a fresh Tensor object (it may share data, as views do): never one of its arguments.
    if (args.includes(out)) out = new Tensor(out.data, out.shape);
    if (config.detectAnomaly && !inBackward) checkFinite(name, 'forward', out, argShapes(args));
    if (track) {
      out.requiresGrad = true;
      out.gradFn = new Node(
        name,
        args.map((a) => (a instanceof Tensor && a.requiresGrad ? a : null)),
        ctx,
        impl.backward,
        args.map((a) => (a instanceof Tensor ? a.shape : [])),
      );
    }
    return out;
  };
}

function addInto(dst: Float32Array, src: Float32Array): void {
  forgetFinite(dst);
  addForward(dst, dst, src);
}

/** Whether a and b overlap in memory (one ArrayBuffer may hold many: the resident memory of a training step). */
const sharesMemory = (a: Float32Array, b: Float32Array): boolean =>
  a.buffer === b.buffer && a.byteOffset < b.byteOffset + b.byteLength && b.byteOffset < a.byteOffset + a.byteLength;

/**
 * Gradient buffers from gradBuffer (fusion/arena.ts) must each be referenced by one gradient only: untag any that this
 * node's backward passed through from dy or returned for two inputs, and recycle those returned for inputs that
 * need no gradient.
 */
function settleGradBuffers(grads: Grads, dy: Tensor, inputs: (Tensor | null)[] | null): void {
  for (let i = 0; i < grads.length; i++) {
    const gi = grads[i];
    if (!gi || !isGradBuffer(gi.data)) continue;
    let shared = sharesMemory(gi.data, dy.data);
    for (let j = 0; j < grads.length && !shared; j++) shared = j !== i && !!grads[j] && sharesMemory(grads[j]!.data, gi.data);
    if (shared) {
      untagGradBuffer(gi.data);
      untagGradBuffer(dy.data);
    } else if (!inputs?.[i]) recycleGradBuffer(gi.data);
  }
}

export interface BackwardOptions {
  /** Keep the graph for another backward (torch's retain_graph). */
  retainGraph?: boolean;
}

/** Reverse-mode sweep from `root` (Tensor.backward). */
export function backward(root: Tensor, grad?: Tensor, opts: BackwardOptions = {}): void {
  checkArg(root instanceof Tensor, 'backward', 'the output', 'a Tensor', root);
  checkArg(grad === undefined || grad instanceof Tensor, 'backward', 'grad', 'a Tensor of the output\'s shape (or omitted for a scalar output)', grad);
  checkArg(opts !== null && typeof opts === 'object', 'backward', 'opts', 'an options object', opts);
  if (!root.requiresGrad) {
    throw new AutogradError('backward', `element 0 of tensors does not require grad and does not have a gradFn; output ${fmt(root.shape)}`);
  }
  let g0: Tensor;
  if (grad === undefined) {
    if (root.size !== 1) {
      throw new AutogradError('backward', `grad can be implicitly created only for scalar outputs; output has shape ${fmt(root.shape)}`);
    }
    g0 = new Tensor(new Float32Array([1]), root.shape);
  } else {
    if (!sameShape(grad.shape, root.shape)) {
      throw new AutogradError('backward', `Mismatch in shape: grad_output has a shape of ${fmt(grad.shape)} and output has a shape of ${fmt(root.shape)}`);
    }
    g0 = grad;
  }
  if (root.gradFn === null) {
    accumulateLeaf(root, g0);
    return;
  }
  if (root.gradFn.freed) root.gradFn.apply(g0); // throws the clear "second time" error

  // Iterative post-order DFS over tensors that have a gradFn; reversed, it is a topological order from the root.
  const order: Tensor[] = [];
  const visited = new Set<Tensor>([root]);
  const stack: [Tensor, number][] = [[root, 0]];
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    const inputs = top[0].gradFn!.inputs ?? [];
    if (top[1] < inputs.length) {
      const child = inputs[top[1]++];
      if (child && child.gradFn !== null && !visited.has(child)) {
        visited.add(child);
        stack.push([child, 0]);
      }
    } else {
      stack.pop();
      order.push(top[0]);
    }
  }

  const pending = new Map<Tensor, Tensor>([[root, g0]]);
  const prev = gradEnabled;
  const prevInBackward = inBackward;
  gradEnabled = false;
  inBackward = true;
  try {
    for (let k = order.length - 1; k >= 0; k--) {
      const t = order[k]!;
      const node = t.gradFn!;
      const dy = pending.get(t);
      pending.delete(t);
      if (dy === undefined) continue;
      const inputs = node.inputs;
      if (node.ctx !== null && inputs !== null) node.ctx.into = inputs.map((t) => existingLeafGrad(t) ?? ownPending(pending, t));
      const grads = node.apply(dy);
      settleGradBuffers(grads, dy, inputs);
      if (config.detectAnomaly) {
        const shapes = node.inputShapes.filter((sh, i) => sh.length > 0 || inputs?.[i]).map((sh) => fmt(sh)).join(', ');
        for (const gi of grads) if (gi) checkFinite(node.op, 'backward', gi, shapes);
      }
      if (inputs === null) continue;
      for (let i = 0; i < inputs.length; i++) {
        const inp = inputs[i];
        const gi = grads[i];
        if (!inp || !gi) continue;
        if (!sameShape(gi.shape, inp.shape)) {
          throw new AutogradError(
            node.op,
            `backward returned a gradient of shape ${fmt(gi.shape)} for argument ${i} of shape ${fmt(inp.shape)}`,
          );
        }
        if (inp.gradFn === null) {
          if (gi !== inp.grad) accumulateLeaf(inp, gi); // else the op accumulated into it (CtxBase.into)
        } else {
          const have = pending.get(inp);
          if (have === gi) continue; // the op accumulated into it (CtxBase.into)
          if (have === undefined) {
            pending.set(inp, gi);
          } else if (isGradBuffer(have.data)) {
            // ours alone (from gradBuffer): add in place
            addInto(have.data, gi.data);
            recycleGradBuffer(gi.data);
          } else {
            const sum = new Tensor(gradBuffer('backward', have.size), have.shape);
            addForward(sum.data, have.data, gi.data);
            recycleGradBuffer(gi.data);
            pending.set(inp, sum);
          }
        }
      }
      recycleGradBuffer(dy.data); // consumed (a no-op unless it came from gradBuffer and was not passed through)
      if (!opts.retainGraph) node.free();
    }
  } finally {
    gradEnabled = prev;
    inBackward = prevInBackward;
  }
}

/** The gradient pending for a non-leaf t when autograd alone references its buffer (see CtxBase.into), else null. */
function ownPending(pending: Map<Tensor, Tensor>, t: Tensor | null): Tensor | null {
  if (t === null || t.gradFn === null) return null;
  const have = pending.get(t);
  return have !== undefined && isGradBuffer(have.data) && have.size === t.size ? have : null;
}

function existingLeafGrad(t: Tensor | null): Tensor | null {
  return t !== null && t.gradFn === null && t.requiresGrad && t.grad !== null && t.grad.size === t.size ? t.grad : null;
}

/**
 * leaf.grad += g. A first gradient from gradBuffer (referenced by g alone) becomes the leaf's .grad without a copy,
 * unless it is in shared memory (those circulate through the reuse pool: copied, then recycled).
 */
function accumulateLeaf(leaf: Tensor, g: Tensor): void {
  if (!leaf.requiresGrad) return;
  if (leaf.grad === null) {
    if (isGradBuffer(g.data) && !(g.data.buffer instanceof SharedArrayBufferCtor)) {
      untagGradBuffer(g.data);
      leaf.grad = new Tensor(g.data, leaf.shape);
      return;
    }
    leaf.grad = new Tensor(g.data.slice(), leaf.shape);
  } else {
    if (leaf.grad.data.length !== g.data.length) {
      throw new AutogradError('backward', `cannot accumulate a gradient of shape ${fmt(g.shape)} into .grad of shape ${fmt(leaf.grad.shape)} (tensor ${fmt(leaf.shape)}); set .grad = null first`);
    }
    addInto(leaf.grad.data, g.data);
  }
  recycleGradBuffer(g.data);
}

/** SharedArrayBuffer where it exists (a class no ArrayBuffer is an instance of, where it does not). */
const SharedArrayBufferCtor: abstract new (...args: never[]) => unknown =
  typeof SharedArrayBuffer === 'function' ? SharedArrayBuffer : class {};
