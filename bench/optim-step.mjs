// One build's SGD step alone: ResNet-18 (10 classes) after three training steps at 8×3×32×32 (withTrainingStep,
// zeroGrad(false); SGD with momentum 0.9 or the third argument, or `adam` / `adamw`; weight decay 1e-4), then 40 calls
// of optimizer.step() (lr 1e-6, so the weights barely move). Prints the median and min wall and process CPU ms per
// call. Run it for two builds alternately:
//   for d in /tmp/old/dist dist /tmp/old/dist dist; do node bench/optim-step.mjs $d 2 [momentum|adam|adamw]; done
import { resolve } from 'node:path';
import { cpuMs } from './lib.mjs';

const [, , distArg = 'dist', th = '1', mom = '0.9'] = process.argv;
const dist = resolve(distArg);
process.env.RESNET_TS_THREADS = th;
const lib = await import(`${dist}/index.js`);
lib.setNumThreads(Number(th));
lib.manualSeed(0);
const model = lib.models.resnet18({ numClasses: 10 }).train();
const x = lib.randn([8, 3, 32, 32]);
const target = Array.from({ length: 8 }, (_, i) => (i * 7) % 10);
const opt = mom === 'adam' || mom === 'adamw'
  ? new lib.optim[mom === 'adam' ? 'Adam' : 'AdamW'](model.parameters(), { lr: 1e-6, weightDecay: 1e-4 })
  : new lib.optim.SGD(model.parameters(), { lr: 1e-6, momentum: Number(mom), weightDecay: 1e-4 });
for (let i = 0; i < 3; i++) {
  lib.withTrainingStep({ model, optimizer: opt }, () => {
    opt.zeroGrad(false);
    const loss = lib.nn.functional.crossEntropy(model.forward(x), target);
    loss.backward();
    opt.step();
    return loss.item();
  });
}
const wall = [], used = [];
for (let i = 0; i < 40; i++) {
  const c0 = cpuMs(), w0 = performance.now();
  opt.step();
  wall.push(performance.now() - w0);
  used.push(cpuMs() - c0);
}
const med = (a) => a.slice().sort((p, q) => p - q)[a.length >> 1];
const f = (v) => v.toFixed(2);
console.log(`${distArg} · ${th} thread(s) · ${mom} · optimizer.step() ms: wall median ${f(med(wall))} min ${f(Math.min(...wall))} · CPU median ${f(med(used))} min ${f(Math.min(...used))}`);
lib.setNumThreads(1);
