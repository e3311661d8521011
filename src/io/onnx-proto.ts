/**
 * The part of the ONNX schema (onnx/onnx.proto3) that a CNN graph uses, read from and written to protobuf bytes with
 * our own wire codec (protobuf.ts): ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto, ValueInfoProto.
 * Pure: no node imports.
 *
 * Reading checks every count and size against ONNX_LIMITS as it goes, and every tensor's element count against the
 * bytes that hold it, before any tensor data is allocated. Failures are OnnxError with a kind and the path of the
 * field in the model (`graph.node[12].attribute[0]`).
 */

import { ResnetTsError } from '../errors.js';
import { fmt, MAX_NUMEL } from '../shape.js';
import { ProtobufError, ProtoReader, ProtoWriter, WIRE_I32, WIRE_I64, WIRE_LEN, WIRE_VARINT } from './protobuf.js';

export type OnnxErrorKind =
  /** The protobuf bytes end inside a field (a cut file, or a length that runs past the end). */
  | 'Truncated'
  /** A varint longer than 10 bytes. */
  | 'InvalidVarint'
  /** A field with a wire type that does not exist or does not fit the schema (a string sent as a varint, ...). */
  | 'InvalidWireType'
  /** A string field (name, op type, attribute string) that is not UTF-8. */
  | 'InvalidUtf8'
  /** The file is larger than ONNX_LIMITS.maxBytes, or a count (nodes, initializers, dims, ...) is over its limit. */
  | 'LimitExceeded'
  /** No graph, no opset for the default domain, an IR version below 3, an unsupported opset version. */
  | 'InvalidModel'
  /** A tensor whose dims are negative or whose data does not hold exactly numel elements. */
  | 'InvalidTensor'
  /** A tensor data type that cannot be read (strings, complex, float8, ...). */
  | 'UnsupportedDtype'
  /** A tensor stored outside the file (data_location EXTERNAL); only self-contained files are read. */
  | 'ExternalData'
  /** A value used before it is made or never made, a value made twice, a graph without one image input. */
  | 'InvalidGraph'
  /** Ops (or domains) the importer does not run: the message lists every one, with the node names. */
  | 'UnsupportedOp'
  /** A missing required attribute, an attribute of the wrong type, or a value the importer does not support. */
  | 'InvalidAttribute'
  /** A forward input that does not match the graph's declared input. */
  | 'InvalidInput'
  /** An op failed while running the graph (shapes that do not fit); the message names the node. */
  | 'NodeFailed'
  /** Export: a module the exporter does not know how to write. */
  | 'UnsupportedModule'
  /** Export: a bad option (input shape, opset). */
  | 'InvalidOptions';

/** A malformed or unsupported ONNX model, or a model that cannot be exported. Message: `[onnx] Kind: detail`. */
export class OnnxError extends ResnetTsError {
  readonly kind: OnnxErrorKind;
  /** The message without the `[onnx] Kind: ` prefix. */
  readonly detail: string;
  constructor(kind: OnnxErrorKind, detail: string) {
    super('onnx', `${kind}: ${detail}`);
    this.kind = kind;
    this.detail = detail;
  }
}

/** Size and count limits of the reader, checked before anything of that size is allocated. */
export const ONNX_LIMITS = Object.freeze({
  /** Protobuf messages are limited to 2 GiB. */
  maxBytes: 2 ** 31 - 1,
  maxNodes: 100_000,
  maxInitializers: 100_000,
  /** Graph inputs, outputs and value_info entries, each. */
  maxValueInfos: 100_000,
  /** Inputs or outputs of one node. */
  maxNodeIO: 4096,
  maxAttributes: 256,
  /** Dims of one tensor or shape. */
  maxRank: 16,
  /** Elements of one ints/floats/strings attribute. */
  maxAttributeElements: 65_536,
  /** Elements of one integer tensor (shapes, pads, indices). */
  maxIntElements: 1 << 20,
  /** Opset imports, metadata entries. */
  maxSmallLists: 1024,
});

