/** io, the browser-safe part: safetensors and ONNX in memory, image decoders, torchvision-style preprocessing. */
export { loadSafetensors, readSafetensorsMetadata, saveSafetensors, parseSafetensors, SafetensorsError, MAX_HEADER_SIZE } from './safetensors.js';
export type { SafetensorsErrorKind, SafetensorsEntry } from './safetensors.js';
export { exportOnnx, loadOnnx, OnnxModel, OnnxError, ONNX_LIMITS, ONNX_IMPORT_OPS, ONNX_IMPORT_OPSETS, ONNX_EXPORT_OPSETS } from './onnx.js';
export type { ExportOnnxOptions, OnnxErrorKind } from './onnx.js';
export { resizeBilinear, resizeShorter, centerCrop, toFloatCHW, imagenetPreprocess, IMAGENET_MEAN, IMAGENET_STD } from './preprocess.js';
export { IMAGENET_CLASSES } from './imagenet-classes.js';
export { decodeImage, toRgb, sniffFormat, ImageDecodeError, MAX_PIXELS, DEFAULT_MAX_IMAGE_PIXELS, setMaxImagePixels, getMaxImagePixels } from './image.js';
export type { DecodedImage, DecodeOptions } from './image.js';
export { decodePng } from './png.js';
export { decodeJpeg } from './jpeg.js';
export { decodePnm } from './pnm.js';
export { readBlob, decodeImageBlob, loadSafetensorsBlob } from './blob.js';
