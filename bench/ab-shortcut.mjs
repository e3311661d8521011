// Two builds' option-A shortcut kernels (forward, and the overwriting backward) on ResNet-20's stride-2 shortcuts,
// x, y, dx and dy in the resident memory (as inside withTrainingStep), alternately in one process, one thread:
//   node bench/ab-shortcut.mjs OLD_DIST NEW_DIST [reps]
// Prints per shape the minimum process CPU ms of one call, OLD → NEW.
import { loadBuilds } from './lib.mjs';

const [, , oldDist, newDist, reps = '60'] = process.argv;
if (!oldDist || !newDist) {
  console.error('usage: node bench/ab-shortcut.mjs OLD_DIST NEW_DIST [reps]');
  process.exit(2);
}
const builds = (await loadBuilds([oldDist, newDist], { sc: 'kernels/shortcut.js', optim: 'kernels/wasm/optim.js' })).map((b) => ({ ...b.sc, ...b.optim }));
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const P = (n, c, h, oc, s) => ({ n, c, h, w: h, oc, oh: Math.ceil(h / s), ow: Math.ceil(h / s), stride: s, before: Math.floor((oc - c) / 2) });
const SHAPES = [['Fashion-MNIST 16→32 /2 @28 b128', P(128, 16, 28, 32, 2)], ['Fashion-MNIST 32→64 /2 @14', P(128, 32, 14, 64, 2)],
  ['CIFAR 16→32 /2 @32 b32', P(32, 16, 32, 32, 2)], ['CIFAR 32→64 /2 @16', P(32, 32, 16, 64, 2)]];
for (const [name, p] of SHAPES) {
  const xl = p.n * p.c * p.h * p.w, yl = p.n * p.oc * p.oh * p.ow;
  const st = builds.map((b) => ({ b, x: b.residentAlloc(xl).fill(1), y: b.residentAlloc(yl), dx: b.residentAlloc(xl), dy: b.residentAlloc(yl).fill(2), f: Infinity, bw: Infinity }));
  for (let r = 0; r < Number(reps); r++) {
    for (const s of r % 2 ? [st[1], st[0]] : st) {
      let t = cpu();
      s.b.shortcutAForward(s.y, s.x, p);
      s.f = Math.min(s.f, cpu() - t);
      t = cpu();
      s.b.shortcutABackward(s.dx, s.dy, p, true);
      s.bw = Math.min(s.bw, cpu() - t);
    }
  }
  console.log(`${name}: forward ${st[0].f.toFixed(3)} → ${st[1].f.toFixed(3)}, backward (overwrite) ${st[0].bw.toFixed(3)} → ${st[1].bw.toFixed(3)} ms CPU min`);
}
