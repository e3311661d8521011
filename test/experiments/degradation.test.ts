import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FULL, parseDegradationArgs, PAPER_WIDTHS, QUICK, runDegradation, summarize } from '../../src/cli/degradation.js';
import { syntheticDataset, type Dataset } from '../../src/data/dataset.js';
import { degradation, downsampleDataset, type DegradationResult } from '../../src/experiments/degradation.js';
import { degradationFigures } from '../../src/experiments/figures.js';
import { cifarResnet } from '../../src/models/cifar.js';
import { manualSeed } from '../../src/random.js';
import { findAll, parseXml } from './xml.js';

const train = syntheticDataset({ n: 96, channels: 1, size: 8, numClasses: 4, seed: 1 });
const test = syntheticDataset({ n: 40, channels: 1, size: 8, numClasses: 4, seed: 2 });
const tiny = () => degradation({
  train, test, mean: [0.5], std: [0.5], dataName: 'synthetic', depths: [8, 14], widths: [2, 4, 4],
  iterations: 10, batchSize: 16, evalEvery: 5, probeImages: 8, trainEvalImages: 32, seed: 7,
});
const result: DegradationResult = tiny();

/** The result without wall times (which differ between runs). */
const timeless = (r: DegradationResult): unknown => JSON.parse(JSON.stringify(r, (k, v) => (k === 'seconds' ? 0 : v)));

