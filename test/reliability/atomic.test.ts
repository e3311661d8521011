/**
 * Nothing lost when a process dies: child processes (from a compiled copy of src/, ./build.ts) are SIGKILLed while
 * they write a checkpoint or train, and what they leave behind is checked.
 *
 * - A write interrupted half-way: the child's fs.writeSync is wrapped to stop (block forever) once half of a 32 MiB
 *   safetensors file is in the temp file, and the parent kills it there. The target must still be the old file,
 *   byte for byte, and load. Then the same without any hook, killed at several moments of a real 48 MiB write:
 *   the target must always be either the old file or the complete new one.
 * - Training killed during epoch 2 (the child blocks after epoch 2's first step), and training killed in the middle
 *   of writing epoch 2's checkpoint: the epoch-1 checkpoint is intact, and `--resume` (runTraining with resume: true,
 *   in a fresh process) ends with the same model, optimizer state and metrics as an uninterrupted run (in-process,
 *   from src/), bit for bit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runTraining, type RunOptions, type TrainArgs } from '../../src/cli/train.js';
import { loadSafetensorsFile, readSafetensorsMetadataFile, saveSafetensorsFile } from '../../src/io/safetensors-file.js';
import { Tensor } from '../../src/tensor.js';
import { buildDist } from './build.js';

let root = '';
const work = mkdtempSync(join(tmpdir(), 'resnet-ts-rel-atomic-'));
const children: ChildProcess[] = [];
beforeAll(() => {
  root = buildDist();
  writeFileSync(join(work, 'writer.mjs'), WRITER);
  writeFileSync(join(work, 'trainer.mjs'), TRAINER);
}, 300_000);
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

// ---- the child scripts ---------------------------------------------------------------------------------------

/** Shared by both children: stall hooks on node:fs and a way to talk to the parent that bypasses them. */
const HOOKS = `
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { pathToFileURL } from 'node:url';
import { join, basename } from 'node:path';
const realWrite = fs.writeSync, realOpen = fs.openSync, realClose = fs.closeSync;
export const say = (s) => void realWrite(1, s + '\\n');           // fd 1 directly: never through the hook
export const stall = () => { for (;;) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0); };
export const load = (dist, f) => import(pathToFileURL(join(dist, f)).href);
/** Makes the n-th file opened whose name starts with prefix stop forever once half of it is written. */
export function stallHalfWay(prefix, nth) {
  const files = new Map();
  let opened = 0;
  fs.openSync = function (p, ...rest) {
    const fd = realOpen.call(this, p, ...rest);
    if (basename(String(p)).startsWith(prefix) && ++opened === nth) files.set(fd, { path: String(p), written: 0, total: -1 });
    return fd;
  };
  fs.writeSync = function (fd, buf, off, len, ...rest) {
    const f = files.get(fd);
    if (f === undefined) return realWrite.call(this, fd, buf, off, len, ...rest);
    if (f.total < 0) f.total = len;
    if (f.written >= f.total / 2) {
      say('stalled ' + f.written + ' ' + f.total + ' ' + f.path);
      stall();
    }
    // at most 1 MiB, and at most half the file, per call: so a small file is also caught half-way
    const k = realWrite.call(this, fd, buf, off, Math.min(len, 1 << 20, Math.ceil(f.total / 2)), ...rest);
    f.written += k;
    return k;
  };
  fs.closeSync = function (fd, ...rest) {
    files.delete(fd);   // fd numbers are reused by the next open
    return realClose.call(this, fd, ...rest);
  };
  syncBuiltinESMExports();
}
`;

/** writer.mjs DIST TARGET FLOATS MODE: saves one tensor of FLOATS values (i % 1000 + 0.5) over TARGET. */
const WRITER = `${HOOKS}
const [dist, target, floats, mode] = process.argv.slice(2);
if (mode === 'stall') stallHalfWay('.' + basename(target) + '.', 1);
const { saveSafetensorsFile } = await load(dist, 'io/safetensors-file.js');
const { Tensor } = await load(dist, 'tensor.js');
const data = new Float32Array(Number(floats));
for (let i = 0; i < data.length; i++) data[i] = (i % 1000) + 0.5;
say('writing');
saveSafetensorsFile(target, { big: new Tensor(data, [data.length]) }, { version: 'new' });
say('done');
`;

