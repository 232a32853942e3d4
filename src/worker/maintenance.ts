// Background upkeep every worker runs: rescue jobs whose lease expired (their worker died), and
// prune finished jobs past retention. Each step is one atomic backend operation, so several
// workers doing it at once is safe; it only costs a little redundant work.
import type { Backend, Retention } from "../backend/backend.ts";
import type { Clock } from "../core/clock.ts";
import { unlessAborted } from "../core/unless-aborted.ts";

const RESCUE_EVERY_MS = 1_000;
const PRUNE_EVERY_MS = 60_000;

export class Maintenance {
  readonly #backend: Backend;
  readonly #clock: Clock;
  readonly #retention: Retention;
  readonly #report: (error: unknown) => void;
  readonly #holdRescue: () => boolean;
  #loop: Promise<void> | undefined;

  /** `holdRescue`: true while the sweep should wait (this worker's own outcomes or heartbeats are failing to write). */
  constructor(backend: Backend, clock: Clock, retention: Retention, report: (error: unknown) => void, holdRescue: () => boolean = () => false) {
    this.#backend = backend;
    this.#clock = clock;
    this.#retention = retention;
    this.#report = report;
    this.#holdRescue = holdRescue;
  }

  start(stop: AbortSignal): void {
    this.#loop = this.#run(stop);
  }

  async stop(): Promise<void> {
    await this.#loop;
  }

  async #run(stop: AbortSignal): Promise<void> {
    let lastPrune = 0;
    while (!stop.aborted) {
      const now = this.#clock.now();
      // This worker's outcomes are being retried, or its heartbeats fail: when writes come back
      // those go first, or the sweep would rescue the very jobs they are about (ack-retry.ts,
      // `failing`). Pruning goes on meanwhile.
      if (!this.#holdRescue()) await this.#attempt(() => this.#backend.rescueExpired(now), stop);
      // On its own: a rescue that keeps failing (a full Redis refuses it, and never a prune, which
      // frees memory) must not keep finished jobs from being pruned.
      if (now - lastPrune >= PRUNE_EVERY_MS && (await this.#attempt(() => this.#backend.prune(this.#retention, now), stop))) lastPrune = now;
      // Jitter keeps many workers from doing the same sweep at the same instant.
      await this.#clock.sleep(RESCUE_EVERY_MS * (0.75 + Math.random() / 2), stop).catch(() => {});
    }
  }

  /** Runs one step; whether it got through. stop() waits for this loop: a step hanging on a dead connection must not hold it up. */
  async #attempt(step: () => Promise<unknown>, stop: AbortSignal): Promise<boolean> {
    // stop() came while the last step hung: send nothing more (the backend may be closing).
    if (stop.aborted) return false;
    try {
      return (await unlessAborted(step(), stop)) !== undefined;
    } catch (error) {
      this.#report(error);
      return false;
    }
  }
}
