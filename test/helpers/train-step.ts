/**
 * A seeded training step of a small CIFAR ResNet-8 (widths 4, 8, 8) on 16×3×16×16 random images, for the
 * withTrainingStep tests: SGD with momentum 0.9 and weight decay 5e-4, `zeroGrad(false)`, cross-entropy. `body` runs a
 * plain step and returns its loss; `scoped` runs the same step inside withTrainingStep.
 */
import { manualSeed, models, nn, optim, randn, withTrainingStep } from '../../src/index.js';

export interface SmallStepOptions {
  /** Seed of the model's weights (and of x, unless dataSeed is given). */
  seed: number;
  /** A seed set again before x is drawn. */
  dataSeed?: number;
  /** Image i's class: (i · targetStep) mod 10. */
  targetStep?: number;
  lr: number;
}

export function smallResnetStep({ seed, dataSeed, targetStep = 1, lr }: SmallStepOptions) {
  manualSeed(seed);
  const model = models.cifarResnet(8, { widths: [4, 8, 8] }).train();
  if (dataSeed !== undefined) manualSeed(dataSeed);
  const x = randn([16, 3, 16, 16]);
  const target = Array.from({ length: 16 }, (_, i) => (i * targetStep) % 10);
  const opt = new optim.SGD(model.parameters(), { lr, momentum: 0.9, weightDecay: 5e-4 });
  const body = (): number => {
    opt.zeroGrad(false);
    const loss = nn.functional.crossEntropy(model.forward(x), target);
    loss.backward();
    opt.step();
    return loss.item();
  };
  return { model, x, target, opt, body, scoped: () => withTrainingStep({ model, optimizer: opt }, body) };
}
