import { checkArg, ShapeError, ValueError } from '../errors.js';
import { shortcutA } from '../ops/conv.js';
import { flatten } from '../ops/movement.js';
import { fmt } from '../shape.js';
import { Tensor } from '../tensor.js';
import { constant_, kaimingNormal_ } from '../nn/init.js';
import { AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Linear, MaxPool2d, ReLU, Sequential } from '../nn/layers.js';
import { Module } from '../nn/module.js';
import { convBnAct } from '../fusion/conv-bn.js';
import { modelForwardScope } from '../fusion/scope.js';

/**
 * torchvision's ResNet family (models/resnet.py, "v1.5": the bottleneck strides on its 3×3), built from a stage
 * config. Field names are the state-dict keys, so torchvision checkpoints load by their own names.
 *
 * Each conv → BN (→ + shortcut) (→ ReLU) runs through convBnAct: the modules' own forwards when training, one fused
 * kernel in eval mode without gradients (fusion/conv-bn.ts). The forward is the same either way.
 */

/** 3×3 conv with padding = dilation, no bias (torchvision's conv3x3). */
export const conv3x3 = (inPlanes: number, outPlanes: number, stride = 1, groups = 1, dilation = 1): Conv2d =>
  new Conv2d(inPlanes, outPlanes, 3, { stride, padding: dilation, groups, dilation, bias: false });

/** 1×1 conv, no bias (torchvision's conv1x1). */
export const conv1x1 = (inPlanes: number, outPlanes: number, stride = 1): Conv2d =>
  new Conv2d(inPlanes, outPlanes, 1, { stride, bias: false });

/** What a residual unit needs to know to build itself. */
export interface BlockArgs {
  inPlanes: number;
  planes: number;
  stride: number;
  /** Projection shortcut (conv1x1 + BN) or null for identity. */
  downsample: Module | null;
  groups: number;
  baseWidth: number;
  dilation: number;
}

/** A residual unit class: `expansion` is its output width over `planes`. */
export interface BlockType {
  new (a: BlockArgs): ResidualBlock;
  readonly expansion: number;
}

export abstract class ResidualBlock extends Module {
  /** Zero-initializes the last BN's weight, so the block starts as the identity (zeroInitResidual). */
  abstract zeroInitLastBn(): void;
}

/** The basic residual unit (ResNet-18/34): two 3×3 convs. y = relu(bn2(conv2(relu(bn1(conv1 x)))) + shortcut(x)). */
export class BasicBlock extends ResidualBlock {
  static readonly expansion = 1;
  conv1: Conv2d;
  bn1: BatchNorm2d;
  relu = new ReLU();
  conv2: Conv2d;
  bn2: BatchNorm2d;
  downsample: Module | null;

  constructor(a: BlockArgs) {
    super();
    if (a.groups !== 1 || a.baseWidth !== 64) throw new ValueError('BasicBlock', `BasicBlock only supports groups=1 and base_width=64, got groups ${a.groups}, base_width ${a.baseWidth}`);
    if (a.dilation > 1) throw new ValueError('BasicBlock', `Dilation > 1 not supported in BasicBlock (got ${a.dilation})`);
    this.conv1 = conv3x3(a.inPlanes, a.planes, a.stride);
    this.bn1 = new BatchNorm2d(a.planes);
    this.conv2 = conv3x3(a.planes, a.planes);
    this.bn2 = new BatchNorm2d(a.planes);
    this.downsample = a.downsample;
  }

  forward(x: Tensor): Tensor {
    const out = convBnAct(x, this.conv1, this.bn1, { act: this.relu });
    const identity = this.downsample ? this.downsample.forward(x) : x;
    return convBnAct(out, this.conv2, this.bn2, { residual: identity, act: this.relu });
  }

  zeroInitLastBn(): void {
    if (this.bn2.weight) constant_(this.bn2.weight, 0);
  }
}

/**
 * The bottleneck unit (ResNet-50/101/152): 1×1 reduce, 3×3 (with the stride, torchvision "v1.5"), 1×1 expand ×4.
 * width = floor(planes · baseWidth/64) · groups, which gives ResNeXt and Wide ResNet from the same class.
 */
export class Bottleneck extends ResidualBlock {
  static readonly expansion = 4;
  conv1: Conv2d;
  bn1: BatchNorm2d;
  conv2: Conv2d;
  bn2: BatchNorm2d;
  conv3: Conv2d;
  bn3: BatchNorm2d;
  relu = new ReLU();
  downsample: Module | null;

