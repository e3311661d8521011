/**
 * withTrainingStep: a training step whose activations, saved tensors and gradients reuse the previous step's
 * (shared) buffers. It must give the same bits as a plain step, make no new buffers once warm, keep memory flat over
 * 200 steps, and never hand out a buffer that something outliving the step still holds.
 *
 * On the SIMD backend the step's buffers live in the resident shared wasm memory (kernels/wasm/optim.ts), where the
 * batch norm runs on them in place. One ArrayBuffer then holds every tensor of the step, so what outlives a step is
 * told apart by memory range, not by ArrayBuffer: the step's other buffers still go back to the pool, a region that
 * a kept view (even a subarray) points into is never handed out again while that view lives, and the resident
 * memory does not grow from step to step.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { arenaBytes, arenaNewBytes } from '../../src/fusion/arena.js';
import { isResident, residentBuffer } from '../../src/kernels/optim.js';
import { hasSimd128 } from '../../src/kernels/wasm/features.js';
import { residentMemory } from '../../src/kernels/wasm/optim.js';
import { Tensor, manualSeed, memory, models, noGrad, nn, optim, randn, relu, withConfig, withTrainingStep } from '../../src/index.js';
import { smallResnetStep } from '../helpers/train-step.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

// A small CIFAR ResNet-8 on 16×3×16×16: its first stage's tensors (16·4·16·16 = 16384 elements) are large enough
// for the arena (config.arenaMinLength).
const setup = (seed = 1) => smallResnetStep({ seed, lr: 0.01 });

type Setup = ReturnType<typeof setup>;

/** Steps in withTrainingStep of a CIFAR ResNet-8 (seeded) on n random images of size × size, n given per step. */
function stepsOfAnySize(seed: number, size: number): (n: number) => void {
  manualSeed(seed);
  const model = models.cifarResnet(8, { widths: [4, 8, 8] }).train();
  const opt = new optim.SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
  return (n) => withTrainingStep({ model, optimizer: opt }, () => {
    opt.zeroGrad(false);
    nn.functional.crossEntropy(model.forward(randn([n, 3, size, size])), Array.from({ length: n }, (_, i) => i % 10)).backward();
    opt.step();
  });
}

/** Collects garbage and lets the finalization callbacks run (they hand collected resident regions back for reuse). */
async function settle(): Promise<void> {
  for (let i = 0; i < 4; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 10));
  }
}

function snapshot(s: Setup): Float32Array[] {
  const out: Float32Array[] = [];
  for (const p of s.model.parameters()) out.push(p.data.slice(), p.grad!.data.slice());
  for (const t of Object.values(s.model.stateDict())) out.push(t.data.slice());
  for (const st of s.opt.state.values()) for (const v of Object.values(st)) if (v instanceof Float32Array) out.push(v.slice());
  return out;
}

function expectSameBits(a: Float32Array[], b: Float32Array[], what: string): void {
  expect(a.length, what).toBe(b.length);
  a.forEach((x, i) => {
    const y = b[i]!;
    let diff = -1;
    for (let k = 0; k < x.length && diff < 0; k++) if (!Object.is(x[k], y[k])) diff = k;
    expect(diff, `${what}: array ${i} first differs at ${diff}: ${x[diff]} vs ${y[diff]}`).toBe(-1);
  });
}

/** After `warm` steps, what `steps` more steps add: arena buffers made, pool bytes, live tensors, arrayBuffers. */
async function growth(step: () => void, warm: number, steps: number) {
  const settle = async () => {
    for (let i = 0; i < 5; i++) {
      gc();
      await new Promise((r) => setTimeout(r, 5));
    }
    return { ...memory(), arrayBuffers: process.memoryUsage().arrayBuffers, pool: arenaBytes(), made: arenaNewBytes() };
  };
  for (let i = 0; i < warm; i++) step();
  const m0 = await settle();
  for (let i = 0; i < steps; i++) step();
  const m1 = await settle();
  return {
    made: m1.made - m0.made, pool: m1.pool - m0.pool, liveTensors: m1.liveTensors - m0.liveTensors,
    liveBytes: m1.liveBytes - m0.liveBytes, arrayBuffers: m1.arrayBuffers - m0.arrayBuffers,
  };
}

const isFlat = (g: Awaited<ReturnType<typeof growth>>): boolean =>
  g.made === 0 && g.pool === 0 && g.liveTensors <= 5 && g.liveBytes <= 64 * 1024 && g.arrayBuffers <= 256 * 1024;

