/**
 * withTrainingStep with small feature maps (ResNet-18's last stages at batch 8: 8×256×2×2, 8×512×1×1): a step pools
 * buffers down to 1024 elements, so these too lie in the resident memory, and every batch norm of the step runs in
 * place. The same bits as plain steps, on 1 and 2 threads, and no new memory once warm.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { batchNormInPlaceCalls } from '../../src/kernels/batchnorm-simd.js';
import { isResident } from '../../src/kernels/optim.js';
import { hasSimd128 } from '../../src/kernels/wasm/features.js';
import { residentMemory } from '../../src/kernels/wasm/optim.js';
import { randn, relu, setNumThreads, withConfig, withTrainingStep } from '../../src/index.js';
import { smallResnetStep } from '../helpers/train-step.js';

// A CIFAR ResNet-8 on 16×3×16×16: its stages' maps are 16·4·16·16 = 16384, 16·8·8·8 = 8192 and 16·8·4·4 = 2048
// elements; 7 batch norms.
const setup = () => smallResnetStep({ seed: 3, dataSeed: 4, targetStep: 3, lr: 0.05 });

const simd = <T>(fn: () => T): T => withConfig({ kernelBackend: 'simd', residentSteps: true }, fn);

describe.runIf(hasSimd128 && typeof SharedArrayBuffer === 'function')('a training step with small maps', () => {
  afterAll(() => setNumThreads(1));

  it('a 2048-element tensor made in a step is resident; every batch norm runs in place', () => simd(() => {
    const s = setup();
    s.scoped();
    const small = withTrainingStep({ model: s.model, optimizer: s.opt }, () => relu(randn([16, 8, 4, 4])));
    expect(isResident(small.data), 'a 16×8×4×4 step tensor').toBe(true);
    const before = batchNormInPlaceCalls();
    s.scoped();
    // 7 batch norms: forward and backward each
    expect(batchNormInPlaceCalls() - before, 'batch norm calls in place in one step').toBe(14);
  }));

  it('the same losses and parameters as plain steps on 1 and 2 threads; no growth once warm', () => simd(() => {
    const runs: { losses: number[]; params: Float32Array[] }[] = [];
    for (const [threads, scoped] of [[1, false], [1, true], [2, true]] as const) {
      setNumThreads(threads);
      const s = setup();
      const losses: number[] = [];
      for (let i = 0; i < 4; i++) losses.push(scoped ? s.scoped() : s.body());
      if (scoped) {
        const size = residentMemory()!.mem.buffer.byteLength;
        for (let i = 0; i < 6; i++) losses.push(s.scoped());
        expect(residentMemory()!.mem.buffer.byteLength - size, `growth of the resident memory, ${threads} threads`).toBe(0);
      } else for (let i = 0; i < 6; i++) losses.push(s.body());
      runs.push({ losses, params: s.model.parameters().map((p) => p.data.slice()) });
    }
    for (const r of runs.slice(1)) {
      expect(r.losses).toEqual(runs[0]!.losses);
      r.params.forEach((p, i) => expect(Buffer.from(p.buffer).equals(Buffer.from(runs[0]!.params[i]!.buffer)), `parameter ${i}`).toBe(true));
    }
  }), 120_000);
});
