/**
 * The pool's worker scripts must be JavaScript files: this transpiles src/kernels, src/parallel, src/errors.ts and
 * src/config.ts into a temporary directory (test/helpers/transpile.ts), once per test file, for the pool to start.
 */
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll } from 'vitest';
import { setConfig, type Config } from '../../src/config.js';
import { setMinParallelCost, setParallelBackend } from '../../src/kernels/parallel.js';
import { setNumThreads, setWorkerScripts } from '../../src/parallel/index.js';
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

/**
 * For the tests of the describe it is called in: the settings `cfg` and the worker pool's scripts, with
 * minParallelCost 0 (small calls go to the threads too); after them, the pool torn down and everything restored.
 */
export function poolForTests(cfg: Partial<Config>): void {
  let old: Partial<Config> = {};
  let oldMin = 0;
  beforeAll(() => {
    old = setConfig(cfg);
    setWorkerScripts(buildPoolScripts());
    oldMin = setMinParallelCost(0);
  });
  afterAll(() => {
    setMinParallelCost(oldMin);
    setNumThreads(1);
    setWorkerScripts(null);
    setParallelBackend(null);
    removePoolScripts();
    setConfig(old);
  });
}
