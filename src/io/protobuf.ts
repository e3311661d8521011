/**
 * A small protocol-buffers wire-format encoder and decoder (proto2/proto3 share it), enough for ONNX: varints
 * (int32/int64/uint64/enums/bools), 32-bit floats, length-delimited bytes, strings, sub-messages and packed repeated
 * fields. Groups (wire types 3/4) are deprecated and not read. Pure: no node imports.
 *
 * The decoder never trusts a length: every length-delimited field is checked against the bytes that remain before
 * anything is sliced, so a forged length cannot make it allocate. Failures are ProtobufError with a kind.
 */

import { ResnetTsError } from '../errors.js';

export type ProtobufErrorKind =
  /** The buffer ends inside a tag, a varint, a fixed-size value or a length-delimited field. */
  | 'Truncated'
  /** A varint longer than 10 bytes, or a 10-byte varint whose last byte has more than the 64th bit. */
  | 'InvalidVarint'
  /** Wire type 3, 4, 6 or 7 (groups are deprecated, 6/7 do not exist), or field number 0. */
  | 'InvalidWireType'
  /** A string field that is not valid UTF-8. */
  | 'InvalidUtf8';

/** Malformed protocol-buffers bytes. Message: `[protobuf] Kind: detail (at byte N)`. */
export class ProtobufError extends ResnetTsError {
  readonly kind: ProtobufErrorKind;
  readonly detail: string;
  constructor(kind: ProtobufErrorKind, detail: string) {
    super('protobuf', `${kind}: ${detail}`);
    this.kind = kind;
    this.detail = detail;
  }
}

export const WIRE_VARINT = 0;
export const WIRE_I64 = 1;
export const WIRE_LEN = 2;
export const WIRE_I32 = 5;

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const ENCODER = new TextEncoder();
const TWO32 = 2 ** 32;

/** Reads one message's fields in order: `while (!r.done()) { const [field, wire] = r.tag(); ... }`. */
export class ProtoReader {
  pos: number;
  constructor(readonly buf: Uint8Array, start = 0, readonly end = buf.length) {
    this.pos = start;
  }

  done(): boolean {
    return this.pos >= this.end;
  }

  private fail(kind: ProtobufErrorKind, msg: string, at = this.pos): never {
    throw new ProtobufError(kind, `${msg} (at byte ${at})`);
  }

  /** The next field's number and wire type. */
  tag(): [number, number] {
    const at = this.pos;
    const t = this.uint64();
    const wire = t % 8;
    const field = Math.floor(t / 8);
    if (field === 0 || field > 0x1fffffff) this.fail('InvalidWireType', `field number ${field} is out of range 1..2^29-1`, at);
    if (wire !== WIRE_VARINT && wire !== WIRE_I64 && wire !== WIRE_LEN && wire !== WIRE_I32) {
      this.fail('InvalidWireType', `field ${field} has wire type ${wire} (groups and types 6/7 are not supported)`, at);
    }
    return [field, wire];
  }

