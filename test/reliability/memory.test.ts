import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { manualSeed, memory, models, nn, noGrad, optim, randn } from '../../src/index.js';

// V8 frees ArrayBuffer backing stores on a background sweeper after a GC: collect, let it run, collect again.
v8.setFlagsFromString('--expose-gc');
const rawGc = vm.runInNewContext('gc') as () => void;
async function settledArrayBuffers(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    rawGc();
    await new Promise((r) => setTimeout(r, 50));
  }
  return process.memoryUsage().arrayBuffers;
}

describe('memory stays flat (issue 10): arrayBuffers after gc', () => {
  it('200 training steps of ResNet-20 (full width, batch 4 at 16×16) grow by less than one step', async () => {
    manualSeed(0);
    const m = models.resnet20();
    const opt = new optim.SGD(m.parameters(), { lr: 0.01, momentum: 0.9, weightDecay: 1e-4 });
    const x = randn([4, 3, 16, 16]);
    const y = [0, 1, 2, 3];
    const step = (): void => {
      opt.zeroGrad();
      nn.functional.crossEntropy(m.forward(x), y).backward();
      opt.step();
    };
    for (let i = 0; i < 10; i++) step(); // optimizer state, scratch buffers
    const before = await settledArrayBuffers();
    const c0 = memory().createdBytes;
    step();
    const oneStep = memory().createdBytes - c0;
    for (let i = 1; i < 200; i++) step();
    const after = await settledArrayBuffers();
    expect(oneStep).toBeGreaterThan(100_000);
    expect(after - before).toBeLessThanOrEqual(oneStep);
    }, 240_000); // 210 steps: seconds alone, over a minute on a loaded machine

  it('100 ResNet-50 eval forwards (1×3×32×32, fused) grow by less than one forward', async () => {
    manualSeed(1);
    const m = models.resnet50().eval();
    const x = randn([1, 3, 32, 32]);
    const fwd = (): void => void noGrad(() => m.forward(x));
    for (let i = 0; i < 3; i++) fwd();
    const before = await settledArrayBuffers();
    const c0 = memory().createdBytes;
    fwd();
    const oneForward = memory().createdBytes - c0;
    for (let i = 1; i < 100; i++) fwd();
    const after = await settledArrayBuffers();
    expect(oneForward).toBeGreaterThan(10_000);
    expect(after - before).toBeLessThanOrEqual(oneForward);
  });
});
