// Which kernel backend runs: WebAssembly SIMD (when the engine has it) or the asm.js/JavaScript kernels.
//
//   RESNET_TS_BACKEND=js   the asm.js/JavaScript kernels (also wherever WebAssembly SIMD128 does not validate)
//   RESNET_TS_BACKEND=simd the default where SIMD128 validates
// Relaxed-SIMD FMA (f32x4.relaxed_madd) is used where it validates too (Node ≥ 22; Node 20 with
// --experimental-wasm-relaxed-simd); RESNET_TS_FMA=0 turns it off.
//
// The environment is read through globalThis.process, so this module stays browser-safe.

import { encodeModule, f32x4, local, v128, ValType, type Func } from './encoder.js';

/** The part of the WebAssembly JS API we use (lib.dom's types are not in this project's lib). */
export interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
  Memory: new (desc: { initial: number; maximum?: number; shared?: boolean }) => { buffer: ArrayBuffer; grow(pages: number): number };
}

export type WasmMemory = InstanceType<WasmApi['Memory']>;

/** The engine's WebAssembly object, or null. */
export const wasm: WasmApi | null = ((globalThis as { WebAssembly?: WasmApi }).WebAssembly ?? null);

function validates(f: Func): boolean {
  if (wasm === null) return false;
  try {
    return wasm.validate(encodeModule([f]));
  } catch {
    return false;
  }
}

/** True where the engine validates a module using 128-bit SIMD. */
export const hasSimd128 = validates({
  name: 'f', params: [ValType.v128], results: [ValType.v128], locals: [],
  body: [f32x4.mul(local.get(0), local.get(0))],
});

/** True where the engine validates f32x4.relaxed_madd (relaxed SIMD). */
export const hasRelaxedSimd = hasSimd128 && validates({
  name: 'f', params: [ValType.v128], results: [ValType.v128], locals: [],
  body: [f32x4.relaxed_madd(local.get(0), local.get(0), v128.zero())],
});

export type KernelBackend = 'simd' | 'js';

function env(name: string): string | undefined {
  const e = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  return e?.[name];
}

function defaultBackend(): KernelBackend {
  return env('RESNET_TS_BACKEND')?.trim().toLowerCase() === 'js' || !hasSimd128 ? 'js' : 'simd';
}

let backend: KernelBackend = defaultBackend();
let fma = hasRelaxedSimd && env('RESNET_TS_FMA')?.trim() !== '0';

/** The kernel backend in use: 'simd' (WebAssembly SIMD) or 'js' (asm.js / JavaScript). */
export function kernelBackend(): KernelBackend {
  return backend;
}

/** Whether the SIMD kernels use relaxed-SIMD fused multiply-adds. */
export function usesFma(): boolean {
  return backend === 'simd' && fma;
}

/**
 * Selects the kernel backend (for tests and benchmarks; the default comes from RESNET_TS_BACKEND). 'simd' where the
 * engine lacks SIMD128 stays 'js'. Returns the previous one. Threads started before keep theirs: set it before the
 * first parallel call, or through the environment.
 */
export function setKernelBackend(b: KernelBackend, opts: { fma?: boolean } = {}): KernelBackend {
  const old = backend;
  backend = b === 'simd' && hasSimd128 ? 'simd' : 'js';
  if (opts.fma !== undefined) fma = opts.fma && hasRelaxedSimd;
  return old;
}

/** The settings a task carries to other threads. */
export interface KernelSettings {
  backend: KernelBackend;
  fma: boolean;
}

export function kernelSettings(): KernelSettings {
  return { backend, fma };
}

/** Makes this thread use the given settings (a worker, for a task from another thread). */
export function applyKernelSettings(s: KernelSettings): void {
  backend = s.backend === 'simd' && hasSimd128 ? 'simd' : 'js';
  fma = s.fma && hasRelaxedSimd;
}
