// Waiting on a backend call only for as long as its answer still matters. A call on a dead
// connection can hang for minutes (a PostgreSQL server that vanished without closing its sockets),
// and a shutdown must not wait for an answer it would throw away.

/**
 * Settles as `work` does, or with `undefined` as soon as `signal` aborts. `work` goes on by itself;
 * if it rejects after the abort, the rejection is dropped (nobody is left to handle it).
 */
export function unlessAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T | undefined> {
  if (signal.aborted) {
    work.catch(() => {});
    return Promise.resolve(undefined);
  }
  return new Promise<T | undefined>((resolve, reject) => {
    const onAbort = (): void => resolve(undefined);
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}