/**
 * Steps of 16, 16, 12 (an epoch's last), an eval forward, 16 images: the 12-image step runs in the first 12/16 of the
 * 16-image buffers, the step after it makes no new buffers either, and the results are the plain steps' bits.
 */
function epochEnd(): void {
  manualSeed(9);
  const inputs = [16, 16, 12, 16].map((n) => randn([n, 3, 32, 32]));
  const make = () => {
    manualSeed(4);
    const model = models.cifarResnet(8, { widths: [4, 8, 8] }).train();
    return { model, opt: new optim.SGD(model.parameters(), { lr: 0.01, momentum: 0.9 }), losses: [] as number[], k: 0 };
  };
  const body = (s: ReturnType<typeof make>) => () => {
    const x = inputs[s.k++]!;
    s.opt.zeroGrad(false);
    const loss = nn.functional.crossEntropy(s.model.forward(x), Array.from({ length: x.shape[0]! }, (_, i) => i % 10));
    loss.backward();
    s.opt.step();
    s.losses.push(loss.item());
  };
  const plain = make();
  for (let i = 0; i < inputs.length; i++) body(plain)();
  const scoped = make(), model = scoped.model;
  const step = (_n: number) => withTrainingStep({ model, optimizer: scoped.opt }, body(scoped));
  step(16);
  step(16);
  const one = arenaBytes(), made = arenaNewBytes();
  // the 12-image step runs in the first 12/16 of the 16-image buffers
  step(12);
  expect(arenaNewBytes() - made, 'bytes of new buffers in the 12-image step').toBe(0);
  noGrad(() => model.eval().forward(randn([16, 3, 32, 32])));
  model.train();
  const afterEval = arenaNewBytes(), pooled = arenaBytes();
  expect(pooled, 'the pool after the eval forward (its buffers added)').toBeGreaterThanOrEqual(one);
  step(16);
  expect(arenaNewBytes() - afterEval, 'bytes of new buffers in the 16-image step after it').toBe(0);
  expect(arenaBytes(), 'the pool').toBeLessThanOrEqual(pooled);
  expect(scoped.losses).toEqual(plain.losses);
  const bits = (m: typeof model) => [...m.parameters(), ...Object.values(m.stateDict())].map((t) => t.data.slice());
  expectSameBits(bits(model), bits(plain.model), 'parameters and running statistics after 16, 16, 12, 16 images');
}

