/**
 * Seeded fuzzing (fast-check, bounded count and time) of the dataset parsers that have no fuzz yet: readIdx
 * (src/data/idx.ts) and readCifarBatch (src/data/cifar.ts). Every outcome must be a well-formed result or a
 * DatasetError naming the reader; never another error class, never a hang; and never an allocation beyond what the
 * input's size justifies. Allocation is measured, not guessed: while the parser runs, the typed-array, ArrayBuffer
 * and Array constructors are wrapped to add up what they are asked for.
 *   readIdx:        returns a view of its input, so it may allocate nothing;
 *   readCifarBatch: copies pixels and labels out of the records, so at most the input's length.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { data } from '../../src/index.js';
import { measured } from './alloc.js';

const { readIdx, readCifarBatch, DatasetError } = data;

/** Per-call time limit: these parsers are linear in their (small) input; a hang or a quadratic path trips it. */
const CALL_MS = 250;

/** The outcome must be a result (checked by `ok`) or a DatasetError from `op`; anything else fails the property. */
function check<T>(op: string, m: { value?: T; error?: unknown; ms: number }, ok: (v: T) => void): 'ok' | 'error' {
  expect(m.ms, 'time of one call (ms)').toBeLessThan(CALL_MS);
  if (m.error === undefined) {
    ok(m.value as T);
    return 'ok';
  }
  const e = m.error as Error;
  if (!(e instanceof DatasetError)) throw new Error(`${op}: non-DatasetError ${e?.constructor?.name}: ${e?.message}`);
  expect(e.message.startsWith(`[${op}] `), e.message).toBe(true);
  return 'error';
}

// ---- IDX ---------------------------------------------------------------------------------------------------------

/** A dim that is usually small, sometimes 0, and sometimes huge (2^31, 2^32 − 1, or any uint32). */
const dim = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 6 }) },
  { weight: 1, arbitrary: fc.constantFrom(0, 1, 2 ** 16, 2 ** 31, 2 ** 32 - 1) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 2 ** 32 - 1 }) },
);

interface IdxCase { magic: [number, number, number, number]; dims: number[]; bodyDelta: number; junk: Uint8Array; cut: number }

const idxCase: fc.Arbitrary<IdxCase> = fc.record({
  // usually a valid 0x000008NN magic whose NN matches the dims, sometimes anything
  magic: fc.oneof(
    { weight: 4, arbitrary: fc.constant<[number, number, number, number]>([0, 0, 8, -1]) },
    { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 })) },
  ),
  dims: fc.array(dim, { minLength: 0, maxLength: 5 }),
  // body = product of dims + delta when that product is small; junk bytes otherwise
  bodyDelta: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -3, max: 3 }) }),
  junk: fc.uint8Array({ maxLength: 64 }),
  // sometimes cut the file short anywhere (including inside the header)
  cut: fc.oneof({ weight: 4, arbitrary: fc.constant(-1) }, { weight: 1, arbitrary: fc.nat(200) }),
});

function idxBytes(c: IdxCase): Uint8Array {
  const product = c.dims.reduce((a, b) => a * b, 1);
  const body = product <= 4096 ? Math.max(0, product + c.bodyDelta) : c.junk.length;
  const out = new Uint8Array(4 + 4 * c.dims.length + body);
  const v = new DataView(out.buffer);
  const [m0, m1, m2, m3] = c.magic;
  out.set([m0, m1, m2, m3 < 0 ? c.dims.length : m3]);
  c.dims.forEach((d, i) => v.setUint32(4 + 4 * i, d));
  for (let i = 0; i < body; i++) out[4 + 4 * c.dims.length + i] = c.junk[i % Math.max(1, c.junk.length)] ?? i;
  return c.cut >= 0 ? out.subarray(0, Math.min(c.cut, out.length)) : out;
}

