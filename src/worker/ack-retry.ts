// Writing an outcome again when its write failed. A failed write (a dropped connection, a
// restarting server) leaves the outcome unknown: it may have landed. Sending it again is safe
// because every acknowledgement is idempotent by lease token (the port's promise: a repeat of an
// outcome already recorded by the same lease is answered as the first was and writes nothing),
// and it spares the job a second run once its lease expires, and its error from being lost.
import { RESEND_DELAYS_MS } from "../backend/lost-replies.ts";
import type { Clock } from "../core/clock.ts";

/** The pause between tries once the resend schedule is spent and the lease still runs. */
const LATE_PAUSE_MS = 1_000;

export class AckRetry {
  readonly #clock: Clock;
  readonly #leaseMs: number;
  readonly #retrying: (error: unknown) => void;
  readonly #hurry = new AbortController();

  /**
   * `retrying` is told of each failed write that will be tried again; the last failure is thrown.
   * Writes are tried on the resend schedule, then every second for as long as a lease of `leaseMs`
   * taken when the write began would still run: the outcome can land until the job is rescued.
   * A server that refuses writes for a while (a Sentinel failover under min-replicas-to-write:
   * NOREPLICAS for about 10 s) outlasted the schedule's 8.75 s, and a job that had succeeded ran
   * again once its lease expired, or ended failed on its last attempt.
   */
  constructor(clock: Clock, leaseMs: number, retrying: (error: unknown) => void = () => {}) {
    this.#clock = clock;
    this.#leaseMs = leaseMs;
    this.#retrying = retrying;
  }

  /** Retries stop waiting: each write still failing gets one last attempt now (worker shutdown). */
  hurry(): void {
    this.#hurry.abort();
  }

  /** `final` names failures that a repeat would meet again (a refusal, not a lost reply): thrown at once. */
  async write<T>(work: () => Promise<T>, final: (error: unknown) => boolean = () => false): Promise<T> {
    const leaseEnds = this.#clock.now() + this.#leaseMs;
    for (let retry = 0; ; retry++) {
      try {
        return await work();
      } catch (error) {
        const late = this.#clock.now() + LATE_PAUSE_MS <= leaseEnds ? LATE_PAUSE_MS : undefined;
        const pause = RESEND_DELAYS_MS[retry] ?? late;
        if (pause === undefined || this.#hurry.signal.aborted || final(error)) throw error;
        this.#retrying(error);
        // Cut short by hurry(): then the loop makes its last attempt at once.
        await this.#clock.sleep(pause, this.#hurry.signal).catch(() => {});
      }
    }
  }
}
