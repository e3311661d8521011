// The image-folder workflow end to end on a tiny synthetic export: export-images → train on 5 classes → fine-tune
// on the other 5 with the backbone frozen → predict prints the saved class names.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classFolder, exportImages } from '../../src/cli/export-images.js';
import { formatPredictions, predict } from '../../src/cli/predict.js';
import { parseTrainArgs, runTraining } from '../../src/cli/train.js';
import { syntheticDataset } from '../../src/data/dataset.js';
import { StateDictError } from '../../src/errors.js';
import { decodePng } from '../../src/io/png.js';
import { loadSafetensorsFile, readSafetensorsMetadataFile, saveSafetensorsFile } from '../../src/io/safetensors-file.js';
import { removeCompiledLoaderWorkers, useCompiledLoaderWorkers } from '../data/loader-scripts.js';

let dir: string;
beforeAll(() => {
  useCompiledLoaderWorkers();
  dir = mkdtempSync(join(tmpdir(), 'resnet-ts-finetune-'));
}, 60_000); // transpiling the worker's modules takes seconds on a loaded machine
afterAll(() => {
  removeCompiledLoaderWorkers();
  rmSync(dir, { recursive: true, force: true });
});

const small = { quiet: true, log: () => {} };

describe('export-images', () => {
  it('writes ImageFolder PNGs that decode to the dataset bytes (HWC), class folders in label order', () => {
    const out = join(dir, 'syn');
    const n = exportImages({ dataset: 'synthetic', out, perClass: 3, splits: ['train'] });
    expect(n).toEqual({ train: 30 });
    const folders = readdirSync(join(out, 'train'));
    expect(folders).toEqual(Array.from({ length: 10 }, (_, i) => classFolder(i, 10, undefined)));
    const ds = syntheticDataset({ n: 600, channels: 3, size: 32, numClasses: 10, seed: 0 });
    const file = readdirSync(join(out, 'train', folders[4]!))[0]!;
    const i = Number(file.slice(0, 5));
    expect(ds.labels[i]).toBe(4);
    const img = decodePng(readFileSync(join(out, 'train', folders[4]!, file)));
    const plane = 32 * 32;
    const hwc = new Uint8Array(3 * plane);
    for (let k = 0; k < plane; k++) for (let c = 0; c < 3; c++) hwc[k * 3 + c] = ds.images[i * 3 * plane + c * plane + k]!;
    expect([img.width, img.height, img.channels]).toEqual([32, 32, 3]);
    expect(Buffer.from(img.data).equals(Buffer.from(hwc))).toBe(true);
    expect(classFolder(0, 10, 'T-shirt/top')).toBe('0_T-shirt_top');
  });
});

describe('train on an image folder, then fine-tune with a frozen backbone', () => {
  it('saves class names; fine-tuning keeps the backbone, replaces fc; predict prints the names', () => {
    exportImages({ dataset: 'synthetic', out: join(dir, 'a'), classes: [0, 1, 2, 3, 4], perClass: 6, splits: ['train'] });
    exportImages({ dataset: 'synthetic', out: join(dir, 'b'), classes: [5, 6, 7, 8, 9], perClass: 6, splits: ['train'] });
    const run1 = join(dir, 'run1');
    const args1 = parseTrainArgs(['--model', 'resnet20', '--data', join(dir, 'a', 'train'), '--image-size', '16', '--epochs', '1',
      '--batch-size', '8', '--out', run1, '--val-split', '0.2', '--workers', '1', '--threads', '1']);
    const r1 = runTraining({ ...args1, ...small });
    expect(r1.testAccuracy).toBeGreaterThanOrEqual(0);
    const meta1 = readSafetensorsMetadataFile(join(run1, 'model.safetensors'));
    expect(JSON.parse(meta1.classes!)).toEqual(['0', '1', '2', '3', '4']);
    expect(meta1.imageSize).toBe('16');

    const run2 = join(dir, 'run2');
    const args2 = parseTrainArgs(['--model', 'resnet20', '--data', join(dir, 'b', 'train'), '--image-size', '16', '--epochs', '1',
      '--batch-size', '8', '--out', run2, '--weights', join(run1, 'model.safetensors'), '--freeze-backbone', '--num-classes', '5', '--workers', '0', '--threads', '1']);
    runTraining({ ...args2, ...small });
    const before = loadSafetensorsFile(join(run1, 'model.safetensors'));
    const after = loadSafetensorsFile(join(run2, 'model.safetensors'));
    expect(JSON.parse(readSafetensorsMetadataFile(join(run2, 'model.safetensors')).classes!)).toEqual(['5', '6', '7', '8', '9']);
    expect(Array.from(after['conv1.weight']!.data)).toEqual(Array.from(before['conv1.weight']!.data));
    expect(Array.from(after['layer3.1.conv2.weight']!.data)).toEqual(Array.from(before['layer3.1.conv2.weight']!.data));
    expect(Array.from(after['fc.weight']!.data)).not.toEqual(Array.from(before['fc.weight']!.data));

    const img = join(dir, 'b', 'train', '7', readdirSync(join(dir, 'b', 'train', '7'))[0]!);
    const preds = predict({ model: 'resnet20', weights: join(run2, 'model.safetensors'), images: [img], topk: 5 });
    expect(preds[0]!.top.map((c) => c.label).sort()).toEqual(['5', '6', '7', '8', '9']);
    expect(formatPredictions(preds)).toMatch(/% {2}[5-9] \[\d\]/);
  }, 60_000);

  it('--weights is strict except the classifier: a missing backbone key is a StateDictError naming it', () => {
    const sd = loadSafetensorsFile(join(dir, 'run1', 'model.safetensors'));
    delete sd['layer2.0.bn1.weight'];
    const broken = join(dir, 'broken.safetensors');
    saveSafetensorsFile(broken, sd);
    const args = parseTrainArgs(['--model', 'resnet20', '--data', join(dir, 'b', 'train'), '--image-size', '16', '--epochs', '1',
      '--batch-size', '8', '--out', join(dir, 'run3'), '--weights', broken, '--workers', '0', '--threads', '1']);
    expect(() => runTraining({ ...args, ...small })).toThrow(StateDictError);
    expect(() => runTraining({ ...args, ...small })).toThrow(/missing key\(s\): layer2\.0\.bn1\.weight/);
  });

  it('--num-classes that does not match the folder, --freeze-backbone without --weights: usage errors', () => {
    const args = parseTrainArgs(['--model', 'resnet20', '--data', join(dir, 'b', 'train'), '--num-classes', '7', '--out', join(dir, 'run4')]);
    expect(() => runTraining({ ...args, ...small })).toThrow(/--num-classes 7 but the data has 5 classes \(5, 6, 7, 8, 9\)/);
    expect(() => parseTrainArgs(['--data', join(dir, 'b', 'train'), '--freeze-backbone'])).toThrow(/--freeze-backbone needs --weights/);
  });
});
