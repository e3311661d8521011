import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadSafetensors, readSafetensorsMetadata, saveSafetensors, SafetensorsError } from '../../src/io/safetensors.js';
import { Tensor } from '../../src/tensor.js';
import { BYTE_EDITS, editBytes, type ByteEdit } from '../helpers/mutate.js';

// Every input either loads, with tensors whose data length matches their shape, or throws a SafetensorsError;
// nothing else (no RangeError, TypeError, stack overflow, AllocationError) may escape.

const SEED = 0x5afe7e45;
const FIX = fileURLToPath(new URL('../fixtures/safetensors/', import.meta.url));
const SEEDS: Uint8Array[] = ['dtypes.safetensors', 'unaligned.safetensors', 'writer.safetensors'].map(
  (f) => new Uint8Array(readFileSync(FIX + f)),
);

type Outcome = 'ok' | SafetensorsError['kind'];

/** Loads, checks the result's invariants, and returns 'ok' or the error kind; rethrows anything unexpected. */
function outcome(bytes: Uint8Array): Outcome {
  let loaded: Record<string, Tensor>;
  try {
    loaded = loadSafetensors(bytes);
  } catch (e) {
    if (!(e instanceof SafetensorsError)) throw e;
    // metadata reading fails the same way, unless only decoding failed
    if (e.kind !== 'UnsupportedDtype') {
      let kind: string | undefined;
      try {
        readSafetensorsMetadata(bytes);
      } catch (e2) {
        if (!(e2 instanceof SafetensorsError)) throw e2;
        kind = e2.kind;
      }
      if (kind !== e.kind) throw new Error(`loadSafetensors threw ${e.kind} but readSafetensorsMetadata ${kind ?? 'succeeded'}`);
    }
    return e.kind;
  }
  let total = 0;
  for (const [name, t] of Object.entries(loaded)) {
    let n = 1;
    for (const d of t.shape) n *= d;
    if (t.data.length !== n) throw new Error(`${name}: ${t.data.length} elements for shape [${t.shape.join(', ')}]`);
    total += n;
  }
  // a valid file has at least one byte per element: nothing beyond what the file justifies
  if (total > bytes.length) throw new Error(`${total} elements from a ${bytes.length}-byte file`);
  readSafetensorsMetadata(bytes);
  return 'ok';
}

function withLength(header: string | Uint8Array, data: Uint8Array): Uint8Array {
  const h = typeof header === 'string' ? new TextEncoder().encode(header) : header;
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

// Pieces that header-like strings are built from: JSON punctuation, numbers, dtype names, field names.
const TOKENS = [
  '{', '}', '[', ']', '"', ':', ',', ' ', '\n', '0', '1', '2', '4', '8', '16', '-', '.', 'e', '\\', 'u', 'null',
  '"F32"', '"U8"', '"BF16"', '"F16"', '"I64"', '"F8_E4M3"', '"F4"', '"f32"', '"dtype"', '"shape"', '"data_offsets"',
  '"__metadata__"', '"__proto__"', '"a"', '"b"', '\u00e9', '\u0000', '\ud83d\ude00', '18446744073709551616',
  '1099511627776', '9007199254740993',
];
const DTYPE_NAMES = ['F64', 'F32', 'F16', 'BF16', 'I64', 'I32', 'I16', 'I8', 'U64', 'U32', 'U16', 'U8', 'BOOL',
  'F8_E4M3', 'F8_E5M2', 'F4', 'F6_E2M3', 'C64', 'f32', 'X'];
const SIZES: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U64: 8, U32: 4,
  U16: 2, U8: 1, BOOL: 1, F8_E4M3: 1, F8_E5M2: 1, F4: 0.5, F6_E2M3: 0.75, C64: 8, f32: 4, X: 1 };

