/**
 * A training step's 3×3 convolutions on the SIMD backend: the conv2d op (autograd, not the fused inference forward)
 * runs Winograd with float64 U, V and GEMMs, so its output and input gradient agree with the float64 direct
 * convolution to about one float32 rounding (2⁻²² of the output scale), as on the js backend. With U and V rounded
 * to float32 (the fused inference forward's GEMMs), the transforms amplify that rounding ~10×: a ResNet-18 train
 * step then misses PyTorch's float64 gradients by up to 2.3e-4·max|g| (test/models/parity.test.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withConfig } from '../../src/config.js';
import { nn } from '../../src/index.js';
import { conv2dBackwardInputNaive, conv2dForwardNaive, conv2dOutSize, type Conv2dParams } from '../../src/kernels/conv2d.js';
import { hasSimd128, setKernelBackend, type KernelBackend } from '../../src/kernels/wasm/features.js';
import { Tensor } from '../../src/tensor.js';
import { assertClose, randArray } from '../kernels/compare.js';

const TIGHT = { atol: 2 ** -22, rtol: 2 ** -22 };

describe('conv2d in training on the SIMD backend: Winograd in float64', () => {
  let old: KernelBackend;
  beforeAll(() => {
    old = setKernelBackend('simd');
  });
  afterAll(() => {
    setKernelBackend(old);
  });

  it('the engine has SIMD128 (else this file tests the js backend)', () => {
    expect(hasSimd128).toBe(true);
  });

  // ResNet-18's layer1 and layer2 shapes at a 32×32 input, batch 2.
  for (const [c, hw] of [[64, 8], [128, 4]] as const) {
    it(`3×3 ${c}→${c} @${hw}, pad 1: output and input gradient within 2⁻²² of float64`, () => {
      const oh = conv2dOutSize(hw, 3, 1, 1, 1);
      const p: Conv2dParams = {
        n: 2, c, h: hw, w: hw, o: c, kh: 3, kw: 3, strideH: 1, strideW: 1, padH: 1, padW: 1, dilH: 1, dilW: 1, groups: 1, oh, ow: oh,
      };
      const xd = randArray(11, p.n * c * hw * hw), wd = randArray(12, c * c * 9, -0.05, 0.05), dyd = randArray(13, p.n * c * oh * oh);
      const x = new Tensor(xd.slice(), [p.n, c, hw, hw]).requiresGrad_();
      const w = new Tensor(wd.slice(), [c, c, 3, 3]).requiresGrad_();
      const y = withConfig({ winograd: 'always' }, () => {
        const out = nn.functional.conv2d(x, w, null, { padding: 1 });
        out.backward(new Tensor(dyd.slice(), out.shape));
        return out;
      });
      const yr = new Float32Array(y.size), dxr = new Float32Array(x.size);
      conv2dForwardNaive(yr, xd, wd, null, p);
      conv2dBackwardInputNaive(dxr, dyd, wd, p);
      assertClose(`conv2d forward ${c}@${hw}`, y.data, yr, TIGHT);
      assertClose(`conv2d input gradient ${c}@${hw}`, x.grad!.data, dxr, TIGHT);
    });
  }
});
