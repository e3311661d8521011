/**
 * The demo page in a real Chromium (Debian's /usr/bin/chromium, driven headless by playwright-core): it loads the
 * library from dist/ through the page's import map, trains ResNet-20 for a few steps on two threads (a Web Worker
 * running resnet-ts, which starts a kernel sub-worker), predicts on a dropped JPEG, then on a YCCK JPEG with a
 * dropped .safetensors file. Every number must equal, bit for bit, what Node computes with the same code
 * (demo/train.js), seed and thread count. Screenshots go to test-results/browser/ (git-ignored); the page must log
 * no console error.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// Names of the page's globals, for the functions evaluated in the page (the project compiles without the DOM library).
declare const window: { demoState: any };
declare const crossOriginIsolated: boolean;

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const OUT = join(ROOT, 'test-results', 'browser');
const CHROMIUM = '/usr/bin/chromium';
const SETTINGS = { seed: 0, batchSize: 16, lr: 0.05, steps: 3, threads: 2 };
const PHOTO = join(ROOT, 'test/fixtures/predict/photo.jpg');
const YCCK = join(ROOT, 'test/fixtures/browser/ycck_420_33x17.jpg');

/** The newest modification time under a directory (files only). */
function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

/** The page loads dist/: build it when a source is newer (CI's npm ci has built it already). */
function ensureDist(): void {
  const built = join(ROOT, 'dist', 'browser.js');
  if (existsSync(built) && statSync(built).mtimeMs >= newest(join(ROOT, 'src'))) return;
  execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json')], { stdio: 'inherit' });
}

interface NodeResults {
  kernels: { backend: string; fma: boolean };
  losses: string[];
  digest: string;
  evalBits: string[];
  predictions: string[][];
}

/** The same steps in Node (test/browser/node-reference.mjs, in a child process: see there for the flag). */
function nodeReference(weightsPath: string): NodeResults {
  const out = execFileSync(
    process.execPath,
    ['--experimental-wasm-relaxed-simd', join(ROOT, 'test/browser/node-reference.mjs'), JSON.stringify(SETTINGS), weightsPath, PHOTO, YCCK],
    { encoding: 'utf8' },
  );
  return JSON.parse(out) as NodeResults;
}

