/** io for Node: the browser-safe part plus files (atomic writes); PNG inflates with node:zlib (./zlib.ts). */
import './zlib.js';

export * from './index.js';
export { loadSafetensorsFile, saveSafetensorsFile, readSafetensorsMetadataFile } from './safetensors-file.js';
export { writeFileAtomic } from './atomic-file.js';
export { saveOnnxFile, loadOnnxFile } from './onnx-file.js';
export { encodePng } from './png-encode.js';
