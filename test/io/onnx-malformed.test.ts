/**
 * loadOnnx on malformed and unsupported files: each case is one defect in an otherwise valid model, and must give
 * OnnxError of the stated kind (message `[onnx] Kind: ...`, naming what is wrong), before anything is run.
 */
import { describe, expect, it } from 'vitest';
import { ResnetTsError } from '../../src/errors.js';
import { loadOnnx, ONNX_LIMITS, OnnxError, type OnnxErrorKind } from '../../src/io/onnx.js';
import { ProtoWriter } from '../../src/io/protobuf.js';
import { Tensor } from '../../src/tensor.js';
import { onnxErrorOf } from '../helpers/onnx.js';

type Fill = (w: ProtoWriter) => void;

interface TensorSpec {
  name?: string;
  dims?: number[];
  dt?: number;
  raw?: Uint8Array;
  floats?: number[];
  ints64?: number[];
  external?: boolean;
  both?: boolean;
}

const f32 = (...v: number[]): Uint8Array => new Uint8Array(new Float32Array(v).buffer);

function tensor(w: ProtoWriter, t: TensorSpec): void {
  for (const d of t.dims ?? []) w.varint(1, d);
  w.varint(2, t.dt ?? 1);
  if (t.name !== undefined) w.string(8, t.name);
  if (t.raw) w.bytes(9, t.raw);
  if (t.floats) w.packedFloats(4, t.floats);
  if (t.ints64) w.packedVarints(7, t.ints64);
  if (t.external) w.varint(14, 1);
}

function valueInfo(w: ProtoWriter, name: string, dims: (number | string)[] | null, elemType = 1): void {
  w.string(1, name);
  w.message(2, (t) => t.message(1, (tt) => {
    tt.varint(1, elemType);
    if (dims) tt.message(2, (s) => dims.forEach((d) => s.message(1, (dm) => (typeof d === 'number' ? dm.varint(1, d) : dm.string(2, d)))));
  }));
}

interface NodeSpec {
  op: string;
  name?: string;
  inputs: string[];
  outputs: string[];
  attrs?: Fill[];
  domain?: string;
}

function node(w: ProtoWriter, n: NodeSpec): void {
  n.inputs.forEach((i) => w.string(1, i));
  n.outputs.forEach((o) => w.string(2, o));
  w.string(3, n.name ?? n.op.toLowerCase());
  w.string(4, n.op);
  for (const a of n.attrs ?? []) w.message(5, a);
  if (n.domain) w.string(7, n.domain);
}

const ints = (name: string, v: number[]): Fill => (a) => { a.string(1, name); v.forEach((x) => a.varint(8, x)); a.varint(20, 7); };
const int = (name: string, v: number): Fill => (a) => { a.string(1, name); a.varint(3, v); a.varint(20, 2); };
const str = (name: string, v: string): Fill => (a) => { a.string(1, name); a.string(4, v); a.varint(20, 3); };

interface GraphSpec {
  nodes?: NodeSpec[];
  inits?: TensorSpec[];
  inputs?: [string, (number | string)[] | null][];
  outputs?: string[];
}

/** The valid base: input [batch, 4] → Gemm(w [3, 4], b [3], transB) → Relu → logits. */
const BASE: Required<GraphSpec> = {
  nodes: [
    { op: 'Gemm', inputs: ['input', 'fc.weight', 'fc.bias'], outputs: ['h'], attrs: [int('transB', 1)] },
    { op: 'Relu', inputs: ['h'], outputs: ['logits'] },
  ],
  inits: [
    { name: 'fc.weight', dims: [3, 4], raw: f32(1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0) },
    { name: 'fc.bias', dims: [3], raw: f32(0.5, -0.5, 0) },
  ],
  inputs: [['input', ['batch', 4]]],
  outputs: ['logits'],
};

