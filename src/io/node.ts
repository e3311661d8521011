/** io for Node: the browser-safe part plus files (atomic writes) and image decoders (PNG inflates with node:zlib). */
export * from './index.js';
export { loadSafetensorsFile, saveSafetensorsFile, readSafetensorsMetadataFile, writeFileAtomic } from './safetensors-file.js';
export { decodeImage, toRgb, sniffFormat, ImageDecodeError, MAX_PIXELS, DEFAULT_MAX_IMAGE_PIXELS, setMaxImagePixels, getMaxImagePixels } from './image.js';
export type { DecodedImage, DecodeOptions } from './image.js';
export { decodePng } from './png.js';
export { decodeJpeg } from './jpeg.js';
export { decodePnm } from './pnm.js';