describe('withTrainingStep', () => {
  it('gives the same bits as plain steps, and makes no new buffers after the first step', () => {
    const plain = setup(), arena = setup();
    const lp: number[] = [], la: number[] = [];
    for (let i = 0; i < 4; i++) lp.push(plain.body());
    la.push(arena.scoped());
    const made = arenaNewBytes();
    for (let i = 0; i < 3; i++) la.push(arena.scoped());
    expect(arenaNewBytes() - made, 'bytes of new buffers in steps 2-4').toBe(0);
    expect(la).toEqual(lp);
    expectSameBits(snapshot(arena), snapshot(plain), 'parameters, gradients, running statistics, momentum');
  });

  it('memory(), arrayBuffers and the pool stay flat over 200 steps (and a leaking step is caught)', async () => {
    const s = setup();
    const g = await growth(() => void s.scoped(), 20, 180);
    expect(isFlat(g), JSON.stringify(g)).toBe(true);
    // The check itself can fail: a step that returns its logits with the graph behind them (kept by a caller)
    // makes the arena keep every saved activation, and new buffers every step.
    const kept: Tensor[] = [];
    const leak = setup(2);
    const leaky = () => {
      kept.push(withTrainingStep({ model: leak.model, optimizer: leak.opt }, () => leak.model.forward(leak.x)));
    };
    const gl = await growth(leaky, 2, 10);
    expect(isFlat(gl), JSON.stringify(gl)).toBe(false);
    expect(gl.made, JSON.stringify(gl)).toBeGreaterThan(10 * 16384 * 4);
  }, 120_000);

  it('the pool holds one step\'s buffers: those of a batch size the last two steps did not use are dropped', () => {
    const step = stepsOfAnySize(4, 32);
    step(16);
    const one = arenaBytes();
    expect(one).toBeGreaterThan(0);
    // (7 images: less than half as many, so the 16-image buffers cannot serve them; 6, 5, 4 run in the 7's)
    step(7);
    expect(arenaBytes(), 'after a batch of 7').toBeGreaterThan(one);
    for (const n of [6, 5, 4]) step(n);
    step(16);
    step(16);
    expect(arenaBytes(), 'after batches of 7, 6, 5, 4 and 16 twice').toBe(one);
  });

  it('after a batch of another size (an epoch\'s last) the next step reuses the usual size\'s buffers; the same bits as plain steps', epochEnd);

  it('memory stays flat over epochs that end in a smaller batch (16, 16, 16, 12 images, repeated)', async () => {
    manualSeed(6);
    const model = models.cifarResnet(8, { widths: [4, 8, 8] }).train();
    const opt = new optim.SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
    const xs = [16, 16, 16, 12].map((n) => randn([n, 3, 32, 32]));
    let k = 0;
    const step = () => withTrainingStep({ model, optimizer: opt }, () => {
      const x = xs[k++ % xs.length]!;
      opt.zeroGrad(false);
      nn.functional.crossEntropy(model.forward(x), Array.from({ length: x.shape[0]! }, (_, i) => i % 10)).backward();
      opt.step();
    });
    const g = await growth(step, 8, 12);
    expect(isFlat(g), JSON.stringify(g)).toBe(true);
  }, 60_000);

  it('a batch of more than twice the last one\'s: the buffers of both are kept for one step, then the unused dropped', () => {
    const step = stepsOfAnySize(4, 32);
    step(6);
    step(16);
    const made = arenaNewBytes();
    step(6);
    step(16);
    expect(arenaNewBytes() - made, 'bytes of new buffers in the steps of 6 and 16 images after the first two').toBe(0);
    const two = arenaBytes();
    step(16);
    expect(arenaBytes(), 'after two 16-image steps in a row').toBeLessThan(two);
  });

  it('work between two steps (a plain step, an eval forward) takes none of the step\'s buffers', () => {
    for (const residentSteps of [false, true]) {
      withConfig({ residentSteps }, () => {
        const s = setup(), other = setup(2);
        s.scoped();
        s.scoped();
        // with the bounded part of the pool full (here: no room at all), a buffer taken from the pool by this work
        // would be dropped when it is given back
        withConfig({ arenaBytes: 0 }, () => {
          other.body();
          other.model.eval();
          noGrad(() => other.model.forward(other.x));
          other.model.train();
        });
        const made = arenaNewBytes();
        s.scoped();
        expect(arenaNewBytes() - made, `bytes of new buffers in the next step (residentSteps ${residentSteps})`).toBe(0);
      });
    }
  });

  it('keeps what outlives the step: a returned tensor, and a returned graph that is backpropagated later', () => {
    const s = setup();
    s.scoped();
    const big = withTrainingStep({ model: s.model, optimizer: s.opt }, () => {
      s.body();
      return relu(randn([16, 4, 16, 16]));
    });
    expect(big.data.buffer instanceof SharedArrayBuffer, 'the returned tensor came from the arena').toBe(true);
    const bigCopy = big.data.slice();
    // A graph returned unbackpropagated: its saved activations must survive the next steps.
    const ref = setup(3), live = setup(3);
    const refLoss = nn.functional.crossEntropy(ref.model.forward(ref.x), ref.target);
    const loss = withTrainingStep({ model: live.model }, () => nn.functional.crossEntropy(live.model.forward(live.x), live.target));
    for (let i = 0; i < 5; i++) s.scoped();
    expectSameBits([big.data], [bigCopy], 'a returned tensor after 5 more steps');
    refLoss.backward();
    loss.backward();
    expectSameBits(live.model.parameters().map((p) => p.grad!.data), ref.model.parameters().map((p) => p.grad!.data), 'gradients of the kept graph');
  });

  it('with anomaly detection on, a tensor wrongly kept outside the step reads NaN', () => {
    const s = setup();
    let stolen: Tensor | null = null;
    withConfig({ detectAnomaly: true }, () => {
      withTrainingStep({ model: s.model, optimizer: s.opt }, () => {
        stolen = relu(randn([16, 4, 16, 16]));
        s.body();
      });
    });
    expect(Number.isNaN(stolen!.data[0]), 'the recycled buffer is poisoned').toBe(true);
  });

  it('reuses nothing while a forward hook may keep outputs, and recovers from a step that throws', () => {
    const s = setup(), ref = setup();
    const seen: [Tensor, Float32Array][] = [];
    const handle = s.model.layer1.registerForwardHook((_m, _in, out) => void seen.push([out, out.data.slice()]));
    for (let i = 0; i < 3; i++) s.scoped();
    handle.remove();
    expect(seen.length).toBe(3);
    for (const [t, copy] of seen) expectSameBits([t.data], [copy], 'hooked outputs after later steps');
    expect(() => withTrainingStep({ model: s.model }, () => {
      s.model.forward(s.x);
      throw new Error('boom');
    })).toThrow('boom');
    for (let i = 0; i < 3; i++) ref.body();
    ref.model.forward(ref.x); // (the thrown step's forward updated the running statistics)
    ref.body();
    s.scoped();
    expectSameBits(snapshot(s), snapshot(ref), 'after a thrown step');
  });
});

