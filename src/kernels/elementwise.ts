// Elementwise kernels of the training step (ReLU and its backward, add, accumulate), split into fixed-size chunks.
// Every element is computed on its own, so results do not depend on the split. One pass over memory at ~1.6 ns per
// element: they use the threads only when their buffers are shared (allShared), as the staging copies would cost
// about what the kernel does.

import { allShared, parallelFor, registerTask } from './parallel.js';
import { float32Bits, reluBits } from './relu.js';
import { encodeModule, i32, local, memory, ValType } from './wasm/encoder.js';
import { wasm } from './wasm/features.js';
import { residentAddress, residentMemory, type Resident } from './wasm/optim.js';

/** Elements per work unit: the units are a function of the length only. */
const CHUNK = 65536;

/** What a task over n elements tells parallelFor it costs: 0 (inline) if a buffer would need staging. */
const cost = (n: number, ...bufs: Float32Array[]): number => (allShared(...bufs) ? n : 0);

interface Range {
  n: number;
}

const chunks = (n: number): number => Math.ceil(n / CHUNK);

function range(q: Range, u0: number, u1: number): [number, number] {
  return [u0 * CHUNK, Math.min(q.n, u1 * CHUNK)];
}

/** y = relu(x), PyTorch's `x > 0 || isnan(x) ? x : 0` (see relu.ts); y may be x. */
export function reluForward(y: Float32Array, x: Float32Array): void {
  const n = y.length;
  parallelFor<Range>({ kernel: 'elementwise.relu', bufs: { y, x }, writes: ['y'], overwrites: y === x ? [] : ['y'], params: { n }, units: chunks(n), cost: cost(n, y, x) });
}

registerTask<Range>('elementwise.relu', (bufs, q, u0, u1) => {
  const [i0, i1] = range(q, u0, u1);
  reluBits(float32Bits(bufs.y as Float32Array), float32Bits(bufs.x as Float32Array), i0, i1);
});

/**
 * dx = dy where the ReLU output y is not ≤ 0, else 0 (PyTorch's threshold_backward on the result; a NaN output
 * passes dy). y is a relu output: +0, positive or NaN, so "passes" is "y's bits are not 0"; as a mask, no branch.
 */
export function reluBackward(dx: Float32Array, dy: Float32Array, y: Float32Array): void {
  const n = dx.length;
  parallelFor<Range>({ kernel: 'elementwise.reluBackward', bufs: { dx, dy, y }, writes: ['dx'], overwrites: ['dx'], params: { n }, units: chunks(n), cost: cost(n, dx, dy, y) });
}

registerTask<Range>('elementwise.reluBackward', (bufs, q, u0, u1) => {
  const [i0, i1] = range(q, u0, u1);
  const yb = float32Bits(bufs.y as Float32Array), db = float32Bits(bufs.dy as Float32Array), gb = float32Bits(bufs.dx as Float32Array);
  for (let i = i0; i < i1; i++) {
    const b = yb[i]!;
    gb[i] = db[i]! & ((b | -b) >> 31);
  }
});

/** y = a + b (same length); y may be a or b. */
export function addForward(y: Float32Array, a: Float32Array, b: Float32Array): void {
  const n = y.length;
  // In place (y is a or b): y is read too, so a backend that stages buffers must copy it in.
  const overwrites = y === a || y === b ? [] : ['y'];
  parallelFor<Range>({ kernel: 'elementwise.add', bufs: { y, a, b }, writes: ['y'], overwrites, params: { n }, units: chunks(n), cost: cost(n, y, a, b) });
}

registerTask<Range>('elementwise.add', (bufs, q, u0, u1) => {
  const [i0, i1] = range(q, u0, u1);
  const y = bufs.y as Float32Array, a = bufs.a as Float32Array, b = bufs.b as Float32Array;
  for (let i = i0; i < i1; i++) y[i] = a[i]! + b[i]!;
});

// ---- zero fill -----------------------------------------------------------------------------------------------
//
// V8 fills a SharedArrayBuffer element by element: 0.5 ns per float32 through a Float32Array (45 MB: 6 ms while in
// cache), where wasm's memory.fill (bulk memory) is a memset (0.8 ms). A training step's zero-filled buffers lie in
// the resident memory (wasm/optim.ts) and were mostly used just before: they are cleared with memory.fill, from a
// one-function module that imports that memory. (Memory that is not in cache gains nothing: ResNet-18's 11M
// gradients, which zeroGrad(false) clears at a step's start, take 1.6–2.2 ms either way, and on 2 threads too.)

/** `memory.fill(at, 0, bytes)`'s module over the resident memory, once made; null where it cannot be made. */
let zeroModule: { fill: (at: number, bytes: number) => void; mem: Resident['mem'] } | null | undefined;

function residentZero(): typeof zeroModule {
  const r = residentMemory();
  if (r === null || wasm === null) return null;
  if (zeroModule !== undefined && (zeroModule === null || zeroModule.mem === r.mem)) return zeroModule;
  try {
    // (func (param at bytes) memory.fill(at, 0, bytes))
    const body = [memory.fill(local.get(0), i32.const(0), local.get(1))];
    const bytes = encodeModule([{ name: 'fill', params: [ValType.i32, ValType.i32], results: [], locals: [], body }], 1, true);
    const inst = new wasm.Instance(new wasm.Module(bytes), { env: { mem: r.mem } });
    zeroModule = { fill: inst.exports.fill as (at: number, bytes: number) => void, mem: r.mem };
  } catch {
    zeroModule = null; // no bulk memory: the typed array fills below
  }
  return zeroModule;
}

/**
 * d.fill(0): with wasm's memory.fill where d lies in the resident memory, through an 8-byte view where it lies
 * elsewhere in shared memory at an 8-byte boundary (half the element stores), else as it is.
 */
export function zeroFill(d: Float32Array): void {
  if (d.length >= 1024) {
    const at = residentAddress(d), z = at >= 0 ? residentZero() : null;
    if (z) {
      z.fill(at, d.byteLength);
      return;
    }
    if (typeof SharedArrayBuffer === 'function' && d.buffer instanceof SharedArrayBuffer && d.byteOffset % 8 === 0) {
      new BigInt64Array(d.buffer, d.byteOffset, d.length >> 1).fill(0n);
      if (d.length % 2 === 1) d[d.length - 1] = 0;
      return;
    }
  }
  d.fill(0);
}
