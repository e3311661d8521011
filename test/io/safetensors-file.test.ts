import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SafetensorsError } from '../../src/io/safetensors.js';
import { writeFileAtomic } from '../../src/io/atomic-file.js';
import { loadSafetensorsFile, readSafetensorsMetadataFile, saveSafetensorsFile } from '../../src/io/safetensors-file.js';
import { Tensor } from '../../src/tensor.js';

const ROOT = mkdtempSync(join(tmpdir(), 'resnet-ts-safetensors-'));
afterAll(() => rmSync(ROOT, { recursive: true, force: true }));

let n = 0;
/** A fresh empty directory under the test's temp root. */
const freshDir = (): string => {
  const d = join(ROOT, `case${n++}`);
  mkdirSync(d);
  return d;
};

const tensors = (v: number): Record<string, Tensor> => ({
  'conv1.weight': new Tensor(new Float32Array([v, v + 1, v + 2, v + 3]), [1, 1, 2, 2]),
  'fc.bias': new Tensor(new Float32Array([-v]), [1]),
});

describe('writeFileAtomic', () => {
  it('writes, then overwrites; only the target is left in the directory', () => {
    const d = freshDir();
    const p = join(d, 'out.bin');
    writeFileAtomic(p, new Uint8Array([1, 2, 3]));
    expect(Array.from(readFileSync(p))).toEqual([1, 2, 3]);
    writeFileAtomic(p, new Uint8Array([9]));
    expect(Array.from(readFileSync(p))).toEqual([9]);
    writeFileAtomic(p, new Uint8Array(0));
    expect(readFileSync(p).length).toBe(0);
    expect(readdirSync(d)).toEqual(['out.bin']);
  });

  it('writes a view into a larger buffer as just its bytes', () => {
    const d = freshDir();
    const p = join(d, 'view.bin');
    const big = new Uint8Array([0, 0, 5, 6, 7, 0]);
    writeFileAtomic(p, big.subarray(2, 5));
    expect(Array.from(readFileSync(p))).toEqual([5, 6, 7]);
  });

  it('missing target directory: throws ENOENT and creates nothing', () => {
    const d = freshDir();
    expect(() => writeFileAtomic(join(d, 'nope', 'out.bin'), new Uint8Array([1]))).toThrow(/ENOENT/);
    expect(readdirSync(d)).toEqual([]);
  });

  it('rename fails (the target is a directory): the temp file is removed and the directory is untouched', () => {
    const d = freshDir();
    const target = join(d, 'taken');
    mkdirSync(target);
    writeFileSync(join(target, 'inside'), 'keep');
    expect(() => writeFileAtomic(target, new Uint8Array([1, 2]))).toThrow();
    expect(readdirSync(d)).toEqual(['taken']);
    expect(readFileSync(join(target, 'inside'), 'utf8')).toBe('keep');
  });

  it('keeps the permission bits of the file it replaces', () => {
    const d = freshDir();
    const p = join(d, 'mode.bin');
    writeFileSync(p, 'old');
    chmodSync(p, 0o640);
    writeFileAtomic(p, new Uint8Array([1]));
    expect(statSync(p).mode & 0o777).toBe(0o640);
  });

  it('removes temp files left by a writer that was killed (dead pid), keeps those of live writers', () => {
    const d = freshDir();
    const target = join(d, 'ckpt.safetensors');
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!; // a pid that has exited
    const stale = join(d, `.ckpt.safetensors.${dead}.0123456789ab.tmp`);
    const live = join(d, `.ckpt.safetensors.${process.ppid}.0123456789ab.tmp`);
    const other = join(d, `.other.safetensors.${dead}.0123456789ab.tmp`);
    for (const f of [stale, live, other]) writeFileSync(f, 'partial');
    writeFileAtomic(target, new Uint8Array([1, 2, 3]));
    expect(readdirSync(d).sort()).toEqual([`.ckpt.safetensors.${process.ppid}.0123456789ab.tmp`, `.other.safetensors.${dead}.0123456789ab.tmp`, 'ckpt.safetensors'].sort());
  });

  it('a very long target name still gets a valid temp name', () => {
    const d = freshDir();
    const p = join(d, 'x'.repeat(250));
    writeFileAtomic(p, new Uint8Array([4]));
    expect(Array.from(readFileSync(p))).toEqual([4]);
    expect(readdirSync(d)).toEqual(['x'.repeat(250)]);
  });
});

describe('saveSafetensorsFile / loadSafetensorsFile', () => {
  it('round trip with metadata; overwrite replaces the content', () => {
    const d = freshDir();
    const p = join(d, 'model.safetensors');
    saveSafetensorsFile(p, tensors(1), { format: 'pt' });
    let back = loadSafetensorsFile(p);
    expect(Object.keys(back).sort()).toEqual(['conv1.weight', 'fc.bias']);
    expect(back['conv1.weight']!.shape).toEqual([1, 1, 2, 2]);
    expect(Array.from(back['conv1.weight']!.data)).toEqual([1, 2, 3, 4]);
    expect({ ...readSafetensorsMetadataFile(p) }).toEqual({ format: 'pt' });
    saveSafetensorsFile(p, tensors(10));
    back = loadSafetensorsFile(p);
    expect(Array.from(back['fc.bias']!.data)).toEqual([-10]);
    expect({ ...readSafetensorsMetadataFile(p) }).toEqual({});
    expect(readdirSync(d)).toEqual(['model.safetensors']);
  });

  it('a tensor that cannot be serialized: SafetensorsError naming the path, previous file intact, no temp file', () => {
    const d = freshDir();
    const p = join(d, 'model.safetensors');
    saveSafetensorsFile(p, tensors(1));
    const before = readFileSync(p);
    let err: unknown;
    try {
      saveSafetensorsFile(p, { ...tensors(2), __metadata__: new Tensor(new Float32Array([0]), [1]) });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SafetensorsError);
    expect((err as SafetensorsError).kind).toBe('InvalidInput');
    expect((err as SafetensorsError).message).toContain(p);
    expect(readFileSync(p).equals(before)).toBe(true);
    expect(readdirSync(d)).toEqual(['model.safetensors']);
  });

  it('missing directory: throws, previous state unchanged', () => {
    const d = freshDir();
    expect(() => saveSafetensorsFile(join(d, 'missing', 'm.safetensors'), tensors(1))).toThrow(/ENOENT/);
    expect(readdirSync(d)).toEqual([]);
  });

  it('loading a malformed file: SafetensorsError with the kind kept and the path in the message', () => {
    const d = freshDir();
    const p = join(d, 'bad.safetensors');
    saveSafetensorsFile(p, tensors(1));
    const b = readFileSync(p);
    writeFileSync(p, b.subarray(0, b.length - 1));
    let err: unknown;
    try {
      loadSafetensorsFile(p);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SafetensorsError);
    expect((err as SafetensorsError).kind).toBe('MetadataIncompleteBuffer');
    expect((err as SafetensorsError).message).toMatch(new RegExp(`^\\[safetensors\\] MetadataIncompleteBuffer: ${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `));
  });

  it('loading a missing file: the fs error (ENOENT)', () => {
    expect(() => loadSafetensorsFile(join(freshDir(), 'none.safetensors'))).toThrow(/ENOENT/);
  });
});
