/** io for Node: the browser-safe part plus files (atomic writes) and image decoders (PNG inflates with node:zlib). */
export * from './index.js';
export { loadSafetensorsFile, saveSafetensorsFile, readSafetensorsMetadataFile } from './safetensors-file.js';
export { writeFileAtomic } from './atomic-file.js';
export { decodeImage, toRgb, sniffFormat, ImageDecodeError, MAX_PIXELS } from './image.js';
export type { DecodedImage } from './image.js';
export { decodePng } from './png.js';
export { decodeJpeg } from './jpeg.js';
export { decodePnm } from './pnm.js';
