// The worker's claim loop: asks the backend for jobs whenever slots are free, and otherwise sleeps
// until something can have changed. It decides only when to claim and how many; running a claimed
// job is the worker's (`launch`).
//
// Invariants:
// - jobs claimed ≤ free slots: a slot counts as taken from the moment a claim asks for it, so
//   claims in flight never ask for the same slot twice (no hidden prefetch);
// - an idle loop sleeps: after a claim comes back short it asks again only on a change signal from
//   the backend or when its time is up (the poll, or the next scheduled job), never because its own
//   claims or jobs woke it;
// - a failing backend is retried with a back-off, and a change signal cuts the back-off short.
import type { Backend } from "../backend/backend.ts";
import type { Clock } from "../core/clock.ts";
import type { ClaimedJob } from "../core/job.ts";
import type { Wakeup } from "../core/wakeup.ts";
import { unlessAborted } from "../core/unless-aborted.ts";

/** Claims a worker keeps in flight at once, where claims overlap (a server backend). */
const CLAIMS_IN_FLIGHT = 2;
/**
 * Outcomes in flight that pause claims: twice the concurrency, but never fewer than this, or a
 * worker of low concurrency waits for each acknowledgement before its next claim.
 */
const MIN_ACKING_BOUND = 64;

export interface ClaimLoopDeps {
  readonly backend: Backend;
  readonly clock: Clock;
  /** Notified when a job finishes, a claim settles or the backend signals a change. */
  readonly wakeup: Wakeup;
  readonly queues: readonly string[];
  readonly worker: string;
  readonly concurrency: number;
  readonly leaseMs: number;
  readonly pollMs: number;
  /** Handlers running now: each holds a slot. */
  running(): number;
  /** Outcomes being written: they hold no slot, but too many of them pause claims. */
  acking(): number;
  launch(claimed: ClaimedJob): void;
  report(error: unknown): void;
}

export class ClaimLoop {
  readonly #deps: ClaimLoopDeps;
  /** Where claims overlap, the free slots are claimed in up to CLAIMS_IN_FLIGHT batches of this size. */
  readonly #batch: number;
  readonly #maxInFlight: number;
  readonly #inFlight = new Set<Promise<void>>();
  #reserved = 0; // slots asked for by claims in flight
  #exhausted = false; // a claim came back short: ask again only after a change signal or the time
  #probing = true; // after idling, one claim first: only a full one shows that more may wait
  #changed = false; // the backend signalled a change since the loop last looked
  // When to look again if nothing signals: the poll, or the next scheduled job if sooner. Asked
  // of the backend once per idle spell, not again on every local wake-up (a job finishing).
  #idleUntil: number | undefined;
  #idleUntilKnowsDue = false; // computed with free slots, so the next due job is in it
  #failures = 0; // in a row, for the back-off
  #backOff = false; // the backend failed: wait before the next claim

  constructor(deps: ClaimLoopDeps) {
    this.#deps = deps;
    // With one claim at a time, the server and this process take turns, each idle while the
    // other works; with several, the server works on the next batch while this process runs the
    // last one (docs/decisions.md, "How a worker claims"). SQLite claims synchronously in this
    // process, so there one claim for every free slot is cheapest.
    const overlapping = deps.backend.capabilities.overlappingClaims === true;
    this.#batch = overlapping ? Math.ceil(deps.concurrency / CLAIMS_IN_FLIGHT) : deps.concurrency;
    this.#maxInFlight = overlapping ? CLAIMS_IN_FLIGHT : 1;
  }

  /** The backend says something changed: new jobs may be there. */
  changed(): void {
    this.#changed = true;
    this.#deps.wakeup.notify();
  }

