/**
 * The safetensors format (huggingface/safetensors): 8 bytes of little-endian u64 header length N, N bytes of UTF-8
 * JSON header, then the raw little-endian tensor bytes. The header maps tensor names to
 * `{"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}` (offsets relative to the end of the header) and
 * may hold `"__metadata__": {string: string}`.
 *
 * Pure: no node imports, runs in a browser. File helpers live in safetensors-file.ts.
 *
 * Reading follows the reference implementation's checks and error kinds (safetensors/src/tensor.rs,
 * `SafeTensors::read_metadata` and `Metadata::validate`), and is stricter where JSON.parse / serde would let
 * something ambiguous through; every departure is marked "stricter" below. Every tensor is decoded to float32.
 * Writing emits F32 only, byte-for-byte the way the reference `serialize` lays files out.
 */

import { AllocationError, ResnetTsError } from '../errors.js';
import { fmt, MAX_NUMEL } from '../shape.js';
import { Tensor } from '../tensor.js';

/**
 * What went wrong. The first group are the reference's `SafeTensorError` variants with the same meanings; the last
 * three are ours.
 */
export type SafetensorsErrorKind =
  /** The file is shorter than the 8-byte header length. */
  | 'HeaderTooSmall'
  /** The header length is above 100,000,000 bytes (the reference's cap), on reading or writing. */
  | 'HeaderTooLarge'
  /** 8 + header length runs past the end of the file. */
  | 'InvalidHeaderLength'
  /** The header bytes are not valid UTF-8. */
  | 'InvalidHeader'
  /** The header's first byte is not `{`. */
  | 'InvalidHeaderStart'
  /** The header is not valid JSON, or not the expected schema (wrong types, missing/unknown fields, floats, negatives). */
  | 'InvalidHeaderDeserialization'
  /** Sorted by offsets, a tensor does not start where the previous one ended (gap, overlap, not from 0), or end < begin. */
  | 'InvalidOffset'
  /** A tensor's byte span is not numel × dtype size. */
  | 'TensorInvalidInfo'
  /** numel or its byte size overflows u64 (or a dim is too large to represent exactly). */
  | 'ValidationOverflow'
  /** The tensors do not cover the data section exactly (truncated data, or trailing bytes after the last tensor). */
  | 'MetadataIncompleteBuffer'
  /** Writing: a tensor whose data length does not match its shape. */
  | 'InvalidTensorView'
  /** A sub-byte dtype (F4, F6_*) whose bit count is not a whole number of bytes. */
  | 'MisalignedSlice'
  /** Ours: the same key twice in one JSON object (the reference silently keeps one). */
  | 'DuplicateKey'
  /** Ours: a dtype we cannot decode to float32 (F8_*, F4, F6_*, C64) or one not in the format at all. */
  | 'UnsupportedDtype'
  /** Ours: a bad argument to the writer (reserved or unencodable name, non-string metadata, not a tensor). */
  | 'InvalidInput'
  /** Ours: the file cannot be opened, read or written (missing, a directory, no permission). */
  | 'Io';

/** A malformed safetensors file, or tensors that cannot be written as one. Message: `[safetensors] Kind: detail`. */
export class SafetensorsError extends ResnetTsError {
  readonly kind: SafetensorsErrorKind;
  /** The tensor the error is about, when there is one. */
  readonly tensor: string | undefined;
  /** The message without the `[safetensors] Kind: ` prefix. */
  readonly detail: string;
  constructor(kind: SafetensorsErrorKind, detail: string, tensor?: string) {
    super('safetensors', `${kind}: ${detail}`);
    this.kind = kind;
    this.tensor = tensor;
    this.detail = detail;
  }
}

/** One decoded tensor, in file order. */
export interface SafetensorsEntry {
  name: string;
  /** The dtype stored in the file (`F16`, `BF16`, ...); `data` is always float32. */
  dtype: string;
  shape: number[];
  data: Float32Array;
}

/** Largest header the reference reads or writes. */
export const MAX_HEADER_SIZE = 100_000_000;
const U64_MAX = (1n << 64n) - 1n;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * Every dtype of the reference's `Dtype` enum (in its declaration order, increasing alignment) with its size in
 * bits: all of them are validated like the reference does, only the ones in DECODABLE can be decoded here.
 */