describe('degradation (tiny setting: depths 8 and 14, widths 2,4,4, 8×8 synthetic images, 10 iterations)', () => {
  it('trains plain and residual nets at each depth, in a fixed order', () => {
    expect(result.experiment).toBe('degradation');
    expect(result.nets.map((n) => n.name)).toEqual(['plain-8', 'plain-14', 'resnet-8', 'resnet-14']);
    expect(result.nets.map((n) => [n.depth, n.residual])).toEqual([[8, false], [14, false], [8, true], [14, true]]);
    // option-A shortcuts have no parameters: plain-n and ResNet-n have the same parameter count
    expect(result.nets[0]!.params).toBe(result.nets[2]!.params);
    expect(result.nets[1]!.params).toBeGreaterThan(result.nets[0]!.params);
  });

  it('records the setting', () => {
    const s = result.setting;
    expect(s).toMatchObject({
      data: 'synthetic', channels: 1, imageSize: [8, 8], numClasses: 4, trainImages: 96, testImages: 40, trainEvalImages: 32, probeImages: 8,
      depths: [8, 14], widths: [2, 4, 4], iterations: 10, batchSize: 16, lr: 0.1, momentum: 0.9, weightDecay: 1e-4, schedule: 'paper',
      milestones: [5, 8], seed: 7, evalEvery: 5, augment: false,
    });
    expect(s.epochs).toBeCloseTo(10 / 6, 12); // 96 images / 16 = 6 steps per epoch
  });

  it('has a curve point every evalEvery iterations with errors in [0, 1] and the paper-style lr steps', () => {
    for (const n of result.nets) {
      expect(n.curve.map((p) => p.iteration)).toEqual([5, 10]);
      for (const p of n.curve) {
        for (const e of [p.trainError, p.testError]) expect(e >= 0 && e <= 1).toBe(true);
        expect(p.trainLoss).toBeGreaterThan(0);
        expect(p.testLoss).toBeGreaterThan(0);
      }
      // iteration 4 (the 5th) runs at 0.1; iteration 9 is past both milestones (5, 8): 0.1 / 100
      expect(n.curve[0]!.lr).toBeCloseTo(0.1, 12);
      expect(n.curve[1]!.lr).toBeCloseTo(0.001, 12);
      // errors are multiples of 1/40 on the 40 test images
      for (const p of n.curve) expect(Math.abs(p.testError * 40 - Math.round(p.testError * 40))).toBeLessThan(1e-9);
      expect(n.final.testError).toBe(n.curve[1]!.testError);
      expect(n.final.trainError).toBe(n.curve[1]!.trainError);
      expect(Math.abs(n.final.trainEvalError * 32 - Math.round(n.final.trainEvalError * 32))).toBeLessThan(1e-9);
    }
  });

  it('has one gradient norm per weighted layer (depth of them) at init and after training, and one response std per unit', () => {
    for (const n of result.nets) {
      const g = n.gradNorms;
      expect(g.layers).toHaveLength(n.depth);
      expect(g.layers[0]).toBe('conv1.weight');
      expect(g.layers[n.depth - 1]).toBe('fc.weight');
      expect(g.layers[1]).toBe('layer1.0.conv1.weight');
      for (const v of [...g.init, ...g.trained]) expect(Number.isFinite(v) && v > 0).toBe(true);
      expect(g.init).toHaveLength(n.depth);
      expect(g.trained).toHaveLength(n.depth);
      expect(n.responseStd).toHaveLength(((n.depth - 2) / 6) * 3);
      for (const v of n.responseStd) expect(Number.isFinite(v) && v > 0).toBe(true);
      expect(n.seconds).toBeGreaterThan(0);
    }
    // training moved the weights: the gradient after training differs from the one at init
    expect(result.nets[0]!.gradNorms.trained).not.toEqual(result.nets[0]!.gradNorms.init);
  });

  it('is plain JSON (no NaN, no Infinity, survives a round trip)', () => {
    const text = JSON.stringify(result);
    expect(text).not.toMatch(/null|NaN|Infinity/);
    expect(JSON.parse(text)).toEqual(result);
  });

  it('is deterministic: the same options give the same numbers', () => {
    expect(timeless(tiny())).toEqual(timeless(result));
  });

  it('starts plain-n and ResNet-n from the same weights (same seed, parameter-free shortcuts)', () => {
    manualSeed(11);
    const p = cifarResnet(14, { plain: true, widths: [2, 4, 4], inChannels: 1 }).stateDict();
    manualSeed(11);
    const r = cifarResnet(14, { widths: [2, 4, 4], inChannels: 1 }).stateDict();
    expect(Object.keys(p)).toEqual(Object.keys(r));
    for (const k of Object.keys(p)) expect(Array.from(p[k]!.data), k).toEqual(Array.from(r[k]!.data));
  });

  it('draws three well-formed SVGs with the expected series', () => {
    const figs = degradationFigures(result);
    expect(Object.keys(figs).sort()).toEqual(['gradient-norms.svg', 'response-std.svg', 'training-curves.svg']);
    const curves = parseXml(figs['training-curves.svg']);
    const paths = findAll(curves, 'path');
    // per net: a dashed training curve and a solid test curve
    expect(paths).toHaveLength(8);
    expect(paths.filter((p) => p.attrs['stroke-dasharray'] !== undefined)).toHaveLength(4);
    expect(findAll(curves, 'g').filter((g) => g.attrs.class === 'panel')).toHaveLength(2);
    const titles = findAll(curves, 'title').map((t) => t.text);
    expect(titles).toEqual(['plain-8 train', 'plain-8 test', 'plain-14 train', 'plain-14 test', 'ResNet-8 train', 'ResNet-8 test', 'ResNet-14 train', 'ResNet-14 test']);
    for (const name of ['gradient-norms.svg', 'response-std.svg'] as const) {
      const root = parseXml(figs[name]);
      expect(findAll(root, 'path'), name).toHaveLength(8); // 4 nets × 2 panels
    }
  });

  it('rejects depths that are not 6n + 2 and a batch larger than the data', () => {
    expect(() => degradation({ train, test, mean: [0.5], std: [0.5], depths: [10], iterations: 1 })).toThrow(/6n \+ 2/);
    expect(() => degradation({ train, test, mean: [0.5], std: [0.5], depths: [8], iterations: 1, batchSize: 200 })).toThrow(/larger than the 96/);
  });
});

