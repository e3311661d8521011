/**
 * On the SIMD backend a training step's buffers live in the resident shared wasm memory (kernels/wasm/optim.ts), where
 * the batch norm runs on them in place. One ArrayBuffer then holds every tensor of the step, so what outlives a step
 * is told apart by memory range, not by ArrayBuffer: the step's other buffers still go back to the pool, a region
 * that a kept view (even a subarray) points into is never handed out again while that view lives, and the resident
 * memory does not grow from step to step.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { arenaNewBytes } from '../../src/fusion/arena.js';
import { isResident, residentBuffer } from '../../src/kernels/optim.js';
import { hasSimd128 } from '../../src/kernels/wasm/features.js';
import { residentMemory } from '../../src/kernels/wasm/optim.js';
import { manualSeed, models, nn, optim, randn, relu, withConfig, withTrainingStep } from '../../src/index.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** Collects garbage and lets the finalization callbacks run (they hand collected regions back for reuse). */
async function settle(): Promise<void> {
  for (let i = 0; i < 4; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 10));
  }
}

// A small CIFAR ResNet-8 on 16×3×16×16: its first stage's tensors (16·4·16·16 = 16384 elements) are large enough
// for the arena (config.arenaMinLength).
function setup(seed = 1) {
  manualSeed(seed);
  const model = models.cifarResnet(8, { widths: [4, 8, 8] }).train();
  const x = randn([16, 3, 16, 16]);
  const target = Array.from({ length: 16 }, (_, i) => i % 10);
  const opt = new optim.SGD(model.parameters(), { lr: 0.01, momentum: 0.9, weightDecay: 5e-4 });
  const body = (): number => {
    opt.zeroGrad(false);
    const loss = nn.functional.crossEntropy(model.forward(x), target);
    loss.backward();
    opt.step();
    return loss.item();
  };
  return { model, opt, body, scoped: () => withTrainingStep({ model, optimizer: opt }, body) };
}

const simd = <T>(fn: () => T): T => withConfig({ kernelBackend: 'simd' }, fn);

describe.runIf(hasSimd128 && typeof SharedArrayBuffer === 'function')('a training step in the resident memory', () => {
  it('its activations are resident; the same bits as plain steps; no new buffers and no growth once warm', () => simd(() => {
    const plain = setup(), s = setup();
    const lp = [plain.body(), plain.body()];
    const out = withTrainingStep({ model: s.model, optimizer: s.opt }, () => ({ loss: s.body(), act: relu(randn([16, 4, 16, 16])) }));
    expect(isResident(out.act.data), 'a step tensor lies in the resident memory').toBe(true);
    const ls = [out.loss, s.scoped()];
    expect(ls).toEqual(lp);
    const made = arenaNewBytes(), size = residentMemory()!.mem.buffer.byteLength;
    for (let i = 0; i < 20; i++) s.scoped();
    expect(arenaNewBytes() - made, 'bytes of new buffers in 20 warm steps').toBe(0);
    expect(residentMemory()!.mem.buffer.byteLength - size, 'growth of the resident memory in 20 warm steps').toBe(0);
  }));

  it('a region a kept subarray points into is not handed out again, and the step\'s other buffers are reused', async () => {
    const s = setup(2);
    s.scoped();
    const n = 16 * 4 * 16 * 16;
    // keep only a subarray of a step tensor's data: the tensor and its own Float32Array become garbage
    let kept: { part: Float32Array } | null = simd(() => withTrainingStep({ model: s.model, optimizer: s.opt }, () => {
      s.body();
      const t = relu(randn([16, 4, 16, 16]));
      t.data.fill(3);
      return { part: t.data.subarray(100, 200) };
    }));
    expect(isResident(kept.part)).toBe(true);
    simd(() => s.scoped()); // (makes a buffer in place of the kept one)
    const made = arenaNewBytes();
    for (let i = 0; i < 3; i++) simd(() => s.scoped());
    expect(arenaNewBytes() - made, 'the steps after reuse every other buffer').toBe(0);
    await settle();
    // fresh regions of the same size: a freed region would come back zero-filled, and then be overwritten
    const fresh = simd(() => Array.from({ length: 6 }, () => residentBuffer(n)!));
    for (const f of fresh) f.fill(-1);
    for (let i = 0; i < 3; i++) simd(() => s.scoped());
    expect(kept.part.every((v) => v === 3), 'the kept subarray still reads what was written').toBe(true);
    const start = kept.part.byteOffset;
    expect(fresh.some((f) => f.byteOffset <= start && start < f.byteOffset + f.byteLength)).toBe(false);
    // once the subarray is gone too, its tensor's region is free for the next request of that size
    const region = start - 100 * 4;
    kept = null;
    fresh.length = 0;
    await settle();
    const again = simd(() => Array.from({ length: 8 }, () => residentBuffer(n)!));
    expect(again.some((f) => f.byteOffset === region), 'the region came back').toBe(true);
  });
});
