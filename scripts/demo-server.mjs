// Serves the repository for the demo page (demo/index.html, which loads dist/ through an import map) with the
// headers that make the page cross-origin isolated, so that SharedArrayBuffer and the worker pool are available:
//   Cross-Origin-Opener-Policy: same-origin
//   Cross-Origin-Embedder-Policy: require-corp
// node:http only, no dependency. Listens on 127.0.0.1.
//
//   node scripts/demo-server.mjs [PORT]        (default 8080; 0 picks a free port)

import { createReadStream, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.svg': 'image/svg+xml',
  '.ts': 'text/plain; charset=utf-8',
  '.safetensors': 'application/octet-stream',
};

/**
 * Starts the server; resolves with it and its URL once it listens. `isolate: false` leaves out the isolation
 * headers (for testing the one-thread fallback).
 */
export function startDemoServer({ port = 8080, root = ROOT, isolate = true } = {}) {
  const isolation = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp', 'Cross-Origin-Resource-Policy': 'same-origin' };
  const server = createServer((req, res) => {
    const headers = { ...(isolate ? isolation : {}), 'Cache-Control': 'no-store' };
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
    if (path === '/' || path === '/demo') {
      res.writeHead(302, { ...headers, Location: '/demo/' });
      res.end();
      return;
    }
    const file = normalize(join(root, path.endsWith('/') ? `${path}index.html` : path));
    let size = -1;
    try {
      if (file === root || file.startsWith(root + sep)) {
        const st = statSync(file);
        if (st.isFile()) size = st.size;
      }
    } catch {
      // not found
    }
    if (size < 0 || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(size < 0 ? 404 : 405, { ...headers, 'Content-Type': 'text/plain' });
      res.end(size < 0 ? `not found: ${path}\n` : 'method not allowed\n');
      return;
    }
    res.writeHead(200, { ...headers, 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream', 'Content-Length': size });
    if (req.method === 'HEAD') res.end();
    else createReadStream(file).pipe(res);
  });
  return new Promise((resolveStart, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const addr = server.address();
      resolveStart({ server, url: `http://127.0.0.1:${addr.port}/demo/` });
    });
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const port = Number(process.argv[2] ?? process.env.PORT ?? 8080);
  const { url } = await startDemoServer({ port });
  console.log(`resnet-ts demo: ${url} (Ctrl-C stops)`);
}
