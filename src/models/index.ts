/** torchvision.models' ResNets, the paper's CIFAR nets, and pre-activation ResNets. */
export {
  BasicBlock, Bottleneck, ResNet, ResidualBlock, RESNETS, conv1x1, conv3x3,
  resnet18, resnet34, resnet50, resnet101, resnet152,
  resnext50_32x4d, resnext101_32x8d, resnext101_64x4d, wide_resnet50_2, wide_resnet101_2,
} from './resnet.js';
export type { BlockArgs, BlockType, ResNetConfig, FactoryOptions } from './resnet.js';
