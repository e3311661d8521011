import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ResnetTsError } from '../../src/errors.js';
import {
  loadSafetensors,
  MAX_HEADER_SIZE,
  parseSafetensors,
  readSafetensorsMetadata,
  saveSafetensors,
  SafetensorsError,
  type SafetensorsErrorKind,
} from '../../src/io/safetensors.js';
import { Tensor } from '../../src/tensor.js';
import { thrownBy } from '../helpers/thrown.js';

const FIX = fileURLToPath(new URL('../fixtures/safetensors/', import.meta.url));
const fixture = (name: string): Uint8Array => new Uint8Array(readFileSync(FIX + name));

interface ExpectedTensor {
  dtype: string;
  shape: number[];
  bits: number[];
}
interface ExpectedFile {
  metadata: Record<string, string>;
  tensors: Record<string, ExpectedTensor>;
}
interface Expected {
  'dtypes.safetensors': ExpectedFile;
  'unaligned.safetensors': ExpectedFile;
  writer: { metadata: Record<string, string>; tensors: Array<{ name: string; shape: number[]; bits: number[] }> };
  f16_all_sha256: string;
  bf16_all_sha256: string;
}
const EXPECTED = JSON.parse(readFileSync(FIX + 'expected.json', 'utf8')) as Expected;

const bitsOf = (f: Float32Array): number[] => Array.from(new Uint32Array(f.buffer, f.byteOffset, f.length));
const hex = (n: number): string => '0x' + (n >>> 0).toString(16).padStart(8, '0');

