/**
 * The protobuf wire codec: encodings from the protocol-buffers documentation ("Encoding"), round trips over the
 * value ranges ONNX uses, and the reader's errors.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ProtobufError, ProtoReader, ProtoWriter, WIRE_I32, WIRE_LEN, WIRE_VARINT } from '../../src/io/protobuf.js';

const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');
const bytes = (h: string): Uint8Array => new Uint8Array(h.split(' ').map((x) => parseInt(x, 16)));

const kindOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (e) {
    if (e instanceof ProtobufError) return e.kind;
    throw e;
  }
  return 'no error';
};

describe('ProtoWriter: the documentation’s encodings', () => {
  it('int32 a = 150 in field 1 → 08 96 01', () => {
    const w = new ProtoWriter();
    w.varint(1, 150);
    expect(hex(w.finish())).toBe('08 96 01');
  });
  it('string b = "testing" in field 2 → 12 07 74 65 73 74 69 6e 67', () => {
    const w = new ProtoWriter();
    w.string(2, 'testing');
    expect(hex(w.finish())).toBe('12 07 74 65 73 74 69 6e 67');
  });
  it('message c = {a: 150} in field 3 → 1a 03 08 96 01', () => {
    const w = new ProtoWriter();
    w.message(3, (m) => m.varint(1, 150));
    expect(hex(w.finish())).toBe('1a 03 08 96 01');
  });
  it('packed repeated int32 d = [3, 270, 86942] in field 4 → 22 06 03 8e 02 9e a7 05', () => {
    const w = new ProtoWriter();
    w.packedVarints(4, [3, 270, 86942]);
    expect(hex(w.finish())).toBe('22 06 03 8e 02 9e a7 05');
  });
  it('int64 −1 → ten bytes ff … ff 01; −2 → fe ff … ff 01', () => {
    const w = new ProtoWriter();
    w.varint(1, -1);
    w.varint(1, -2);
    expect(hex(w.finish())).toBe('08 ff ff ff ff ff ff ff ff ff 01 08 fe ff ff ff ff ff ff ff ff 01');
  });
  it('float 1.5 in field 2 → 15 00 00 c0 3f', () => {
    const w = new ProtoWriter();
    w.float(2, 1.5);
    expect(hex(w.finish())).toBe('15 00 00 c0 3f');
  });
  it('large bytes fields are appended without losing order between small writes', () => {
    const big = new Uint8Array(1000).map((_, i) => i & 0xff);
    const w = new ProtoWriter();
    w.varint(1, 7);
    w.bytes(2, big);
    w.varint(3, 9);
    const r = new ProtoReader(w.finish());
    expect(r.tag()).toEqual([1, WIRE_VARINT]);
    expect(r.uint64()).toBe(7);
    expect(r.tag()).toEqual([2, WIRE_LEN]);
    expect(Array.from(r.bytes())).toEqual(Array.from(big));
    expect(r.tag()).toEqual([3, WIRE_VARINT]);
    expect(r.uint64()).toBe(9);
    expect(r.done()).toBe(true);
  });
});

describe('round trips', () => {
  it('int64 values in ±2^53 and field numbers up to 2^29 − 1', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 29 - 1 }), fc.oneof(fc.integer(), fc.maxSafeInteger(), fc.constantFrom(0, -1, 2 ** 32, -(2 ** 32), 2 ** 53 - 1, -(2 ** 53 - 1))), (field, v) => {
        const w = new ProtoWriter();
        w.varint(field, v);
        const r = new ProtoReader(w.finish());
        expect(r.tag()).toEqual([field, WIRE_VARINT]);
        expect(r.int64()).toBe(v);
        expect(r.done()).toBe(true);
      }),
      { seed: 42, numRuns: 2000 },
    );
  });
  it('floats, strings (UTF-8), nested messages and packed varints', () => {
    fc.assert(
      fc.property(fc.float({ noNaN: true }), fc.string(), fc.array(fc.nat(), { maxLength: 20 }), (x, s, vs) => {
        const w = new ProtoWriter();
        w.message(5, (m) => {
          m.float(1, x);
          m.string(2, s);
          m.packedVarints(3, vs);
        });
        const r = new ProtoReader(w.finish());
        expect(r.tag()).toEqual([5, WIRE_LEN]);
        const m = r.message();
        expect(m.tag()).toEqual([1, WIRE_I32]);
        expect(m.float()).toBe(Math.fround(x));
        m.tag();
        expect(m.string()).toBe(s);
        const got: number[] = [];
        while (!m.done()) {
          const [, wire] = m.tag();
          m.varints(wire, got, false, 1000, () => {
            throw new Error('limit');
          });
        }
        expect(got).toEqual(vs);
      }),
      { seed: 43, numRuns: 1000 },
    );
  });
});

describe('ProtoReader errors', () => {
  it('Truncated: inside a varint, a fixed32, a length-delimited field', () => {
    const r = new ProtoReader(bytes('08 96'));
    r.tag();
    expect(kindOf(() => r.uint64())).toBe('Truncated');
    const f = new ProtoReader(bytes('15 00 00'));
    f.tag();
    expect(kindOf(() => f.float())).toBe('Truncated');
    const l = new ProtoReader(bytes('12 07 74 65'));
    l.tag();
    expect(kindOf(() => l.bytes())).toBe('Truncated');
  });
  it('InvalidVarint: 11 bytes, or bits past the 64th', () => {
    expect(kindOf(() => new ProtoReader(bytes('ff ff ff ff ff ff ff ff ff ff 01')).uint64())).toBe('InvalidVarint');
    expect(kindOf(() => new ProtoReader(bytes('ff ff ff ff ff ff ff ff ff 02')).uint64())).toBe('InvalidVarint');
    expect(new ProtoReader(bytes('ff ff ff ff ff ff ff ff ff 01')).int64()).toBe(-1);
  });
  it('InvalidWireType: groups, types 6 and 7, field 0, a wire type the caller does not expect', () => {
    for (const t of ['0b', '0c', '0e', '0f', '00']) expect(kindOf(() => new ProtoReader(bytes(t)).tag()), t).toBe('InvalidWireType');
    expect(kindOf(() => new ProtoReader(bytes('08 01')).expectWire(WIRE_VARINT, WIRE_LEN, 'a name'))).toBe('InvalidWireType');
  });
  it('InvalidUtf8: a lone continuation byte in a string', () => {
    const r = new ProtoReader(bytes('12 01 80'));
    r.tag();
    expect(kindOf(() => r.string())).toBe('InvalidUtf8');
  });
  it('a packed run over its limit calls onLimit before pushing', () => {
    const r = new ProtoReader(bytes('22 03 01 02 03'));
    const [, wire] = r.tag();
    const got: number[] = [];
    expect(() => r.varints(wire, got, false, 2, (n) => {
      throw new Error(`over at ${n}`);
    })).toThrow('over at 3');
    expect(got).toEqual([1, 2]);
  });
});