/** ONNX TensorProto.DataType values. */
export const DT = { FLOAT: 1, UINT8: 2, INT8: 3, UINT16: 4, INT16: 5, INT32: 6, INT64: 7, STRING: 8, BOOL: 9, FLOAT16: 10, DOUBLE: 11, UINT32: 12, UINT64: 13, BFLOAT16: 16 } as const;
const DT_NAME: Record<number, string> = {
  0: 'UNDEFINED', 1: 'FLOAT', 2: 'UINT8', 3: 'INT8', 4: 'UINT16', 5: 'INT16', 6: 'INT32', 7: 'INT64', 8: 'STRING', 9: 'BOOL',
  10: 'FLOAT16', 11: 'DOUBLE', 12: 'UINT32', 13: 'UINT64', 14: 'COMPLEX64', 15: 'COMPLEX128', 16: 'BFLOAT16',
  17: 'FLOAT8E4M3FN', 18: 'FLOAT8E4M3FNUZ', 19: 'FLOAT8E5M2', 20: 'FLOAT8E5M2FNUZ', 21: 'UINT4', 22: 'INT4', 23: 'FLOAT4E2M1',
};
export const dtypeName = (t: number): string => DT_NAME[t] ?? `data type ${t}`;
/** Bytes per element in raw_data, for the types we read. */
const DT_SIZE: Record<number, number> = { 1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 16: 2 };
const FLOAT_TYPES = new Set<number>([DT.FLOAT, DT.FLOAT16, DT.DOUBLE, DT.BFLOAT16]);

/** AttributeProto.AttributeType values. */
export const AT = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, FLOATS: 6, INTS: 7, STRINGS: 8, TENSORS: 9, GRAPHS: 10, SPARSE_TENSOR: 11, SPARSE_TENSORS: 12, TYPE_PROTO: 13, TYPE_PROTOS: 14 } as const;

/** A decoded tensor: float types as Float32Array, integer and bool types as exact integers (numbers, |v| ≤ 2^53). */
export type TensorData = { kind: 'float'; data: Float32Array } | { kind: 'int'; data: number[] };

export interface OnnxTensor {
  name: string;
  dims: number[];
  dataType: number;
  value: TensorData;
}

export interface OnnxAttribute {
  name: string;
  type: number;
  f?: number;
  i?: number;
  s?: string;
  t?: OnnxTensor;
  floats?: number[];
  ints?: number[];
  strings?: string[];
}

export interface OnnxNode {
  name: string;
  opType: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attributes: Map<string, OnnxAttribute>;
}

/** A graph input or output: its name, element type (0 if absent) and dims (a number, a symbolic name, or null). */
export interface OnnxValueInfo {
  name: string;
  elemType: number;
  dims: (number | string | null)[] | null;
}

export interface OnnxGraph {
  name: string;
  nodes: OnnxNode[];
  initializers: OnnxTensor[];
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
}

export interface OnnxModelProto {
  irVersion: number;
  producerName: string;
  producerVersion: string;
  /** domain ('' = ai.onnx) → version. */
  opsets: Map<string, number>;
  graph: OnnxGraph;
  metadata: Map<string, string>;
}

// ---------------------------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------------------------

/** Runs fn, turning protobuf wire errors into OnnxError with the field path in front. */
function at<T>(path: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof ProtobufError) throw new OnnxError(e.kind, `${path}: ${e.detail}`);
    throw e;
  }
}

function limit(n: number, max: number, what: string, path: string): void {
  if (n > max) throw new OnnxError('LimitExceeded', `${path}: more than ${max} ${what}`);
}

const q = (s: string): string => JSON.stringify(s);

/** Reads a string field, checking the wire type. */
function str(r: ProtoReader, wire: number, what: string): string {
  r.expectWire(wire, WIRE_LEN, what);
  return r.string();
}

function int(r: ProtoReader, wire: number, what: string): number {
  r.expectWire(wire, WIRE_VARINT, what);
  return r.int64();
}

function sub(r: ProtoReader, wire: number, what: string): ProtoReader {
  r.expectWire(wire, WIRE_LEN, what);
  return r.message();
}