/** Near-valid headers: entries with contiguous offsets computed from the shape, then optionally perturbed. */
const structured = fc
  .record({
    entries: fc.array(
      fc.record({
        name: fc.constantFrom('a', 'b', 'w', '__proto__', 'constructor', '', '\u00e9'),
        dtype: fc.constantFrom(...DTYPE_NAMES),
        shape: fc.array(fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 0, max: 4 }) }, { weight: 1, arbitrary: fc.constantFrom(2 ** 40, 2 ** 53, 2 ** 62) }), { maxLength: 3 }),
        beginDelta: fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -3, max: 3 }) }),
        endDelta: fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -3, max: 3 }) }),
        extra: fc.oneof({ weight: 8, arbitrary: fc.constant('') }, { weight: 1, arbitrary: fc.constantFrom(',"x":1', ',"dtype":"F32"', ',"shape":[1]') }),
      }),
      { maxLength: 4 },
    ),
    metadata: fc.option(fc.dictionary(fc.string({ maxLength: 3 }), fc.oneof(fc.string({ maxLength: 3 }), fc.constant(1 as unknown as string))), { nil: undefined }),
    dataDelta: fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -2, max: 2 }) }),
    pad: fc.constantFrom('', ' ', '   ', '\0', '\t\n'),
    fill: fc.integer({ min: 0, max: 255 }),
  })
  .map(({ entries, metadata, dataDelta, pad, fill }) => {
    const parts: string[] = [];
    if (metadata !== undefined) parts.push(`"__metadata__":${JSON.stringify(metadata)}`);
    let off = 0;
    for (const e of entries) {
      const numel = e.shape.reduce((a, b) => a * b, 1);
      const size = Math.min(Math.ceil(numel * SIZES[e.dtype]!), 64);
      const begin = Math.max(-1, off + e.beginDelta);
      const end = Math.max(-1, off + size + e.endDelta);
      parts.push(`${JSON.stringify(e.name)}:{"dtype":"${e.dtype}","shape":[${e.shape.join(',')}],"data_offsets":[${begin},${end}]${e.extra}}`);
      off += size;
    }
    const data = new Uint8Array(Math.max(0, off + dataDelta)).fill(fill);
    return withLength(`{${parts.join(',')}}${pad}`, data);
  });

/** A valid file with one random edit: byte flip, byte set, truncation, insertion, deletion, or a new length field. */
const mutated = fc
  .record({
    file: fc.constantFrom(...SEEDS),
    op: fc.constantFrom('flip', 'set', 'truncate', 'insert', 'delete', 'length', 'headerByte'),
    pos: fc.nat(),
    pos2: fc.nat(),
    bit: fc.integer({ min: 0, max: 7 }),
    byte: fc.integer({ min: 0, max: 255 }),
    bytes: fc.uint8Array({ maxLength: 8 }),
    len: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
  })
  .map(({ file, op, pos, pos2, bit, byte, bytes, len }) => {
    const b = file.slice();
    const p = pos % b.length;
    const headerLen = Number(new DataView(b.buffer).getBigUint64(0, true));
    if ((BYTE_EDITS as readonly string[]).includes(op)) return editBytes(b, op as ByteEdit, p, { bit, byte, bytes, run: pos2 });
    switch (op) {
      case 'length':
        new DataView(b.buffer).setBigUint64(0, pos2 % 2 ? len : BigInt(headerLen + (pos2 % 9) - 4), true);
        return b;
      default:
        // a byte inside the JSON header, keeping the length field right
        b[8 + (p % headerLen)] = byte;
        return b;
    }
  });

function tally(counts: Map<Outcome, number>, o: Outcome): void {
  counts.set(o, (counts.get(o) ?? 0) + 1);
}

