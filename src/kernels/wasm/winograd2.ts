// Winograd F(2×2, 3×3) for few channels, transforms and GEMMs fused in one WebAssembly SIMD function (emitted from
// this file when the library loads; see encoder.ts), over the memory of the thread's SIMD GEMM (sgemm.ts).
//
// With few channels (CIFAR's 16→16) the 16×16 products per Winograd point are small next to the transforms, and
// three passes over large V and M arrays cost more than the multiply-adds. Here a group of tile rows is transformed
// into a V that stays in L1, its GEMMs run at once, and each 4-channel × 8-tile result goes through the output
// transform straight from L1 into the staged output rows. Lanes hold 4 horizontally adjacent tiles (a "quad").
//
//   V = Bᵀ d B (float32), Bᵀ = (1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1), d the 4×4 input patch of a tile
//   M(ξ) = Σ_c U(ξ)[k][c] · V(ξ)[c]: float32 products, one float32 sum over the ≤ 64 input channels
//   y = Aᵀ M A in float64, Aᵀ = (1 1 1 0; 0 1 −1 −1), then the epilogue and one rounding to float32
//
// F(2×2) rather than F(4×4): its transforms have entries 0 and ±1 (G: ±1/2), so float32 U and V cost about what a
// float32 direct convolution's products do; F(4×4)'s entries up to 8 made float32 gradients 3.6× worse than
// PyTorch float32's (test/models/numerics.test.ts).

import { encodeModule, f32x4, f64x2, forLoop, i32, if_, local, Locals, v128, ValType, type Expr, type Func } from './encoder.js';
import { wasm } from './features.js';
import { reluLanes, simdGemmMemory } from './sgemm.js';

const { i32: I32, v128: V128 } = ValType;
const get = local.get;
const sh = f32x4.shuffle;

/** Epilogue flags of `f2conv`: ·scale[k], + shift[k], + the residual, ReLU (in that order; the rounding before ReLU). */
export const F2_SCALE = 1, F2_SHIFT = 2, F2_RES = 4, F2_RELU = 8;

/** Bytes of f2conv's M scratch: 16 points × 4 channels × 2 quads × 16 bytes. */
export const F2_M_BYTES = 16 * 8 * 16;

/**
 * `f2conv(p, pw, pplane, groups, tab, u, v, m, y, ypitch, yplane, flags, scale, shift, resDelta, pStep, yStep)`
 * (byte addresses and strides), built for ci input channels, kpad output channels (a multiple of 4) and nqg quads
 * per group of tile rows (even): `groups` groups.
 * - Input: zero-padded planes, channel c at p + c·pplane, rows pw bytes apart; quad Q of a group reads the 4 rows ×
 *   10 float32 at p + tab[2Q] (tile j of the quad: columns 2j … 2j + 3). Each group moves p on by pStep.
 * - U: float32, U(ξ)[k][c] at u + ((ξ·ci + c)·kpad + k)·4 (channels ≥ Co zero).
 * - V scratch at v (16·ci·nqg·16 bytes), M scratch at m (F2_M_BYTES).
 * - Output: channel k's 2×8 values of quad Q at y + k·yplane + tab[2Q + 1], rows ypitch apart (tile j at columns
 *   2j, 2j + 1); each group moves y on by yStep. The residual (F2_RES) is read likewise at + resDelta.
 * - scale, shift: float64 per channel (kpad of them).
 */
