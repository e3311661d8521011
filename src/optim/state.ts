/**
 * Optimizer state ⇄ named tensors + a JSON string, the shape a safetensors checkpoint stores:
 *   tensors  `${prefix}state.<paramIndex>.<key>`  e.g. optimizer.state.3.momentum_buffer, optimizer.state.0.exp_avg
 *            (float32, shaped like parameter <paramIndex>; indices number parameters across groups in order)
 *   meta     JSON of { kind, paramGroups: [{ ...hyperparameters, params: [indices] }], state: { "<i>": { step } } }
 *            i.e. the stateDict() with every Float32Array removed (numbers such as Adam's `step` stay in the JSON).
 */

import { StateDictError } from '../errors.js';
import { Tensor } from '../tensor.js';
import type { Optimizer, OptimizerStateDict, ParamState } from './optimizer.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyOptimizer = Optimizer<any>;

/** Splits `opt.stateDict()` into tensors (the buffers, copied) and a JSON metadata string (the rest). */
export function optimizerStateToTensors(opt: AnyOptimizer, prefix = 'optimizer.'): { tensors: Record<string, Tensor>; meta: string } {
  const sd = opt.stateDict();
  const params = opt.paramGroups.flatMap((g) => g.params);
  const tensors: Record<string, Tensor> = {};
  const numeric: Record<string, Record<string, number>> = {};
  for (const [idx, st] of Object.entries(sd.state)) {
    const p = params[Number(idx)]!;
    const nums: Record<string, number> = {};
    for (const [k, v] of Object.entries(st)) {
      if (typeof v === 'number') nums[k] = v;
      else tensors[`${prefix}state.${idx}.${k}`] = new Tensor(v, p.shape.slice());
    }
    numeric[idx] = nums;
  }
  const meta = JSON.stringify({ kind: sd.kind, paramGroups: sd.paramGroups, state: numeric });
  return { tensors, meta };
}

/**
 * The inverse: rebuilds the state dict from `tensors` (other keys, e.g. the model's, are ignored) and `meta`, and
 * loads it into `opt`. Throws StateDictError for malformed metadata, a tensor key naming no parameter, or a tensor
 * whose size differs from its parameter's.
 */
export function optimizerStateFromTensors(opt: AnyOptimizer, tensors: Record<string, Tensor>, meta: string, prefix = 'optimizer.'): void {
  const op = 'optimizerStateFromTensors';
  let parsed: { kind?: unknown; paramGroups?: unknown; state?: unknown };
  try {
    parsed = JSON.parse(meta) as typeof parsed;
  } catch (e) {
    throw new StateDictError(op, `optimizer metadata is not JSON: ${(e as Error).message}`);
  }
  if (typeof parsed.kind !== 'string' || !Array.isArray(parsed.paramGroups) || typeof parsed.state !== 'object' || parsed.state === null) {
    throw new StateDictError(op, 'optimizer metadata needs "kind", "paramGroups" and "state"');
  }
  const state: Record<string, ParamState> = {};
  for (const [idx, nums] of Object.entries(parsed.state as Record<string, Record<string, number>>)) state[idx] = { ...nums };
  const pattern = new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}state\\.(\\d+)\\.(.+)$`);
  for (const [name, t] of Object.entries(tensors)) {
    const m = pattern.exec(name);
    if (m === null) continue;
    const idx = m[1]!;
    (state[idx] ??= {})[m[2]!] = t.data;
  }
  const sd: OptimizerStateDict = {
    kind: parsed.kind,
    paramGroups: parsed.paramGroups as OptimizerStateDict['paramGroups'],
    state,
  };
  opt.loadStateDict(sd); // validates group sizes, indices and buffer lengths, and copies the buffers
}
