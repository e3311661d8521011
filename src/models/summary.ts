import { noGrad } from '../autograd.js';
import { ShapeError } from '../errors.js';
import { fmt, numel } from '../shape.js';
import { zeros } from '../tensor.js';
import { Conv2d, Linear } from '../nn/layers.js';
import type { Module, RemovableHandle } from '../nn/module.js';

/** One line of a model summary. */
export interface SummaryRow {
  /** Dotted module name (torchvision's). */
  name: string;
  type: string;
  depth: number;
  /** Output shape of the module's last call (null if the forward pass never called it). */
  outputShape: number[] | null;
  /** Parameters owned by this module itself (not its children). */
  params: number;
  /** Multiply-adds of this module itself: convs and linears (BN, ReLU, pooling and additions are not counted). */
  macs: number;
}

export interface Summary {
  rows: SummaryRow[];
  totalParams: number;
  trainableParams: number;
  totalMacs: number;
  inputShape: number[];
  /** The table as text. */
  text: string;
}

/**
 * A table of every module's output shape, parameters and multiply-adds for one forward pass of `inputShape` (like
 * torchinfo.summary), computed without data: the forward runs on an empty batch (zeros of shape
 * [0, ...inputShape.slice(1)]: every op computes its output's shape and does no arithmetic), and each output's
 * leading 0 is the batch size. So a 1×3×8192×8192 input costs what 1×3×32×32 does. Where some output does not keep
 * the batch as its first dimension, the forward runs again on zeros of `inputShape`. Runs in eval mode without
 * gradients and restores the model's mode.
 */
export function summary(model: Module, inputShape: readonly number[]): Summary {
  if (inputShape.length === 0) throw new ShapeError('summary', 'the input shape needs a batch dimension first, got []');
  const batch = inputShape[0]!;
  const empty = [0, ...inputShape.slice(1)];
  let rows = collect(model, empty, batch);
  if (rows === null) rows = collect(model, inputShape, batch)!;
  const totalParams = model.parameters().reduce((s, p) => s + p.size, 0);
  const trainableParams = model.parameters().filter((p) => p.requiresGrad).reduce((s, p) => s + p.size, 0);
  const totalMacs = rows.reduce((s, r) => s + r.macs, 0);
  return { rows, totalParams, trainableParams, totalMacs, inputShape: inputShape.slice(), text: formatSummary(model, rows, inputShape, totalParams, trainableParams, totalMacs) };
}

/**
 * The rows from one forward on zeros of `shape`, each output's first dimension read as `batch` when `shape`'s is 0;
 * null when an output of that empty forward does not start with the batch dimension (then its shape says nothing).
 */
function collect(model: Module, shape: readonly number[], batch: number): SummaryRow[] | null {
  const rows: SummaryRow[] = [];
  const emptyBatch = shape[0] === 0 && batch !== 0;
  let batchFirst = true;
  const mods = model.namedModules().slice(1);
  const depthOf = (name: string): number => name.split('.').length - 1;
  const saved = model.training;
  const handles: RemovableHandle[] = [];
  for (const [name, m] of mods) {
    const row: SummaryRow = { name, type: m.typeName, depth: depthOf(name), outputShape: null, params: 0, macs: 0 };
    for (const [, p] of m.ownParameters()) row.params += p.size;
    rows.push(row);
    handles.push(
      m.registerForwardHook((_, _x, y) => {
        const out = y.shape.slice();
        if (emptyBatch) {
          if (out[0] !== 0) batchFirst = false;
          else out[0] = batch;
        }
        row.outputShape = out;
        const size = numel(out);
        if (m instanceof Conv2d) {
          row.macs += size * (m.inChannels / m.groups) * m.kernelSize[0] * m.kernelSize[1];
        } else if (m instanceof Linear) {
          row.macs += (size / m.outFeatures) * m.inFeatures * m.outFeatures;
        }
      }),
    );
  }
  try {
    model.eval();
    noGrad(() => model.forward(zeros(shape)));
  } finally {
    for (const h of handles) h.remove();
    model.train(saved);
  }
  return batchFirst ? rows : null;
}

const n = (v: number): string => v.toLocaleString('en-US');

function formatSummary(model: Module, rows: SummaryRow[], inputShape: readonly number[], total: number, trainable: number, macs: number): string {
  const cells = rows.map((r) => [`${'  '.repeat(r.depth)}${r.name} (${r.type})`, r.outputShape ? fmt(r.outputShape) : '--', r.params ? n(r.params) : '--', r.macs ? n(r.macs) : '--']);
  const head = ['Layer (type)', 'Output shape', 'Params', 'Mult-adds'];
  const w = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]): string => c.map((s, i) => (i === 0 ? s.padEnd(w[i]!) : s.padStart(w[i]!))).join('  ');
  const rule = '='.repeat(w.reduce((a, b) => a + b + 2, -2));
  return [
    `${model.typeName} on input ${fmt(inputShape)}`,
    rule,
    line(head),
    rule,
    ...cells.map(line),
    rule,
    `Total params: ${n(total)}`,
    `Trainable params: ${n(trainable)}`,
    `Total mult-adds: ${n(macs)} (${(macs / 1e9).toFixed(2)} G)`,
    rule,
  ].join('\n');
}