describe('safetensors fuzz: every failure is a SafetensorsError', () => {
  it('random byte strings (15,000)', () => {
    const counts = new Map<Outcome, number>();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 48 }), (b) => {
        tally(counts, outcome(b));
      }),
      { seed: SEED, numRuns: 15_000 },
    );
    expect(counts.get('HeaderTooSmall')).toBeGreaterThan(0);
    expect(counts.get('HeaderTooLarge')).toBeGreaterThan(0);
  });

  it('random token strings behind a correct length field (15,000)', () => {
    const counts = new Map<Outcome, number>();
    // mostly opened with '{' so that most strings get past the start check into the JSON reader
    const header = fc
      .tuple(fc.constantFrom('{', '{', '{', '{"a":', '{"a":{', ''), fc.array(fc.constantFrom(...TOKENS), { maxLength: 40 }))
      .map(([start, t]) => start + t.join(''));
    fc.assert(
      fc.property(header, fc.uint8Array({ maxLength: 24 }), (h, data) => {
        tally(counts, outcome(withLength(h, data)));
      }),
      { seed: SEED + 1, numRuns: 15_000 },
    );
    // the generator reaches the JSON reader, not just the length checks
    expect(counts.get('InvalidHeaderDeserialization')).toBeGreaterThan(7_000);
    expect(counts.get('InvalidHeaderStart')).toBeGreaterThan(0);
  });

  it('near-valid structured headers (12,000)', () => {
    const counts = new Map<Outcome, number>();
    fc.assert(
      fc.property(structured, (b) => {
        tally(counts, outcome(b));
      }),
      { seed: SEED + 2, numRuns: 12_000 },
    );
    for (const k of ['ok', 'InvalidOffset', 'TensorInvalidInfo', 'MetadataIncompleteBuffer', 'ValidationOverflow', 'UnsupportedDtype',
      'DuplicateKey', 'InvalidHeaderDeserialization', 'MisalignedSlice'] as const) {
      expect(counts.get(k) ?? 0, `${k} never reached: ${JSON.stringify([...counts])}`).toBeGreaterThan(0);
    }
  });

  it('single mutations of the valid fixture files (15,000)', () => {
    const counts = new Map<Outcome, number>();
    fc.assert(
      fc.property(mutated, (b) => {
        tally(counts, outcome(b));
      }),
      { seed: SEED + 3, numRuns: 15_000 },
    );
    for (const k of ['ok', 'InvalidHeaderLength', 'MetadataIncompleteBuffer', 'InvalidHeaderDeserialization', 'InvalidHeader'] as const) {
      expect(counts.get(k) ?? 0, `${k} never reached: ${JSON.stringify([...counts])}`).toBeGreaterThan(0);
    }
  });
});

describe('safetensors fuzz: writer round trip', () => {
  const entry = fc.record({
    name: fc.string({ unit: 'binary', maxLength: 6 }),
    shape: fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 3 }),
    bits: fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 27, maxLength: 27 }),
  });

  it('random names (any code point), shapes and float32 bit patterns round-trip; the layout follows the reference (1,000)', () => {
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 5 }), fc.option(fc.dictionary(fc.string({ unit: 'binary', maxLength: 4 }), fc.string({ maxLength: 4 })), { nil: undefined }), (entries, metadata) => {
        const input: Record<string, Tensor> = Object.create(null);
        for (const e of entries) {
          if (e.name === '__metadata__') continue;
          const n = e.shape.reduce((a, b) => a * b, 1);
          const data = new Float32Array(n);
          new Uint32Array(data.buffer).set(e.bits.slice(0, n));
          input[e.name] = new Tensor(data, e.shape);
        }
        const md = metadata === undefined ? undefined : Object.assign(Object.create(null) as Record<string, string>, metadata);
        const bytes = saveSafetensors(input, md);

        // layout: header length multiple of 8, space padding, offsets contiguous in code-point name order
        const hlen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
        expect(hlen % 8).toBe(0);
        let jsonEnd = 8 + hlen;
        while (bytes[jsonEnd - 1] === 0x20) jsonEnd--;
        expect(8 + hlen - jsonEnd).toBeLessThan(8); // at most 7 spaces of padding
        expect(bytes[jsonEnd - 1]).toBe(0x7d); // '}'
        const text = new TextDecoder().decode(bytes.subarray(8, 8 + hlen));
        const names = Object.keys(input);
        const byCodePoint = [...names].sort((a, b) => {
          const x = Array.from(a, (c) => c.codePointAt(0)!);
          const y = Array.from(b, (c) => c.codePointAt(0)!);
          for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
          return x.length - y.length;
        });
        const header = JSON.parse(text) as Record<string, { data_offsets: [number, number] }>;
        const keys = Object.keys(header).filter((k) => k !== '__metadata__');
        expect(keys.sort()).toEqual([...names].sort());
        let off = 0;
        for (const name of byCodePoint) {
          const [b, e] = header[name]!.data_offsets;
          expect(b).toBe(off);
          off = e;
        }
        expect(bytes.length).toBe(8 + hlen + off);

        const back = loadSafetensors(bytes);
        for (const name of names) {
          const a = input[name]!;
          const b = back[name]!;
          expect(b.shape).toEqual(a.shape);
          expect(Array.from(new Uint32Array(b.data.buffer, b.data.byteOffset, b.data.length))).toEqual(Array.from(new Uint32Array(a.data.buffer)));
        }
        expect({ ...readSafetensorsMetadata(bytes) }).toEqual(md === undefined ? {} : { ...md });
      }),
      { seed: SEED + 4, numRuns: 1_000 },
    );
  });
});
