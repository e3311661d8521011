/**
 * Export: our models as ONNX graphs (inference semantics: BatchNorm with running statistics, no Dropout). Each
 * module type has an emitter that writes the nodes its forward computes, in the same order; initializers carry the
 * state-dict names (`layer1.0.conv1.weight`), the graph input is `input` and the output `logits`. Pure: no node
 * imports; onnx-file.ts writes files.
 */

import { AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, Conv2d, Dropout, Flatten, Identity, Linear, MaxPool2d, ReLU, Sequential } from '../nn/layers.js';
import type { Module } from '../nn/module.js';
import { BasicBlock, Bottleneck, ResNet, ShortcutA } from '../models/resnet.js';
import { CifarBasicBlock, CifarResNet } from '../models/cifar.js';
import { PreActBasicBlock, PreActBottleneck, PreActCifarResNet, PreActResNet } from '../models/preact.js';
import { fmt } from '../shape.js';
import { OnnxError, writeModelProto, type AttributeToWrite, type NodeToWrite, type TensorToWrite } from './onnx-proto.js';
import type { Tensor } from '../tensor.js';

export interface ExportOnnxOptions {
  /** The input's shape (N, C, H, W); with dynamicBatch, N is only an example. */
  inputShape: readonly number[];
  /** Declare the batch dim as symbolic (`batch`), so any batch size runs. Default true. */
  dynamicBatch?: boolean;
  /** Default-domain opset version, 11–17. Default 17. */
  opset?: number;
  /**
   * Fold each BatchNorm that follows a conv into that conv's weight and bias (float64 arithmetic, one float32
   * rounding), as torch.onnx.export does in eval mode. The folded tensors keep the conv's names. Default false.
   */
  foldBatchNorm?: boolean;
}

/** Opset versions the exporter writes (each checked with onnx.checker by the fixture script). */
export const ONNX_EXPORT_OPSETS = [11, 17] as const;
/** IR version that goes with an opset (onnx/helper.py VERSION_TABLE). */
const IR_FOR_OPSET: Record<number, number> = { 11: 6, 12: 7, 13: 7, 14: 7, 15: 8, 16: 8, 17: 8 };
/** Slice's "to the end": values ≥ 2^63 are written as INT64_MAX (writeModelProto). */
const INT64_MAX = 2 ** 63;

/** Builds the graph: nodes in order, initializers by name, int64 constants as Constant nodes. */
class GraphBuilder {
  readonly nodes: NodeToWrite[] = [];
  readonly initializers: TensorToWrite[] = [];
  private readonly names = new Set<string>();
  private counter = 0;

  constructor(readonly opset: number, readonly fold: boolean) {}

  /** A fresh value name under a node path: `/layer1/layer1.0/conv1/Conv_output_0` style, shortened. */
  private fresh(base: string): string {
    return `${base || 'node'}:${this.counter++}`;
  }

  node(opType: string, inputs: readonly string[], path: string, attributes: AttributeToWrite[] = []): string {
    const out = this.fresh(`${path}/${opType}`);
    this.nodes.push({ opType, name: `${path || 'graph'}/${opType}_${this.nodes.length}`, inputs, outputs: [out], attributes });
    return out;
  }

  /** A float32 initializer under its state-dict name (each name once). */
  param(name: string, data: Float32Array, dims: readonly number[]): string {
    if (this.names.has(name)) throw new OnnxError('UnsupportedModule', `the initializer ${JSON.stringify(name)} would be written twice (a module shared between two places?)`);
    this.names.add(name);
    this.initializers.push({ name, dims: dims.slice(), float: data });
    return name;
  }

  tensor(name: string, t: Tensor): string {
    return this.param(name, t.data, t.shape);
  }

  /** A 1-D int64 constant (as a Constant node, so that it is not an initializer). */
  constInts(values: readonly number[], path: string): string {
    return this.node('Constant', [], path, [{ name: 'value', t: { name: '', dims: [values.length], int64: values } }]);
  }
}

const pairOf = (v: number | readonly [number, number]): [number, number] => (typeof v === 'number' ? [v, v] : [v[0], v[1]]);

/** A module path as a node-name prefix: `layer1.0.conv1` → `/layer1.0/conv1`. */
const key = (path: string, name: string): string => (path ? `${path}.${name}` : name);

