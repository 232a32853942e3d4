// Acknowledging an outcome: the one place where an Outcome becomes a backend transition.
// Used by the worker and by inline mode, so both record jobs identically.
import type { AckStatus, Backend, CompleteAck } from "../backend/backend.ts";
import { MAX_TIME_MS } from "../core/duration.ts";
import { backoffDelay } from "../core/backoff.ts";
import type { AttemptError, ClaimedJob, JobRecord, JobState } from "../core/job.ts";
import type { AckRetry } from "./ack-retry.ts";
import type { Execution } from "./executor.ts";

/**
 * What a worker did with a job. `job` is the record as claimed, with `state` set to the state the
 * event recorded (`queued` for released, `retrying`, a final state); for lease-lost, where another
 * worker now has the job, it stays `active`. Other fields (result, errors, finishedAt) are as
 * claimed: `offload.jobs.get(id)` reads the stored record.
 */
export type WorkerEvent =
  | { readonly type: "started"; readonly job: JobRecord }
  | { readonly type: "succeeded"; readonly job: JobRecord; readonly result: unknown; readonly ms: number }
  | { readonly type: "retrying"; readonly job: JobRecord; readonly error: Error; readonly retryAt: number }
  | { readonly type: "failed"; readonly job: JobRecord; readonly error: Error }
  | { readonly type: "cancelled"; readonly job: JobRecord }
  | { readonly type: "lease-lost"; readonly job: JobRecord }
  | { readonly type: "released"; readonly job: JobRecord };

export interface RecordContext {
  readonly backend: Backend;
  /** How successes are written: batched by the worker, direct in inline mode. */
  readonly complete: (ack: CompleteAck) => Promise<AckStatus>;
  readonly worker: string;
  readonly now: number;
  readonly startedAt: number;
  /** Inline mode retries at once instead of waiting out the backoff. */
  readonly immediateRetries?: boolean;
  /** Writes a failure or a cancellation again if its write fails (the worker; inline mode has none). */
  readonly retry?: AckRetry;
}

/** Writes the outcome; returns the event that describes what was recorded (none for a shutdown hand-back). */
export async function recordOutcome(ctx: RecordContext, claimed: ClaimedJob, execution: Execution): Promise<WorkerEvent | undefined> {
  const { job, token } = claimed;
  const lease = { id: job.id, token };
  const outcome = execution.outcome;
  const write = <T>(work: () => Promise<T>): Promise<T> => (ctx.retry ? ctx.retry.write(work) : work());
  switch (outcome.kind) {
    case "succeeded": {
      const status = await ctx.complete({ ...lease, resultJson: execution.resultJson ?? "null" });
      return status === "OK" ? { type: "succeeded", job: inState(job, "succeeded"), result: outcome.result, ms: ctx.now - ctx.startedAt } : { type: "lease-lost", job };
    }
    case "retry":
    case "permanent": {
      const policy = execution.task?.retry;
      const delay = outcome.kind === "retry" ? (outcome.retryInMs ?? (policy ? backoffDelay(policy, job.attempt) : 0)) : 0;
      // A `Retry({ in })` past the last time a Date can show is "never" as much as that time is;
      // stored as it was, it made GET /jobs/:id answer 500 for the job (its runAt had no ISO form).
      const retryAt = outcome.kind === "permanent" ? undefined : ctx.immediateRetries ? ctx.now : Math.min(ctx.now + delay, MAX_TIME_MS);
      const error = attemptError(outcome.error, job.attempt, ctx.worker, ctx.now);
      const status = await write(() => ctx.backend.fail({ ...lease, error, retryAt, now: ctx.now }));
      if (status === "LEASE_LOST") return { type: "lease-lost", job };
      if (status === "CANCELLED") return { type: "cancelled", job: inState(job, "cancelled") };
      if (status === "RETRYING" && retryAt !== undefined) return { type: "retrying", job: inState(job, "retrying"), error: outcome.error, retryAt };
      return { type: "failed", job: inState(job, "failed"), error: outcome.error };
    }
    case "cancelled": {
      const status = await write(() => ctx.backend.acknowledgeCancel(lease, ctx.now));
      return status === "OK" ? { type: "cancelled", job: inState(job, "cancelled") } : { type: "lease-lost", job };
    }
    case "abandoned":
      // A lost lease belongs to someone else now; a shutdown hand-back was written by release().
      return outcome.reason === "lease-lost" ? { type: "lease-lost", job } : undefined;
  }
}

/** The claimed record, in the state an event recorded (see WorkerEvent). */
export function inState(job: JobRecord, state: JobState): JobRecord {
  return { ...job, state };
}

function attemptError(error: Error, attempt: number, worker: string, now: number): AttemptError {
  return { attempt, message: error.message, name: error.name, stack: error.stack, worker, at: now };
}
