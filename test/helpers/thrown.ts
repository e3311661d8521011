/** The error of class `cls` that `fn` throws; any other error is rethrown, and no error at all fails the test. */
export function thrownBy<E extends Error>(cls: abstract new (...args: never[]) => E, fn: () => unknown): E {
  try {
    fn();
  } catch (e) {
    if (e instanceof cls) return e;
    throw e;
  }
  throw new Error(`expected a ${cls.name}, nothing was thrown`);
}