/** Reads a whole ONNX ModelProto. */
export function readModelProto(bytes: Uint8Array): OnnxModelProto {
  if (bytes.length > ONNX_LIMITS.maxBytes) {
    throw new OnnxError('LimitExceeded', `the file has ${bytes.length} bytes, more than the limit of ${ONNX_LIMITS.maxBytes} (protobuf's 2 GiB)`);
  }
  if (bytes.length === 0) throw new OnnxError('InvalidModel', 'the file is empty');
  return at('model', () => {
    const r = new ProtoReader(bytes);
    let irVersion = 0;
    let producerName = '';
    let producerVersion = '';
    const opsets = new Map<string, number>();
    const metadata = new Map<string, string>();
    let graph: OnnxGraph | null = null;
    while (!r.done()) {
      const [f, w] = r.tag();
      switch (f) {
        case 1: irVersion = int(r, w, 'ir_version'); break;
        case 2: producerName = str(r, w, 'producer_name'); break;
        case 3: producerVersion = str(r, w, 'producer_version'); break;
        case 7:
          if (graph) throw new OnnxError('InvalidModel', 'model: the graph field appears twice');
          graph = at('graph', () => readGraph(sub(r, w, 'graph'), 'graph'));
          break;
        case 8: {
          limit(opsets.size + 1, ONNX_LIMITS.maxSmallLists, 'opset imports', 'model.opset_import');
          const m = sub(r, w, 'opset_import');
          let domain = '';
          let version = 0;
          while (!m.done()) {
            const [f2, w2] = m.tag();
            if (f2 === 1) domain = str(m, w2, 'opset_import.domain');
            else if (f2 === 2) version = int(m, w2, 'opset_import.version');
            else m.skip(w2);
          }
          if (domain === 'ai.onnx') domain = '';
          if (opsets.has(domain)) throw new OnnxError('InvalidModel', `model: opset_import has the domain ${q(domain || 'ai.onnx')} twice`);
          opsets.set(domain, version);
          break;
        }
        case 14: {
          limit(metadata.size + 1, ONNX_LIMITS.maxSmallLists, 'metadata_props entries', 'model.metadata_props');
          const m = sub(r, w, 'metadata_props');
          let k = '';
          let v = '';
          while (!m.done()) {
            const [f2, w2] = m.tag();
            if (f2 === 1) k = str(m, w2, 'metadata_props.key');
            else if (f2 === 2) v = str(m, w2, 'metadata_props.value');
            else m.skip(w2);
          }
          metadata.set(k, v);
          break;
        }
        default:
          r.skip(w);
      }
    }
    if (!graph) throw new OnnxError('InvalidModel', 'model: there is no graph (is this an ONNX model file?)');
    if (irVersion < 3) throw new OnnxError('InvalidModel', `model: ir_version ${irVersion} is not supported (3 or later; files without opset_import are older)`);
    if (!opsets.has('')) throw new OnnxError('InvalidModel', 'model: no opset_import for the default domain (ai.onnx)');
    return { irVersion, producerName, producerVersion, opsets, graph, metadata };
  });
}

function readGraph(r: ProtoReader, path: string): OnnxGraph {
  const g: OnnxGraph = { name: '', nodes: [], initializers: [], inputs: [], outputs: [] };
  while (!r.done()) {
    const [f, w] = r.tag();
    switch (f) {
      case 1: {
        const p = `${path}.node[${g.nodes.length}]`;
        limit(g.nodes.length + 1, ONNX_LIMITS.maxNodes, 'nodes', path);
        g.nodes.push(at(p, () => readNode(sub(r, w, 'node'), p)));
        break;
      }
      case 2: g.name = str(r, w, 'graph.name'); break;
      case 5: {
        const p = `${path}.initializer[${g.initializers.length}]`;
        limit(g.initializers.length + 1, ONNX_LIMITS.maxInitializers, 'initializers', path);
        g.initializers.push(at(p, () => readTensor(sub(r, w, 'initializer'), p)));
        break;
      }
      case 11:
      case 12: {
        const list = f === 11 ? g.inputs : g.outputs;
        const p = `${path}.${f === 11 ? 'input' : 'output'}[${list.length}]`;
        limit(list.length + 1, ONNX_LIMITS.maxValueInfos, f === 11 ? 'graph inputs' : 'graph outputs', path);
        list.push(at(p, () => readValueInfo(sub(r, w, 'value_info'), p)));
        break;
      }
      case 15:
        throw new OnnxError('UnsupportedDtype', `${path}: sparse initializers are not supported`);
      default:
        r.skip(w); // doc_string, value_info (shapes are inferred while running), quantization annotations
    }
  }
  return g;
}

