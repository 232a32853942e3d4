// The service layer that the public API, the CLI, the HTTP handlers and the dashboard share.
// None of them reaches into a backend directly.
import type { Clock } from "../core/clock.ts";
import { BackendUnavailableError, ClosedError, ConfigError, JobNotFoundError, OffloadError } from "../core/errors.ts";
import type { JobRecord, JobState } from "../core/job.ts";
import { Wakeup } from "../core/wakeup.ts";
import type { Backend, JobEvent, ListFilter, QueueCounts, Retention } from "../backend/backend.ts";
import { assertCancelled, assertRetried } from "../backend/status.ts";
import { isJobId } from "../core/ids.ts";
import { describe } from "../core/names.ts";
import { callForCaller } from "../backend/backend-errors.ts";
import { eventsRequest, listFilter, replayFilter } from "./job-filters.ts";
import { JobWatch, type Look } from "./job-watch.ts";

/**
 * How often the waiters of one backend look again, together (job-watch.ts), when no change signal
 * arrives (a safety net, not the main path); also how often a wait whose reads fail tries again.
 */
const WAIT_POLL_MS = 500;
/**
 * How long a waiter rides out a backend whose reads all fail (a failover, a restart, a dropped
 * connection) before it gives up and throws the last error; within a shorter timeout, that error.
 */
export const WAIT_OUTAGE_MS = 30_000;

/** What #readBefore answers when the deadline or an abort came first. */
const TIMED_OUT = Symbol("timed out");

/** Which failed jobs `offload.jobs.replay()` puts back: `since` and `until` as a Date or epoch ms. */
export interface ReplayRequest {
  readonly queue?: string | undefined;
  readonly task?: string | undefined;
  /** Only jobs that failed at or after this instant. */
  readonly since?: Date | number | undefined;
  /** Only jobs that failed at or before this instant. */
  readonly until?: Date | number | undefined;
}

export class JobService {
  readonly #backend: () => Promise<Backend>;
  readonly #clock: Clock;
  readonly #retention: Retention;
  /** The shared look of every wait and stream of this instance, over its backend. */
  #watch: { readonly backend: Backend; readonly watch: JobWatch } | undefined;

  constructor(backend: () => Promise<Backend>, clock: Clock, retention: Retention) {
    this.#backend = backend;
    this.#clock = clock;
    this.#retention = retention;
  }

  async get(id: string): Promise<JobRecord> {
    const job = await this.find(id);
    if (!job) throw new JobNotFoundError(id);
    return job;
  }

  /** The job, or undefined when there is none with this id. */
  async find(id: string): Promise<JobRecord | undefined> {
    if (!mayNameAJob(id)) return undefined;
    const job = await this.#call((b) => b.getJob(id));
    return job ? this.#withExpiry(job) : undefined;
  }