  /** A varint as two 32-bit halves [lo, hi] (unsigned). */
  private varint64(): [number, number] {
    const b = this.buf;
    const at = this.pos;
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) this.fail('Truncated', 'the buffer ends inside a varint', at);
      const byte = b[this.pos++]!;
      const bits = byte & 0x7f;
      if (i < 4) lo |= bits << (7 * i);
      else if (i === 4) {
        lo |= (bits & 0x0f) << 28;
        hi |= bits >> 4;
      } else if (i < 9) hi |= bits << (7 * i - 32);
      else {
        if (bits > 1) this.fail('InvalidVarint', 'a 10-byte varint has bits beyond the 64th', at);
        hi |= bits << 31;
      }
      if (byte < 0x80) return [lo >>> 0, hi >>> 0];
    }
    this.fail('InvalidVarint', 'a varint is longer than 10 bytes', at);
  }

  /** A varint read as an unsigned 64-bit integer; exact up to 2^53, rounded above. */
  uint64(): number {
    const [lo, hi] = this.varint64();
    return hi * TWO32 + lo;
  }

  /** A varint read as a two's-complement int64 (int32 and enum fields too); exact within ±2^53, rounded beyond. */
  int64(): number {
    const [lo, hi] = this.varint64();
    return (hi | 0) * TWO32 + lo;
  }

  /** A little-endian float (wire type 5). */
  float(): number {
    const at = this.pos;
    if (this.end - this.pos < 4) this.fail('Truncated', 'the buffer ends inside a 32-bit value', at);
    const v = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 4).getFloat32(0, true);
    this.pos += 4;
    return v;
  }

  /** A little-endian double (wire type 1). */
  double(): number {
    const at = this.pos;
    if (this.end - this.pos < 8) this.fail('Truncated', 'the buffer ends inside a 64-bit value', at);
    const v = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 8).getFloat64(0, true);
    this.pos += 8;
    return v;
  }

  /** A length-delimited field's [start, end) in buf, checked against what remains (nothing is copied). */
  span(): [number, number] {
    const at = this.pos;
    const n = this.uint64();
    if (n > this.end - this.pos) this.fail('Truncated', `a length-delimited field of ${n} bytes runs past the end (${this.end - this.pos} left)`, at);
    const s = this.pos;
    this.pos += n;
    return [s, this.pos];
  }

  /** A length-delimited field as a view into buf (no copy). */
  bytes(): Uint8Array {
    const [s, e] = this.span();
    return this.buf.subarray(s, e);
  }

  /** A length-delimited field as a reader of the sub-message. */
  message(): ProtoReader {
    const [s, e] = this.span();
    return new ProtoReader(this.buf, s, e);
  }

  string(): string {
    const at = this.pos;
    const b = this.bytes();
    try {
      return UTF8.decode(b);
    } catch {
      this.fail('InvalidUtf8', 'a string field is not valid UTF-8', at);
    }
  }

  /** Skips a field of the given wire type (unknown fields are ignored, as protobuf parsers do). */
  skip(wire: number): void {
    if (wire === WIRE_VARINT) this.varint64();
    else if (wire === WIRE_LEN) this.span();
    else {
      const n = wire === WIRE_I64 ? 8 : 4;
      if (this.end - this.pos < n) this.fail('Truncated', `the buffer ends inside a ${8 * n}-bit value`);
      this.pos += n;
    }
  }

  /**
   * A repeated varint field's value(s): one element (unpacked, wire type 0) or a packed run (wire type 2), pushed
   * onto `out`. At most `limit` elements in all; over that, `onLimit` is called before anything is pushed.
   */
  varints(wire: number, out: number[], signed: boolean, limit: number, onLimit: (n: number) => never): void {
    if (wire === WIRE_VARINT) {
      if (out.length + 1 > limit) onLimit(out.length + 1);
      out.push(signed ? this.int64() : this.uint64());
      return;
    }
    this.expectWire(wire, WIRE_LEN, 'a packed repeated varint');
    const [s, e] = this.span();
    // every varint takes at least one byte: the count is at most the span's length
    const sub = new ProtoReader(this.buf, s, e);
    if (out.length + 1 > limit && e > s) onLimit(out.length + 1);
    while (!sub.done()) {
      if (out.length + 1 > limit) onLimit(out.length + 1);
      out.push(signed ? sub.int64() : sub.uint64());
    }
  }

  /** Throws InvalidWireType unless `wire` is `want`. */
  expectWire(wire: number, want: number, what: string): void {
    if (wire !== want) this.fail('InvalidWireType', `${what} has wire type ${wire}, expected ${want}`);
  }
}

/**
 * Builds a message as a list of byte chunks, so that large fields (tensor data) are copied once, into the final
 * buffer: a sub-message is written into its own writer and then appended whole, length first.
 */
