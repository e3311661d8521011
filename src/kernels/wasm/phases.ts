// The kernels of the strided convolutions' input gradient by stride phases (conv2d/phases.ts): the direct
// convolution and its padding (wasm/direct.ts's `conv` and `pad`, built into this module too) and `copy`, a strided
// copy of float32 values that moves one stride phase of dx between the image and the phase's own rows.

import { encodeModule, f32, forLoop, i32, local, Locals, ValType, type Func } from './encoder.js';
import { DIRECT_R, DIRECT_V, directFunc, padFunc, type DirectFn, type PadFn } from './direct.js';
import { usesFma, wasm, type WasmMemory } from './features.js';

const { i32: I32 } = ValType;

/**
 * `copy(src, srcCh, srcRow, srcCol, dst, dstCh, dstRow, dstCol, ch, rows, cols)`: for c < ch, r < rows, q < cols,
 * the float32 at dst + c·dstCh + r·dstRow + q·dstCol = the one at src + c·srcCh + r·srcRow + q·srcCol (byte strides).
 */
export function copyFunc(): Func {
  const [src, srcCh, srcRow, srcCol, dst, dstCh, dstRow, dstCol, ch, rows, cols] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  const L = new Locals(11);
  const c = L.add(I32), r = L.add(I32), q = L.add(I32), s = L.add(I32), d = L.add(I32);
  const get = local.get;
  return {
    name: 'copy',
    params: new Array<ValType>(11).fill(I32),
    results: [],
    locals: L.types,
    body: [
      forLoop(c, i32.const(0), get(ch), 1,
        forLoop(r, i32.const(0), get(rows), 1,
          local.set(s, i32.add(i32.add(get(src), i32.mul(get(c), get(srcCh))), i32.mul(get(r), get(srcRow)))),
          local.set(d, i32.add(i32.add(get(dst), i32.mul(get(c), get(dstCh))), i32.mul(get(r), get(dstRow)))),
          forLoop(q, i32.const(0), get(cols), 1,
            f32.store(get(d), f32.load(get(s))),
            local.set(s, i32.add(get(s), get(srcCol))),
            local.set(d, i32.add(get(d), get(dstCol)))))),
    ],
  };
}

// ---- the per-thread instance ------------------------------------------------------------------------------------

export type CopyFn = (
  src: number, srcCh: number, srcRow: number, srcCol: number, dst: number, dstCh: number, dstRow: number, dstCol: number,
  ch: number, rows: number, cols: number,
) => void;

/** This thread's phase kernels over their own memory, with float32/int32 views of it. */
export interface SimdPhases {
  conv: DirectFn;
  pad: PadFn;
  copy: CopyFn;
  f: Float32Array;
  i: Int32Array;
}

let current: SimdPhases | null = null;
let memory: WasmMemory | null = null;
let builtFma: boolean | null = null;

/** This thread's phase kernels with a memory of at least `bytes` bytes (grown when needed; views renewed). */
export function simdPhases(bytes: number): SimdPhases {
  const fma = usesFma();
  if (current === null || builtFma !== fma) {
    if (memory === null) memory = new wasm!.Memory({ initial: Math.max(1, Math.ceil(bytes / 65536)) });
    const bin = encodeModule([directFunc(DIRECT_R, DIRECT_V, fma), padFunc(), copyFunc()]);
    const e = new wasm!.Instance(new wasm!.Module(bin), { env: { mem: memory } }).exports;
    current = { conv: e.conv as DirectFn, pad: e.pad as PadFn, copy: e.copy as CopyFn, f: new Float32Array(memory.buffer), i: new Int32Array(memory.buffer) };
    builtFma = fma;
  }
  if (memory!.buffer.byteLength < bytes) {
    memory!.grow(Math.ceil((bytes - memory!.buffer.byteLength) / 65536));
    current = { ...current, f: new Float32Array(memory!.buffer), i: new Int32Array(memory!.buffer) };
  }
  return current;
}