function graph(w: ProtoWriter, g: GraphSpec): void {
  const s = { ...BASE, ...g };
  for (const n of s.nodes) w.message(1, (nw) => node(nw, n));
  w.string(2, 'g');
  for (const t of s.inits) w.message(5, (tw) => tensor(tw, t));
  for (const [name, dims] of s.inputs) w.message(11, (v) => valueInfo(v, name, dims));
  for (const o of s.outputs) w.message(12, (v) => valueInfo(v, o, null));
}

interface ModelSpec {
  ir?: number;
  opsets?: [string, number][];
  graph?: GraphSpec | null;
  twoGraphs?: boolean;
}

function model(m: ModelSpec = {}): Uint8Array {
  const w = new ProtoWriter();
  w.varint(1, m.ir ?? 8);
  w.string(2, 'test');
  if (m.graph !== null) w.message(7, (g) => graph(g, m.graph ?? {}));
  if (m.twoGraphs) w.message(7, (g) => graph(g, {}));
  for (const [d, v] of m.opsets ?? [['', 17]]) w.message(8, (o) => { o.string(1, d); o.varint(2, v); });
  return w.finish();
}

const withNodes = (...nodes: NodeSpec[]): Uint8Array => model({ graph: { nodes } });
const withInit = (t: TensorSpec): Uint8Array => model({ graph: { inits: [BASE.inits[1]!, { name: 'fc.weight', ...t }] } });

interface Bad {
  name: string;
  bytes: () => Uint8Array;
  kind: OnnxErrorKind;
  text?: string;
}

