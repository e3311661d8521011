// The convolution layers of ResNet-18/50 at 224×224 (batch 1) and of the CIFAR ResNet-20 (batch 32), as the
// kernels see them: x (n, c, h, w) · w (o, c, k, k) with stride and padding (no bias, dilation 1, groups 1).
// `where` says which layers of which nets have the shape.

/** One benchmarked convolution. */
function conv(name, where, n, c, h, o, k, stride, pad, quick = false) {
  return { name, where, n, c, h, w: h, o, k, stride, pad, quick };
}

export const LAYERS = [
  // ImageNet ResNets, batch 1 (torchvision "v1.5": the bottleneck strides on its 3×3)
  conv('conv1 7x7/2 3→64 @224', 'R18+R50 conv1', 1, 3, 224, 64, 7, 2, 3),
  conv('3x3 64→64 @56', 'R18 layer1 ×4, R50 layer1.*.conv2', 1, 64, 56, 64, 3, 1, 1, true),
  conv('3x3/2 64→128 @56', 'R18 layer2.0.conv1', 1, 64, 56, 128, 3, 2, 1),
  conv('3x3 128→128 @28', 'R18 layer2 ×3, R50 layer2.*.conv2', 1, 128, 28, 128, 3, 1, 1),
  conv('3x3 256→256 @14', 'R18 layer3 ×3, R50 layer3.*.conv2', 1, 256, 14, 256, 3, 1, 1),
  conv('3x3 512→512 @7', 'R18 layer4 ×3, R50 layer4.*.conv2', 1, 512, 7, 512, 3, 1, 1, true),
  conv('1x1 256→64 @56', 'R50 layer1.{1,2}.conv1', 1, 256, 56, 64, 1, 1, 0, true),
  conv('1x1 64→256 @56', 'R50 layer1.*.conv3 (+ layer1.0.downsample)', 1, 64, 56, 256, 1, 1, 0),
  conv('1x1 512→128 @28', 'R50 layer2.{1,2,3}.conv1', 1, 512, 28, 128, 1, 1, 0),
  conv('1x1 1024→256 @14', 'R50 layer3.{1..5}.conv1', 1, 1024, 14, 256, 1, 1, 0),
  conv('1x1 2048→512 @7', 'R50 layer4.{1,2}.conv1', 1, 2048, 7, 512, 1, 1, 0),
  conv('1x1/2 64→128 @56', 'R18 layer2.0.downsample', 1, 64, 56, 128, 1, 2, 0),
  conv('1x1/2 256→512 @56', 'R50 layer2.0.downsample', 1, 256, 56, 512, 1, 2, 0),
  // CIFAR ResNet-20 (He et al. §4.2), batch 32; option-A shortcuts have no conv
  conv('c20 3x3 3→16 @32 b32', 'ResNet-20 conv1', 32, 3, 32, 16, 3, 1, 1),
  conv('c20 3x3 16→16 @32 b32', 'ResNet-20 layer1 ×6', 32, 16, 32, 16, 3, 1, 1, true),
  conv('c20 3x3/2 16→32 @32 b32', 'ResNet-20 layer2.0.conv1', 32, 16, 32, 32, 3, 2, 1),
  conv('c20 3x3 32→32 @16 b32', 'ResNet-20 layer2 ×5', 32, 32, 16, 32, 3, 1, 1),
  conv('c20 3x3/2 32→64 @16 b32', 'ResNet-20 layer3.0.conv1', 32, 32, 16, 64, 3, 2, 1),
  conv('c20 3x3 64→64 @8 b32', 'ResNet-20 layer3 ×5', 32, 64, 8, 64, 3, 1, 1, true),
];

/** The kernels' Conv2dParams for a layer (dist/kernels/conv2d.js), with PyTorch's output size. */
export function convParams(s) {
  const out = (i) => Math.floor((i + 2 * s.pad - (s.k - 1) - 1) / s.stride) + 1;
  return {
    n: s.n, c: s.c, h: s.h, w: s.w, o: s.o, kh: s.k, kw: s.k,
    strideH: s.stride, strideW: s.stride, padH: s.pad, padW: s.pad, dilH: 1, dilW: 1, groups: 1,
    oh: out(s.h), ow: out(s.w),
  };
}

/** Multiply-adds of the direct convolution (the same for forward, backward input and backward weight). */
export function convMacs(p) {
  return p.n * p.o * p.oh * p.ow * (p.c / p.groups) * p.kh * p.kw;
}
