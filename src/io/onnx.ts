/**
 * ONNX: export our models (exportOnnx) and import ONNX graphs as trainable modules (loadOnnx), with our own
 * protobuf codec. Pure: no node imports; onnx-file.ts has the file helpers.
 */
export { OnnxError, ONNX_LIMITS } from './onnx-proto.js';
export type { OnnxErrorKind } from './onnx-proto.js';
export { exportOnnx, ONNX_EXPORT_OPSETS } from './onnx-export.js';
export type { ExportOnnxOptions } from './onnx-export.js';
export { loadOnnx, OnnxModel, ONNX_IMPORT_OPS, ONNX_IMPORT_OPSETS } from './onnx-import.js';