/** trainer.mjs DIST JSON-OPTIONS MODE: runTraining; MODE stall-epoch2 / stall-ckpt2 / run. */
const TRAINER = `${HOOKS}
const [dist, json, mode] = process.argv.slice(2);
if (mode === 'stall-ckpt2') stallHalfWay('.checkpoint.safetensors.', 2);
if (mode === 'stall-epoch2') {
  const real = process.stderr.write.bind(process.stderr);
  process.stderr.write = (chunk, ...rest) => {
    const r = real(chunk, ...rest);
    if (String(chunk).includes('epoch 2/2 [')) { say('stalled in epoch 2: ' + String(chunk).trim()); stall(); }
    return r;
  };
}
const { runTraining } = await load(dist, 'cli/train.js');
runTraining({ ...JSON.parse(json), quiet: false, log: (s) => say('log ' + s) });
say('done');
`;

// ---- helpers -------------------------------------------------------------------------------------------------

interface Child { proc: ChildProcess; out: string[]; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> }

function start(script: string, args: string[]): Child {
  const proc = spawn(process.execPath, [join(work, script), join(root, 'dist'), ...args], { cwd: work, env: { ...process.env, RESNET_TS_THREADS: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(proc);
  const out: string[] = [];
  let buf = '';
  proc.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    const lines = buf.split('\n');
    buf = lines.pop()!;
    out.push(...lines);
  });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => void (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('exit', (code, signal) => {
      if (code !== 0 && signal === null) out.push(`(stderr) ${err}`);
      resolve({ code, signal });
    }),
  );
  return { proc, out, exited };
}

/** Resolves with the first stdout line starting with `prefix`; rejects if the child exits first or on timeout. */
async function waitFor(c: Child, prefix: string, ms = 60_000): Promise<string> {
  const t0 = Date.now();
  for (;;) {
    const line = c.out.find((l) => l.startsWith(prefix));
    if (line !== undefined) return line;
    if (c.proc.exitCode !== null || c.proc.signalCode !== null) throw new Error(`child exited before '${prefix}':\n${c.out.join('\n')}`);
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for '${prefix}':\n${c.out.join('\n')}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function kill(c: Child): Promise<void> {
  c.proc.kill('SIGKILL');
  const r = await c.exited;
  expect(r.signal).toBe('SIGKILL');
}

async function runToEnd(c: Child): Promise<void> {
  const r = await c.exited;
  expect(r, c.out.join('\n')).toEqual({ code: 0, signal: null });
}

const bits = (t: Tensor): number[] => Array.from(new Uint32Array(t.data.buffer, t.data.byteOffset, t.data.length));

/** Every tensor of two safetensors files equal bit for bit (NaN-safe), and the same keys. */
function expectSameTensors(got: string, want: string): void {
  const a = loadSafetensorsFile(got), b = loadSafetensorsFile(want);
  expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort());
  for (const k of Object.keys(b)) {
    expect(a[k]!.shape, k).toEqual(b[k]!.shape);
    expect(bits(a[k]!), k).toEqual(bits(b[k]!));
  }
}

// ---- an interrupted write ------------------------------------------------------------------------------------

describe('a checkpoint write killed part-way leaves the previous file intact', () => {
  const old = new Tensor(Float32Array.from([1, 2, 3]), [3]);

  it('killed with half of a 32 MiB file written: the target is still the old file, byte for byte, and loads', async () => {
    const dir = mkdtempSync(join(work, 'stall-'));
    const target = join(dir, 'checkpoint.safetensors');
    saveSafetensorsFile(target, { small: old }, { version: 'old' });
    const oldBytes = readFileSync(target);
    const c = start('writer.mjs', [target, String(8 * 2 ** 20), 'stall']);
    const [, written, total, tmp] = (await waitFor(c, 'stalled ')).split(' ') as [string, string, string, string];
    // the kill lands mid-write: a partial temp file next to the target, the target untouched so far
    expect(Number(written)).toBeGreaterThanOrEqual(Number(total) / 2);
    expect(Number(written)).toBeLessThan(Number(total));
    expect(Number(total)).toBeGreaterThan(32 * 2 ** 20);
    expect(join(dir, basename(tmp))).toBe(tmp);
    expect(statSync(tmp).size).toBe(Number(written));
    await kill(c);
    expect(readFileSync(target).equals(oldBytes)).toBe(true);
    expect(readSafetensorsMetadataFile(target)).toEqual({ version: 'old' });
    expect(Array.from(loadSafetensorsFile(target).small!.data)).toEqual([1, 2, 3]);
  }, 60_000);

  it('killed at 0, 15, 60 and 250 ms into a real (unhooked) 48 MiB write: always the old file or the whole new one', async () => {
    const floats = 12 * 2 ** 20;
    const outcomes: string[] = [];
    for (const delay of [0, 15, 60, 250]) {
      const dir = mkdtempSync(join(work, `free-${delay}-`));
      const target = join(dir, 'checkpoint.safetensors');
      saveSafetensorsFile(target, { small: old }, { version: 'old' });
      const oldBytes = readFileSync(target);
      const c = start('writer.mjs', [target, String(floats), 'free']);
      await waitFor(c, 'writing');
      await new Promise((r) => setTimeout(r, delay));
      c.proc.kill('SIGKILL');
      await c.exited;
      const now = readFileSync(target);
      if (now.equals(oldBytes)) {
        outcomes.push(`${delay} ms: old`);
        continue;
      }
      // otherwise it must be the complete new file
      outcomes.push(`${delay} ms: new`);
      expect(readSafetensorsMetadataFile(target)).toEqual({ version: 'new' });
      const big = loadSafetensorsFile(target).big!;
      expect(big.shape).toEqual([floats]);
      for (const i of [0, 1, 999, 1000, floats - 1]) expect(big.data[i]).toBe((i % 1000) + 0.5);
    }
    expect(outcomes.length).toBe(4);
  }, 120_000);
});

// ---- training killed, then resumed -----------------------------------------------------------------------------

describe('training killed in epoch 2 resumes to the uninterrupted result, bit for bit', () => {
  const args = (out: string): TrainArgs & RunOptions => ({
    model: 'resnet20', data: 'synthetic', epochs: 2, batchSize: 16, lr: 0.05, momentum: 0.9, weightDecay: 1e-4,
    schedule: 'cosine', out, seed: 7, resume: false, subset: 64, testSubset: 32, augment: true, threads: 1,
    modelOptions: { widths: [4, 8, 8] },
  });
  const reference = join(work, 'reference');
  type Metrics = { epochs: Record<string, number>[]; steps: { iteration: number; loss: number }[] };
  const metrics = (dir: string): Metrics => JSON.parse(readFileSync(join(dir, 'metrics.json'), 'utf8')) as Metrics;

  beforeAll(() => {
    runTraining({ ...args(reference), quiet: true, log: () => {} });
  }, 120_000);

  /** Runs the stalling child, kills it, checks the epoch-1 checkpoint, resumes in a fresh process, compares. */
  async function killThenResume(mode: 'stall-epoch2' | 'stall-ckpt2'): Promise<string> {
    const out = join(work, mode);
    const c = start('trainer.mjs', [JSON.stringify(args(out)), mode]);
    const line = await waitFor(c, 'stalled');
    await kill(c);
    // what the kill left: the epoch-1 checkpoint, whole
    const ckpt = join(out, 'checkpoint.safetensors');
    expect(readSafetensorsMetadataFile(ckpt).epoch).toBe('1');
    expect(Object.keys(loadSafetensorsFile(ckpt)).length).toBeGreaterThan(0);
    expect(metrics(out).epochs.length).toBe(1);
    // resume in a new process
    const r = start('trainer.mjs', [JSON.stringify({ ...args(out), resume: true }), 'run']);
    await runToEnd(r);
    expect(r.out.some((l) => l.startsWith('log resuming') && l.includes('after epoch 1'))).toBe(true);
    // the same end state as the run that was never interrupted
    expectSameTensors(join(out, 'model.safetensors'), join(reference, 'model.safetensors'));
    expectSameTensors(ckpt, join(reference, 'checkpoint.safetensors'));
    const meta = readSafetensorsMetadataFile(ckpt), want = readSafetensorsMetadataFile(join(reference, 'checkpoint.safetensors'));
    for (const k of ['epoch', 'args', 'optimizer', 'scheduler']) expect(meta[k], k).toBe(want[k]);
    const got = metrics(out).epochs, ref = metrics(reference).epochs;
    expect(got.length).toBe(2);
    for (const k of ['epoch', 'trainLoss', 'trainAccuracy', 'testLoss', 'testAccuracy']) expect(got.map((e) => e[k]), k).toEqual(ref.map((e) => e[k]));
    return line;
  }

  it('killed after epoch 2\'s first step', async () => {
    const line = await killThenResume('stall-epoch2');
    expect(line).toContain('epoch 2/2 [');
    expect(line).toContain('1/4');
  }, 120_000);

  it('killed half-way through writing epoch 2\'s checkpoint', async () => {
    const line = await killThenResume('stall-ckpt2');
    expect(line).toMatch(/\.checkpoint\.safetensors\.\d+\.[0-9a-f]+\.tmp$/);
  }, 120_000);

  it('the reference run itself: 2 epochs, 8 steps, a checkpoint of epoch 2', () => {
    expect(readSafetensorsMetadataFile(join(reference, 'checkpoint.safetensors')).epoch).toBe('2');
    expect(metrics(reference).steps.length).toBe(8);
    expect(existsSync(join(reference, 'model.safetensors'))).toBe(true);
    expect(readdirSync(reference).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });
});
