import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { config, setConfig, withConfig } from '../../src/config.js';
import { hasRelaxedSimd, hasSimd128, kernelBackend, kernelSettings, setKernelBackend, usesFma } from '../../src/kernels/wasm/features.js';
import { transpileToTemp } from '../helpers/transpile.js';

describe('the kernel backend and FMA are config switches', () => {
  it('withConfig selects the backend for a scope and restores it', () => {
    const before = kernelBackend();
    expect(withConfig({ kernelBackend: 'js' }, () => [kernelBackend(), usesFma(), kernelSettings().backend])).toEqual(['js', false, 'js']);
    expect(withConfig({ kernelBackend: 'simd' }, () => kernelBackend())).toBe(hasSimd128 ? 'simd' : 'js');
    expect(withConfig({ kernelBackend: 'simd', fma: false }, () => usesFma())).toBe(false);
    expect(withConfig({ kernelBackend: 'simd', fma: true }, () => usesFma())).toBe(hasSimd128 && hasRelaxedSimd);
    expect(kernelBackend()).toBe(before);
  });
  it('setKernelBackend is setConfig and returns the backend in use before', () => {
    const prev = setConfig({ kernelBackend: 'simd', fma: true });
    try {
      expect(setKernelBackend('js', { fma: false })).toBe(hasSimd128 ? 'simd' : 'js');
      expect([config.kernelBackend, config.fma, kernelBackend()]).toEqual(['js', false, 'js']);
    } finally {
      setConfig(prev);
    }
  });
  it('RESNET_TS_BACKEND and RESNET_TS_FMA set the defaults', () => {
    const dir = transpileToTemp('config', ['src/config.ts']);
    try {
      const url = pathToFileURL(join(dir, 'src/config.js')).href;
      const script = `import(${JSON.stringify(url)}).then(({ config }) => console.log(JSON.stringify([config.kernelBackend, config.fma])))`;
      const run = (env: Record<string, string>): unknown =>
        JSON.parse(execFileSync(process.execPath, ['-e', script], { env: { ...process.env, RESNET_TS_BACKEND: '', RESNET_TS_FMA: '', ...env }, encoding: 'utf8' }));
      expect(run({ RESNET_TS_BACKEND: 'js', RESNET_TS_FMA: '0' })).toEqual(['js', false]);
      expect(run({ RESNET_TS_BACKEND: ' JS ' })).toEqual(['js', true]);
      expect(run({})).toEqual(['simd', true]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
