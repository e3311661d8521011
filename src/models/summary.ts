import { noGrad } from '../autograd.js';
import { fmt } from '../shape.js';
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
 * A table of every module's output shape, parameters and multiply-adds for one forward pass on zeros of
 * `inputShape` (like torchinfo.summary). Runs in eval mode without gradients and restores the model's mode.
 */
export function summary(model: Module, inputShape: readonly number[]): Summary {
  const rows: SummaryRow[] = [];
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
        row.outputShape = y.shape.slice();
        if (m instanceof Conv2d) {
          row.macs += y.size * (m.inChannels / m.groups) * m.kernelSize[0] * m.kernelSize[1];
        } else if (m instanceof Linear) {
          row.macs += (y.size / m.outFeatures) * m.inFeatures * m.outFeatures;
        }
      }),
    );
  }
  try {
    model.eval();
    noGrad(() => model.forward(zeros(inputShape)));
  } finally {
    for (const h of handles) h.remove();
    model.train(saved);
  }
  const totalParams = model.parameters().reduce((s, p) => s + p.size, 0);
  const trainableParams = model.parameters().filter((p) => p.requiresGrad).reduce((s, p) => s + p.size, 0);
  const totalMacs = rows.reduce((s, r) => s + r.macs, 0);
  return { rows, totalParams, trainableParams, totalMacs, inputShape: inputShape.slice(), text: formatSummary(model, rows, inputShape, totalParams, trainableParams, totalMacs) };
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
