/**
 * A compiled copy of src/ in the OS temp directory, for tests that run the real CLI or kill a child process.
 * The build is keyed by a hash of every file under src/, shared by the test files that run in parallel (a lock
 * directory makes the second one wait instead of compiling twice), and reused by later runs while src/ is unchanged;
 * builds of older sources are removed. Nothing is written into the repository.
 *
 *   <tmp>/resnet-ts-reliability-<hash>/package.json   {"type":"module"} (the emitted files are ES modules)
 *   <tmp>/resnet-ts-reliability-<hash>/dist/...        tsc -p tsconfig.build.json --outDir …/dist
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
const PREFIX = 'resnet-ts-reliability-';
const BUILD_NAME = /^resnet-ts-reliability-[0-9a-f]{16}$/;

function sourceHash(): string {
  const h = createHash('sha256');
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else {
        h.update(relative(REPO, p));
        h.update(readFileSync(p));
      }
    }
  };
  walk(join(REPO, 'src'));
  h.update(readFileSync(join(REPO, 'tsconfig.build.json')));
  h.update(readFileSync(join(REPO, 'tsconfig.json')));
  return h.digest('hex').slice(0, 16);
}

const sleep = (ms: number): void => void Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/** Returns the directory holding dist/ (compiled now, or found from an earlier build of the same sources). */
export function buildDist(): string {
  const root = join(tmpdir(), PREFIX + sourceHash());
  const done = join(root, '.complete');
  const lock = `${root}.lock`;
  for (let waited = 0; !existsSync(done); waited += 200) {
    try {
      mkdirSync(lock); // atomic: exactly one process gets it
    } catch {
      // another test file is compiling the same sources: wait for it (and take over a lock older than 3 minutes)
      try {
        if (Date.now() - statSync(lock).mtimeMs > 180_000) rmSync(lock, { recursive: true, force: true });
      } catch {
        // the lock went away between the two calls
      }
      if (waited > 240_000) throw new Error(`timed out waiting for the build in ${root}`);
      sleep(200);
      continue;
    }
    try {
      if (existsSync(done)) break;
      const stage = `${root}.stage-${process.pid}`;
      rmSync(stage, { recursive: true, force: true });
      const tsc = join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
      const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--outDir', join(stage, 'dist'), '--noCheck', '--declaration', 'false', '--sourceMap', 'false'], {
        cwd: REPO, encoding: 'utf8', timeout: 180_000,
      });
      // type errors elsewhere in the tree do not stop the emit; a missing entry point does
      if (!existsSync(join(stage, 'dist', 'cli', 'main.js'))) {
        throw new Error(`tsc produced no dist/cli/main.js (status ${r.status}):\n${r.stdout}\n${r.stderr}`);
      }
      writeFileSync(join(stage, 'package.json'), '{"type":"module"}\n');
      rmSync(root, { recursive: true, force: true });
      renameSync(stage, root);
      writeFileSync(done, new Date().toISOString());
      // drop finished builds of other sources that are over an hour old (a parallel run may still be using a newer one)
      for (const name of readdirSync(tmpdir())) {
        const p = join(tmpdir(), name);
        if (!BUILD_NAME.test(name) || p === root) continue;
        try {
          if (Date.now() - statSync(join(p, '.complete')).mtimeMs > 3_600_000) rmSync(p, { recursive: true, force: true });
        } catch {
          // unfinished or already gone
        }
      }
    } finally {
      rmSync(lock, { recursive: true, force: true });
    }
  }
  return root;
}
