import { describe, expect, it } from 'vitest';
import { withConfig } from '../../src/config.js';
import { adamUpdateMany, isResident, residentBuffer, sgdUpdate, sgdUpdateMany } from '../../src/kernels/optim.js';
import { hasSimd128, type KernelBackend } from '../../src/kernels/wasm/features.js';

// The SGD momentum update on both kernel backends, bit for bit against PyTorch's float32 ops written out per element
// (torch.optim.SGD, single-tensor path: d = g.add(x, alpha=wd); buf.mul_(mu).add_(d, alpha=1 − dampening);
// x.add_(buf, alpha=−lr), each op rounded to float32; test/optim checks the whole optimizer against PyTorch).
// Lengths with a tail after the 4-wide vectors, past one wasm block (16384) and one work unit (65536); values over
// 60 binary orders of magnitude, subnormals, ±0, ±Inf and NaN.

const fr = Math.fround;

function values(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const rnd = (): number => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (rnd() - 0.5) * 2 ** Math.floor(rnd() * 60 - 30);
  const specials = [0, -0, Infinity, -Infinity, NaN, 1e-45, -3e-39, 3.4e38];
  for (let k = 0; k < specials.length && k * 37 < n; k++) a[(k * 37 + seed) % n] = specials[k]!;
  return a;
}

/** PyTorch's float32 ops, one element at a time. */
function reference(x: Float32Array, b: Float32Array, g: Float32Array, lr: number, mu: number, dampening: number, wd: number): void {
  const negLr = fr(-lr), m = fr(mu), damp = fr(1 - dampening), w = fr(wd);
  for (let i = 0; i < x.length; i++) {
    const d = w === 0 ? g[i]! : fr(g[i]! + w * x[i]!);
    b[i] = fr(fr(b[i]! * m) + damp * d);
    x[i] = fr(x[i]! + negLr * b[i]!);
  }
}

const sameBits = (a: Float32Array, b: Float32Array, what: string): void => {
  let bad = -1;
  for (let i = 0; i < a.length && bad < 0; i++) if (!Object.is(a[i], b[i]) && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) bad = i;
  expect(bad, bad < 0 ? '' : `${what}: first difference at ${bad}: ${a[bad]} vs ${b[bad]} (of ${a.length})`).toBe(-1);
};

const backends: KernelBackend[] = hasSimd128 ? ['js', 'simd'] : ['js'];

describe('sgdUpdate (momentum, after the first step)', () => {
  for (const backend of backends) {
    for (const [n, dampening, wd] of [[1, 0, 5e-4], [7, 0.1, 0], [16389, 0, 1e-4], [131075, 0.25, 5e-4], [65536, 0, 0]] as const) {
      it(`${backend}: n=${n} dampening=${dampening} weight decay=${wd}`, () => {
        const x0 = values(n, 1), b0 = values(n, 2), g = values(n, 3);
        const [xr, br] = [x0.slice(), b0.slice()];
        reference(xr, br, g, 0.01, 0.9, dampening, wd);
        const [x, b] = [x0.slice(), b0.slice()];
        withConfig({ kernelBackend: backend }, () =>
          sgdUpdate(x, b, g, { negLr: fr(-0.01), wd: fr(wd), mu: fr(0.9), damp: fr(1 - dampening), nesterov: false, maximize: false, first: false }),
        );
        sameBits(x, xr, 'parameter');
        sameBits(b, br, 'momentum buffer');
      });
    }
  }
});

