/**
 * One random edit of a valid file, for the parsers' fuzz tests (safetensors, ONNX): flip a bit, set a byte,
 * truncate, insert bytes, or delete a run of up to 16 bytes at position p. Returns a new array.
 */
export type ByteEdit = 'flip' | 'set' | 'truncate' | 'insert' | 'delete';

export const BYTE_EDITS: readonly ByteEdit[] = ['flip', 'set', 'truncate', 'insert', 'delete'];

export function editBytes(file: Uint8Array, op: ByteEdit, p: number, e: { bit: number; byte: number; bytes: Uint8Array; run: number }): Uint8Array {
  const b = file.slice();
  switch (op) {
    case 'flip':
      b[p] = b[p]! ^ (1 << e.bit);
      return b;
    case 'set':
      b[p] = e.byte;
      return b;
    case 'truncate':
      return b.slice(0, p);
    case 'insert': {
      const out = new Uint8Array(b.length + e.bytes.length);
      out.set(b.subarray(0, p));
      out.set(e.bytes, p);
      out.set(b.subarray(p), p + e.bytes.length);
      return out;
    }
    case 'delete': {
      const q = Math.min(b.length, p + 1 + (e.run % 16));
      const out = new Uint8Array(b.length - (q - p));
      out.set(b.subarray(0, p));
      out.set(b.subarray(q), p);
      return out;
    }
  }
}
