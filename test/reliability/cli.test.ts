/**
 * The real `resnet-ts` command, run as a child process from a compiled copy of src/ (./build.ts): usage errors exit
 * with 2 and a message naming the flag and the bad value; runtime errors (files and data that are missing or
 * corrupt) exit with 1 and a message naming the file. Neither prints a stack trace. Every run has a timeout, runs
 * in a temp directory, and writes only under os.tmpdir().
 *
 * test/cli/predict.test.ts covers predict's errors in-process; here a few of them go through the real process too.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeIdx } from '../../src/data/idx.js';
import { saveSafetensorsFile } from '../../src/io/safetensors-file.js';
import { zeros } from '../../src/tensor.js';
import { buildDist, REPO } from './build.js';

let root = '';
const work = mkdtempSync(join(tmpdir(), 'resnet-ts-rel-cli-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
beforeAll(() => {
  root = buildDist();
}, 300_000);

interface Run { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

function cli(args: readonly string[]): Run {
  const r = spawnSync(process.execPath, [join(root, 'dist', 'cli', 'main.js'), ...args], {
    cwd: work, encoding: 'utf8', timeout: 60_000, env: { ...process.env, RESNET_TS_THREADS: '1' },
  });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

const p = (...parts: string[]): string => join(work, ...parts);
const SMALL = ['--data', 'synthetic', '--subset', '32', '--test-subset', '16', '--batch-size', '16', '--epochs', '1'];
const PHOTO = join(REPO, 'test', 'fixtures', 'predict', 'photo.jpg');

type CliRow = [name: string, args: () => string[], code: number, fragments: readonly string[]];

function runCliRows(rows: readonly CliRow[]): void {
  for (const [name, args, code, fragments] of rows) {
    it(name, () => {
      const r = cli(args());
      const where = `exit ${r.code}${r.signal ? ` (${r.signal})` : ''}\nstderr: ${r.stderr}\nstdout: ${r.stdout}`;
      expect(r.code, where).toBe(code);
      for (const f of fragments) expect(r.stderr, `fragment ${JSON.stringify(f)} in stderr\n${where}`).toContain(f);
      expect(r.stderr, 'no stack trace').not.toMatch(/\n\s+at .+:\d+:\d+\)?\n/);
      if (code === 2) expect(r.stderr, 'usage errors show the usage').toContain('Usage: resnet-ts');
    });
  }
}

describe('usage errors: exit code 2, the flag and the bad value named', () => {
  runCliRows([
    ['an unknown command', () => ['frobnicate'], 2, ["unknown command 'frobnicate'"]],
    ['train: an unknown flag', () => ['train', '--frobnicate'], 2, ["Unknown option '--frobnicate'"]],
    ['train --epochs 0', () => ['train', '--epochs', '0'], 2, ["--epochs must be an integer ≥ 1, got '0'"]],
    ['train --epochs 1.5', () => ['train', '--epochs', '1.5'], 2, ["--epochs must be an integer ≥ 1, got '1.5'"]],
    ['train --epochs without a value', () => ['train', '--epochs'], 2, ['--epochs', 'argument missing']],
    ['train --batch-size abc', () => ['train', '--batch-size', 'abc'], 2, ["--batch-size must be an integer ≥ 1, got 'abc'"]],
    ['train --lr=-0.1', () => ['train', '--lr=-0.1'], 2, ["--lr must be a number ≥ 0, got '-0.1'"]],
    ['train --lr NaN', () => ['train', '--lr', 'NaN'], 2, ["--lr must be a number ≥ 0, got 'NaN'"]],
    ['train --lr 1e999 (Infinity)', () => ['train', '--lr', '1e999'], 2, ["--lr must be a number ≥ 0, got '1e999'"]],
    ['train --momentum=-1', () => ['train', '--momentum=-1'], 2, ["--momentum must be a number ≥ 0, got '-1'"]],
    ['train --seed=-1', () => ['train', '--seed=-1'], 2, ["--seed must be an integer ≥ 0, got '-1'"]],
    ['train --threads 0', () => ['train', '--threads', '0'], 2, ["--threads must be an integer ≥ 1, got '0'"]],
    ['train --subset 0', () => ['train', '--subset', '0'], 2, ["--subset must be an integer ≥ 1, got '0'"]],
    ['train --schedule nope', () => ['train', '--schedule', 'nope'], 2, ["--schedule must be one of cosine, paper, step, onecycle, constant, got 'nope'"]],
    ['train --model nope: lists the models', () => ['train', '--model', 'nope'], 2, ["unknown model 'nope'", 'resnet18', 'resnet20', 'preactResnet1001']],
    ['train with a stray positional argument', () => ['train', 'extra'], 2, ["unexpected argument 'extra'"]],
    ['train --data cifar10 without --data-dir', () => ['train', '--data', 'cifar10'], 2, ['--data cifar10 needs --data-dir DIR']],
    ['train --data naming nothing that exists', () => ['train', '--data', p('no-such-data')], 2, ['--data must be fashion-mnist', 'no-such-data']],
    ['train --data a directory with no dataset in it', () => ['train', '--data', work], 2, ['--data', 'no train-images-idx3-ubyte']],
    ['train --batch-size larger than the training set', () => ['train', ...SMALL, '--batch-size', '64', '--out', p('big-batch')], 2,
      ['--batch-size 64 is larger than the 32 training images']],
    ['summary without a model', () => ['summary'], 2, ['missing MODEL']],
    ['summary nope: lists the models', () => ['summary', 'nope'], 2, ["unknown model 'nope'", 'resnet50']],
    ['summary with two models', () => ['summary', 'resnet18', 'resnet34'], 2, ["unexpected argument 'resnet34'"]],
    ['summary --input 1,3', () => ['summary', 'resnet18', '--input', '1,3'], 2, ['--input must have 4 dims (N,C,H,W), got 2']],
    ['summary --input 1,3,0,224', () => ['summary', 'resnet18', '--input', '1,3,0,224'], 2, ["--input must be a comma-separated list of positive integers", "'1,3,0,224'"]],
    ['summary --input 1,x,2,2', () => ['summary', 'resnet18', '--input', '1,x,2,2'], 2, ["'1,x,2,2'"]],
    ['summary --num-classes 0', () => ['summary', 'resnet18', '--num-classes', '0'], 2, ["--num-classes must be an integer ≥ 1, got '0'"]],
    ['predict without --weights', () => ['predict', '--model', 'resnet18', PHOTO], 2, ['missing --weights FILE.safetensors']],
    ['predict without --model', () => ['predict', '--weights', p('w.safetensors'), PHOTO], 2, ['missing --model NAME']],
    ['predict --topk 0', () => ['predict', '--model', 'resnet20', '--weights', p('w.safetensors'), '--topk', '0', PHOTO], 2, ["--topk must be an integer ≥ 1, got '0'"]],
  ]);

  it('no command at all: the overview, and exit code 2', () => {
    const r = cli([]);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain('Usage: resnet-ts <command>');
  });

  it('controls: --help and --version exit 0', () => {
    const h = cli(['train', '--help']);
    expect(h.code).toBe(0);
    expect(h.stdout).toContain('Usage: resnet-ts train');
    expect(cli(['--version']).code).toBe(0);
  });
});

describe('runtime errors: exit code 1, the file named', () => {
  beforeAll(() => {
    mkdirSync(p('empty-run'));
    mkdirSync(p('garbage-run'));
    writeFileSync(p('garbage-run', 'checkpoint.safetensors'), 'this is not a safetensors file\n');
    mkdirSync(p('truncated-run'));
    saveSafetensorsFile(p('truncated-run', 'checkpoint.safetensors'), { 'model.conv1.weight': zeros([16, 1, 3, 3]) }, { epoch: '1' });
    // keep the header, cut the data: the header promises 576 bytes of tensor data
    const full = readFileSync(p('truncated-run', 'checkpoint.safetensors'));
    writeFileSync(p('truncated-run', 'checkpoint.safetensors'), full.subarray(0, full.length - 100));
    writeFileSync(p('a-file'), 'x');
    // an MNIST-format directory whose training images are cut short
    mkdirSync(p('bad-mnist'));
    writeFileSync(p('bad-mnist', 'train-images-idx3-ubyte'), writeIdx([2, 28, 28], new Uint8Array(2 * 28 * 28)).subarray(0, 1000));
    writeFileSync(p('bad-mnist', 'train-labels-idx1-ubyte'), writeIdx([2], Uint8Array.from([1, 2])));
    writeFileSync(p('garbage.safetensors'), new Uint8Array(64).fill(0xff));
  });

  runCliRows([
    ['train --resume with no checkpoint', () => ['train', ...SMALL, '--resume', '--out', p('empty-run')], 1,
      ['--resume: no checkpoint at', 'empty-run/checkpoint.safetensors']],
    ['train --resume from a checkpoint that is not safetensors', () => ['train', ...SMALL, '--resume', '--out', p('garbage-run')], 1,
      ['[safetensors]', 'garbage-run/checkpoint.safetensors']],
    ['train --resume from a truncated checkpoint', () => ['train', ...SMALL, '--resume', '--out', p('truncated-run')], 1,
      ['[safetensors]', 'truncated-run/checkpoint.safetensors']],
    ['train --out naming an existing file', () => ['train', ...SMALL, '--out', p('a-file')], 1, ['a-file']],
    ['train --data cifar10 --data-dir that does not exist', () => ['train', '--data', 'cifar10', '--data-dir', p('no-cifar'), '--out', p('o1')], 1,
      ['[loadCifar10]', 'no-cifar', 'does not exist']],
    ['train --data DIR whose IDX images are truncated', () => ['train', '--data', p('bad-mnist'), '--out', p('o2')], 1,
      ['[readIdx]', 'bad-mnist/train-images-idx3-ubyte', 'truncated body']],
    ['predict with weights that do not exist', () => ['predict', '--model', 'resnet20', '--weights', p('nope.safetensors'), PHOTO], 1,
      ['[weights] no such file', 'nope.safetensors']],
    ['predict with weights that are not safetensors', () => ['predict', '--model', 'resnet20', '--weights', p('garbage.safetensors'), PHOTO], 1,
      ['[safetensors]', 'garbage.safetensors']],
  ]);

  it('summary of an input over 2^32 elements works: shapes come from an empty batch, no data is allocated', () => {
    const r = cli(['summary', 'resnet18', '--input', '1,3,100000,100000', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { rows: { name: string; outputShape: number[] }[] };
    expect(j.rows.find((x) => x.name === 'conv1')!.outputShape).toEqual([1, 64, 50000, 50000]);
    expect(j.rows.find((x) => x.name === 'layer4')!.outputShape).toEqual([1, 512, 3125, 3125]);
    expect(j.rows.find((x) => x.name === 'fc')!.outputShape).toEqual([1, 1000]);
  });

  it('control: resnet50 summarized at 1×1 pixels works (eval mode, as in PyTorch; training would fail at bn1)', () => {
    const r = cli(['summary', 'resnet50', '--input', '1,3,1,1', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { rows: { name: string; outputShape: number[] }[] };
    expect(j.rows.find((x) => x.name === 'layer4')!.outputShape).toEqual([1, 2048, 1, 1]);
    expect(j.rows.find((x) => x.name === 'fc')!.outputShape).toEqual([1, 1000]);
  });
});
