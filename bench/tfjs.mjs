// Loads the peer: tfjs-core 4.x with the pure-JS CPU backend, with gradients when possible.
//
// tfjs-core's Node entry (the CommonJS bundle) registers no gradients; they are in the ES-module build, which Node
// loads only with the resolve hook in tfjs-loader.mjs (see there). If that fails, the CommonJS bundle is loaded
// instead and `gradients` is false: the train steps then say why they were not run. (In the ES-module build,
// tfjs's random ops fail — seedrandom is CommonJS — so the bench makes its own random data and never calls them.)

import { createRequire, register } from 'node:module';

const BANNER = 'looks like you are running TensorFlow.js in Node.js';

/** → { tf, build, gradients, note }. */
export async function loadTfjs() {
  let tf = null, build, gradients = false, note = null;
  try {
    register('./tfjs-loader.mjs', import.meta.url);
    // tfjs's Node platform (platforms/platform_node.js) calls require('util') in its constructor, which an ES module
    // does not have: lend it one while the modules are evaluated.
    const lend = globalThis.require === undefined;
    if (lend) globalThis.require = createRequire(import.meta.url);
    try {
      tf = await import('@tensorflow/tfjs-core');
      await import('@tensorflow/tfjs-core/dist/register_all_gradients.js');
      await import('@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops.js');
      await import('@tensorflow/tfjs-backend-cpu');
    } finally {
      if (lend) delete globalThis.require;
    }
    build = 'ES-module build + register_all_gradients + chained ops';
    gradients = true;
  } catch (e) {
    note = `tfjs ES-module build failed to load (${e instanceof Error ? e.message.split('\n')[0] : String(e)}); using the CommonJS bundle, which has no gradients`;
    const require = createRequire(import.meta.url);
    tf = require('@tensorflow/tfjs-core');
    require('@tensorflow/tfjs-backend-cpu');
    build = 'CommonJS bundle (no gradients)';
  }
  await tf.setBackend('cpu');
  await tf.ready();
  // The CPU backend prints a banner recommending tfjs-node on its first tensor: swallow that one message.
  const warn = console.warn;
  console.warn = (...a) => {
    if (!String(a[0]).includes(BANNER)) warn(...a);
  };
  try {
    tf.tensor([0]).dispose();
  } finally {
    console.warn = warn;
  }
  return { tf, build, gradients, note };
}

/**
 * Adds the peer tfjs-backend-wasm (XNNPACK, 128-bit wasm SIMD; in Node it loads its .wasm from the package and runs
 * on one thread) as tf backend 'wasm'. Its Node bundle requires tfjs-core's CommonJS bundle, which shares the engine
 * and kernel registry with the ES-module build through globals, so `tf.setBackend('wasm')` finds it.
 * → { ok, version, simd, note }; tf's backend is 'cpu' again afterwards.
 */
export async function loadTfjsWasm(tf) {
  try {
    const require = createRequire(import.meta.url);
    const w = require('@tensorflow/tfjs-backend-wasm');
    if (!(await tf.setBackend('wasm'))) throw new Error("tf.setBackend('wasm') returned false");
    await tf.ready();
    const simd = tf.env().getBool('WASM_HAS_SIMD_SUPPORT');
    await tf.setBackend('cpu');
    return { ok: true, version: w.version_wasm, simd, note: null };
  } catch (e) {
    await tf.setBackend('cpu');
    return { ok: false, version: null, simd: false, note: `tfjs-backend-wasm failed to load (${e instanceof Error ? e.message.split('\n')[0] : String(e)})` };
  }
}

/** Makes `name` tf's backend if it is not (awaited inside a timed run: a resolved check when nothing changes). */
export async function useTfBackend(tf, name) {
  if (tf.getBackend() !== name) await tf.setBackend(name);
}
