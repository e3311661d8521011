/**
 * The pool's worker scripts must be JavaScript files, and the tests run from TypeScript sources: this compiles
 * (transpiles, no type check) src/kernels, src/parallel and src/errors.ts into a temporary directory with the same
 * layout, once per test file, and points the pool at it. The main thread keeps running the TypeScript sources; both
 * sides are the same code.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';
import type { PoolScripts } from '../../src/parallel/pool.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

let built: PoolScripts | null = null;
let builtDir: string | null = null;

/** Deletes the compiled scripts (call after the last pool of the test file is gone). */
export function removePoolScripts(): void {
  if (builtDir) rmSync(builtDir, { recursive: true, force: true });
  built = null;
  builtDir = null;
}

export function buildPoolScripts(): PoolScripts {
  if (built) return built;
  const out = mkdtempSync(join(tmpdir(), 'resnet-ts-pool-'));
  builtDir = out;
  writeFileSync(join(out, 'package.json'), '{"type":"module"}\n');
  const files = [
    ...readdirSync(join(ROOT, 'src/kernels'), { recursive: true }).map((f) => `src/kernels/${String(f)}`),
    ...readdirSync(join(ROOT, 'src/parallel')).map((f) => `src/parallel/${f}`),
    'src/errors.ts',
    'src/config.ts',
  ].filter((f) => f.endsWith('.ts'));
  for (const f of files) {
    const js = ts.transpileModule(readFileSync(join(ROOT, f), 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
      fileName: f,
    }).outputText;
    const dst = join(out, f.replace(/\.ts$/, '.js'));
    mkdirSync(dirname(dst), { recursive: true });
    writeFileSync(dst, js);
  }
  built = {
    worker: pathToFileURL(join(out, 'src/parallel/worker.js')),
    supervisor: pathToFileURL(join(out, 'src/parallel/supervisor.js')),
  };
  return built;
}