const DTYPES: ReadonlyArray<readonly [string, number]> = [
  ['BOOL', 8], ['F4', 4], ['F6_E2M3', 6], ['F6_E3M2', 6], ['U8', 8], ['I8', 8], ['F8_E5M2', 8], ['F8_E4M3', 8],
  ['F8_E8M0', 8], ['I16', 16], ['U16', 16], ['F16', 16], ['BF16', 16], ['I32', 32], ['U32', 32], ['F32', 32],
  ['C64', 64], ['F64', 64], ['I64', 64], ['U64', 64],
];
// A Map, not an object: a dtype string like "constructor" or "__proto__" must not find anything.
const DTYPE_BITS = new Map<string, number>(DTYPES);
const DTYPE_NAMES = DTYPES.map(([name]) => name);
const FIELDS = ['dtype', 'shape', 'data_offsets'];
const DECODABLE = new Set(['F64', 'F32', 'F16', 'BF16', 'I64', 'I32', 'I16', 'I8', 'U64', 'U32', 'U16', 'U8', 'BOOL']);

// fatal: invalid UTF-8 is an error, not U+FFFD; ignoreBOM keeps a BOM in the text so that it fails the '{' check
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Quotes a name for a message (JSON quoting shows control characters and empty names). */
const q = (s: string): string => JSON.stringify(s);

// ---------------------------------------------------------------------------------------------------------------
// Header: a strict, schema-directed JSON reader
// ---------------------------------------------------------------------------------------------------------------

/**
 * A u64 from the header: a number where that is exact (≤ 2^53 - 1, nearly always), a bigint above. Numbers cost
 * no heap object per value (a million entries have three million of them); checks convert to bigint.
 */
type U64 = number | bigint;

interface HeaderEntry {
  name: string;
  dtype: string;
  shape: U64[];
  begin: U64;
  end: U64;
}

interface ParsedHeader {
  metadata: Map<string, string> | null;
  /** Sorted by (begin, end), the order the data sits in the file. */
  entries: HeaderEntry[];
  /** Byte offset of the data section in the file (8 + N). */
  dataStart: number;
}

/**
 * Reads exactly the header schema from the JSON text, rejecting what JSON.parse would accept and misread: floats
 * or exponents where integers belong (`2.0`, `2e0`), negative numbers, integers above u64, duplicate keys (JSON.parse
 * keeps the last), lone-surrogate escapes, unknown fields. Iterative (no recursion), so no input can overflow the
 * stack; it never allocates more than the text it reads.
 */
class HeaderReader {
  private pos = 0;
  constructor(private readonly s: string) {}

  private fail(msg: string, tensor?: string): never {
    if (tensor !== undefined && !msg.includes(q(tensor))) msg = `tensor ${q(tensor)}: ${msg}`;
    throw new SafetensorsError('InvalidHeaderDeserialization', `${msg} (at character ${this.pos} of the header)`, tensor);
  }

  private ws(): void {
    const s = this.s;
    while (this.pos < s.length) {
      const c = s.charCodeAt(this.pos);
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
      this.pos++;
    }
  }

  private peek(): string {
    return this.s[this.pos] ?? '';
  }

  /**
   * One of `names` written plainly as a JSON string at the current position (after whitespace), consumed and
   * returned as the constant itself; else undefined (and nothing consumed). A million entries then share a few
   * strings instead of allocating three field names and a dtype each; escaped spellings go through str().
   */
  private known(names: readonly string[]): string | undefined {
    this.ws();
    const s = this.s;
    if (s.charCodeAt(this.pos) !== 0x22) return undefined;
    for (const k of names) {
      if (s.charCodeAt(this.pos + k.length + 1) === 0x22 && s.startsWith(k, this.pos + 1)) {
        this.pos += k.length + 2;
        return k;
      }
    }
    return undefined;
  }

  private expect(ch: string, what: string, tensor?: string): void {
    this.ws();
    if (this.s[this.pos] !== ch) {
      const got = this.pos < this.s.length ? q(this.s[this.pos]!) : 'end of header';
      this.fail(`expected ${what}, got ${got}`, tensor);
    }
    this.pos++;
  }

  /** After an element: true if a `,` follows (another element), false at the closing bracket. */
  private more(close: string, tensor?: string): boolean {
    this.ws();
    const c = this.peek();
    if (c === ',') {
      this.pos++;
      return true;
    }
    if (c === close) {
      this.pos++;
      return false;
    }
    this.fail(`expected ',' or '${close}', got ${c === '' ? 'end of header' : q(c)}`, tensor);
  }

  /** Opens an object or array; true if it is empty (and consumed its closing bracket). */
  private open(openCh: string, closeCh: string, what: string, tensor?: string): boolean {
    this.expect(openCh, what, tensor);
    this.ws();
    if (this.peek() === closeCh) {
      this.pos++;
      return true;
    }
    return false;
  }

