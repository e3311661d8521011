/**
 * A describe block's kernel backend and config: set before its tests, restored after them.
 */
import { afterAll, beforeAll } from 'vitest';
import { setConfig, type Config } from '../../src/config.js';
import { setKernelBackend, type KernelBackend } from '../../src/kernels/wasm/features.js';

/** Call inside `describe`: its tests run on `backend` with `config` applied. */
export function useKernelBackend(backend: KernelBackend, config: Partial<Config> = {}): void {
  let old: KernelBackend;
  let oldConfig: Partial<Config>;
  beforeAll(() => {
    old = setKernelBackend(backend);
    oldConfig = setConfig(config);
  });
  afterAll(() => {
    setKernelBackend(old);
    setConfig(oldConfig);
  });
}
