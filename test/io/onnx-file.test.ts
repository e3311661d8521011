/**
 * saveOnnxFile / loadOnnxFile (atomic writes, the path in errors) and the `resnet-ts export` command.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { UsageError } from '../../src/cli/args.js';
import { COMMANDS } from '../../src/cli/commands.js';
import { exportModel } from '../../src/cli/export.js';
import { noGrad } from '../../src/autograd.js';
import { exportOnnx, OnnxError } from '../../src/io/onnx.js';
import { loadOnnxFile, saveOnnxFile } from '../../src/io/onnx-file.js';
import { saveSafetensorsFile } from '../../src/io/safetensors-file.js';
import { resnet20 } from '../../src/models/index.js';
import { Linear, Sequential } from '../../src/nn/layers.js';
import { Module } from '../../src/nn/module.js';
import type { Tensor } from '../../src/tensor.js';
import { manualSeed } from '../../src/random.js';
import { formulaInput, loadFormula } from '../helpers/formula.js';
import { expectClose, ortRun, ortSession } from '../helpers/onnx.js';

const dir = mkdtempSync(join(tmpdir(), 'resnet-ts-onnx-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const errorOf = (fn: () => unknown): unknown => {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('nothing was thrown');
};

describe('saveOnnxFile / loadOnnxFile', () => {
  it('writes exportOnnx’s bytes, replaces a previous file, leaves no temp file; loads back', () => {
    manualSeed(0);
    const m = resnet20().eval();
    const p = join(dir, 'model.onnx');
    writeFileSync(p, 'old');
    saveOnnxFile(p, m, { inputShape: [1, 3, 32, 32] });
    expect(Buffer.compare(readFileSync(p), Buffer.from(exportOnnx(m, { inputShape: [1, 3, 32, 32] })))).toBe(0);
    expect(readdirSync(dir)).toEqual(['model.onnx']);
    const x = formulaInput([1, 3, 32, 32]);
    expectClose(noGrad(() => loadOnnxFile(p).forward(x)).data, noGrad(() => m.forward(x)).data, 'loadOnnxFile');
  });

  it('an export error names the path and leaves the old file as it was', () => {
    const p = join(dir, 'keep.onnx');
    writeFileSync(p, 'previous');
    const e = errorOf(() => saveOnnxFile(p, resnet20(), { inputShape: [1, 3, 32] }));
    expect(e).toBeInstanceOf(OnnxError);
    expect((e as OnnxError).kind).toBe('InvalidOptions');
    expect((e as OnnxError).message).toContain(p);
    expect(readFileSync(p, 'utf8')).toBe('previous');
  });

  it('a malformed file: OnnxError with the kind kept and the path in the message', () => {
    const p = join(dir, 'bad.onnx');
    writeFileSync(p, Buffer.from([0x3a, 0x05, 0x01]));
    const e = errorOf(() => loadOnnxFile(p)) as OnnxError;
    expect(e.kind).toBe('Truncated');
    expect(e.message).toContain(`${p}: graph: a length-delimited field of 5 bytes runs past the end`);
  });
});

describe('exportOnnx options', () => {
  it('refuses a bad input shape, opset, channel count, and modules it cannot write', () => {
    const m = resnet20();
    const kind = (fn: () => unknown): string => (errorOf(fn) as OnnxError).kind;
    expect(kind(() => exportOnnx(m, { inputShape: [1, 3, 32, 0] }))).toBe('InvalidOptions');
    expect(kind(() => exportOnnx(m, { inputShape: [1, 3, 32, 32], opset: 10 }))).toBe('InvalidOptions');
    expect(kind(() => exportOnnx(m, { inputShape: [1, 1, 32, 32] }))).toBe('InvalidOptions');
    class Custom extends Module {
      forward(x: Tensor): Tensor {
        return x;
      }
    }
    const e = errorOf(() => exportOnnx(new Sequential(new Linear(4, 4), new Custom()), { inputShape: [1, 3, 8, 8] })) as OnnxError;
    expect(e.kind).toBe('UnsupportedModule');
    expect(e.message).toContain('1: no ONNX export for Custom');
  });
});

describe('resnet-ts export', () => {
  it('is registered as a command', () => {
    expect(COMMANDS.export).toBeDefined();
    expect(COMMANDS.export!.help).toContain('--fold-bn');
  });

  it('exports a .safetensors checkpoint; onnxruntime-web gives our logits with it', async () => {
    const m = resnet20().eval();
    loadFormula(m);
    const w = join(dir, 'r20.safetensors');
    saveSafetensorsFile(w, m.stateDict());
    const out = join(dir, 'r20.onnx');
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    await COMMANDS.export!.run(['--model', 'resnet20', '--weights', w, '--out', out, '--opset', '13', '--fold-bn']);
    expect(log.mock.calls[0]![0]).toContain('input [batch, 3, 32, 32], output logits, opset 13, BatchNorm folded');
    log.mockRestore();
    const s = await ortSession(new Uint8Array(readFileSync(out)));
    const x = formulaInput([2, 3, 32, 32]);
    expectClose((await ortRun(s, x)).data, noGrad(() => m.forward(x)).data, 'export command');
    await s.release();
  });

  it('usage errors: missing --model / --out, bad --opset, bad --input, unknown model; a missing weights file', () => {
    const run = (args: string[]): unknown => errorOf(() => COMMANDS.export!.run(args));
    expect(run(['--out', 'x.onnx'])).toBeInstanceOf(UsageError);
    expect(run(['--model', 'resnet20'])).toBeInstanceOf(UsageError);
    expect(run(['--model', 'resnet20', '--out', join(dir, 'a.onnx'), '--opset', '9'])).toBeInstanceOf(UsageError);
    expect(run(['--model', 'resnet20', '--out', join(dir, 'a.onnx'), '--input', '1,3,x'])).toBeInstanceOf(UsageError);
    expect(run(['--model', 'resnet7', '--out', join(dir, 'a.onnx')])).toBeInstanceOf(UsageError);
    const e = errorOf(() => exportModel({ model: 'resnet20', out: join(dir, 'a.onnx'), weights: join(dir, 'none.safetensors') }));
    expect(String(e)).toContain('no such file');
    expect(readdirSync(dir)).not.toContain('a.onnx');
  });
});