  /** A JSON string (at the current position, after whitespace), with escapes decoded. */
  private str(what: string, tensor?: string): string {
    this.ws();
    const s = this.s;
    if (s[this.pos] !== '"') this.fail(`expected ${what} (a string)`, tensor);
    let i = ++this.pos;
    let out = '';
    let from = i;
    for (;;) {
      if (i >= s.length) {
        this.pos = i;
        this.fail('unterminated string', tensor);
      }
      const c = s.charCodeAt(i);
      if (c === 0x22) break; // "
      if (c < 0x20) {
        this.pos = i;
        this.fail('control character in string (must be escaped)', tensor);
      }
      if (c !== 0x5c) {
        i++;
        continue;
      }
      // backslash escape
      out += s.slice(from, i);
      const e = s[i + 1];
      this.pos = i;
      switch (e) {
        case '"': out += '"'; i += 2; break;
        case '\\': out += '\\'; i += 2; break;
        case '/': out += '/'; i += 2; break;
        case 'b': out += '\b'; i += 2; break;
        case 'f': out += '\f'; i += 2; break;
        case 'n': out += '\n'; i += 2; break;
        case 'r': out += '\r'; i += 2; break;
        case 't': out += '\t'; i += 2; break;
        case 'u': {
          const u = this.hex4(i + 2, tensor);
          i += 6;
          if (u >= 0xdc00 && u <= 0xdfff) this.fail('lone low surrogate escape in string', tensor);
          if (u >= 0xd800 && u <= 0xdbff) {
            // a high surrogate must be followed by an escaped low surrogate (serde_json rejects lone ones too)
            const lo = s[i] === '\\' && s[i + 1] === 'u' ? this.hex4(i + 2, tensor) : -1;
            if (lo < 0xdc00 || lo > 0xdfff) this.fail('lone high surrogate escape in string', tensor);
            out += String.fromCharCode(u, lo);
            i += 6;
          } else {
            out += String.fromCharCode(u);
          }
          break;
        }
        default:
          this.fail(`invalid escape ${q('\\' + (e ?? ''))} in string`, tensor);
      }
      from = i;
    }
    out += s.slice(from, i);
    this.pos = i + 1;
    return out;
  }

  private hex4(at: number, tensor?: string): number {
    const h = this.s.slice(at, at + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(h)) {
      this.pos = at;
      this.fail('invalid \\u escape in string', tensor);
    }
    return parseInt(h, 16);
  }

  /**
   * A non-negative JSON integer, exactly (a number up to 2^53 - 1, else a bigint). Stricter than JSON.parse: `2.0`, `2e0`, `-0` and values
   * above 2^64 - 1 are errors, never silently rounded.
   */
  private uint(what: string, tensor?: string): U64 {
    this.ws();
    const s = this.s;
    const start = this.pos;
    const c = s.charCodeAt(start);
    if (c === 0x2d) this.fail(`${what} must be a non-negative integer, got a negative number`, tensor);
    if (!(c >= 0x30 && c <= 0x39)) this.fail(`${what} must be a non-negative integer`, tensor);
    let i = start + 1;
    if (c !== 0x30) {
      while (i < s.length && s.charCodeAt(i) >= 0x30 && s.charCodeAt(i) <= 0x39) i++;
    }
    const next = s[i];
    if (next === '.' || next === 'e' || next === 'E') {
      this.pos = i;
      this.fail(`${what} must be an integer, got a number with a fraction or exponent`, tensor);
    }
    // 20 digits cover u64; stop longer runs before BigInt sees them
    if (i - start > 20) this.fail(`${what} is larger than 2^64 - 1`, tensor);
    this.pos = i;
    if (i - start <= 15) {
      // ≤ 15 digits: exact as a number, read without a substring
      let x = 0;
      for (let j = start; j < i; j++) x = x * 10 + (s.charCodeAt(j) - 0x30);
      return x;
    }
    const v = BigInt(s.slice(start, i));
    if (v > U64_MAX) {
      this.pos = start;
      this.fail(`${what} is larger than 2^64 - 1`, tensor);
    }
    return v <= MAX_SAFE ? Number(v) : v;
  }