const BAD: Bad[] = [
  { name: 'empty file', bytes: () => new Uint8Array(0), kind: 'InvalidModel', text: 'empty' },
  { name: 'a JPEG header (not protobuf)', bytes: () => new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 0, 16]), kind: 'InvalidWireType' },
  { name: 'cut in the middle', bytes: () => model().subarray(0, 40), kind: 'Truncated' },
  { name: 'cut one byte short', bytes: () => { const b = model(); return b.subarray(0, b.length - 1); }, kind: 'Truncated' },
  { name: 'varint of 11 bytes', bytes: () => new Uint8Array([0x08, ...new Array(10).fill(0xff), 0x01]), kind: 'InvalidVarint' },
  { name: '10-byte varint with bits past the 64th', bytes: () => new Uint8Array([0x08, ...new Array(9).fill(0xff), 0x02]), kind: 'InvalidVarint' },
  { name: 'wire type 3 (group)', bytes: () => new Uint8Array([0x0b, 0x0c]), kind: 'InvalidWireType' },
  { name: 'field number 0', bytes: () => new Uint8Array([0x00, 0x01]), kind: 'InvalidWireType' },
  { name: 'a length prefix past the end', bytes: () => new Uint8Array([0x3a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]), kind: 'Truncated', text: 'runs past the end' },
  { name: 'graph sent as a varint', bytes: () => new Uint8Array([0x38, 0x01]), kind: 'InvalidWireType', text: 'graph' },
  { name: 'no graph', bytes: () => model({ graph: null }), kind: 'InvalidModel', text: 'no graph' },
  { name: 'two graphs', bytes: () => model({ twoGraphs: true }), kind: 'InvalidModel', text: 'twice' },
  { name: 'ir_version 2', bytes: () => model({ ir: 2 }), kind: 'InvalidModel', text: 'ir_version 2' },
  { name: 'no opset for the default domain', bytes: () => model({ opsets: [['ai.onnx.ml', 3]] }), kind: 'InvalidModel', text: 'opset_import' },
  { name: 'the default domain twice', bytes: () => model({ opsets: [['', 17], ['ai.onnx', 13]] }), kind: 'InvalidModel', text: 'twice' },
  { name: 'opset 8 (before the supported range)', bytes: () => model({ opsets: [['', 8]] }), kind: 'InvalidModel', text: 'opset 8' },
  { name: 'opset 22 (after it)', bytes: () => model({ opsets: [['', 22]] }), kind: 'InvalidModel', text: 'opset 22' },
  { name: 'node name not UTF-8', bytes: () => { const w = new ProtoWriter(); w.varint(1, 8); w.message(7, (g) => g.message(1, (n) => n.bytes(3, new Uint8Array([0xc3, 0x28])))); return w.finish(); }, kind: 'InvalidUtf8', text: 'graph.node[0]' },
  { name: 'raw_data shorter than the dims need', bytes: () => withInit({ dims: [3, 4], raw: f32(1, 2, 3) }), kind: 'InvalidTensor', text: 'raw_data has 12 bytes' },
  { name: 'raw_data longer than the dims need', bytes: () => withInit({ dims: [1, 1], raw: f32(1, 2) }), kind: 'InvalidTensor' },
  { name: 'negative dim', bytes: () => withInit({ dims: [-3, 4], raw: f32(1) }), kind: 'InvalidTensor', text: 'negative' },
  { name: 'dims of 2^40 × 2^40 elements (no allocation)', bytes: () => withInit({ dims: [2 ** 40, 2 ** 40], raw: f32(1) }), kind: 'InvalidTensor', text: 'limit' },
  { name: 'dims of 2^31 × 4 elements with 4 bytes of data (no allocation)', bytes: () => withInit({ dims: [2 ** 31, 2], raw: f32(1) }), kind: 'InvalidTensor' },
  { name: 'float_data with the wrong count', bytes: () => withInit({ dims: [3, 4], floats: [1, 2] }), kind: 'InvalidTensor', text: '2 values' },
  { name: 'raw_data and float_data both', bytes: () => withInit({ dims: [1], raw: f32(1), floats: [1] }), kind: 'InvalidTensor', text: 'both' },
  { name: 'no data for a non-empty tensor', bytes: () => withInit({ dims: [3, 4] }), kind: 'InvalidTensor', text: 'no data' },
  { name: 'INT64 data in the float field', bytes: () => withInit({ dims: [1], dt: 7, floats: [1] }), kind: 'InvalidTensor', text: 'wrong field' },
  { name: 'data stored externally', bytes: () => withInit({ dims: [3, 4], external: true }), kind: 'ExternalData', text: 'external' },
  { name: 'a STRING tensor', bytes: () => withInit({ dims: [1], dt: 8, raw: new Uint8Array(1) }), kind: 'UnsupportedDtype', text: 'STRING' },
  { name: 'a COMPLEX64 tensor', bytes: () => withInit({ dims: [1], dt: 14, raw: new Uint8Array(8) }), kind: 'UnsupportedDtype', text: 'COMPLEX64' },
  { name: 'an unknown data type 99', bytes: () => withInit({ dims: [1], dt: 99, raw: new Uint8Array(4) }), kind: 'UnsupportedDtype', text: 'data type 99' },
  { name: `an INT64 tensor over ${ONNX_LIMITS.maxIntElements} elements`, bytes: () => withInit({ dims: [ONNX_LIMITS.maxIntElements + 1], dt: 7, raw: new Uint8Array(8) }), kind: 'LimitExceeded' },
  { name: `rank ${ONNX_LIMITS.maxRank + 1}`, bytes: () => withInit({ dims: new Array(ONNX_LIMITS.maxRank + 1).fill(1), raw: f32(1) }), kind: 'LimitExceeded', text: 'dims' },
  { name: `an ints attribute of ${ONNX_LIMITS.maxAttributeElements + 1} elements`, bytes: () => withNodes({ op: 'Relu', inputs: ['input'], outputs: ['logits'], attrs: [ints('x', new Array(ONNX_LIMITS.maxAttributeElements + 1).fill(1))] }), kind: 'LimitExceeded' },
  { name: `${ONNX_LIMITS.maxNodes + 1} nodes`, bytes: () => withNodes(...Array.from({ length: ONNX_LIMITS.maxNodes + 1 }, (_, i) => ({ op: 'Relu', inputs: [i ? `v${i - 1}` : 'input'], outputs: [`v${i}`] }))), kind: 'LimitExceeded', text: 'nodes' },
  { name: 'unsupported ops, all listed', bytes: () => withNodes({ op: 'Erf', name: 'e1', inputs: ['input'], outputs: ['a'] }, { op: 'Custom', name: 'c1', domain: 'com.example', inputs: ['a'], outputs: ['logits'] }), kind: 'UnsupportedOp', text: 'Erf (1 node: "e1"); com.example.Custom (1 node: "c1")' },
  { name: 'a value read before it is made', bytes: () => withNodes({ op: 'Relu', inputs: ['later'], outputs: ['logits'] }, { op: 'Relu', inputs: ['input'], outputs: ['later'] }), kind: 'InvalidGraph', text: '"later" before' },
  { name: 'a value made twice', bytes: () => withNodes({ op: 'Relu', inputs: ['input'], outputs: ['a'] }, { op: 'Relu', inputs: ['a'], outputs: ['a'] }, { op: 'Relu', inputs: ['a'], outputs: ['logits'] }), kind: 'InvalidGraph', text: 'already defined' },
  { name: 'a node writing over the input', bytes: () => withNodes({ op: 'Relu', inputs: ['input'], outputs: ['input'] }), kind: 'InvalidGraph' },
  { name: 'an output no node makes', bytes: () => model({ graph: { outputs: ['nothing'] } }), kind: 'InvalidGraph', text: '"nothing"' },
  { name: 'no outputs', bytes: () => model({ graph: { outputs: [] } }), kind: 'InvalidGraph', text: 'no outputs' },
  { name: 'no image input', bytes: () => model({ graph: { inputs: [] } }), kind: 'InvalidGraph', text: 'exactly one input' },
  { name: 'two image inputs', bytes: () => model({ graph: { inputs: [['input', [1, 4]], ['other', [1, 4]]] } }), kind: 'InvalidGraph', text: '"other"' },
  { name: 'an initializer twice', bytes: () => model({ graph: { inits: [...BASE.inits, BASE.inits[1]!] } }), kind: 'InvalidGraph', text: 'twice' },
  { name: 'a node with no output', bytes: () => withNodes({ op: 'Relu', inputs: ['input'], outputs: [] }), kind: 'InvalidGraph', text: 'no output' },
  { name: 'Relu with two inputs', bytes: () => withNodes({ op: 'Relu', inputs: ['input', 'input'], outputs: ['logits'] }), kind: 'InvalidGraph', text: '2 inputs' },
  { name: 'an unknown attribute', bytes: () => withNodes({ op: 'Relu', inputs: ['input'], outputs: ['logits'], attrs: [int('alpha', 1)] }), kind: 'InvalidAttribute', text: '"alpha"' },
  { name: 'an attribute twice', bytes: () => withNodes({ op: 'Flatten', inputs: ['input'], outputs: ['logits'], attrs: [int('axis', 1), int('axis', 1)] }), kind: 'InvalidAttribute', text: 'twice' },
  { name: 'kernel_shape as an INT', bytes: () => withNodes({ op: 'MaxPool', inputs: ['input'], outputs: ['logits'], attrs: [int('kernel_shape', 3)] }), kind: 'InvalidAttribute', text: 'is INT, expected INTS' },
  { name: 'MaxPool without kernel_shape', bytes: () => withNodes({ op: 'MaxPool', inputs: ['input'], outputs: ['logits'] }), kind: 'InvalidAttribute', text: 'kernel_shape' },
  { name: 'MaxPool with a second (Indices) output', bytes: () => withNodes({ op: 'MaxPool', inputs: ['input'], outputs: ['logits', 'idx'], attrs: [ints('kernel_shape', [2, 2])] }), kind: 'InvalidAttribute', text: '2 outputs' },
  { name: 'Conv with 3 pads', bytes: () => withNodes({ op: 'Conv', inputs: ['input', 'fc.weight'], outputs: ['logits'], attrs: [ints('pads', [1, 1, 1])] }), kind: 'InvalidAttribute', text: 'pads' },
  { name: 'Conv with auto_pad and pads', bytes: () => withNodes({ op: 'Conv', inputs: ['input', 'fc.weight'], outputs: ['logits'], attrs: [str('auto_pad', 'SAME_UPPER'), ints('pads', [1, 1, 1, 1])] }), kind: 'InvalidAttribute', text: 'both' },
  { name: 'Conv with group 0', bytes: () => withNodes({ op: 'Conv', inputs: ['input', 'fc.weight'], outputs: ['logits'], attrs: [int('group', 0)] }), kind: 'InvalidAttribute', text: 'group' },
  { name: 'Pad in reflect mode', bytes: () => withNodes({ op: 'Pad', inputs: ['input', 'input'], outputs: ['logits'], attrs: [str('mode', 'reflect')] }), kind: 'InvalidAttribute', text: 'reflect' },
  { name: 'BatchNormalization in training mode', bytes: () => withNodes({ op: 'BatchNormalization', inputs: ['input', 'a', 'b', 'c', 'd'].map((v, i) => (i ? 'fc.bias' : v)), outputs: ['logits'], attrs: [int('training_mode', 1)] }), kind: 'InvalidAttribute', text: 'training_mode' },
  { name: 'Cast to STRING', bytes: () => withNodes({ op: 'Cast', inputs: ['input'], outputs: ['logits'], attrs: [int('to', 8)] }), kind: 'InvalidAttribute', text: 'STRING' },
  { name: 'Constant with two values', bytes: () => withNodes({ op: 'Constant', inputs: [], outputs: ['c'], attrs: [int('value_int', 1), ints('value_ints', [1])] }, { op: 'Relu', inputs: ['input'], outputs: ['logits'] }), kind: 'InvalidAttribute', text: 'exactly one' },
];