describe('sgdUpdateMany (several parameters as one task)', () => {
  for (const backend of backends) {
    for (const first of [false, true]) {
      it(`${backend}${first ? ', first step' : ''}: lengths 1, 7, 65536, 131075, 16389, 3; the same bits as one update per parameter`, () => {
        const lens = [1, 7, 65536, 131075, 16389, 3];
        const q = { negLr: fr(-0.01), wd: fr(5e-4), mu: fr(0.9), damp: fr(0.75), nesterov: false, maximize: false, first };
        const xs = lens.map((n, k) => values(n, 10 + k)), bs = lens.map((n, k) => values(n, 20 + k)), gs = lens.map((n, k) => values(n, 30 + k));
        const [xr, br] = [xs.map((a) => a.slice()), bs.map((a) => a.slice())];
        withConfig({ kernelBackend: backend }, () => {
          lens.forEach((_, k) => sgdUpdate(xr[k]!, br[k]!, gs[k]!, q));
          sgdUpdateMany(xs, bs, gs, q);
        });
        lens.forEach((n, k) => {
          sameBits(xs[k]!, xr[k]!, `parameter ${k} (${n})`);
          sameBits(bs[k]!, br[k]!, `momentum buffer ${k} (${n})`);
        });
        // and against PyTorch's ops written out (past the first step)
        if (!first) {
          const x0 = values(131075, 13), b0 = values(131075, 23), [x, b] = [x0.slice(), b0.slice()];
          reference(x, b, gs[3]!, 0.01, 0.9, 0.25, 5e-4);
          sameBits(xs[3]!, x, 'parameter 3 vs reference');
          sameBits(bs[3]!, b, 'momentum buffer 3 vs reference');
        }
      });
    }
  }
});

describe('sgdUpdateMany on the resident memory (momentum buffers and some gradients in shared wasm memory)', () => {
  it.runIf(hasSimd128 && typeof SharedArrayBuffer === 'function')('simd: lengths 1, 7, 65536, 131075, 16389, 3, allocated back to back: the same bits as ordinary arrays; the memory after them untouched', () => {
    withConfig({ kernelBackend: 'simd' }, () => {
      const lens = [1, 7, 65536, 131075, 16389, 3];
      const q = { negLr: fr(-0.01), wd: fr(5e-4), mu: fr(0.9), damp: fr(0.75), nesterov: false, maximize: false, first: false };
      const xs = lens.map((n, k) => values(n, 40 + k)), b0 = lens.map((n, k) => values(n, 50 + k)), g0 = lens.map((n, k) => values(n, 60 + k));
      const resident = (src: Float32Array): Float32Array => {
        const a = residentBuffer(src.length);
        expect(a, 'the resident memory exists on the simd backend').not.toBeNull();
        a!.set(src);
        return a!;
      };
      // the gradients of parameters 0, 2 and 4 resident; the others in ordinary memory (copied through a slot)
      const bs = b0.map(resident), gs = g0.map((g, k) => (k % 2 === 0 ? resident(g) : g.slice()));
      const guard = resident(values(9, 70)), guard0 = guard.slice();
      expect(bs.every(isResident) && isResident(gs[0]!) && !isResident(gs[1]!)).toBe(true);
      const [xr, br] = [xs.map((a) => a.slice()), b0.map((a) => a.slice())];
      lens.forEach((_, k) => sgdUpdate(xr[k]!, br[k]!, g0[k]!, q));
      sgdUpdateMany(xs, bs, gs, q);
      lens.forEach((n, k) => {
        sameBits(xs[k]!, xr[k]!, `parameter ${k} (${n})`);
        sameBits(bs[k]!, br[k]!, `momentum buffer ${k} (${n})`);
        sameBits(gs[k]!, g0[k]!, `gradient ${k} (${n}), unchanged`);
      });
      sameBits(guard, guard0, 'the buffer allocated after them');
    });
  });

  it.runIf(hasSimd128 && typeof SharedArrayBuffer === 'function')('simd: parameters resident too (lengths 4, 65536, 131072, 16388 in place; 7, 131075 through a slot): the same bits, no copies for the in-place ones, neighbours untouched', () => {
    withConfig({ kernelBackend: 'simd' }, () => {
      const lens = [4, 65536, 131072, 16388, 7, 131075];
      const q = { negLr: fr(-0.01), wd: fr(5e-4), mu: fr(0.9), damp: fr(1), nesterov: false, maximize: false, first: false };
      const x0 = lens.map((n, k) => values(n, 80 + k)), b0 = lens.map((n, k) => values(n, 90 + k)), g0 = lens.map((n, k) => values(n, 100 + k));
      const guards: Float32Array[] = [];
      const resident = (src: Float32Array): Float32Array => {
        const a = residentBuffer(src.length)!;
        a.set(src);
        guards.push(residentBuffer(4)!.fill(-3)); // a neighbour right after it
        return a;
      };
      const xs = x0.map(resident), bs = b0.map(resident), gs = g0.map(resident);
      const [xr, br] = [x0.map((a) => a.slice()), b0.map((a) => a.slice())];
      lens.forEach((_, k) => sgdUpdate(xr[k]!, br[k]!, g0[k]!, q));
      const proto = Object.getPrototypeOf(Float32Array.prototype) as { set: (src: ArrayLike<number>, at?: number) => void };
      const set = proto.set;
      let copied = 0;
      proto.set = function (this: Float32Array, src: ArrayLike<number>, at?: number) {
        copied += src.length;
        return set.call(this, src, at);
      };
      try {
        sgdUpdateMany(xs.slice(0, 4), bs.slice(0, 4), gs.slice(0, 4), q);
      } finally {
        proto.set = set;
      }
      expect(copied, 'values copied by an update whose arrays are all resident').toBe(0);
      sgdUpdateMany(xs.slice(4), bs.slice(4), gs.slice(4), q);
      lens.forEach((n, k) => {
        sameBits(xs[k]!, xr[k]!, `parameter ${k} (${n})`);
        sameBits(bs[k]!, br[k]!, `momentum buffer ${k} (${n})`);
      });
      expect(guards.every((g) => g.every((v) => v === -3)), 'the regions after each array untouched').toBe(true);
    });
  });
});

