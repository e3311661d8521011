import { ValueError } from '../errors.js';
import type { Module } from '../nn/module.js';
import type { Tensor } from '../tensor.js';

/** Thrown by the last wanted hook to end the forward early; never leaves featureExtractor. */
class EnoughFeatures {}

/**
 * Intermediate outputs of a model, like torchvision's create_feature_extractor(model, return_nodes): `forward(x)`
 * returns the outputs of the named submodules (dotted names, as in the state dict), keyed by name or by the new
 * names given as a record { 'layer3': 'feat3' }. It observes the model through forward hooks, registered for the call
 * only, and stops the forward once every wanted output is there (so the layers after the last one do not run).
 */
export class FeatureExtractor {
  private readonly modules: [key: string, module: Module][];

  constructor(readonly model: Module, returnNodes: readonly string[] | Readonly<Record<string, string>>) {
    const wanted = Array.isArray(returnNodes) ? returnNodes.map((n) => [n, n] as const) : Object.entries(returnNodes);
    if (wanted.length === 0) throw new ValueError('featureExtractor', 'no return nodes given');
    const byName = new Map(model.namedModules());
    this.modules = wanted.map(([name, key]) => {
      const m = byName.get(name);
      if (m === undefined || name === '') {
        const known = [...byName.keys()].filter((k) => k && !k.includes('.'));
        throw new ValueError('featureExtractor', `${model.typeName} has no submodule '${name}'; top-level submodules: ${known.join(', ')}`);
      }
      return [key, m];
    });
  }

  forward(x: Tensor): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    let missing = this.modules.length;
    const handles = this.modules.map(([key, m]) =>
      m.registerForwardHook((_, _x, y) => {
        if (!(key in out)) missing--;
        out[key] = y;
        if (missing === 0) throw new EnoughFeatures();
      }),
    );
    try {
      this.model.forward(x);
    } catch (e) {
      if (!(e instanceof EnoughFeatures)) throw e;
    } finally {
      for (const h of handles) h.remove();
    }
    if (missing > 0) {
      const absent = this.modules.filter(([key]) => !(key in out)).map(([key]) => key);
      throw new ValueError('featureExtractor', `the forward of ${this.model.typeName} never called ${absent.join(', ')}`);
    }
    return out;
  }
}

/** torchvision.models.feature_extraction.create_feature_extractor: see FeatureExtractor. */
export function featureExtractor(model: Module, returnNodes: readonly string[] | Readonly<Record<string, string>>): FeatureExtractor {
  return new FeatureExtractor(model, returnNodes);
}
