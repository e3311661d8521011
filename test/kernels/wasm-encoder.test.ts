/**
 * The WebAssembly encoder (src/kernels/wasm/encoder.ts): LEB128 against hand-computed bytes, and small modules the
 * engine validates and runs (scalar and SIMD instructions, loops, the bulk-memory `memory.fill`).
 */
import { describe, expect, it } from 'vitest';
import { encodeModule, f32x4, f64x2, forLoop, i32, local, Locals, memory, sleb, uleb, v128, ValType } from '../../src/kernels/wasm/encoder.js';
import { wasm } from '../../src/kernels/wasm/features.js';

describe('LEB128', () => {
  it('unsigned and signed, by hand', () => {
    expect(uleb(0)).toEqual([0]);
    expect(uleb(127)).toEqual([0x7f]);
    expect(uleb(128)).toEqual([0x80, 0x01]);
    expect(uleb(624485)).toEqual([0xe5, 0x8e, 0x26]);
    expect(sleb(-1)).toEqual([0x7f]);
    expect(sleb(63)).toEqual([0x3f]);
    expect(sleb(64)).toEqual([0xc0, 0x00]);
    expect(sleb(-123456)).toEqual([0xc0, 0xbb, 0x78]);
  });
});

describe('modules', () => {
  it('a loop summing i32 memory, and a SIMD function: f64 C += promote(a·b) lane by lane', () => {
    const L = new Locals(2);
    const i = L.add(ValType.i32), s = L.add(ValType.i32);
    const sum = {
      name: 'sum', params: [ValType.i32, ValType.i32], results: [ValType.i32], locals: L.types,
      // s = Σ_{i < n} mem32[base + 4i]
      body: [
        local.set(s, i32.const(0)),
        forLoop(i, i32.const(0), local.get(1), 1,
          local.set(s, i32.add(local.get(s), i32.load(i32.add(local.get(0), i32.shl(local.get(i), i32.const(2))))))),
        local.get(s),
      ],
    };
    // mem64[c..c+2] += promote_low(f32x4(a) · f32x4(b)) (lanes 0, 1), mem64[c+2..c+4] += the high lanes.
    const prod = (at: number) => f32x4.mul(v128.load(local.get(0)), v128.load(local.get(1)));
    const fma = {
      name: 'acc', params: [ValType.i32, ValType.i32, ValType.i32], results: [], locals: [],
      body: [
        v128.store(local.get(2), f64x2.add(v128.load(local.get(2)), f64x2.promote_low_f32x4(prod(0)))),
        v128.store(local.get(2), f64x2.add(v128.load(local.get(2), 16), f64x2.promote_low_f32x4(f32x4.high(prod(0)))), 16),
      ],
    };
    const bytes = encodeModule([sum, fma]);
    expect(wasm!.validate(bytes)).toBe(true);
    const mem = new wasm!.Memory({ initial: 1 });
    const inst = new wasm!.Instance(new wasm!.Module(bytes), { env: { mem } });
    const ints = new Int32Array(mem.buffer);
    ints.set([5, -7, 100, 3], 4);
    expect((inst.exports.sum as (b: number, n: number) => number)(16, 4)).toBe(101);
    expect((inst.exports.sum as (b: number, n: number) => number)(16, 0)).toBe(0);
    const f = new Float32Array(mem.buffer), d = new Float64Array(mem.buffer);
    f.set([1.5, 2, 3, 1e-8], 64); // a at byte 256
    f.set([2, -0.25, 3, 1e-8], 68); // b at byte 272
    d.set([10, 20, 30, 40], 64); // c at byte 512
    (inst.exports.acc as (a: number, b: number, c: number) => void)(256, 272, 512);
    expect(Array.from(d.subarray(64, 68))).toEqual([13, 19.5, 39, 40 + Math.fround(Math.fround(1e-8) * Math.fround(1e-8))]);
  });

  it('memory.fill: bytes [at, at + n) set to the value, nothing around them', () => {
    const fill = {
      name: 'fill', params: [ValType.i32, ValType.i32, ValType.i32], results: [], locals: [],
      body: [memory.fill(local.get(0), local.get(1), local.get(2))],
    };
    const bytes = encodeModule([fill], 1, true, 4);
    expect(wasm!.validate(bytes)).toBe(true);
    const mem = new wasm!.Memory({ initial: 1, maximum: 4, shared: true });
    const run = new wasm!.Instance(new wasm!.Module(bytes), { env: { mem } }).exports.fill as (at: number, v: number, n: number) => void;
    const u8 = new Uint8Array(mem.buffer);
    u8.fill(7, 0, 200);
    run(13, 0, 101);
    run(150, 0x1a5, 3); // the value's low byte
    run(199, 0, 0);
    const want = new Uint8Array(200).fill(7);
    want.fill(0, 13, 114);
    want.fill(0xa5, 150, 153);
    expect(Array.from(u8.subarray(0, 200))).toEqual(Array.from(want));
    expect(() => run(65536 - 2, 0, 3)).toThrow();
  });
});