/** PyTorch's float32 ops without momentum, one element at a time: d = g + wd·x; x = x − lr·d. */
function referencePlain(x: Float32Array, g: Float32Array, lr: number, wd: number, maximize = false): void {
  const negLr = fr(-lr), w = fr(wd);
  for (let i = 0; i < x.length; i++) {
    const gi = maximize ? -g[i]! : g[i]!;
    const d = w === 0 ? gi : fr(gi + w * x[i]!);
    x[i] = fr(x[i]! + negLr * d);
  }
}

describe('sgdUpdateMany without momentum (no buffers)', () => {
  const lens = [1, 7, 65536, 131075, 16389, 3];
  for (const backend of backends) {
    for (const [wd, maximize] of [[5e-4, false], [0, false], [1e-4, true]] as const) {
      it(`${backend}: weight decay ${wd}${maximize ? ', maximize' : ''}, lengths ${lens.join(', ')}: PyTorch's ops bit for bit`, () => {
        const q = { negLr: fr(-0.01), wd: fr(wd), mu: 0, damp: 1, nesterov: false, maximize, first: false };
        const xs = lens.map((n, k) => values(n, 110 + k)), gs = lens.map((n, k) => values(n, 120 + k));
        const xr = xs.map((a) => a.slice());
        lens.forEach((_, k) => referencePlain(xr[k]!, gs[k]!, 0.01, wd, maximize));
        withConfig({ kernelBackend: backend }, () => sgdUpdateMany(xs, lens.map(() => null), gs, q));
        lens.forEach((n, k) => sameBits(xs[k]!, xr[k]!, `parameter ${k} (${n})`));
      });
    }
  }

  it.runIf(hasSimd128 && typeof SharedArrayBuffer === 'function')('simd, on the resident memory (parameters and gradients in place, or through a slot): the same bits; gradients and neighbours untouched', () => {
    withConfig({ kernelBackend: 'simd' }, () => {
      const lens = [4, 65536, 131072, 16388, 7, 131075];
      const q = { negLr: fr(-0.01), wd: fr(5e-4), mu: 0, damp: 1, nesterov: false, maximize: false, first: false };
      const x0 = lens.map((n, k) => values(n, 130 + k)), g0 = lens.map((n, k) => values(n, 140 + k));
      const resident = (src: Float32Array): Float32Array => {
        const a = residentBuffer(src.length)!;
        a.set(src);
        return a;
      };
      // parameters 0–4 resident (4 and 131075 are not multiples of 4: through a slot), gradients of odd k ordinary
      const xs = x0.map((x, k) => (k < 5 ? resident(x) : x.slice())), gs = g0.map((g, k) => (k % 2 === 0 ? resident(g) : g.slice()));
      const guard = resident(values(9, 150)), guard0 = guard.slice();
      expect(isResident(xs[0]!) && !isResident(xs[5]!) && isResident(gs[0]!) && !isResident(gs[1]!)).toBe(true);
      const xr = x0.map((a) => a.slice());
      lens.forEach((_, k) => referencePlain(xr[k]!, g0[k]!, 0.01, 5e-4));
      sgdUpdateMany(xs, lens.map(() => null), gs, q);
      lens.forEach((n, k) => {
        sameBits(xs[k]!, xr[k]!, `parameter ${k} (${n})`);
        sameBits(gs[k]!, g0[k]!, `gradient ${k} (${n}), unchanged`);
      });
      sameBits(guard, guard0, 'the buffer allocated after them');
    });
  });
});

