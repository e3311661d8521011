// Module resolve hook (node:module register) that lets Node load tfjs's unbundled ES-module build.
//
// Why: tfjs-core's CommonJS bundle (its package.json "main", what `import '@tensorflow/tfjs-core'` gets in Node)
// registers no gradients, so tf.grad / variableGrads / optimizer.minimize fail ("gradient function not found").
// The gradients live in dist/register_all_gradients.js of the ES-module build ("module"), whose files import each
// other without the `.js` extension and sit in packages without "type": "module". This hook, for the two tfjs
// packages only: maps the bare package names to their dist/index.js, adds `.js` (or `/index.js`) to extensionless
// relative imports, and marks those files as ES modules. Everything else resolves as usual.

const PKGS = ['@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-cpu'];

function isTfjsFile(url) {
  return typeof url === 'string' && PKGS.some((p) => url.includes(`/node_modules/${p}/dist/`));
}

export async function resolve(specifier, context, next) {
  if (PKGS.includes(specifier)) {
    const pkg = await next(`${specifier}/package.json`, context);
    return { url: new URL('dist/index.js', pkg.url).href, format: 'module', shortCircuit: true };
  }
  if (PKGS.some((p) => specifier.startsWith(`${p}/dist/`)) || (isTfjsFile(context.parentURL) && specifier.startsWith('.'))) {
    const last = specifier.split('/').pop() ?? '';
    const candidates = /\.[cm]?js$/.test(last) ? [specifier] : [`${specifier}.js`, `${specifier}/index.js`];
    let lastErr = null;
    for (const c of candidates) {
      try {
        const r = await next(c, context);
        return isTfjsFile(r.url) ? { ...r, format: 'module', shortCircuit: true } : r;
      } catch (e) {
        lastErr = e;
      }
    }
    throw lastErr;
  }
  return next(specifier, context);
}