function f2Func(ci: number, kpad: number, nqg: number): Func {
  const P = ['p', 'pw', 'pplane', 'groups', 'tab', 'u', 'v', 'm', 'y', 'ypitch', 'yplane', 'flags', 'scale', 'shift', 'resDelta', 'pStep', 'yStep'];
  const [p, pw, pplane, groups, tab, u, v, m, y, ypitch, yplane, flags, scale, shift, resDelta, pStep, yStep] = P.map((_, i) => i) as number[] as [
    number, number, number, number, number, number, number, number, number, number, number, number, number, number, number, number, number,
  ];
  const L = new Locals(P.length);
  const g = L.add(I32), c = L.add(I32), q = L.add(I32), kg = L.add(I32), xi = L.add(I32), idx = L.add(I32);
  const pa = L.add(I32), addr = L.add(I32), vo = L.add(I32), a = L.add(I32), b = L.add(I32);
  const mm = L.add(I32), yb = L.add(I32), k = L.add(I32);
  // The V and U strides: between input channels (vstep, ustep) and between points ξ (vxi, uxi).
  const vstep = 16 * nqg, vxi = ci * vstep, ustep = 4 * kpad, uxi = ci * ustep;
  const pw2 = L.add(I32), pw3 = L.add(I32);
  const A = L.add(V128), B = L.add(V128), C2 = L.add(V128), D = L.add(V128);
  const col = L.addMany(V128, 4), H = L.addMany(V128, 16);
  const acc = L.addMany(V128, 8), v0 = L.add(V128), v1 = L.add(V128), s = L.add(V128);
  const M = L.addMany(V128, 4), S = L.addMany(V128, 8), Y = L.addMany(V128, 4), O = L.addMany(V128, 2), sc = L.add(V128), sf = L.add(V128), R = L.add(V128);

  // ---- input transform of one quad of one channel (rows at pa, pa + pw, …): V(ξ) to vo + ξ·vxi ----
  const rowOff = [null, pw, pw2, pw3];
  const quadIn: Expr[] = [];
  for (let r = 0; r < 4; r++) {
    const at = r === 0 ? get(pa) : i32.add(get(pa), get(rowOff[r]!));
    quadIn.push(
      local.set(addr, at),
      local.set(A, v128.load(get(addr))), local.set(B, v128.load(get(addr), 16)),
      local.set(C2, v128.load(get(addr), 8)), local.set(D, v128.load(get(addr), 24)),
      // Columns 0 … 3 of the quad's four patches: even and odd float32 from two pairs of loads.
      local.set(col[0]!, sh(get(A), get(B), [0, 2, 4, 6])), local.set(col[1]!, sh(get(A), get(B), [1, 3, 5, 7])),
      local.set(col[2]!, sh(get(C2), get(D), [0, 2, 4, 6])), local.set(col[3]!, sh(get(C2), get(D), [1, 3, 5, 7])),
      // Bᵀ along the row.
      local.set(H[4 * r]!, f32x4.sub(get(col[0]!), get(col[2]!))),
      local.set(H[4 * r + 1]!, f32x4.add(get(col[1]!), get(col[2]!))),
      local.set(H[4 * r + 2]!, f32x4.sub(get(col[2]!), get(col[1]!))),
      local.set(H[4 * r + 3]!, f32x4.sub(get(col[1]!), get(col[3]!))),
    );
  }
  // Bᵀ down the columns: V(4·row + e).
  const h = (r: number, e: number): Expr => get(H[4 * r + e]!);
  const vOf = (row: number, e: number): Expr => [
    f32x4.sub(h(0, e), h(2, e)), f32x4.add(h(1, e), h(2, e)), f32x4.sub(h(2, e), h(1, e)), f32x4.sub(h(1, e), h(3, e)),
  ][row]!;
  quadIn.push(local.set(addr, get(vo)));
  for (let x = 0; x < 16; x++) {
    quadIn.push(v128.store(get(addr), vOf(x >> 2, x & 3), x * vxi));
  }

  // ---- the GEMMs of one point ξ: 4 channels × 2 quads, over ci input channels, into M at mm + ξ·128 ----
  // One input channel per round (unrolled ×2, ×4 or ×16 with constant offsets, TurboFan's code was 17%, 40% and
  // 100% slower: 16→16 @32 batch 32, one core).
  const step: Expr[] = [local.set(v0, v128.load(get(b))), local.set(v1, v128.load(get(b), 16))];
  for (let i = 0; i < 4; i++) {
    step.push(
      local.set(s, v128.load32_splat(get(a), 4 * i)),
      local.set(acc[2 * i]!, f32x4.add(get(acc[2 * i]!), f32x4.mul(get(s), get(v0)))),
      local.set(acc[2 * i + 1]!, f32x4.add(get(acc[2 * i + 1]!), f32x4.mul(get(s), get(v1)))),
    );
  }
  step.push(local.set(a, i32.add(get(a), i32.const(ustep))), local.set(b, i32.add(get(b), i32.const(vstep))));
  const gemmXi: Expr[] = [
    local.set(a, i32.add(i32.add(get(u), i32.shl(get(kg), i32.const(2))), i32.mul(get(xi), i32.const(uxi)))),
    local.set(b, i32.add(i32.add(get(v), i32.shl(get(q), i32.const(4))), i32.mul(get(xi), i32.const(vxi)))),
    ...acc.map((x) => local.set(x, v128.zero())),
    forLoop(c, i32.const(0), i32.const(ci), 1, ...step),
    local.set(addr, i32.add(get(m), i32.shl(get(xi), i32.const(7)))),
    ...acc.map((x, j) => v128.store(get(addr), get(x), 16 * j)),
  ];

  // ---- the output transform of channel k = kg + idx>>1, quad q + idx&1, from M at mm = m + 16·idx ----
  const add = f64x2.add, sub = f64x2.sub;
  const outQuad: Expr[] = [
    local.set(k, i32.add(get(kg), i32.shr_s(get(idx), i32.const(1)))),
    local.set(mm, i32.add(get(m), i32.shl(get(idx), i32.const(4)))),
    local.set(yb, i32.add(i32.add(get(y), i32.mul(get(k), get(yplane))),
      i32.load(i32.add(get(tab), i32.shl(i32.add(get(q), i32.and(get(idx), i32.const(1))), i32.const(3))), 4))),
    if_(i32.and(get(flags), i32.const(F2_SCALE)), [local.set(sc, v128.load64_splat(i32.add(get(scale), i32.shl(get(k), i32.const(3)))))]),
    if_(i32.and(get(flags), i32.const(F2_SHIFT)), [local.set(sf, v128.load64_splat(i32.add(get(shift), i32.shl(get(k), i32.const(3)))))]),
  ];
  for (let half = 0; half < 2; half++) {
    // Tiles 2·half, 2·half + 1 of the quad, as f64x2 lanes. Aᵀ along each row of M: S[2r] = m_r0 + m_r1 + m_r2,
    // S[2r + 1] = m_r1 − m_r2 − m_r3.
    for (let r = 0; r < 4; r++) {
      for (let e = 0; e < 4; e++) {
        const raw = v128.load(get(mm), 128 * (4 * r + e));
        outQuad.push(local.set(M[e]!, f64x2.promote_low_f32x4(half === 0 ? raw : f32x4.high(raw))));
      }
      outQuad.push(
        local.set(S[2 * r]!, add(add(get(M[0]!), get(M[1]!)), get(M[2]!))),
        local.set(S[2 * r + 1]!, sub(sub(get(M[1]!), get(M[2]!)), get(M[3]!))),
      );
    }
    // Aᵀ down the columns: Y[2·row + col].
    for (let e = 0; e < 2; e++) {
      outQuad.push(
        local.set(Y[e]!, add(add(get(S[e]!), get(S[2 + e]!)), get(S[4 + e]!))),
        local.set(Y[2 + e]!, sub(sub(get(S[2 + e]!), get(S[4 + e]!)), get(S[6 + e]!))),
      );
    }
    for (let row = 0; row < 2; row++) {
      // Output row `row` of the two tiles: [t0c0 t0c1] and [t1c0 t1c1], epilogue, one rounding, one store.
      const at = row === 0 ? get(yb) : i32.add(get(yb), get(ypitch));
      outQuad.push(
        local.set(O[0]!, sh(get(Y[2 * row]!), get(Y[2 * row + 1]!), [0, 1, 4, 5])),
        local.set(O[1]!, sh(get(Y[2 * row]!), get(Y[2 * row + 1]!), [2, 3, 6, 7])),
        if_(i32.and(get(flags), i32.const(F2_SCALE)), [local.set(O[0]!, f64x2.mul(get(O[0]!), get(sc))), local.set(O[1]!, f64x2.mul(get(O[1]!), get(sc)))]),
        if_(i32.and(get(flags), i32.const(F2_SHIFT)), [local.set(O[0]!, add(get(O[0]!), get(sf))), local.set(O[1]!, add(get(O[1]!), get(sf)))]),
        if_(i32.and(get(flags), i32.const(F2_RES)), [
          local.set(R, v128.load(i32.add(at, get(resDelta)), 16 * half)),
          local.set(O[0]!, add(get(O[0]!), f64x2.promote_low_f32x4(get(R)))),
          local.set(O[1]!, add(get(O[1]!), f64x2.promote_low_f32x4(f32x4.high(get(R))))),
        ]),
        local.set(R, f32x4.join_low(f32x4.demote_f64x2_zero(get(O[0]!)), f32x4.demote_f64x2_zero(get(O[1]!)))),
        if_(i32.and(get(flags), i32.const(F2_RELU)), [local.set(R, reluLanes(get(R)))]),
        v128.store(at, get(R), 16 * half),
      );
    }
  }

  return {
    name: 'f2conv',
    params: new Array<ValType>(P.length).fill(I32),
    results: [],
    locals: L.types,
    body: [
      local.set(pw2, i32.shl(get(pw), i32.const(1))),
      local.set(pw3, i32.add(get(pw2), get(pw))),
      forLoop(g, i32.const(0), get(groups), 1,
        // Input transform of the group's quads, channel by channel.
        forLoop(c, i32.const(0), i32.const(ci), 1,
          local.set(vo, i32.add(get(v), i32.mul(get(c), i32.const(vstep)))),
          forLoop(q, i32.const(0), i32.const(nqg), 1,
            local.set(pa, i32.add(i32.add(get(p), i32.mul(get(c), get(pplane))), i32.load(i32.add(get(tab), i32.shl(get(q), i32.const(3)))))),
            ...quadIn,
            local.set(vo, i32.add(get(vo), i32.const(16))))),
        // GEMMs and output transform, 4 channels × 2 quads at a time.
        forLoop(kg, i32.const(0), i32.const(kpad), 4,
          forLoop(q, i32.const(0), i32.const(nqg), 2,
            forLoop(xi, i32.const(0), i32.const(16), 1, ...gemmXi),
            forLoop(idx, i32.const(0), i32.const(8), 1, ...outQuad))),
        local.set(p, i32.add(get(p), get(pStep))),
        local.set(y, i32.add(get(y), get(yStep)))),
    ],
  };
}

