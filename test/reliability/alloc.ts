/**
 * An allocation meter for the reliability tests: runs a function with the allocating constructors (every typed
 * array, ArrayBuffer, SharedArrayBuffer, Array) wrapped, and adds up the bytes they are asked for. Copies made
 * through the species constructor (slice, map, filter) count too; views (subarray) share their buffer and do not.
 * Used to show that a parser allocates no more than its input justifies, and that an oversized tensor is refused
 * before anything is allocated.
 */

const TYPED = ['Uint8Array', 'Uint8ClampedArray', 'Int8Array', 'Uint16Array', 'Int16Array', 'Uint32Array', 'Int32Array', 'Float32Array', 'Float64Array', 'BigInt64Array', 'BigUint64Array'] as const;

/**
 * Runs fn with the allocating constructors wrapped; returns what fn returned or threw and the bytes requested.
 * Copies made through the species constructor (slice, map, filter) count too; views (subarray) share their
 * buffer and do not.
 */
export function measured<T>(fn: () => T): { value?: T; error?: unknown; bytes: number; ms: number } {
  const g = globalThis as unknown as Record<string, unknown>;
  const saved = new Map<string, unknown>();
  const protos: [object, PropertyDescriptor][] = [];
  let bytes = 0;
  const wrap = (name: string, perElement: number): void => {
    const real = g[name] as new (...a: unknown[]) => object;
    saved.set(name, real);
    g[name] = new Proxy(real, {
      construct(target, args: unknown[], newTarget) {
        const a0 = args[0];
        if (typeof a0 === 'number') bytes += a0 * perElement;
        else if (a0 !== null && typeof a0 === 'object' && !(a0 instanceof ArrayBuffer) && 'length' in a0) {
          bytes += Number((a0 as { length: number }).length) * perElement; // copies of array-likes
        }
        return Reflect.construct(target, args, newTarget === g[name] ? target : newTarget);
      },
    });
    // slice(), map(), filter() allocate through the species constructor (x.constructor): route that through the proxy
    if (name !== 'ArrayBuffer' && name !== 'SharedArrayBuffer' && name !== 'Array') {
      const proto = (real as unknown as { prototype: object }).prototype;
      protos.push([proto, Object.getOwnPropertyDescriptor(proto, 'constructor')!]);
      Object.defineProperty(proto, 'constructor', { value: g[name], writable: true, configurable: true, enumerable: false });
    }
  };
  for (const name of TYPED) wrap(name, (globalThis as unknown as Record<string, { BYTES_PER_ELEMENT: number }>)[name]!.BYTES_PER_ELEMENT);
  wrap('ArrayBuffer', 1);
  wrap('SharedArrayBuffer', 1);
  wrap('Array', 8);
  const t0 = performance.now();
  try {
    return { value: fn(), bytes, ms: performance.now() - t0 };
  } catch (error) {
    return { error, bytes, ms: performance.now() - t0 };
  } finally {
    for (const [name, real] of saved) g[name] = real;
    for (const [proto, desc] of protos) Object.defineProperty(proto, 'constructor', desc);
  }
}
