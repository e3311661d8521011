// What a browser downloads for resnet-ts/browser, against tfjs and onnxruntime-web's own files (from node_modules).
//
// resnet-ts has no minifier (no dependency for one), so what is measured is the tsc output: every .js file under
// dist/ that dist/browser.js or the kernel worker dist/parallel/browser-worker.js reaches by static imports (no
// .d.ts, no source maps). Three numbers: the files as built (comments included), their gzip, and the gzip of the
// same modules re-emitted by TypeScript with removeComments (still unminified: names and whitespace kept). gzip is
// node:zlib at level 9 over the files joined into one stream (as a bundle would be served); the peers' files are
// gzipped the same way. The peers' files are their minified builds; their .wasm is counted (a page fetches it).
//
//   npm run size          (builds dist/ first)      node scripts/size.mjs --markdown   (the README's table)

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DIST = join(ROOT, 'dist');
const require = createRequire(import.meta.url);
const ts = require('typescript');

/** Every .js file reachable from `entry` by static import/export ... from and side-effect imports. */
function reach(entry, seen = new Set()) {
  if (seen.has(entry)) return seen;
  seen.add(entry);
  const text = readFileSync(entry, 'utf8');
  for (const m of text.matchAll(/^\s*(?:import|export)\b[^'"]*?['"](\.[^'"]+)['"]/gm)) reach(join(dirname(entry), m[1]), seen);
  return seen;
}

const files = [...reach(join(DIST, 'parallel', 'browser-worker.js'), reach(join(DIST, 'browser.js')))].sort();
const built = files.map((f) => readFileSync(f));
const stripped = files.map((f) => {
  const src = readFileSync(join(ROOT, 'src', relative(DIST, f)).replace(/\.js$/, '.ts'), 'utf8');
  return Buffer.from(ts.transpileModule(src, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, removeComments: true } }).outputText);
});
const gz = (bufs) => gzipSync(Buffer.concat(bufs), { level: 9 }).length;
const sum = (bufs) => bufs.reduce((s, b) => s + b.length, 0);

const nm = (p) => join(ROOT, 'node_modules', p);
const version = (pkg) => JSON.parse(readFileSync(nm(`${pkg}/package.json`), 'utf8')).version;
const peers = [
  ['tfjs-core + tfjs-backend-cpu', ['@tensorflow/tfjs-core/dist/tf-core.min.js', '@tensorflow/tfjs-backend-cpu/dist/tf-backend-cpu.min.js'], version('@tensorflow/tfjs-core')],
  [
    'tfjs-core + tfjs-backend-wasm (SIMD .wasm)',
    ['@tensorflow/tfjs-core/dist/tf-core.min.js', '@tensorflow/tfjs-backend-wasm/dist/tf-backend-wasm.min.js', '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm'],
    version('@tensorflow/tfjs-backend-wasm'),
  ],
  [
    'onnxruntime-web, WebAssembly build',
    ['onnxruntime-web/dist/ort.wasm.min.mjs', 'onnxruntime-web/dist/ort-wasm-simd-threaded.mjs', 'onnxruntime-web/dist/ort-wasm-simd-threaded.wasm'],
    version('onnxruntime-web'),
  ],
];

const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
const rows = [
  [`resnet-ts/browser ${version('..')} (${files.length} tsc-output modules)`, sum(built), gz(built), gz(stripped)],
  ...peers.map(([name, paths, v]) => {
    const bufs = paths.map((p) => readFileSync(nm(p)));
    return [`${name} ${v}`, sum(bufs), gz(bufs), null];
  }),
];

if (process.argv.includes('--markdown')) {
  console.log('| download | raw | gzip -9 | gzip -9, comments removed |');
  console.log('| --- | ---: | ---: | ---: |');
  for (const [name, raw, g, s] of rows) console.log(`| ${name} | ${kb(raw)} | ${kb(g)} | ${s === null ? '(minified build)' : kb(s)} |`);
} else {
  for (const [name, raw, g, s] of rows) console.log(`${name.padEnd(62)} raw ${kb(raw).padStart(11)}   gzip ${kb(g).padStart(10)}${s === null ? '' : `   gzip without comments ${kb(s)}`}`);
  console.log(`\nresnet-ts modules measured: ${files.map((f) => relative(DIST, f)).join(', ')}`);
}