function readNode(r: ProtoReader, path: string): OnnxNode {
  const n: OnnxNode = { name: '', opType: '', domain: '', inputs: [], outputs: [], attributes: new Map() };
  while (!r.done()) {
    const [f, w] = r.tag();
    switch (f) {
      case 1: limit(n.inputs.length + 1, ONNX_LIMITS.maxNodeIO, 'inputs', path); n.inputs.push(str(r, w, 'node.input')); break;
      case 2: limit(n.outputs.length + 1, ONNX_LIMITS.maxNodeIO, 'outputs', path); n.outputs.push(str(r, w, 'node.output')); break;
      case 3: n.name = str(r, w, 'node.name'); break;
      case 4: n.opType = str(r, w, 'node.op_type'); break;
      case 5: {
        const p = `${path}.attribute[${n.attributes.size}]`;
        limit(n.attributes.size + 1, ONNX_LIMITS.maxAttributes, 'attributes', path);
        const a = at(p, () => readAttribute(sub(r, w, 'attribute'), p));
        if (n.attributes.has(a.name)) throw new OnnxError('InvalidAttribute', `${p}: the attribute ${q(a.name)} appears twice`);
        n.attributes.set(a.name, a);
        break;
      }
      case 7: n.domain = str(r, w, 'node.domain'); break;
      default:
        r.skip(w);
    }
  }
  if (n.domain === 'ai.onnx') n.domain = '';
  return n;
}

function readAttribute(r: ProtoReader, path: string): OnnxAttribute {
  const a: OnnxAttribute = { name: '', type: 0 };
  const max = ONNX_LIMITS.maxAttributeElements;
  const over = (n: number): never => {
    throw new OnnxError('LimitExceeded', `${path}: more than ${max} elements (${n})`);
  };
  let kinds = 0; // which value fields were seen, for attributes without a type (IR < 0.0.2 files)
  while (!r.done()) {
    const [f, w] = r.tag();
    switch (f) {
      case 1: a.name = str(r, w, 'attribute.name'); break;
      case 20: a.type = int(r, w, 'attribute.type'); break;
      case 2: r.expectWire(w, WIRE_I32, 'attribute.f'); a.f = r.float(); kinds |= 1 << AT.FLOAT; break;
      case 3: a.i = int(r, w, 'attribute.i'); kinds |= 1 << AT.INT; break;
      case 4: a.s = str(r, w, 'attribute.s'); kinds |= 1 << AT.STRING; break;
      case 5: a.t = readTensor(sub(r, w, 'attribute.t'), `${path}.t`); kinds |= 1 << AT.TENSOR; break;
      case 7: {
        a.floats ??= [];
        if (w === WIRE_I32) {
          if (a.floats.length + 1 > max) over(a.floats.length + 1);
          a.floats.push(r.float());
        } else {
          const b = (r.expectWire(w, WIRE_LEN, 'attribute.floats'), r.bytes());
          if (b.length % 4) throw new OnnxError('InvalidAttribute', `${path}: packed floats of ${b.length} bytes (not a multiple of 4)`);
          if (a.floats.length + b.length / 4 > max) over(a.floats.length + b.length / 4);
          const dv = new DataView(b.buffer, b.byteOffset, b.length);
          for (let i = 0; i < b.length; i += 4) a.floats.push(dv.getFloat32(i, true));
        }
        kinds |= 1 << AT.FLOATS;
        break;
      }
      case 8:
        a.ints ??= [];
        r.varints(w, a.ints, true, max, over);
        kinds |= 1 << AT.INTS;
        break;
      case 9:
        a.strings ??= [];
        if (a.strings.length + 1 > max) over(a.strings.length + 1);
        a.strings.push(str(r, w, 'attribute.strings'));
        kinds |= 1 << AT.STRINGS;
        break;
      default:
        r.skip(w); // g, graphs, tensors, sparse tensors, type protos: no supported op uses them
    }
  }
  if (a.type === 0) {
    // IR version 1 files have no type: take it from the one value field present
    const t = [AT.FLOAT, AT.INT, AT.STRING, AT.TENSOR, AT.FLOATS, AT.INTS, AT.STRINGS].filter((k) => kinds & (1 << k));
    if (t.length === 1) a.type = t[0]!;
  }
  return a;
}