  constructor(a: BlockArgs) {
    super();
    const width = Math.floor(a.planes * (a.baseWidth / 64)) * a.groups;
    this.conv1 = conv1x1(a.inPlanes, width);
    this.bn1 = new BatchNorm2d(width);
    this.conv2 = conv3x3(width, width, a.stride, a.groups, a.dilation);
    this.bn2 = new BatchNorm2d(width);
    this.conv3 = conv1x1(width, a.planes * Bottleneck.expansion);
    this.bn3 = new BatchNorm2d(a.planes * Bottleneck.expansion);
    this.downsample = a.downsample;
  }

  forward(x: Tensor): Tensor {
    let out = convBnAct(x, this.conv1, this.bn1, { act: this.relu });
    out = convBnAct(out, this.conv2, this.bn2, { act: this.relu });
    const identity = this.downsample ? this.downsample.forward(x) : x;
    return convBnAct(out, this.conv3, this.bn3, { residual: identity, act: this.relu });
  }

  zeroInitLastBn(): void {
    if (this.bn3.weight) constant_(this.bn3.weight, 0);
  }
}

/** Where a unit sits in its stage: what makeStage passes to the unit factory. */
export interface StageUnit {
  /** 0 for the stage's first unit. */
  index: number;
  /** The unit's input channels: the stage's input for the first unit, the stage's output after. */
  inPlanes: number;
  /** The stage's stride for the first unit, 1 after. */
  stride: number;
}

/**
 * One stage of n residual units (torchvision's _make_layer; the CIFAR and pre-activation nets use it too): the
 * first unit takes the stage's input width and stride, the others the stage's output width and stride 1.
 */
export function makeStage(n: number, inPlanes: number, outPlanes: number, stride: number, unit: (u: StageUnit) => Module): Sequential {
  const units: Module[] = [];
  for (let index = 0; index < n; index++) {
    units.push(unit({ index, inPlanes: index === 0 ? inPlanes : outPlanes, stride: index === 0 ? stride : 1 }));
  }
  return new Sequential(...units);
}

/** A stage config: torchvision's ResNet.__init__ arguments. */
export interface ResNetConfig {
  block: BlockType;
  layers: readonly [number, number, number, number];
  numClasses?: number;
  groups?: number;
  widthPerGroup?: number;
  replaceStrideWithDilation?: readonly [boolean, boolean, boolean];
  zeroInitResidual?: boolean;
  /** Input channels of conv1 (3 for RGB). */
  inChannels?: number;
}

/** Checks an (N, C, H, W) input against a model's first conv, naming the model. */
export function checkImageInput(model: string, x: Tensor, inChannels: number): void {
  checkArg(x instanceof Tensor, `${model}.forward`, 'x', `a Tensor (N, ${inChannels}, H, W)`, x);
  if (x.ndim !== 4) {
    throw new ShapeError(model, `expected a 4-D input (N, ${inChannels}, H, W), got ${x.ndim}-D input of shape ${fmt(x.shape)}`);
  }
  if (x.shape[1] !== inChannels) {
    throw new ShapeError(model, `expected input${fmt(x.shape)} to have ${inChannels} channels, but got ${x.shape[1]} channels instead`);
  }
}

/** torchvision.models.ResNet. */
export class ResNet extends Module {
  conv1: Conv2d;
  bn1: BatchNorm2d;
  relu = new ReLU();
  maxpool = new MaxPool2d({ kernelSize: 3, stride: 2, padding: 1 });
  layer1: Sequential;
  layer2: Sequential;
  layer3: Sequential;
  layer4: Sequential;
  avgpool = new AdaptiveAvgPool2d([1, 1]);
  fc: Linear;
  readonly inChannels: number;
  private _inPlanes = 64;
  private _dilation = 1;
  private readonly _groups: number;
  private readonly _baseWidth: number;

  constructor(cfg: ResNetConfig) {
    super();
    const { block, layers, numClasses = 1000, groups = 1, widthPerGroup = 64, zeroInitResidual = false, inChannels = 3 } = cfg;
    const rswd = cfg.replaceStrideWithDilation ?? [false, false, false];
    if (rswd.length !== 3) throw new ValueError('ResNet', `replaceStrideWithDilation should be null or a 3-element tuple, got ${JSON.stringify(rswd)}`);
    this.inChannels = inChannels;
    this._groups = groups;
    this._baseWidth = widthPerGroup;
    this.conv1 = new Conv2d(inChannels, 64, 7, { stride: 2, padding: 3, bias: false });
    this.bn1 = new BatchNorm2d(64);
    this.layer1 = this.makeLayer(block, 64, layers[0]);
    this.layer2 = this.makeLayer(block, 128, layers[1], 2, rswd[0]);
    this.layer3 = this.makeLayer(block, 256, layers[2], 2, rswd[1]);
    this.layer4 = this.makeLayer(block, 512, layers[3], 2, rswd[2]);
    this.fc = new Linear(512 * block.expansion, numClasses);
    initResNet(this, zeroInitResidual);
  }

