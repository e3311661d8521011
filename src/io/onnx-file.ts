/** Node file helpers for ONNX (node:fs lives here so that onnx.ts stays browser-safe). */

import { readFileSync } from 'node:fs';
import type { Module } from '../nn/module.js';
import { exportOnnx, loadOnnx, OnnxError, type ExportOnnxOptions, type OnnxModel } from './onnx.js';
import { writeFileAtomic } from './atomic-file.js';

/** Rethrows an OnnxError with the file path in front of its detail. */
function withPath<T>(path: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof OnnxError) throw new OnnxError(e.kind, `${path}: ${e.detail}`);
    throw e;
  }
}

/**
 * Exports a model (exportOnnx) and writes it to `path` atomically: readers see the old file or the whole new one.
 * Export errors are thrown before the file system is touched.
 */
export function saveOnnxFile(path: string, model: Module, opts: ExportOnnxOptions): void {
  const bytes = withPath(path, () => exportOnnx(model, opts));
  writeFileAtomic(path, bytes);
}

/** Reads an .onnx file as a Module (loadOnnx). */
export function loadOnnxFile(path: string): OnnxModel {
  const bytes = readFileSync(path);
  return withPath(path, () => loadOnnx(bytes));
}
