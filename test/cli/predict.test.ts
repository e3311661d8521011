/**
 * `resnet-ts predict` end to end against torchvision (test/fixtures/gen_predict.py → test/fixtures/predict/).
 *
 * The checkpoint is not committed: the test writes it to a temp dir with our safetensors writer, from the formula
 * weights both sides compute (test/helpers/formula.ts ≡ gen_models.load_formula), with the two changes
 * gen_predict.py makes: fc.weight × 0.125 and a ladder added to five fc.bias entries (see gen_predict.py for why).
 * torchvision preprocesses the committed images with its own transform (PIL) and runs the model in float64; here the
 * predict command runs on the image files and must give the same top-5, probabilities that agree, and a
 * preprocessed tensor within 2/255 of torchvision's before normalization.
 *
 * Exit codes: main.ts maps UsageError to 2 and every other error to 1, so the error cases check the class thrown.
 */

import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { UsageError } from '../../src/cli/args.js';
import { COMMANDS } from '../../src/cli/commands.js';
import { formatPredictions, InputFileError, loadImageTensor, predict, predictCommand, readLabels, type ImagePrediction } from '../../src/cli/predict.js';
import { ResnetTsError, StateDictError } from '../../src/errors.js';
import { decodeImage, ImageDecodeError, toRgb } from '../../src/io/image.js';
import { IMAGENET_CLASSES } from '../../src/io/imagenet-classes.js';
import { centerCrop, IMAGENET_STD, resizeShorter, toFloatCHW } from '../../src/io/preprocess.js';
import { saveSafetensorsFile } from '../../src/io/safetensors-file.js';
import { resnet18, resnet20 } from '../../src/models/index.js';
import { loadFormula } from '../helpers/formula.js';

const FIX = join(import.meta.dirname, '../fixtures/predict');

interface ImageRef {
  file: string;
  width: number;
  height: number;
  resized: [number, number];
  stride: number;
  levels: number[];
  channelMeanLevels: number[];
  normalized: number[];
  logits: number[];
  top5: { indices: number[]; probs: number[] };
  gaps: number[];
}
const REF = JSON.parse(readFileSync(join(FIX, 'predict.json'), 'utf8')) as {
  model: string;
  numClasses: number;
  fcWeightScale: number;
  ladder: [number, number][];
  imagenetClasses: { count: number; sha256: string };
  images: ImageRef[];
};
const imagePath = (r: ImageRef) => join(FIX, r.file);
const JPEG_TOL = 1e-3;
const photo = REF.images.find((r) => r.file.endsWith('.jpg'))!;
const portrait = REF.images.find((r) => r.file.endsWith('.png'))!;

/** softmax of the reference logits in float64: the probabilities torchvision's float64 model gives. */
function refProbs(r: ImageRef): number[] {
  const m = Math.max(...r.logits);
  const e = r.logits.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

/** Largest |Δ| between our probabilities (all classes, from top-k = every class) and the reference, with where. */
function probDiff(pred: ImagePrediction, want: number[]): { max: number; where: number } {
  expect(pred.top.length).toBe(want.length);
  let max = 0;
  let where = -1;
  for (const c of pred.top) {
    const d = Math.abs(c.probability - want[c.index]!);
    if (d > max) [max, where] = [d, c.index];
  }
  return { max, where };
}

let dir: string;
let weights: string; // the formula ResNet-18 of gen_predict.py
let small: string; // a formula resnet20 (CIFAR, 10 classes): cheap to build for the error cases

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'resnet-ts-predict-'));
  const model = resnet18();
  loadFormula(model);
  const sd = model.stateDict();
  const w = sd['fc.weight']!.data;
  for (let i = 0; i < w.length; i++) w[i] = w[i]! * REF.fcWeightScale; // a power of two: exact
  const b = sd['fc.bias']!.data;
  for (const [c, add] of REF.ladder) b[c] = b[c]! + add; // one float32 rounding, as torch's float32 +=
  weights = join(dir, 'resnet18-formula.safetensors');
  saveSafetensorsFile(weights, sd);
  const r20 = resnet20();
  loadFormula(r20);
  small = join(dir, 'resnet20-formula.safetensors');
  saveSafetensorsFile(small, r20.stateDict());
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('ImageNet class names', () => {
  it(`are torchvision's _IMAGENET_CATEGORIES (count and sha256 recorded by gen_predict.py)`, () => {
    expect(IMAGENET_CLASSES.length).toBe(REF.imagenetClasses.count);
    const sha = createHash('sha256').update(IMAGENET_CLASSES.join('\n'), 'utf8').digest('hex');
    expect(sha).toBe(REF.imagenetClasses.sha256);
    expect([IMAGENET_CLASSES[0], IMAGENET_CLASSES[281], IMAGENET_CLASSES[999]]).toEqual(['tench', 'tabby', 'toilet tissue']);
  });
});