function readValueInfo(r: ProtoReader, path: string): OnnxValueInfo {
  const v: OnnxValueInfo = { name: '', elemType: 0, dims: null };
  while (!r.done()) {
    const [f, w] = r.tag();
    if (f === 1) v.name = str(r, w, 'value_info.name');
    else if (f === 2) {
      const t = sub(r, w, 'value_info.type');
      while (!t.done()) {
        const [f2, w2] = t.tag();
        if (f2 !== 1) {
          t.skip(w2);
          continue;
        }
        const tt = sub(t, w2, 'type.tensor_type'); // TypeProto.Tensor
        while (!tt.done()) {
          const [f3, w3] = tt.tag();
          if (f3 === 1) v.elemType = int(tt, w3, 'tensor_type.elem_type');
          else if (f3 === 2) {
            v.dims = [];
            const s = sub(tt, w3, 'tensor_type.shape');
            while (!s.done()) {
              const [f4, w4] = s.tag();
              if (f4 !== 1) {
                s.skip(w4);
                continue;
              }
              limit(v.dims.length + 1, ONNX_LIMITS.maxRank, 'dims', path);
              const d = sub(s, w4, 'shape.dim');
              let dim: number | string | null = null;
              while (!d.done()) {
                const [f5, w5] = d.tag();
                if (f5 === 1) dim = int(d, w5, 'dim.dim_value');
                else if (f5 === 2) dim = str(d, w5, 'dim.dim_param');
                else d.skip(w5);
              }
              v.dims.push(dim);
            }
          } else tt.skip(w3);
        }
      }
    } else r.skip(w);
  }
  return v;
}

/**
 * Reads a TensorProto. The data fields are located first (raw_data, float_data, int32_data, int64_data, double_data,
 * uint64_data), their element counts compared with the dims, and only then is anything allocated and decoded.
 */
