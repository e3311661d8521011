/**
 * The library's switches in one object (tinygrad's Context, torch.backends): read them from `config`, change them for
 * a scope with `withConfig({ ... }, fn)`, or for the rest of the process with `setConfig({ ... })`.
 *
 * Browser-safe, no imports: kernels read it too (src/kernels imports nothing above itself but this file). The
 * environment is read through globalThis.process.
 */

export type WinogradPolicy = 'auto' | 'always' | 'never';
export type KernelBackend = 'simd' | 'js';

/** An environment variable where there is a `process` (Node), else undefined (a browser). */
function env(name: string): string | undefined {
  return (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.[name];
}

export interface Config {
  /** Winograd F(4×4, 3×3) for stride-1 3×3 convs: 'auto' where it pays (by shape), 'always' where it applies, 'never'. */
  winograd: WinogradPolicy;
  /** Kernel tasks cheaper than this many flops run inline on the calling thread (no thread overhead). */
  minParallelCost: number;
  /**
   * Inference fusion: in eval mode without gradients, conv → BatchNorm (→ + residual) (→ ReLU) runs as one kernel
   * with BatchNorm folded into the convolution's epilogue (see fusion/conv-bn.ts).
   */
  fusion: boolean;
  /** Anomaly detection (torch.autograd.detect_anomaly): the first op whose output or gradient holds NaN/±Inf throws. */
  detectAnomaly: boolean;
  /** Bytes of output buffers `withArena` keeps for reuse between inference calls (see fusion/arena.ts). */
  arenaBytes: number;
  /** Buffers shorter than this (elements) are not kept for reuse: the allocator serves them cheaply. */
  arenaMinLength: number;
  /**
   * Inside withTrainingStep on the SIMD backend, take the step's buffers from the resident shared wasm memory
   * (kernels/wasm/optim.ts), where the batch norm's kernels and the float64 Winograd convolutions (forward, input
   * and weight gradient) work on them in place instead of copying them through each thread's own wasm memory. The
   * same bits either way; off, the step's buffers are ordinary shared memory (bench/README.md has the A/B).
   */
  residentSteps: boolean;
  /**
   * New layers' parameters are made in the resident shared wasm memory (SIMD backend), where SGD updates them in
   * place, while that memory stays within this many bytes; past it (or with 0) in ordinary shared memory, which SGD
   * copies through the resident memory a block at a time. The memory never shrinks, so this bounds what making
   * model after model can leave there.
   */
  residentParamBytes: number;
  /**
   * The kernels: 'simd' (WebAssembly SIMD128, where the engine validates it; else the 'js' kernels run) or 'js'
   * (asm.js / JavaScript). Default 'simd', or the environment's RESNET_TS_BACKEND. Threads take it with each task.
   */
  kernelBackend: KernelBackend;
  /** Relaxed-SIMD fused multiply-adds in the SIMD kernels, where the engine validates them. RESNET_TS_FMA=0: off. */
  fma: boolean;
  /**
   * The direct-convolution kernel (SIMD backend) for 3×3 convs with at most 64 channels: the forward at stride 2, and
   * the stems (≤ 4 input channels) at stride 1, forward and input gradient (see kernels/conv2d/direct.ts), and the
   * input gradient of strided convs by stride phases (kernels/conv2d/phases.ts). Off: Winograd or im2col + GEMM as
   * elsewhere.
   */
  directConv: boolean;
}

const defaults: Config = {
  winograd: 'auto',
  minParallelCost: 1_000_000,
  fusion: true,
  detectAnomaly: false,
  arenaBytes: 64 * 2 ** 20,
  arenaMinLength: 16384,
  residentSteps: true,
  residentParamBytes: 256 * 2 ** 20,
  kernelBackend: env('RESNET_TS_BACKEND')?.trim().toLowerCase() === 'js' ? 'js' : 'simd',
  fma: env('RESNET_TS_FMA')?.trim() !== '0',
  directConv: true,
};

/** The current settings. Read-only from outside: change them with setConfig or withConfig. */
export const config: Readonly<Config> = { ...defaults };

/** Changes settings for the rest of the process; returns the previous values of the keys given. */
export function setConfig(changes: Partial<Config>): Partial<Config> {
  const prev: Partial<Config> = {};
  const c = config as Config;
  for (const key of Object.keys(changes) as (keyof Config)[]) {
    (prev as Record<string, unknown>)[key] = c[key];
    (c as unknown as Record<string, unknown>)[key] = changes[key];
  }
  return prev;
}

/** Runs fn with some settings changed, restoring them afterwards (also when fn throws). */
export function withConfig<T>(changes: Partial<Config>, fn: () => T): T {
  const prev = setConfig(changes);
  try {
    return fn();
  } finally {
    setConfig(prev);
  }
}

/** The default settings (a copy). */
export function defaultConfig(): Config {
  return { ...defaults };
}
