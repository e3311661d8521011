import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { nn, withConfig } from '../../src/index.js';
import { isResident, residentBuffer } from '../../src/kernels/optim.js';
import { hasSimd128, setKernelBackend } from '../../src/kernels/wasm/features.js';
import { residentFree, residentMemory } from '../../src/kernels/wasm/optim.js';

// The optimizer's resident memory (src/kernels/wasm/optim.ts) hands out zero-filled regions and takes a region back
// when its Float32Array is collected: the next request of the same size gets it, zero-filled again.
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

describe.runIf(hasSimd128 && typeof SharedArrayBuffer === 'function')('resident memory regions', () => {
  it('a collected region is reused for the same size, zero-filled; live regions never overlap', async () => {
    const old = setKernelBackend('simd');
    try {
      const n = 1001; // not a multiple of 4: the region has padding
      let a: Float32Array | null = residentBuffer(n)!;
      expect(isResident(a)).toBe(true);
      const addr = a.byteOffset;
      a.fill(7);
      a = null;
      let b: Float32Array | null = null;
      for (let round = 0; round < 10 && b === null; round++) {
        gc();
        await new Promise((r) => setTimeout(r, 20)); // the finalization callbacks run in a later task
        const c = residentBuffer(n)!;
        if (c.byteOffset === addr) b = c;
      }
      expect(b, 'the collected region came back').not.toBeNull();
      expect(b!.every((v) => Object.is(v, 0))).toBe(true);
      const other = residentBuffer(n)!;
      expect(other.byteOffset >= addr + 1004 * 4 || other.byteOffset + 1004 * 4 <= addr).toBe(true);
    } finally {
      setKernelBackend(old);
    }
  });

  it('a freed region serves a request of more than half its size, whole; less than half gets a new region', () => {
    const old = setKernelBackend('simd');
    try {
      const n = 40000 + 4 * Math.floor(Math.random() * 1000); // a size no other test frees
      const a = residentBuffer(n)!;
      const addr = a.byteOffset;
      a.fill(5);
      expect(residentFree(a)).toBe(true);
      const small = residentBuffer(n / 2 - 4)!; // less than half: not this region
      expect(small.byteOffset).not.toBe(addr);
      const b = residentBuffer(n / 2 + 4)!;
      expect(b.byteOffset, 'more than half: the freed region').toBe(addr);
      expect(b.every((v) => Object.is(v, 0)), 'zero-filled').toBe(true);
      expect(residentFree(b)).toBe(true);
      const c = residentBuffer(n)!;
      expect(c.byteOffset, 'the region went back whole').toBe(addr);
      expect(c.every((v) => Object.is(v, 0))).toBe(true);
      residentFree(c);
      residentFree(small);
    } finally {
      setKernelBackend(old);
    }
  });

  it('layers put their parameters there (SGD updates them in place), with PyTorch\'s initial values', () => {
    const old = setKernelBackend('simd');
    try {
      const conv = new nn.Conv2d(3, 8, 3), bn = new nn.BatchNorm2d(8), fc = new nn.Linear(8, 10);
      for (const [name, p] of [...conv.namedParameters(), ...bn.namedParameters(), ...fc.namedParameters()]) {
        expect(isResident(p.data), name).toBe(true);
      }
      expect([...bn.weight!.data]).toEqual(Array(8).fill(1));
      expect([...bn.bias!.data]).toEqual(Array(8).fill(0));
      expect(bn.weight!.requiresGrad && bn.bias!.requiresGrad).toBe(true);
    } finally {
      setKernelBackend(old);
    }
  });

  it('past config.residentParamBytes, new parameters lie in ordinary shared memory and the memory does not grow', () => {
    const old = setKernelBackend('simd');
    try {
      residentBuffer(4); // the memory exists
      const mem = residentMemory()!.mem, size = mem.buffer.byteLength;
      const out = 1000 + Math.floor(Math.random() * 1000); // 4–8 MB of weights: a size no freed region serves
      const fc = withConfig({ residentParamBytes: size }, () => new nn.Linear(1024, out));
      expect(isResident(fc.weight.data)).toBe(false);
      expect(fc.weight.data.buffer).toBeInstanceOf(SharedArrayBuffer);
      expect(mem.buffer.byteLength, 'the memory did not grow').toBe(size);
      expect(fc.weight.data.some((v) => v !== 0), 'initialized').toBe(true);
      const conv = withConfig({ residentParamBytes: 0 }, () => new nn.Conv2d(3, 8, 3));
      expect(isResident(conv.weight.data), 'residentParamBytes 0: never').toBe(false);
      const big = withConfig({ residentParamBytes: size + 16 * 2 ** 20 }, () => new nn.Linear(1024, out));
      expect(isResident(big.weight.data), 'within the limit: resident').toBe(true);
    } finally {
      setKernelBackend(old);
    }
  });
});
