/**
 * Nothing lost, nothing hangs, in `resnet-ts train`: an --out that cannot be written fails before any training
 * (and /proc does not hang), OUT/train.lock keeps a second trainer out and stale locks are broken,
 * --checkpoint-every resumes mid-epoch to the uninterrupted result bit for bit, --resume lists every changed
 * setting, a finished constant-schedule run can be extended, and a tampered or corrupt checkpoint gets our error.
 * In-process (runTraining from src/); the real command (two processes, Ctrl-C) is in cli-runs.test.ts.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RunDirError } from '../../src/cli/rundir.js';
import { runTraining, type RunOptions, type TrainArgs } from '../../src/cli/train.js';
import { ResnetTsError } from '../../src/errors.js';
import { loadSafetensorsFile, readSafetensorsMetadataFile, saveSafetensorsFile } from '../../src/io/safetensors-file.js';
import type { Tensor } from '../../src/tensor.js';
import { expectError, runRows, type Row } from './rows.js';

const work = mkdtempSync(join(tmpdir(), 'resnet-ts-rel-runs-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
let n = 0;
const fresh = (): string => join(work, `run-${n++}`);

const base = (out: string): TrainArgs & RunOptions => ({
  model: 'resnet20', data: 'synthetic', epochs: 2, batchSize: 16, lr: 0.05, momentum: 0.9, weightDecay: 1e-4,
  schedule: 'cosine', out, seed: 3, resume: false, subset: 80, testSubset: 16, augment: true, threads: 1,
  quiet: true, log: () => {}, modelOptions: { widths: [4, 8, 8] },
});

/** A run that must fail before training: the log never reaches the "training ..." line. */
function refused(out: string): () => unknown {
  return () => {
    const lines: string[] = [];
    try {
      runTraining({ ...base(out), log: (s) => lines.push(s) });
    } finally {
      expect(lines.filter((l) => l.startsWith('training'))).toEqual([]);
    }
  };
}

writeFileSync(join(work, 'a-file'), 'x');

describe('--out that cannot be written: refused before any training, in well under a second', () => {
  const rows: Row[] = [
    ['--out is a file', refused(join(work, 'a-file')), RunDirError, ['[train --out]', 'a-file is a file, not a folder']],
    ['--out under a file', refused(join(work, 'a-file', 'run')), RunDirError, ['[train --out]', 'a-file', 'not a folder']],
    ['--out under /proc that does not exist (node\'s recursive mkdir loops forever there)', refused('/proc/no-such-dir/run'), RunDirError,
      ['[train --out]', '/proc/no-such-dir/run is on procfs']],
    ['--out an existing folder of /proc', refused('/proc/self'), RunDirError, ['/proc/self is on procfs']],
    ['--out under /sys', refused('/sys/kernel/resnet-ts-run'), RunDirError, ['is on sysfs']],
  ];
  runRows(rows);

  it('the /proc row returns at once (the old recursive mkdirSync never returned)', () => {
    const t0 = performance.now();
    expect(refused('/proc/1/x/y/z')).toThrow(RunDirError);
    expect(performance.now() - t0).toBeLessThan(1000);
  });

  it('control: a missing --out three levels deep is created, trained into, and left unlocked', () => {
    const out = join(fresh(), 'a', 'b');
    runTraining({ ...base(out), epochs: 1, subset: 32 });
    expect(existsSync(join(out, 'checkpoint.safetensors'))).toBe(true);
    expect(existsSync(join(out, 'train.lock'))).toBe(false);
  });
});

