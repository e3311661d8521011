/**
 * Worker scripts and child processes need JavaScript files, and the tests run from TypeScript sources: this
 * transpiles (no type check) source files into a temporary directory with the repository's layout. The main thread
 * keeps running the TypeScript sources; both sides are the same code.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * Transpiles `files` (paths from the repository root, e.g. 'src/config.ts') into a new temporary directory (named
 * `resnet-ts-<prefix>-…`) and returns it; with `follow`, also every module they reach by relative static or dynamic
 * imports. The caller removes the directory.
 */
export function transpileToTemp(prefix: string, files: string[], opts: { follow?: boolean } = {}): string {
  const out = mkdtempSync(join(tmpdir(), `resnet-ts-${prefix}-`));
  writeFileSync(join(out, 'package.json'), '{"type":"module"}\n');
  const done = new Set<string>();
  const stack = [...files];
  while (stack.length) {
    const f = stack.pop()!;
    if (done.has(f)) continue;
    done.add(f);
    const src = readFileSync(join(ROOT, f), 'utf8');
    if (opts.follow) for (const m of src.matchAll(/(?:from|import)\s*\(?\s*['"](\.[^'"]+)\.js['"]/g)) stack.push(join(dirname(f), `${m[1]!}.ts`));
    const js = ts.transpileModule(src, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 }, fileName: f }).outputText;
    const dst = join(out, f.replace(/\.ts$/, '.js'));
    mkdirSync(dirname(dst), { recursive: true });
    writeFileSync(dst, js);
  }
  return out;
}
