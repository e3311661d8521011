/**
 * Test helpers for ONNX: onnxruntime-web sessions in Node (its wasm build, single-threaded unless asked), the
 * comparison of logits within 1e-4·max|y|, and the rebuilding of the PyTorch fixtures of gen_onnx.py (whose large
 * initializers were removed) from the formula weights.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-web';
import { expect } from 'vitest';
import { ProtoReader, ProtoWriter } from '../../src/io/protobuf.js';
import type { Module } from '../../src/nn/module.js';
import type { Tensor } from '../../src/tensor.js';
import { OnnxError } from '../../src/io/onnx.js';
import { thrownBy } from './thrown.js';

export const ONNX_FIXTURES = fileURLToPath(new URL('../fixtures/onnx/', import.meta.url));

/** An onnxruntime-web session on the wasm backend with `threads` threads (1 = no worker). */
export async function ortSession(bytes: Uint8Array, threads = 1): Promise<ort.InferenceSession> {
  ort.env.wasm.numThreads = threads;
  return ort.InferenceSession.create(bytes, { executionProviders: ['wasm'] });
}

/** Runs a session on x (fed as "input" unless named) and returns the first output's data and dims. */
export async function ortRun(s: ort.InferenceSession, x: Tensor, input = 'input'): Promise<{ data: Float32Array; dims: number[] }> {
  const r = await s.run({ [input]: new ort.Tensor('float32', x.data, [...x.shape]) });
  const out = r[s.outputNames[0]!]!;
  return { data: out.data as Float32Array, dims: [...out.dims] };
}

/** max|a − b| ≤ 1e-4·max|ref| over all elements, with a message saying where and by how much. */
export function expectClose(a: ArrayLike<number>, ref: ArrayLike<number>, what: string, rtol = 1e-4): void {
  expect(a.length, `${what}: length`).toBe(ref.length);
  let scale = 0;
  for (let i = 0; i < ref.length; i++) scale = Math.max(scale, Math.abs(ref[i]!));
  let worst = 0;
  let at = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(a[i]! - ref[i]!);
    if (!(d <= worst)) {
      worst = d;
      at = i;
    }
  }
  expect(worst <= rtol * scale, `${what}: worst at [${at}]: ${a[at]} vs ${ref[at]} (|Δ|=${worst.toExponential(2)}, max|y| ${scale.toPrecision(4)})`).toBe(true);
}

interface Removed {
  name: string;
  dims: number[];
  state?: string;
  fold?: [string, string];
  part?: 'weight' | 'bias';
}

export interface PytorchFixture {
  model: string;
  opset: number;
  ops: Record<string, number>;
  removed: Removed[];
}

export const MANIFEST = JSON.parse(readFileSync(`${ONNX_FIXTURES}manifest.json`, 'utf8')) as {
  torch: string;
  models: Record<string, { input: number[]; logits: { shape: number[]; data: number[] } }>;
  files: Record<string, PytorchFixture>;
};

/** The values of one removed initializer from a state dict holding the formula weights (fold in float64). */
function valuesOf(r: Removed, sd: Record<string, Tensor>): Float32Array {
  if (r.state) return sd[r.state]!.data;
  const [conv, bn] = r.fold!;
  const w = sd[`${conv}.weight`]!;
  const g = sd[`${bn}.weight`]!.data, b = sd[`${bn}.bias`]!.data, m = sd[`${bn}.running_mean`]!.data, v = sd[`${bn}.running_var`]!.data;
  const o = w.shape[0]!;
  const alpha = new Float64Array(o);
  for (let j = 0; j < o; j++) alpha[j] = g[j]! / Math.sqrt(v[j]! + 1e-5);
  const out = new Float32Array(r.part === 'bias' ? o : w.size);
  if (r.part === 'bias') {
    for (let j = 0; j < o; j++) out[j] = b[j]! - m[j]! * alpha[j]!;
    return out;
  }
  const per = w.size / o;
  const wd = w.data;
  for (let j = 0; j < o; j++) for (let i = j * per; i < (j + 1) * per; i++) out[i] = wd[i]! * alpha[j]!;
  return out;
}

/**
 * The PyTorch-exported file `key` with its removed initializers put back: they are appended to the graph (protobuf
 * fields may come in any order), so every other byte is PyTorch's.
 */
export function rebuildPytorchFixture(key: string, formulaModel: Module): Uint8Array {
  const f = MANIFEST.files[key]!;
  const bytes = new Uint8Array(readFileSync(`${ONNX_FIXTURES}${key}.onnx`));
  const sd = formulaModel.stateDict();
  const extra = new ProtoWriter();
  for (const r of f.removed) {
    const data = valuesOf(r, sd);
    extra.message(5, (t) => {
      t.packedVarints(1, r.dims);
      t.varint(2, 1); // FLOAT
      t.string(8, r.name);
      t.bytes(9, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    });
  }
  const added = extra.finish();
  // copy the model's fields, the graph (field 7) with the initializers appended
  const rd = new ProtoReader(bytes);
  const rawField = (from: number, to: number): Uint8Array => bytes.subarray(from, to);
  const parts: Uint8Array[] = [];
  while (!rd.done()) {
    const start = rd.pos;
    const [field, wire] = rd.tag();
    if (field === 7) {
      const g = rd.bytes();
      const graph = new Uint8Array(g.length + added.length);
      graph.set(g);
      graph.set(added, g.length);
      const w = new ProtoWriter();
      w.bytes(7, graph);
      parts.push(w.finish());
    } else {
      rd.skip(wire);
      parts.push(rawField(start, rd.pos));
    }
  }
  const total = parts.reduce((s, p) => s + p.length, 0);
  const model = new Uint8Array(total);
  let p = 0;
  for (const part of parts) {
    model.set(part, p);
    p += part.length;
  }
  return model;
}

/** The OnnxError fn throws (anything else is rethrown; no error fails). */
export function onnxErrorOf(fn: () => unknown): OnnxError {
  return thrownBy(OnnxError, fn);
}
