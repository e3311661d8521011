// A small WebAssembly binary encoder: enough of the format to emit our SIMD kernels from TypeScript at load time
// (no .wasm file, no compiler). Kernel source is written as expressions: every instruction helper takes its operands
// (already-encoded expressions) and returns the bytes that push its result, so
//
//   local.set(acc, f32x4.add(local.get(acc), f32x4.mul(v128.load32_splat(local.get(pa), 4 * i), local.get(b0))))
//
// encodes `acc += splat(a[i]) · b0` in the stack machine's order (operands first, then the opcode).
//
// Format reference: the WebAssembly core spec, binary format (sections, LEB128 integers, instruction opcodes) and
// the fixed-width SIMD proposal's opcode table (prefix 0xfd, then the opcode as an unsigned LEB128).

/** Encoded bytes of an instruction sequence (an expression leaves its value on the stack). */
export type Expr = number[];

/** Value types, by their type byte. */
export const ValType = { i32: 0x7f, i64: 0x7e, f32: 0x7d, f64: 0x7c, v128: 0x7b } as const;
export type ValType = (typeof ValType)[keyof typeof ValType];

/** Unsigned LEB128. */
export function uleb(v: number): number[] {
  const out: number[] = [];
  do {
    let byte = v & 0x7f;
    v = Math.floor(v / 128);
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
  return out;
}

/** Signed LEB128 (32-bit range). */
export function sleb(v: number): number[] {
  const out: number[] = [];
  v |= 0;
  for (;;) {
    const byte = v & 0x7f;
    v >>= 7;
    if ((v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

const cat = (...parts: Expr[]): Expr => {
  const out: number[] = [];
  for (const p of parts) for (const b of p) out.push(b);
  return out;
};

/** A vector: count, then the items. */
const vec = (items: Expr[]): Expr => cat(uleb(items.length), ...items);
const name = (s: string): Expr => vec([...s].map((ch) => [ch.charCodeAt(0)]));
const section = (id: number, body: Expr): Expr => cat([id], uleb(body.length), body);

/** A plain instruction: operands, then its opcode. */
const op = (code: number) => (...args: Expr[]): Expr => cat(...args, [code]);
/** A SIMD instruction (prefix 0xfd). */
const simd = (code: number) => (...args: Expr[]): Expr => cat(...args, [0xfd], uleb(code));
/** A load/store with memarg (log2 alignment, byte offset); the address (and value, for stores) come first. */
const mem = (prefix: number[], align: number) => (addr: Expr, offset = 0, ...rest: Expr[]): Expr =>
  cat(addr, ...rest, prefix, uleb(align), uleb(offset));

// ---- instructions -------------------------------------------------------------------------------------------

export const local = {
  get: (i: number): Expr => [0x20, ...uleb(i)],
  set: (i: number, v: Expr): Expr => cat(v, [0x21], uleb(i)),
  tee: (i: number, v: Expr): Expr => cat(v, [0x22], uleb(i)),
};

export const i32 = {
  const: (v: number): Expr => [0x41, ...sleb(v)],
  eqz: op(0x45),
  eq: op(0x46),
  ne: op(0x47),
  lt_s: op(0x48),
  gt_s: op(0x4a),
  le_s: op(0x4c),
  ge_s: op(0x4e),
  add: op(0x6a),
  sub: op(0x6b),
  mul: op(0x6c),
  and: op(0x71),
  or: op(0x72),
  shl: op(0x74),
  shr_s: op(0x75),
  load: mem([0x28], 2),
  store: (addr: Expr, v: Expr, offset = 0): Expr => cat(addr, v, [0x36], uleb(2), uleb(offset)),
};

export const f32 = {
  const: (v: number): Expr => [0x43, ...new Uint8Array(new Float32Array([v]).buffer)],
  load: mem([0x2a], 2),
  store: (addr: Expr, v: Expr, offset = 0): Expr => cat(addr, v, [0x38], uleb(2), uleb(offset)),
  demote_f64: op(0xb6),
};

export const f64 = {
  const: (v: number): Expr => {
    const b = new Uint8Array(new Float64Array([v]).buffer);
    return [0x44, ...b];
  },
  load: mem([0x2b], 3),
  store: (addr: Expr, v: Expr, offset = 0): Expr => cat(addr, v, [0x39], uleb(3), uleb(offset)),
  add: op(0xa0),
  sub: op(0xa1),
  mul: op(0xa2),
  promote_f32: op(0xbb),
};

/** Bulk memory (prefix 0xfc): `memory.fill(dest, value, n)`, n bytes of the byte value from dest (memory 0). */
export const memory = {
  fill: (dest: Expr, value: Expr, n: Expr): Expr => cat(dest, value, n, [0xfc], uleb(11), [0x00]),
};

export const v128 = {
  load: (addr: Expr, offset = 0): Expr => cat(addr, [0xfd], uleb(0x00), uleb(4), uleb(offset)),
  load32_splat: (addr: Expr, offset = 0): Expr => cat(addr, [0xfd], uleb(0x09), uleb(2), uleb(offset)),
  load64_splat: (addr: Expr, offset = 0): Expr => cat(addr, [0xfd], uleb(0x0a), uleb(3), uleb(offset)),
  load64_zero: (addr: Expr, offset = 0): Expr => cat(addr, [0xfd], uleb(0x5d), uleb(3), uleb(offset)),
  /** One float32 into lane 0, lanes 1–3 zero. */
  load32_zero: (addr: Expr, offset = 0): Expr => cat(addr, [0xfd], uleb(0x5c), uleb(2), uleb(offset)),
  /** Stores lane `lane` of v as one 32-bit value. */
  store32_lane: (addr: Expr, v: Expr, lane: number, offset = 0): Expr => cat(addr, v, [0xfd], uleb(0x5a), uleb(2), uleb(offset), [lane]),
  store: (addr: Expr, v: Expr, offset = 0): Expr => cat(addr, v, [0xfd], uleb(0x0b), uleb(4), uleb(offset)),
  /** All-zero vector. */
  zero: (): Expr => cat([0xfd], uleb(0x0c), new Array<number>(16).fill(0)),
  not: simd(0x4d),
  and: simd(0x4e),
  /** a & ~b */
  andnot: simd(0x4f),
  or: simd(0x50),
  /** bitselect(a, b, c) = (a & c) | (b & ~c) */
  bitselect: simd(0x52),
};

export const i32x4 = {
  /** The constant vector of four int32 lanes. */
  const: (lanes: [number, number, number, number]): Expr => cat([0xfd], uleb(0x0c), lanes.flatMap((l) => [l & 255, (l >>> 8) & 255, (l >>> 16) & 255, (l >>> 24) & 255])),
  splat: simd(0x11),
  add: simd(0xae),
  /** Lanewise a < b as unsigned: all ones or all zeros. */
  lt_u: simd(0x3a),
  /** Lanewise a ≠ b: all ones or all zeros. */
  ne: simd(0x38),
  shr_s: simd(0xac),
  sub: simd(0xb1),
};

/** i8x16.shuffle of two vectors by 16 lane indices (0–15 from a, 16–31 from b). */
const shuffle = (a: Expr, b: Expr, lanes: number[]): Expr => cat(a, b, [0xfd], uleb(0x0d), lanes);
/** Shuffle by 32-bit lanes (0–3 from a, 4–7 from b). */
const shuffle32 = (a: Expr, b: Expr, lanes: number[]): Expr => shuffle(a, b, lanes.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]));

export const f32x4 = {
  splat: simd(0x13),
  /** Lanes picked from a (0–3) and b (4–7). */
  shuffle: shuffle32,
  add: simd(0xe4),
  sub: simd(0xe5),
  mul: simd(0xe6),
  /** Lanewise a / b and √a, correctly rounded (IEEE 754). */
  div: simd(0xe7),
  sqrt: simd(0xe3),
  /** Lanewise comparisons: all ones where true (ne is true for a NaN lane). */
  ne: simd(0x42),
  gt: simd(0x44),
  le: simd(0x45),
  neg: simd(0xe1),
  /** Lanewise a < b ? b : a (the bits of one operand: a when either is NaN). */
  pmax: simd(0xeb),
  /** v with lane `lane` replaced by the f32 x. */
  replace_lane: (v: Expr, lane: number, x: Expr): Expr => cat(v, x, [0xfd], uleb(0x20), [lane]),
  /** a·b + c with or without an intermediate rounding (relaxed SIMD: the engine picks; x64 with FMA fuses). */
  relaxed_madd: simd(0x105),
  demote_f64x2_zero: simd(0x5e),
  /** Lanes 0, 1 of a and lanes 0, 1 of b as one vector (a, b: demote_f64x2_zero results). */
  join_low: (a: Expr, b: Expr): Expr => shuffle(a, b, [0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23]),
  /** Lanes 2, 3 of v moved to lanes 0, 1 (lanes 2, 3 of the result: v's 2, 3 again; not read by promote_low). */
  high: (v: Expr): Expr => shuffle(v, v, [8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15]),
};

export const f64x2 = {
  splat: simd(0x14),
  add: simd(0xf0),
  sub: simd(0xf1),
  mul: simd(0xf2),
  neg: simd(0xed),
  /** v with lane `lane` replaced by the f64 x. */
  replace_lane: (v: Expr, lane: number, x: Expr): Expr => cat(v, x, [0xfd], uleb(0x22), [lane]),
  /** Lanes 0, 1 of an f32x4, widened to float64 (exact). */
  promote_low_f32x4: simd(0x5f),
};

// ---- control --------------------------------------------------------------------------------------------------

const VOID = 0x40;

/** `block … end`: a `br` to it (depth counted from inside) jumps past its end. */
export const block = (...body: Expr[]): Expr => cat([0x02, VOID], ...body, [0x0b]);
/** `loop … end`: a `br` to it jumps back to its start. */
export const loop = (...body: Expr[]): Expr => cat([0x03, VOID], ...body, [0x0b]);
export const if_ = (cond: Expr, then: Expr[], else_: Expr[] = []): Expr =>
  cat(cond, [0x04, VOID], ...then, ...(else_.length > 0 ? [[0x05], ...else_] : []), [0x0b]);
export const br = (depth: number): Expr => [0x0c, ...uleb(depth)];
export const br_if = (depth: number, cond: Expr): Expr => cat(cond, [0x0d], uleb(depth));

/**
 * `for (i = from; i < to; i += step) body` as block/loop: i is a local, `to` an expression re-evaluated every round
 * (keep it a local.get). The body runs at least once only if from < to (the test comes first).
 */
export function forLoop(i: number, from: Expr, to: Expr, step: number, ...body: Expr[]): Expr {
  return cat(
    local.set(i, from),
    block(loop(br_if(1, i32.ge_s(local.get(i), to)), ...body, local.set(i, i32.add(local.get(i), i32.const(step))), br(0))),
  );
}

// ---- functions and modules -------------------------------------------------------------------------------------

/** A function: parameter and result types, extra locals (indices after the parameters), body. */
export interface Func {
  name: string;
  params: ValType[];
  results: ValType[];
  locals: ValType[];
  body: Expr[];
}

/**
 * Local indices for a function: the parameters first (named), then locals declared with `add`, in order.
 * `types` is what Func.locals needs.
 */
export class Locals {
  readonly types: ValType[] = [];
  private next: number;
  constructor(params: number) {
    this.next = params;
  }
  add(t: ValType): number {
    this.types.push(t);
    return this.next++;
  }
  addMany(t: ValType, n: number): number[] {
    return Array.from({ length: n }, () => this.add(t));
  }
}

/**
 * A module importing one memory (`env.mem`, at least `minPages` pages of 64 KB) and exporting the functions.
 */
export function encodeModule(funcs: Func[], minPages = 1, shared = false, maxPages = 65536): Uint8Array {
  const sig = (f: Func): string => `${f.params.join(',')}>${f.results.join(',')}`;
  const sigs: string[] = [];
  for (const f of funcs) if (!sigs.includes(sig(f))) sigs.push(sig(f));
  const types = vec(sigs.map((s) => {
    const [p, r] = s.split('>');
    const list = (x: string): number[] => (x === '' ? [] : x.split(',').map(Number));
    return cat([0x60], vec(list(p!).map((t) => [t])), vec(list(r!).map((t) => [t])));
  }));
  const limits = shared ? cat([0x03], uleb(minPages), uleb(maxPages)) : cat([0x00], uleb(minPages));
  const imports = vec([cat(name('env'), name('mem'), [0x02], limits)]);
  const fnSection = vec(funcs.map((f) => uleb(sigs.indexOf(sig(f)))));
  const exports = vec(funcs.map((f, i) => cat(name(f.name), [0x00], uleb(i))));
  const code = vec(funcs.map((f) => {
    // Locals as runs of equal types.
    const runs: Expr[] = [];
    for (let i = 0; i < f.locals.length;) {
      let j = i;
      while (j < f.locals.length && f.locals[j] === f.locals[i]) j++;
      runs.push(cat(uleb(j - i), [f.locals[i]!]));
      i = j;
    }
    const body = cat(vec(runs), ...f.body, [0x0b]);
    return cat(uleb(body.length), body);
  }));
  return new Uint8Array(cat(
    [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    section(1, types),
    section(2, imports),
    section(3, fnSection),
    section(7, exports),
    section(10, code),
  ));
}