function convPads(c: Conv2d): number[] {
  if (c.padding === 'valid') return [0, 0, 0, 0];
  if (c.padding === 'same') {
    // PyTorch: total = d·(k − 1), the odd one on the bottom/right
    const [t, b] = split(c.dilation[0] * (c.kernelSize[0] - 1));
    const [l, r] = split(c.dilation[1] * (c.kernelSize[1] - 1));
    return [t, l, b, r];
  }
  return [c.padding[0], c.padding[1], c.padding[0], c.padding[1]];
}
const split = (total: number): [number, number] => [Math.floor(total / 2), total - Math.floor(total / 2)];

function convAttrs(c: Conv2d): AttributeToWrite[] {
  return [
    { name: 'dilations', ints: c.dilation },
    { name: 'group', i: c.groups },
    { name: 'kernel_shape', ints: c.kernelSize },
    { name: 'pads', ints: convPads(c) },
    { name: 'strides', ints: c.stride },
  ];
}

function emitConv(g: GraphBuilder, c: Conv2d, x: string, path: string): string {
  const inputs = [x, g.tensor(`${path}.weight`, c.weight)];
  if (c.bias) inputs.push(g.tensor(`${path}.bias`, c.bias));
  return g.node('Conv', inputs, path, convAttrs(c));
}

function emitBatchNorm(g: GraphBuilder, bn: BatchNorm2d, x: string, path: string): string {
  const rm = bn.runningMean;
  const rv = bn.runningVar;
  if (!rm || !rv) throw new OnnxError('UnsupportedModule', `${path || 'the model'}: BatchNorm2d without running statistics (trackRunningStats false) has no inference form to export`);
  const c = bn.numFeatures;
  const w = bn.weight ? g.tensor(`${path}.weight`, bn.weight) : g.param(`${path}.weight`, new Float32Array(c).fill(1), [c]);
  const b = bn.bias ? g.tensor(`${path}.bias`, bn.bias) : g.param(`${path}.bias`, new Float32Array(c), [c]);
  const momentum = bn.momentum === null ? 0.9 : 1 - bn.momentum;
  return g.node('BatchNormalization', [x, w, b, g.tensor(`${path}.running_mean`, rm), g.tensor(`${path}.running_var`, rv)], path, [
    { name: 'epsilon', f: bn.eps },
    { name: 'momentum', f: momentum },
  ]);
}

/** conv → BatchNorm: two nodes, or with foldBatchNorm one Conv with w·α and β − mean·α + bias·α (α = γ/√(var + ε)). */
function emitConvBn(g: GraphBuilder, conv: Conv2d, bn: BatchNorm2d, x: string, convPath: string, bnPath: string): string {
  if (!g.fold) return emitBatchNorm(g, bn, emitConv(g, conv, x, convPath), bnPath);
  const rm = bn.runningMean;
  const rv = bn.runningVar;
  if (!rm || !rv) throw new OnnxError('UnsupportedModule', `${bnPath}: BatchNorm2d without running statistics cannot be folded`);
  const o = conv.outChannels;
  const per = conv.weight.size / o;
  const w = new Float32Array(conv.weight.size);
  const b = new Float32Array(o);
  for (let j = 0; j < o; j++) {
    const alpha = (bn.weight ? bn.weight.data[j]! : 1) / Math.sqrt(rv.data[j]! + bn.eps);
    for (let i = 0; i < per; i++) w[j * per + i] = conv.weight.data[j * per + i]! * alpha;
    b[j] = (bn.bias ? bn.bias.data[j]! : 0) - rm.data[j]! * alpha + (conv.bias ? conv.bias.data[j]! * alpha : 0);
  }
  return g.node('Conv', [x, g.param(`${convPath}.weight`, w, conv.weight.shape), g.param(`${convPath}.bias`, b, [o])], convPath, convAttrs(conv));
}

const relu = (g: GraphBuilder, x: string, path: string): string => g.node('Relu', [x], path);

function poolAttrs(kernel: [number, number], stride: [number, number], padding: [number, number], ceilMode: boolean): AttributeToWrite[] {
  return [
    { name: 'ceil_mode', i: ceilMode ? 1 : 0 },
    { name: 'kernel_shape', ints: kernel },
    { name: 'pads', ints: [padding[0], padding[1], padding[0], padding[1]] },
    { name: 'strides', ints: stride },
  ];
}