describe('preprocessing = torchvision Resize(256) → CenterCrop(224) → ToTensor → Normalize on PIL', () => {
  for (const r of REF.images) {
    it(`${r.file} (${r.width}x${r.height}): within 2/255 before normalization, at ${r.levels.length} samples`, () => {
      const img = toRgb(decodeImage(readFileSync(imagePath(r))));
      expect([img.width, img.height]).toEqual([r.width, r.height]);
      const resized = resizeShorter(img, 256);
      expect([resized.width, resized.height]).toEqual(r.resized);
      const x = toFloatCHW(centerCrop(resized, 224)).data; // [0, 1], no normalization
      let worst = 0;
      let at = -1;
      let differ = 0;
      r.levels.forEach((want, j) => {
        const d = Math.abs(x[j * r.stride]! * 255 - want);
        if (d > 1e-3) differ++;
        if (d > worst) [worst, at] = [d, j * r.stride];
      });
      const msg = `${differ}/${r.levels.length} samples differ; worst at flat index ${at}: ${worst.toFixed(3)} levels`;
      expect(worst, msg).toBeLessThanOrEqual(2 + 1e-3);
      // PNG decoding and the resize are exact (Pillow's arithmetic): every sample must agree exactly.
      if (r.file.endsWith('.png')) expect(worst, msg).toBeLessThan(1e-3);
      const plane = 224 * 224;
      for (let c = 0; c < 3; c++) {
        let s = 0;
        for (let i = 0; i < plane; i++) s += x[c * plane + i]! * 255;
        expect(Math.abs(s / plane - r.channelMeanLevels[c]!), `channel ${c} mean`).toBeLessThan(0.25);
      }
    });

    it(`${r.file}: loadImageTensor (what predict feeds the model) is normalized within (2/255)/std`, () => {
      const x = loadImageTensor(imagePath(r));
      expect(x.length).toBe(3 * 224 * 224);
      const step = 4 * r.stride;
      r.normalized.forEach((want, j) => {
        const i = j * step;
        const tol = 2 / 255 / IMAGENET_STD[Math.floor(i / (224 * 224))]! + 1e-5;
        expect(Math.abs(x[i]! - want), `flat index ${i}: ${x[i]} vs ${want}`).toBeLessThanOrEqual(tol);
      });
    });
  }
});

describe('predict: the formula ResNet-18 on both images in one batch', () => {
  let preds: ImagePrediction[];
  beforeAll(() => {
    // topk = every class: the whole probability vector, sorted
    preds = predict({ model: 'resnet18', weights, images: [imagePath(photo), imagePath(portrait)], topk: 1000 });
  });

  it('same top-5 indices as torchvision, in the same order, with its margins', () => {
    for (const [k, r] of [photo, portrait].entries()) {
      expect(preds[k]!.image).toBe(imagePath(r));
      expect(preds[k]!.top.slice(0, 5).map((c) => c.index)).toEqual(r.top5.indices);
      expect(Math.min(...r.gaps)).toBeGreaterThan(0.3); // the fixture's top-6 logits are well apart
    }
    expect(preds[0]!.top.slice(0, 5).map((c) => c.label)).toEqual(photo.top5.indices.map((i) => IMAGENET_CLASSES[i]));
  });

  it('portrait.png (exact preprocessing): all 1000 probabilities within 2e-6 of torchvision float64', () => {
    const d = probDiff(preds[1]!, refProbs(portrait));
    expect(d.max, `worst at class ${d.where}`).toBeLessThan(2e-6);
  });

  // Our JPEG decoder gives Pillow's pixels here (0 of the sampled levels differ), so the difference is ~1e-7; the
  // tolerance allows what the decoder spec allows: ±2 levels of noise on every pixel moved torch's probabilities by
  // up to 3.9e-4 (gen_predict.py model, two noise draws).
  it(`photo.jpg: all 1000 probabilities within ${JPEG_TOL} of torchvision float64`, () => {
    const d = probDiff(preds[0]!, refProbs(photo));
    expect(d.max, `worst at class ${d.where}`).toBeLessThan(JPEG_TOL);
  });

  it('each image gets its own result: the two reference vectors differ by far more than the tolerance', () => {
    const a = refProbs(photo);
    const b = refProbs(portrait);
    const apart = Math.max(...a.map((v, i) => Math.abs(v - b[i]!)));
    expect(apart).toBeGreaterThan(3 * JPEG_TOL); // so a swapped batch cannot pass the checks above
    // and ours are not swapped: each is closer to its own reference than to the other's
    expect(probDiff(preds[0]!, a).max).toBeLessThan(probDiff(preds[0]!, b).max);
    expect(probDiff(preds[1]!, b).max).toBeLessThan(probDiff(preds[1]!, a).max);
  });

  it('probabilities are sorted and sum to 1', () => {
    for (const p of preds) {
      const probs = p.top.map((c) => c.probability);
      expect(probs.every((v, i) => i === 0 || v <= probs[i - 1]!)).toBe(true);
      expect(Math.abs(probs.reduce((a, b) => a + b, 0) - 1)).toBeLessThan(1e-5);
    }
  });

  it('the text output lists rank, percent, label and index', () => {
    const text = formatPredictions([{ image: 'a.jpg', top: preds[0]!.top.slice(0, 2) }]);
    const [p0, p1] = [preds[0]!.top[0]!, preds[0]!.top[1]!];
    expect(text).toBe(
      `a.jpg\n   1. ${(100 * p0.probability).toFixed(2).padStart(6)}%  ${p0.label} [${p0.index}]\n` +
        `   2. ${(100 * p1.probability).toFixed(2).padStart(6)}%  ${p1.label} [${p1.index}]`,
    );
  });
});

