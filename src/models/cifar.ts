import { ValueError } from '../errors.js';
import { flatten } from '../ops/movement.js';
import type { Tensor } from '../tensor.js';
import { AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Linear, ReLU, Sequential } from '../nn/layers.js';
import { Module } from '../nn/module.js';
import { convBnAct } from '../fusion/conv-bn.js';
import { modelForwardScope } from '../fusion/scope.js';
import { checkImageInput, conv1x1, conv3x3, initResNet, makeStage, ResidualBlock, ShortcutA } from './resnet.js';

/**
 * The CIFAR-10 networks of He et al. 2015 §4.2: a 3×3 conv with 16 filters, then three stages of n basic units
 * (2n layers each) on 32×32, 16×16 and 8×8 maps with 16, 32 and 64 filters, global average pooling and a linear
 * classifier: 6n + 2 weighted layers. Shortcuts are identity, with option A (strided subsampling plus zero channels,
 * no parameters) where the shape changes, or option B (1×1 projection + BN); `plain` nets are the same stacks with
 * no shortcut at all.
 */
export type ShortcutOption = 'A' | 'B';

export interface CifarBlockArgs {
  inPlanes: number;
  planes: number;
  stride: number;
  /** 'A', 'B', or null for a plain (non-residual) unit. */
  shortcut: ShortcutOption | null;
}

export class CifarBasicBlock extends ResidualBlock {
  conv1: Conv2d;
  bn1: BatchNorm2d;
  relu = new ReLU();
  conv2: Conv2d;
  bn2: BatchNorm2d;
  /** Option A: parameter-free; option B: conv1x1 + BN (torchvision's name). Null: identity, or plain. */
  shortcut: Module | null = null;
  downsample: Module | null = null;
  readonly residual: boolean;

  constructor(a: CifarBlockArgs) {
    super();
    this.conv1 = conv3x3(a.inPlanes, a.planes, a.stride);
    this.bn1 = new BatchNorm2d(a.planes);
    this.conv2 = conv3x3(a.planes, a.planes);
    this.bn2 = new BatchNorm2d(a.planes);
    this.residual = a.shortcut !== null;
    if (a.stride !== 1 || a.inPlanes !== a.planes) {
      if (a.shortcut === 'A') this.shortcut = new ShortcutA(a.planes, a.stride);
      else if (a.shortcut === 'B') this.downsample = new Sequential(conv1x1(a.inPlanes, a.planes, a.stride), new BatchNorm2d(a.planes));
    }
  }

  /** relu(bn2(conv2(relu(bn1(conv1 x)))) + shortcut(x)); a plain unit adds nothing. bn2's output is F(x). */
  forward(x: Tensor): Tensor {
    const out = convBnAct(x, this.conv1, this.bn1, { act: this.relu });
    const proj = this.shortcut ?? this.downsample;
    const residual = !this.residual ? null : proj ? proj.forward(x) : x;
    return convBnAct(out, this.conv2, this.bn2, { residual, act: this.relu });
  }

  zeroInitLastBn(): void {
    this.bn2.weight?.data.fill(0);
  }
}

export interface CifarOptions {
  numClasses?: number;
  /** 3 for CIFAR, 1 for (Fashion-)MNIST. */
  inChannels?: number;
  /** Shortcut where the shape changes: 'A' (default, the paper's CIFAR choice) or 'B'. */
  shortcut?: ShortcutOption;
  /** Stage widths, default [16, 32, 64] (smaller widths make quick experiments). */
  widths?: readonly [number, number, number];
  zeroInitResidual?: boolean;
}

/** A CIFAR ResNet or plain net with n units per stage (depth 6n + 2). */
export class CifarResNet extends Module {
  conv1: Conv2d;
  bn1: BatchNorm2d;
  relu = new ReLU();
  layer1: Sequential;
  layer2: Sequential;
  layer3: Sequential;
  avgpool = new AdaptiveAvgPool2d([1, 1]);
  fc: Linear;
  readonly inChannels: number;
  readonly depth: number;
  readonly residual: boolean;

  constructor(n: number, residual: boolean, opts: CifarOptions = {}) {
    super();
    const { numClasses = 10, inChannels = 3, shortcut = 'A', widths = [16, 32, 64], zeroInitResidual = false } = opts;
    if (!Number.isInteger(n) || n < 1) throw new ValueError('CifarResNet', `units per stage must be a positive integer, got ${n}`);
    if (shortcut !== 'A' && shortcut !== 'B') throw new ValueError('CifarResNet', `shortcut must be 'A' or 'B', got ${String(shortcut)}`);
    this.inChannels = inChannels;
    this.depth = 6 * n + 2;
    this.residual = residual;
    this.conv1 = conv3x3(inChannels, widths[0]);
    this.bn1 = new BatchNorm2d(widths[0]);
    const stage = (inPlanes: number, planes: number, stride: number): Sequential =>
      makeStage(n, inPlanes, planes, stride, (u) => new CifarBasicBlock({ inPlanes: u.inPlanes, planes, stride: u.stride, shortcut: residual ? shortcut : null }));
    this.layer1 = stage(widths[0], widths[0], 1);
    this.layer2 = stage(widths[0], widths[1], 2);
    this.layer3 = stage(widths[1], widths[2], 2);
    this.fc = new Linear(widths[2], numClasses);
    initResNet(this, zeroInitResidual);
  }

  override get typeName(): string {
    return `${this.residual ? 'ResNet' : 'PlainNet'}${this.depth}`;
  }

  /** The units in order, from the input end. */
  blocks(): CifarBasicBlock[] {
    return [this.layer1, this.layer2, this.layer3].flatMap((s) => s.children() as CifarBasicBlock[]);
  }

  forward(x: Tensor): Tensor {
    checkImageInput(this.typeName, x, this.inChannels);
    return modelForwardScope(this, () => {
      let y = convBnAct(x, this.conv1, this.bn1, { act: this.relu });
      y = this.layer3.forward(this.layer2.forward(this.layer1.forward(y)));
      return this.fc.forward(flatten(this.avgpool.forward(y), 1));
    });
  }
}

const cifar = (n: number, residual: boolean) => (opts: CifarOptions = {}): CifarResNet => new CifarResNet(n, residual, opts);

/** He et al. 2015, Table 6: 0.27M parameters. */
export const resnet20 = cifar(3, true);
/** 0.46M */
export const resnet32 = cifar(5, true);
/** 0.66M */
export const resnet44 = cifar(7, true);
/** 0.85M */
export const resnet56 = cifar(9, true);
/** 1.7M */
export const resnet110 = cifar(18, true);
/** 19.4M */
export const resnet1202 = cifar(200, true);
export const plain20 = cifar(3, false);
export const plain32 = cifar(5, false);
export const plain44 = cifar(7, false);
export const plain56 = cifar(9, false);
export const plain110 = cifar(18, false);

/** CIFAR ResNet or plain net of any depth 6n + 2. */
export function cifarResnet(depth: number, opts: CifarOptions & { plain?: boolean } = {}): CifarResNet {
  if (!Number.isInteger(depth) || (depth - 2) % 6 !== 0 || depth < 8) {
    throw new ValueError('cifarResnet', `depth must be 6n + 2 (8, 14, 20, 32, 44, 56, 110, …), got ${depth}`);
  }
  return new CifarResNet((depth - 2) / 6, !opts.plain, opts);
}