/**
 * PyTorch's Adam/AdamW float32 ops (single-tensor path), one element at a time. mode: 0 no weight decay, 1 added to
 * the gradient (Adam), 2 decoupled (AdamW).
 */
function referenceAdam(x: Float32Array, m: Float32Array, v: Float32Array, vmax: Float32Array | null, g: Float32Array,
  o: { lr: number; b1: number; b2: number; eps: number; wd: number; mode: number; t: number; maximize: boolean }): void {
  const negStep = fr(-(o.lr / (1 - o.b1 ** o.t))), bc2 = fr(Math.sqrt(1 - o.b2 ** o.t));
  for (let i = 0; i < x.length; i++) {
    let gi = o.maximize ? -g[i]! : g[i]!;
    if (o.mode === 2) x[i] = fr(x[i]! * fr(1 - o.lr * o.wd)); // param.mul_(1 - lr·wd)
    if (o.mode === 1) gi = fr(gi + fr(o.wd) * x[i]!); // grad.add(param, alpha=wd)
    m[i] = fr(fr(m[i]! * fr(o.b1)) + fr(1 - o.b1) * gi); // exp_avg.mul_(b1).add_(grad, alpha=1 - b1)
    v[i] = fr(fr(v[i]! * fr(o.b2)) + fr(fr(fr(1 - o.b2) * gi) * gi)); // exp_avg_sq.mul_(b2).addcmul_(grad, grad, value=1 - b2)
    let vi = v[i]!;
    if (vmax !== null) vi = vmax[i] = Math.max(vmax[i]!, vi);
    const denom = fr(fr(fr(Math.sqrt(vi)) / bc2) + fr(o.eps));
    x[i] = fr(x[i]! + fr(fr(negStep * m[i]!) / denom)); // param.addcdiv_(exp_avg, denom, value=-step_size)
  }
}

