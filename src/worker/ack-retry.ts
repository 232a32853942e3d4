// Writing an outcome again when its write failed. A failed write (a dropped connection, a
// restarting server) leaves the outcome unknown: it may have landed. Sending it again is safe
// because every acknowledgement is idempotent by lease token (the port's promise: a repeat of an
// outcome already recorded by the same lease is answered as the first was and writes nothing),
// and it spares the job a second run once its lease expires, and its error from being lost.
import { RESEND_DELAYS_MS } from "../backend/lost-replies.ts";
import type { Clock } from "../core/clock.ts";

/** The pause between tries once the resend schedule is spent and the lease still runs. */
const LATE_PAUSE_MS = 1_000;
/** How long the resend schedule alone tries a write. */
const RESEND_TOTAL_MS = RESEND_DELAYS_MS.reduce((sum, ms) => sum + ms, 0);

export class AckRetry {
  readonly #clock: Clock;
  readonly #leaseMs: number;
  readonly #retrying: (error: unknown) => void;
  readonly #hurry = new AbortController();
  /** Since when each failing write (an outcome between tries, or the heartbeats) has failed. */
  readonly #failingSince = new Set<{ readonly since: number }>();

  /**
   * `retrying` is told of each failed write that will be tried again; the last failure is thrown.
   * Writes are tried on the resend schedule, then every second until twice `leaseMs` has passed
   * since the write began. A server that refuses writes for a while (a Sentinel failover under
   * min-replicas-to-write: NOREPLICAS for 10-16 s) outlasted the schedule's 8.75 s, and a job that
   * had succeeded ran again once its lease expired, or ended failed on its last attempt. Past the
   * lease the outcome still lands if nobody has rescued the job yet, and while writes are refused
   * nobody can: when they come back, the first write wins (see `failing`).
   */
  constructor(clock: Clock, leaseMs: number, retrying: (error: unknown) => void = () => {}) {
    this.#clock = clock;
    this.#leaseMs = leaseMs;
    this.#retrying = retrying;
  }

  /**
   * Some write is between tries, or heartbeats fail (`failingFrom`): the backend is refusing or
   * dropping writes. The worker's rescue sweep waits meanwhile, so that when writes come back this
   * worker's outcomes and heartbeats land before it rescues the very jobs they are about (their
   * leases ran out while nothing could be written).
   */
  get failing(): boolean {
    // Bounded by how long a write is tried, so that a write stuck on a call that never settles
    // cannot hold the sweep for good.
    const horizon = this.#clock.now() - Math.max(RESEND_TOTAL_MS, 2 * this.#leaseMs);
    for (const write of this.#failingSince) if (write.since > horizon) return true;
    return false;
  }

  /**
   * Counts as a failing write from now until the returned function is called: an outcome between
   * tries (write), and the worker's heartbeats, from one that failed until one gets through. A handler still running through an
   * outage has no outcome to retry, but its lease runs out just the same, and when writes came
   * back this worker's own sweep could rescue it before the next heartbeat renewed it: the job
   * was claimed again and ran twice.
   */
  failingFrom(): () => void {
    const began = { since: this.#clock.now() };
    this.#failingSince.add(began);
    return () => this.#failingSince.delete(began);
  }

  /** Retries stop waiting: each write still failing gets one last attempt now (worker shutdown). */
  hurry(): void {
    this.#hurry.abort();
  }

  /** `final` names failures that a repeat would meet again (a refusal, not a lost reply): thrown at once. */
  async write<T>(work: () => Promise<T>, final: (error: unknown) => boolean = () => false): Promise<T> {
    const giveUpAt = this.#clock.now() + 2 * this.#leaseMs;
    let recovered: (() => void) | undefined;
    try {
      for (let retry = 0; ; retry++) {
        try {
          return await work();
        } catch (error) {
          const late = this.#clock.now() + LATE_PAUSE_MS <= giveUpAt ? LATE_PAUSE_MS : undefined;
          const pause = RESEND_DELAYS_MS[retry] ?? late;
          if (pause === undefined || this.#hurry.signal.aborted || final(error)) throw error;
          recovered ??= this.failingFrom();
          this.#retrying(error);
          // Cut short by hurry(): then the loop makes its last attempt at once.
          await this.#clock.sleep(pause, this.#hurry.signal).catch(() => {});
        }
      }
    } finally {
      recovered?.();
    }
  }
}