  async list(filter: Partial<ListFilter> = {}): Promise<JobRecord[]> {
    const jobs = await this.#call((b) => b.listJobs(listFilter(filter)));
    return jobs.map((j) => this.#withExpiry(j));
  }

  async counts(): Promise<QueueCounts[]> {
    return this.#call((b) => b.counts());
  }

  async cancel(id: string): Promise<void> {
    if (!mayNameAJob(id)) throw new JobNotFoundError(id);
    assertCancelled(id, await this.#call((b) => b.cancel(id, this.#clock.now())));
  }

  async retry(id: string): Promise<void> {
    if (!mayNameAJob(id)) throw new JobNotFoundError(id);
    assertRetried(id, await this.#call((b) => b.retry(id, this.#clock.now())));
  }

  /** Puts failed jobs matching the filter back in their queues; returns how many. */
  async replay(filter: ReplayRequest = {}): Promise<number> {
    return this.#call((b) => b.replay(replayFilter(filter), this.#clock.now()));
  }

  async events(request: { jobId?: string; afterId: number; limit?: number }): Promise<JobEvent[]> {
    const checked = eventsRequest(request);
    if (checked.jobId !== undefined && !mayNameAJob(checked.jobId)) return []; // as find(): no such job
    return this.#call((b) => b.readEvents(checked));
  }

  /** Deletes finished jobs past their retention; returns how many. */
  async prune(): Promise<number> {
    return this.#call((b) => b.prune(this.#retention, this.#clock.now()));
  }

  /**
   * Calls `listener` soon after jobs may have changed, in this process or another (a hint to read
   * again, never the data itself). Returns the unsubscribe function.
   */
  async watch(listener: () => void): Promise<() => void> {
    return (await this.#backend()).watch(listener);
  }

  /**
   * Calls `hear` with what each shared look (one peekJobs() per change signal, and per safety poll,
   * for every follower of this instance) learned of job `id`; resolves with the unsubscribe function.
   */
  async follow(id: string, hear: (look: Look) => void): Promise<() => void> {
    return this.#watchOf(await this.#backend()).follow(id, hear);
  }

  /** Ends the waits and streams of this instance: each reads once more, and meets ClosedError. */
  closed(): void {
    this.#watch?.watch.wakeAll();
    this.#watch = undefined;
  }

  #watchOf(backend: Backend): JobWatch {
    if (this.#watch?.backend !== backend) this.#watch = { backend, watch: new JobWatch(backend, this.#clock, WAIT_POLL_MS) };
    return this.#watch.watch;
  }

  /** Waits until the job's state satisfies `predicate`; undefined on timeout or abort. */
  async waitFor(
    id: string,
    predicate: (state: JobState) => boolean,
    options: { timeoutMs?: number | undefined; signal?: AbortSignal | undefined } = {},
  ): Promise<JobRecord | undefined> {
    const backend = await this.#backend();
    const deadline = options.timeoutMs === undefined ? undefined : this.#clock.now() + options.timeoutMs;
    const wakeup = new Wakeup();
    // Woken only when the shared look says the job may be what we wait for (or is gone, or the
    // look failed): a wait reads its own job once more when it ends, not on every signal.
    const unsubscribe = this.#watchOf(backend).follow(id, (look) => {
      if (look === "gone" || look === "unknown" || predicate(look.state)) wakeup.notify();
    });
    let failingSince: number | undefined;
    let failure: unknown; // of the latest read, when it failed
    // The first read may outlast a short timeout by up to WAIT_POLL_MS: else `timeout: 0` (or one
    // shorter than a round trip) could never see a job that had finished already.
    let readDeadline = deadline === undefined ? undefined : Math.max(deadline, this.#clock.now() + WAIT_POLL_MS);
    try {
      for (;;) {
        let job: JobRecord | undefined;
        try {
          const until = readDeadline;
          readDeadline = deadline;
          const read = await this.#readBefore(id, until, options.signal);
          if (read === TIMED_OUT) {
            if (failure !== undefined) throw failure;
            return undefined;
          }
          job = read;
          failure = undefined;
          failingSince = undefined;
        } catch (error) {
          // Offload's own errors (no such job) are answers. Anything else is the network or the
          // server: reads are safe to repeat, so the wait goes on, as the workers do; unless the
          // backend's owner closed it, when no retry can succeed.
          if (error instanceof OffloadError && !(error instanceof BackendUnavailableError)) throw error;
          if (backend.closed) throw new ClosedError("the backend was closed while a wait was pending");
          failure = error;
          failingSince ??= this.#clock.now();
          if (this.#clock.now() - failingSince >= WAIT_OUTAGE_MS) throw error;
        }
        if (job && predicate(job.state)) return job;
        const remaining = deadline === undefined ? Number.POSITIVE_INFINITY : deadline - this.#clock.now();
        if (remaining <= 0 || options.signal?.aborted) {
          if (failure !== undefined) throw failure;
          return undefined;
        }
        // The shared looks wake us; a wait whose own read failed also tries again on its own.
        await wakeup.wait(failure === undefined ? remaining : Math.min(remaining, WAIT_POLL_MS), this.#clock, options.signal);
      }
    } finally {
      unsubscribe();
    }
  }

  /**
   * One read of the job, given up at the deadline or on abort: a read queued while the connection
   * is down (ioredis holds it until it reconnects) must not outlast the caller's timeout.
   */
  async #readBefore(id: string, deadline: number | undefined, signal: AbortSignal | undefined): Promise<JobRecord | typeof TIMED_OUT> {
    const read = this.get(id);
    if (deadline === undefined && signal === undefined) return read;
    const stop = new AbortController();
    const onAbort = (): void => stop.abort();
    if (signal?.aborted) stop.abort();
    else signal?.addEventListener("abort", onAbort, { once: true });
    // Over when the caller aborts, or at the deadline; `stop` also ends the clock's sleep once the
    // read has settled, so no sleeper is left behind.
    const late = new Promise<typeof TIMED_OUT>((resolve) => {
      if (stop.signal.aborted) resolve(TIMED_OUT);
      stop.signal.addEventListener("abort", () => resolve(TIMED_OUT), { once: true });
      if (deadline !== undefined) this.#clock.sleep(deadline - this.#clock.now(), stop.signal).then(() => resolve(TIMED_OUT), () => {});
    });
    try {
      return await Promise.race([read, late]);
    } finally {
      stop.abort();
      signal?.removeEventListener("abort", onAbort);
      read.catch(() => {}); // a read given up on may still fail later: nobody waits for it
    }
  }

  /** A call of the backend; the server's failures reach the caller as BackendUnavailableError. */
  async #call<T>(call: (backend: Backend) => Promise<T>): Promise<T> {
    return callForCaller(await this.#backend(), call);
  }

  #withExpiry(job: JobRecord): JobRecord {
    if (job.finishedAt === undefined) return job;
    const ttl = job.state === "succeeded" ? this.#retention.succeeded : job.state === "failed" ? this.#retention.failed : this.#retention.cancelled;
    return { ...job, expiresAt: job.finishedAt + ttl };
  }
}

/**
 * Whether `id` can be a job's: every id is a UUIDv7 made at enqueue, so another string names no
 * job and is not sent to the backend (a U+0000 in it was a driver error on PostgreSQL). Not a
 * string at all is the caller's mistake, not "no such job".
 */
function mayNameAJob(id: unknown): boolean {
  if (typeof id !== "string") throw new ConfigError(`a job id is a string, got ${describe(id)}`);
  return isJobId(id);
}
