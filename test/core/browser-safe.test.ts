import { readFileSync } from 'node:fs';
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
    for (const m of text.matchAll(/^\s*(?:import|export)\b(?!\s+type\b)[^'"]*?from\s+['"]([^'"]+)['"]/gm)) {
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
  });
  it('the Node entry does reach the node-only helpers (so the scan sees them)', () => {
    const graph = walk('index.ts');
    const withNode = [...graph].filter(([, mods]) => mods.length).map(([f]) => f.slice(SRC.length + 1));
    expect(withNode).toContain('io/safetensors-file.ts');
    expect(withNode).toContain('io/atomic-file.ts');
    expect(withNode).toContain('data/files.ts');
  });
});
