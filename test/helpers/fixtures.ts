/**
 * PyTorch fixtures (test/fixtures/ops/<family>.json, made by test/fixtures/generate.py) and the comparison helpers
 * every op test uses. The JSON format is documented at the top of generate.py; non-finite numbers are stored as the
 * strings "NaN", "Infinity", "-Infinity".
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Tensor } from '../../src/index.js';

type Num = number | string;

/** A tensor as stored in a fixture. */
export interface FTensor {
  shape: number[];
  data: Num[];
}

export interface FInput extends FTensor {
  /** Whether the input requires grad (then `grads[i]` holds its expected gradient). */
  grad: boolean;
}

/** One fixture case: inputs, non-tensor params, expected output, upstream gradient, expected input gradients. */
export interface Case {
  inputs: FInput[];
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  params: Record<string, any>;
  out: FTensor;
  dy: FTensor | null;
  grads: (FTensor | null)[];
  extra?: Record<string, FTensor>;
}

export interface Tol {
  atol?: number;
  rtol?: number;
}

const cache = new Map<string, Record<string, Case>>();

/** Reads test/fixtures/ops/<family>.json (parsed once per process). */
export function loadFixtures(family: string): Record<string, Case> {
  let fx = cache.get(family);
  if (!fx) {
    const url = new URL(`../fixtures/ops/${family}.json`, import.meta.url);
    fx = JSON.parse(readFileSync(url, 'utf8')) as Record<string, Case>;
    cache.set(family, fx);
  }
  return fx;
}

/** Fixture numbers to JS numbers ("NaN" → NaN, "Infinity" → Infinity, "-Infinity" → -Infinity). */
export function decode(data: readonly Num[]): number[] {
  return data.map((v) => (typeof v === 'number' ? v : Number(v)));
}

/** A fixture tensor as a Tensor (its float32 values are exactly torch's, see generate.py). */
export function toTensor(t: FTensor, requiresGrad = false): Tensor {
  const x = new Tensor(Float32Array.from(decode(t.data)), t.shape);
  x.requiresGrad = requiresGrad;
  return x;
}

/** Multi-index of flat index i in a row-major shape, e.g. [0, 2, 4, 1]. */
export function unravel(i: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length).fill(0);
  for (let d = shape.length - 1; d >= 0; d--) {
    const n = shape[d]!;
    idx[d] = n === 0 ? 0 : i % n;
    i = n === 0 ? 0 : Math.floor(i / n);
  }
  return idx;
}

const show = (v: number): string => (Number.isFinite(v) ? String(Number(v.toPrecision(5))) : String(v));

/**
 * Elementwise |actual - expected| <= atol + rtol·|expected|; NaN matches only NaN, ±Infinity only itself.
 * Throws "conv2d fwd: 3/1296 differ; worst at [0,2,4,1]: 0.51234 vs 0.51301 (|Δ|=6.7e-4)" (STYLE rule 11), where the
 * worst element is the one furthest outside its tolerance.
 */
export function expectClose(
  actual: ArrayLike<number>,
  expected: readonly number[],
  shape: readonly number[],
  label: string,
  { atol = 1e-5, rtol = 1e-4 }: Tol = {},
): void {
  if (actual.length !== expected.length) {
    throw new Error(`${label}: ${actual.length} values vs ${expected.length} expected (shape [${shape.join(', ')}])`);
  }
  let bad = 0;
  let worst = -1;
  let worstScore = -Infinity;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    let score: number;
    if (Number.isNaN(e) || Number.isNaN(a)) score = Number.isNaN(e) && Number.isNaN(a) ? 0 : Infinity;
    else if (!Number.isFinite(e) || !Number.isFinite(a)) score = a === e ? 0 : Infinity;
    else score = Math.abs(a - e) / (atol + rtol * Math.abs(e));
    if (score > 1) {
      bad++;
      if (score > worstScore) {
        worstScore = score;
        worst = i;
      }
    }
  }
  if (bad > 0) {
    const a = actual[worst]!;
    const e = expected[worst]!;
    const delta = Math.abs(a - e);
    throw new Error(
      `${label}: ${bad}/${expected.length} differ; worst at [${unravel(worst, shape).join(',')}]: ${show(a)} vs ${show(e)} ` +
        `(|Δ|=${Number.isFinite(delta) ? delta.toExponential(1) : String(delta)})`,
    );
  }
}

/** Throws "<label>: shape [2, 3] vs expected [3, 2]" unless the shapes are equal. */
export function expectShape(actual: readonly number[], expected: readonly number[], label: string): void {
  if (actual.length !== expected.length || actual.some((d, i) => d !== expected[i])) {
    throw new Error(`${label}: shape [${actual.join(', ')}] vs expected [${expected.join(', ')}]`);
  }
}

export interface CheckOptions {
  /** Tolerance for the forward output (default atol 1e-5, rtol 1e-4). */
  fwd?: Tol;
  /** Tolerance for the input gradients (default: same as fwd). */
  grad?: Tol;
}

export interface CheckResult {
  /** The tensors built from the fixture inputs (after fn ran: in-place updates such as BN running stats show here). */
  inputs: Tensor[];
  out: Tensor;
}

/**
 * Builds the fixture's inputs (requiresGrad as stored), runs fn, compares the output, then backpropagates the
 * fixture's dy and compares every input's .grad with torch's.
 */
export function checkOp(c: Case, fn: (...inputs: Tensor[]) => Tensor, label: string, opts: CheckOptions = {}): CheckResult {
  if (!c) throw new Error(`${label}: no such fixture case (regenerate with test/fixtures/generate.py)`);
  const inputs = c.inputs.map((t) => toTensor(t, t.grad));
  const out = fn(...inputs);
  expectShape(out.shape, c.out.shape, `${label} fwd`);
  expectClose(out.data, decode(c.out.data), c.out.shape, `${label} fwd`, opts.fwd);
  if (c.dy) {
    out.backward(toTensor(c.dy));
    c.grads.forEach((g, i) => {
      if (!g) return;
      const what = `${label} grad[${i}]`;
      const got = inputs[i]!.grad;
      const want = decode(g.data);
      if (got === null) {
        // no gradient reached this input: fine only where torch's gradient is all zeros
        if (want.some((v) => v !== 0)) throw new Error(`${what}: .grad is null, expected a gradient of shape [${g.shape.join(', ')}]`);
        return;
      }
      expectShape(got.shape, g.shape, what);
      expectClose(got.data, want, g.shape, what, opts.grad ?? opts.fwd);
    });
  }
  return { inputs, out };
}

/** One row of a family's explicit case map: the test name, the TS call, and optional tolerances / extra checks. */
export type OpRow = [label: string, fn: (...inputs: Tensor[]) => Tensor, opts?: CheckOptions & { after?: (c: Case, r: CheckResult) => void }];

/**
 * Declares one vitest test per case of a fixture family, named by the row's label, plus a test that the map and the
 * JSON name the same cases (so a new fixture without a test, or a test without a fixture, fails).
 */
export function fixtureSuite(family: string, rows: Record<string, OpRow>): void {
  const fx = loadFixtures(family);
  describe(`${family} vs PyTorch`, () => {
    it(`covers every case in fixtures/ops/${family}.json`, () => {
      expect(Object.keys(rows).sort()).toEqual(Object.keys(fx).sort());
    });
    for (const [name, [label, fn, opts]] of Object.entries(rows)) {
      it(label, () => {
        const c = fx[name]!;
        const r = checkOp(c, fn, label, opts);
        opts?.after?.(c, r);
      });
    }
  });
}
