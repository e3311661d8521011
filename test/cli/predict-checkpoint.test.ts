import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { predict } from '../../src/cli/predict.js';
import { saveSafetensorsFile } from '../../src/io/safetensors-file.js';
import { resnet20 } from '../../src/models/cifar.js';
import { manualSeed } from '../../src/random.js';
import { Tensor, zeros } from '../../src/tensor.js';

const here = dirname(fileURLToPath(import.meta.url));
const photo = join(here, '../fixtures/predict/photo.jpg');
const dir = mkdtempSync(join(tmpdir(), 'resnet-ts-predict-ckpt-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('predict accepts a resnet-ts train checkpoint (model under "model.", optimizer state beside it)', () => {
  it('gives the same classes as the plain state dict', () => {
    manualSeed(3);
    const m = resnet20({ numClasses: 10 });
    const plain = join(dir, 'model.safetensors');
    const ckpt = join(dir, 'checkpoint.safetensors');
    saveSafetensorsFile(plain, m.stateDict());
    const both: Record<string, Tensor> = { 'optimizer.state.0.momentum_buffer': zeros([16, 3, 3, 3]) };
    for (const [k, t] of Object.entries(m.stateDict())) both[`model.${k}`] = t;
    saveSafetensorsFile(ckpt, both, { format: 'resnet-ts-checkpoint-v1' });
    const a = predict({ model: 'resnet20', weights: plain, images: [photo], numClasses: 10, topk: 10 });
    const b = predict({ model: 'resnet20', weights: ckpt, images: [photo], numClasses: 10, topk: 10 });
    expect(b).toEqual(a);
    expect(a[0]!.top.length).toBe(10);
  });
});