  /** The whole header: `{ "__metadata__": {...}?, "<name>": {dtype, shape, data_offsets}, ... }`. */
  read(dataStart: number): ParsedHeader {
    const s = this.s;
    if (s[0] !== '{') {
      // The reference has this check written but commented out ("add when we move to 0.4.0"); we apply it.
      throw new SafetensorsError('InvalidHeaderStart', `the header must start with '{', got ${s.length ? q(s[0]!) : 'an empty header'}`);
    }
    const seen = new Set<string>();
    const entries: HeaderEntry[] = [];
    let metadata: Map<string, string> | null = null;
    if (!this.open('{', '}', "'{'")) {
      do {
        const key = this.str('a tensor name');
        if (seen.has(key)) {
          throw new SafetensorsError('DuplicateKey', `the header has the key ${q(key)} twice`, key === '__metadata__' ? undefined : key);
        }
        seen.add(key);
        this.expect(':', "':'");
        if (key === '__metadata__') metadata = this.metadata();
        else entries.push(this.entry(key));
      } while (this.more('}'));
    }
    this.ws(); // trailing whitespace is allowed (the writer pads with spaces); anything else is not
    if (this.pos !== s.length) this.fail(`trailing characters after the header object: ${q(s.slice(this.pos, this.pos + 16))}`);
    entries.sort((a, b) => (a.begin < b.begin ? -1 : a.begin > b.begin ? 1 : a.end < b.end ? -1 : a.end > b.end ? 1 : 0));
    return { metadata, entries, dataStart };
  }

  private metadata(): Map<string, string> | null {
    this.ws();
    // serde reads `Option<HashMap<String, String>>`, so null means "no metadata"
    if (this.s.startsWith('null', this.pos)) {
      this.pos += 4;
      return null;
    }
    const m = new Map<string, string>();
    if (this.open('{', '}', "'{' (__metadata__ must be an object of strings)")) return m;
    do {
      const k = this.str('a metadata key');
      if (m.has(k)) throw new SafetensorsError('DuplicateKey', `__metadata__ has the key ${q(k)} twice`);
      this.expect(':', "':'");
      this.ws();
      if (this.peek() !== '"') this.fail(`__metadata__ value for ${q(k)} must be a string`);
      m.set(k, this.str('a metadata value'));
    } while (this.more('}'));
    return m;
  }

  private entry(name: string): HeaderEntry {
    let dtype: string | undefined;
    let shape: U64[] | undefined;
    let offsets: [U64, U64] | undefined;
    if (!this.open('{', '}', "'{' (a tensor entry must be an object)", name)) {
      do {
        const f = this.known(FIELDS) ?? this.str('a field name', name);
        this.expect(':', "':'", name);
        const dup = (): never => {
          throw new SafetensorsError('DuplicateKey', `tensor ${q(name)} has the field ${q(f)} twice`, name);
        };
        if (f === 'dtype') {
          if (dtype !== undefined) dup();
          dtype = this.known(DTYPE_NAMES) ?? this.str('the dtype', name);
          if (!DTYPE_BITS.has(dtype)) {
            // the reference reports an unknown enum variant as InvalidHeaderDeserialization; we name the dtype
            throw new SafetensorsError(
              'UnsupportedDtype',
              `tensor ${q(name)} has dtype ${q(dtype)}, which is not a safetensors dtype (names are case-sensitive: ${DTYPES.map((d) => d[0]).join(', ')})`,
              name,
            );
          }
        } else if (f === 'shape') {
          if (shape !== undefined) dup();
          shape = [];
          if (!this.open('[', ']', "'[' (the shape must be an array)", name)) {
            do shape.push(this.uint('a dim of the shape', name));
            while (this.more(']', name));
          }
        } else if (f === 'data_offsets') {
          if (offsets !== undefined) dup();
          this.expect('[', "'[' (data_offsets must be [begin, end])", name);
          const b = this.uint('data_offsets[0]', name);
          this.expect(',', "',' (data_offsets must have 2 entries)", name);
          const e = this.uint('data_offsets[1]', name);
          this.expect(']', "']' (data_offsets must have 2 entries)", name);
          offsets = [b, e];
        } else {
          // stricter: serde ignores unknown fields here (TensorInfo has no deny_unknown_fields)
          this.fail(`unknown field ${q(f)} in tensor ${q(name)} (expected dtype, shape, data_offsets)`, name);
        }
      } while (this.more('}', name));
    }
    if (dtype === undefined) this.fail(`tensor ${q(name)} is missing the field "dtype"`, name);
    if (shape === undefined) this.fail(`tensor ${q(name)} is missing the field "shape"`, name);
    if (offsets === undefined) this.fail(`tensor ${q(name)} is missing the field "data_offsets"`, name);
    // slice: an array grown by push keeps spare capacity (a million of them add up)
    return { name, dtype, shape: shape.slice(), begin: offsets[0], end: offsets[1] };
  }
}

const asBytes = (bytes: Uint8Array | ArrayBuffer): Uint8Array => {
  if (bytes instanceof Uint8Array) return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes instanceof ArrayBuffer) return new Uint8Array(bytes);
  throw new SafetensorsError('InvalidInput', `expected the file's bytes as a Uint8Array, got ${Object.prototype.toString.call(bytes)}`);
};

