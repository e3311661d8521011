import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { isResident, residentBuffer } from '../../src/kernels/optim.js';
import { hasSimd128, setKernelBackend } from '../../src/kernels/wasm/features.js';

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
});

describe.runIf(hasSimd128 && typeof SharedArrayBuffer === 'function')('layer parameters in the resident memory', () => {
  it('nn layers allocate their parameters there (SIMD backend), and SGD with momentum updates them in place', async () => {
    const { nn, optim, randn, manualSeed } = await import('../../src/index.js');
    const old = setKernelBackend('simd');
    try {
      manualSeed(3);
      const conv = new nn.Conv2d(3, 4, 3, { padding: 1, bias: true });
      const params = conv.parameters();
      expect(params.every((p) => isResident(p.data))).toBe(true);
      const datas = params.map((p) => p.data);
      const opt = new optim.SGD(params, { lr: 0.1, momentum: 0.9, weightDecay: 1e-4 });
      const x = randn([2, 3, 5, 5]);
      const before: Float32Array[] = [];
      for (let step = 0; step < 3; step++) {
        opt.zeroGrad(false);
        conv.forward(x).sum().backward();
        before.splice(0, before.length, ...params.map((p) => p.data.slice()));
        opt.step();
      }
      // the same arrays, still resident, and changed by the last step
      params.forEach((p, k) => {
        expect(p.data).toBe(datas[k]);
        expect(isResident(p.data) && isResident(p.grad!.data)).toBe(true);
        expect(p.data.some((v, i) => v !== before[k]![i])).toBe(true);
      });
    } finally {
      setKernelBackend(old);
    }
  });
});
