/**
 * Bombs and big files. Image headers that claim huge sizes are refused before anything is allocated (Pillow's
 * pixel limit, io.setMaxImagePixels; the JPEG plausibility check counts only bytes up to EOI); truncated JPEGs
 * are "image file is truncated" unless allowTruncated; safetensors files are read header first through a file
 * handle, then tensor by tensor, so files over 2 GiB load, a header costs only the header, and a corrupt 2 GiB file
 * costs nothing. Peak RSS is measured in child processes (compiled copy of src/, ./build.ts) on sparse files.
 * Ends with a seeded fuzz run (fast-check) of these paths.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync, ftruncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { decodeImage, getMaxImagePixels, ImageDecodeError, setMaxImagePixels } from '../../src/io/image.js';
import { pngFile } from '../../src/io/png-encode.js';
import { loadSafetensors, saveSafetensors, SafetensorsError } from '../../src/io/safetensors.js';
import { loadSafetensorsFile, readSafetensorsMetadataFile } from '../../src/io/safetensors-file.js';
import { Tensor } from '../../src/tensor.js';
import { measured } from './alloc.js';
import { buildDist, REPO } from './build.js';
import { expectError, runRows, type Row } from './rows.js';

const work = mkdtempSync(join(tmpdir(), 'resnet-ts-rel-bombs-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const fixture = (name: string): Uint8Array => new Uint8Array(readFileSync(join(REPO, 'test', 'fixtures', 'images', name)));

// ---- images ----------------------------------------------------------------------------------------------------

/** A PNG whose IHDR says width × height (colour type, depth), with an IDAT of `idat` bytes. */
function png(width: number, height: number, colorType: number, depth: number, idat: Uint8Array): Uint8Array {
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, width);
  dv.setUint32(4, height);
  ihdr[8] = depth;
  ihdr[9] = colorType;
  return pngFile(ihdr, idat);
}
/** The JPEG with its SOF0 size patched to width × height, and `pad` zero bytes after its EOI. */
function jpegClaiming(base: Uint8Array, width: number, height: number, pad: number): Uint8Array {
  const out = new Uint8Array(base.length + pad);
  out.set(base);
  let p = 2;
  while (!(out[p] === 0xff && out[p + 1] === 0xc0)) p += 2 + ((out[p + 2]! << 8) | out[p + 3]!);
  out[p + 5] = height >> 8;
  out[p + 6] = height & 255;
  out[p + 7] = width >> 8;
  out[p + 8] = width & 255;
  return out;
}

const base40 = fixture('jpg_base_420_40x32.jpg');
const prog = fixture('jpg_prog_420_33x17.jpg');
const zerosIdat = deflateSync(new Uint8Array(1000));

describe('image bombs: refused before allocation (at most 64 KiB allocated), Pillow\'s pixel limit', () => {
  afterEach(() => setMaxImagePixels(89_478_485));
  /** The call throws ImageDecodeError with the fragments, having asked for at most 64 KiB. */
  const refused = (bytes: () => Uint8Array) => () => {
    const input = bytes();
    const r = measured(() => decodeImage(input));
    expect(r.bytes, `allocated ${r.bytes} bytes`).toBeLessThan(65_536);
    throw r.error ?? new Error('decoded without an error');
  };
  const rows: Row[] = [
    ['PNG 16384×16384 RGBA16 (2 MB of zeros in the issue): over 2 × 89,478,485 pixels', refused(() => png(16384, 16384, 6, 16, zerosIdat)), ImageDecodeError,
      ['[png] IHDR: image size 16384x16384 (268435456 pixels) exceeds limit of 178956970 pixels', 'decompression bomb', 'setMaxImagePixels']],
    ['PNG 13400×13400 gray (179.6M pixels, just over twice the limit)', refused(() => png(13400, 13400, 0, 8, zerosIdat)), ImageDecodeError, ['exceeds limit of 178956970']],
    ['JPEG 40×32 claiming 16384×16384, 1 MB of zeros after EOI', refused(() => jpegClaiming(base40, 16384, 16384, 1 << 20)), ImageDecodeError, ['[jpeg] SOF0', 'exceeds limit of 178956970']],
    ['JPEG 40×32 claiming 8000×8000 (under the pixel limit), 2 MB of zeros after EOI: the zeros prove nothing', refused(() => jpegClaiming(base40, 8000, 8000, 2 << 20)), ImageDecodeError,
      ['[jpeg] SOF0', '8000x8000 needs', 'bytes after it (up to EOI) can encode']],
    ['JPEG 40×32 claiming 4000×4000, no padding', refused(() => jpegClaiming(base40, 4000, 4000, 0)), ImageDecodeError, ['4000x4000 needs']],
  ];
  runRows(rows);

  it('between the limit and twice it: a DecompressionBombWarning, then the decode goes on (here to the IDAT check)', () => {
    const warnings: string[] = [];
    const onWarning = (w: Error): void => void warnings.push(`${w.name}: ${w.message}`);
    process.on('warning', onWarning);
    const emit = process.emitWarning;
    process.emitWarning = ((w: string | Error, o?: { type?: string }) => void warnings.push(`${typeof o === 'object' ? o.type : ''}: ${String(w)}`)) as typeof process.emitWarning;
    try {
      expectError(() => decodeImage(png(9500, 9500, 0, 8, zerosIdat)), ImageDecodeError, ['IDAT: 1', 'compressed bytes cannot hold']);
    } finally {
      process.emitWarning = emit;
      process.off('warning', onWarning);
    }
    expect(warnings).toEqual(['DecompressionBombWarning: [png] IHDR: image size 9500x9500 (90250000 pixels) exceeds limit of 89478485 pixels, could be decompression bomb DOS attack.']);
  });

  it('setMaxImagePixels: a lower limit refuses a small image; null lifts it; bad values are refused', () => {
    const small = fixture('jpg_base_420_33x17.jpg');
    setMaxImagePixels(200); // 561 pixels > 2 × 200
    expectError(() => decodeImage(small), ImageDecodeError, ['33x17 (561 pixels) exceeds limit of 400 pixels']);
    setMaxImagePixels(null);
    expect(getMaxImagePixels()).toBeNull();
    expect(decodeImage(small).width).toBe(33);
    for (const bad of [0, -1, 1.5, NaN, '100']) expectError(() => setMaxImagePixels(bad as number), ImageDecodeError, ['[setMaxImagePixels]']);
  });

  it('control: the same 40×32 JPEG with its true size decodes, padding after EOI and all', () => {
    expect(decodeImage(jpegClaiming(base40, 40, 32, 1 << 20)).width).toBe(40);
  });
});

