// Tells other processes that this one changed jobs: a NOTIFY of its own, sent once the change has
// committed, instead of a pg_notify() inside the change's own statement.
//
// Why: a transaction that has called NOTIFY takes a lock of the whole database when it commits
// and holds it until the commit is over, WAL flush included (PostgreSQL's async.c: notifications
// are queued in commit order). Every such commit waits for the one before it, from every process,
// so writes that notified could not share a flush: ten connections each inserting a row and
// notifying committed 3,000 times a second here, exactly what one connection did, against 8,900-
// 10,700 without the NOTIFY (pgbench, docs/postgres.md). Enqueues, completions, failures, progress
// and log lines from all workers and web processes queued on that one lock.
//
// Now the write commits without it, and this sends `pg_notify` in a transaction of its own that
// writes nothing (no commit record to flush: the lock is let go at once; one lost to a crash costs
// a listener one poll). At most one NOTIFY per kind is on its way, and a change made
// while one is sends one more after it, never fewer: a listener must hear of a change after the
// change is visible, so one that went out before this write committed does not cover it. Under
// load many writes share one NOTIFY; one at a time, a listener hears of a change one round trip
// later than when the write notified itself.
//
// Left inside its statement: the enqueue in the app's own transaction (its jobs exist only once
// the app commits, and that commit must notify). The claim, whose commit is asynchronous, notifies
// here too: an app transaction stuck in its commit after a NOTIFY (a synchronous standby away)
// held every claim behind it.
import { setTimeout as setTimeoutPromise } from "node:timers/promises";

/** One kind of NOTIFY: its payload, and whether one is on its way. */
interface Kind {
  readonly payload: string;
  readonly quiet: boolean;
  /** The NOTIFY on its way, if one is. */
  running: Promise<void> | undefined;
  /** A change came while it was: send one more after it. */
  again: boolean;
}

/**
 * The least time between two quiet NOTIFYs of one process, ms. A drain's claims and completions
 * are all quiet (nothing new to claim) and came a round trip apart, each with a NOTIFY statement
 * of its own: about a tenth of a drain's throughput on this machine. Quiet changes are for result
 * waiters and event streams elsewhere, which hear of them this much later at most; new work is
 * never held back.
 */
export const QUIET_PACE_MS = 5;

/**
 * Pauses before each new try of a NOTIFY whose send failed, ms. The write it tells of has
 * committed, and a NOTIFY lost with its connection (a server process ended, a pooled session the
 * server closed) was heard by no one: workers elsewhere found the job at their poll only. After
 * the last, an outage is long enough that the listeners lost their connections too, and they look
 * again once they are back.
 */
export const RESEND_PAUSES_MS: readonly number[] = [50, 200, 1_000];

export class Notifier {
  readonly #send: (payload: string) => Promise<unknown>;
  readonly #pause: (ms: number, signal: AbortSignal) => Promise<void>;
  readonly #work: Kind;
  readonly #quiet: Kind;
  #closed = false;
  /** Aborted at close(): a pause before a resend ends then, its timer with it. */
  readonly #stop = new AbortController();

  /**
   * `send(payload)`: one NOTIFY on the schema's channel, committed on its own, which rejects when
   * the NOTIFY may not have gone out and sending it again may help (its connection failed);
   * `pause(ms, signal)`: waits, less once `signal` aborts (a test's clock may stand in).
   */
  constructor(origin: string, send: (payload: string) => Promise<unknown>, pause = pauseUnlessAborted) {
    this.#send = send;
    this.#pause = pause;
    this.#work = { payload: origin, quiet: false, running: undefined, again: false };
    this.#quiet = { payload: `${origin} quiet`, quiet: true, running: undefined, again: false };
  }

  /** Something of ours changed and has committed; `quiet`: nothing new to claim (change-listeners.ts). */
  notify(quiet: boolean): void {
    if (this.#closed) return;
    const kind = quiet ? this.#quiet : this.#work;
    if (kind.running) kind.again = true;
    else kind.running = this.#run(kind);
  }

  async #run(kind: Kind): Promise<void> {
    let failures = 0;
    try {
      do {
        kind.again = false;
        const started = performance.now();
        const sent = await this.#send(kind.payload).then(() => true, () => false);
        if (!sent) {
          // Sent again after a pause (changes made meanwhile share it), a few times at most.
          const pause = RESEND_PAUSES_MS[failures++];
          if (pause === undefined) {
            failures = 0; // given up on: the next change's NOTIFY gets its own tries
          } else if (!this.#closed) {
            kind.again = true;
            await this.#pause(pause, this.#stop.signal);
          }
          if (this.#closed) kind.again = false; // its connection failed: not tried again at close
          continue;
        }
        failures = 0;
        const left = QUIET_PACE_MS - (performance.now() - started);
        if (kind.quiet && kind.again && left > 0 && !this.#closed) await this.#pause(left, this.#stop.signal);
        // Once closed too: the change owed committed before close(), and the send on its way may
        // have gone before it (no pause, no resend: notify() takes nothing more, so this ends).
      } while (kind.again);
    } finally {
      kind.running = undefined;
    }
  }

  /**
   * Takes no more changes; resolves once the NOTIFYs on their way, and one more for changes made
   * while they were, have settled (before the pool ends).
   */
  async close(): Promise<void> {
    this.#closed = true;
    this.#stop.abort();
    await Promise.all([this.#work.running, this.#quiet.running]);
  }
}

/** A timer that a close() clears: a pending one kept the process alive for up to a second after it. */
function pauseUnlessAborted(ms: number, signal: AbortSignal): Promise<void> {
  return setTimeoutPromise(ms, undefined, { signal }).catch(() => {});
}
