/**
 * The DataLoader's worker script must be JavaScript, and the tests run from TypeScript sources: this transpiles
 * (no type check) the modules the worker reaches into a temporary directory, once per test file, and points the loader's workers at its
 * loader-worker.js. The main thread keeps running the TypeScript sources; both sides are the same code.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';
import { setLoaderWorkerScript } from '../../src/data/loader-workers.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
let builtDir: string | null = null;

export function useCompiledLoaderWorkers(): void {
  if (builtDir) return;
  const out = mkdtempSync(join(tmpdir(), 'resnet-ts-loader-'));
  builtDir = out;
  writeFileSync(join(out, 'package.json'), '{"type":"module"}\n');
  // the modules the worker script reaches by static or dynamic imports
  const files: string[] = [];
  const stack = ['data/loader-worker.ts'];
  while (stack.length) {
    const f = stack.pop()!;
    if (files.includes(f)) continue;
    files.push(f);
    for (const m of readFileSync(join(ROOT, 'src', f), 'utf8').matchAll(/(?:from|import)\s*\(?\s*['"](\.[^'"]+)\.js['"]/g)) {
      stack.push(join(dirname(f), `${m[1]!}.ts`));
    }
  }
  for (const f of files) {
    const js = ts.transpileModule(readFileSync(join(ROOT, 'src', f), 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
      fileName: f,
    }).outputText;
    const dst = join(out, f.replace(/\.ts$/, '.js'));
    mkdirSync(dirname(dst), { recursive: true });
    writeFileSync(dst, js);
  }
  setLoaderWorkerScript(pathToFileURL(join(out, 'data', 'loader-worker.js')));
}

export function removeCompiledLoaderWorkers(): void {
  if (builtDir) rmSync(builtDir, { recursive: true, force: true });
  builtDir = null;
}