describe('OUT/train.lock: a second trainer is refused, stale locks are broken', () => {
  const lock = (out: string, info: Record<string, unknown>, ageMs = 0): void => {
    mkdirSync(out, { recursive: true });
    const p = join(out, 'train.lock');
    writeFileSync(p, typeof info.raw === 'string' ? info.raw : JSON.stringify(info));
    if (ageMs) utimesSync(p, new Date(Date.now() - ageMs), new Date(Date.now() - ageMs));
  };
  const ticks = (pid: number): number => Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[19]);

  it('held by a live process: refused, naming its pid, and the lock is left alone', async () => {
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      await new Promise((r) => child.once('spawn', r));
      const out = fresh();
      const info = { pid: child.pid, startTicks: ticks(child.pid!), host: hostname(), started: 'then' };
      lock(out, info);
      expectError(refused(out), RunDirError, [`another training run (pid ${child.pid}`, 'choose another --out']);
      expect(JSON.parse(readFileSync(join(out, 'train.lock'), 'utf8'))).toEqual(info);
    } finally {
      child.kill('SIGKILL');
    }
  });

  const stale: [string, Record<string, unknown>, number][] = [
    ['its owner has exited', { pid: spawnSync('true').pid, startTicks: 1, host: hostname(), started: 'then' }, 0],
    ['its pid now belongs to another process (start time differs)', { pid: process.pid, startTicks: 1, host: hostname(), started: 'then' }, 0],
    ['unreadable and a minute old (owner died while writing it)', { raw: '' }, 60_000],
  ];
  for (const [name, info, age] of stale) {
    it(`stale lock, ${name}: broken, the run trains, no lock left`, () => {
      const out = fresh();
      lock(out, info, age);
      runTraining({ ...base(out), epochs: 1, subset: 32 });
      expect(existsSync(join(out, 'checkpoint.safetensors'))).toBe(true);
      expect(existsSync(join(out, 'train.lock'))).toBe(false);
    });
  }

  it('an unreadable lock seconds old may be a run still starting: refused', () => {
    const out = fresh();
    lock(out, { raw: '{"pid": 12' });
    expectError(refused(out), RunDirError, ['another training run is starting']);
  });

  it('the lock is released when training fails', () => {
    const out = fresh();
    expect(() => runTraining({ ...base(out), batchSize: 1000 })).toThrow(/larger than the 80 training images/);
    expect(existsSync(join(out, 'train.lock'))).toBe(false);
  });
});

const bits = (t: Tensor): number[] => Array.from(new Uint32Array(t.data.buffer, t.data.byteOffset, t.data.length));
function expectSameTensors(got: string, want: string): void {
  const a = loadSafetensorsFile(got), b = loadSafetensorsFile(want);
  expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort());
  for (const k of Object.keys(b)) expect(bits(a[k]!), k).toEqual(bits(b[k]!));
}
const metrics = (dir: string): { epochs: Record<string, number>[]; steps: unknown[] } => JSON.parse(readFileSync(join(dir, 'metrics.json'), 'utf8'));

describe('--checkpoint-every N: a run killed mid-epoch resumes to the uninterrupted result, bit for bit', () => {
  // 80 images / 16 = 5 steps per epoch, 2 epochs = 10 iterations
  const reference = fresh();
  runTraining(base(reference));

  for (const [every, killedAt] of [[3, 4], [2, 7], [1, 1]] as const) {
    it(`checkpoint every ${every}, killed after iteration ${killedAt}: same model, optimizer, scheduler, metrics`, () => {
      const out = fresh();
      runTraining({ ...base(out), checkpointEvery: every, stopAfterIteration: killedAt });
      const saved = Math.floor(killedAt / every) * every; // the last checkpoint before the kill
      const meta = readSafetensorsMetadataFile(join(out, 'checkpoint.safetensors'));
      expect(Number(meta.epoch) * 5 + Number(meta.step)).toBe(saved);
      expect(Number(meta.step)).toBeGreaterThan(0); // mid-epoch
      const logs: string[] = [];
      runTraining({ ...base(out), checkpointEvery: every, resume: true, log: (s) => logs.push(s) });
      expect(logs.join('\n')).toContain(`, step ${Number(meta.step)}/5`);
      expectSameTensors(join(out, 'model.safetensors'), join(reference, 'model.safetensors'));
      expectSameTensors(join(out, 'checkpoint.safetensors'), join(reference, 'checkpoint.safetensors'));
      const m = readSafetensorsMetadataFile(join(out, 'checkpoint.safetensors'));
      const want = readSafetensorsMetadataFile(join(reference, 'checkpoint.safetensors'));
      for (const k of ['epoch', 'step', 'optimizer', 'scheduler', 'steps']) expect(m[k], k).toBe(want[k]);
      const got = metrics(out).epochs, ref = metrics(reference).epochs;
      for (const k of ['trainLoss', 'trainAccuracy', 'testLoss', 'testAccuracy']) expect(got.map((e) => e[k]), k).toEqual(ref.map((e) => e[k]));
      expect(metrics(out).steps).toEqual(metrics(reference).steps);
    });
  }

  it('control: without --checkpoint-every the same kill leaves nothing to resume, and the error says what to do', () => {
    const out = fresh();
    runTraining({ ...base(out), stopAfterIteration: 4 });
    expectError(() => runTraining({ ...base(out), resume: true }), ResnetTsError, ['nothing to resume', '--checkpoint-every N']);
  });
});

