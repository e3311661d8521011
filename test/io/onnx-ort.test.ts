/**
 * Our ONNX exports run in onnxruntime-web (its wasm build, in Node) and give our logits within 1e-4·max|y|, at
 * batch 1 and 3 through the dynamic batch dim: every torchvision factory, the CIFAR nets and the pre-activation
 * nets. The Bottleneck factories are built with a quarter of their widthPerGroup (wide_resnet101_2 is 127M parameters
 * at full width; the structure — groups, depths, strides, dilation — is the factory's), numClasses 10, at 32×32.
 * Our export and PyTorch's export of the same weights (gen_onnx.py, formula weights) give the same outputs in it.
 */
import { afterAll, describe, it } from 'vitest';
import { noGrad } from '../../src/autograd.js';
import { exportOnnx } from '../../src/io/onnx.js';
import * as M from '../../src/models/index.js';
import type { Module } from '../../src/nn/module.js';
import { manualSeed } from '../../src/random.js';
import { formulaInput, loadFormula } from '../helpers/formula.js';
import { expectClose, MANIFEST, ortRun, ortSession, rebuildPytorchFixture } from '../helpers/onnx.js';

const timings: string[] = [];
afterAll(() => console.log(`onnxruntime-web timings (ms: export, session, runs):\n  ${timings.join('\n  ')}`));

/** Exports m, runs it in onnxruntime-web at batch 1 and 3, compares with our eval forward. */
async function check(name: string, m: Module, chw: [number, number, number], opts: { opset?: number; foldBatchNorm?: boolean } = {}): Promise<void> {
  m.eval();
  const t0 = performance.now();
  const bytes = exportOnnx(m, { inputShape: [1, ...chw], ...opts });
  const t1 = performance.now();
  const s = await ortSession(bytes);
  const t2 = performance.now();
  for (const n of [1, 3]) {
    const x = formulaInput([n, ...chw]);
    const ours = noGrad(() => m.forward(x));
    const theirs = await ortRun(s, x);
    if (theirs.dims.join() !== ours.shape.join()) throw new Error(`${name}: onnxruntime gave dims [${theirs.dims}], we [${ours.shape}]`);
    expectClose(theirs.data, ours.data, `${name} batch ${n}: onnxruntime vs ours`);
  }
  await s.release();
  timings.push(`${name}: ${(t1 - t0).toFixed(0)}, ${(t2 - t1).toFixed(0)}, ${(performance.now() - t2).toFixed(0)} (${(bytes.length / 1e6).toFixed(1)} MB)`);
}

const QUARTER: Record<string, number> = { resnet50: 16, resnet101: 16, resnet152: 16, resnext50_32x4d: 1, resnext101_32x8d: 2, resnext101_64x4d: 1, wide_resnet50_2: 32, wide_resnet101_2: 32 };

describe('onnxruntime-web runs our exports (batch 1 and 3, dynamic batch)', () => {
  for (const name of Object.keys(M.RESNETS) as (keyof typeof M.RESNETS)[]) {
    const wpg = QUARTER[name];
    it(`${name}${wpg ? ` (widthPerGroup ${wpg})` : ''} at 3×32×32`, async () => {
      manualSeed(1);
      await check(name, M[name]({ numClasses: 10, ...(wpg ? { widthPerGroup: wpg } : {}) }), [3, 32, 32]);
    });
  }
  it('resnet50 with replaceStrideWithDilation [false, true, true] (dilation 2 and 4), widthPerGroup 16', async () => {
    manualSeed(2);
    await check('resnet50 dilated', M.resnet50({ numClasses: 10, widthPerGroup: 16, replaceStrideWithDilation: [false, true, true] }), [3, 32, 32]);
  });
  it('resnet20 (option-A shortcuts: Slice + Pad), formula weights', async () => {
    const m = M.resnet20();
    loadFormula(m);
    await check('resnet20', m, [3, 32, 32]);
  });
  it('resnet20 at opsets 11 and 13, and with BatchNorm folded', async () => {
    const m = M.resnet20();
    loadFormula(m);
    await check('resnet20 opset 11', m, [3, 32, 32], { opset: 11 });
    await check('resnet20 opset 13 folded', m, [3, 32, 32], { opset: 13, foldBatchNorm: true });
  });
  it('resnet20 with option-B shortcuts, 1 input channel at 28×28', async () => {
    manualSeed(3);
    await check('resnet20 B 1ch', M.resnet20({ shortcut: 'B', inChannels: 1 }), [1, 28, 28]);
  });
  it('plain20', async () => {
    const m = M.plain20();
    loadFormula(m);
    await check('plain20', m, [3, 32, 32]);
  });
  it('preactResnet110', async () => {
    const m = M.preactResnet110();
    loadFormula(m);
    await check('preactResnet110', m, [3, 32, 32]);
  });
  it('preactResnet18 and preactResnet164 (pre-activation bottleneck)', async () => {
    manualSeed(4);
    await check('preactResnet18', M.preactResnet18({ numClasses: 10 }), [3, 32, 32]);
    await check('preactResnet164', M.preactResnet164(), [3, 32, 32]);
  });
});

describe("our export and PyTorch's export of the same weights give the same outputs in onnxruntime-web", () => {
  for (const [key, make] of [['tv_resnet18_op17', () => M.resnet18()], ['cifar_resnet20_op13', () => M.resnet20()]] as const) {
    it(key, async () => {
      const m = make().eval();
      loadFormula(m);
      const f = MANIFEST.files[key]!;
      const shape = MANIFEST.models[f.model]!.input;
      const x = formulaInput(shape);
      const theirs = await ortSession(rebuildPytorchFixture(key, m));
      const ours = await ortSession(exportOnnx(m, { inputShape: shape, opset: f.opset }));
      const a = await ortRun(theirs, x);
      const b = await ortRun(ours, x);
      expectClose(b.data, a.data, `${key}: our export vs PyTorch's, both in onnxruntime`);
      // and both give PyTorch's float64 logits
      expectClose(a.data, MANIFEST.models[f.model]!.logits.data, `${key}: PyTorch's export in onnxruntime vs PyTorch`);
      await theirs.release();
      await ours.release();
    });
  }
});
