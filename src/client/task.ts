// A task: the name, queue, retry policy and code for one kind of job, plus typed enqueue.
import type { RetryOptions, RetryPolicy } from "../core/backoff.ts";
import type { Duration } from "../core/duration.ts";
import type { JobRecord } from "../core/job.ts";
import type { StandardSchemaV1 } from "../core/schema.ts";
import type { JobArtifacts } from "../artifacts/store.ts";
import type { JobHandle } from "./job-handle.ts";

/** What a handler receives besides its payload. */
export interface JobContext {
  /** Aborted when the job is cancelled, times out, loses its lease, or the worker shuts down. */
  readonly signal: AbortSignal;
  /** 1 on the first run, 2 on the first retry, and so on. */
  readonly attempt: number;
  readonly job: JobRecord;
  /** Records progress (a fraction from 0 to 1: 0.5 is half; 50 is refused) and an optional message, visible to readers and event streams. A failed write is sent again, as a log line is; the call rejects only once those tries are spent. */
  progress(fraction: number, message?: string): Promise<void>;
  /** Appends a log line to the job's event feed. Written before the job is acknowledged; a failed write is sent again (after a lost reply the line may appear twice). */
  log(line: string): void;
  /** Stores files for this job (`put(name, bytes | stream)`); offload/http serves them by signed URL. */
  readonly artifacts: JobArtifacts;
}

export interface EnqueueOptions {
  /** Run no earlier than this long from now. */
  readonly delay?: Duration;
  /** Run no earlier than this time. */
  readonly runAt?: Date | number;
  /** Higher runs first among due jobs of a queue. Default 0. */
  readonly priority?: number;
  /** Overrides the task's queue for this job. */
  readonly queue?: string;
  /** Idempotency key, per task: while a job of this task with this key is unfinished, enqueue returns that job. */
  readonly key?: string;
  /** Overrides the task's retry.attempts for this job. */
  readonly attempts?: number;
  /** Who the job belongs to (checked by the HTTP layer's authorize hook). */
  readonly owner?: string;
  /** The caller's open transaction, for backends that can join it (PostgreSQL). */
  readonly tx?: unknown;
}

export interface TaskConfig {
  readonly name: string;
  readonly queue?: string;
  readonly retry?: RetryOptions;
  /** After this long the handler's signal is aborted and the attempt fails with TaskTimeoutError. */
  readonly timeout?: Duration;
  /** Return false for errors that must not be retried (e.g. a 4xx from an API): the job fails at once. */
  readonly retryIf?: (error: Error) => boolean;
  readonly priority?: number;
}

export interface TaskDefinitionWithSchema<S extends StandardSchemaV1, R> extends TaskConfig {
  readonly schema: S;
  run(payload: NonNullable<S["~standard"]["types"]>["output"], ctx: JobContext): Promise<R> | R;
}

export interface TaskDefinition<P, R> extends TaskConfig {
  readonly schema?: undefined;
  run(payload: P, ctx: JobContext): Promise<R> | R;
}

/** The storage-free description the worker runs; payload already validated at enqueue. */
export interface RegisteredTask {
  readonly name: string;
  readonly queue: string;
  readonly retry: RetryPolicy;
  readonly timeoutMs: number | undefined;
  readonly retryIf: ((error: Error) => boolean) | undefined;
  run(payload: unknown, ctx: JobContext): Promise<unknown>;
}

export interface Task<P, R> {
  readonly name: string;
  readonly queue: string;
  enqueue(payload: P, options?: EnqueueOptions): Promise<JobHandle<R>>;
  /** All in one transaction: either every job is stored, or none is. */
  enqueueMany(
    payloads: readonly P[],
    options?: EnqueueOptions | ((payload: P, index: number) => EnqueueOptions),
  ): Promise<JobHandle<R>[]>;
  /** A typed handle for a job id of this task. */
  job(id: string): JobHandle<R>;
}