const simd = <T>(fn: () => T): T => withConfig({ kernelBackend: 'simd', residentSteps: true }, fn);

describe.runIf(hasSimd128 && typeof SharedArrayBuffer === 'function')('a training step in the resident memory', () => {
  it('its activations are resident; the same bits as plain steps; no new buffers and no growth once warm', () => simd(() => {
    const plain = setup(), s = setup();
    const lp = [plain.body(), plain.body()];
    const out = withTrainingStep({ model: s.model, optimizer: s.opt }, () => ({ loss: s.body(), act: relu(randn([16, 4, 16, 16])) }));
    expect(isResident(out.act.data), 'a step tensor lies in the resident memory').toBe(true);
    const ls = [out.loss, s.scoped()];
    expect(ls).toEqual(lp);
    const made = arenaNewBytes(), size = residentMemory()!.mem.buffer.byteLength;
    for (let i = 0; i < 20; i++) s.scoped();
    expect(arenaNewBytes() - made, 'bytes of new buffers in 20 warm steps').toBe(0);
    expect(residentMemory()!.mem.buffer.byteLength - size, 'growth of the resident memory in 20 warm steps').toBe(0);
  }));

  it('an epoch\'s last, smaller batch runs in views of resident buffers: no new buffers, the plain steps\' bits', () => simd(epochEnd));

  it('a batch of another size between steps (an epoch\'s last) does not grow the memory by a step\'s worth', () => simd(() => {
    const step = stepsOfAnySize(5, 16);
    step(16);
    step(16);
    step(12);
    // the 16-image step's buffers were dropped by the 12-image step: their regions serve the next 16-image step
    const size = residentMemory()!.mem.buffer.byteLength;
    step(16);
    step(12);
    step(16);
    expect(residentMemory()!.mem.buffer.byteLength - size, 'growth of the resident memory').toBe(0);
  }));

  it('a region a kept subarray points into is not handed out again, and the step\'s other buffers are reused', async () => {
    const s = setup(2);
    s.scoped();
    const n = 16 * 4 * 16 * 16;
    // keep only a subarray of a step tensor's data: the tensor and its own Float32Array become garbage
    let kept: { part: Float32Array } | null = simd(() => withTrainingStep({ model: s.model, optimizer: s.opt }, () => {
      s.body();
      const t = relu(randn([16, 4, 16, 16]));
      t.data.fill(3);
      return { part: t.data.subarray(100, 200) };
    }));
    expect(isResident(kept.part)).toBe(true);
    simd(() => s.scoped()); // (makes a buffer in place of the kept one)
    const made = arenaNewBytes();
    for (let i = 0; i < 3; i++) simd(() => s.scoped());
    expect(arenaNewBytes() - made, 'the steps after reuse every other buffer').toBe(0);
    await settle();
    // fresh regions of the same size: a freed region would come back zero-filled, and then be overwritten
    const fresh = simd(() => Array.from({ length: 6 }, () => residentBuffer(n)!));
    for (const f of fresh) f.fill(-1);
    for (let i = 0; i < 3; i++) simd(() => s.scoped());
    expect(kept.part.every((v) => v === 3), 'the kept subarray still reads what was written').toBe(true);
    const start = kept.part.byteOffset;
    expect(fresh.some((f) => f.byteOffset <= start && start < f.byteOffset + f.byteLength)).toBe(false);
    // once the subarray is gone too, its tensor's region is free again: requests of that size get it (after the
    // other free regions that fit, which earlier tests' garbage may have left: at most a few hundred)
    const region = start - 100 * 4;
    kept = null;
    fresh.length = 0;
    await settle();
    const top = residentMemory()!.mem.buffer.byteLength;
    const again: Float32Array[] = [];
    simd(() => {
      while (again.length < 1000 && !again.some((f) => f.byteOffset === region)) again.push(residentBuffer(n)!);
    });
    expect(again.some((f) => f.byteOffset === region), `the region came back (${again.length} requests; memory ${top} bytes)`).toBe(true);
  });
});
