// Glossary
//   job      one unit of work: a task name, a JSON payload, and its life in the states below.
//   task     the code that runs a job, registered by name in every process that enqueues or works it.
//   attempt  one claim of a job by a worker. A worker that dies has used its attempt.
//   lease    the time-bounded right of one worker to finish one attempt; renewed by heartbeat.
//   token    a random fencing value issued with each lease; acknowledgements must present it.
//   due      a scheduled or retrying job whose run_at has passed: it may be claimed.

/**
 * The closed set of job states. Each comment says who moves a job in, and out.
 */
export type JobState =
  /** in: enqueue with a future run time. out: stage-due (→ queued), cancel. */
  | "scheduled"
  /** in: enqueue, stage-due, lease rescue, release on shutdown, retry/replay. out: claim, cancel. */
  | "queued"
  /** in: claim. out: complete, fail, acknowledged cancel, rescue (lease expired), release. */
  | "active"
  /** in: fail with attempts left. out: stage-due (→ queued), cancel. */
  | "retrying"
  /** in: complete. out: prune. */
  | "succeeded"
  /** in: fail with no attempts left, Permanent, rescue of the last attempt. out: retry/replay, prune. The dead-letter state. */
  | "failed"
  /** in: cancel. out: retry, prune. */
  | "cancelled";

export const JOB_STATES: readonly JobState[] = ["scheduled", "queued", "active", "retrying", "succeeded", "failed", "cancelled"];
export const UNFINISHED_STATES: readonly JobState[] = ["scheduled", "queued", "active", "retrying"];
export const FINISHED_STATES: readonly JobState[] = ["succeeded", "failed", "cancelled"];

export function isJobState(value: unknown): value is JobState {
  return typeof value === "string" && (JOB_STATES as readonly string[]).includes(value);
}

export function isFinished(state: JobState): boolean {
  return state === "succeeded" || state === "failed" || state === "cancelled";
}

/** One failed attempt, kept with the job for the dead-letter view. */
export interface AttemptError {
  readonly attempt: number;
  readonly message: string;
  readonly name: string;
  readonly stack: string | undefined;
  readonly worker: string | undefined;
  /** Epoch ms. */
  readonly at: number;
}

/** A job as stored, read back through any backend. Times are epoch milliseconds. */
export interface JobRecord {
  readonly id: string;
  readonly task: string;
  readonly queue: string;
  readonly state: JobState;
  readonly payload: unknown;
  readonly priority: number;
  readonly runAt: number;
  readonly attempt: number;
  readonly maxAttempts: number;
  readonly key: string | undefined;
  readonly worker: string | undefined;
  readonly leaseUntil: number | undefined;
  readonly cancelRequested: boolean;
  readonly progress: number | undefined;
  readonly progressMessage: string | undefined;
  readonly result: unknown;
  readonly errors: readonly AttemptError[];
  readonly owner: string | undefined;
  readonly createdAt: number;
  readonly startedAt: number | undefined;
  readonly finishedAt: number | undefined;
  /** When a finished job will be pruned. */
  readonly expiresAt: number | undefined;
}

/** A job handed to a worker by claim: the record plus the lease token it must acknowledge with. */
export interface ClaimedJob {
  readonly job: JobRecord;
  readonly token: string;
}