/** Runs the command as main.ts does and captures stdout; the exit code main.ts would return for a throw. */
async function runCli(argv: string[]): Promise<{ code: number; out: string; error?: Error }> {
  const lines: string[] = [];
  const spy = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void lines.push(a.join(' ')));
  try {
    await COMMANDS.predict!.run(argv);
    return { code: 0, out: lines.join('\n') };
  } catch (e) {
    const code = e instanceof UsageError ? 2 : 1;
    return { code, out: lines.join('\n'), error: e as Error };
  } finally {
    spy.mockRestore();
  }
}

describe('the predict command (argv → stdout)', () => {
  it('is registered', () => {
    expect(COMMANDS.predict).toBe(predictCommand);
    expect(predictCommand.help).toMatch(/--weights FILE/);
  });

  it('--json --topk 3 --labels FILE --batch-size 1: the same classes, our label names, one forward per image', async () => {
    const labels = join(dir, 'labels.txt');
    writeFileSync(labels, `${Array.from({ length: 1000 }, (_, i) => `my class ${i}`).join('\r\n')}\r\n`);
    const r = await runCli(['--model', 'resnet18', '--weights', weights, '--json', '--topk', '3', '--labels', labels, '--batch-size', '1', imagePath(portrait), imagePath(photo)]);
    expect(r.error).toBeUndefined();
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as { model: string; predictions: ImagePrediction[] };
    expect(j.model).toBe('resnet18');
    expect(j.predictions.map((p) => p.image)).toEqual([imagePath(portrait), imagePath(photo)]);
    for (const [k, ref] of [portrait, photo].entries()) {
      const top = j.predictions[k]!.top;
      expect(top.map((c) => c.index)).toEqual(ref.top5.indices.slice(0, 3));
      expect(top.map((c) => c.label)).toEqual(ref.top5.indices.slice(0, 3).map((i) => `my class ${i}`));
      top.forEach((c, i) => expect(Math.abs(c.probability - ref.top5.probs[i]!)).toBeLessThan(JPEG_TOL));
    }
  });

  it('usage errors (exit 2): missing flags, no image, unknown model with the list, bad --topk', async () => {
    const cases: [string[], RegExp][] = [
      [['--weights', weights, 'a.jpg'], /missing --model/],
      [['--model', 'resnet18', 'a.jpg'], /missing --weights/],
      [['--model', 'resnet20', '--weights', small], /missing IMAGE/],
      [['--model', 'resnet19', '--weights', small, 'a.jpg'], /unknown model 'resnet19'[^]*resnet18, resnet34, resnet50/],
      [['--model', 'resnet20', '--weights', small, '--topk', '0', 'a.jpg'], /--topk must be an integer ≥ 1, got '0'/],
      [['--model', 'resnet20', '--weights', small, '--topk', '11', imagePath(photo)], /--topk 11 is more than the model's 10 classes/],
      [['--model', 'resnet20', '--weights', small, '--frobnicate', 'a.jpg'], /frobnicate/],
    ];
    for (const [argv, msg] of cases) {
      const r = await runCli(argv);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.error!.message).toMatch(msg);
    }
  });

  it('missing files (exit 1) name their role and path', async () => {
    const missing = join(dir, 'nope.jpg');
    const cases: [string[], RegExp][] = [
      [['--model', 'resnet20', '--weights', join(dir, 'nope.safetensors'), imagePath(photo)], /^\[weights\] no such file: .*nope\.safetensors$/],
      [['--model', 'resnet20', '--weights', small, imagePath(photo), missing], /^\[image\] no such file: .*nope\.jpg$/],
      [['--model', 'resnet20', '--weights', small, dir], /^\[image\] not a file: /],
      [['--model', 'resnet20', '--weights', small, '--labels', join(dir, 'nope.txt'), imagePath(photo)], /^\[labels\] no such file: .*nope\.txt$/],
    ];
    for (const [argv, msg] of cases) {
      const r = await runCli(argv);
      expect(r.code, argv.join(' ')).toBe(1);
      expect(r.error).toBeInstanceOf(InputFileError);
      expect(r.error!.message).toMatch(msg);
    }
  });

  it('a labels file with the wrong number of lines (exit 1) says how many and hints --num-classes', async () => {
    const labels = join(dir, 'three.txt');
    writeFileSync(labels, 'cat\ndog\nbird\n');
    const r = await runCli(['--model', 'resnet20', '--weights', small, '--labels', labels, imagePath(photo)]);
    expect(r.code).toBe(1);
    expect(r.error!.message).toMatch(/three\.txt has 3 lines but the model has 10 classes.*pass --num-classes 3/);
    expect(() => readLabels(labels, 4)).toThrow(/has 3 lines but the model has 4 classes; give one class name per line$/);
    expect(readLabels(labels, 3)).toEqual(['cat', 'dog', 'bird']);
  });

  it('a checkpoint that does not fit (exit 1): the StateDictError with keys and shapes', async () => {
    // resnet32 has more blocks than the resnet20 checkpoint: missing keys, by name
    const deeper = await runCli(['--model', 'resnet32', '--weights', small, imagePath(photo)]);
    expect(deeper.code).toBe(1);
    expect(deeper.error).toBeInstanceOf(StateDictError);
    expect(deeper.error!.message).toMatch(/Missing key\(s\) in state_dict: "layer1\.3\.conv1\.weight"/);
    // only the classifier differs: the size mismatch, and the --num-classes the checkpoint needs
    const wide = await runCli(['--model', 'resnet20', '--weights', small, '--num-classes', '100', imagePath(photo)]);
    expect(wide.code).toBe(1);
    expect(wide.error).toBeInstanceOf(StateDictError);
    expect(wide.error!.message).toMatch(/size mismatch for fc\.weight: copying a param with shape \[10, 64\] from checkpoint, the shape in current model is \[100, 64\]/);
    expect(wide.error!.message).toMatch(/classifier fc has 10 outputs: pass --num-classes 10\)$/);
    // not a safetensors file at all
    const notSt = await runCli(['--model', 'resnet20', '--weights', imagePath(portrait), imagePath(photo)]);
    expect(notSt.code).toBe(1);
    expect(notSt.error!.message).toMatch(/^\[safetensors\] \w+: .*portrait\.png: /);
  });

  it('an image that cannot be decoded (exit 1): the file, the format and the decoder\'s part', async () => {
    const truncated = join(dir, 'truncated.jpg');
    writeFileSync(truncated, readFileSync(imagePath(photo)).subarray(0, 600));
    const text = join(dir, 'notes.txt');
    writeFileSync(text, 'not an image\n');
    for (const [file, msg] of [
      [truncated, /^\[jpeg\] .*truncated\.jpg: \S/],
      [text, /^\[image\] .*notes\.txt: unknown format at byte 0/],
    ] as const) {
      const r = await runCli(['--model', 'resnet20', '--weights', small, imagePath(portrait), file]);
      expect(r.code, file).toBe(1);
      expect(r.error).toBeInstanceOf(ImageDecodeError);
      expect(r.error).toBeInstanceOf(ResnetTsError);
      expect(r.error!.message).toMatch(msg);
    }
  });
});
