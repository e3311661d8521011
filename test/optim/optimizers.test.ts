import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Tensor, ValueError, StateDictError } from '../../src/index.js';
import {
  SGD,
  Adam,
  AdamW,
  clipGradNorm,
  optimizerStateToTensors,
  optimizerStateFromTensors,
  pyFloat,
  type Optimizer,
} from '../../src/optim/index.js';

// Reference: test/fixtures/gen_optim.py (PyTorch 1.13, float32, single-tensor implementations).
// Tolerance: |got − want| ≤ 1e-6·max(1, max|want|) + 1e-5·|want| per element. Both sides compute in float32, so
// most values agree exactly; the slack covers torch's fused multiply-adds (one rounding where we may have two).

interface Enc {
  shape: number[];
  data: number[];
}
interface OptCase {
  optimizer: 'SGD' | 'Adam' | 'AdamW';
  options: Record<string, unknown>;
  groups: Array<Record<string, unknown> & { params: number[] }> | null;
  params: Enc[];
  steps: Array<{ setLr: number[] | null; grads: Array<Enc | null>; params: Enc[] }>;
  state: Record<string, Record<string, number | number[]>>;
}
interface ClipCase {
  maxNorm: number;
  normType: number | 'inf';
  grads: Enc[];
  totalNorm: number;
  clipped: Enc[];
}

const load = <T>(name: string): T => JSON.parse(readFileSync(new URL(`../fixtures/optim/${name}`, import.meta.url), 'utf8')) as T;
const OPT = load<Record<string, OptCase>>('optimizers.json');
const CLIP = load<Record<string, ClipCase>>('clip.json');

/** Elementwise closeness with a message naming the worst element (STYLE habit 11). */
function expectClose(what: string, got: ArrayLike<number>, want: ArrayLike<number>, rtol = 1e-5, atolScale = 1e-6): void {
  expect(got.length, `${what}: length`).toBe(want.length);
  let scale = 1;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]!));
  const atol = atolScale * scale;
  let bad = 0;
  let worst = -1;
  let worstErr = -1;
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i]! - want[i]!);
    if (!(err <= atol + rtol * Math.abs(want[i]!))) {
      bad++;
      if (!(err <= worstErr)) {
        worstErr = err;
        worst = i;
      }
    }
  }
  if (bad > 0) throw new Error(`${what}: ${bad}/${want.length} differ; worst at [${worst}]: ${got[worst]} vs ${want[worst]} (|Δ|=${worstErr})`);
}

const toTensor = (e: Enc): Tensor => new Tensor(Float32Array.from(e.data), e.shape);

function build(c: OptCase): { params: Tensor[]; opt: Optimizer<any> } {
  const params = c.params.map(toTensor);
  const input = c.groups === null ? params : c.groups.map((g) => ({ ...g, params: g.params.map((i) => params[i]!) }));
  const o = c.options as any;
  const opt = c.optimizer === 'SGD' ? new SGD(input as any, o) : c.optimizer === 'Adam' ? new Adam(input as any, o) : new AdamW(input as any, o);
  return { params, opt };
}

function runSteps(c: OptCase, params: Tensor[], opt: Optimizer<any>, from: number, to: number, name: string): void {
  for (let k = from; k < to; k++) {
    const s = c.steps[k]!;
    if (s.setLr) s.setLr.forEach((lr, gi) => (opt.paramGroups[gi]!.lr = lr));
    params.forEach((p, i) => {
      const g = s.grads[i];
      p.grad = g ? toTensor(g) : null;
    });
    opt.step();
    params.forEach((p, i) => expectClose(`${name} step ${k} param ${i}`, p.data, s.params[i]!.data));
  }
}

