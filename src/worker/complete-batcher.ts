// Successes are acknowledged in groups: every completion requested in the same turn of the event
// loop goes to the backend in one call (one transaction or script). Each caller still learns its
// own status, so batching never weakens fencing.
//
// A batch whose write fails (a dropped connection, a restarting server: the outcome is unknown) is
// sent again after a pause. That is safe because a repeated acknowledgement with the same lease
// token is OK and changes nothing (the port's promise), and it spares the jobs whose first write
// did land from running a second time once their leases expire.
import type { AckStatus, Backend, CompleteAck } from "../backend/backend.ts";
import type { Clock } from "../core/clock.ts";

/** Pauses before each retry of a failed batch: about 9 s in all, well inside a default lease. */
export const ACK_RETRY_DELAYS_MS: readonly number[] = [50, 200, 500, 1_000, 2_000, 5_000];

interface Pending {
  readonly ack: CompleteAck;
  readonly resolve: (status: AckStatus) => void;
  readonly reject: (error: unknown) => void;
}

export interface CompleteBatcherOptions {
  readonly maxBatch?: number;
  /** Told of each failed write that will be retried (the last failure goes to the callers). */
  readonly retrying?: (error: unknown) => void;
}

export class CompleteBatcher {
  readonly #backend: Backend;
  readonly #clock: Clock;
  readonly #maxBatch: number;
  readonly #retrying: (error: unknown) => void;
  readonly #hurry = new AbortController();
  #pending: Pending[] = [];
  #scheduled = false;
  #inflight = new Set<Promise<void>>();

  constructor(backend: Backend, clock: Clock, options: CompleteBatcherOptions = {}) {
    this.#backend = backend;
    this.#clock = clock;
    this.#maxBatch = options.maxBatch ?? 500;
    this.#retrying = options.retrying ?? (() => {});
  }

  complete(ack: CompleteAck): Promise<AckStatus> {
    return new Promise<AckStatus>((resolve, reject) => {
      this.#pending.push({ ack, resolve, reject });
      if (this.#pending.length >= this.#maxBatch) this.#flush();
      else if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  /** Retries stop waiting: each batch still failing gets one last attempt now (worker shutdown). */
  hurry(): void {
    this.#hurry.abort();
  }

  /** Resolves when every acknowledgement requested so far has been written (or given up on). */
  async drain(): Promise<void> {
    this.#flush();
    await Promise.all([...this.#inflight]);
  }

  #flush(): void {
    this.#scheduled = false;
    if (this.#pending.length === 0) return;
    const batch = this.#pending;
    this.#pending = [];
    const write = this.#write(batch.map((p) => p.ack)).then(
      (statuses) => batch.forEach((p, i) => p.resolve(statuses[i] ?? "LEASE_LOST")),
      (error: unknown) => batch.forEach((p) => p.reject(error)),
    );
    const tracked = write.finally(() => this.#inflight.delete(tracked));
    this.#inflight.add(tracked);
  }

  async #write(acks: readonly CompleteAck[]): Promise<AckStatus[]> {
    for (let retry = 0; ; retry++) {
      try {
        return await this.#backend.complete(acks, this.#clock.now());
      } catch (error) {
        const pause = ACK_RETRY_DELAYS_MS[retry];
        if (pause === undefined || this.#hurry.signal.aborted) throw error;
        this.#retrying(error);
        // Cut short by hurry(): then the loop makes its last attempt at once.
        await this.#clock.sleep(pause, this.#hurry.signal).catch(() => {});
      }
    }
  }
}