/** The option-A shortcut: x[:, :, ::s, ::s] (Slice with steps) with zero channels padded on both sides (Pad). */
function emitShortcutA(g: GraphBuilder, m: ShortcutA, x: string, path: string, channels: number): string {
  let y = x;
  if (m.stride !== 1) {
    y = g.node('Slice', [y, g.constInts([0, 0], path), g.constInts([INT64_MAX, INT64_MAX], path), g.constInts([2, 3], path), g.constInts([m.stride, m.stride], path)], path);
  }
  const extra = m.outChannels - channels;
  if (extra === 0) return y;
  const before = Math.floor(extra / 2);
  return g.node('Pad', [y, g.constInts([0, before, 0, 0, 0, extra - before, 0, 0], path)], path, [{ name: 'mode', s: 'constant' }]);
}

/**
 * Writes module m applied to the value x; returns the output value. `channels` is x's channel count, tracked for
 * the option-A shortcut (the only emitter that needs a shape).
 */
function emit(g: GraphBuilder, m: Module, x: string, path: string, channels: number): [string, number] {
  if (m instanceof Sequential) {
    let y = x;
    let c = channels;
    m.namedChildren().forEach(([name, child]) => ([y, c] = emit(g, child, y, key(path, name), c)));
    return [y, c];
  }
  if (m instanceof Conv2d) return [emitConv(g, m, x, path), m.outChannels];
  if (m instanceof BatchNorm2d) return [emitBatchNorm(g, m, x, path), channels];
  if (m instanceof ReLU) return [relu(g, x, path), channels];
  if (m instanceof Identity || m instanceof Dropout) return [x, channels];
  if (m instanceof MaxPool2d) {
    const o = m.opts;
    const k = pairOf(o.kernelSize);
    const attrs = poolAttrs(k, pairOf(o.stride ?? o.kernelSize), pairOf(o.padding ?? 0), o.ceilMode ?? false);
    attrs.splice(1, 0, { name: 'dilations', ints: pairOf(o.dilation ?? 1) });
    return [g.node('MaxPool', [x], path, attrs), channels];
  }
  if (m instanceof AvgPool2d) {
    const o = m.opts;
    if (o.divisorOverride !== undefined) throw new OnnxError('UnsupportedModule', `${path}: AvgPool2d with divisorOverride has no ONNX equivalent`);
    const attrs = poolAttrs(pairOf(o.kernelSize), pairOf(o.stride ?? o.kernelSize), pairOf(o.padding ?? 0), o.ceilMode ?? false);
    attrs.splice(1, 0, { name: 'count_include_pad', i: o.countIncludePad ?? true ? 1 : 0 });
    return [g.node('AveragePool', [x], path, attrs), channels];
  }
  if (m instanceof AdaptiveAvgPool2d) {
    const [h, w] = pairOf(m.outputSize);
    if (h !== 1 || w !== 1) throw new OnnxError('UnsupportedModule', `${path}: AdaptiveAvgPool2d to ${h}×${w} is not exported (only 1×1, as GlobalAveragePool)`);
    return [g.node('GlobalAveragePool', [x], path), channels];
  }
  if (m instanceof Flatten) {
    if (m.endDim !== -1) throw new OnnxError('UnsupportedModule', `${path}: Flatten with endDim ${m.endDim} is not exported (only endDim -1)`);
    return [g.node('Flatten', [x], path, [{ name: 'axis', i: m.startDim }]), channels];
  }
  if (m instanceof Linear) {
    const inputs = [x, g.tensor(`${key(path, 'weight')}`, m.weight)];
    if (m.bias) inputs.push(g.tensor(key(path, 'bias'), m.bias));
    return [g.node('Gemm', inputs, path, [{ name: 'alpha', f: 1 }, { name: 'beta', f: 1 }, { name: 'transB', i: 1 }]), m.outFeatures];
  }
  if (m instanceof ShortcutA) return [emitShortcutA(g, m, x, path, channels), m.outChannels];
  const block = emitBlock(g, m, x, path, channels);
  if (block) return block;
  const net = emitNet(g, m, x, path);
  if (net) return net;
  throw new OnnxError('UnsupportedModule', `${path || 'the model'}: no ONNX export for ${m.typeName} (exported: the models of resnet-ts.models and the layers Conv2d, BatchNorm2d, ReLU, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d(1), Linear, Flatten, Identity, Dropout, Sequential)`);
}

const sub = (g: GraphBuilder, m: Module, x: string, path: string, c: number): [string, number] => emit(g, m, x, path, c);