// ---- the per-thread instance ------------------------------------------------------------------------------------

export type F2ConvFn = (
  p: number, pw: number, pplane: number, groups: number, tab: number, u: number, v: number, m: number, y: number, ypitch: number, yplane: number,
  flags: number, scale: number, shift: number, resDelta: number, pStep: number, yStep: number,
) => void;

/** Modules by `${ci},${kpad},${nqg}` (compiled once per process), and this thread's instances over its memory. */
const compiled = new Map<string, object>();
const instances = new Map<string, F2ConvFn>();
let instancesMem: object | null = null;

/** This thread's f2conv for the shape, over the memory of its SIMD GEMM (call simdGemm first, which sizes it). */
export function simdWinograd2(ci: number, kpad: number, nqg: number): F2ConvFn {
  const mem = simdGemmMemory();
  if (instancesMem !== mem) {
    instances.clear();
    instancesMem = mem;
  }
  const key = `${ci},${kpad},${nqg}`;
  let fn = instances.get(key);
  if (fn === undefined) {
    let mod = compiled.get(key);
    if (mod === undefined) compiled.set(key, (mod = new wasm!.Module(winograd2Module(ci, kpad, nqg))));
    fn = new wasm!.Instance(mod, { env: { mem } }).exports.f2conv as F2ConvFn;
    instances.set(key, fn);
  }
  return fn;
}

/** The module's bytes for ci input channels, kpad output channels and nqg quads per group. */
export function winograd2Module(ci: number, kpad: number, nqg: number): Uint8Array {
  return encodeModule([f2Func(ci, kpad, nqg)]);
}
