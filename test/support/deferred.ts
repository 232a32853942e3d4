// Small tools for tests that drive interleavings by hand.

/** A promise and the function that resolves it, for a test to decide when something happens. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** One turn of the event loop: lets every promise already settled run its callbacks. */
export const turn = (): Promise<void> => new Promise<void>((resolve) => setImmediate(resolve));
