// The outbox relay: moves jobs from a source backend (a PostgreSQL outbox the app enqueues into
// inside its own transactions) to a destination backend (Redis, say) where workers run them.
// Built on the Backend port only, so any pair of backends works.
//
// Exactly once at the destination, even when the relay dies at any point:
// - a batch is claimed from the source (leased), delivered, and only then marked succeeded in the
//   source. A relay that dies before marking leaves the jobs leased; when the lease expires they
//   are rescued and claimed again by the next relay run. A batch the destination did not take is
//   released at once (its attempt not counted), so an outage of the destination fails nothing.
// - delivery keeps each job's id. The port says an enqueue that meets an existing id rejects the
//   whole batch, so a redelivery is detected: the relay then goes job by job and skips every id
//   the destination already has. A job with an idempotency key already held at the destination
//   gets the holder back from enqueue (created: false): not a second job either.
import type { Backend, NewJob, Retention } from "../backend.ts";
import type { Clock } from "../../core/clock.ts";
import { systemClock } from "../../core/clock.ts";
import { randomToken } from "../../core/ids.ts";
import type { ClaimedJob } from "../../core/job.ts";
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

  /** Relays one batch; returns how many jobs it moved (0 when the outbox had nothing due). */
  async relayBatch(): Promise<number> {
    const { from, to } = this.#options;
    const now = this.#clock.now();
    await from.rescueExpired(now); // batches of a relay that died come back once their lease is over
    const queues = await this.#queuesNow(now);
    if (queues.length === 0) return 0;
    const claimed = await from.claim({
      queues, limit: this.#options.batchSize ?? 500, worker: this.id, leaseMs: this.#options.leaseMs ?? 30_000, now,
    });
    if (claimed.length === 0) {
      // Perhaps a queue we do not know yet: look again on the next round, not in 10 s.
      if (now - this.#discoveredAt >= 1_000) this.#discoveredAt = Number.NEGATIVE_INFINITY;
      return 0;
    }
    try {
      await this.#deliver(to, claimed.map(toNewJob));
    } catch (error) {
      // The destination is unreachable or refused: hand the batch back at once, its attempt not
      // counted. Left leased, each lease that runs out costs the job one of its attempts in the
      // outbox, so an outage of maxAttempts leases would fail every job in it (failed in the
      // outbox, never relayed). Jobs that did reach the destination are found there by id on the
      // next delivery. If the release fails too, the leases expire as when a relay dies.
      const leases = claimed.map((c) => ({ id: c.job.id, token: c.token }));
      await from.release(leases, this.#clock.now()).catch((releaseError: unknown) => this.#options.onError?.(releaseError));
      throw error;
    }
    const result = JSON.stringify({ relayedTo: to.name });
    // A LEASE_LOST here means another relay took the batch over: it finds the ids delivered and skips them.
    await from.complete(claimed.map((c) => ({ id: c.job.id, token: c.token, resultJson: result })), this.#clock.now());
    this.#options.onBatch?.(claimed.length);
    return claimed.length;
  }

  /** Relays until `signal` aborts; the batch in flight is finished first. */
  async run(signal: AbortSignal): Promise<void> {
    const wakeup = new Wakeup();
    const stop = this.#options.from.watch(() => wakeup.notify());
    try {
      while (!signal.aborted) {
        let moved = 0;
        try {
          moved = await this.relayBatch();
          await this.#pruneNow();
        } catch (error) {
          this.#options.onError?.(error);
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

  async #deliver(to: Backend, jobs: NewJob[]): Promise<void> {
    const now = this.#clock.now();
    try {
      await to.enqueue({ jobs, now });
      return;
    } catch (error) {
      // Some of these ids may be at the destination already (a relay died between delivering and
      // marking): go one by one and skip those. Anything else fails again below, and is thrown.
      const reason = error instanceof Error ? error.message : String(error);
      this.#options.onError?.(new Error(`destination refused the batch (${reason}); delivering job by job, skipping ids it has`, { cause: error }));
    }
    for (const job of jobs) {
      if (await to.getJob(job.id)) continue;
      try {
        await to.enqueue({ jobs: [job], now });
      } catch (error) {
        if (!(await to.getJob(job.id))) throw error;
      }
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
