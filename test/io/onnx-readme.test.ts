/**
 * The README's ONNX sections run as written: every code block from "Serving at scale" to the end of "Import", in
 * order, in one temp directory. TypeScript blocks are imported with `resnet-ts` pointing at src/index.ts; the
 * `npx resnet-ts export` line runs the export command with the same arguments. Blocks whose first line says
 * "not run here" are skipped (Python onnxruntime and onnxruntime-node do not exist on this machine), and the PyTorch
 * command's output is taken from the fixtures: tv_resnet18_op17 is that very export (torch.onnx.export of
 * torchvision's resnet18 at opset 17 with the same names and dynamic axes), with formula weights instead of
 * weights=None's random ones; tests never need torch.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';
import { afterAll, expect, it, vi } from 'vitest';
import { COMMANDS } from '../../src/cli/commands.js';
import { saveSafetensorsFile } from '../../src/io/safetensors-file.js';
import { resnet18, resnet20 } from '../../src/models/index.js';
import { manualSeed } from '../../src/random.js';
import { loadFormula } from '../helpers/formula.js';
import { rebuildPytorchFixture } from '../helpers/onnx.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'resnet-ts-readme-onnx-'));
const cwd = process.cwd();
afterAll(() => {
  process.chdir(cwd);
  rmSync(dir, { recursive: true, force: true });
});

function blocks(): { lang: string; code: string }[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('## Serving at scale: export to ONNX');
  const end = readme.indexOf('\n## ', readme.indexOf('## Import: run and fine-tune ONNX models'));
  expect(start).toBeGreaterThan(0);
  const out: { lang: string; code: string }[] = [];
  const re = /```(\w+)\n([\s\S]*?)```/g;
  const text = readme.slice(start, end);
  for (let m = re.exec(text); m; m = re.exec(text)) out.push({ lang: m[1]!, code: m[2]! });
  return out;
}

it('the README ONNX code blocks run as written', async () => {
  process.chdir(dir);
  copyFileSync(join(ROOT, 'test/fixtures/predict/photo.jpg'), 'cat.jpg');
  manualSeed(0);
  mkdirSync('runs/start', { recursive: true });
  saveSafetensorsFile('runs/start/model.safetensors', resnet20({ inChannels: 1 }).stateDict()); // what npm start writes
  const logs: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void logs.push(a.map((x) => (typeof x === 'string' ? x : inspect(x))).join(' ')));
  const ran: string[] = [];
  try {
    let n = 0;
    for (const b of blocks()) {
      const first = b.code.split('\n')[0]!;
      if (/not run here/.test(first)) continue;
      if (b.lang === 'sh' && b.code.startsWith('npx resnet-ts export ')) {
        await COMMANDS.export!.run(b.code.trim().split(/\s+/).slice(3));
        ran.push('resnet-ts export');
      } else if (b.lang === 'sh' && b.code.startsWith('python3 -c "import torch, torchvision; torch.onnx.export(torchvision.models.resnet18')) {
        const formula = resnet18();
        loadFormula(formula);
        writeFileSync('resnet18.onnx', rebuildPytorchFixture('tv_resnet18_op17', formula));
        ran.push('PyTorch export (fixture)');
      } else if (b.lang === 'ts') {
        const file = join(dir, `block${n++}.ts`);
        writeFileSync(file, b.code.replaceAll("from 'resnet-ts'", `from '${join(ROOT, 'src/index.ts')}'`));
        await import(file);
        ran.push(`ts block ${n}`);
      } else {
        throw new Error(`a README block this test does not know how to run:\n${b.code}`);
      }
    }
  } finally {
    log.mockRestore();
  }
  expect(ran).toEqual(['resnet-ts export', 'ts block 1', 'ts block 2', 'PyTorch export (fixture)', 'ts block 3']);
  expect(existsSync('resnet20.onnx')).toBe(true);
  expect(logs).toContain('[ 4, 10 ]');
  expect(logs.some((l) => /^wrote resnet20.onnx .*input \[batch, 1, 28, 28\]/.test(l))).toBe(true);
  expect(existsSync('fine-tuned.safetensors')).toBe(true);
  expect(logs.length).toBe(3); // the export line, the dims, the predicted class
}, 180_000);
