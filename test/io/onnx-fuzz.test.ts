/**
 * loadOnnx fuzz: every input either loads (and then runs on a small input, or fails with OnnxError) or throws
 * OnnxError; nothing else (RangeError, TypeError, a stack overflow, a hang) may escape. Seeded (fast-check).
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { noGrad } from '../../src/autograd.js';
import { exportOnnx, loadOnnx, OnnxError } from '../../src/io/onnx.js';
import { cifarResnet } from '../../src/models/index.js';
import { AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential } from '../../src/nn/layers.js';
import { manualSeed } from '../../src/random.js';
import { Tensor } from '../../src/tensor.js';
import { editBytes, BYTE_EDITS, type ByteEdit } from '../helpers/mutate.js';
import { ONNX_FIXTURES } from '../helpers/onnx.js';

const SEED = 0x0d0c5eed;

manualSeed(5);
const SEEDS: Uint8Array[] = [
  exportOnnx(new Sequential(new Conv2d(3, 4, 3, { padding: 1 }), new BatchNorm2d(4), new ReLU(), new MaxPool2d({ kernelSize: 2 }), new AvgPool2d({ kernelSize: 2 }), new AdaptiveAvgPool2d(1), new Flatten(), new Linear(4, 3)), { inputShape: [1, 3, 8, 8] }),
  exportOnnx(cifarResnet(8, { widths: [2, 4, 6], numClasses: 3 }), { inputShape: [1, 3, 8, 8], opset: 11, foldBatchNorm: true }),
  // PyTorch's ResNet-20 graph: its Shape/Gather/Cast/Concat/Reshape/Slice/Transpose chains (large weights removed)
  new Uint8Array(readFileSync(`${ONNX_FIXTURES}cifar_resnet20_op13.onnx`)),
];

type Outcome = 'ok' | 'ran' | OnnxError['kind'];

/** Loads; if that works, runs on a small input fitting the declared dims. OnnxError gives its kind; others escape. */
function outcome(bytes: Uint8Array): Outcome {
  let m;
  try {
    m = loadOnnx(bytes);
  } catch (e) {
    if (e instanceof OnnxError) return e.kind;
    throw e;
  }
  const dims = (m.inputDims ?? [1, 3, 8, 8]).map((d) => (typeof d === 'number' && d > 0 ? d : 1));
  const n = dims.reduce((a, b) => a * b, 1);
  if (n > 1e5) return 'ok';
  try {
    const y = noGrad(() => m.forward(new Tensor(new Float32Array(n).fill(0.5), dims)));
    if (!(y instanceof Tensor)) throw new Error('forward did not return a Tensor');
    return 'ran';
  } catch (e) {
    if (e instanceof OnnxError) return e.kind;
    throw e;
  }
}

const mutated = fc
  .record({
    file: fc.constantFrom(...SEEDS),
    op: fc.constantFrom<ByteEdit | 'varint'>(...BYTE_EDITS, 'varint'),
    pos: fc.nat(),
    pos2: fc.nat(),
    bit: fc.integer({ min: 0, max: 7 }),
    byte: fc.integer({ min: 0, max: 255 }),
    bytes: fc.uint8Array({ maxLength: 8 }),
  })
  .map(({ file, op, pos, pos2, bit, byte, bytes }) => {
    // mostly in the graph structure (the first and last few KB), sometimes anywhere
    const p = pos2 % 3 === 0 ? pos % file.length : pos2 % 3 === 1 ? pos % Math.min(file.length, 4096) : file.length - 1 - (pos % Math.min(file.length, 4096));
    if (op !== 'varint') return editBytes(file, op, p, { bit, byte, bytes, run: pos2 });
    // a run of varint continuation bytes: long and overflowing varints, lengths
    const b = file.slice();
    b.fill(0xff, p, Math.min(b.length, p + 1 + (pos2 % 11)));
    return b;
  });

function tally(counts: Map<Outcome, number>, o: Outcome): void {
  counts.set(o, (counts.get(o) ?? 0) + 1);
}

describe('loadOnnx fuzz: every failure is an OnnxError', () => {
  it('the seeds load (the PyTorch graph without its weights fails as InvalidGraph)', () => {
    expect(SEEDS.map(outcome)).toEqual(['ran', 'ran', 'InvalidGraph']);
  });

  it('random byte strings (5,000)', () => {
    const counts = new Map<Outcome, number>();
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (b) => tally(counts, outcome(b))), { seed: SEED, numRuns: 5000 });
    expect(counts.get('Truncated')).toBeGreaterThan(0);
    expect(counts.get('InvalidWireType')).toBeGreaterThan(0);
  });

  it('valid models with one random edit (3,000), run when they still load', () => {
    const counts = new Map<Outcome, number>();
    fc.assert(fc.property(mutated, (b) => tally(counts, outcome(b))), { seed: SEED + 1, numRuns: 3000 });
    // the edits reach past the wire format into tensors, graphs and attributes, and many still run
    for (const k of ['ran', 'Truncated', 'InvalidTensor', 'InvalidGraph'] as const) expect(counts.get(k), `${k}: ${JSON.stringify([...counts])}`).toBeGreaterThan(0);
  });
});