describe('truncated JPEGs: "image file is truncated" by default (as Pillow), partial images on request', () => {
  it(`every cut of a progressive JPEG (${prog.length - 2} cuts) is refused by default; allowTruncated decodes a part of them`, () => {
    let refusedCount = 0, partial = 0;
    for (let cut = 2; cut < prog.length; cut++) {
      const bytes = prog.subarray(0, cut);
      try {
        decodeImage(bytes);
      } catch (e) {
        expect(e).toBeInstanceOf(ImageDecodeError);
        refusedCount++;
      }
      try {
        const img = decodeImage(bytes, { allowTruncated: true });
        expect([img.width, img.height]).toEqual([33, 17]);
        partial++;
      } catch (e) {
        expect(e).toBeInstanceOf(ImageDecodeError);
      }
    }
    expect(refusedCount).toBe(prog.length - 2);
    expect(partial).toBeGreaterThan(300); // 341 of the 926
  });

  it('the default error says what to do; a baseline JPEG cut mid-scan decodes with allowTruncated (the rest gray as libjpeg pads it)', () => {
    const jpg = fixture('jpg_base_420_33x17.jpg');
    const cut = jpg.subarray(0, jpg.length - 40);
    expectError(() => decodeImage(cut), ImageDecodeError, ['[jpeg] truncated: image file is truncated', 'allowTruncated: true']);
    const img = decodeImage(cut, { allowTruncated: true });
    expect([img.width, img.height, img.channels]).toEqual([33, 17, 3]);
    expect(decodeImage(jpg).data).not.toEqual(img.data);
  });
});

// ---- safetensors files, in child processes --------------------------------------------------------------------

/** A sparse safetensors file: one F32 tensor 'big' of `floats` elements (zeros but the last, 1.5), optionally cut short. */
function sparseSafetensors(path: string, floats: number, cutBytes = 0): number {
  const header = JSON.stringify({ __metadata__: { note: 'sparse' }, big: { dtype: 'F32', shape: [floats], data_offsets: [0, floats * 4] } });
  const h = new TextEncoder().encode(header.padEnd(Math.ceil((header.length) / 8) * 8, ' '));
  const size = 8 + h.length + floats * 4 - cutBytes;
  const fd = openSync(path, 'w');
  try {
    const len = new Uint8Array(8);
    new DataView(len.buffer).setBigUint64(0, BigInt(h.length), true);
    writeSync(fd, len, 0, 8, 0);
    writeSync(fd, h, 0, h.length, 8);
    ftruncateSync(fd, size);
    if (!cutBytes) writeSync(fd, new Uint8Array(new Float32Array([1.5]).buffer), 0, 4, size - 4);
  } finally {
    closeSync(fd);
  }
  return size;
}

let dist = '';
beforeAll(() => {
  dist = join(buildDist(), 'dist');
}, 300_000);

