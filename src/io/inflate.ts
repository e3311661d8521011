/**
 * zlib inflate (RFC 1950 wrapper around RFC 1951 deflate) in plain TypeScript, so that PNG decodes where there is
 * no node:zlib (browsers). It accepts and rejects what zlib's inflate accepts and rejects, and gives the same bytes:
 * header check (CM 8, CINFO ≤ 7, FCHECK, no preset dictionary), stored / fixed / dynamic blocks, over-subscribed
 * and incomplete Huffman codes rejected as inftrees.c rejects them (an incomplete length or distance code is
 * allowed only when it is a single code of length 1), distances before the start of the output rejected, and the
 * Adler-32 trailer checked. Input after the trailer is ignored, as zlib's inflate ignores it.
 *
 * Huffman decoding: one lookup table per code, indexed by the next `maxLen` bits (bit-reversed codes, since deflate
 * sends codes MSB first inside an LSB-first bit stream); an entry is (symbol << 4) | length, 0 for no code.
 */

import { ResnetTsError } from '../errors.js';

/** A zlib stream that zlib's inflate would refuse: corrupt, truncated, or larger than the caller allows. */
export class InflateError extends ResnetTsError {
  constructor(
    message: string,
    /** 'size' when the output would exceed the caller's limit, 'data' for every corrupt or truncated stream. */
    readonly kind: 'data' | 'size' = 'data',
  ) {
    super('inflate', message);
  }
}

const LENGTH_BASE = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258];
const LENGTH_EXTRA = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
const DIST_BASE = [
  1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
];
const DIST_EXTRA = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13];
/** Order in which the code-length code's lengths are sent. */
const CLEN_ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

/** zlib's names for the three codes in its error messages. */
const setName = { 'code lengths': 'code lengths set', 'literal/length': 'literal/lengths set', distance: 'distances set' } as const;

interface Huffman {
  table: Int32Array;
  maxLen: number;
}

const fail = (msg: string): never => {
  throw new InflateError(msg);
};

/**
 * Builds the decoding table of a canonical code from its code lengths. `kind` decides what an incomplete code
 * means, as in zlib's inftrees.c: never allowed for the code-length code, allowed for a literal/length or distance
 * code only when it has a single code of length 1. A code with no symbols at all gets an empty table (any use of
 * it is an invalid code).
 */
function buildHuffman(lengths: Uint8Array, n: number, kind: 'code lengths' | 'literal/length' | 'distance'): Huffman {
  const count = new Uint16Array(16);
  for (let i = 0; i < n; i++) count[lengths[i]!]!++;
  let maxLen = 15;
  while (maxLen > 0 && count[maxLen] === 0) maxLen--;
  if (maxLen === 0) return { table: new Int32Array(2), maxLen: 1 };
  let left = 1;
  for (let len = 1; len <= 15; len++) {
    left = (left << 1) - count[len]!;
    if (left < 0) fail(`invalid ${setName[kind]} (over-subscribed)`);
  }
  if (left > 0 && (kind === 'code lengths' || maxLen !== 1)) fail(`invalid ${setName[kind]} (incomplete)`);
  const next = new Uint16Array(16);
  // Canonical codes: codes of length l start at next[l], in symbol order.
  let code = 0;
  for (let len = 1; len <= 15; len++) {
    next[len] = code;
    code = (code + count[len]!) << 1;
  }
  const size = 1 << maxLen;
  const table = new Int32Array(size);
  for (let sym = 0; sym < n; sym++) {
    const len = lengths[sym]!;
    if (len === 0) continue;
    const c = next[len]!++;
    let rev = 0;
    for (let b = 0; b < len; b++) rev |= ((c >> b) & 1) << (len - 1 - b);
    const entry = (sym << 4) | len;
    for (let i = rev; i < size; i += 1 << len) table[i] = entry;
  }
  return { table, maxLen };
}

