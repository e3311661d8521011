/**
 * The DataLoader's worker script must be JavaScript: this transpiles the modules the worker reaches into a temporary
 * directory, once per test file, and points the loader's workers at its loader-worker.js.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { setLoaderWorkerScript } from '../../src/data/loader-workers.js';
import { transpileToTemp } from '../helpers/transpile.js';

let builtDir: string | null = null;

export function useCompiledLoaderWorkers(): void {
  if (builtDir) return;
  builtDir = transpileToTemp('loader', ['src/data/loader-worker.ts'], { follow: true });
  setLoaderWorkerScript(pathToFileURL(join(builtDir, 'src', 'data', 'loader-worker.js')));
}

export function removeCompiledLoaderWorkers(): void {
  if (builtDir) rmSync(builtDir, { recursive: true, force: true });
  builtDir = null;
}
