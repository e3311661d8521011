/**
 * The row runner shared by the reliability tables: each row calls something wrongly and names the error class it
 * must throw and message fragments (the op or file in brackets, and the offending shape, key or value). Fragments,
 * not whole messages, so that the wording around them may change.
 */
import { expect, it } from 'vitest';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type ErrorClass = abstract new (...args: any[]) => Error;
export type Row = [name: string, call: () => unknown, cls: ErrorClass, fragments: readonly string[]];

/** The error `call` throws, or null when it returns. */
export function thrown(call: () => unknown): Error | null {
  try {
    call();
  } catch (e) {
    return e as Error;
  }
  return null;
}

/** Checks that `call` throws an instance of `cls` whose message contains every fragment. */
export function expectError(call: () => unknown, cls: ErrorClass, fragments: readonly string[]): Error {
  const e = thrown(call);
  expect(e, 'expected an error, got none').not.toBeNull();
  const err = e!;
  expect(err instanceof cls, `expected ${cls.name}, got ${err.name}: ${err.message}`).toBe(true);
  for (const f of fragments) expect(err.message, `fragment ${JSON.stringify(f)}`).toContain(f);
  return err;
}

/** One `it` per row. */
export function runRows(rows: readonly Row[]): void {
  for (const [name, call, cls, fragments] of rows) {
    it(name, () => {
      expectError(call, cls, fragments);
    });
  }
}