export class ProtoWriter {
  private readonly parts: Uint8Array[] = [];
  private scratch = new Uint8Array(256);
  private used = 0;
  /** Bytes written so far (parts plus scratch). */
  length = 0;

  private room(n: number): void {
    if (this.used + n <= this.scratch.length) return;
    this.flush();
    if (n > this.scratch.length) this.scratch = new Uint8Array(Math.max(n, 2 * this.scratch.length));
  }

  private flush(): void {
    if (this.used === 0) return;
    this.parts.push(this.scratch.slice(0, this.used));
    this.used = 0;
  }

  /** A raw varint of a non-negative integer ≤ 2^53 or a negative one (two's complement, 10 bytes). */
  rawVarint(v: number): void {
    this.room(10);
    const b = this.scratch;
    let p = this.used;
    if (v >= 0 && v < TWO32) {
      while (v >= 0x80) {
        b[p++] = (v & 0x7f) | 0x80;
        v >>>= 7;
      }
      b[p++] = v;
    } else {
      let x = BigInt.asUintN(64, BigInt(v));
      while (x >= 0x80n) {
        b[p++] = Number(x & 0x7fn) | 0x80;
        x >>= 7n;
      }
      b[p++] = Number(x);
    }
    this.length += p - this.used;
    this.used = p;
  }

  private tag(field: number, wire: number): void {
    this.rawVarint(field * 8 + wire);
  }

  /** An int32/int64/uint64/enum/bool field. */
  varint(field: number, v: number): void {
    if (!Number.isInteger(v)) throw new RangeError(`protobuf varint field ${field}: ${v} is not an integer`);
    this.tag(field, WIRE_VARINT);
    this.rawVarint(v);
  }

  float(field: number, v: number): void {
    this.tag(field, WIRE_I32);
    this.room(4);
    new DataView(this.scratch.buffer, this.used, 4).setFloat32(0, v, true);
    this.used += 4;
    this.length += 4;
  }

  /** A bytes field: the length, then the bytes appended as they are (no copy until finish). */
  bytes(field: number, b: Uint8Array): void {
    this.tag(field, WIRE_LEN);
    this.rawVarint(b.length);
    this.append(b);
  }

  string(field: number, s: string): void {
    this.bytes(field, ENCODER.encode(s));
  }

  /** A sub-message written by `fill` into a writer of its own. */
  message(field: number, fill: (w: ProtoWriter) => void): void {
    const w = new ProtoWriter();
    fill(w);
    w.flush();
    this.tag(field, WIRE_LEN);
    this.rawVarint(w.length);
    this.flush();
    for (const p of w.parts) this.parts.push(p);
    this.length += w.length;
  }

  /** A packed repeated varint field (nothing is written for an empty list, as protoc does). */
  packedVarints(field: number, vs: readonly number[]): void {
    if (vs.length === 0) return;
    const w = new ProtoWriter();
    for (const v of vs) w.rawVarint(v);
    w.flush();
    this.tag(field, WIRE_LEN);
    this.rawVarint(w.length);
    this.flush();
    for (const p of w.parts) this.parts.push(p);
    this.length += w.length;
  }

  /** A packed repeated float field. */
  packedFloats(field: number, vs: readonly number[]): void {
    if (vs.length === 0) return;
    const b = new Uint8Array(4 * vs.length);
    const dv = new DataView(b.buffer);
    vs.forEach((v, i) => dv.setFloat32(4 * i, v, true));
    this.bytes(field, b);
  }

  private append(b: Uint8Array): void {
    if (b.length <= 64) {
      this.room(b.length);
      this.scratch.set(b, this.used);
      this.used += b.length;
    } else {
      this.flush();
      this.parts.push(b);
    }
    this.length += b.length;
  }

  /** The message's bytes, in one new buffer. */
  finish(): Uint8Array {
    this.flush();
    const out = new Uint8Array(this.length);
    let p = 0;
    for (const part of this.parts) {
      out.set(part, p);
      p += part.length;
    }
    return out;
  }
}