function checkIdx(bytes: Uint8Array): 'ok' | 'error' {
  const m = measured(() => readIdx(bytes, 'fuzz.idx'));
  expect(m.bytes, 'bytes allocated by readIdx').toBe(0);
  const outcome = check('readIdx', m, (r) => {
    // a valid file: magic 0x000008NN, NN dims, body exactly their product; data is a view of the input
    expect([bytes[0], bytes[1], bytes[2]]).toEqual([0, 0, 8]);
    expect(r.dims.length).toBe(bytes[3]);
    const header = 4 + 4 * r.dims.length;
    expect(r.dims.reduce((a, b) => a * b, 1)).toBe(bytes.length - header);
    expect(r.data.buffer).toBe(bytes.buffer);
    expect(r.data.byteOffset).toBe(bytes.byteOffset + header);
    expect(r.data.length).toBe(bytes.length - header);
  });
  if (outcome === 'error') expect((m.error as Error).message).toContain('fuzz.idx');
  return outcome;
}

describe('readIdx fuzz', () => {
  it('3000 generated headers (valid and invalid magic, 0–5 dims up to 2^32 − 1, bodies off by a few, cut files) (seed 1010)', () => {
    const seen = { ok: 0, error: 0 };
    fc.assert(fc.property(idxCase, (c) => void seen[checkIdx(idxBytes(c))]++), { seed: 1010, numRuns: 3000 });
    // the generator reaches both outcomes often enough for the property to mean something
    expect(seen.ok).toBeGreaterThan(300);
    expect(seen.error).toBeGreaterThan(300);
  });

  it('2000 byte-level mutations of a valid 3×4×5 images file (seed 2020)', () => {
    const base = idxBytes({ magic: [0, 0, 8, -1], dims: [3, 4, 5], bodyDelta: 0, junk: Uint8Array.from([1, 2, 3]), cut: -1 });
    expect(checkIdx(base)).toBe('ok');
    const edit = fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }), cut: fc.nat(), kind: fc.constantFrom('set', 'cut', 'both') });
    fc.assert(
      fc.property(fc.array(edit, { minLength: 1, maxLength: 4 }), (edits) => {
        let b = base.slice();
        for (const e of edits) {
          if (e.kind !== 'cut') b[e.at % Math.min(b.length, 24)] = e.value; // mostly the 16-byte header
          if (e.kind !== 'set') b = b.subarray(0, e.cut % (b.length + 1));
        }
        checkIdx(b);
      }),
      { seed: 2020, numRuns: 2000 },
    );
  });

  it('1000 random byte strings (seed 3030)', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 48 }), (b) => void checkIdx(b)), { seed: 3030, numRuns: 1000 });
  });

  it('a header claiming 2^31 × 2^31 images of 2^31 × 2^31 pixels fails at once, allocating nothing', () => {
    const bytes = idxBytes({ magic: [0, 0, 8, -1], dims: [2 ** 31, 2 ** 31, 2 ** 31], bodyDelta: 0, junk: new Uint8Array(8), cut: -1 });
    const m = measured(() => readIdx(bytes, 'claims.idx'));
    expect(m.error).toBeInstanceOf(DatasetError);
    expect((m.error as Error).message).toContain('truncated body');
    expect(m.bytes).toBe(0);
  });
});

// ---- CIFAR -------------------------------------------------------------------------------------------------------

interface CifarCase { records: number; extra: number; labels: number[]; cifar100: boolean; coarse: boolean; mostlyValid: boolean }

const cifarCase: fc.Arbitrary<CifarCase> = fc.record({
  records: fc.integer({ min: 0, max: 4 }),
  extra: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -3, max: 3 }) }),
  labels: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 8, maxLength: 8 }),
  cifar100: fc.boolean(),
  coarse: fc.boolean(),
  mostlyValid: fc.boolean(),
});

