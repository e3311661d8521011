/**
 * Formula weights and inputs for full-size model checks: both this file and test/fixtures/gen_models.py compute them,
 * so no weights are committed. Keep the two in exact agreement (same expressions, same evaluation order): the
 * float64 argument of sin is then the same double on both sides, and V8's Math.sin and numpy's sin agree after the
 * float32 rounding (checked on 4.5M elements of the largest tensors used: 0 differences).
 *
 * The k-th entry of the state dict (0-based, state-dict order, buffers included), flat element i:
 *   v = sin(0.37·i + 0.0013·i·i + 1.3·k + 0.5), then in float64 and rounded to float32 once:
 *   conv weight (4-D) v·sqrt(3/fan_in) · Linear weight (2-D) v·sqrt(3/in) · Linear bias 0.1·v ·
 *   BN weight 1 + 0.1·v · BN bias 0.1·v · running_mean 0.1·v · running_var 1 + 0.5·v·v · num_batches_tracked 0.
 * Input: x[i] = sin(0.013·i + 0.0001·i·i + 0.7) rounded to float32. Why the quadratic terms: see gen_models.py.
 */
import { Tensor } from '../../src/index.js';

/** What kind of tensor a state-dict entry is, from its name and whether its module has a running_mean. */
function kindOf(key: string, shape: readonly number[], keys: ReadonlySet<string>): string {
  const dot = key.lastIndexOf('.');
  const prefix = key.slice(0, dot);
  const leaf = key.slice(dot + 1);
  const isBn = keys.has(`${prefix}.running_mean`);
  if (leaf === 'num_batches_tracked' || leaf === 'running_mean' || leaf === 'running_var') return leaf;
  if (isBn && (leaf === 'weight' || leaf === 'bias')) return `bn_${leaf}`;
  if (leaf === 'weight' && shape.length === 4) return 'conv_weight';
  if (leaf === 'weight' && shape.length === 2) return 'linear_weight';
  if (leaf === 'bias' && shape.length === 1) return 'linear_bias';
  throw new Error(`no formula for ${key} [${shape.join(', ')}]`);
}

/** The formula values (float32) of state-dict entry number k, named `key`, of the given shape. */
export function formulaValues(k: number, key: string, shape: readonly number[], keys: ReadonlySet<string>): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  const kind = kindOf(key, shape, keys);
  if (kind === 'num_batches_tracked') return out;
  const scale =
    kind === 'conv_weight' ? Math.sqrt(3 / (shape[1]! * shape[2]! * shape[3]!)) : kind === 'linear_weight' ? Math.sqrt(3 / shape[1]!) : 0;
  for (let i = 0; i < n; i++) {
    const v = Math.sin(0.37 * i + 0.0013 * i * i + 1.3 * k + 0.5);
    let w: number;
    switch (kind) {
      case 'conv_weight':
      case 'linear_weight':
        w = v * scale;
        break;
      case 'running_var':
        w = 1 + 0.5 * v * v;
        break;
      case 'bn_weight':
        w = 1 + 0.1 * v;
        break;
      default: // running_mean, bn_bias, linear_bias
        w = 0.1 * v;
    }
    out[i] = w; // the one float32 rounding
  }
  return out;
}

/** Overwrites every parameter and buffer of a model with the formula (in place; stateDict returns the model's own tensors). */
export function loadFormula(model: { stateDict(): Record<string, Tensor> }): void {
  const sd = model.stateDict();
  const keys = new Set(Object.keys(sd));
  Object.entries(sd).forEach(([key, t], k) => {
    t.data.set(formulaValues(k, key, t.shape, keys));
  });
}

/** The formula input of the given shape: x[i] = sin(0.013·i + 0.0001·i·i + 0.7), float32. */
export function formulaInput(shape: number[]): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = Math.sin(0.013 * i + 0.0001 * i * i + 0.7);
  return new Tensor(data, shape);
}
