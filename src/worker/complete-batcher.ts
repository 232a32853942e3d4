// Successes are acknowledged in groups: every completion requested in the same turn of the event
// loop goes to the backend in one call (one transaction or script). Each caller still learns its
// own status, so batching never weakens fencing. A batch whose write fails is sent again
// (ack-retry.ts), whole: a repeated completion with the same lease token is OK and changes nothing.
import type { AckStatus, Backend, CompleteAck } from "../backend/backend.ts";
import type { Clock } from "../core/clock.ts";
import type { AckRetry } from "./ack-retry.ts";

interface Pending {
  readonly ack: CompleteAck;
  readonly resolve: (status: AckStatus) => void;
  readonly reject: (error: unknown) => void;
}

export class CompleteBatcher {
  readonly #backend: Backend;
  readonly #clock: Clock;
  readonly #retry: AckRetry;
  readonly #maxBatch: number;
  #pending: Pending[] = [];
  #scheduled = false;
  #inflight = new Set<Promise<void>>();

  constructor(backend: Backend, clock: Clock, retry: AckRetry, maxBatch = 500) {
    this.#backend = backend;
    this.#clock = clock;
    this.#retry = retry;
    this.#maxBatch = maxBatch;
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
    const acks = batch.map((p) => p.ack);
    const write = this.#retry.write(() => this.#backend.complete(acks, this.#clock.now())).then(
      (statuses) => batch.forEach((p, i) => p.resolve(statuses[i] ?? "LEASE_LOST")),
      (error: unknown) => batch.forEach((p) => p.reject(error)),
    );
    const tracked = write.finally(() => this.#inflight.delete(tracked));
    this.#inflight.add(tracked);
  }
}