export function readTensor(r: ProtoReader, path: string): OnnxTensor {
  const dims: number[] = [];
  let dataType = 0;
  let name = '';
  let raw: Uint8Array | null = null;
  let external = false;
  // typed fields: spans of packed data, or single unpacked values, per field number
  const fields = new Map<number, { spans: [number, number][] }>();
  while (!r.done()) {
    const [f, w] = r.tag();
    switch (f) {
      case 1: {
        const over = (n: number): never => {
          throw new OnnxError('LimitExceeded', `${path}: more than ${ONNX_LIMITS.maxRank} dims (${n})`);
        };
        r.varints(w, dims, true, ONNX_LIMITS.maxRank, over);
        break;
      }
      case 2: dataType = int(r, w, 'tensor.data_type'); break;
      case 8: name = str(r, w, 'tensor.name'); break;
      case 9: r.expectWire(w, WIRE_LEN, 'tensor.raw_data'); raw = r.bytes(); break;
      case 14: external = int(r, w, 'tensor.data_location') === 1; break;
      case 13: external = true; r.skip(w); break;
      case 4: case 5: case 7: case 10: case 11: {
        const fixed = f === 4 ? WIRE_I32 : f === 10 ? WIRE_I64 : WIRE_VARINT;
        if (w !== fixed && w !== WIRE_LEN) r.expectWire(w, fixed, `tensor data field ${f}`);
        const e = fields.get(f) ?? { spans: [] };
        const s = r.pos;
        r.skip(w);
        e.spans.push(w === WIRE_LEN ? spanOf(r.buf, s) : [s, r.pos]);
        fields.set(f, e);
        break;
      }
      case 6:
        throw new OnnxError('UnsupportedDtype', `${path}${name ? ` (${q(name)})` : ''}: string tensors are not supported`);
      default:
        r.skip(w);
    }
  }
  const label = `${path}${name ? ` (${q(name)})` : ''}`;
  if (external) throw new OnnxError('ExternalData', `${label}: the tensor's data is stored in an external file; save the model with all tensors inside (onnx.save_model(m, f, save_as_external_data=False))`);
  let numel = 1;
  for (const d of dims) {
    if (!Number.isSafeInteger(d) || d < 0) throw new OnnxError('InvalidTensor', `${label}: dims ${fmt(dims)} has a negative or too-large dim`);
    numel *= d;
  }
  if (numel > MAX_NUMEL) throw new OnnxError('InvalidTensor', `${label}: dims ${fmt(dims)} give ${numel} elements, more than the limit of 2^32 - 1`);
  const size = DT_SIZE[dataType];
  if (size === undefined) throw new OnnxError('UnsupportedDtype', `${label}: ${dtypeName(dataType)} tensors are not supported`);
  const isFloat = FLOAT_TYPES.has(dataType);
  if (!isFloat && numel > ONNX_LIMITS.maxIntElements) {
    throw new OnnxError('LimitExceeded', `${label}: an integer tensor of ${numel} elements, more than the limit of ${ONNX_LIMITS.maxIntElements}`);
  }
  const typed = [...fields.keys()];
  if (raw && typed.length) throw new OnnxError('InvalidTensor', `${label}: has both raw_data and typed data fields`);
  if (typed.length > 1) throw new OnnxError('InvalidTensor', `${label}: has data in ${typed.length} typed fields`);
  const buf = r.buf;
  if (raw) {
    if (raw.length !== numel * size) {
      throw new OnnxError('InvalidTensor', `${label}: raw_data has ${raw.length} bytes, but ${dtypeName(dataType)} dims ${fmt(dims)} need ${numel * size}`);
    }
    return { name, dims, dataType, value: decodeRaw(raw, dataType, numel) };
  }
  const field = typed[0];
  const want: Record<number, number[]> = {
    4: [DT.FLOAT], 5: [DT.INT32, DT.INT16, DT.INT8, DT.UINT16, DT.UINT8, DT.BOOL, DT.FLOAT16, DT.BFLOAT16], 7: [DT.INT64],
    10: [DT.DOUBLE], 11: [DT.UINT32, DT.UINT64],
  };
  if (field === undefined) {
    if (numel !== 0) throw new OnnxError('InvalidTensor', `${label}: no data for dims ${fmt(dims)} (${numel} elements)`);
    return { name, dims, dataType, value: isFloat ? { kind: 'float', data: new Float32Array(0) } : { kind: 'int', data: [] } };
  }
  if (!want[field]!.includes(dataType)) throw new OnnxError('InvalidTensor', `${label}: ${dtypeName(dataType)} data in the wrong field (number ${field})`);
  const e = fields.get(field)!;
  if (field === 4 || field === 10) {
    // fixed-size: count from the bytes before allocating
    const width = field === 4 ? 4 : 8;
    let count = 0;
    const pieces: [number, number][] = [];
    for (const [s, t] of e.spans) {
      // packed spans include their tag-less payload; unpacked values are single fixed-width items
      if ((t - s) % width) throw new OnnxError('InvalidTensor', `${label}: packed data of ${t - s} bytes is not a multiple of ${width}`);
      count += (t - s) / width;
      pieces.push([s, t]);
    }
    if (count !== numel) throw new OnnxError('InvalidTensor', `${label}: ${count} values for dims ${fmt(dims)} (${numel} elements)`);
    const out = new Float32Array(numel);
    let k = 0;
    for (const [s, t] of pieces) {
      const dv = new DataView(buf.buffer, buf.byteOffset + s, t - s);
      for (let i = 0; i < t - s; i += width) out[k++] = width === 4 ? dv.getFloat32(i, true) : dv.getFloat64(i, true);
    }
    return { name, dims, dataType, value: { kind: 'float', data: out } };
  }
  // varint fields: each value takes at least one byte, so the count is bounded by the bytes before decoding
  const vals: number[] = [];
  const over = (n: number): never => {
    throw new OnnxError('InvalidTensor', `${label}: more than ${numel} values for dims ${fmt(dims)} (${n})`);
  };
  for (const [s, t] of e.spans) {
    const sr = new ProtoReader(buf, s, t);
    while (!sr.done()) {
      if (vals.length + 1 > numel) over(vals.length + 1);
      vals.push(field === 11 ? sr.uint64() : sr.int64());
    }
  }
  if (vals.length !== numel) throw new OnnxError('InvalidTensor', `${label}: ${vals.length} values for dims ${fmt(dims)} (${numel} elements)`);
  if (dataType === DT.FLOAT16 || dataType === DT.BFLOAT16) {
    const out = new Float32Array(numel);
    for (let i = 0; i < numel; i++) out[i] = dataType === DT.FLOAT16 ? halfToFloat(vals[i]! & 0xffff) : bf16ToFloat(vals[i]! & 0xffff);
    return { name, dims, dataType, value: { kind: 'float', data: out } };
  }
  if (dataType === DT.BOOL) for (let i = 0; i < numel; i++) vals[i] = vals[i] ? 1 : 0;
  return { name, dims, dataType, value: { kind: 'int', data: vals } };
}

