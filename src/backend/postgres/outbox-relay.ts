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
//   destination to still have the job: it must keep finished jobs longer than a relay lease
//   (docs/postgres.md).
// - a job the destination refuses on its own is tried again later with its attempt counted, and
//   the rest of its batch goes through; a cancel asked for while the relay holds a job is passed
//   on to the destination.
import type { Backend, Lease, NewJob, Retention } from "../backend.ts";
import { DEFAULT_RETRY, backoffDelay } from "../../core/backoff.ts";
import type { Clock } from "../../core/clock.ts";
import { systemClock } from "../../core/clock.ts";
import { randomToken } from "../../core/ids.ts";
import { toError } from "../../core/errors.ts";
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
    const leaseMs = this.#options.leaseMs ?? 30_000;
    const claimed = await from.claim({ queues, limit: this.#options.batchSize ?? 500, worker: this.id, leaseMs, now });
    if (claimed.length === 0) {
      // Perhaps a queue we do not know yet: look again on the next round, not in 10 s.
      if (now - this.#discoveredAt >= 1_000) this.#discoveredAt = Number.NEGATIVE_INFINITY;
      return 0;
    }
    const leases = claimed.map((c) => ({ id: c.job.id, token: c.token }));
    let refused: ReadonlyMap<string, Error>;
    try {
      refused = await this.#renewingLeases(leases, leaseMs, () => this.#deliver(to, claimed.map(toNewJob)));
    } catch (error) {
      // The destination is unreachable, or refused every job: hand the batch back at once, its
      // attempt not counted. Left leased, each lease that runs out costs the job one of its
      // attempts in the outbox, so an outage of maxAttempts leases would fail every job in it
      // (failed in the outbox, never relayed). Jobs that did reach the destination are found there
      // by id on the next delivery. If the release fails too, the leases expire as when a relay dies.
      await from.release(leases, this.#clock.now()).catch((releaseError: unknown) => this.#options.onError?.(releaseError));
      throw error;
    }
    return this.#settle(claimed, refused);
  }

  /**
   * Records in the outbox what became of a delivered batch: relayed jobs succeed there, a job the
   * destination refused is tried again later (its attempt counted, so one that is always refused
   * ends `failed` in the outbox, where `offload jobs replay` can requeue it), and a job whose
   * cancel was asked for while the relay held it is cancelled at the destination too.
   */
  async #settle(claimed: readonly ClaimedJob[], refused: ReadonlyMap<string, Error>): Promise<number> {
    const { from, to } = this.#options;
    const leases = claimed.map((c) => ({ id: c.job.id, token: c.token }));
    // A cancel asked for while we held the jobs is only flagged in the outbox: a heartbeat tells.
    // Unanswered, the batch is marked all the same (the cancel then finds the job relayed).
    const flagged = await from.heartbeat({ worker: this.id, leases, leaseMs: this.#options.leaseMs ?? 30_000, now: this.#clock.now() })
      .then((h) => new Set(h.cancelRequested), (error: unknown) => {
        this.#options.onError?.(error);
        return new Set<string>();
      });
    const relayed: ClaimedJob[] = [];
    for (const c of claimed) {
      const refusal = refused.get(c.job.id);
      const now = this.#clock.now();
      if (refusal) {
        await from.fail({ id: c.job.id, token: c.token, error: this.#refusal(c, refusal, now), retryAt: now + backoffDelay(DEFAULT_RETRY, c.job.attempt), now });
      } else if (flagged.has(c.job.id) && (await this.#cancelAtDestination(to, c.job.id, now))) {
        await from.acknowledgeCancel({ id: c.job.id, token: c.token }, now);
      } else {
        relayed.push(c);
      }
    }
    const result = JSON.stringify({ relayedTo: to.name });
    // A LEASE_LOST here means another relay took the batch over: it finds the ids delivered and skips them.
    await from.complete(relayed.map((c) => ({ id: c.job.id, token: c.token, resultJson: result })), this.#clock.now());
    this.#options.onBatch?.(relayed.length);
    return relayed.length;
  }

  /** True once the destination has the job cancelled, or flagged to cancel while it runs. */
  async #cancelAtDestination(to: Backend, id: string, now: number): Promise<boolean> {
    try {
      const status = await to.cancel(id, now);
      return status === "CANCELLED" || status === "CANCEL_REQUESTED";
    } catch (error) {
      this.#options.onError?.(new Error(`job ${id} was relayed, but its cancel could not be passed on: ${toError(error).message}`, { cause: error }));
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
  async #renewingLeases<T>(leases: readonly Lease[], leaseMs: number, body: () => Promise<T>): Promise<T> {
    let renewing: Promise<unknown> | undefined;
    const timer = setInterval(() => {
      renewing ??= this.#options.from.heartbeat({ worker: this.id, leases, leaseMs, now: this.#clock.now() })
        .catch((error: unknown) => this.#options.onError?.(error))
        .finally(() => (renewing = undefined));
    }, Math.max(1, Math.floor(leaseMs / 3)));
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

  /**
   * Delivers a batch; returns the jobs the destination refused, by id, with its reason. Throws
   * when the destination cannot be reached, or refused every job (nothing was delivered, and
   * nothing is known about the jobs: the batch is handed back whole).
   */
  async #deliver(to: Backend, jobs: readonly NewJob[]): Promise<ReadonlyMap<string, Error>> {
    const refused = new Map<string, Error>();
    const now = this.#clock.now();
    try {
      await to.enqueue({ jobs, now });
      return refused;
    } catch (error) {
      // Either some of these ids are at the destination already (a relay died between delivering
      // and marking), or it refused a job, or it is unreachable. Going job by job tells them
      // apart: the first read fails at once if it is unreachable, ids it has are skipped, and a
      // job refused alone is refused for itself. One bad job must not hold up the jobs around
      // it, nor get those delivered again and again.
      this.#options.onError?.(new Error(`destination refused the batch (${toError(error).message}); delivering job by job, skipping ids it has`, { cause: error }));
    }
    for (const job of jobs) {
      if (await to.getJob(job.id)) continue;
      try {
        await to.enqueue({ jobs: [job], now });
      } catch (error) {
        if (!(await to.getJob(job.id))) refused.set(job.id, toError(error));
      }
    }
    const [first] = refused.values();
    if (first && refused.size === jobs.length) throw first;
    return refused;
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
