import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseDegradationArgs, runDegradation } from '../../src/cli/degradation.js';
import { syntheticDataset } from '../../src/data/dataset.js';
import { degradation, type DegradationResult } from '../../src/experiments/degradation.js';
import { formatSeedSummary, seedCurvesSvg, seedSummary, spread } from '../../src/experiments/seeds.js';
import { findAll, parseXml } from './xml.js';

const train = syntheticDataset({ n: 64, channels: 1, size: 8, numClasses: 4, seed: 1 });
const test = syntheticDataset({ n: 24, channels: 1, size: 8, numClasses: 4, seed: 2 });
const run = (seed: number): DegradationResult => degradation({
  train, test, mean: [0.5], std: [0.5], dataName: 'synthetic', depths: [8, 14], widths: [2, 4, 4],
  iterations: 6, batchSize: 16, evalEvery: 3, probeImages: 8, trainEvalImages: 16, seed,
});
const runs = [run(0), run(1), run(2)];

describe('seed statistics of the degradation experiment', () => {
  it('spread: mean, sample std (n − 1), min and max', () => {
    const s = spread([0.1, 0.2, 0.6]);
    expect(s.mean).toBeCloseTo(0.3, 15);
    // deviations −0.2, −0.1, 0.3: squares 0.04 + 0.01 + 0.09 = 0.14, / 2 = 0.07
    expect(s.std).toBeCloseTo(Math.sqrt(0.07), 15);
    expect([s.min, s.max]).toEqual([0.1, 0.6]);
    expect(spread([0.25]).std).toBe(0);
    expect(() => spread([])).toThrow(/spread.*no values/);
  });

  it('summarizes each net over the seeds from the runs\' own final numbers', () => {
    const s = seedSummary(runs);
    expect(s.seeds).toEqual([0, 1, 2]);
    expect(s.nets.map((n) => n.name)).toEqual(['plain-8', 'plain-14', 'resnet-8', 'resnet-14']);
    for (const n of s.nets) {
      const vals = runs.map((r) => r.nets.find((m) => m.name === n.name)!.final.testError);
      expect(n.testError.values).toEqual(vals);
      expect(n.testError.min).toBe(Math.min(...vals));
      expect(n.testError.max).toBe(Math.max(...vals));
      expect(n.testError.mean).toBeCloseTo((vals[0]! + vals[1]! + vals[2]!) / 3, 15);
    }
    // different seeds train differently
    expect(new Set(runs.map((r) => r.nets[0]!.final.trainEvalLoss)).size).toBe(3);
    expect(formatSeedSummary(s)).toMatch(/resnet-14 +\d+\.\d\d% ± \d+\.\d\d \[/);
  });

  it('refuses runs that differ in more than the seed, and repeated seeds', () => {
    const other = degradation({
      train, test, mean: [0.5], std: [0.5], dataName: 'synthetic', depths: [8, 14], widths: [2, 4, 4],
      iterations: 3, batchSize: 16, evalEvery: 3, probeImages: 8, trainEvalImages: 16, seed: 5,
    });
    expect(() => seedSummary([runs[0]!, other])).toThrow(/seedSummary.*another setting/);
    expect(() => seedSummary([runs[0]!, runs[0]!])).toThrow(/seed appears twice/);
    expect(() => seedSummary([])).toThrow(/no runs/);
  });

  it('draws mean curves with a min–max band per net and curve', () => {
    const root = parseXml(seedCurvesSvg(runs));
    const paths = findAll(root, 'path');
    const bands = paths.filter((p) => p.attrs['fill-opacity'] !== undefined);
    const lines = paths.filter((p) => p.attrs.fill === 'none');
    expect(bands).toHaveLength(8); // 4 nets × (train, test)
    expect(lines).toHaveLength(8);
    expect(findAll(root, 'title').map((t) => t.text)).toContain('ResNet-14 test (band)');
  });
});

describe('resnet-ts degradation --seeds', () => {
  const dir = mkdtempSync(join(tmpdir(), 'degradation-seeds-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('parses --seeds and refuses bad lists', () => {
    expect(parseDegradationArgs(['--seeds', '0,1,2']).seeds).toEqual([0, 1, 2]);
    expect(() => parseDegradationArgs(['--seeds', '0,1', '--seed', '3'])).toThrow(/not both/);
    expect(() => parseDegradationArgs(['--seeds', '0,,2'])).toThrow(/--seeds/);
    expect(() => parseDegradationArgs(['--seeds', '1,1'])).toThrow(/twice/);
    expect(() => parseDegradationArgs(['--seeds', '-1'])).toThrow(/--seeds/);
  });

  it('runs each seed into OUT/seed-N and writes seeds.json and the band figure', () => {
    const lines: string[] = [];
    const args = parseDegradationArgs([
      '--data', 'synthetic', '--depths', '8', '--widths', '2,4,4', '--downsample', '4', '--subset', '48', '--test-subset', '16',
      '--iterations', '3', '--batch-size', '16', '--quiet', '--out', dir, '--seeds', '3,4',
    ]);
    const rs = runDegradation({ ...args, seeds: args.seeds! }, (s) => lines.push(s));
    expect(rs.map((r) => r.setting.seed)).toEqual([3, 4]);
    for (const s of [3, 4]) {
      const one = JSON.parse(readFileSync(join(dir, `seed-${s}`, 'degradation.json'), 'utf8')) as DegradationResult;
      expect(one.setting.seed).toBe(s);
    }
    const json = JSON.parse(readFileSync(join(dir, 'seeds.json'), 'utf8'));
    expect(json.summary.seeds).toEqual([3, 4]);
    expect(json.summary.nets.map((n: { name: string }) => n.name)).toEqual(['plain-8', 'resnet-8']);
    expect(json.summary.nets[0].testError.values).toEqual(rs.map((r) => r.nets[0]!.final.testError));
    expect(parseXml(readFileSync(join(dir, 'training-curves-seeds.svg'), 'utf8')).name).toBe('svg');
    expect(lines.join('\n')).toContain('seeds 3,4: mean ± std [min, max]');

    // a second call reuses both finished seeds (no training: same numbers, said in the log) and runs a new one
    const again: string[] = [];
    const rs2 = runDegradation({ ...args, seeds: [3, 4, 5] }, (s) => again.push(s));
    expect(again.filter((l) => l.includes('reusing'))).toHaveLength(2);
    expect(rs2[0]!.nets[0]!.final).toEqual(rs[0]!.nets[0]!.final);
    expect(rs2.map((r) => r.setting.seed)).toEqual([3, 4, 5]);
    expect(JSON.parse(readFileSync(join(dir, 'seeds.json'), 'utf8')).summary.seeds).toEqual([3, 4, 5]);

    // a finished seed with another setting is refused, naming what differs
    const other = parseDegradationArgs([
      '--data', 'synthetic', '--depths', '8', '--widths', '2,4,4', '--downsample', '4', '--subset', '48', '--test-subset', '16',
      '--iterations', '2', '--batch-size', '16', '--quiet', '--out', dir, '--seeds', '3',
    ]);
    expect(() => runDegradation({ ...other, seeds: [3] }, () => {})).toThrow(/seed-3.*iterations 3 instead of 2.*delete/);
  });
});
