// Inline mode (Celery's "eager"): enqueue() runs the job to its end before returning, in this
// process, through the same executor and outcome recording as a real worker. Delays and backoff
// are skipped so a test of the app never waits; the job still passes through every state.
import type { Backend } from "../backend/backend.ts";
import { isFinished } from "../core/job.ts";
import { execute } from "../worker/executor.ts";
import { JobControl } from "../worker/job-control.ts";
import { makeJobContext } from "../worker/job-context.ts";
import { recordOutcome } from "../worker/record-outcome.ts";
import type { Offload } from "./offload.ts";

const INLINE_WORKER = "inline";
const INLINE_LEASE_MS = 24 * 3_600_000;

export class InlineRunner {
  readonly #offload: Offload;

  constructor(offload: Offload) {
    this.#offload = offload;
  }

  /** Runs job `id` (and anything due before it in its queue) until it is finished. */
  async runToEnd(id: string): Promise<void> {
    const offload = this.#offload;
    const backend = await offload.backend();
    for (;;) {
      const job = await backend.getJob(id);
      if (!job || isFinished(job.state)) return;
      const [claimed] = await backend.claim({ queues: [job.queue], limit: 1, worker: INLINE_WORKER, leaseMs: INLINE_LEASE_MS, now: offload.clock.now() });
      if (!claimed) return;
      await this.#runOne(backend, claimed);
    }
  }

  async #runOne(backend: Backend, claimed: Parameters<typeof recordOutcome>[1]): Promise<void> {
    const { clock, registry, maxResultBytes } = this.#offload;
    const writes = new Set<Promise<unknown>>();
    const startedAt = clock.now();
    const report = (error: unknown): void => process.emitWarning(`offload inline: ${String(error)}`);
    const execution = await execute({ registry, clock, maxResultBytes }, claimed, new JobControl(), (signal) =>
      makeJobContext(backend, claimed, signal, { clock, writes, report }),
    );
    await Promise.allSettled([...writes]);
    await recordOutcome(
      { backend, complete: async (ack) => (await backend.complete([ack], clock.now()))[0] ?? "LEASE_LOST", worker: INLINE_WORKER, now: clock.now(), startedAt, immediateRetries: true },
      claimed,
      execution,
    );
  }
}
