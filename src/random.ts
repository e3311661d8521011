/**
 * The deterministic random number generator behind rand, randn, init, dropout and shuffling.
 *
 * Algorithm (documented so that any platform can reproduce it): xoshiro128** over four uint32 words, seeded by
 * running splitmix32 on the seed. `uniform()` = (next() >>> 8) · 2^-24, a float32-exact value in [0, 1).
 * `normal()` = Box–Muller: u1 = 1 - uniform(), u2 = uniform(), r = sqrt(-2 ln u1), and the pair
 * (r cos 2πu2, r sin 2πu2) is returned in that order. All arithmetic is 32-bit integer (Math.imul) or IEEE double,
 * so the same seed gives the same numbers in every JS engine.
 */
export class Generator {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;
  // The pending second value of a Box–Muller pair. A flag and an always-double field (not number | null): a field
  // that holds null or a double is stored boxed, one heap allocation per normal() pair.
  private hasSpare = false;
  private spare = 0;

  constructor(seed = 0) {
    this.manualSeed(seed);
  }

  /** Reseeds; the same seed always gives the same stream. Seeds are taken modulo 2^32 (negative seeds wrap). */
  manualSeed(seed: number): this {
    if (!Number.isFinite(seed)) throw new RangeError(`[manualSeed] seed must be a finite number, got ${seed}`);
    let x = Math.floor(seed) >>> 0;
    const next = (): number => {
      // splitmix32
      x = (x + 0x9e3779b9) | 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
    this.hasSpare = false;
    this.spare = 0;
    return this;
  }

  /** The next uint32 (xoshiro128**). */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in [0, 1), exactly representable in float32. */
  uniform(): number {
    return (this.nextUint32() >>> 8) * 5.9604644775390625e-8;
  }

  /** Standard normal (Box–Muller, see the class comment). */
  normal(): number {
    if (this.hasSpare) {
      this.hasSpare = false;
      return this.spare;
    }
    const u1 = 1 - this.uniform();
    const u2 = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    this.spare = r * Math.sin(2 * Math.PI * u2);
    this.hasSpare = true;
    return r * Math.cos(2 * Math.PI * u2);
  }

  /** d[i] = mean + std·normal() for every i, in order. */
  fillNormal(d: Float32Array, mean: number, std: number): void {
    for (let i = 0; i < d.length; i++) d[i] = mean + std * this.normal();
  }

  /** Uniform integer in [0, n), n ≤ 2^32, without modulo bias (rejection). */
  randint(n: number): number {
    if (n <= 0) return 0;
    const limit = Math.floor(4294967296 / n) * n;
    for (;;) {
      const v = this.nextUint32();
      if (v < limit) return v % n;
    }
  }

  /** A random permutation of 0..n-1 (Fisher–Yates with randint). */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.randint(i + 1);
      const t = p[i]!;
      p[i] = p[j]!;
      p[j] = t;
    }
    return p;
  }

  /** The full state, for checkpoints. */
  getState(): number[] {
    return [this.s0, this.s1, this.s2, this.s3, this.hasSpare ? this.spare : NaN];
  }

  setState(state: readonly number[]): this {
    this.s0 = state[0]! >>> 0;
    this.s1 = state[1]! >>> 0;
    this.s2 = state[2]! >>> 0;
    this.s3 = state[3]! >>> 0;
    const sp = state[4];
    this.hasSpare = !(sp === undefined || Number.isNaN(sp));
    this.spare = this.hasSpare ? sp! : 0;
    return this;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** The generator used when none is given. Its initial seed is 0 (so programs are reproducible by default). */
export const defaultGenerator = new Generator(0);

/** Seeds the default generator (like torch.manual_seed). */
export function manualSeed(seed: number): void {
  defaultGenerator.manualSeed(seed);
}
