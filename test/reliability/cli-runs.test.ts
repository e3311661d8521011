/**
 * The real `resnet-ts train` (compiled copy of src/, ./build.ts) where a process matters: two trainers on one
 * --out, Ctrl-C (SIGINT) during training and the resume it prints, a tampered checkpoint epoch, and an --out under
 * /proc (each run has a timeout: a hang fails the test instead of stalling it).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSafetensorsFile, readSafetensorsMetadataFile, saveSafetensorsFile } from '../../src/io/safetensors-file.js';
import { buildDist } from './build.js';

let main = '';
const work = mkdtempSync(join(tmpdir(), 'resnet-ts-rel-cliruns-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
beforeAll(() => {
  main = join(buildDist(), 'dist', 'cli', 'main.js');
}, 300_000);

const env = { ...process.env, RESNET_TS_THREADS: '1' };
const SMALL = ['--data', 'synthetic', '--model', 'resnet20', '--subset', '64', '--test-subset', '16', '--batch-size', '16'];
const NO_STACK = /\n\s+at .+:\d+:\d+\)?\n/;

function cli(args: readonly string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [main, ...args], { cwd: work, encoding: 'utf8', timeout: 60_000, env });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Starts a long training run; `training` resolves once it says "training ..." (the lock is taken, data loaded). */
function startLong(out: string): { proc: ReturnType<typeof spawn>; stderr: () => string; exited: Promise<number | null>; training: Promise<void> } {
  const proc = spawn(process.execPath, [main, 'train', ...SMALL, '--subset', '2048', '--epochs', '3', '--out', out], { cwd: work, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  let resolveTraining!: () => void;
  const training = new Promise<void>((r) => (resolveTraining = r));
  let said = '';
  proc.stderr!.on('data', (d: Buffer) => void (err += d.toString()));
  proc.stdout!.on('data', (d: Buffer) => {
    said += d.toString();
    if (said.includes("\ntraining resnet20")) resolveTraining();
  });
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  return { proc, stderr: () => err, exited, training };
}

describe('resnet-ts train as a process', () => {
  it('a second trainer on the same --out is refused (exit 1, the first one\'s pid named); the first is not disturbed', async () => {
    const out = join(work, 'two');
    const first = startLong(out);
    try {
      await first.training;
      const second = cli(['train', ...SMALL, '--epochs', '1', '--out', out]);
      expect(second.code, second.stderr).toBe(1);
      expect(second.stderr).toContain(`another training run (pid ${first.proc.pid}`);
      expect(second.stderr).not.toMatch(NO_STACK);
      expect(first.proc.exitCode).toBeNull();
    } finally {
      first.proc.kill('SIGKILL');
      await first.exited;
    }
    // SIGKILL left a stale lock: the next run breaks it
    const third = cli(['train', ...SMALL, '--epochs', '1', '--out', out]);
    expect(third.code, third.stderr).toBe(0);
  }, 120_000);

  it('Ctrl-C: stops after the step, exit 130, says what was saved and how to resume; that command resumes mid-epoch', async () => {
    const out = join(work, 'sigint');
    const run = startLong(out);
    await run.training;
    run.proc.kill('SIGINT');
    const code = await run.exited;
    const err = run.stderr();
    expect(code, err).toBe(130);
    expect(err).toContain('interrupted: saved');
    expect(err).toContain(join(out, 'checkpoint.safetensors'));
    expect(err).toMatch(/in epoch 1\/3 after step \d+\/128/);
    expect(err).not.toMatch(NO_STACK);
    const lines = err.split('\n');
    const resume = lines[lines.findIndex((l) => l.endsWith('resume with:')) + 1]!.trim().split(' ').slice(1);
    expect(resume.slice(0, 1).concat(resume.slice(-1))).toEqual(['train', '--resume']);
    const step = Number(readSafetensorsMetadataFile(join(out, 'checkpoint.safetensors')).step);
    expect(step).toBeGreaterThan(0);
    // the printed command, with fewer epochs so that the test stays short: the mismatch is reported, not a crash
    const r = cli(resume.map((x) => (x === '3' ? '1' : x)));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('epochs: the checkpoint planned 3, this run 1');
  }, 120_000);

  it('a tampered checkpoint epoch: our error and exit 1 (not "test accuracy NaN%" and exit 0)', () => {
    const out = join(work, 'tampered');
    expect(cli(['train', ...SMALL, '--epochs', '1', '--out', out]).code).toBe(0);
    const ckpt = join(out, 'checkpoint.safetensors');
    saveSafetensorsFile(ckpt, loadSafetensorsFile(ckpt), { ...readSafetensorsMetadataFile(ckpt), epoch: 'x' });
    const r = cli(['train', ...SMALL, '--epochs', '1', '--out', out, '--resume']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('corrupt metadata field "epoch"');
    expect(r.stdout).not.toContain('NaN');
    // corrupt history, the same way
    saveSafetensorsFile(ckpt, loadSafetensorsFile(ckpt), { ...readSafetensorsMetadataFile(ckpt), epoch: '1', history: '[{' });
    const h = cli(['train', ...SMALL, '--epochs', '1', '--out', out, '--resume']);
    expect(h.code).toBe(1);
    expect(h.stderr).toContain('corrupt metadata field "history"');
    expect(h.stderr).not.toMatch(NO_STACK);
    expect(readFileSync(ckpt).length).toBeGreaterThan(0);
  }, 60_000);

  it('--out under /proc: exit 1 at once, no hang', () => {
    const t0 = Date.now();
    const r = cli(['train', ...SMALL, '--epochs', '1', '--out', '/proc/nope/run']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('is on procfs');
    expect(Date.now() - t0).toBeLessThan(20_000);
  });
});
