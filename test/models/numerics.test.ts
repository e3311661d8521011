/**
 * How accurate our gradients are: one train-mode CIFAR ResNet-20 step (formula weights and input, batch 4) against
 * PyTorch's float64 gradients (fixture: test/fixtures/numerics/resnet20_step.json, made by gen_numerics.py, which
 * also records PyTorch float32's own error on the same case, over every entry). The measure: per parameter,
 * max |g − g64| / max |g64|; the worst over the parameters. Ours is measured on the fixture's entries (per parameter
 * the smallest and largest gradients, PyTorch float32's worst ones and evenly spaced ones), on each kernel backend.
 *
 * Ours must stay at least 3× below PyTorch float32's (measured: about 4.8×; float32 activations and gradients
 * between the layers, which PyTorch has too, bound what float64 sums can gain). The SIMD kernels sum float32
 * products in float32 only over blocks of ≤ 64 terms and carry every total in float64; their Winograd GEMMs run in
 * float64, since float32 U and V made the gradients 3.6× less accurate than PyTorch float32's (measured on this case).
 */
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { kernelBackend, setKernelBackend, type KernelBackend } from '../../src/kernels/wasm/features.js';
import { models, nn } from '../../src/index.js';
import { formulaInput, loadFormula } from '../helpers/formula.js';

interface Fixture {
  input: number[];
  targets: number[];
  loss: number;
  keys: string[];
  grads: Record<string, { n: number; maxabs: number; idx: number[]; ref: number[] }>;
  torch32: { worst: number; param: string; loss: number; elementwise: { worst: number; param: string } };
}

const fx = JSON.parse(readFileSync(new URL('../fixtures/numerics/resnet20_step.json', import.meta.url), 'utf8')) as Fixture;

/** Our gradients of the fixture's step: { loss, grads by parameter name }. */
function ourStep(): { loss: number; grads: Map<string, Float32Array> } {
  const model = models.resnet20({ numClasses: 10 }).train();
  expect(Object.keys(model.stateDict())).toEqual(fx.keys); // same keys in the same order: the same formula weights
  loadFormula(model);
  const loss = nn.functional.crossEntropy(model.forward(formulaInput(fx.input)), fx.targets);
  loss.backward();
  const grads = new Map<string, Float32Array>();
  for (const [name, p] of model.namedParameters()) grads.set(name, p.grad!.data);
  return { loss: loss.item(), grads };
}

describe('gradient accuracy of a train-mode ResNet-20 step vs PyTorch float64', () => {
  const initial = kernelBackend();
  afterAll(() => void setKernelBackend(initial));

  it(`the fixture: PyTorch float32's worst error is ${fx.torch32.worst.toExponential(2)} (${fx.torch32.param})`, () => {
    expect(fx.torch32.worst).toBeGreaterThan(1e-6); // several float32 roundings
    expect(Object.keys(fx.grads).length).toBe(59); // conv1, 18 convs, 19 BNs × 2, fc × 2
  });

  for (const backend of ['simd', 'js'] as KernelBackend[]) {
    it(`${backend} backend: worst relative gradient error ≥ 3× below PyTorch float32's`, () => {
      setKernelBackend(backend);
      const { loss, grads } = ourStep();
      expect(Math.abs(loss - fx.loss) / fx.loss).toBeLessThan(1e-6);
      let worst = 0, where = '', worstElem = 0;
      let checked = 0;
      for (const [name, g] of Object.entries(fx.grads)) {
        const ours = grads.get(name);
        expect(ours, `gradient of ${name}`).toBeDefined();
        expect(ours!.length).toBe(g.n);
        g.idx.forEach((i, j) => {
          const ref = g.ref[j]!;
          if (ref === 0) return;
          checked++;
          worstElem = Math.max(worstElem, Math.abs(ours![i]! - ref) / Math.abs(ref));
          const err = Math.abs(ours![i]! - ref) / g.maxabs;
          if (!(err <= worst)) {
            worst = err;
            where = `${name}[${i}]: ${ours![i]} vs ${ref}`;
          }
        });
      }
      expect(checked).toBeGreaterThan(2400);
      // The measured numbers, for the record (bench/README.md lists them).
      console.log(`numerics ${backend}: worst relative gradient error ${worst.toExponential(2)} at ${where} ` +
        `(PyTorch float32 ${fx.torch32.worst.toExponential(2)}, ${(fx.torch32.worst / worst).toFixed(1)}×); element-wise ` +
        `${worstElem.toExponential(2)} (PyTorch float32 ${fx.torch32.elementwise.worst.toExponential(2)})`);
      expect(worst, `worst at ${where}`).toBeLessThan(fx.torch32.worst / 3);
    });
  }
});
