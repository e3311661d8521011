// Node only: compiling WebAssembly with V8's optimizing tier from the first call.
//
// V8 compiles a wasm function when it is first called, with its baseline compiler (Liftoff), and recompiles it with
// TurboFan once it has run enough; the new code serves the calls after that. A kernel call runs a whole loop nest, so
// a fresh process's first forward runs most of its kernels' work in baseline code (about 3× slower than TurboFan's
// here). `optimizeWasmEagerly()` sets V8's `--no-liftoff` for the process, so every wasm function not yet compiled
// is compiled by TurboFan at its first call. The results are the same bits (the same instructions, compiled by
// another tier). V8 flags belong to the whole process, the worker threads and any other wasm in it included; the
// CLI sets it, a library user may (or set RESNET_TS_WASM_EAGER=1 before importing resnet-ts).

import * as v8 from 'node:v8';

let applied = false;

/**
 * Makes V8 compile WebAssembly functions with its optimizing tier at their first call, for the whole process: a
 * fresh process's first forwards run at warm speed sooner. Call it before the first forward (functions already
 * compiled keep their code until V8 tiers them up). Returns false where the engine has no such flag (not V8, or
 * `v8.setFlagsFromString` missing or failing).
 */
export function optimizeWasmEagerly(): boolean {
  if (applied) return true;
  if (typeof process === 'undefined' || process.versions?.v8 === undefined) return false;
  if (typeof v8.setFlagsFromString !== 'function' || typeof (globalThis as { WebAssembly?: unknown }).WebAssembly !== 'object') return false;
  try {
    v8.setFlagsFromString('--no-liftoff --no-wasm-lazy-compilation');
  } catch {
    return false;
  }
  applied = true;
  return true;
}

/** Whether `optimizeWasmEagerly()` has set the flag in this process. */
export function wasmOptimizedEagerly(): boolean {
  return applied;
}

/** RESNET_TS_WASM_EAGER=1 (or true): `optimizeWasmEagerly()` when resnet-ts is imported. */
export function optimizeWasmFromEnv(): void {
  const v = process.env.RESNET_TS_WASM_EAGER?.trim().toLowerCase();
  if (v === '1' || v === 'true') optimizeWasmEagerly();
}