  /** torchvision's _make_layer: one stage of `blocks` units; the first may stride and project. */
  private makeLayer(block: BlockType, planes: number, blocks: number, stride = 1, dilate = false): Sequential {
    let downsample: Module | null = null;
    const previousDilation = this._dilation;
    if (dilate) {
      this._dilation *= stride;
      stride = 1;
    }
    const outPlanes = planes * block.expansion;
    if (stride !== 1 || this._inPlanes !== outPlanes) {
      downsample = new Sequential(conv1x1(this._inPlanes, outPlanes, stride), new BatchNorm2d(outPlanes));
    }
    const stage = makeStage(blocks, this._inPlanes, outPlanes, stride, (u) => new block({
      inPlanes: u.inPlanes, planes, stride: u.stride, downsample: u.index === 0 ? downsample : null,
      groups: this._groups, baseWidth: this._baseWidth, dilation: u.index === 0 ? previousDilation : this._dilation,
    }));
    this._inPlanes = outPlanes;
    return stage;
  }

  forward(x: Tensor): Tensor {
    checkImageInput(this.typeName, x, this.inChannels);
    return modelForwardScope(this, () => {
      let y = this.maxpool.forward(convBnAct(x, this.conv1, this.bn1, { act: this.relu }));
      y = this.layer4.forward(this.layer3.forward(this.layer2.forward(this.layer1.forward(y))));
      return this.fc.forward(flatten(this.avgpool.forward(y), 1));
    });
  }
}

/** torchvision's init: kaiming-normal fan_out/relu convs, BN weight 1 bias 0, optional zero-init of last BNs. */
export function initResNet(model: Module, zeroInitResidual: boolean): void {
  for (const [, m] of model.namedModules()) {
    if (m instanceof Conv2d) kaimingNormal_(m.weight, { mode: 'fan_out', nonlinearity: 'relu' });
    else if (m instanceof BatchNorm2d) {
      if (m.weight) constant_(m.weight, 1);
      if (m.bias) constant_(m.bias, 0);
    }
  }
  if (zeroInitResidual) for (const [, m] of model.namedModules()) if (m instanceof ResidualBlock) m.zeroInitLastBn();
}

/** Options every factory takes; the rest of ResNetConfig may be overridden too. */
export type FactoryOptions = Partial<Omit<ResNetConfig, 'block' | 'layers'>>;

/** torchvision's architectures as data: block type, units per stage, and the group/width settings. */
export const RESNETS = {
  resnet18: { block: BasicBlock, layers: [2, 2, 2, 2] },
  resnet34: { block: BasicBlock, layers: [3, 4, 6, 3] },
  resnet50: { block: Bottleneck, layers: [3, 4, 6, 3] },
  resnet101: { block: Bottleneck, layers: [3, 4, 23, 3] },
  resnet152: { block: Bottleneck, layers: [3, 8, 36, 3] },
  resnext50_32x4d: { block: Bottleneck, layers: [3, 4, 6, 3], groups: 32, widthPerGroup: 4 },
  resnext101_32x8d: { block: Bottleneck, layers: [3, 4, 23, 3], groups: 32, widthPerGroup: 8 },
  resnext101_64x4d: { block: Bottleneck, layers: [3, 4, 23, 3], groups: 64, widthPerGroup: 4 },
  wide_resnet50_2: { block: Bottleneck, layers: [3, 4, 6, 3], widthPerGroup: 128 },
  wide_resnet101_2: { block: Bottleneck, layers: [3, 4, 23, 3], widthPerGroup: 128 },
} as const satisfies Record<string, ResNetConfig>;

const factory = (name: keyof typeof RESNETS) => (opts: FactoryOptions = {}): ResNet => new ResNet({ ...RESNETS[name], ...opts });

export const resnet18 = factory('resnet18');
export const resnet34 = factory('resnet34');
export const resnet50 = factory('resnet50');
export const resnet101 = factory('resnet101');
export const resnet152 = factory('resnet152');
export const resnext50_32x4d = factory('resnext50_32x4d');
export const resnext101_32x8d = factory('resnext101_32x8d');
export const resnext101_64x4d = factory('resnext101_64x4d');
export const wide_resnet50_2 = factory('wide_resnet50_2');
export const wide_resnet101_2 = factory('wide_resnet101_2');

// The option-A shortcut as a module, for the CIFAR nets (cifar.ts).
export class ShortcutA extends Module {
  constructor(readonly outChannels: number, readonly stride: number) {
    super();
  }
  forward(x: Tensor): Tensor {
    return shortcutA(x, this.outChannels, this.stride);
  }
  override extraRepr(): string {
    return `out_channels=${this.outChannels}, stride=${this.stride}`;
  }
}
