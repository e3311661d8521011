import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');

/** Every module reachable by static imports from `entry`, with the node: modules each imports. */
function walk(entry: string): Map<string, string[]> {
  const seen = new Map<string, string[]>();
  const stack = [resolve(SRC, entry)];
  while (stack.length) {
    const file = stack.pop()!;
    if (seen.has(file)) continue;
    const text = readFileSync(file, 'utf8');
    const nodeMods: string[] = [];
    // `import x from '…'`, `export … from '…'` and side-effect imports (`import '…'`); type-only imports are erased.
    for (const m of text.matchAll(/^\s*(?:(?:import|export)\b(?!\s+type\b)[^'"]*?from\s+|import\s+)['"]([^'"]+)['"]/gm)) {
      const spec = m[1]!;
      if (spec.startsWith('node:')) nodeMods.push(spec);
      else if (spec.startsWith('.')) stack.push(join(dirname(file), spec.replace(/\.js$/, '.ts')));
    }
    seen.set(file, nodeMods);
  }
  return seen;
}

describe('resnet-ts/core runs in a browser as it is', () => {
  it('no module reachable from src/core.ts imports node:*', () => {
    const graph = walk('core.ts');
    const offenders = [...graph].filter(([, mods]) => mods.length).map(([f, mods]) => `${f.slice(SRC.length + 1)}: ${mods.join(', ')}`);
    expect(graph.size).toBeGreaterThan(20);
    expect(offenders).toEqual([]);
    // The image decoders are part of it (PNG inflates with io/inflate.ts there).
    expect([...graph.keys()].map((f) => f.slice(SRC.length + 1))).toEqual(expect.arrayContaining(['io/png.ts', 'io/jpeg.ts', 'io/inflate.ts']));
  });
  it('the Node entry does reach the node-only helpers (so the scan sees them)', () => {
    const graph = walk('index.ts');
    const withNode = [...graph].filter(([, mods]) => mods.length).map(([f]) => f.slice(SRC.length + 1));
    expect(withNode).toContain('io/safetensors-file.ts');
    expect(withNode).toContain('io/atomic-file.ts');
    expect(withNode).toContain('data/files.ts');
    expect(withNode).toContain('io/zlib.ts');
  });
  it('resnet-ts/browser, its kernel worker and the training run import no node:* either', () => {
    for (const entry of ['browser.ts', 'parallel/browser-worker.ts', 'train/run.ts']) {
      const offenders = [...walk(entry)].filter(([, mods]) => mods.length).map(([f, mods]) => `${f.slice(SRC.length + 1)}: ${mods.join(', ')}`);
      expect(offenders, entry).toEqual([]);
    }
  });
  it('both pools\' workers load every kernel module that registers a task', () => {
    const kernels = readdirSync(join(SRC, 'kernels'))
      .filter((f) => f.endsWith('.ts') && /^registerTask\b/m.test(readFileSync(join(SRC, 'kernels', f), 'utf8')))
      .map((f) => `kernels/${f}`);
    expect(kernels.length).toBeGreaterThanOrEqual(3);
    for (const worker of ['parallel/worker.ts', 'parallel/browser-worker.ts']) {
      const reached = new Set([...walk(worker).keys()].map((f) => f.slice(SRC.length + 1)));
      expect(kernels.filter((k) => !reached.has(k)), `${worker} misses`).toEqual([]);
    }
  });
});