/** Runs `body` (ES module code with loadSafetensorsFile / readSafetensorsMetadataFile in scope) in a child; returns its JSON and peak RSS in MB. */
function child(body: string): { result: Record<string, unknown>; peakMB: number } {
  const script = `
import { pathToFileURL } from 'node:url';
const { loadSafetensorsFile, readSafetensorsMetadataFile } = await import(pathToFileURL(${JSON.stringify(join(dist, 'io', 'safetensors-file.js'))}).href);
let result;
try { result = await (async () => { ${body} })(); } catch (e) { result = { error: e.name + ': ' + e.message, code: e.code ?? null }; }
process.stdout.write(JSON.stringify({ result, peakMB: process.resourceUsage().maxRSS / 1024 }));
`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 120_000, maxBuffer: 1 << 20 });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as { result: Record<string, unknown>; peakMB: number };
}

describe('safetensors files: header first, then each tensor into its own buffer (peak RSS in a child process)', () => {
  const GiB = 2 ** 30;

  it('readSafetensorsMetadataFile of a 2.5 GiB file reads the header only (peak RSS < 120 MB)', () => {
    const path = join(work, 'meta.safetensors');
    const size = sparseSafetensors(path, (2.5 * GiB) / 4);
    expect(size).toBeGreaterThan(2.5 * GiB);
    const { result, peakMB } = child(`return readSafetensorsMetadataFile(${JSON.stringify(path)});`);
    expect(result).toEqual({ note: 'sparse' });
    expect(peakMB).toBeLessThan(120);
  });

  it('a 2.5 GiB file whose data is cut short fails before any tensor is read (peak RSS < 120 MB)', () => {
    const path = join(work, 'cut.safetensors');
    sparseSafetensors(path, (2.5 * GiB) / 4, 1000);
    const { result, peakMB } = child(`return loadSafetensorsFile(${JSON.stringify(path)});`);
    expect(result.error).toMatch(/^SafetensorsError: \[safetensors\] MetadataIncompleteBuffer: .*cut\.safetensors: the tensors need \d+ bytes of data but the file has only/);
    expect(peakMB).toBeLessThan(120);
  });

  it('a file over 2 GiB loads (readFileSync refuses files > 2 GiB): one 2 GiB + 64 B tensor, peak RSS ≤ tensor + 150 MB', () => {
    const path = join(work, 'big.safetensors');
    const floats = GiB / 2 + 16;
    const size = sparseSafetensors(path, floats);
    expect(size).toBeGreaterThan(2 * GiB);
    const { result, peakMB } = child(`const t = loadSafetensorsFile(${JSON.stringify(path)}).big; return { n: t.data.length, last: t.data[t.data.length - 1], first: t.data[0], shape: t.shape };`);
    expect(result).toEqual({ n: floats, last: 1.5, first: 0, shape: [floats] });
    expect(peakMB).toBeLessThan((floats * 4) / 2 ** 20 + 150);
  }, 240_000);

  it('1e6 tiny tensors: peak RSS under 13× the file size (11× measured: header numbers cost no heap object)', () => {
    const path = join(work, 'tiny.safetensors');
    const n = 1_000_000;
    const entries: string[] = [];
    for (let i = 0; i < n; i++) entries.push(`"t${i}":{"dtype":"F32","shape":[1],"data_offsets":[${i * 4},${i * 4 + 4}]}`);
    const text = `{${entries.join(',')}}`;
    const header = new TextEncoder().encode(text.padEnd(Math.ceil(text.length / 8) * 8, ' '));
    const bytes = new Uint8Array(8 + header.length + n * 4);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(header.length), true);
    bytes.set(header, 8);
    new Float32Array(bytes.buffer, 8 + header.length, n).set(Float32Array.from({ length: n }, (_, i) => i));
    writeFileSync(path, bytes);
    const fileMB = bytes.length / 2 ** 20;
    const { result, peakMB } = child(`const r = loadSafetensorsFile(${JSON.stringify(path)}); const k = Object.keys(r); return { n: k.length, last: r['t999999'].data[0] };`);
    expect(result).toEqual({ n, last: 999_999 });
    console.log(`1e6 tiny tensors: file ${fileMB.toFixed(1)} MB, peak RSS ${peakMB.toFixed(0)} MB (${(peakMB / fileMB).toFixed(1)}×)`);
    expect(peakMB / fileMB).toBeLessThan(13);
  }, 240_000); // ~25 s alone; a child process that builds 1e6 tensors takes minutes on a loaded machine
});