/**
 * The header length N from the file's first 8 bytes, checked against the limit and the file length: the file
 * helpers read these 8 bytes, then exactly N more, then each tensor.
 */
export function headerLength(first8: Uint8Array, fileLength: number): number {
  if (fileLength < 8 || first8.length < 8) throw new SafetensorsError('HeaderTooSmall', `the file has ${fileLength} bytes, fewer than the 8-byte header length`);
  const dv = new DataView(first8.buffer, first8.byteOffset, 8);
  const n = dv.getBigUint64(0, true); // compared as a bigint: u64::MAX must not become a float first
  if (n > BigInt(MAX_HEADER_SIZE)) {
    throw new SafetensorsError('HeaderTooLarge', `the header length is ${n} bytes, above the limit of ${MAX_HEADER_SIZE}`);
  }
  if (8n + n > BigInt(fileLength)) {
    throw new SafetensorsError('InvalidHeaderLength', `the header length is ${n} bytes but the file has only ${fileLength - 8} after the length`);
  }
  return Number(n);
}

/**
 * Reads and fully validates the header against the file length (the reference's `read_metadata`): nothing is
 * allocated beyond the header text until every tensor's span is known to lie inside the file. `u8` holds at least
 * the first 8 + N bytes of a file of `fileLength` bytes.
 */
function readHeader(u8: Uint8Array, fileLength = u8.length): ParsedHeader {
  const dataStart = 8 + headerLength(u8, fileLength);
  let text: string;
  try {
    text = UTF8.decode(u8.subarray(8, dataStart));
  } catch {
    throw new SafetensorsError('InvalidHeader', 'the header is not valid UTF-8');
  }
  const header = new HeaderReader(text).read(dataStart);
  validate(header, fileLength - dataStart);
  return header;
}

