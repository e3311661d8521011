/**
 * Error classes. Every message starts with the op in brackets and names every shape involved, in the spirit of
 * PyTorch's "The size of tensor a (3) must match the size of tensor b (4) at non-singleton dimension 1".
 */

/** Base class of every error this library throws on purpose. */
export class ResnetTsError extends Error {
  /** The op, module or file the error is about, e.g. `conv2d`. */
  readonly op: string;
  constructor(op: string, message: string) {
    super(`[${op}] ${message}`);
    this.op = op;
    this.name = new.target.name;
  }
}

/** Shapes that do not fit together, or a shape that is not a shape (negative, fractional, NaN, too large). */
export class ShapeError extends ResnetTsError {}

/** An argument with a bad value that is not a shape: a negative stride, an unknown reduction, a target out of range. */
export class ValueError extends ResnetTsError {}

/** Misuse of autograd: backward through a freed graph, implicit gradient of a non-scalar, a gradient of the wrong shape. */
export class AutogradError extends ResnetTsError {}

/** A tensor too large to allocate (over 2^32 elements, or more memory than the process can get). */
export class AllocationError extends ResnetTsError {}

/** A model state dict that does not fit the model (missing keys, unexpected keys, size mismatches). */
export class StateDictError extends ResnetTsError {}

/**
 * A public function called with an argument of the wrong type, e.g. `add(t, 'x')` or `model.forward([[1]])`:
 * what TypeScript's types rule out, checked at run time for JavaScript callers.
 */
export class ArgumentTypeError extends ResnetTsError {}

/** A short description of any value for an error message: `null`, `a string "x"`, `an Array of 2`, `a BigInt64Array`. */
export function describeArg(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  switch (typeof v) {
    case 'string':
      return `a string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
    case 'number':
      return `the number ${v}`;
    case 'bigint':
      return `the bigint ${v}n`;
    case 'boolean':
      return `${v}`;
    case 'function':
      return 'a function';
    case 'symbol':
      return 'a symbol';
  }
  if (Array.isArray(v)) return `an Array of ${v.length}`;
  const name = (v as { constructor?: { name?: unknown } }).constructor?.name;
  const shape = (v as { shape?: unknown }).shape;
  if (name === 'Tensor' && Array.isArray(shape)) return `a Tensor of shape [${shape.join(', ')}]`;
  return typeof name === 'string' && name !== 'Object' ? `a ${name}` : 'an object';
}

/** Throws ArgumentTypeError `[op] name must be what, got …` unless ok. */
export function checkArg(ok: boolean, op: string, name: string, what: string, v: unknown): void {
  if (!ok) throw new ArgumentTypeError(op, `${name} must be ${what}, got ${describeArg(v)}`);
}

/**
 * Runs `fn` (an op written in terms of another op) so that an error of the inner op is reported under the name
 * the caller used: `slice` is narrow inside, but a failing slice says `[slice]`, with `context` (the shapes) added.
 */
export function underName<T>(op: string, fn: () => T, context?: () => string): T {
  try {
    return fn();
  } catch (e) {
    if (!(e instanceof ResnetTsError) || e.op === op) throw e;
    const Cls = e.constructor as new (op: string, message: string) => ResnetTsError;
    const detail = e.message.startsWith(`[${e.op}] `) ? e.message.slice(e.op.length + 3) : e.message;
    throw new Cls(op, `${detail} (in ${e.op}${context ? `; ${context()}` : ''})`);
  }
}
