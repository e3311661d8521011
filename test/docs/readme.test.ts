/**
 * Every code block of README.md runs as written. TypeScript blocks are written to temporary modules (with
 * 'resnet-ts' pointing at src/index.ts) and all type-checked with the repository's compiler options; then the
 * blocks run in README order in one temporary working directory, so that a block can use the files an earlier one
 * wrote (the ONNX sections: export, run, import, fine-tune). That directory starts with what a reader has after
 * `npm start` (runs/start/model.safetensors) and a photo (cat.jpg).
 *
 * Shell blocks: the `npx resnet-ts export` line runs the export command with its arguments, and the PyTorch ONNX
 * export's output is taken from the fixtures (tv_resnet18_op17 is that very export, torch.onnx.export of
 * torchvision's resnet18 at opset 17 with the same names and dynamic axes, with formula weights instead of
 * weights=None's random ones): tests never need torch. Other shell blocks (installs, long runs) are not run.
 * TypeScript blocks that need files a clean checkout does not have are only type-checked (TYPECHECK_ONLY); blocks
 * that start with '// not run here' (a package that does not install on this machine) are skipped.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { inspect } from 'node:util';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { COMMANDS } from '../../src/cli/commands.js';
import { saveSafetensorsFile } from '../../src/io/safetensors-file.js';
import { resnet18, resnet20 } from '../../src/models/index.js';
import { manualSeed } from '../../src/random.js';
import { loadFormula } from '../helpers/formula.js';
import { rebuildPytorchFixture } from '../helpers/onnx.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

/** Blocks that are type-checked but not run, found by a piece of their text, with the reason. */
const TYPECHECK_ONLY: [string, string][] = [
  ['data.loadFashionMnist()', 'needs the Fashion-MNIST files and trains for minutes'],
  ["io.loadSafetensorsFile('resnet50.safetensors')", 'needs a downloaded checkpoint'],
  ["new data.ImageFolder('/tmp/fm-a/train'", 'needs an image folder (resnet-ts export-images makes one)'],
];
/** Blocks the README itself marks as not run on this machine (a package that does not install here). */
const NOT_RUN_HERE = '// not run here';
const EXPORT_LINE = 'npx resnet-ts export ';
const TORCH_EXPORT = 'python3 -c "import torch, torchvision; torch.onnx.export(torchvision.models.resnet18';

interface Block {
  line: number;
  lang: string;
  code: string;
  /** The TypeScript module written for it (TypeScript blocks). */
  file?: string;
  run: boolean;
}

function readmeBlocks(): Block[] {
  const out: Block[] = [];
  const re = /^```(\w+)\n([\s\S]*?)^```/gm;
  for (let m = re.exec(README); m !== null; m = re.exec(README)) {
    const lang = m[1] === 'typescript' ? 'ts' : m[1]!;
    const code = m[2]!;
    const line = README.slice(0, m.index).split('\n').length;
    if (lang === 'ts') {
      if (code.startsWith(NOT_RUN_HERE)) continue;
      out.push({ line, lang, code, run: !TYPECHECK_ONLY.some(([text]) => code.includes(text)) });
    } else if (lang === 'sh' && (code.startsWith(EXPORT_LINE) || code.startsWith(TORCH_EXPORT))) {
      out.push({ line, lang, code, run: true });
    }
  }
  return out;
}

const blocks = readmeBlocks();
const tsBlocks = blocks.filter((b) => b.lang === 'ts');
// inside the checkout (node_modules/.cache), so that the blocks' imports of dev dependencies resolve
mkdirSync(join(ROOT, 'node_modules', '.cache'), { recursive: true });
const dir = mkdtempSync(join(ROOT, 'node_modules', '.cache', 'resnet-ts-readme-'));
writeFileSync(join(dir, 'package.json'), '{"type":"module"}\n');
const entry = join(ROOT, 'src', 'index.js');
tsBlocks.forEach((b, i) => {
  b.file = join(dir, `block${i}.ts`);
  // 'export {}' makes every block a module of its own (top-level names do not collide)
  writeFileSync(b.file, `${b.code.replace(/from 'resnet-ts'/g, `from '${entry}'`)}\nexport {};\n`);
});

/** What the blocks printed, by README line. */
const printed = new Map<number, string[]>();
const cwd = process.cwd();
beforeAll(() => {
  const work = join(dir, 'work');
  mkdirSync(join(work, 'runs/start'), { recursive: true });
  process.chdir(work);
  copyFileSync(join(ROOT, 'test/fixtures/predict/photo.jpg'), 'cat.jpg');
  manualSeed(0);
  saveSafetensorsFile('runs/start/model.safetensors', resnet20({ inChannels: 1 }).stateDict()); // what npm start writes
});
afterAll(() => {
  process.chdir(cwd);
  rmSync(dir, { recursive: true, force: true });
});

async function runBlock(b: Block): Promise<void> {
  if (b.lang === 'sh' && b.code.startsWith(EXPORT_LINE)) {
    await COMMANDS.export!.run(b.code.trim().split(/\s+/).slice(3));
  } else if (b.lang === 'sh') {
    const formula = resnet18();
    loadFormula(formula);
    writeFileSync('resnet18.onnx', rebuildPytorchFixture('tv_resnet18_op17', formula));
  } else {
    await import(pathToFileURL(b.file!).href);
  }
}

describe('README code blocks', () => {
  it('there are TypeScript blocks, and every type-check-only entry matches one', () => {
    expect(tsBlocks.length).toBeGreaterThan(5);
    for (const [text] of TYPECHECK_ONLY) expect(tsBlocks.some((b) => b.code.includes(text)), text).toBe(true);
    expect(blocks.filter((b) => b.lang === 'sh').length).toBe(2);
  });

  it('every TypeScript block type-checks (strict, the repository tsconfig)', () => {
    const cfg = ts.readConfigFile(join(ROOT, 'tsconfig.json'), ts.sys.readFile);
    const { options } = ts.parseJsonConfigFileContent(cfg.config, ts.sys, ROOT);
    const files = tsBlocks.map((b) => b.file!);
    const program = ts.createProgram(files, { ...options, noEmit: true, declaration: false, sourceMap: false, rootDir: undefined });
    const diags = ts.getPreEmitDiagnostics(program).filter((d) => d.file && files.includes(d.file.fileName));
    const text = diags.map((d) => {
      const i = files.indexOf(d.file!.fileName);
      const { line } = d.file!.getLineAndCharacterOfPosition(d.start ?? 0);
      return `README.md:${tsBlocks[i]!.line + 1 + line}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
    });
    expect(text).toEqual([]);
  }, 300_000);

  for (const b of blocks.filter((x) => x.run)) {
    it(`block at README.md:${b.line} runs`, async () => {
      const out: string[] = [];
      printed.set(b.line, out);
      const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.map((x) => (typeof x === 'string' ? x : inspect(x))).join(' ')));
      try {
        await runBlock(b);
      } finally {
        log.mockRestore();
      }
    }, 180_000);
  }

  it('the ONNX sections did what they say: export, run in onnxruntime-web, import and fine-tune', () => {
    const all = [...printed.values()].flat();
    expect(all.some((l) => /^wrote resnet20.onnx .*input \[batch, 1, 28, 28\]/.test(l))).toBe(true);
    expect(existsSync('resnet20.onnx')).toBe(true);
    expect(all).toContain('[ 4, 10 ]');
    expect(existsSync('fine-tuned.safetensors')).toBe(true);
  });
});
