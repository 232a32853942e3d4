// A reusable "something happened" signal: wait() resolves on the next notify(), after `ms` of the
// clock, or when the signal aborts. A notify() with nobody waiting is remembered once, so a
// change that lands between a check and the wait is never missed.
import type { Clock } from "./clock.ts";

/** Reused abort reason: aborting without one allocates a DOMException, on a hot path. */
const DONE = Object.freeze(new Error("wait over"));

export class Wakeup {
  #pending = false;
  #resolve: (() => void) | undefined;

  notify(): void {
    if (this.#resolve) {
      const resolve = this.#resolve;
      this.#resolve = undefined;
      resolve();
    } else {
      this.#pending = true;
    }
  }

  /** Resolves true when notified, false on timeout or abort. */
  async wait(ms: number, clock: Clock, signal?: AbortSignal): Promise<boolean> {
    if (this.#pending) {
      this.#pending = false;
      return true;
    }
    if (signal?.aborted) return false;
    const timer = new AbortController();
    const onAbort = (): void => timer.abort();
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      const notified = new Promise<boolean>((resolve) => {
        this.#resolve = () => resolve(true);
      });
      const slept = clock.sleep(ms, timer.signal).then(
        () => false,
        () => false,
      );
      return await Promise.race([notified, slept]);
    } finally {
      this.#resolve = undefined;
      timer.abort(DONE);
      signal?.removeEventListener("abort", onAbort);
    }
  }
}