function checkCifar(bytes: Uint8Array, opts: data.CifarOptions): 'ok' | 'error' {
  const m = measured(() => readCifarBatch(bytes, { ...opts, name: 'fuzz.bin' }));
  expect(m.bytes, 'bytes allocated by readCifarBatch').toBeLessThanOrEqual(bytes.length);
  const c100 = opts.cifar100 === true || opts.coarse === true;
  const record = c100 ? 3074 : 3073;
  const outcome = check('readCifarBatch', m, (ds) => {
    expect(bytes.length % record).toBe(0);
    const n = bytes.length / record;
    expect(ds.length).toBe(n);
    expect([ds.channels, ds.height, ds.width]).toEqual([3, 32, 32]);
    expect(ds.numClasses).toBe(c100 ? (opts.coarse ? 20 : 100) : 10);
    expect(ds.images.length).toBe(n * 3072);
    expect(ds.labels.length).toBe(n);
    for (let i = 0; i < n; i++) {
      expect(ds.labels[i]).toBe(bytes[i * record + (c100 && !opts.coarse ? 1 : 0)]);
      expect(ds.labels[i]!).toBeLessThan(ds.numClasses);
      // first and last pixel of each record: the bytes after the label(s)
      expect(ds.images[i * 3072]).toBe(bytes[i * record + record - 3072]);
      expect(ds.images[i * 3072 + 3071]).toBe(bytes[i * record + record - 1]);
    }
  });
  if (outcome === 'error') expect((m.error as Error).message).toContain('fuzz.bin');
  return outcome;
}

describe('readCifarBatch fuzz', () => {
  it('600 generated batches: 0–4 records of either format read as either, lengths off by a few, random labels (seed 4040)', () => {
    const seen = { ok: 0, error: 0 };
    fc.assert(
      fc.property(cifarCase, (c) => {
        const written = c.cifar100 ? 3074 : 3073;
        const len = Math.max(0, c.records * written + c.extra);
        const bytes = new Uint8Array(len);
        for (let i = 0; i < len; i++) bytes[i] = (i * 131 + 7) & 255; // pixels that differ from their neighbours
        for (let r = 0; r < c.records; r++) {
          for (let k = 0; k < (c.cifar100 ? 2 : 1); k++) {
            const at = r * written + k;
            // mostly labels in range (so that valid batches occur), sometimes any byte
            if (at < len) bytes[at] = c.mostlyValid ? c.labels[(2 * r + k) % 8]! % (c.cifar100 ? (k === 0 ? 20 : 100) : 10) : c.labels[(2 * r + k) % 8]!;
          }
        }
        // read with the format it was written in, or the other one
        const asWritten = c.mostlyValid || c.labels[0]! % 2 === 0;
        const read100 = asWritten ? c.cifar100 : !c.cifar100;
        seen[checkCifar(bytes, read100 ? { cifar100: true, coarse: c.coarse } : {})]++;
      }),
      { seed: 4040, numRuns: 600 },
    );
    expect(seen.ok).toBeGreaterThan(60);
    expect(seen.error).toBeGreaterThan(60);
  });

  it('800 random byte strings, as CIFAR-10 and as CIFAR-100 (seed 5050)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.boolean(), (b, c100) => void checkCifar(b, c100 ? { cifar100: true } : {})),
      { seed: 5050, numRuns: 800 },
    );
  });
});

describe('the allocation meter itself', () => {
  it('counts typed-array, ArrayBuffer and Array allocations, and not views', () => {
    const src = new Uint8Array(10);
    expect(measured(() => new Float32Array(3)).bytes).toBe(12);
    expect(measured(() => Uint8Array.from([1, 2, 3])).bytes).toBe(3);
    expect(measured(() => new ArrayBuffer(5)).bytes).toBe(5);
    expect(measured(() => new Array(4)).bytes).toBe(32);
    expect(measured(() => src.subarray(2, 8)).bytes).toBe(0);
    expect(measured(() => src.slice(2, 8)).bytes).toBe(6);
    expect(measured(() => new Float64Array(4).map((v) => v)).bytes).toBe(64);
    const two = new Uint8Array(3073 * 2);
    expect(measured(() => readCifarBatch(two)).bytes).toBe(3072 * 2 + 2);
    // and restores the real constructors
    expect(new Uint8Array(2)).toBeInstanceOf(Uint8Array);
    expect(new Uint8Array(1).constructor).toBe(Uint8Array);
    expect(new Uint8Array(4).slice(1).constructor).toBe(Uint8Array);
  });
});