describe('optimizers match torch.optim trajectories', () => {
  for (const [name, c] of Object.entries(OPT)) {
    it(`${name}: ${c.optimizer} ${JSON.stringify(c.options)}${c.groups ? ' groups ' + JSON.stringify(c.groups) : ''}`, () => {
      const { params, opt } = build(c);
      runSteps(c, params, opt, 0, c.steps.length, name);
      // final optimizer state (torch keys) equals torch's; torch keeps {momentum_buffer: None} entries for plain
      // SGD, which the fixture writes as {} and we do not create at all
      const sd = opt.stateDict();
      const torchKeys = Object.keys(c.state).filter((k) => Object.keys(c.state[k]!).length > 0);
      expect(Object.keys(sd.state).sort()).toEqual(torchKeys.sort());
      for (const idx of torchKeys) {
        const st = c.state[idx]!;
        expect(Object.keys(sd.state[idx]!).sort(), `state ${idx} keys`).toEqual(Object.keys(st).sort());
        for (const [k, v] of Object.entries(st)) {
          const got = sd.state[idx]![k]!;
          if (typeof v === 'number') expect(got, `state ${idx}.${k}`).toBe(v);
          else expectClose(`${name} state ${idx}.${k}`, got as Float32Array, v);
        }
      }
    });
  }

  it('sgd_param_groups: the groups keep their own hyperparameters (no weight decay in group 1)', () => {
    const { opt } = build(OPT.sgd_param_groups!);
    expect(opt.paramGroups.map((g) => [g.lr, g.weightDecay, g.momentum])).toEqual([
      [0.1, 0.05, 0.9],
      [0.2, 0, 0.9],
    ]);
  });

  it('a parameter whose grad is null is not touched and gets no state', () => {
    const p = new Tensor(Float32Array.from([1, 2, 3]), [3]);
    const q = new Tensor(Float32Array.from([4, 5]), [2]);
    const opt = new Adam([p, q], { lr: 0.1 });
    q.grad = new Tensor(Float32Array.from([1, -1]), [2]);
    opt.step();
    expect(Array.from(p.data)).toEqual([1, 2, 3]);
    expect(opt.state.has(p)).toBe(false);
    // Adam's first step moves each coordinate by lr·sign(g) (m̂/sqrt(v̂) = g/|g| up to eps)
    expectClose('q after one Adam step', q.data, [3.9, 5.1]);
  });
});