  /** Claims until `stop` aborts; resolves once no claim is in flight. */
  async run(stop: AbortSignal): Promise<void> {
    const { wakeup, clock, pollMs } = this.#deps;
    while (!stop.aborted) {
      const free = this.#free();
      if (free > 0 && !this.#exhausted && !this.#backOff && this.#inFlight.size < (this.#probing ? 1 : this.#maxInFlight)) {
        this.#claim(Math.min(free, this.#batch));
        continue;
      }
      if (this.#inFlight.size > 0) {
        // A claim settling, or a job finishing, is what changes the picture.
        await wakeup.wait(pollMs, clock, stop);
      } else if (this.#backOff) {
        // Back off (50 ms doubling, at most one poll), but wake early on a change signal, so a
        // short blip costs milliseconds.
        await wakeup.wait(Math.min(pollMs, 50 * 2 ** Math.min(this.#failures, 10)), clock, stop);
        this.#backOff = false;
      } else {
        await this.#idle(free, stop);
      }
    }
    await Promise.all(this.#inFlight);
  }

  #free(): number {
    const { concurrency } = this.#deps;
    if (this.#deps.acking() >= Math.max(2 * concurrency, MIN_ACKING_BOUND)) return 0;
    return concurrency - this.#deps.running() - this.#reserved;
  }

  #claim(limit: number): void {
    const { backend, clock } = this.#deps;
    this.#idleUntil = undefined;
    this.#reserved += limit;
    const request = backend.claim({ queues: this.#deps.queues, limit, worker: this.#deps.worker, leaseMs: this.#deps.leaseMs, now: clock.now() });
    const settled = request.then(
      (claimed) => {
        this.#failures = 0;
        this.#reserved -= limit;
        // Launched even when the worker began to stop meanwhile: it waits for them or hands them back.
        for (const c of claimed) this.#deps.launch(c);
        if (claimed.length < limit) this.#exhausted = true;
        else this.#probing = false;
      },
      (error: unknown) => {
        this.#reserved -= limit;
        this.#failed(error);
      },
    ).finally(() => {
      this.#inFlight.delete(settled);
      this.#deps.wakeup.notify();
    });
    this.#inFlight.add(settled);
  }

  #failed(error: unknown): void {
    this.#failures++;
    this.#backOff = true;
    this.#deps.report(error);
  }

  /** Nothing to claim now: sleep until a change signal or the time to look again. */
  async #idle(free: number, stop: AbortSignal): Promise<void> {
    const { wakeup, clock } = this.#deps;
    if (this.#changed) {
      // Something changed while claims were out (they may have come back short before it).
      this.#lookAgain();
      return;
    }
    if (this.#idleUntil === undefined || (free > 0 && !this.#idleUntilKnowsDue)) {
      try {
        // A look-ahead brings no job: a shutdown does not wait for its answer (a dead connection
        // could hold it for minutes).
        const wait = await unlessAborted(this.#timeToLookAgain(free > 0), stop);
        if (wait === undefined) return;
        this.#idleUntil = clock.now() + wait;
        this.#idleUntilKnowsDue = free > 0;
        this.#failures = 0; // the backend answers again: the back-off starts over at its next failure
      } catch (error) {
        this.#failed(error);
        return;
      }
    }
    // Woken by a job finishing or a claim settling, the queue is no fuller than it was: only a
    // change signal or the time is a reason to ask again. A wait that returns at once on such a
    // stale wake-up costs one loop, never a spin.
    const notified = await wakeup.wait(Math.max(0, this.#idleUntil - clock.now()), clock, stop);
    if (!notified || this.#changed) this.#lookAgain();
    // Jobs finish in bursts (their acks are batched per event-loop turn): let the whole burst
    // free its slots before claiming, so one claim fills them all instead of one claim each.
    await new Promise<void>((resolve) => setImmediate(resolve));
  }

  #lookAgain(): void {
    this.#changed = false;
    this.#exhausted = false;
    this.#probing = true;
    this.#idleUntil = undefined;
  }

  /** Until the next scheduled job is due, at most one poll; a full worker just waits a poll. */
  async #timeToLookAgain(hasFreeSlots: boolean): Promise<number> {
    const { pollMs, clock } = this.#deps;
    if (!hasFreeSlots) return pollMs;
    const next = await this.#deps.backend.nextDueAt(this.#deps.queues);
    if (next === undefined) return pollMs;
    return Math.max(0, Math.min(pollMs, next - clock.now()));
  }
}