/** The payload span of a length-delimited field whose length prefix starts at `s`. */
function spanOf(buf: Uint8Array, s: number): [number, number] {
  const r = new ProtoReader(buf, s);
  return r.span();
}

const F32_BITS = new Float32Array(1);
const U32_BITS = new Uint32Array(F32_BITS.buffer);

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

function bf16ToFloat(b: number): number {
  U32_BITS[0] = b << 16;
  return F32_BITS[0]!;
}

function decodeRaw(raw: Uint8Array, dataType: number, n: number): TensorData {
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.length);
  if (FLOAT_TYPES.has(dataType)) {
    const out = new Float32Array(n);
    switch (dataType) {
      case DT.FLOAT: for (let i = 0; i < n; i++) out[i] = dv.getFloat32(4 * i, true); break;
      case DT.DOUBLE: for (let i = 0; i < n; i++) out[i] = dv.getFloat64(8 * i, true); break;
      case DT.FLOAT16: for (let i = 0; i < n; i++) out[i] = halfToFloat(dv.getUint16(2 * i, true)); break;
      default: for (let i = 0; i < n; i++) out[i] = bf16ToFloat(dv.getUint16(2 * i, true));
    }
    return { kind: 'float', data: out };
  }
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    switch (dataType) {
      case DT.INT64: out[i] = dv.getInt32(8 * i + 4, true) * 2 ** 32 + dv.getUint32(8 * i, true); break;
      case DT.UINT64: out[i] = dv.getUint32(8 * i + 4, true) * 2 ** 32 + dv.getUint32(8 * i, true); break;
      case DT.INT32: out[i] = dv.getInt32(4 * i, true); break;
      case DT.UINT32: out[i] = dv.getUint32(4 * i, true); break;
      case DT.INT16: out[i] = dv.getInt16(2 * i, true); break;
      case DT.UINT16: out[i] = dv.getUint16(2 * i, true); break;
      case DT.INT8: out[i] = dv.getInt8(i); break;
      case DT.BOOL: out[i] = raw[i] ? 1 : 0; break;
      default: out[i] = raw[i]!; // UINT8
    }
  }
  return { kind: 'int', data: out };
}

// ---------------------------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------------------------

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** A float32 or int64 tensor to write: raw little-endian bytes in raw_data. */
export interface TensorToWrite {
  name: string;
  dims: readonly number[];
  float?: Float32Array;
  int64?: readonly number[];
}

