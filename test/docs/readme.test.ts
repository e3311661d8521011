/**
 * Every TypeScript code block of README.md runs as written: each block is written to a temporary module (with
 * 'resnet-ts' pointing at src/index.ts), all blocks are type-checked with the repository's compiler options, and
 * the short ones are run. Blocks that need files a clean checkout does not have are only type-checked (TYPECHECK_ONLY);
 * blocks that start with '// not run here' (a package that does not install on this machine) are skipped.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

/** Blocks that are type-checked but not run, found by a piece of their text, with the reason. */
const TYPECHECK_ONLY: [string, string][] = [
  ['data.loadFashionMnist()', 'needs the Fashion-MNIST files and trains for minutes'],
  ["io.loadSafetensorsFile('resnet50.safetensors')", 'needs a downloaded checkpoint'],
  ["io.saveOnnxFile('resnet18.onnx'", 'writes a file into the working directory'],
  ["readFileSync('resnet18.onnx')", 'needs an exported model file'],
  ["io.loadOnnxFile('resnet18.onnx')", 'needs a PyTorch export and an image'],
  ["new data.ImageFolder('/tmp/fm-a/train'", 'needs an image folder (resnet-ts export-images makes one)'],
];
/** Blocks the README itself marks as not run on this machine (a package that does not install here). */
const NOT_RUN_HERE = '// not run here';

interface Block {
  index: number;
  line: number;
  code: string;
  run: boolean;
}

function readmeBlocks(): Block[] {
  const out: Block[] = [];
  const re = /^```(ts|typescript)\n([\s\S]*?)^```/gm;
  for (let m = re.exec(README); m !== null; m = re.exec(README)) {
    const code = m[2]!;
    if (code.startsWith(NOT_RUN_HERE)) continue;
    const line = README.slice(0, m.index).split('\n').length;
    out.push({ index: out.length, line, code, run: !TYPECHECK_ONLY.some(([text]) => code.includes(text)) });
  }
  return out;
}

const blocks = readmeBlocks();
// inside the checkout (node_modules/.cache), so that the blocks' imports of dev dependencies resolve
mkdirSync(join(ROOT, 'node_modules', '.cache'), { recursive: true });
const dir = mkdtempSync(join(ROOT, 'node_modules', '.cache', 'resnet-ts-readme-'));
writeFileSync(join(dir, 'package.json'), '{"type":"module"}\n');
const entry = join(ROOT, 'src', 'index.js');
const files = blocks.map((b) => {
  const f = join(dir, `block${b.index}.ts`);
  mkdirSync(dirname(f), { recursive: true });
  // 'export {}' makes every block a module of its own (top-level names do not collide)
  writeFileSync(f, `${b.code.replace(/from 'resnet-ts'/g, `from '${entry}'`)}\nexport {};\n`);
  return f;
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('README code blocks', () => {
  it('there are TypeScript blocks, and every type-check-only entry matches one', () => {
    expect(blocks.length).toBeGreaterThan(5);
    for (const [text] of TYPECHECK_ONLY) expect(blocks.some((b) => b.code.includes(text)), text).toBe(true);
  });

  it('every block type-checks (strict, the repository tsconfig)', () => {
    const cfg = ts.readConfigFile(join(ROOT, 'tsconfig.json'), ts.sys.readFile);
    const { options } = ts.parseJsonConfigFileContent(cfg.config, ts.sys, ROOT);
    const program = ts.createProgram(files, { ...options, noEmit: true, declaration: false, sourceMap: false, rootDir: undefined });
    const diags = ts.getPreEmitDiagnostics(program).filter((d) => d.file && files.includes(d.file.fileName));
    const text = diags.map((d) => {
      const i = files.indexOf(d.file!.fileName);
      const { line } = d.file!.getLineAndCharacterOfPosition(d.start ?? 0);
      return `README.md:${blocks[i]!.line + 1 + line}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
    });
    expect(text).toEqual([]);
  }, 300_000);

  for (const b of blocks.filter((x) => x.run)) {
    it(`block at README.md:${b.line} runs`, async () => {
      const log = console.log;
      console.log = () => {};
      try {
        await import(pathToFileURL(files[b.index]!).href);
      } finally {
        console.log = log;
      }
    }, 180_000);
  }
});
