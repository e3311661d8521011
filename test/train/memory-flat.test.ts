/**
 * A training loop's memory stays flat: after a warm-up, 180 more SGD steps of a small ResNet-8 leave memory()'s
 * live tensors and bytes and process.memoryUsage().arrayBuffers where they were (after a gc), i.e. nothing of a step
 * (graph, saved tensors, gradients, recycled gradient buffers, momentum state) accumulates.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { manualSeed, memory, models, nn, optim, randn } from '../../src/index.js';


describe('training memory over 200 steps', () => {
  it('memory() and arrayBuffers are flat after the first 20 steps', async () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    manualSeed(1);
    const model = models.cifarResnet(8, { widths: [4, 8, 8] }).train();
    // 16×3×16×16: the first stage's gradients (16·4·16·16 = 16384 elements) go through the gradient-buffer pool.
    const x = randn([16, 3, 16, 16]);
    const target = Array.from({ length: 16 }, (_, i) => i % 10);
    const opt = new optim.SGD(model.parameters(), { lr: 0.01, momentum: 0.9, weightDecay: 5e-4 });
    const steps = (k: number) => {
      for (let i = 0; i < k; i++) {
        opt.zeroGrad();
        nn.functional.crossEntropy(model.forward(x), target).backward();
        opt.step();
      }
    };
    const settle = async () => {
      for (let i = 0; i < 5; i++) {
        gc();
        await new Promise((r) => setTimeout(r, 5));
      }
      return { ...memory(), arrayBuffers: process.memoryUsage().arrayBuffers };
    };
    steps(20);
    const m0 = await settle();
    steps(180);
    const m1 = await settle();
    const what = `after 20 steps ${JSON.stringify(m0)}, after 200 ${JSON.stringify(m1)}`;
    expect(m1.liveTensors - m0.liveTensors, what).toBeLessThanOrEqual(5);
    expect(m1.liveBytes - m0.liveBytes, what).toBeLessThanOrEqual(64 * 1024);
    expect(m1.arrayBuffers - m0.arrayBuffers, what).toBeLessThanOrEqual(256 * 1024);
    // It trained: 200 steps on one batch fit it.
    const loss = nn.functional.crossEntropy(model.forward(x), target).item();
    expect(loss, what).toBeLessThan(1);
  }, 180_000);
});
