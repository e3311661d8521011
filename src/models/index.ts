/** torchvision.models' ResNets, the paper's CIFAR nets, and pre-activation ResNets. */
export {
  BasicBlock, Bottleneck, ResNet, ResidualBlock, RESNETS, conv1x1, conv3x3, makeStage, ShortcutA,
  resnet18, resnet34, resnet50, resnet101, resnet152,
  resnext50_32x4d, resnext101_32x8d, resnext101_64x4d, wide_resnet50_2, wide_resnet101_2,
} from './resnet.js';
export type { BlockArgs, BlockType, ResNetConfig, FactoryOptions, StageUnit } from './resnet.js';
export {
  CifarBasicBlock, CifarResNet, cifarResnet,
  resnet20, resnet32, resnet44, resnet56, resnet110, resnet1202, plain20, plain32, plain44, plain56, plain110,
} from './cifar.js';
export type { CifarOptions, ShortcutOption } from './cifar.js';
export {
  PreActBasicBlock, PreActBottleneck, PreActResNet, PreActCifarResNet,
  preactResnet18, preactResnet34, preactResnet50, preactResnet101, preactResnet152,
  preactResnet110, preactResnet164, preactResnet1001,
} from './preact.js';
export type { PreActOptions } from './preact.js';
export { summary } from './summary.js';
export { featureExtractor, FeatureExtractor } from './features.js';
export type { Summary, SummaryRow } from './summary.js';
