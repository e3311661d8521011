// Which kernel backend runs: WebAssembly SIMD (when the engine has it) or the asm.js/JavaScript kernels, as
// config.kernelBackend asks (default from RESNET_TS_BACKEND=js|simd). Relaxed-SIMD FMA (f32x4.relaxed_madd) is used
// where it validates (Node ≥ 22; Node 20 with --experimental-wasm-relaxed-simd) unless config.fma is off
// (RESNET_TS_FMA=0).

import { config, setConfig, type KernelBackend } from '../../config.js';
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

/** A new wasm memory of at least `bytes` bytes (at least one 64 KiB page). */
export function newMemory(bytes: number): WasmMemory {
  return new wasm!.Memory({ initial: Math.max(1, Math.ceil(bytes / 65536)) });
}

/** Grows `memory` to at least `bytes` bytes. True when it grew: typed-array views of its old buffer are then stale. */
export function growTo(memory: WasmMemory, bytes: number): boolean {
  const have = memory.buffer.byteLength;
  if (have >= bytes) return false;
  memory.grow(Math.ceil((bytes - have) / 65536));
  return true;
}

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

export type { KernelBackend };

/** The kernel backend in use: 'simd' (WebAssembly SIMD) or 'js' (asm.js / JavaScript). */
export function kernelBackend(): KernelBackend {
  return config.kernelBackend === 'simd' && hasSimd128 ? 'simd' : 'js';
}

/** Whether the SIMD kernels use relaxed-SIMD fused multiply-adds. */
export function usesFma(): boolean {
  return kernelBackend() === 'simd' && config.fma && hasRelaxedSimd;
}

/**
 * A thread's kernels of one module instantiated over a resident memory (wasm/optim.ts), where a training step's
 * tensors lie, so that they run on them in place: `bytes(fma, true)` compiled once per FMA setting, and instantiated
 * again only when the memory (its id) or the setting changes; `pick` takes the functions from the exports. A worker
 * instantiates them at its first such task.
 */
export function overResident<K>(bytes: (fma: boolean, shared: boolean) => Uint8Array, pick: (e: Record<string, unknown>) => K): (r: { mem: WasmMemory; id: number }) => K {
  const compiled: Array<InstanceType<WasmApi['Module']> | null> = [null, null];
  let cached: { id: number; fma: boolean; k: K } | null = null;
  return (r) => {
    const fma = usesFma();
    if (cached === null || cached.id !== r.id || cached.fma !== fma) {
      const mod = (compiled[+fma] ??= new wasm!.Module(bytes(fma, true)));
      cached = { id: r.id, fma, k: pick(new wasm!.Instance(mod, { env: { mem: r.mem } }).exports as Record<string, unknown>) };
    }
    return cached.k;
  };
}

/**
 * Selects the kernel backend: `setConfig({ kernelBackend: b, fma })`. 'simd' where the engine lacks SIMD128 runs
 * 'js'. Returns the backend in use before.
 */
export function setKernelBackend(b: KernelBackend, opts: { fma?: boolean } = {}): KernelBackend {
  const old = kernelBackend();
  setConfig(opts.fma === undefined ? { kernelBackend: b } : { kernelBackend: b, fma: opts.fma });
  return old;
}

/** The settings a task carries to other threads. */
export interface KernelSettings {
  backend: KernelBackend;
  fma: boolean;
}

export function kernelSettings(): KernelSettings {
  return { backend: kernelBackend(), fma: usesFma() };
}

/** Makes this thread use the given settings (a worker, for a task from another thread). */
export function applyKernelSettings(s: KernelSettings): void {
  setConfig({ kernelBackend: s.backend, fma: s.fma });
}
