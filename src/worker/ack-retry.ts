// Writing an outcome again when its write failed. A failed write (a dropped connection, a
// restarting server) leaves the outcome unknown: it may have landed. Sending it again is safe
// because every acknowledgement is idempotent by lease token (the port's promise: a repeat of an
// outcome already recorded by the same lease is answered as the first was and writes nothing),
// and it spares the job a second run once its lease expires, and its error from being lost.
import { RESEND_DELAYS_MS } from "../backend/lost-replies.ts";
import type { Clock } from "../core/clock.ts";

export class AckRetry {
  readonly #clock: Clock;
  readonly #retrying: (error: unknown) => void;
  readonly #hurry = new AbortController();

  /** `retrying` is told of each failed write that will be tried again; the last failure is thrown. */
  constructor(clock: Clock, retrying: (error: unknown) => void = () => {}) {
    this.#clock = clock;
    this.#retrying = retrying;
  }

  /** Retries stop waiting: each write still failing gets one last attempt now (worker shutdown). */
  hurry(): void {
    this.#hurry.abort();
  }

  /** `final` names failures that a repeat would meet again (a refusal, not a lost reply): thrown at once. */
  async write<T>(work: () => Promise<T>, final: (error: unknown) => boolean = () => false): Promise<T> {
    for (let retry = 0; ; retry++) {
      try {
        return await work();
      } catch (error) {
        const pause = RESEND_DELAYS_MS[retry];
        if (pause === undefined || this.#hurry.signal.aborted || final(error)) throw error;
        this.#retrying(error);
        // Cut short by hurry(): then the loop makes its last attempt at once.
        await this.#clock.sleep(pause, this.#hurry.signal).catch(() => {});
      }
    }
  }
}