/** The residual units, written as their forward computes them. */
function emitBlock(g: GraphBuilder, m: Module, x: string, p: string, c: number): [string, number] | null {
  const k = (n: string): string => key(p, n);
  if (m instanceof BasicBlock) {
    let y = relu(g, emitConvBn(g, m.conv1, m.bn1, x, k('conv1'), k('bn1')), k('relu'));
    y = emitConvBn(g, m.conv2, m.bn2, y, k('conv2'), k('bn2'));
    const id = m.downsample ? shortcut(g, m.downsample, x, k('downsample'), c) : x;
    return [relu(g, g.node('Add', [y, id], p), k('relu')), m.conv2.outChannels];
  }
  if (m instanceof Bottleneck) {
    let y = relu(g, emitConvBn(g, m.conv1, m.bn1, x, k('conv1'), k('bn1')), k('relu'));
    y = relu(g, emitConvBn(g, m.conv2, m.bn2, y, k('conv2'), k('bn2')), k('relu'));
    y = emitConvBn(g, m.conv3, m.bn3, y, k('conv3'), k('bn3'));
    const id = m.downsample ? shortcut(g, m.downsample, x, k('downsample'), c) : x;
    return [relu(g, g.node('Add', [y, id], p), k('relu')), m.conv3.outChannels];
  }
  if (m instanceof CifarBasicBlock) {
    let y = relu(g, emitConvBn(g, m.conv1, m.bn1, x, k('conv1'), k('bn1')), k('relu'));
    y = emitConvBn(g, m.conv2, m.bn2, y, k('conv2'), k('bn2'));
    if (m.residual) {
      const id = m.shortcut ? sub(g, m.shortcut, x, k('shortcut'), c)[0] : m.downsample ? shortcut(g, m.downsample, x, k('downsample'), c) : x;
      y = g.node('Add', [y, id], p);
    }
    return [relu(g, y, k('relu')), m.conv2.outChannels];
  }
  if (m instanceof PreActBasicBlock || m instanceof PreActBottleneck) {
    const pre = relu(g, emitBatchNorm(g, m.bn1, x, k('bn1')), p);
    const id = m.downsample ? sub(g, m.downsample, pre, k('downsample'), c)[0] : x;
    let y = emitConv(g, m.conv1, pre, k('conv1'));
    y = emitConv(g, m.conv2, relu(g, emitBatchNorm(g, m.bn2, y, k('bn2')), p), k('conv2'));
    let out = m.conv2.outChannels;
    if (m instanceof PreActBottleneck) {
      y = emitConv(g, m.conv3, relu(g, emitBatchNorm(g, m.bn3, y, k('bn3')), p), k('conv3'));
      out = m.conv3.outChannels;
    }
    return [g.node('Add', [y, id], p), out];
  }
  return null;
}

/** A projection shortcut: Sequential(conv1x1, BatchNorm2d) (folded with the rest), or any other module. */
function shortcut(g: GraphBuilder, ds: Module, x: string, path: string, c: number): string {
  if (ds instanceof Sequential && ds.length === 2 && ds.at(0) instanceof Conv2d && ds.at(1) instanceof BatchNorm2d) {
    return emitConvBn(g, ds.at(0) as Conv2d, ds.at(1) as BatchNorm2d, x, key(path, '0'), key(path, '1'));
  }
  return sub(g, ds, x, path, c)[0];
}

