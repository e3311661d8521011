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
