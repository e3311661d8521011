import { ValueError } from '../errors.js';
import { convBnAct } from '../fusion/conv-bn.js';
import { modelForwardScope } from '../fusion/scope.js';
import { flatten } from '../ops/movement.js';
import type { Tensor } from '../tensor.js';
import { AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Linear, MaxPool2d, ReLU, Sequential } from '../nn/layers.js';
import { Module } from '../nn/module.js';
import { checkImageInput, conv1x1, conv3x3, initResNet, makeStage, ResidualBlock } from './resnet.js';

/**
 * Pre-activation ResNets (He et al. 2016, "Identity Mappings in Deep Residual Networks"): each unit is
 * BN → ReLU → conv (→ BN → ReLU → conv …), and nothing follows the addition, so the shortcut path is a clean identity
 * from block to block. Where a projection is needed it takes the pre-activated input (the paper's "first activation
 * right after conv1, before splitting"); an extra BN → ReLU follows the last unit, before pooling.
 *
 * Inside a unit each conv is followed by the next BN → ReLU, so convBnAct fuses conv(k) with bn(k+1) in eval mode
 * without gradients, and the last conv with the addition (fusion/conv-bn.ts), as in the post-activation nets.
 */
export interface PreActArgs {
  inPlanes: number;
  planes: number;
  stride: number;
}

export class PreActBasicBlock extends ResidualBlock {
  static readonly expansion = 1;
  bn1: BatchNorm2d;
  conv1: Conv2d;
  bn2: BatchNorm2d;
  conv2: Conv2d;
  /** 1×1 projection (no BN: the next unit normalizes) when the shape changes. */
  downsample: Module | null = null;
  relu = new ReLU();

  constructor(a: PreActArgs) {
    super();
    this.bn1 = new BatchNorm2d(a.inPlanes);
    this.conv1 = conv3x3(a.inPlanes, a.planes, a.stride);
    this.bn2 = new BatchNorm2d(a.planes);
    this.conv2 = conv3x3(a.planes, a.planes);
    if (a.stride !== 1 || a.inPlanes !== a.planes) this.downsample = new Sequential(conv1x1(a.inPlanes, a.planes, a.stride));
  }

  /** conv2(relu(bn2(conv1(relu(bn1 x))))) + shortcut, the shortcut projecting the pre-activated input. */
  forward(x: Tensor): Tensor {
    const pre = this.relu.forward(this.bn1.forward(x));
    const shortcut = this.downsample ? this.downsample.forward(pre) : x;
    const out = convBnAct(pre, this.conv1, this.bn2, { act: this.relu });
    return convBnAct(out, this.conv2, null, { residual: shortcut });
  }

  zeroInitLastBn(): void {
    // the last op of a pre-activation unit is a conv: zero it so the unit starts as the identity
    this.conv2.weight.data.fill(0);
  }
}

export class PreActBottleneck extends ResidualBlock {
  static readonly expansion = 4;
  bn1: BatchNorm2d;
  conv1: Conv2d;
  bn2: BatchNorm2d;
  conv2: Conv2d;
  bn3: BatchNorm2d;
  conv3: Conv2d;
  downsample: Module | null = null;
  relu = new ReLU();

  constructor(a: PreActArgs) {
    super();
    const out = a.planes * PreActBottleneck.expansion;
    this.bn1 = new BatchNorm2d(a.inPlanes);
    this.conv1 = conv1x1(a.inPlanes, a.planes);
    this.bn2 = new BatchNorm2d(a.planes);
    this.conv2 = conv3x3(a.planes, a.planes, a.stride);
    this.bn3 = new BatchNorm2d(a.planes);
    this.conv3 = conv1x1(a.planes, out);
    if (a.stride !== 1 || a.inPlanes !== out) this.downsample = new Sequential(conv1x1(a.inPlanes, out, a.stride));
  }

  forward(x: Tensor): Tensor {
    const pre = this.relu.forward(this.bn1.forward(x));
    const shortcut = this.downsample ? this.downsample.forward(pre) : x;
    let out = convBnAct(pre, this.conv1, this.bn2, { act: this.relu });
    out = convBnAct(out, this.conv2, this.bn3, { act: this.relu });
    return convBnAct(out, this.conv3, null, { residual: shortcut });
  }

  zeroInitLastBn(): void {
    this.conv3.weight.data.fill(0);
  }
}

type PreActBlockType = (new (a: PreActArgs) => ResidualBlock) & { readonly expansion: number };

export interface PreActOptions {
  numClasses?: number;
  inChannels?: number;
  zeroInitResidual?: boolean;
}

const preActStage = (block: PreActBlockType, inPlanes: number, planes: number, n: number, stride: number): Sequential =>
  makeStage(n, inPlanes, planes * block.expansion, stride, (u) => new block({ inPlanes: u.inPlanes, planes, stride: u.stride }));