/** The whole networks: stem, stages, head. */
function emitNet(g: GraphBuilder, m: Module, x: string, p: string): [string, number] | null {
  const k = (n: string): string => key(p, n);
  const head = (y: string, pool: AdaptiveAvgPool2d, fc: Linear, c: number): [string, number] => {
    y = emit(g, pool, y, k('avgpool'), c)[0];
    y = g.node('Flatten', [y], p, [{ name: 'axis', i: 1 }]);
    return emit(g, fc, y, k('fc'), c);
  };
  const stages = (y: string, c: number, layers: Sequential[]): [string, number] => {
    layers.forEach((l, i) => ([y, c] = emit(g, l, y, k(`layer${i + 1}`), c)));
    return [y, c];
  };
  if (m instanceof ResNet) {
    let y = relu(g, emitConvBn(g, m.conv1, m.bn1, x, k('conv1'), k('bn1')), k('relu'));
    y = emit(g, m.maxpool, y, k('maxpool'), 64)[0];
    const [z, c] = stages(y, m.conv1.outChannels, [m.layer1, m.layer2, m.layer3, m.layer4]);
    return head(z, m.avgpool, m.fc, c);
  }
  if (m instanceof CifarResNet) {
    const y = relu(g, emitConvBn(g, m.conv1, m.bn1, x, k('conv1'), k('bn1')), k('relu'));
    const [z, c] = stages(y, m.conv1.outChannels, [m.layer1, m.layer2, m.layer3]);
    return head(z, m.avgpool, m.fc, c);
  }
  if (m instanceof PreActResNet || m instanceof PreActCifarResNet) {
    let y = emitConv(g, m.conv1, x, k('conv1'));
    if (m instanceof PreActResNet) y = emit(g, m.maxpool, y, k('maxpool'), m.conv1.outChannels)[0];
    const layers = m instanceof PreActResNet ? [m.layer1, m.layer2, m.layer3, m.layer4] : [m.layer1, m.layer2, m.layer3];
    const [z, c] = stages(y, m.conv1.outChannels, layers);
    const post = relu(g, emitBatchNorm(g, m.bn, z, k('bn')), k('relu'));
    return head(post, m.avgpool, m.fc, c);
  }
  return null;
}

/** The last Linear of a model (its classifier), for the output's declared size. */
function lastLinear(model: Module): Linear | null {
  let found: Linear | null = null;
  for (const [, m] of model.namedModules()) if (m instanceof Linear) found = m;
  return found;
}

/**
 * Writes a model as an ONNX ModelProto: graph input `input` (float, inputShape with a symbolic `batch` dim unless
 * dynamicBatch is false), output `logits`, initializers under the state-dict names. The graph computes the model's
 * eval-mode forward whatever mode the model is in. The equivalent of
 * `torch.onnx.export(model.eval(), x, f, opset_version=17, input_names=['input'], output_names=['logits'])`.
 */
export function exportOnnx(model: Module, opts: ExportOnnxOptions): Uint8Array {
  if (opts === null || typeof opts !== 'object') throw new OnnxError('InvalidOptions', 'exportOnnx needs options with inputShape, e.g. { inputShape: [1, 3, 224, 224] }');
  const { inputShape, dynamicBatch = true, opset = 17, foldBatchNorm = false } = opts;
  if (!Array.isArray(inputShape) || inputShape.length !== 4 || !inputShape.every((d) => Number.isSafeInteger(d) && d >= 1)) {
    throw new OnnxError('InvalidOptions', `inputShape must be 4 positive integers (N, C, H, W), got ${Array.isArray(inputShape) ? fmt(inputShape) : String(inputShape)}`);
  }
  if (!Number.isInteger(opset) || opset < ONNX_EXPORT_OPSETS[0] || opset > ONNX_EXPORT_OPSETS[1]) {
    throw new OnnxError('InvalidOptions', `opset must be an integer from ${ONNX_EXPORT_OPSETS[0]} to ${ONNX_EXPORT_OPSETS[1]}, got ${String(opset)}`);
  }
  const inChannels = (model as { inChannels?: unknown }).inChannels;
  if (typeof inChannels === 'number' && inChannels !== inputShape[1]) {
    throw new OnnxError('InvalidOptions', `inputShape ${fmt(inputShape)} has ${inputShape[1]} channels but ${model.typeName} takes ${inChannels}`);
  }
  const g = new GraphBuilder(opset, foldBatchNorm);
  const [y] = emit(g, model, 'input', '', inputShape[1]!);
  // the output gets its public name: the last node's output is renamed
  const last = g.nodes[g.nodes.length - 1];
  if (!last || last.outputs[0] !== y) throw new OnnxError('UnsupportedModule', `${model.typeName}: the exported graph has no node that makes the output`);
  g.nodes[g.nodes.length - 1] = { ...last, outputs: ['logits'] };
  const batch: number | string = dynamicBatch ? 'batch' : inputShape[0]!;
  const fc = lastLinear(model);
  return writeModelProto({
    irVersion: IR_FOR_OPSET[opset]!,
    opset,
    producerVersion: '0.1.0',
    graphName: model.typeName,
    nodes: g.nodes,
    initializers: g.initializers,
    inputs: [{ name: 'input', dims: [batch, ...inputShape.slice(1)] }],
    outputs: [{ name: 'logits', dims: fc ? [batch, fc.outFeatures] : null }],
  });
}