const errorOf = onnxErrorOf;

describe('loadOnnx: malformed and unsupported files', () => {
  it('the valid base model loads and runs: relu(x·Wᵀ + b)', () => {
    const m = loadOnnx(model());
    const y = m.forward(new Tensor(new Float32Array([1, 2, 3, 4, -1, -2, -3, -4]), [2, 4]));
    expect(Array.from(y.data)).toEqual([1.5, 1.5, 3, 0, 0, 0]);
    expect(m.stateDict()['fc.bias']!.shape).toEqual([3]);
  });
  for (const bad of BAD) {
    it(`${bad.name} → ${bad.kind}`, () => {
      const e = errorOf(() => loadOnnx(bad.bytes()));
      expect(e).toBeInstanceOf(ResnetTsError);
      expect(e.op).toBe('onnx');
      expect(e.kind, e.message).toBe(bad.kind);
      expect(e.message.startsWith(`[onnx] ${bad.kind}: `)).toBe(true);
      if (bad.text !== undefined) expect(e.message).toContain(bad.text);
    });
  }
  it('not bytes at all → InvalidModel', () => {
    expect(errorOf(() => loadOnnx('model.onnx' as unknown as Uint8Array)).kind).toBe('InvalidModel');
  });
});

describe('forward errors name the node (NodeFailed) or the input (InvalidInput)', () => {
  it('an input of the wrong width: InvalidInput with both shapes', () => {
    const e = errorOf(() => loadOnnx(model()).forward(new Tensor(new Float32Array(5), [1, 5])));
    expect(e.kind).toBe('InvalidInput');
    expect(e.message).toContain('[batch, 4]');
  });
  it('weights that do not fit the data: NodeFailed naming the node and the shapes', () => {
    const m = loadOnnx(model({ graph: { inputs: [['input', null]] } }));
    const e = errorOf(() => m.forward(new Tensor(new Float32Array(5), [1, 5])));
    expect(e.kind).toBe('NodeFailed');
    expect(e.message).toContain('node "gemm" (Gemm)');
    expect(e.message).toContain('[1, 5]');
  });
});