/** ImageNet-style pre-activation ResNet: conv1 7×7/2, maxpool, four stages, final BN → ReLU, pool, fc. */
export class PreActResNet extends Module {
  conv1: Conv2d;
  maxpool = new MaxPool2d({ kernelSize: 3, stride: 2, padding: 1 });
  layer1: Sequential;
  layer2: Sequential;
  layer3: Sequential;
  layer4: Sequential;
  bn: BatchNorm2d;
  relu = new ReLU();
  avgpool = new AdaptiveAvgPool2d([1, 1]);
  fc: Linear;
  readonly inChannels: number;

  constructor(block: PreActBlockType, layers: readonly [number, number, number, number], opts: PreActOptions = {}) {
    super();
    const { numClasses = 1000, inChannels = 3, zeroInitResidual = false } = opts;
    this.inChannels = inChannels;
    this.conv1 = new Conv2d(inChannels, 64, 7, { stride: 2, padding: 3, bias: false });
    const e = block.expansion;
    this.layer1 = preActStage(block, 64, 64, layers[0], 1);
    this.layer2 = preActStage(block, 64 * e, 128, layers[1], 2);
    this.layer3 = preActStage(block, 128 * e, 256, layers[2], 2);
    this.layer4 = preActStage(block, 256 * e, 512, layers[3], 2);
    this.bn = new BatchNorm2d(512 * e);
    this.fc = new Linear(512 * e, numClasses);
    initResNet(this, zeroInitResidual);
  }

  forward(x: Tensor): Tensor {
    checkImageInput(this.typeName, x, this.inChannels);
    return modelForwardScope(this, () => {
      let y = this.maxpool.forward(this.conv1.forward(x));
      y = this.layer4.forward(this.layer3.forward(this.layer2.forward(this.layer1.forward(y))));
      y = this.relu.forward(this.bn.forward(y));
      return this.fc.forward(flatten(this.avgpool.forward(y), 1));
    });
  }
}

/** CIFAR pre-activation ResNet: conv1 3×3 (16), three stages at 16/32/64 planes, final BN → ReLU, pool, fc. */
export class PreActCifarResNet extends Module {
  conv1: Conv2d;
  layer1: Sequential;
  layer2: Sequential;
  layer3: Sequential;
  bn: BatchNorm2d;
  relu = new ReLU();
  avgpool = new AdaptiveAvgPool2d([1, 1]);
  fc: Linear;
  readonly inChannels: number;

  constructor(block: PreActBlockType, n: number, opts: PreActOptions = {}) {
    super();
    const { numClasses = 10, inChannels = 3, zeroInitResidual = false } = opts;
    if (!Number.isInteger(n) || n < 1) throw new ValueError('PreActCifarResNet', `units per stage must be a positive integer, got ${n}`);
    this.inChannels = inChannels;
    const e = block.expansion;
    this.conv1 = conv3x3(inChannels, 16);
    this.layer1 = preActStage(block, 16, 16, n, 1);
    this.layer2 = preActStage(block, 16 * e, 32, n, 2);
    this.layer3 = preActStage(block, 32 * e, 64, n, 2);
    this.bn = new BatchNorm2d(64 * e);
    this.fc = new Linear(64 * e, numClasses);
    initResNet(this, zeroInitResidual);
  }

  forward(x: Tensor): Tensor {
    checkImageInput(this.typeName, x, this.inChannels);
    return modelForwardScope(this, () => {
      let y = this.conv1.forward(x);
      y = this.layer3.forward(this.layer2.forward(this.layer1.forward(y)));
      y = this.relu.forward(this.bn.forward(y));
      return this.fc.forward(flatten(this.avgpool.forward(y), 1));
    });
  }
}

const imagenet = (block: PreActBlockType, layers: readonly [number, number, number, number]) => (opts: PreActOptions = {}) => new PreActResNet(block, layers, opts);
const cifar = (block: PreActBlockType, n: number) => (opts: PreActOptions = {}) => new PreActCifarResNet(block, n, opts);

export const preactResnet18 = imagenet(PreActBasicBlock, [2, 2, 2, 2]);
export const preactResnet34 = imagenet(PreActBasicBlock, [3, 4, 6, 3]);
export const preactResnet50 = imagenet(PreActBottleneck, [3, 4, 6, 3]);
export const preactResnet101 = imagenet(PreActBottleneck, [3, 4, 23, 3]);
export const preactResnet152 = imagenet(PreActBottleneck, [3, 8, 36, 3]);
/** CIFAR, basic units, n = 18 (6n + 2 = 110 layers). */
export const preactResnet110 = cifar(PreActBasicBlock, 18);
/** CIFAR, bottleneck units, n = 18 (9n + 2 = 164 layers), 1.7M parameters in the paper. */
export const preactResnet164 = cifar(PreActBottleneck, 18);
/** CIFAR, bottleneck units, n = 111 (9n + 2 = 1001 layers), 10.2M parameters in the paper. */
export const preactResnet1001 = cifar(PreActBottleneck, 111);