describe('--resume: settings, extension, tampered and corrupt checkpoints', () => {
  const once = fresh();
  runTraining({ ...base(once), epochs: 1, subset: 32 });
  const ckpt = join(once, 'checkpoint.safetensors');
  /** A copy of the one-epoch run whose checkpoint metadata field `key` is `value`. */
  const tampered = (key: string, value: string): string => {
    const out = fresh();
    mkdirSync(out);
    const meta = { ...readSafetensorsMetadataFile(ckpt), [key]: value };
    saveSafetensorsFile(join(out, 'checkpoint.safetensors'), loadSafetensorsFile(ckpt), meta);
    return out;
  };
  const resume = (out: string, more: Partial<TrainArgs> = {}) => () => runTraining({ ...base(out), epochs: 1, subset: 32, resume: true, ...more });

  const rows: Row[] = [
    ['three settings changed: all three listed', resume(once, { epochs: 2, lr: 0.1, batchSize: 8, seed: 4 }), ResnetTsError,
      ['other settings (4)', 'batchSize: the checkpoint has 16, this run 8', 'seed: the checkpoint has 3, this run 4', 'lr: the checkpoint has 0.05, this run 0.1', 'epochs: the checkpoint planned 1, this run 2', 'cosine schedule', 'cannot be stretched']],
    ['a finished run resumed again: says so, and how to go on', resume(once), ResnetTsError, ['already finished all 1 epochs', 'test accuracy', 'start a new run']],
    ['epoch "NaN"', resume(tampered('epoch', 'NaN')), ResnetTsError, ['corrupt metadata field "epoch"']],
    ['epoch "-1"', resume(tampered('epoch', '-1')), ResnetTsError, ['corrupt metadata field "epoch"']],
    ['epoch "99" of a 1-epoch run', resume(tampered('epoch', '99')), ResnetTsError, ['corrupt metadata field "history"']],
    ['epoch "0" with one epoch of history', resume(tampered('epoch', '0')), ResnetTsError, ['corrupt metadata field "history"']],
    ['step beyond the epoch', resume(tampered('step', '7')), ResnetTsError, ['corrupt metadata field "step"']],
    ['history that is not JSON', resume(tampered('history', '[{"epoch": 1,')), ResnetTsError, ['corrupt metadata field "history" (not JSON']],
    ['history that is not a list', resume(tampered('history', '{"a": 1}')), ResnetTsError, ['corrupt metadata field "history" (not the expected structure)']],
    ['steps with a string loss', resume(tampered('steps', '[{"iteration": 0, "loss": "x"}]')), ResnetTsError, ['corrupt metadata field "steps"']],
    ['args that are not JSON', resume(tampered('args', 'nope')), ResnetTsError, ['corrupt metadata field "args"']],
    ['scheduler that is not JSON', resume(tampered('scheduler', '{')), ResnetTsError, ['corrupt metadata field "scheduler"']],
  ];
  runRows(rows);

  it('a constant-schedule run that finished can be extended with a larger --epochs: the same as running longer from the start', () => {
    const short = fresh(), long = fresh();
    const c = { schedule: 'constant' as const, subset: 32 };
    runTraining({ ...base(short), ...c, epochs: 1 });
    runTraining({ ...base(short), ...c, epochs: 2, resume: true });
    runTraining({ ...base(long), ...c, epochs: 2 });
    expect(metrics(short).epochs.length).toBe(2);
    expectSameTensors(join(short, 'model.safetensors'), join(long, 'model.safetensors'));
  });
});
