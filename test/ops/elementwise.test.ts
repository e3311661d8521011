/** Elementwise ops (issue 2) against PyTorch fixtures: test/fixtures/ops/elementwise.json. */
import { abs, add, clamp, div, exp, log, maximum, minimum, mul, neg, pow, relu, sigmoid, sqrt, sub, tanh } from '../../src/index.js';
import type { Tensor } from '../../src/index.js';
import { fixtureSuite, type OpRow } from '../helpers/fixtures.js';

type Bin = (a: Tensor, b: Tensor | number) => Tensor;

/** The same seven broadcasting cases for each of add/sub/mul/div. */
function binaryRows(name: string, f: Bin, scalar: number): Record<string, OpRow> {
  return {
    [`${name}_same_2x3`]: [`${name} a=[2,3] b=[2,3]`, (a, b) => f(a, b)],
    [`${name}_bcast_3x1_1x4`]: [`${name} a=[3,1] b=[1,4]`, (a, b) => f(a, b)],
    [`${name}_bcast_2x3x4_4`]: [`${name} a=[2,3,4] b=[4]`, (a, b) => f(a, b)],
    [`${name}_bcast_4_2x3x4`]: [`${name} a=[4] b=[2,3,4]`, (a, b) => f(a, b)],
    [`${name}_bcast_size1_2x1x4_1x3x1`]: [`${name} a=[2,1,4] b=[1,3,1]`, (a, b) => f(a, b)],
    [`${name}_bcast_0d_2x3`]: [`${name} a=[2,3] b=[] (0-d tensor)`, (a, b) => f(a, b)],
    [`${name}_empty_0x3_3`]: [`${name} a=[0,3] b=[3] (0-size)`, (a, b) => f(a, b)],
    [`${name}_scalar`]: [`${name} a=[2,3] b=${scalar} (number)`, (a) => f(a, scalar)],
  };
}

fixtureSuite('elementwise', {
  neg_2x3x4: ['neg x=[2,3,4]', (x) => neg(x)],
  exp_3x4: ['exp x=[3,4]', (x) => exp(x)],
  exp_empty_0x3: ['exp x=[0,3] (0-size)', (x) => exp(x)],
  log_3x4: ['log x=[3,4] positive', (x) => log(x)],
  sqrt_3x4: ['sqrt x=[3,4] positive', (x) => sqrt(x)],
  abs_3x4: ['abs x=[3,4] away from 0', (x) => abs(x)],
  relu_3x4: ['relu x=[3,4] away from 0', (x) => relu(x)],
  sigmoid_3x4: ['sigmoid x=[3,4]', (x) => sigmoid(x)],
  tanh_3x4: ['tanh x=[3,4]', (x) => tanh(x)],
  pow_scalar_2: ['pow x=[3,4] e=2', (x) => pow(x, 2)],
  pow_scalar_3_negative_base: ['pow x=[3,4] e=3 negative base', (x) => pow(x, 3)],
  pow_scalar_0_5: ['pow x=[3,4] e=0.5', (x) => pow(x, 0.5)],
  pow_scalar_neg1_5: ['pow x=[3,4] e=-1.5', (x) => pow(x, -1.5)],
  pow_scalar_0: ['pow x=[3,4] e=0', (x) => pow(x, 0)],
  pow_tensor_3x4: ['pow x=[3,4] e=[3,4] tensor exponent', (x, e) => pow(x, e)],
  pow_tensor_bcast_3x1_1x4: ['pow x=[3,1] e=[1,4] tensor exponent broadcast', (x, e) => pow(x, e)],
  clamp_min: ['clamp x=[3,5] min=-0.5', (x) => clamp(x, -0.5)],
  clamp_max: ['clamp x=[3,5] max=0.25', (x) => clamp(x, null, 0.25)],
  clamp_both: ['clamp x=[3,5] min=-0.5 max=0.75', (x) => clamp(x, -0.5, 0.75)],
  maximum_3x4: ['maximum a=[3,4] b=[3,4]', (a, b) => maximum(a, b)],
  minimum_3x4: ['minimum a=[3,4] b=[3,4]', (a, b) => minimum(a, b)],
  maximum_bcast_3x1_4: ['maximum a=[3,1] b=[4]', (a, b) => maximum(a, b)],
  minimum_bcast_2x3x4_4: ['minimum a=[2,3,4] b=[4]', (a, b) => minimum(a, b)],
  ...binaryRows('add', add, 2.5),
  ...binaryRows('sub', sub, -1.25),
  ...binaryRows('mul', mul, -3),
  ...binaryRows('div', div, 0.75),
});