describe('the demo page in Chromium computes what Node computes', () => {
  let server: Server;
  let url: string;
  let browser: Browser;
  let page: Page;
  let tmp: string;
  const problems: string[] = [];
  const warnings: string[] = [];
  let nodeYcck: string[] = [];
  let startDemoServer: (o: { port: number; isolate?: boolean }) => Promise<{ server: Server; url: string }>;

  beforeAll(async () => {
    expect(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does this)`).toBe(true);
    ensureDist();
    rmSync(OUT, { recursive: true, force: true });
    mkdirSync(OUT, { recursive: true });
    tmp = mkdtempSync(join(tmpdir(), 'resnet-ts-browser-'));
    // @ts-expect-error: a plain-JS script without type declarations
    ({ startDemoServer } = await import('../../scripts/demo-server.mjs'));
    ({ server, url } = await startDemoServer({ port: 0 }));
    // playwright-core starts Chromium with a fresh temporary profile (--user-data-dir) of its own.
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 760 } });
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
      if (m.type() === 'warning') warnings.push(m.text());
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise((r) => server?.close(r));
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('trains 3 steps on 2 threads and predicts: the same bits as Node, no console error', async () => {
    const weightsPath = join(tmp, 'node-trained.safetensors');
    const node = nodeReference(weightsPath);
    nodeYcck = node.predictions[1]!;

    const q = new URLSearchParams(Object.entries(SETTINGS).map(([k, v]): [string, string] => [k, String(v)]));
    await page.goto(`${url}?${q}`);
    await page.waitForFunction(() => window.demoState.ready || window.demoState.errors.length, null, { timeout: 20_000 });
    const ready = await page.evaluate(() => window.demoState.ready);
    expect(ready, 'the page worker did not start').toBeTruthy();
    expect(ready.threads, `threads: ${ready.reason}`).toBe(2);
    // The same kernel path on both sides (WebAssembly SIMD, with relaxed-SIMD FMA where the engine has it).
    expect(ready.kernels, 'the page and Node use different kernels').toEqual(node.kernels);
    expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);

    await page.click('#train-button');
    await page.waitForFunction(() => window.demoState.train || window.demoState.errors.length, null, { timeout: 60_000 });
    const trained = await page.evaluate(() => window.demoState.train ?? { errors: window.demoState.errors });
    await page.screenshot({ path: join(OUT, 'train.png'), fullPage: true });
    expect(trained.errors).toBeUndefined();
    expect(trained.step).toBe(SETTINGS.steps);
    expect(trained.losses).toEqual(node.losses);
    expect(trained.digest).toBe(node.digest);
    expect(trained.evalBits).toEqual(node.evalBits);
    // The kernel sub-worker really took part.
    expect(trained.pool.threads).toBe(2);
    expect(trained.pool.workerUnits).toBeGreaterThan(0);

    // Predict with the model just trained, on a dropped photo.
    await page.setInputFiles('#files', PHOTO);
    await page.waitForFunction(() => window.demoState.prediction || window.demoState.errors.length, null, { timeout: 20_000 });
    const photo = await page.evaluate(() => window.demoState.prediction);
    expect(photo.probsBits).toEqual(node.predictions[0]);
    expect(photo.top).toHaveLength(5);
    await page.screenshot({ path: join(OUT, 'predict-photo.png'), fullPage: true });

    // Node's weights as a dropped .safetensors file, with a YCCK JPEG.
    await page.evaluate(() => (window.demoState.prediction = null));
    await page.setInputFiles('#files', [weightsPath, YCCK]);
    await page.waitForFunction(() => window.demoState.prediction || window.demoState.errors.length, null, { timeout: 20_000 });
    const state = await page.evaluate(() => window.demoState);
    expect(state.errors).toEqual([]);
    expect(state.weights.digest).toBe(node.digest);
    expect(state.prediction.probsBits).toEqual(node.predictions[1]);
    await page.screenshot({ path: join(OUT, 'predict-ycck.png'), fullPage: true });

    // The library on the page's main thread: one thread (Atomics.wait is not allowed there), said once.
    // (A string, so that vitest's transform leaves the page's dynamic import alone.)
    const main = await page.evaluate(`(async () => {
      const rt = await import('resnet-ts/browser');
      rt.manualSeed(0);
      const model = rt.models.resnet20({ inChannels: 1 });
      for (let i = 0; i < 2; i++) model.forward(rt.randn([4, 1, 28, 28]));
      return { threads: rt.getNumThreads(), reason: rt.singleThreadReason() };
    })()`) as { threads: number; reason: string };
    expect(main.threads).toBe(1);
    expect(main.reason).toMatch(/not running in a dedicated Worker/);
    expect(warnings.filter((w) => w.includes('resnet-ts: kernels run on one thread'))).toHaveLength(1);

    expect(problems).toEqual([]);
  }, 120_000);

  it('pool failures: a task that throws in a kernel worker, a kernel worker that cannot load', async () => {
    const p = await browser.newPage();
    try {
      await p.goto(`${url}?threads=1`); // any page of the isolated server; its own demo worker stays idle
      const out = (await p.evaluate(`new Promise((resolve) => {
        const w = new Worker('/test/browser/pool-check.js', { type: 'module' });
        w.onmessage = (e) => resolve(e.data);
        w.onerror = (e) => resolve({ unexpected: e.message });
      })`)) as Record<string, unknown>;
      expect(out.unexpected).toBeUndefined();
      expect(out.threads).toBe(2);
      expect(out.error).toMatch(/^ResnetTsError: \[parallel\] task 'test.onlyHere' failed in a worker: worker 1: .*no task function registered as 'test.onlyHere' in the browser worker/s);
      expect(out.matmulEqual).toBe(true);
      expect(out.workerUnits).toBeGreaterThan(0);
      expect(out.threadsAfterBadScript).toBe(1);
      expect(out.reason).toMatch(/failed to load twice/);
      expect(out.warnings).toEqual([expect.stringMatching(/^resnet-ts: kernels run on one thread: the kernel workers failed to load twice/)]);
    } finally {
      await p.close();
    }
  }, 60_000);

  it('without cross-origin isolation: one thread, said once, and the same prediction', async () => {
    const plain = await startDemoServer({ port: 0, isolate: false });
    try {
      const p = await browser.newPage();
      const warned: string[] = [];
      p.on('console', (m) => {
        if (m.type() === 'error') problems.push(`console error (no isolation): ${m.text()}`);
        if (m.type() === 'warning') warned.push(m.text());
      });
      p.on('pageerror', (e) => problems.push(`page error (no isolation): ${e.message}`));
      await p.goto(`${plain.url}?threads=2`);
      await p.waitForFunction(() => window.demoState.ready || window.demoState.errors.length, null, { timeout: 20_000 });
      const ready = await p.evaluate(() => window.demoState.ready);
      expect(await p.evaluate(() => crossOriginIsolated)).toBe(false);
      expect(ready.threads).toBe(1);
      expect(ready.reason).toMatch(/not cross-origin isolated/);
      expect(ready.warnings).toHaveLength(1);
      await p.setInputFiles('#files', [join(tmp, 'node-trained.safetensors'), YCCK]);
      await p.waitForFunction(() => window.demoState.prediction || window.demoState.errors.length, null, { timeout: 20_000 });
      const state = await p.evaluate(() => window.demoState);
      expect(state.errors).toEqual([]);
      expect(state.prediction.probsBits).toEqual(nodeYcck);
      await p.screenshot({ path: join(OUT, 'no-isolation.png'), fullPage: true });
      expect(warned.filter((w) => w.includes('resnet-ts: kernels run on one thread'))).toHaveLength(1);
      expect(problems).toEqual([]);
    } finally {
      await new Promise((r) => plain.server.close(r));
    }
  }, 60_000);
});