describe('zeroGrad', () => {
  it('setToNone=true (default, PyTorch 2.x) sets grads to null; false fills zeros in place', () => {
    const p = new Tensor(Float32Array.from([1, 2]), [2]);
    const opt = new SGD([p], { lr: 0.1 });
    const g = new Tensor(Float32Array.from([3, 4]), [2]);
    p.grad = g;
    opt.zeroGrad(false);
    expect(p.grad).toBe(g);
    expect(Array.from(g.data)).toEqual([0, 0]);
    opt.zeroGrad();
    expect(p.grad).toBeNull();
  });

  it('setToNone=false gives a parameter in shared memory a zero gradient in shared memory, then zeroes it in place', () => {
    const p = new Tensor(new Float32Array(new SharedArrayBuffer(8)), [2]);
    const opt = new SGD([p], { lr: 0.1 });
    p.grad = new Tensor(Float32Array.from([3, 4]), [2]);
    opt.zeroGrad(false);
    const g = p.grad;
    expect(g.data.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(g.shape).toEqual([2]);
    expect(Array.from(g.data)).toEqual([0, 0]);
    g.data.set([5, 6]);
    opt.zeroGrad(false);
    expect(p.grad).toBe(g);
    expect(Array.from(g.data)).toEqual([0, 0]);
  });

  it('setToNone=false zeroes large shared gradients whole: odd lengths, views at 4-byte offsets, NaN and −0 to +0', () => {
    const sab = new SharedArrayBuffer(4 * 6001);
    // 3001 floats at offset 0 (8-byte aligned, odd length) and 2999 at byte 3001·4 + 4 (not 8-byte aligned)
    const views = [new Float32Array(sab, 0, 3001), new Float32Array(sab, 3002 * 4, 2999)];
    const params = views.map((v) => new Tensor(new Float32Array(new SharedArrayBuffer(v.length * 4)), [v.length]));
    const opt = new SGD(params, { lr: 0.1 });
    views.forEach((v, i) => {
      for (let j = 0; j < v.length; j++) v[j] = j % 3 === 0 ? -0 : j % 3 === 1 ? NaN : j + 1;
      params[i]!.grad = new Tensor(v, [v.length]);
    });
    const all = new Float32Array(sab);
    all[3001] = 42; // between the two views: not a gradient
    opt.zeroGrad(false);
    views.forEach((v, i) => {
      expect(params[i]!.grad!.data).toBe(v);
      for (let j = 0; j < v.length; j++) if (!Object.is(v[j], 0)) throw new Error(`grad ${i}[${j}] = ${v[j]}, not +0`);
    });
    expect(all[3001]).toBe(42);
  });
});

describe('invalid settings throw ValueError with PyTorch text', () => {
  const p = () => [new Tensor(new Float32Array(2), [2])];
  const cases: Array<[string, () => unknown, string]> = [
    ['SGD lr -0.1', () => new SGD(p(), { lr: -0.1 }), 'Invalid learning rate: -0.1'],
    ['SGD momentum -1', () => new SGD(p(), { lr: 0.1, momentum: -1 }), 'Invalid momentum value: -1'],
    ['SGD weightDecay -1', () => new SGD(p(), { lr: 0.1, weightDecay: -1 }), 'Invalid weight_decay value: -1'],
    ['SGD nesterov without momentum', () => new SGD(p(), { lr: 0.1, nesterov: true }), 'Nesterov momentum requires a momentum and zero dampening'],
    ['SGD nesterov with dampening', () => new SGD(p(), { lr: 0.1, momentum: 0.9, dampening: 0.1, nesterov: true }), 'Nesterov momentum requires a momentum and zero dampening'],
    ['SGD group lr -0.1', () => new SGD([{ params: p(), lr: -0.1 }], { lr: 0.1 }), 'Invalid learning rate: -0.1'],
    ['Adam lr -0.1', () => new Adam(p(), { lr: -0.1 }), 'Invalid learning rate: -0.1'],
    ['Adam eps -1e-8', () => new Adam(p(), { eps: -1e-8 }), 'Invalid epsilon value: -1e-08'],
    ['Adam beta0 1.0', () => new Adam(p(), { betas: [1, 0.999] }), 'Invalid beta parameter at index 0: 1.0'],
    ['Adam beta1 -0.5', () => new Adam(p(), { betas: [0.9, -0.5] }), 'Invalid beta parameter at index 1: -0.5'],
    ['Adam weightDecay -1', () => new Adam(p(), { weightDecay: -1 }), 'Invalid weight_decay value: -1'],
    ['AdamW beta0 1.0', () => new AdamW(p(), { betas: [1, 0.999] }), 'Invalid beta parameter at index 0: 1.0'],
    ['AdamW eps -1', () => new AdamW(p(), { eps: -1 }), 'Invalid epsilon value: -1.0'],
    ['empty params', () => new SGD([], { lr: 0.1 }), 'optimizer got an empty parameter list'],
  ];
  for (const [name, fn, msg] of cases) {
    it(name, () => {
      let err: unknown;
      try {
        fn();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ValueError);
      expect((err as Error).message).toContain(msg);
    });
  }
  it('a parameter in two groups', () => {
    const t = p();
    expect(() => new SGD([{ params: t }, { params: t }], { lr: 0.1 })).toThrow('some parameters appear in more than one parameter group');
  });
  it('pyFloat prints like Python repr', () => {
    expect([1, -1, 0.1, 1e-8, -1e-8, 1e-5, 1.5e-4, 123456.5, 1e16, 2.5e-10].map(pyFloat)).toEqual([
      '1.0', '-1.0', '0.1', '1e-08', '-1e-08', '1e-05', '0.00015', '123456.5', '1e+16', '2.5e-10',
    ]);
  });
});

describe('stateDict / loadStateDict / checkpoint tensors', () => {
  for (const name of ['sgd_nesterov_wd_lr_change', 'adam_amsgrad', 'adamw_param_groups', 'sgd_param_groups']) {
    it(`${name}: resuming from step 3 (via tensors + meta) continues the torch trajectory`, () => {
      const c = OPT[name]!;
      const a = build(c);
      runSteps(c, a.params, a.opt, 0, 3, name);
      const { tensors, meta } = optimizerStateToTensors(a.opt);
      for (const [k, t] of Object.entries(tensors)) {
        expect(k).toMatch(/^optimizer\.state\.\d+\.(momentum_buffer|exp_avg|exp_avg_sq|max_exp_avg_sq)$/);
        expect(t).toBeInstanceOf(Tensor);
      }
      JSON.parse(meta); // plain JSON
      // a fresh optimizer on copies of the current parameters, with different hyperparameters that the load restores
      const b = build(c);
      b.params.forEach((p, i) => p.data.set(a.params[i]!.data));
      for (const g of b.opt.paramGroups) g.lr = 123;
      optimizerStateFromTensors(b.opt, tensors, meta);
      expect(b.opt.paramGroups.map((g) => g.lr)).toEqual(a.opt.paramGroups.map((g) => g.lr));
      runSteps(c, b.params, b.opt, 3, c.steps.length, `${name} resumed`);
    });
  }

  it('names momentum buffers optimizer.state.<index>.momentum_buffer and keeps step counts in meta', () => {
    const p0 = new Tensor(Float32Array.from([1, 2, 3, 4]), [2, 2]);
    const p1 = new Tensor(Float32Array.from([5]), [1]);
    const sgd = new SGD([p0, p1], { lr: 0.5, momentum: 0.9 });
    p1.grad = new Tensor(Float32Array.from([2]), [1]);
    sgd.step();
    const s = optimizerStateToTensors(sgd);
    expect(Object.keys(s.tensors)).toEqual(['optimizer.state.1.momentum_buffer']);
    expect(s.tensors['optimizer.state.1.momentum_buffer']!.shape).toEqual([1]);
    expect(Array.from(s.tensors['optimizer.state.1.momentum_buffer']!.data)).toEqual([2]);
    const adam = new Adam([p0], { lr: 0.1 });
    p0.grad = new Tensor(Float32Array.from([1, 1, 1, 1]), [2, 2]);
    adam.step();
    adam.step();
    const m = JSON.parse(optimizerStateToTensors(adam, 'opt/').meta);
    expect(m.kind).toBe('Adam');
    expect(m.state).toEqual({ '0': { step: 2 } });
    expect(m.paramGroups).toEqual([{ lr: 0.1, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, amsgrad: false, maximize: false, params: [0] }]);
    expect(Object.keys(optimizerStateToTensors(adam, 'opt/').tensors).sort()).toEqual(['opt/state.0.exp_avg', 'opt/state.0.exp_avg_sq']);
  });

  it('stateDict returns copies; loadStateDict rejects mismatches with StateDictError', () => {
    const p = new Tensor(Float32Array.from([1, 2]), [2]);
    const sgd = new SGD([p], { lr: 0.1, momentum: 0.9 });
    p.grad = new Tensor(Float32Array.from([1, 1]), [2]);
    sgd.step();
    const sd = sgd.stateDict();
    (sd.state['0']!.momentum_buffer as Float32Array)[0] = 99;
    expect((sgd.state.get(p)!.momentum_buffer as Float32Array)[0]).toBe(1);
    const other = new SGD([new Tensor(new Float32Array(3), [3])], { lr: 0.1, momentum: 0.9 });
    expect(() => other.loadStateDict(sgd.stateDict())).toThrow(StateDictError);
    expect(() => other.loadStateDict(sgd.stateDict())).toThrow('state 0.momentum_buffer has 2 elements but parameter 0 has 3');
    const two = new SGD([{ params: [p] }, { params: [new Tensor(new Float32Array(1), [1])] }], { lr: 0.1 });
    expect(() => two.loadStateDict(sgd.stateDict())).toThrow('loaded state dict has a different number of parameter groups');
    expect(() => new Adam([p]).loadStateDict(sgd.stateDict())).toThrow('state dict is for SGD, this optimizer is Adam');
    expect(() => optimizerStateFromTensors(sgd, {}, '{bad')).toThrow(StateDictError);
  });
});

describe('clipGradNorm matches torch.nn.utils.clip_grad_norm_', () => {
  for (const [name, c] of Object.entries(CLIP)) {
    it(`${name}: maxNorm ${c.maxNorm} normType ${c.normType}`, () => {
      const params = c.grads.map((g) => {
        const p = new Tensor(new Float32Array(g.data.length), g.shape);
        p.grad = toTensor(g);
        return p;
      });
      const total = clipGradNorm(params, c.maxNorm, c.normType === 'inf' ? Infinity : c.normType);
      expect(Math.abs(total - c.totalNorm)).toBeLessThanOrEqual(1e-6 * Math.abs(c.totalNorm));
      params.forEach((p, i) => expectClose(`${name} grad ${i}`, p.grad!.data, c.clipped[i]!.data));
    });
  }
  it('hand-computed: grads [3, 4] with maxNorm 1 become [0.6, 0.8]·(1/(5+1e-6)·5); null grads ignored', () => {
    const a = new Tensor(new Float32Array(2), [2]);
    a.grad = new Tensor(Float32Array.from([3, 4]), [2]);
    const b = new Tensor(new Float32Array(2), [2]);
    expect(clipGradNorm([a, b], 1)).toBe(5);
    expectClose('clipped', a.grad.data, [0.6, 0.8]);
    expect(b.grad).toBeNull();
    expect(clipGradNorm([b], 1)).toBe(0);
  });
});