describe('downsampleDataset', () => {
  it('averages factor×factor blocks, rounding to the nearest byte, dropping partial blocks', () => {
    const ds: Dataset = { length: 1, channels: 1, height: 5, width: 5, numClasses: 1, images: Uint8Array.from({ length: 25 }, (_, i) => i), labels: new Uint8Array(1) };
    const d = downsampleDataset(ds, 2);
    expect([d.height, d.width]).toEqual([2, 2]);
    // blocks {0,1,5,6} → 3, {2,3,7,8} → 5, {10,11,15,16} → 13, {12,13,17,18} → 15
    expect(Array.from(d.images)).toEqual([3, 5, 13, 15]);
    expect(downsampleDataset(ds, 1)).toBe(ds);
  });
  it('works per channel and per image', () => {
    const ds: Dataset = { length: 2, channels: 2, height: 2, width: 2, numClasses: 2, images: Uint8Array.from([0, 0, 0, 4, 10, 10, 10, 10, 1, 2, 3, 4, 255, 255, 255, 254]), labels: Uint8Array.from([0, 1]) };
    expect(Array.from(downsampleDataset(ds, 2).images)).toEqual([1, 10, 3, 255]); // 1, 10, 2.5→3, 254.75→255
  });
});

describe('resnet-ts degradation (CLI)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'degradation-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('parses the quick preset and the overrides', () => {
    const q = parseDegradationArgs(['--quick']);
    expect(q.preset).toEqual(QUICK);
    expect(q.out).toBe(join('runs', 'degradation-quick'));
    const p = parseDegradationArgs(['--paper-widths']);
    expect(p.preset).toEqual({ ...FULL, widths: [16, 32, 64], downsample: 1 });
    expect(p.preset).toEqual(PAPER_WIDTHS);
    expect(p.out).toBe(join('runs', 'degradation-paper-widths'));
    expect(parseDegradationArgs(['--paper-widths', '--seeds', '0,1', '--depths', '8,20']).preset.depths).toEqual([8, 20]);
    expect(() => parseDegradationArgs(['--quick', '--paper-widths'])).toThrow(/--quick or --paper-widths/);
    const a = parseDegradationArgs(['--depths', '8,32', '--widths', '4,8,16', '--iterations', '50', '--seed', '3']);
    expect(a.preset.depths).toEqual([8, 32]);
    expect(a.preset.widths).toEqual([4, 8, 16]);
    expect(a.preset.iterations).toBe(50);
    expect(a.seed).toBe(3);
    expect(() => parseDegradationArgs(['--depths', '10'])).toThrow(/6n\+2/);
    expect(() => parseDegradationArgs(['--widths', '4,8'])).toThrow(/three numbers/);
    expect(() => parseDegradationArgs(['--epochs', '1', '--iterations', '5'])).toThrow(/not both/);
    expect(() => parseDegradationArgs(['--schedule', 'linear'])).toThrow(/paper or cosine/);
  });

  it('runs on synthetic data and writes the JSON and three SVGs', () => {
    const lines: string[] = [];
    const args = parseDegradationArgs([
      '--data', 'synthetic', '--depths', '8,14', '--widths', '2,4,4', '--downsample', '4', '--subset', '64', '--test-subset', '24',
      '--iterations', '4', '--batch-size', '16', '--quiet', '--out', dir,
    ]);
    const r = runDegradation(args, (s) => lines.push(s));
    const json = JSON.parse(readFileSync(join(dir, 'degradation.json'), 'utf8')) as DegradationResult;
    expect(json.setting.imageSize).toEqual([7, 7]); // 28×28 synthetic images pooled ×4
    expect(json.setting.trainImages).toBe(64);
    expect(json.setting.testImages).toBe(24);
    expect(json.nets).toHaveLength(4);
    expect(timeless(json)).toEqual(timeless(r));
    for (const f of ['training-curves.svg', 'gradient-norms.svg', 'response-std.svg']) expect(parseXml(readFileSync(join(dir, f), 'utf8')).name).toBe('svg');
    const out = lines.join('\n');
    expect(out).toContain('average-pooled ×4 to 7×7');
    expect(out).toMatch(/plain-14 trains (worse|no worse) than plain-8/);
    expect(summarize(r)).toContain('resnet-14');
  });
});