/** The reference's `Metadata::validate` plus its buffer-length check, in the same order, in exact u64 arithmetic. */
function validate(h: ParsedHeader, dataLen: number): void {
  let start = 0n;
  for (let i = 0; i < h.entries.length; i++) {
    const e = h.entries[i]!;
    const begin = BigInt(e.begin);
    const end = BigInt(e.end);
    if (begin !== start || end < begin) {
      const why = end < begin
        ? 'its end is before its begin'
        : i === 0
          ? 'the first tensor must begin at 0'
          : begin < start
            ? `it overlaps the previous tensor, which ends at ${start}`
            : `it leaves a gap after the previous tensor, which ends at ${start}`;
      throw new SafetensorsError('InvalidOffset', `tensor ${q(e.name)} has data_offsets [${e.begin}, ${e.end}]: ${why}`, e.name);
    }
    start = end;
    let numel = 1n;
    for (const d of e.shape) {
      numel *= BigInt(d);
      if (numel > U64_MAX) {
        throw new SafetensorsError('ValidationOverflow', `tensor ${q(e.name)} of shape [${e.shape.join(', ')}] has more than 2^64 - 1 elements`, e.name);
      }
    }
    const nbits = numel * BigInt(DTYPE_BITS.get(e.dtype)!);
    if (nbits > U64_MAX) {
      throw new SafetensorsError('ValidationOverflow', `tensor ${q(e.name)} of shape [${e.shape.join(', ')}] and dtype ${e.dtype} overflows u64 in size`, e.name);
    }
    if (nbits % 8n !== 0n) {
      throw new SafetensorsError('MisalignedSlice', `tensor ${q(e.name)} of dtype ${e.dtype} and shape [${e.shape.join(', ')}] is ${nbits} bits, not a whole number of bytes`, e.name);
    }
    if (end - begin !== nbits / 8n) {
      throw new SafetensorsError(
        'TensorInvalidInfo',
        `tensor ${q(e.name)}: dtype ${e.dtype} × shape [${e.shape.join(', ')}] needs ${nbits / 8n} bytes but data_offsets [${e.begin}, ${e.end}] span ${end - begin}`,
        e.name,
      );
    }
  }
  if (start !== BigInt(dataLen)) {
    throw new SafetensorsError(
      'MetadataIncompleteBuffer',
      start < BigInt(dataLen)
        ? `the tensors cover ${start} bytes but the data section has ${dataLen}: ${BigInt(dataLen) - start} trailing bytes`
        : `the tensors need ${start} bytes of data but the file has only ${dataLen} after the header (truncated?)`,
    );
  }
  // Offsets are now all ≤ dataLen. A dim can still be huge when another dim is 0; it must be exact as a number.
  for (const e of h.entries) {
    for (const d of e.shape) {
      if (typeof d === 'bigint') {
        throw new SafetensorsError('ValidationOverflow', `tensor ${q(e.name)} has a dim of ${d}, above 2^53 - 1`, e.name);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Decoding every dtype to float32
// ---------------------------------------------------------------------------------------------------------------

let f16Table: Uint32Array | null = null;

/**
 * Float32 bit patterns of all 65536 halves: exact (every half is a float32). NaNs keep their payload and are made
 * quiet, as PyTorch's CPU conversion does (0x7d00 → 0x7fe00000).
 */
function halfTable(): Uint32Array {
  if (f16Table) return f16Table;
  const t = new Uint32Array(65536);
  const f = new Float32Array(t.buffer);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    if (e === 0) f[h] = (sign ? -1 : 1) * m * 2 ** -24; // zero or subnormal: exact in float32
    else if (e === 31) t[h] = (sign | 0x7f800000 | (m << 13) | (m ? 0x00400000 : 0)) >>> 0; // inf or (quiet) NaN
    else t[h] = (sign | ((e + 112) << 23) | (m << 13)) >>> 0; // rebias the exponent: 127 - 15 = 112
  }
  f16Table = t;
  return t;
}

/**
 * A 64-bit integer hi·2^32 + lo (hi signed or unsigned, lo unsigned) rounded once to float32, as a C cast does.
 * Below 2^53 the double is exact and the Float32Array store rounds once. Above, rounding first to a 53-bit double
 * and then to float32 could round twice (2^60 + 2^36 + 1 would become 2^60, not 2^60 + 2^37), so the double is
 * formed with round-to-odd, which makes the second rounding exact.
 */
function int64ToNumber(hi: number, lo: number): number {
  if (hi >= -0x200000 && hi < 0x200000) return hi * 4294967296 + lo;
  const x = BigInt(hi) * 4294967296n + BigInt(lo);
  const neg = x < 0n;
  const a = neg ? -x : x;
  const shift = a.toString(2).length - 53;
  let t = a >> BigInt(shift);
  if (t << BigInt(shift) !== a) t |= 1n; // sticky bit: round to odd
  const d = Number(t) * 2 ** shift;
  return neg ? -d : d;
}

/** Decodes n elements of `dtype` starting at byte `off` of `u8` into `out` (little-endian, any alignment). */
function decode(out: Float32Array, u8: Uint8Array, off: number, dtype: string): void {
  const n = out.length;
  if (n === 0) return;
  const dv = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
  switch (dtype) {
    case 'F32':
      if (LITTLE_ENDIAN) {
        // a byte copy keeps NaN payloads and needs no alignment (a Float32Array view at an odd offset would throw)
        new Uint8Array(out.buffer, out.byteOffset, n * 4).set(u8.subarray(off, off + n * 4));
      } else {
        const o32 = new Uint32Array(out.buffer, out.byteOffset, n);
        for (let i = 0; i < n; i++) o32[i] = dv.getUint32(off + 4 * i, true);
      }
      return;
    case 'F64':
      for (let i = 0; i < n; i++) out[i] = dv.getFloat64(off + 8 * i, true);
      return;
    case 'F16': {
      const t = halfTable();
      const o32 = new Uint32Array(out.buffer, out.byteOffset, n);
      for (let i = 0, p = off; i < n; i++, p += 2) o32[i] = t[u8[p]! | (u8[p + 1]! << 8)]!;
      return;
    }
    case 'BF16': {
      // bfloat16 is the top half of a float32: exact, NaN payloads kept (PyTorch shifts the bits too)
      const o32 = new Uint32Array(out.buffer, out.byteOffset, n);
      for (let i = 0, p = off; i < n; i++, p += 2) o32[i] = (u8[p]! << 16) | (u8[p + 1]! << 24);
      return;
    }
    case 'I64':
      for (let i = 0, p = off; i < n; i++, p += 8) out[i] = int64ToNumber(dv.getInt32(p + 4, true), dv.getUint32(p, true));
      return;
    case 'U64':
      for (let i = 0, p = off; i < n; i++, p += 8) out[i] = int64ToNumber(dv.getUint32(p + 4, true), dv.getUint32(p, true));
      return;
    case 'I32':
      for (let i = 0; i < n; i++) out[i] = dv.getInt32(off + 4 * i, true);
      return;
    case 'U32':
      for (let i = 0; i < n; i++) out[i] = dv.getUint32(off + 4 * i, true);
      return;
    case 'I16':
      for (let i = 0; i < n; i++) out[i] = dv.getInt16(off + 2 * i, true);
      return;
    case 'U16':
      for (let i = 0; i < n; i++) out[i] = dv.getUint16(off + 2 * i, true);
      return;
    case 'I8':
      for (let i = 0; i < n; i++) out[i] = dv.getInt8(off + i);
      return;
    case 'U8':
      for (let i = 0; i < n; i++) out[i] = u8[off + i]!;
      return;
    case 'BOOL':
      // any non-zero byte is true
      for (let i = 0; i < n; i++) out[i] = u8[off + i] ? 1 : 0;
      return;
    default:
      throw new Error(`unreachable dtype ${dtype}`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Public reading API
// ---------------------------------------------------------------------------------------------------------------

/**
 * Validates a whole safetensors file and decodes every tensor to float32, in file order.
 * Throws SafetensorsError (with `kind`) on any malformed input; nothing is allocated for tensor data before the
 * header has been checked against the file length.
 */
export function parseSafetensors(bytes: Uint8Array | ArrayBuffer): { metadata: Record<string, string>; tensors: SafetensorsEntry[] } {
  const u8 = asBytes(bytes);
  const { metadata, spans } = parseSafetensorsHeader(u8, u8.length);
  const tensors: SafetensorsEntry[] = [];
  for (const sp of spans) {
    const data = new Float32Array(sp.numel);
    decode(data, u8, sp.offset, sp.dtype);
    tensors.push({ name: sp.name, dtype: sp.dtype, shape: sp.shape, data });
  }
  return { metadata, tensors };
}

/** One tensor's place in a file: for readers that fetch each tensor's bytes themselves (the file helpers). */
export interface SafetensorsSpan {
  name: string;
  dtype: string;
  shape: number[];
  /** Absolute byte offset in the file, and byte length. */
  offset: number;
  bytes: number;
  /** Elements (bytes / dtype size). */
  numel: number;
}

/**
 * Parses and validates the header (`head` = the file's first 8 + N bytes, `fileLength` = the whole file's) and
 * returns the metadata and every tensor's span in file order, after the dtype and size checks parseSafetensors
 * makes, so that a caller can read and decode tensor by tensor (decodeSpan).
 */
export function parseSafetensorsHeader(head: Uint8Array, fileLength: number): { metadata: Record<string, string>; spans: SafetensorsSpan[] } {
  const h = readHeader(asBytes(head), fileLength);
  const spans: SafetensorsSpan[] = [];
  for (const e of h.entries) {
    if (!DECODABLE.has(e.dtype)) {
      throw new SafetensorsError('UnsupportedDtype', `tensor ${q(e.name)} has dtype ${e.dtype}, which resnet-ts cannot decode (supported: ${[...DECODABLE].join(', ')})`, e.name);
    }
  }
  for (let i = 0; i < h.entries.length; i++) {
    const e = h.entries[i]!;
    // each entry is garbage once its span exists: a collection during this loop makes room for the spans
    (h.entries as (HeaderEntry | null)[])[i] = null;
    const shape = e.shape as number[]; // validated: every dim is a number
    const bytes = (e.end as number) - (e.begin as number);
    const numel = bytes / (DTYPE_BITS.get(e.dtype)! / 8);
    if (numel > MAX_NUMEL) {
      throw new AllocationError('safetensors', `tensor ${q(e.name)} of shape ${fmt(shape)} has ${numel} elements, more than the limit of 2^32 - 1`);
    }
    spans.push({ name: e.name, dtype: e.dtype, shape, offset: h.dataStart + (e.begin as number), bytes, numel });
  }
  return { metadata: metadataRecord(h.metadata), spans };
}

/** Decodes one span's bytes (`u8` from `off`) into `out` (length span.numel). */
export function decodeSpan(out: Float32Array, u8: Uint8Array, off: number, span: SafetensorsSpan): void {
  decode(out, u8, off, span.dtype);
}

/** A null-prototype record, so that keys like `__proto__` or `constructor` are plain own properties. */
function metadataRecord(m: Map<string, string> | null): Record<string, string> {
  const r: Record<string, string> = Object.create(null);
  if (m) for (const [k, v] of m) r[k] = v;
  return r;
}

/**
 * Loads every tensor of a safetensors file as a float32 Tensor, keyed by name (a null-prototype object).
 * The equivalent of `safetensors.torch.load(bytes)` followed by `.float()` on each tensor.
 */
export function loadSafetensors(bytes: Uint8Array | ArrayBuffer): Record<string, Tensor> {
  const out: Record<string, Tensor> = Object.create(null);
  for (const t of parseSafetensors(bytes).tensors) out[t.name] = new Tensor(t.data, t.shape);
  return out;
}

/**
 * The `__metadata__` string map ({} if none), after validating the whole header against the file length; tensor
 * data is not decoded, so this works on files with dtypes resnet-ts cannot decode.
 */
export function readSafetensorsMetadata(bytes: Uint8Array | ArrayBuffer): Record<string, string> {
  return metadataRecord(readHeader(asBytes(bytes)).metadata);
}

// ---------------------------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------------------------

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function checkText(s: unknown, what: string, tensor?: string): string {
  if (typeof s !== 'string') throw new SafetensorsError('InvalidInput', `${what} must be a string, got ${typeof s}`, tensor);
  if (LONE_SURROGATE.test(s)) throw new SafetensorsError('InvalidInput', `${what} ${q(s)} has a lone surrogate and cannot be encoded as UTF-8`, tensor);
  return s;
}

/**
 * Code point order (= UTF-8 byte order, Rust's `str::cmp`, Python's `str` order), not UTF-16 unit order: units
 * E000–FFFF must sort before surrogate pairs (code points above FFFF).
 */
function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x !== y) {
      if (x >= 0xd800) x += x >= 0xe000 ? -0x800 : 0x2000;
      if (y >= 0xd800) y += y >= 0xe000 ? -0x800 : 0x2000;
      return x - y;
    }
  }
  return a.length - b.length;
}

/**
 * Serializes tensors as an F32 safetensors file, laid out exactly as the reference `serialize` does: tensors sorted
 * by dtype alignment (all F32 here) then name, offsets contiguous from 0, compact JSON with `__metadata__` first
 * (its keys sorted; the reference's HashMap order is arbitrary), header padded with spaces to a multiple of 8.
 * The equivalent of `safetensors.torch.save(tensors, metadata)` for float32 tensors.
 */
export function saveSafetensors(tensors: Record<string, Tensor>, metadata?: Record<string, string>): Uint8Array {
  if (tensors === null || typeof tensors !== 'object') {
    throw new SafetensorsError('InvalidInput', `tensors must be an object of name → Tensor, got ${tensors === null ? 'null' : typeof tensors}`);
  }
  const names = Object.keys(tensors);
  for (const name of names) {
    checkText(name, 'the tensor name');
    if (name === '__metadata__') throw new SafetensorsError('InvalidInput', 'a tensor cannot be named "__metadata__" (the header key reserved for metadata)', name);
    const t = tensors[name] as unknown;
    if (!(t instanceof Tensor)) throw new SafetensorsError('InvalidInput', `${q(name)} is not a Tensor`, name);
    let numel = 1;
    for (const d of t.shape) numel *= d;
    if (t.data.length !== numel) {
      throw new SafetensorsError('InvalidTensorView', `tensor ${q(name)} of shape ${fmt(t.shape)} has ${t.data.length} elements, not ${numel}`, name);
    }
  }
  names.sort(compareCodePoints);

  const parts: string[] = [];
  if (metadata !== undefined) {
    if (metadata === null || typeof metadata !== 'object') throw new SafetensorsError('InvalidInput', 'metadata must be an object of string → string');
    const keys = Object.keys(metadata).sort(compareCodePoints);
    const kv = keys.map((k) => `${JSON.stringify(checkText(k, 'the metadata key'))}:${JSON.stringify(checkText(metadata[k], `the metadata value for ${q(k)}`))}`);
    parts.push(`"__metadata__":{${kv.join(',')}}`);
  }
  let offset = 0;
  for (const name of names) {
    const t = tensors[name]!;
    const end = offset + t.data.length * 4;
    parts.push(`${JSON.stringify(name)}:{"dtype":"F32","shape":[${t.shape.join(',')}],"data_offsets":[${offset},${end}]}`);
    offset = end;
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const headerLen = Math.ceil(json.length / 8) * 8;
  if (headerLen > MAX_HEADER_SIZE) {
    throw new SafetensorsError('HeaderTooLarge', `the header would be ${headerLen} bytes, above the limit of ${MAX_HEADER_SIZE}`);
  }
  let out: Uint8Array;
  try {
    out = new Uint8Array(8 + headerLen + offset);
  } catch (e) {
    throw new AllocationError('safetensors', `cannot allocate ${8 + headerLen + offset} bytes for the file: ${(e as Error).message}`);
  }
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(headerLen), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLen);
  let p = 8 + headerLen;
  for (const name of names) {
    const d = tensors[name]!.data;
    if (LITTLE_ENDIAN) {
      out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), p); // bytes as they are: NaN payloads kept
    } else {
      const d32 = new Uint32Array(d.buffer, d.byteOffset, d.length);
      for (let i = 0; i < d.length; i++) dv.setUint32(p + 4 * i, d32[i]!, true);
    }
    p += d.byteLength;
  }
  return out;
}