describe('adamUpdateMany (Adam and AdamW, several parameters as one task)', () => {
  const lens = [1, 7, 65536, 131075, 16389, 3];
  const cases = [
    { mode: 0, amsgrad: false, maximize: false }, { mode: 1, amsgrad: false, maximize: false }, { mode: 2, amsgrad: false, maximize: false },
    { mode: 1, amsgrad: true, maximize: false }, { mode: 2, amsgrad: false, maximize: true },
  ];
  const run = (xs: Float32Array[], ms: Float32Array[], vs: Float32Array[], ws: (Float32Array | null)[], gs: Float32Array[], c: typeof cases[number], t: number): void => {
    const lr = 0.01, b1 = 0.9, b2 = 0.999, wd = 0.01;
    const q = { b1: fr(b1), c1: fr(1 - b1), b2: fr(b2), c2: fr(1 - b2), eps: fr(1e-8), mode: c.mode, wd: fr(wd), decay: fr(1 - lr * wd), amsgrad: c.amsgrad, maximize: c.maximize };
    const step = { negStepSize: fr(-(lr / (1 - b1 ** t))), bc2Sqrt: fr(Math.sqrt(1 - b2 ** t)) };
    adamUpdateMany(xs, ms, vs, ws, gs, xs.map(() => step), q);
  };
  for (const backend of backends) {
    for (const c of cases) {
      it(`${backend}: mode ${c.mode}${c.amsgrad ? ', amsgrad' : ''}${c.maximize ? ', maximize' : ''}, lengths ${lens.join(', ')}, two steps: PyTorch's ops bit for bit`, () => {
        const xs = lens.map((n, k) => values(n, 160 + k)), gs = lens.map((n, k) => values(n, 170 + k));
        // v ≥ 0 as Adam keeps it (squares); m anything
        const ms = lens.map((n, k) => values(n, 180 + k)), vs = lens.map((n, k) => values(n, 190 + k).map(Math.abs));
        const ws = lens.map((n, k) => (c.amsgrad ? values(n, 200 + k).map(Math.abs) : null));
        const xr = xs.map((b) => b.slice()), mr = ms.map((b) => b.slice()), vr = vs.map((b) => b.slice()), wr = ws.map((w) => w?.slice() ?? null);
        for (const t of [1, 2]) {
          lens.forEach((_, k) => referenceAdam(xr[k]!, mr[k]!, vr[k]!, wr[k] ?? null, gs[k]!, { lr: 0.01, b1: 0.9, b2: 0.999, eps: 1e-8, wd: 0.01, mode: c.mode, t, maximize: c.maximize }));
          withConfig({ kernelBackend: backend }, () => run(xs, ms, vs, ws, gs, c, t));
        }
        lens.forEach((n, k) => {
          sameBits(xs[k]!, xr[k]!, `parameter ${k} (${n})`);
          sameBits(ms[k]!, mr[k]!, `exp_avg ${k} (${n})`);
          sameBits(vs[k]!, vr[k]!, `exp_avg_sq ${k} (${n})`);
          if (c.amsgrad) sameBits(ws[k]!, wr[k]!, `max_exp_avg_sq ${k} (${n})`);
        });
      });
    }
  }

  it.runIf(hasSimd128 && typeof SharedArrayBuffer === 'function')('simd, on the resident memory (in place where x, m, v and g all are; else through wasm memory): the same bits; neighbours untouched', () => {
    withConfig({ kernelBackend: 'simd' }, () => {
      const lens2 = [4, 65536, 131072, 16388, 7, 131075];
      const resident = (src: Float32Array): Float32Array => {
        const a = residentBuffer(src.length)!;
        a.set(src);
        return a;
      };
      for (const c of cases.filter((k) => !k.amsgrad && !k.maximize)) {
        const x0 = lens2.map((n, k) => values(n, 210 + k)), g0 = lens2.map((n, k) => values(n, 220 + k));
        const m0 = lens2.map((n, k) => values(n, 230 + k)), v0 = lens2.map((n, k) => values(n, 240 + k).map(Math.abs));
        // all resident for k < 4 (in place); parameter 4 (length 7) resident but not a multiple of 4; parameter 5 ordinary
        const xs = x0.map((a, k) => (k < 5 ? resident(a) : a.slice())), gs = g0.map((a, k) => (k < 5 ? resident(a) : a.slice()));
        const ms = m0.map(resident), vs = v0.map(resident);
        const guard = resident(values(9, 250)), guard0 = guard.slice();
        const xr = x0.map((b) => b.slice()), mr = m0.map((b) => b.slice()), vr = v0.map((b) => b.slice());
        lens2.forEach((_, k) => referenceAdam(xr[k]!, mr[k]!, vr[k]!, null, g0[k]!, { lr: 0.01, b1: 0.9, b2: 0.999, eps: 1e-8, wd: 0.01, mode: c.mode, t: 3, maximize: false }));
        run(xs, ms, vs, lens2.map(() => null), gs, c, 3);
        lens2.forEach((n, k) => {
          sameBits(xs[k]!, xr[k]!, `mode ${c.mode}: parameter ${k} (${n})`);
          sameBits(ms[k]!, mr[k]!, `mode ${c.mode}: exp_avg ${k} (${n})`);
          sameBits(vs[k]!, vr[k]!, `mode ${c.mode}: exp_avg_sq ${k} (${n})`);
          sameBits(gs[k]!, g0[k]!, `mode ${c.mode}: gradient ${k} (${n}), unchanged`);
        });
        sameBits(guard, guard0, `mode ${c.mode}: the buffer allocated after them`);
      }
    });
  });
});
