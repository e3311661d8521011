/**
 * Node file helpers for safetensors (node:fs lives here so that safetensors.ts stays browser-safe); files are
 * written atomically (atomic-file.ts).
 */

import { readFileSync } from 'node:fs';
import type { Tensor } from '../tensor.js';
import { writeFileAtomic } from './atomic-file.js';
import { loadSafetensors, readSafetensorsMetadata, saveSafetensors, SafetensorsError } from './safetensors.js';

/** Rethrows a SafetensorsError with the file path in front of its message. */
function withPath<T>(path: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof SafetensorsError) throw new SafetensorsError(e.kind, `${path}: ${e.detail}`, e.tensor);
    throw e;
  }
}

/** Reads a .safetensors file: every tensor as a float32 Tensor, keyed by name (null-prototype object). */
export function loadSafetensorsFile(path: string): Record<string, Tensor> {
  const bytes = readFileSync(path);
  return withPath(path, () => loadSafetensors(bytes));
}

/** Reads only the `__metadata__` map of a .safetensors file (after validating its header). */
export function readSafetensorsMetadataFile(path: string): Record<string, string> {
  const bytes = readFileSync(path);
  return withPath(path, () => readSafetensorsMetadata(bytes));
}

/**
 * Writes tensors as an F32 .safetensors file, atomically (see writeFileAtomic). Serialization errors are thrown
 * before the file system is touched.
 */
export function saveSafetensorsFile(path: string, tensors: Record<string, Tensor>, metadata?: Record<string, string>): void {
  const bytes = withPath(path, () => saveSafetensors(tensors, metadata));
  writeFileAtomic(path, bytes);
}
