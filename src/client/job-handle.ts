// A handle on one job: its id now, its state and result when asked.
import { type Duration, toMs } from "../core/duration.ts";
import { JobCancelledError, JobFailedError, WaitTimeoutError } from "../core/errors.ts";
import type { JobRecord, JobState } from "../core/job.ts";
import { isFinished } from "../core/job.ts";
import type { JobService } from "./job-service.ts";

export class JobHandle<R = unknown> {
  readonly id: string;
  readonly #service: JobService;

  constructor(id: string, service: JobService) {
    this.id = id;
    this.#service = service;
  }

  /** The stored job; throws JobNotFoundError when it does not exist (or was pruned). */
  async get(): Promise<JobRecord> {
    return this.#service.get(this.id);
  }

  async state(): Promise<JobState> {
    return (await this.get()).state;
  }

  /**
   * Waits until the job is finished. Resolves with its result when it succeeded; throws
   * JobFailedError (cause: the last attempt's error) or JobCancelledError; WaitTimeoutError after
   * `timeout`. Aborting `signal` rejects with its reason, as `fetch` and `events.once` do.
   */
  async result(options: { timeout?: Duration; signal?: AbortSignal } = {}): Promise<R> {
    const timeoutMs = options.timeout === undefined ? undefined : toMs(options.timeout, "timeout");
    const job = await this.#service.waitFor(this.id, isFinished, { timeoutMs, signal: options.signal });
    if (!job) {
      if (options.signal?.aborted) throw options.signal.reason;
      throw new WaitTimeoutError(`job ${this.id} to finish`, timeoutMs ?? 0);
    }
    return settled<R>(job);
  }

  async cancel(): Promise<void> {
    await this.#service.cancel(this.id);
  }

  /** Puts a failed or cancelled job back in the queue with a fresh set of attempts. */
  async retry(): Promise<void> {
    await this.#service.retry(this.id);
  }
}

function settled<R>(job: JobRecord): R {
  if (job.state === "succeeded") return job.result as R;
  if (job.state === "cancelled") throw new JobCancelledError(job.id);
  const last = job.errors.at(-1);
  const cause = new Error(last?.message ?? "unknown error");
  cause.name = last?.name ?? "Error";
  if (last?.stack) cause.stack = last.stack;
  throw new JobFailedError(job.id, last?.message ?? "unknown error", cause);
}

