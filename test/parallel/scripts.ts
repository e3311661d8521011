/**
 * The pool's worker scripts must be JavaScript files: this transpiles src/kernels, src/parallel, src/errors.ts and
 * src/config.ts into a temporary directory (test/helpers/transpile.ts), once per test file, for the pool to start.
 */
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { PoolScripts } from '../../src/parallel/pool.js';
import { ROOT, transpileToTemp } from '../helpers/transpile.js';

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
  const files = [
    ...readdirSync(join(ROOT, 'src/kernels'), { recursive: true }).map((f) => `src/kernels/${String(f)}`),
    ...readdirSync(join(ROOT, 'src/parallel')).map((f) => `src/parallel/${f}`),
    'src/errors.ts',
    'src/config.ts',
  ].filter((f) => f.endsWith('.ts'));
  const out = transpileToTemp('pool', files);
  builtDir = out;
  built = {
    worker: pathToFileURL(join(out, 'src/parallel/worker.js')),
    supervisor: pathToFileURL(join(out, 'src/parallel/supervisor.js')),
  };
  return built;
}
