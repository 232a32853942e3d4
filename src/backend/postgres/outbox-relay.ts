// The outbox relay: moves jobs from a source backend (a PostgreSQL outbox the app enqueues into
// inside its own transactions) to a destination backend (Redis, say) where workers run them.
// Built on the Backend port only, so any pair of backends works.
//
// Exactly once at the destination, even when the relay dies at any point:
// - a batch is claimed from the source (leased), delivered, and only then marked succeeded in the
//   source. A relay that dies before marking leaves the jobs leased; when the lease expires they
//   are rescued and claimed again by the next relay run. A batch the destination did not take is
//   released at once (its attempt not counted), and the leases are renewed while a delivery waits
//   on the destination, so an outage of the destination fails nothing.
// - delivery keeps each job's id. The port says an enqueue that meets an existing id rejects the
//   whole batch, so a redelivery is detected: the relay then goes job by job and skips every id
//   the destination already has. A job with an idempotency key already held at the destination
//   gets the holder back from enqueue (created: false): not a second job either. This needs the
//   destination to still have the job: it must keep finished jobs longer than a relay lease plus
//   the longest time all relays may be down (docs/postgres.md).
// - a job the destination refuses for a reason of its own (a typed OffloadError, or an error
//   while the jobs after it go through) is tried again later with its attempt counted, and the
//   rest of its batch goes through; a job that could not be sent while the destination was away
//   is handed back uncounted; a cancel asked for while the relay holds a job it delivered is
//   passed on to the destination (#settle).
import type { Backend, Lease, NewJob, Retention } from "../backend.ts";
import { DEFAULT_RETRY, backoffDelay } from "../../core/backoff.ts";
import type { Clock } from "../../core/clock.ts";
import { systemClock } from "../../core/clock.ts";
import { randomToken } from "../../core/ids.ts";
import { ConfigError, OffloadError, toError } from "../../core/errors.ts";
import type { AttemptError, ClaimedJob } from "../../core/job.ts";
import { Wakeup } from "../../core/wakeup.ts";

export interface RelayOptions {
  readonly from: Backend;
  readonly to: Backend;
  /** Queues to relay. Default: every queue the source has jobs in, looked up again every 10 s. */
  readonly queues?: readonly string[];
  /** Jobs per batch. Default 500. */
  readonly batchSize?: number;
  /** How long a claimed batch is ours before another relay may take it over, ms. Default 30000. */
  readonly leaseMs?: number;
  /** Safety poll when no change signal arrives, ms. Default 1000. */
  readonly pollMs?: number;
  /** How long relayed rows stay in the outbox. Default: succeeded 7 days, failed 30 days. */
  readonly retention?: Retention;
  readonly clock?: Clock;
  readonly id?: string;
  readonly onError?: (error: unknown) => void;
  /** Called after each delivered batch, with how many jobs it moved. */
  readonly onBatch?: (count: number) => void;
}

const DAY = 86_400_000;
/** Relay deaths a job rides out (each leaves a LeaseExpired among its errors) before it ends failed in the outbox. */
const RELAY_DEATHS = 5;
/** The longest delay a Node timer takes; a longer one fires at once. */
const MAX_TIMER_MS = 2_147_483_647;

function leaseOf(claimed: ClaimedJob): Lease {
  return { id: claimed.job.id, token: claimed.token };
}

/** What became of each job of a batch at the destination, by id. */
interface Delivery {
  /**
   * At the destination: sent now, or found there; with the id it has there, which differs for a
   * keyed job that met its key's holder (it is that job now).
   */
  readonly delivered: Map<string, string>;
  /** Refused by the destination for a reason of the job's own (see #deliver). */
  readonly refused: Map<string, Error>;
  /** Not sent: the destination was away, or the relay is stopping. */
  readonly unsent: Map<string, Error>;
}
/**
 * The destination is the outbox itself (the same database and schema, Redis prefix or file under
 * two spellings of its URL): each job the relay claimed is "found at the destination", and was
 * marked relayed without ever running. Not an outage to wait out: run() ends with it.
 */
export class SameStoreError extends ConfigError {}

const DISCOVER_EVERY_MS = 10_000;
const PRUNE_EVERY_MS = 60_000;