describe('safetensors file helpers: our errors naming the path, never a raw ENOENT / EISDIR', () => {
  const rows: Row[] = [
    ['loadSafetensorsFile of a missing file', () => loadSafetensorsFile(join(work, 'nope.safetensors')), SafetensorsError, ['[safetensors] Io:', 'nope.safetensors: no such file (ENOENT)']],
    ['loadSafetensorsFile of a directory', () => loadSafetensorsFile(work), SafetensorsError, ['[safetensors] Io:', 'is a directory, not a file']],
    ['readSafetensorsMetadataFile of a missing file', () => readSafetensorsMetadataFile(join(work, 'nope2.safetensors')), SafetensorsError, ['nope2.safetensors: no such file']],
    ['readSafetensorsMetadataFile of a directory', () => readSafetensorsMetadataFile(work), SafetensorsError, ['is a directory']],
    ['loadSafetensorsFile(42)', () => loadSafetensorsFile(42 as unknown as string), SafetensorsError, ['the path must be a string, got number']],
  ];
  runRows(rows);
});

// ---- seeded fuzz -----------------------------------------------------------------------------------------------

describe('seeded fuzz (fast-check, seed 22)', () => {
  it('safetensors read through the file handle = read from memory: same tensors, or the same error kind (300 files)', () => {
    const path = join(work, 'fuzz.safetensors');
    fc.assert(
      fc.property(
        fc.array(fc.record({ n: fc.integer({ min: 0, max: 3000 }), v: fc.float({ noNaN: true }) }), { minLength: 1, maxLength: 5 }),
        fc.oneof(fc.constant({ kind: 'none' as const, at: 0, by: 0 }), fc.record({ kind: fc.constantFrom('cut' as const, 'flip' as const), at: fc.nat(), by: fc.integer({ min: 1, max: 255 }) })),
        (tensors, mutation) => {
          const t: Record<string, Tensor> = {};
          tensors.forEach(({ n, v }, i) => (t[`w${i}`] = new Tensor(new Float32Array(n).fill(v), [n])));
          let bytes = saveSafetensors(t, { i: String(tensors.length) });
          if (mutation.kind === 'cut') bytes = bytes.subarray(0, mutation.at % bytes.length);
          if (mutation.kind === 'flip') {
            bytes = bytes.slice();
            bytes[mutation.at % Math.min(bytes.length, 200)]! ^= mutation.by;
          }
          writeFileSync(path, bytes);
          let want: Record<string, Tensor> | string, got: Record<string, Tensor> | string;
          try {
            want = loadSafetensors(bytes);
          } catch (e) {
            want = (e as SafetensorsError).kind ?? String(e);
          }
          try {
            got = loadSafetensorsFile(path);
          } catch (e) {
            expect(e).toBeInstanceOf(SafetensorsError);
            got = (e as SafetensorsError).kind;
          }
          if (typeof want === 'string') {
            expect(got).toBe(want);
            return;
          }
          expect(typeof got).toBe('object');
          const g = got as Record<string, Tensor>;
          expect(Object.keys(g)).toEqual(Object.keys(want));
          for (const k of Object.keys(want)) expect(g[k]!.data).toEqual(want[k]!.data);
        },
      ),
      { seed: 22, numRuns: 300 },
    );
  }, 60_000);

  it('image headers claiming random sizes over random padding: refused or decoded, never more than 64 KiB allocated for a refusal (400 files)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 65535 }), fc.integer({ min: 1, max: 65535 }), fc.integer({ min: 0, max: 1 << 16 }), fc.boolean(), (w, h, pad, asPng) => {
        const bytes = asPng ? png(w, h, 6, 16, zerosIdat) : jpegClaiming(base40, w, h, pad);
        const r = measured(() => decodeImage(bytes));
        if (r.error !== undefined) {
          expect(r.error).toBeInstanceOf(ImageDecodeError);
          expect(r.bytes).toBeLessThan(65_536 + 4 * w * h * (asPng ? 8 : 0)); // a PNG may get as far as inflating its IDAT
          if (!asPng) expect(r.bytes).toBeLessThan(65_536);
        } else {
          expect(r.value!.width * r.value!.height).toBeLessThanOrEqual(2 * 89_478_485);
        }
      }),
      { seed: 22, numRuns: 400 },
    );
  });

  it('random cuts of random fixtures: without allowTruncated a JPEG missing its end is always refused (300 cuts)', () => {
    const names = ['jpg_prog_420_33x17.jpg', 'jpg_base_420_33x17.jpg', 'jpg_multiscan_seq_420_61x45.jpg', 'jpg_prog_420_13x9.jpg'];
    const files = names.map(fixture);
    fc.assert(
      fc.property(fc.nat({ max: files.length - 1 }), fc.nat(), (fi, at) => {
        const f = files[fi]!;
        const cut = f.subarray(0, 2 + (at % (f.length - 2)));
        expectError(() => decodeImage(cut), ImageDecodeError, ['[jpeg]']);
      }),
      { seed: 22, numRuns: 300 },
    );
  });
});