export interface AttributeToWrite {
  name: string;
  i?: number;
  f?: number;
  s?: string;
  ints?: readonly number[];
  t?: TensorToWrite;
}

export interface NodeToWrite {
  opType: string;
  name: string;
  inputs: readonly string[];
  outputs: readonly string[];
  attributes: readonly AttributeToWrite[];
}

export interface ValueToWrite {
  name: string;
  dims: readonly (number | string)[] | null;
}

export interface ModelToWrite {
  irVersion: number;
  opset: number;
  producerVersion: string;
  graphName: string;
  nodes: readonly NodeToWrite[];
  initializers: readonly TensorToWrite[];
  inputs: readonly ValueToWrite[];
  outputs: readonly ValueToWrite[];
  docString?: string;
}

function writeTensor(w: ProtoWriter, t: TensorToWrite): void {
  w.packedVarints(1, t.dims);
  w.varint(2, t.float ? DT.FLOAT : DT.INT64);
  if (t.name) w.string(8, t.name);
  let raw: Uint8Array;
  if (t.float) {
    const d = t.float;
    if (LITTLE_ENDIAN) raw = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
    else {
      raw = new Uint8Array(d.byteLength);
      const dv = new DataView(raw.buffer);
      d.forEach((v, i) => dv.setFloat32(4 * i, v, true));
    }
  } else {
    const vs = t.int64 ?? [];
    raw = new Uint8Array(8 * vs.length);
    const dv = new DataView(raw.buffer);
    vs.forEach((v, i) => dv.setBigInt64(8 * i, v >= 2 ** 63 ? 0x7fffffffffffffffn : BigInt(v), true));
  }
  w.bytes(9, raw);
}

/** A float tensor value's name and type; dims null: shape not declared. */
function writeValueInfo(w: ProtoWriter, v: ValueToWrite): void {
  w.string(1, v.name);
  w.message(2, (t) =>
    t.message(1, (tt) => {
      tt.varint(1, DT.FLOAT);
      if (v.dims) {
        tt.message(2, (s) => {
          for (const d of v.dims!) s.message(1, (dim) => (typeof d === 'number' ? dim.varint(1, d) : dim.string(2, d)));
        });
      }
    }),
  );
}

/** Serializes a model: fields in the order of their numbers in onnx.proto, as protoc writes them. */
export function writeModelProto(m: ModelToWrite): Uint8Array {
  const w = new ProtoWriter();
  w.varint(1, m.irVersion);
  w.string(2, 'resnet-ts');
  w.string(3, m.producerVersion);
  if (m.docString) w.string(6, m.docString);
  w.message(7, (g) => {
    for (const n of m.nodes) {
      g.message(1, (nw) => {
        for (const i of n.inputs) nw.string(1, i);
        for (const o of n.outputs) nw.string(2, o);
        nw.string(3, n.name);
        nw.string(4, n.opType);
        for (const a of n.attributes) {
          nw.message(5, (aw) => {
            aw.string(1, a.name);
            if (a.f !== undefined) aw.float(2, a.f);
            if (a.i !== undefined) aw.varint(3, a.i);
            if (a.s !== undefined) aw.string(4, a.s);
            if (a.t !== undefined) aw.message(5, (tw) => writeTensor(tw, a.t!));
            // repeated ints: written unpacked, as the protobuf 2 syntax of onnx.proto declares them
            if (a.ints !== undefined) for (const v of a.ints) aw.varint(8, v);
            const type = a.f !== undefined ? AT.FLOAT : a.i !== undefined ? AT.INT : a.s !== undefined ? AT.STRING : a.t !== undefined ? AT.TENSOR : AT.INTS;
            aw.varint(20, type);
          });
        }
      });
    }
    g.string(2, m.graphName);
    for (const t of m.initializers) g.message(5, (tw) => writeTensor(tw, t));
    for (const v of m.inputs) g.message(11, (vw) => writeValueInfo(vw, v));
    for (const v of m.outputs) g.message(12, (vw) => writeValueInfo(vw, v));
  });
  w.message(8, (o) => {
    o.string(1, '');
    o.varint(2, m.opset);
  });
  return w.finish();
}