function toNewJob(claimed: ClaimedJob): NewJob {
  const job = claimed.job;
  return {
    id: job.id, task: job.task, queue: job.queue, payloadJson: JSON.stringify(job.payload ?? null), priority: job.priority,
    runAt: job.runAt, maxAttempts: job.maxAttempts, key: job.key, owner: job.owner,
  };
}

export class OutboxRelay {
  readonly id: string;
  readonly #options: RelayOptions;
  readonly #clock: Clock;
  #queues: readonly string[] = [];
  #discoveredAt = Number.NEGATIVE_INFINITY;
  #prunedAt = Number.NEGATIVE_INFINITY;

  constructor(options: RelayOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.id = options.id ?? `relay:${process.pid}:${randomToken().slice(0, 6)}`;
  }

  /**
   * Relays one batch; returns how many jobs it moved (0 when the outbox had nothing due). Once
   * `signal` aborts, the jobs of the batch not yet tried are handed back.
   */
  async relayBatch(signal?: AbortSignal): Promise<number> {
    const { from, to } = this.#options;
    const now = this.#clock.now();
    // Batches of a relay that died come back once their lease is over. One whose cancel was asked
    // for meanwhile ends cancelled here, delivered or not: pass it on, as #settle would have.
    const rescued = await from.rescueExpired(now);
    for (const id of rescued.cancelled) await this.#cancelAtDestination(to, id, "rescued");
    // One that was on its last attempt ends failed, although its relay may have delivered it
    // before dying: if the destination has it, it goes back to the outbox's queue, and is marked
    // relayed by the next round (found at the destination, not sent again). One the destination
    // does not have (or that could not be read) goes back too, unless relays have died holding it
    // RELAY_DEATHS times: a job's attempts are for its runs at the destination, where it starts
    // with all of them, and with `attempts: 1` one relay death lost it for good. A job that every
    // relay dies on still ends failed.
    for (const id of rescued.failed) {
      const delivered = (await to.getJob(id).catch(() => undefined)) !== undefined;
      const deaths = delivered ? 0 : ((await from.getJob(id).catch(() => undefined))?.errors.filter((e) => e.name === "LeaseExpired").length ?? RELAY_DEATHS);
      if (deaths < RELAY_DEATHS) await from.retry(id, now).catch((error: unknown) => this.#report(error));
    }
    const queues = await this.#queuesNow(now);
    if (queues.length === 0) return 0;
    const leaseMs = this.#options.leaseMs ?? 30_000;
    const claimed = await from.claim({ queues, limit: this.#options.batchSize ?? 500, worker: this.id, leaseMs, now });
    if (claimed.length === 0) {
      // Perhaps a queue we do not know yet: look again on the next round, not in 10 s.
      if (now - this.#discoveredAt >= 1_000) this.#discoveredAt = Number.NEGATIVE_INFINITY;
      return 0;
    }
    const delivery = await this.#renewingLeases(claimed, leaseMs, () => this.#deliver(to, claimed.map(toNewJob), signal));
    const moved = await this.#settle(claimed, delivery);
    const unsent = [...delivery.unsent.values()];
    const itself = unsent.find((error) => error instanceof SameStoreError);
    if (itself) throw itself; // its jobs were handed back by #settle, uncounted
    const [outage] = unsent;
    // Nothing went through: the destination is away. The caller waits a poll interval.
    if (outage && delivery.delivered.size === 0 && delivery.refused.size === 0) throw outage;
    return moved;
  }

  /**
   * Records in the outbox what became of each job of a batch, so that every job ends up in
   * exactly one place:
   * - delivered: marked succeeded (relayed); if a cancel was asked for while the relay held it,
   *   the job is cancelled at the destination first, and ends cancelled in the outbox;
   * - refused by the destination (a reason of the job's own, see #deliver): tried again
   *   later with a back-off, its attempt counted, so one that is always refused ends `failed` in
   *   the outbox, where `offload jobs replay` can requeue it;
   * - not sent (the destination away, or an error that says nothing of the job): handed back at
   *   once, its attempt not counted. Left leased, each lease that ran out would cost the job an
   *   attempt, and an outage of maxAttempts leases would fail every job in it.
   * Each step runs whatever the others did: one failed write to the outbox leaves its jobs leased
   * (they come back when the lease ends, and are found at the destination by id), not the
   * whole batch. The first such failure is thrown at the end.
   */
  async #settle(claimed: readonly ClaimedJob[], delivery: Delivery): Promise<number> {
    const { from, to } = this.#options;
    let failure: unknown;
    const attempt = async (step: () => Promise<unknown>): Promise<void> => {
      try {
        await step();
      } catch (error) {
        failure ??= error;
        this.#report(error);
      }
    };
    const delivered = claimed.filter((c) => delivery.delivered.has(c.job.id));
    const unsent = claimed.filter((c) => delivery.unsent.has(c.job.id));
    // Not sent may still mean at the destination: a batch whose reply was lost, then a read that
    // failed. Handed back, a job whose cancel was asked for ends cancelled in the outbox, so the
    // cancel is passed on for those too (a job not there answers NOT_FOUND, which is fine).
    const flagged = await this.#cancelsAskedFor([...delivered, ...unsent]);
    for (const c of unsent) if (flagged.has(c.job.id)) await this.#cancelAtDestination(to, c.job.id, "handed back");
    const relayed: ClaimedJob[] = [];
    const cancelled: ClaimedJob[] = [];
    for (const c of delivered) {
      if (flagged.has(c.job.id) && (await this.#cancelAtDestination(to, c.job.id, "delivered"))) cancelled.push(c);
      else relayed.push(c);
    }
    // The result names the destination's job when it is another one (the key's holder).
    const result = (c: ClaimedJob): string => {
      const there = delivery.delivered.get(c.job.id);
      return JSON.stringify({ relayedTo: to.name, ...(there !== undefined && there !== c.job.id ? { jobId: there } : {}) });
    };
    // A LEASE_LOST here means another relay took the batch over: it finds the ids delivered and skips them.
    await attempt(() => from.complete(relayed.map((c) => ({ ...leaseOf(c), resultJson: result(c) })), this.#clock.now()));
    for (const c of cancelled) await attempt(() => from.acknowledgeCancel(leaseOf(c), this.#clock.now()));
    for (const c of claimed) {
      const refusal = delivery.refused.get(c.job.id);
      if (!refusal) continue;
      const now = this.#clock.now();
      await attempt(() => from.fail({ ...leaseOf(c), error: this.#refusal(c, refusal, now), retryAt: now + backoffDelay(DEFAULT_RETRY, c.job.attempt), now }));
    }
    if (unsent.length > 0) await attempt(() => from.release(unsent.map(leaseOf), this.#clock.now()));
    if (failure !== undefined) throw failure;
    this.#options.onBatch?.(relayed.length);
    return relayed.length;
  }

  /** Reports through `onError`; an `onError` that throws must not become an unhandled rejection. */
  #report(error: unknown): void {
    try {
      this.#options.onError?.(error);
    } catch {
      // Nothing more can be done with it here.
    }
  }

  /**
   * Which of these jobs someone asked to cancel while the relay held them: only flagged
   * in the outbox, so a heartbeat tells. If it goes unanswered, each job is read instead; a job
   * whose flag cannot be read either is reported, and settled as if none was asked for.
   */
  async #cancelsAskedFor(held: readonly ClaimedJob[]): Promise<ReadonlySet<string>> {
    const { from } = this.#options;
    if (held.length === 0) return new Set();
    try {
      const leases = held.map(leaseOf);
      return new Set((await from.heartbeat({ worker: this.id, leases, leaseMs: this.#options.leaseMs ?? 30_000, now: this.#clock.now() })).cancelRequested);
    } catch (error) {
      this.#report(error);
    }
    const flagged = new Set<string>();
    for (const c of held) {
      try {
        if ((await from.getJob(c.job.id))?.cancelRequested) flagged.add(c.job.id);
      } catch (error) {
        this.#report(new Error(`job ${c.job.id}: whether its cancel was asked for could not be read: ${toError(error).message}`, { cause: error }));
      }
    }
    return flagged;
  }

  /**
   * Passes a cancel on to the destination; true when the job is cancelled there, flagged to cancel
   * while it runs, or not there at all (a keyed job that met its key's holder there was never
   * stored under its own id). A cancel that finds the job finished, or fails, is reported.
   */
  async #cancelAtDestination(to: Backend, id: string, how: "delivered" | "rescued" | "handed back"): Promise<boolean> {
    try {
      const status = await to.cancel(id, this.#clock.now());
      if (status === "ALREADY_FINISHED") this.#report(new Error(`job ${id}: its cancel reached the destination after the job had finished there`));
      return status !== "ALREADY_FINISHED";
    } catch (error) {
      const what = { delivered: "was relayed", rescued: "was cancelled in the outbox after its relay's lease ran out", "handed back": "is cancelled in the outbox and may have reached the destination" }[how];
      this.#report(new Error(`job ${id} ${what}, but its cancel could not be passed on to the destination: ${toError(error).message}`, { cause: error }));
      return false;
    }
  }

  #refusal(claimed: ClaimedJob, error: Error, now: number): AttemptError {
    return { attempt: claimed.job.attempt, name: "RelayRefused", message: `the destination refused the job: ${error.message}`, stack: error.stack, worker: this.id, at: now };
  }

  /**
   * Runs `body` while renewing the batch's leases every third of a lease. A delivery can outlast a
   * lease: during an outage, each call to the destination waits until its client gives up (ioredis
   * holds commands for a host that is down for about 10 s, twice over). Another relay would then
   * rescue the batch, charging every job an attempt, and a long outage would fail them all.
   */
  async #renewingLeases<T>(claimed: readonly ClaimedJob[], leaseMs: number, body: () => Promise<T>): Promise<T> {
    const leases = claimed.map(leaseOf);
    let renewing: Promise<unknown> | undefined;
    const timer = setInterval(() => {
      renewing ??= this.#options.from.heartbeat({ worker: this.id, leases, leaseMs, now: this.#clock.now() })
        .catch((error: unknown) => this.#report(error))
        .finally(() => (renewing = undefined));
    }, Math.min(Math.max(1, Math.floor(leaseMs / 3)), MAX_TIMER_MS));
    try {
      return await body();
    } finally {
      clearInterval(timer);
      await renewing;
    }
  }

  /** Relays until `signal` aborts; the batch in flight is finished first. */
  async run(signal: AbortSignal): Promise<void> {
    const wakeup = new Wakeup();
    // Only changes that may bring jobs to relay: its own claims and completions are quiet.
    const stop = this.#options.from.watch(() => wakeup.notify(), { newWork: true });
    try {
      while (!signal.aborted) {
        let moved = 0;
        try {
          moved = await this.relayBatch(signal);
          await this.#pruneNow();
        } catch (error) {
          if (error instanceof SameStoreError) throw error; // every round would claim and hand back, relaying nothing
          this.#report(error);
          // A full poll interval before trying again: the release of a batch that could not be
          // delivered notifies, and must not wake us into claiming it again at once, in a loop.
          await this.#clock.sleep(this.#options.pollMs ?? 1_000, signal).catch(() => {});
          continue;
        }
        if (moved === 0) await wakeup.wait(this.#options.pollMs ?? 1_000, this.#clock, signal);
      }
    } finally {
      stop();
    }
  }

  /**
   * Delivers a batch, and says of each job whether it is at the destination, was refused by it,
   * or could not be sent. Never throws: what it could not find out, it reports as not sent.
   */
  async #deliver(to: Backend, jobs: readonly NewJob[], signal: AbortSignal | undefined): Promise<Delivery> {
    const delivery: Delivery = { delivered: new Map(), refused: new Map(), unsent: new Map() };
    const now = this.#clock.now();
    try {
      const results = await to.enqueue({ jobs, now });
      jobs.forEach((job, i) => delivery.delivered.set(job.id, results[i]?.job.id ?? job.id));
      return delivery;
    } catch (error) {
      // Either some of these ids are at the destination already (a relay died between delivering
      // and marking), or it refused a job, or it is unreachable. Going job by job tells them
      // apart; one bad job must not hold up the jobs around it, nor get those delivered again
      // and again.
      this.#report(new Error(`destination refused the batch (${toError(error).message}); delivering job by job, skipping ids it has`, { cause: error }));
    }
    // A job that fails without a verdict (an error that is no OffloadError) is a suspect: if a job
    // after it goes through, the destination is working and the failure was the job's own, and it
    // counts as refused (else such a job would be handed back uncounted for ever, and hold every
    // batch it is in to this walk). Two such failures in a row, or a read that fails, say the
    // destination is away: the walk stops there, and the rest are handed back uncounted. That
    // also bounds how long an outage holds a batch: each call may wait out the client's resends.
    let suspect: { readonly job: NewJob; readonly error: Error } | undefined;
    for (const [i, job] of jobs.entries()) {
      const stop = (reason: Error): void => {
        if (suspect) delivery.unsent.set(suspect.job.id, suspect.error);
        for (const rest of jobs.slice(i)) delivery.unsent.set(rest.id, reason);
      };
      if (signal?.aborted) {
        stop(new Error("the relay is stopping"));
        break;
      }
      let failed: Error | undefined;
      try {
        failed = await this.#deliverOne(to, job, now, delivery);
      } catch (unreachable) {
        stop(toError(unreachable)); // a read failed: nothing is known of this job and those after it
        break;
      }
      if (failed && suspect) {
        stop(failed);
        break;
      }
      if (!failed && suspect) {
        // The destination works again: perhaps it had only just come back (a restart ending
        // between the two jobs). The suspect is sent once more, and refused only if it fails again.
        try {
          const error = await this.#deliverOne(to, suspect.job, now, delivery);
          if (error) delivery.refused.set(suspect.job.id, error);
        } catch (unreachable) {
          delivery.unsent.set(suspect.job.id, toError(unreachable));
        }
      }
      suspect = failed ? { job, error: failed } : undefined;
    }
    if (suspect) delivery.unsent.set(suspect.job.id, suspect.error); // the last job: nothing after it to tell
    return delivery;
  }

  /**
   * One job on its own. Records it as delivered or refused, or returns the error of a failure
   * without a verdict (see #deliver); throws only if the destination cannot be read.
   */
  async #deliverOne(to: Backend, job: NewJob, now: number, delivery: Delivery): Promise<Error | undefined> {
    const there = await to.getJob(job.id);
    // Active under this relay's own claim: the relay never claims at a destination, so this is
    // the outbox row itself, read through the destination.
    if (there?.state === "active" && there.worker === this.id) {
      throw new SameStoreError(`the destination is the outbox itself (job ${job.id} is held there by this relay's own claim): --to must name another backend than --from`);
    }
    if (there) {
      delivery.delivered.set(job.id, job.id); // there already: a relay died between delivering and marking
      return undefined;
    }
    try {
      await this.#send(to, job, now, delivery);
      return undefined;
    } catch (error) {
      if (await to.getJob(job.id)) delivery.delivered.set(job.id, job.id); // it landed, and only the reply was lost
      else if (error instanceof OffloadError) delivery.refused.set(job.id, error); // the destination's verdict on it
      else return (await this.#deliveredAgain(to, job, now, delivery)) ? undefined : toError(error);
      return undefined;
    }
  }

  /** Enqueues one job at the destination and records the id it has there. */
  async #send(to: Backend, job: NewJob, now: number, delivery: Delivery): Promise<void> {
    const [result] = await to.enqueue({ jobs: [job], now });
    delivery.delivered.set(job.id, result?.job.id ?? job.id);
  }

  /**
   * A keyed job that met its key's holder at the destination is stored as that holder, never under
   * its own id, so a lost reply cannot be told from a failure by reading it. Sending it again is
   * safe (the key answers with the holder, or the job is stored now) and says which.
   */
  async #deliveredAgain(to: Backend, job: NewJob, now: number, delivery: Delivery): Promise<boolean> {
    if (job.key === undefined) return false;
    try {
      await this.#send(to, job, now, delivery);
      return true;
    } catch {
      return false;
    }
  }

  async #queuesNow(now: number): Promise<readonly string[]> {
    if (this.#options.queues) return this.#options.queues;
    if (now - this.#discoveredAt >= DISCOVER_EVERY_MS || this.#queues.length === 0) {
      this.#queues = (await this.#options.from.counts()).map((q) => q.queue);
      this.#discoveredAt = now;
    }
    return this.#queues;
  }

  async #pruneNow(): Promise<void> {
    const now = this.#clock.now();
    if (now - this.#prunedAt < PRUNE_EVERY_MS) return;
    this.#prunedAt = now;
    await this.#options.from.prune(this.#options.retention ?? { succeeded: 7 * DAY, failed: 30 * DAY, cancelled: 7 * DAY }, now);
  }
}