let fixedLit: Huffman | null = null;
let fixedDist: Huffman | null = null;
function fixedTables(): [Huffman, Huffman] {
  if (fixedLit === null || fixedDist === null) {
    const l = new Uint8Array(288);
    for (let i = 0; i < 288; i++) l[i] = i < 144 ? 8 : i < 256 ? 9 : i < 280 ? 7 : 8;
    fixedLit = buildHuffman(l, 288, 'literal/length');
    // 32 codes of 5 bits (a complete code); symbols 30 and 31 are invalid when used.
    fixedDist = buildHuffman(new Uint8Array(32).fill(5), 32, 'distance');
  }
  return [fixedLit, fixedDist];
}

/**
 * Inflates a zlib stream. `maxOutputLength` bounds the output (an InflateError of kind 'size' past it); when the
 * caller knows the exact size, passing it also sizes the output buffer once.
 */
export function inflate(input: Uint8Array, maxOutputLength = 2 ** 31 - 1): Uint8Array {
  const n = input.length;
  if (n < 2) fail('unexpected end of file');
  const cmf = input[0]!;
  const flg = input[1]!;
  if (((cmf << 8) | flg) % 31 !== 0) fail('incorrect header check');
  if ((cmf & 15) !== 8) fail('unknown compression method');
  if (cmf >> 4 > 7) fail('invalid window size');
  if (flg & 0x20) fail('missing dictionary');

  let pos = 2;
  let bitbuf = 0;
  let bitcnt = 0;
  let out = new Uint8Array(Math.min(maxOutputLength, Math.max(1024, n * 4)));
  let outPos = 0;

  /** Makes room for `more` bytes of output, or throws past the limit. */
  const grow = (more: number) => {
    const need = outPos + more;
    if (need > maxOutputLength) throw new InflateError(`output exceeds ${maxOutputLength} bytes`, 'size');
    if (need <= out.length) return;
    const bigger = new Uint8Array(Math.min(maxOutputLength, Math.max(need, out.length * 2)));
    bigger.set(out.subarray(0, outPos));
    out = bigger;
  };
  // Bits are consumed LSB first; the buffer holds at most 32 bits (need() never asks for more than 16 at a time).
  const need = (bits: number) => {
    while (bitcnt < bits) {
      if (pos >= n) fail('unexpected end of file');
      bitbuf |= input[pos++]! << bitcnt;
      bitcnt += 8;
    }
  };
  const take = (bits: number): number => {
    need(bits);
    const v = bitbuf & ((1 << bits) - 1);
    bitbuf >>>= bits;
    bitcnt -= bits;
    return v;
  };
  const decode = (h: Huffman, what: string): number => {
    // Near the end of the input fewer than maxLen bits may remain: peek what there is, then check the length.
    while (bitcnt < h.maxLen && pos < n) {
      bitbuf |= input[pos++]! << bitcnt;
      bitcnt += 8;
    }
    const e = h.table[bitbuf & ((1 << h.maxLen) - 1)]!;
    const len = e & 15;
    if (len === 0) {
      if (bitcnt < h.maxLen) fail('unexpected end of file');
      fail(`invalid ${what} code`);
    }
    if (len > bitcnt) fail('unexpected end of file');
    bitbuf >>>= len;
    bitcnt -= len;
    return e >> 4;
  };

  let last = 0;
  const lengths = new Uint8Array(320);
  while (!last) {
    last = take(1);
    const type = take(2);
    if (type === 0) {
      // Stored: skip to a byte boundary, LEN and its complement, LEN raw bytes.
      bitbuf >>>= bitcnt & 7;
      bitcnt -= bitcnt & 7;
      const len = take(16);
      const nlen = take(16);
      if (len !== (~nlen & 0xffff)) fail('invalid stored block lengths');
      // Whole bytes still in the bit buffer come first (there can be none after two 16-bit reads from a byte
      // boundary, but keep the copy exact).
      let k = 0;
      grow(len);
      for (; k < len && bitcnt >= 8; k++) out[outPos++] = take(8);
      const rest = len - k;
      if (pos + rest > n) {
        const avail = n - pos;
        out.set(input.subarray(pos, n), outPos);
        outPos += avail;
        fail('unexpected end of file');
      }
      out.set(input.subarray(pos, pos + rest), outPos);
      outPos += rest;
      pos += rest;
      continue;
    }
    if (type === 3) fail('invalid block type');
    let lit: Huffman;
    let dist: Huffman;
    if (type === 1) {
      [lit, dist] = fixedTables();
    } else {
      const nlen = take(5) + 257;
      const ndist = take(5) + 1;
      const ncode = take(4) + 4;
      if (nlen > 286 || ndist > 30) fail('too many length or distance symbols');
      lengths.fill(0, 0, 19);
      for (let i = 0; i < ncode; i++) lengths[CLEN_ORDER[i]!] = take(3);
      const clen = buildHuffman(lengths, 19, 'code lengths');
      const all = new Uint8Array(nlen + ndist);
      for (let i = 0; i < nlen + ndist; ) {
        const sym = decode(clen, 'code lengths');
        if (sym < 16) {
          all[i++] = sym;
          continue;
        }
        let rep: number;
        let val = 0;
        if (sym === 16) {
          if (i === 0) fail('invalid bit length repeat');
          val = all[i - 1]!;
          rep = 3 + take(2);
        } else if (sym === 17) {
          rep = 3 + take(3);
        } else {
          rep = 11 + take(7);
        }
        if (i + rep > nlen + ndist) fail('invalid bit length repeat');
        all.fill(val, i, i + rep);
        i += rep;
      }
      if (all[256] === 0) fail('invalid code -- missing end-of-block');
      lit = buildHuffman(all.subarray(0, nlen), nlen, 'literal/length');
      dist = buildHuffman(all.subarray(nlen), ndist, 'distance');
    }
    // Literals and matches until end-of-block.
    for (;;) {
      const sym = decode(lit, 'literal/length');
      if (sym < 256) {
        if (outPos >= out.length) grow(1);
        out[outPos++] = sym;
        continue;
      }
      if (sym === 256) break;
      const li = sym - 257;
      if (li >= 29) fail('invalid literal/length code');
      const len = LENGTH_BASE[li]! + take(LENGTH_EXTRA[li]!);
      const ds = decode(dist, 'distance');
      if (ds >= 30) fail('invalid distance code');
      const d = DIST_BASE[ds]! + take(DIST_EXTRA[ds]!);
      if (d > outPos) fail('invalid distance too far back');
      if (outPos + len > out.length) grow(len);
      if (d >= len) {
        out.copyWithin(outPos, outPos - d, outPos - d + len);
        outPos += len;
      } else {
        for (let k = 0; k < len; k++, outPos++) out[outPos] = out[outPos - d]!;
      }
    }
  }
  // Adler-32 of the output, big-endian, after a byte boundary.
  bitbuf >>>= bitcnt & 7;
  bitcnt -= bitcnt & 7;
  let want = 0;
  for (let i = 0; i < 4; i++) want = (want * 256 + take(8)) >>> 0;
  if (adler32(out, outPos) !== want) fail('incorrect data check');
  return out.length === outPos ? out : out.slice(0, outPos);
}

function adler32(b: Uint8Array, len: number): number {
  let a = 1;
  let s = 0;
  for (let i = 0; i < len; ) {
    // 5552 bytes is the most that can be summed before s can overflow 2^32 (zlib's NMAX).
    const end = Math.min(len, i + 5552);
    for (; i < end; i++) {
      a += b[i]!;
      s += a;
    }
    a %= 65521;
    s %= 65521;
  }
  return ((s << 16) | a) >>> 0;
}

/** An inflater with `inflate`'s contract: the same bytes, InflateError (kind 'size' past the limit) on failure. */
export type ZlibInflate = (input: Uint8Array, maxOutputLength: number) => Uint8Array;

let installed: ZlibInflate = inflate;

/**
 * Chooses the inflater PNG decoding uses: the Node entry installs node:zlib's (zlib.ts), which takes 0.45× the CPU
 * time of this one (37 vs 84 ms for a 4 MB stream). null restores this module's.
 */
export function setZlibInflate(fn: ZlibInflate | null): void {
  installed = fn ?? inflate;
}

/** Inflates with the installed inflater (see setZlibInflate). */
export function zlibInflate(input: Uint8Array, maxOutputLength: number): Uint8Array {
  return installed(input, maxOutputLength);
}