/** A file from header text (UTF-8) and data bytes; `len` overrides the header length field. */
function file(header: string | Uint8Array, data: ArrayLike<number> = [], len?: bigint): Uint8Array {
  const h = typeof header === 'string' ? new TextEncoder().encode(header) : header;
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, len ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

const f32Bytes = (...v: number[]): number[] => Array.from(new Uint8Array(new Float32Array(v).buffer));
const u32Bytes = (...v: number[]): number[] => Array.from(new Uint8Array(new Uint32Array(v).buffer));

const errorOf = (fn: () => unknown): SafetensorsError => thrownBy(SafetensorsError, fn);

/** Compares a decoded tensor with a fixture bit for bit, reporting the first difference. */
function expectBits(name: string, got: Float32Array, want: number[]): void {
  const g = bitsOf(got);
  expect(g.length, `${name}: length`).toBe(want.length);
  const bad = g.findIndex((b, i) => b !== want[i]);
  if (bad >= 0) {
    expect.fail(`${name}: ${g.filter((b, i) => b !== want[i]).length}/${g.length} differ; first at [${bad}]: ${hex(g[bad]!)} (${got[bad]}) vs ${hex(want[bad]!)}`);
  }
}

describe('safetensors read: PyTorch fixtures', () => {
  for (const fname of ['dtypes.safetensors', 'unaligned.safetensors'] as const) {
    it(`${fname}: every tensor's dtype, shape and float32 bits match PyTorch's .float()`, () => {
      const want = EXPECTED[fname];
      const { metadata, tensors } = parseSafetensors(fixture(fname));
      expect({ ...metadata }).toEqual(want.metadata);
      expect(tensors.map((t) => t.name).sort()).toEqual(Object.keys(want.tensors).sort());
      for (const t of tensors) {
        const w = want.tensors[t.name]!;
        expect(t.dtype, t.name).toBe(w.dtype);
        expect(t.shape, t.name).toEqual(w.shape);
        expectBits(t.name, t.data, w.bits);
      }
    });
  }

  it('dtypes.safetensors: loadSafetensors gives Tensors with the same shapes and data; metadata read alone', () => {
    const bytes = fixture('dtypes.safetensors');
    const loaded = loadSafetensors(bytes);
    const want = EXPECTED['dtypes.safetensors'];
    expect(Object.keys(loaded).sort()).toEqual(Object.keys(want.tensors).sort());
    for (const [name, w] of Object.entries(want.tensors)) {
      const t = loaded[name]!;
      expect(t).toBeInstanceOf(Tensor);
      expect(t.shape).toEqual(w.shape);
      expectBits(name, t.data, w.bits);
    }
    expect({ ...readSafetensorsMetadata(bytes) }).toEqual(want.metadata);
  });

  it('unaligned.safetensors: odd offsets, out-of-order header, \\u escapes, __proto__ name on a null-prototype result', () => {
    const loaded = loadSafetensors(fixture('unaligned.safetensors'));
    expect(Object.getPrototypeOf(loaded)).toBe(null);
    expect(Object.prototype.hasOwnProperty.call(loaded, '__proto__')).toBe(true);
    expect(Array.from(loaded['__proto__']!.data)).toEqual([3]);
    expect(Array.from(loaded['caf\u00e9 \u{1F600}']!.data)).toEqual([5.5]);
    expect(Array.from(loaded['f32_odd']!.data)).toEqual([1.25, -3.5]);
    expect(loaded['empty_mid']!.shape).toEqual([0]);
  });

  for (const [dtype, key] of [['F16', 'f16_all_sha256'], ['BF16', 'bf16_all_sha256']] as const) {
    it(`${dtype}: all 65536 bit patterns decode to PyTorch's float32 bits (SHA-256 of the output)`, () => {
      const data = new Uint8Array(2 * 65536);
      for (let h = 0; h < 65536; h++) {
        data[2 * h] = h & 0xff;
        data[2 * h + 1] = h >> 8;
      }
      const bytes = file(`{"x":{"dtype":"${dtype}","shape":[65536],"data_offsets":[0,131072]}}`, data);
      const x = loadSafetensors(bytes)['x']!;
      const sha = createHash('sha256').update(new Uint8Array(x.data.buffer, x.data.byteOffset, x.data.byteLength)).digest('hex');
      expect(sha).toBe(EXPECTED[key]);
    });
  }
});

describe('safetensors read: reference test vectors and valid edge cases', () => {
  it('the reference doc example: I32 [2, 2] of zeros', () => {
    const t = loadSafetensors(file('{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}', new Uint8Array(16)))['test']!;
    expect(t.shape).toEqual([2, 2]);
    expect(Array.from(t.data)).toEqual([0, 0, 0, 0]);
  });

  it('scalar shape [] and zero-size tensors (two at the same offset, one between others)', () => {
    const h =
      '{"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"z1":{"dtype":"F32","shape":[0,3],"data_offsets":[4,4]},' +
      '"z2":{"dtype":"F64","shape":[5,0],"data_offsets":[4,4]},"u":{"dtype":"U8","shape":[2],"data_offsets":[4,6]},' +
      '"z3":{"dtype":"U8","shape":[0],"data_offsets":[6,6]}}';
    const r = loadSafetensors(file(h, [...f32Bytes(42), 9, 10]));
    expect(r['s']!.shape).toEqual([]);
    expect(r['s']!.item()).toBe(42);
    expect(r['z1']!.shape).toEqual([0, 3]);
    expect(r['z2']!.shape).toEqual([5, 0]);
    expect(r['z3']!.data.length).toBe(0);
    expect(Array.from(r['u']!.data)).toEqual([9, 10]);
  });

  it('no tensors: {} and metadata only; "__metadata__": null means none', () => {
    expect(Object.keys(loadSafetensors(file('{}')))).toEqual([]);
    const md = file('{"__metadata__":{"a":"b","__proto__":"p","":"empty"}}');
    expect(Object.keys(loadSafetensors(md))).toEqual([]);
    const m = readSafetensorsMetadata(md);
    expect(Object.getPrototypeOf(m)).toBe(null);
    expect({ ...m }).toEqual({ a: 'b', ['__proto__']: 'p', '': 'empty' });
    expect(Object.keys(readSafetensorsMetadata(file('{"__metadata__":null}')))).toEqual([]);
    expect(Object.keys(readSafetensorsMetadata(file('{"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', [1])))).toEqual([]);
  });

  it('NaN payloads, -0 and infinities are kept bit for bit (F32)', () => {
    const bits = [0x7fa00001, 0xffc00123, 0x80000000, 0x7f800000, 0x00000001];
    const t = loadSafetensors(file('{"n":{"dtype":"F32","shape":[5],"data_offsets":[0,20]}}', u32Bytes(...bits)))['n']!;
    expect(bitsOf(t.data)).toEqual(bits);
  });

  it('whitespace: inside the JSON, and trailing spaces / tabs / newlines after it', () => {
    const h = '{ "a" :\n\t{ "shape" : [ 1 ] , "data_offsets":[ 0 , 4 ],"dtype" : "F32" } }  \t\r\n  ';
    expect(Array.from(loadSafetensors(file(h, f32Bytes(7.5)))['a']!.data)).toEqual([7.5]);
  });

  it('keys: escapes decoded, __proto__ and constructor are ordinary names', () => {
    const h =
      '{"\\u0061\\n\\"\\/":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"__proto__":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},' +
      '"constructor":{"dtype":"U8","shape":[1],"data_offsets":[2,3]},"\\ud83d\\ude00":{"dtype":"U8","shape":[1],"data_offsets":[3,4]}}';
    const r = loadSafetensors(file(h, [1, 2, 3, 4]));
    expect(Object.getPrototypeOf(r)).toBe(null);
    expect(Object.keys(r).sort()).toEqual(['__proto__', 'a\n"/', 'constructor', '\u{1F600}'].sort());
    expect(r['__proto__']!.item()).toBe(2);
    expect(r['constructor']!.item()).toBe(3);
    expect(r['\u{1F600}']!.item()).toBe(4);
  });

  it('unaligned offsets: a 3-byte U8 tensor before an F32 and an F64', () => {
    const h =
      '{"f":{"dtype":"F32","shape":[2],"data_offsets":[3,11]},"u":{"dtype":"U8","shape":[3],"data_offsets":[0,3]},' +
      '"d":{"dtype":"F64","shape":[1],"data_offsets":[11,19]}}';
    const d = [1, 2, 3, ...f32Bytes(0.5, -1.75), ...new Uint8Array(new Float64Array([0.1]).buffer)];
    const bytes = file(h, d);
    // also as a view at an odd byte offset into a larger buffer, and as a bare ArrayBuffer
    const big = new Uint8Array(bytes.length + 5);
    big.set(bytes, 1);
    for (const input of [bytes, big.subarray(1, 1 + bytes.length), bytes.slice().buffer]) {
      const r = loadSafetensors(input);
      expect(Array.from(r['u']!.data)).toEqual([1, 2, 3]);
      expect(Array.from(r['f']!.data)).toEqual([0.5, -1.75]);
      expect(r['d']!.data[0]).toBe(Math.fround(0.1));
    }
  });

  it('integer dtypes by hand: I64/U64 above 2^53 round once (2^60 + 2^36 + 1 → 2^60 + 2^37), BOOL non-zero is 1', () => {
    const lohi = (lo: number, hi: number): number[] => u32Bytes(lo, hi);
    const h =
      '{"i":{"dtype":"I64","shape":[3],"data_offsets":[0,24]},"u":{"dtype":"U64","shape":[2],"data_offsets":[24,40]},' +
      '"b":{"dtype":"BOOL","shape":[3],"data_offsets":[40,43]},"c":{"dtype":"I8","shape":[1],"data_offsets":[43,44]}}';
    // 2^60 + 2^36 + 1 = hi 0x10000010, lo 1; its negation; -1. U64: 2^64 - 1, 2^63 + 2^39 + 1.
    const d = [...lohi(1, 0x10000010), ...lohi(0xffffffff, 0xefffffef), ...lohi(0xffffffff, 0xffffffff),
      ...lohi(0xffffffff, 0xffffffff), ...lohi(1, 0x80000080), 0, 1, 7, 0xff];
    const r = loadSafetensors(file(h, d));
    expect(Array.from(r['i']!.data)).toEqual([2 ** 60 + 2 ** 37, -(2 ** 60 + 2 ** 37), -1]);
    expect(Array.from(r['u']!.data)).toEqual([2 ** 64, 2 ** 63 + 2 ** 40]);
    expect(Array.from(r['b']!.data)).toEqual([0, 1, 1]);
    expect(Array.from(r['c']!.data)).toEqual([-1]);
  });

  it('a dtype resnet-ts cannot decode (F8_E4M3, C64): the header still validates and metadata reads; loading says UnsupportedDtype', () => {
    for (const [dt, size] of [['F8_E4M3', 2], ['F8_E5M2', 2], ['C64', 16], ['F4', 1]] as const) {
      const bytes = file(`{"__metadata__":{"k":"v"},"w":{"dtype":"${dt}","shape":[2],"data_offsets":[0,${size}]}}`, new Uint8Array(size));
      expect({ ...readSafetensorsMetadata(bytes) }).toEqual({ k: 'v' });
      const e = errorOf(() => loadSafetensors(bytes));
      expect(e.kind).toBe('UnsupportedDtype');
      expect(e.tensor).toBe('w');
      expect(e.message).toContain(dt);
    }
  });
});

// A valid file to cut and corrupt: header 'H' (56 bytes, padded) and 8 bytes of data.
const VALID_HEADER = '{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
const valid = (): Uint8Array => file(VALID_HEADER, f32Bytes(1, 2));
const one = (entry: string, data: ArrayLike<number> = []): Uint8Array => file(`{"w":${entry}}`, data);
const two = (a: string, b: string, data: ArrayLike<number>): Uint8Array => file(`{"a":${a},"b":${b}}`, data);
const F32_2 = '{"dtype":"F32","shape":[2],"data_offsets":[0,8]}';

interface Bad {
  name: string;
  bytes: () => Uint8Array;
  kind: SafetensorsErrorKind;
  tensor?: string;
  /** The header is valid (only decoding fails), so readSafetensorsMetadata succeeds. */
  headerOk?: true;
  /** Text the message must contain. */
  text?: string;
}

const BAD: Bad[] = [
  { name: 'empty file', bytes: () => new Uint8Array(0), kind: 'HeaderTooSmall' },
  { name: '7 bytes', bytes: () => valid().subarray(0, 7), kind: 'HeaderTooSmall' },
  { name: 'header cut short', bytes: () => valid().subarray(0, 8 + VALID_HEADER.length - 1), kind: 'InvalidHeaderLength' },
  { name: 'only the length field', bytes: () => valid().subarray(0, 8), kind: 'InvalidHeaderLength' },
  { name: 'data cut short', bytes: () => valid().subarray(0, valid().length - 1), kind: 'MetadataIncompleteBuffer' },
  { name: 'no data at all', bytes: () => file(VALID_HEADER), kind: 'MetadataIncompleteBuffer' },
  { name: 'header length 100,000,001', bytes: () => file(VALID_HEADER, f32Bytes(1, 2), 100_000_001n), kind: 'HeaderTooLarge' },
  { name: 'header length 2^40', bytes: () => file(VALID_HEADER, f32Bytes(1, 2), 2n ** 40n), kind: 'HeaderTooLarge' },
  { name: 'header length u64::MAX', bytes: () => file(VALID_HEADER, f32Bytes(1, 2), 2n ** 64n - 1n), kind: 'HeaderTooLarge' },
  { name: 'header length at the cap but past the end of the file', bytes: () => file(VALID_HEADER, [], 100_000_000n), kind: 'InvalidHeaderLength' },
  { name: 'non-UTF-8 header (0xff)', bytes: () => file(new Uint8Array([0x7b, 0xff, 0x7d])), kind: 'InvalidHeader' },
  { name: 'overlong UTF-8 (C0 80)', bytes: () => file(new Uint8Array([0x7b, 0x22, 0xc0, 0x80, 0x22, 0x7d])), kind: 'InvalidHeader' },
  { name: 'UTF-8-encoded surrogate (ED A0 80)', bytes: () => file(new Uint8Array([0x7b, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x7d])), kind: 'InvalidHeader' },
  { name: 'UTF-8 cut mid-character', bytes: () => file(new Uint8Array([0x7b, 0x22, 0xc3])), kind: 'InvalidHeader' },
  { name: 'empty header', bytes: () => file(''), kind: 'InvalidHeaderStart' },
  { name: 'BOM before {', bytes: () => file('\ufeff{}'), kind: 'InvalidHeaderStart' },
  { name: 'leading space before {', bytes: () => file(' {}'), kind: 'InvalidHeaderStart' },
  { name: 'not JSON (text)', bytes: () => file('hello'), kind: 'InvalidHeaderStart' },
  { name: 'JSON array', bytes: () => file('[{"w":1}]'), kind: 'InvalidHeaderStart' },
  { name: 'not JSON ({ then garbage)', bytes: () => file('{w}'), kind: 'InvalidHeaderDeserialization' },
  { name: 'JSON cut off', bytes: () => file('{"w":{"dtype":"F32"'), kind: 'InvalidHeaderDeserialization', tensor: 'w' },
  { name: 'trailing comma', bytes: () => file(`{"w":${F32_2},}`, f32Bytes(1, 2)), kind: 'InvalidHeaderDeserialization' },
  { name: 'trailing NUL padding in the header', bytes: () => file(VALID_HEADER + '\0\0', f32Bytes(1, 2)), kind: 'InvalidHeaderDeserialization', text: 'trailing characters' },
  { name: 'trailing garbage after the object', bytes: () => file(VALID_HEADER + ' x', f32Bytes(1, 2)), kind: 'InvalidHeaderDeserialization' },
  { name: 'two objects', bytes: () => file(VALID_HEADER + '{}', f32Bytes(1, 2)), kind: 'InvalidHeaderDeserialization' },
  { name: 'deeply nested arrays (no stack overflow)', bytes: () => file('{"w":{"shape":' + '['.repeat(200_000)), kind: 'InvalidHeaderDeserialization', tensor: 'w' },
  { name: 'float dim 2.0', bytes: () => one('{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}', f32Bytes(1, 2)), kind: 'InvalidHeaderDeserialization', tensor: 'w', text: 'fraction or exponent' },
  { name: 'float dim 2e0', bytes: () => one('{"dtype":"F32","shape":[2e0],"data_offsets":[0,8]}', f32Bytes(1, 2)), kind: 'InvalidHeaderDeserialization', tensor: 'w', text: 'fraction or exponent' },
  { name: 'float offset 8.0', bytes: () => one('{"dtype":"F32","shape":[2],"data_offsets":[0,8.0]}', f32Bytes(1, 2)), kind: 'InvalidHeaderDeserialization', tensor: 'w', text: 'fraction or exponent' },
  { name: 'negative dim', bytes: () => one('{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}', f32Bytes(1, 2)), kind: 'InvalidHeaderDeserialization', tensor: 'w', text: 'negative' },
  { name: 'dim -0', bytes: () => one('{"dtype":"F32","shape":[-0],"data_offsets":[0,0]}'), kind: 'InvalidHeaderDeserialization', tensor: 'w' },
  { name: 'negative offset', bytes: () => one('{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}', f32Bytes(1, 2)), kind: 'InvalidHeaderDeserialization', tensor: 'w', text: 'negative' },
  { name: 'dim above u64 (2^64)', bytes: () => one('{"dtype":"F32","shape":[18446744073709551616],"data_offsets":[0,8]}'), kind: 'InvalidHeaderDeserialization', tensor: 'w', text: 'larger than 2^64 - 1' },
  { name: 'dim with leading zero', bytes: () => one('{"dtype":"F32","shape":[02],"data_offsets":[0,8]}', f32Bytes(1, 2)), kind: 'InvalidHeaderDeserialization', tensor: 'w' },
  { name: 'dim as a string', bytes: () => one('{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}', f32Bytes(1, 2)), kind: 'InvalidHeaderDeserialization', tensor: 'w' },
  { name: 'shape not an array', bytes: () => one('{"dtype":"F32","shape":2,"data_offsets":[0,8]}', f32Bytes(1, 2)), kind: 'InvalidHeaderDeserialization', tensor: 'w' },
  { name: 'data_offsets with 3 entries', bytes: () => one('{"dtype":"F32","shape":[2],"data_offsets":[0,8,8]}', f32Bytes(1, 2)), kind: 'InvalidHeaderDeserialization', tensor: 'w' },
  { name: 'data_offsets with 1 entry', bytes: () => one('{"dtype":"F32","shape":[0],"data_offsets":[0]}'), kind: 'InvalidHeaderDeserialization', tensor: 'w' },
  { name: 'entry not an object', bytes: () => file('{"w":[1,2]}'), kind: 'InvalidHeaderDeserialization', tensor: 'w' },
  { name: 'missing data_offsets', bytes: () => one('{"dtype":"F32","shape":[2]}', f32Bytes(1, 2)), kind: 'InvalidHeaderDeserialization', tensor: 'w', text: 'missing the field "data_offsets"' },
  { name: 'missing dtype', bytes: () => one('{"shape":[2],"data_offsets":[0,8]}', f32Bytes(1, 2)), kind: 'InvalidHeaderDeserialization', tensor: 'w' },
  { name: 'unknown field in an entry', bytes: () => one('{"dtype":"F32","shape":[2],"data_offsets":[0,8],"strides":[1]}', f32Bytes(1, 2)), kind: 'InvalidHeaderDeserialization', tensor: 'w', text: 'unknown field "strides"' },
  { name: 'dtype not a string', bytes: () => one('{"dtype":32,"shape":[2],"data_offsets":[0,8]}', f32Bytes(1, 2)), kind: 'InvalidHeaderDeserialization', tensor: 'w' },
  { name: 'lowercase dtype f32', bytes: () => one('{"dtype":"f32","shape":[2],"data_offsets":[0,8]}', f32Bytes(1, 2)), kind: 'UnsupportedDtype', tensor: 'w', text: '"f32"' },
  { name: 'unknown dtype F128', bytes: () => one('{"dtype":"F128","shape":[2],"data_offsets":[0,8]}', f32Bytes(1, 2)), kind: 'UnsupportedDtype', tensor: 'w' },
  { name: 'dtype "constructor" (no prototype lookups)', bytes: () => one('{"dtype":"constructor","shape":[2],"data_offsets":[0,8]}', f32Bytes(1, 2)), kind: 'UnsupportedDtype', tensor: 'w' },
  { name: 'F8_E4M3 (valid file, not decodable)', bytes: () => one('{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}', [1, 2]), kind: 'UnsupportedDtype', tensor: 'w', headerOk: true },
  { name: 'F4 with an odd element count', bytes: () => one('{"dtype":"F4","shape":[3],"data_offsets":[0,2]}', [1, 2]), kind: 'MisalignedSlice', tensor: 'w' },
  { name: 'overlapping tensors', bytes: () => two(F32_2, '{"dtype":"F32","shape":[2],"data_offsets":[4,12]}', f32Bytes(1, 2, 3)), kind: 'InvalidOffset', tensor: 'b' },
  { name: 'gap between tensors', bytes: () => two(F32_2, '{"dtype":"F32","shape":[1],"data_offsets":[12,16]}', f32Bytes(1, 2, 3, 4)), kind: 'InvalidOffset', tensor: 'b' },
  { name: 'first tensor not at 0', bytes: () => one('{"dtype":"F32","shape":[2],"data_offsets":[4,12]}', f32Bytes(0, 1, 2)), kind: 'InvalidOffset', tensor: 'w' },
  { name: 'end before begin', bytes: () => two('{"dtype":"U8","shape":[4],"data_offsets":[0,4]}', '{"dtype":"U8","shape":[0],"data_offsets":[4,0]}', [1, 2, 3, 4]), kind: 'InvalidOffset', tensor: 'b' },
  { name: 'span ≠ numel × dtype size', bytes: () => one('{"dtype":"F32","shape":[3],"data_offsets":[0,8]}', f32Bytes(1, 2)), kind: 'TensorInvalidInfo', tensor: 'w' },
  { name: 'span ≠ numel × dtype size (F64 read as 1 element of 4 bytes)', bytes: () => one('{"dtype":"F64","shape":[1],"data_offsets":[0,4]}', f32Bytes(1)), kind: 'TensorInvalidInfo', tensor: 'w' },
  { name: 'numel overflow: shape [2^40, 2^40]', bytes: () => one('{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,4]}', f32Bytes(1)), kind: 'ValidationOverflow', tensor: 'w' },
  { name: 'byte-size overflow: shape [2^31, 2^31] F32', bytes: () => one('{"dtype":"F32","shape":[2147483648,2147483648],"data_offsets":[0,4]}', f32Bytes(1)), kind: 'ValidationOverflow', tensor: 'w' },
  { name: 'dim 2^60 beside a 0 dim (not exact as a number)', bytes: () => one('{"dtype":"F32","shape":[0,1152921504606846976],"data_offsets":[0,0]}'), kind: 'ValidationOverflow', tensor: 'w' },
  { name: 'offsets past the end of the file', bytes: () => one('{"dtype":"U8","shape":[1099511627776],"data_offsets":[0,1099511627776]}', [1]), kind: 'MetadataIncompleteBuffer' },
  { name: 'trailing bytes after the last tensor (polyglot)', bytes: () => file(VALID_HEADER, [...f32Bytes(1, 2), 0x50, 0x4b]), kind: 'MetadataIncompleteBuffer' },
  { name: 'duplicate tensor name', bytes: () => file(`{"w":${F32_2},"w":${F32_2}}`, f32Bytes(1, 2)), kind: 'DuplicateKey', tensor: 'w' },
  { name: 'duplicate tensor name via an escape', bytes: () => file(`{"w":${F32_2},"\\u0077":${F32_2}}`, f32Bytes(1, 2)), kind: 'DuplicateKey', tensor: 'w' },
  { name: 'duplicate field in an entry', bytes: () => one('{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}', f32Bytes(1, 2)), kind: 'DuplicateKey', tensor: 'w' },
  { name: '__metadata__ twice', bytes: () => file('{"__metadata__":{},"__metadata__":{}}'), kind: 'DuplicateKey' },
  { name: 'duplicate metadata key', bytes: () => file('{"__metadata__":{"a":"1","a":"2"}}'), kind: 'DuplicateKey' },
  { name: 'metadata with a number value', bytes: () => file('{"__metadata__":{"a":1}}'), kind: 'InvalidHeaderDeserialization', text: 'must be a string' },
  { name: 'metadata with a nested object', bytes: () => file('{"__metadata__":{"a":{"b":"c"}}}'), kind: 'InvalidHeaderDeserialization' },
  { name: 'metadata not an object', bytes: () => file('{"__metadata__":"x"}'), kind: 'InvalidHeaderDeserialization' },
  { name: 'lone surrogate escape in a name', bytes: () => file('{"\\ud800":{}}'), kind: 'InvalidHeaderDeserialization', text: 'lone high surrogate' },
  { name: 'raw control character in a string', bytes: () => file('{"a\tb":{}}'), kind: 'InvalidHeaderDeserialization' },
  { name: 'invalid escape \\x', bytes: () => file('{"\\x41":{}}'), kind: 'InvalidHeaderDeserialization' },
  { name: 'unterminated string', bytes: () => file('{"abc'), kind: 'InvalidHeaderDeserialization' },
];

describe('safetensors read: malformed files', () => {
  it('the valid base file loads', () => {
    expect(Array.from(loadSafetensors(valid())['w']!.data)).toEqual([1, 2]);
  });
  for (const bad of BAD) {
    it(`${bad.name} → ${bad.kind}`, () => {
      const bytes = bad.bytes();
      const e = errorOf(() => loadSafetensors(bytes));
      expect(e).toBeInstanceOf(ResnetTsError);
      expect(e.op).toBe('safetensors');
      expect(e.kind, e.message).toBe(bad.kind);
      expect(e.message.startsWith(`[safetensors] ${bad.kind}: `)).toBe(true);
      expect(e.tensor).toBe(bad.tensor);
      if (bad.tensor !== undefined) expect(e.message).toContain(JSON.stringify(bad.tensor));
      if (bad.text !== undefined) expect(e.message).toContain(bad.text);
      // metadata-only reading validates the same things, except decodability
      if (bad.headerOk) expect(readSafetensorsMetadata(bytes)).toBeTypeOf('object');
      else expect(errorOf(() => readSafetensorsMetadata(bytes)).kind).toBe(bad.kind);
    });
  }
});

describe('safetensors write', () => {
  /** Tensors of the writer fixture's input, in a null-prototype record (one is named __proto__). */
  function writerInput(): Record<string, Tensor> {
    const r: Record<string, Tensor> = Object.create(null);
    for (const t of EXPECTED.writer.tensors) {
      const data = new Float32Array(t.bits.length);
      new Uint32Array(data.buffer).set(t.bits);
      r[t.name] = new Tensor(data, t.shape);
    }
    return r;
  }

  it('writes the same bytes as the fixture script for the same input (ordering, escaping, padding, NaN payloads)', () => {
    const ours = saveSafetensors(writerInput(), EXPECTED.writer.metadata);
    const theirs = fixture('writer.safetensors');
    const first = ours.findIndex((b, i) => b !== theirs[i]);
    if (first >= 0 || ours.length !== theirs.length) {
      const ctx = (b: Uint8Array): string => new TextDecoder().decode(b.subarray(Math.max(0, first - 40), first + 40));
      expect.fail(`lengths ${ours.length} vs ${theirs.length}; first difference at byte ${first}: ...${ctx(ours)}... vs ...${ctx(theirs)}...`);
    }
  });

  it('round trip: what it writes loads back with the same shapes, bits and metadata', () => {
    const input = writerInput();
    const bytes = saveSafetensors(input, EXPECTED.writer.metadata);
    const back = loadSafetensors(bytes);
    expect(Object.keys(back).sort()).toEqual(Object.keys(input).sort());
    for (const name of Object.keys(input)) {
      expect(back[name]!.shape).toEqual(input[name]!.shape);
      expect(bitsOf(back[name]!.data)).toEqual(bitsOf(input[name]!.data));
    }
    expect({ ...readSafetensorsMetadata(bytes) }).toEqual(EXPECTED.writer.metadata);
  });

  // byte vectors from the reference's own tests (safetensors/src/tensor.rs: test_serialization, test_empty,
  // test_serialization_forced_alignement)
  it('reference vector: attn.0 F32 [1, 2, 3] = 0..5', () => {
    const want = [
      64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48, 34, 58, 123, 34, 100, 116, 121, 112, 101, 34, 58, 34,
      70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34, 58, 91, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95,
      111, 102, 102, 115, 101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64,
      0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64,
    ];
    const out = saveSafetensors({ 'attn.0': new Tensor(new Float32Array([0, 1, 2, 3, 4, 5]), [1, 2, 3]) });
    expect(Array.from(out)).toEqual(want);
  });

  it('reference vector: attn0 F32 [1, 1, 2, 3] (header padded with 7 spaces)', () => {
    const want = [
      72, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 48, 34, 58, 123, 34, 100, 116, 121, 112, 101, 34, 58, 34, 70,
      51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34, 58, 91, 49, 44, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97,
      95, 111, 102, 102, 115, 101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 32, 32, 32, 32, 32, 32, 32, 0, 0,
      0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64,
    ];
    const out = saveSafetensors({ attn0: new Tensor(new Float32Array([0, 1, 2, 3, 4, 5]), [1, 1, 2, 3]) });
    expect(Array.from(out)).toEqual(want);
  });

  it('reference vectors: no tensors, without and with metadata {framework: pt}', () => {
    expect(Array.from(saveSafetensors({}))).toEqual([8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]);
    expect(Array.from(saveSafetensors({}, { framework: 'pt' }))).toEqual([
      40, 0, 0, 0, 0, 0, 0, 0, 123, 34, 95, 95, 109, 101, 116, 97, 100, 97, 116, 97, 95, 95, 34, 58, 123, 34, 102, 114,
      97, 109, 101, 119, 111, 114, 107, 34, 58, 34, 112, 116, 34, 125, 125, 32, 32, 32, 32, 32,
    ]);
  });

  it('writes a tensor that is a view into a larger buffer (non-zero byteOffset) with its own bytes only', () => {
    const big = new Float32Array([9, 9, 1, 2, 3, 9]);
    const out = loadSafetensors(saveSafetensors({ v: new Tensor(big.subarray(2, 5), [3]) }));
    expect(Array.from(out['v']!.data)).toEqual([1, 2, 3]);
  });

  const writeError = (fn: () => unknown, kind: SafetensorsErrorKind, text: string): void => {
    const e = errorOf(fn);
    expect(e.kind).toBe(kind);
    expect(e.message).toContain(text);
  };
  const t1 = (): Tensor => new Tensor(new Float32Array([1]), [1]);

  it('refuses a tensor named __metadata__, names and metadata with lone surrogates, non-string metadata, non-tensors', () => {
    writeError(() => saveSafetensors({ __metadata__: t1() }), 'InvalidInput', '__metadata__');
    writeError(() => saveSafetensors({ ['a\ud800']: t1() }), 'InvalidInput', 'lone surrogate');
    writeError(() => saveSafetensors({ a: t1() }, { ['\udc00']: 'x' }), 'InvalidInput', 'lone surrogate');
    writeError(() => saveSafetensors({ a: t1() }, { k: 1 as unknown as string }), 'InvalidInput', 'must be a string');
    writeError(() => saveSafetensors({ a: { data: new Float32Array(1), shape: [1] } as unknown as Tensor }), 'InvalidInput', 'not a Tensor');
    writeError(() => saveSafetensors(null as unknown as Record<string, Tensor>), 'InvalidInput', 'tensors must be');
  });

  it(`refuses a header above ${MAX_HEADER_SIZE} bytes (HeaderTooLarge), and one just below is written`, () => {
    // '{"<name>":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}' is name.length + 53 bytes
    const fits = 'x'.repeat(MAX_HEADER_SIZE - 53);
    const out = saveSafetensors({ [fits]: t1() });
    expect(new DataView(out.buffer).getBigUint64(0, true)).toBe(BigInt(MAX_HEADER_SIZE));
    expect(out.length).toBe(8 + MAX_HEADER_SIZE + 4);
    const big = 'x'.repeat(MAX_HEADER_SIZE - 53 + 1);
    writeError(() => saveSafetensors({ [big]: t1() }), 'HeaderTooLarge', 'above the limit');
  });
});
