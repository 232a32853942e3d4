// The backend port: the narrow, semantic set of job-level operations every storage engine
// implements with the same meaning. test/conformance/ is the judge of that meaning.
//
// Invariants every adapter keeps:
// - Every state change is one atomic step (statement, transaction or Lua script), guarded by the
//   expected state and, for a job that is active, by its lease token (fencing).
// - `now` always comes from the caller; adapters never read the wall clock for job times.
// - Adapters return status codes, never throw for an expected outcome (a lost lease, a job not
//   found); the client layer turns codes into typed errors in one place (backend/status.ts).
// - Payloads and results cross the port as JSON text, encoded and size-checked once by the caller.
import type { AttemptError, ClaimedJob, JobRecord, JobState } from "../core/job.ts";

export interface NewJob {
  readonly id: string;
  readonly task: string;
  readonly queue: string;
  readonly payloadJson: string;
  readonly priority: number;
  /** Due time; a job whose runAt is after `now` starts `scheduled`, else `queued`. */
  readonly runAt: number;
  readonly maxAttempts: number;
  /** Idempotency key, per task: while an unfinished job of the same task holds it, enqueueing it again returns that job. */
  readonly key: string | undefined;
  readonly owner: string | undefined;
}

export interface EnqueueRequest {
  readonly jobs: readonly NewJob[];
  readonly now: number;
  /** The caller's open transaction, for backends with `capabilities.transactionalEnqueue`. */
  readonly tx?: unknown;
}

export interface EnqueueResult {
  /** The stored job (only id and state are promised: reading the whole row back would slow bulk enqueue). */
  readonly job: Pick<JobRecord, "id" | "state">;
  /** false when an unfinished job with the same task and key was returned instead. */
  readonly created: boolean;
}

export interface ClaimRequest {
  readonly queues: readonly string[];
  /** Never more than this many jobs are claimed. */
  readonly limit: number;
  readonly worker: string;
  readonly leaseMs: number;
  readonly now: number;
}

export interface Lease {
  readonly id: string;
  readonly token: string;
}

export interface HeartbeatRequest {
  readonly worker: string;
  readonly leases: readonly Lease[];
  readonly leaseMs: number;
  readonly now: number;
}

export interface HeartbeatResult {
  /**
   * Ids whose lease this worker no longer holds: their outcome will be refused. Answered by id, so
   * a request names each job once (with the token it holds); two tokens of one job have no
   * defined answer.
   */
  readonly lost: readonly string[];
  /** Ids someone asked to cancel: abort them and acknowledge with `acknowledgeCancel`. */
  readonly cancelRequested: readonly string[];
}

export type AckStatus = "OK" | "LEASE_LOST";

export interface CompleteAck extends Lease {
  readonly resultJson: string;
}

export interface FailRequest extends Lease {
  readonly error: AttemptError;
  /** When to try again; undefined means no retry (Permanent). Ignored when no attempt is left. */
  readonly retryAt: number | undefined;
  readonly now: number;
}

/** CANCELLED: a cancel was requested during the attempt, so the job ends cancelled instead. */
export type FailStatus = "RETRYING" | "FAILED" | "CANCELLED" | "LEASE_LOST";

/** What a hand-back did: queued again, or cancelled (its cancel was requested while it ran). */
export type ReleaseStatus = "QUEUED" | "CANCELLED" | "LEASE_LOST";

export type CancelStatus = "CANCELLED" | "CANCEL_REQUESTED" | "ALREADY_FINISHED" | "NOT_FOUND";
export type RetryStatus = "QUEUED" | "NOT_FOUND" | "NOT_FINISHED" | "KEY_IN_USE";

export interface ReplayFilter {
  readonly queue?: string | undefined;
  readonly task?: string | undefined;
  /** Only jobs that failed at or after this time (epoch ms). */
  readonly since?: number | undefined;
  /** Only jobs that failed at or before this time (epoch ms). */
  readonly until?: number | undefined;
}

export interface RescueResult {
  readonly requeued: readonly string[];
  readonly failed: readonly string[];
  readonly cancelled: readonly string[];
}

/** How long finished jobs are kept, per final state, in ms. */
export interface Retention {
  readonly succeeded: number;
  readonly failed: number;
  readonly cancelled: number;
}

export interface ListFilter {
  readonly state?: JobState | undefined;
  readonly queue?: string | undefined;
  readonly task?: string | undefined;
  /** Cursor: only jobs with an id before this one (ids are time-ordered; newest first). */
  readonly before?: string | undefined;
  readonly limit: number;
}

export interface QueueCounts {
  readonly queue: string;
  readonly counts: Readonly<Record<JobState, number>>;
  /** run_at of the oldest job waiting in `queued`, for "how far behind is this queue". */
  readonly oldestQueuedAt: number | undefined;
}

export type JobEventType = "state" | "progress" | "log";

/**
 * Log lines one run of a job keeps in its history. Events live as long as their job, and on Redis
 * in memory: a handler that logs in a loop would otherwise grow one job's history without bound.
 * BullMQ's job logs grow until `keepLogs` trims them to the newest; here a run keeps its first
 * lines (trimming the oldest would cost a search of the history per line), and its error is
 * recorded apart from its log in any case.
 */
export const MAX_LOG_LINES_PER_RUN = 10_000;

/**
 * What a job put back by hand (`retry`, `replay`) keeps of its history: the errors of its newest
 * `errors` attempts, and, once those were over the cap, its newest `events` events besides the
 * requeue's own (every requeue follows a failure, which adds an error, so a job replayed in a loop
 * gets there; finding the cut reads a job's events, which a replay of many jobs should not do for
 * each: on PostgreSQL, 1,000 jobs of 2,000 events took 8 s instead of 50 ms). Redis, when a job
 * has more than `events`, trims to nine tenths of it (`events - floor(events / 10)`, trim_events in
 * lib.lua), so that a job replayed in a loop at the cap is not trimmed at every replay. Within one series
 * of attempts a job keeps every error and event (attempts and log lines per run are bounded);
 * across requeues the history was kept whole, so a job that fails for good and is replayed in a
 * loop faster than its retention grew with every replay and was never pruned. Sidekiq keeps only
 * a job's last error, BullMQ a bounded list of stack traces. The trim runs at the requeue, an
 * operator's action, so no hot path pays for it.
 */
export interface HistoryKept {
  readonly errors: number;
  readonly events: number;
}

/** Two runs of a job that logs to the per-run cap; Sidekiq's 25 retries' worth of errors. */
export const HISTORY_KEPT: HistoryKept = { errors: 25, events: 2 * MAX_LOG_LINES_PER_RUN };

/** The line that takes the place of a run's first log line past `maxLines`. */
export function logCapLine(maxLines: number): string {
  return `[offload] this run logged more than ${maxLines} lines; later lines are not kept`;
}

/** One entry of the event feed. Ids increase; a reader resumes after the last id it saw. */
export interface JobEvent {
  readonly id: number;
  readonly jobId: string;
  readonly type: JobEventType;
  readonly data: Readonly<Record<string, unknown>>;
  readonly at: number;
}

/**
 * What a waiter needs to decide whether to read a job again: its state and the id of its newest
 * event (0 when none is kept). Many waiters are answered by one peekJobs() call.
 */
export interface JobPeek {
  readonly id: string;
  readonly state: JobState;
  readonly lastEventId: number;
}

export interface BackendCapabilities {
  /** enqueue({ tx }) joins the caller's own database transaction. */
  readonly transactionalEnqueue: boolean;
  /** Several processes can share this backend (false for in-memory SQLite). */
  readonly sharedAcrossProcesses: boolean;
  /**
   * Claims run on a server, so a worker gains by keeping several smaller claims in flight: the
   * server works on the next batch while this process runs the last one. Absent or false for a
   * store that runs a claim synchronously in this process (SQLite), where one claim per free
   * batch of slots is cheapest.
   */
  readonly overlappingClaims?: boolean;
}

export interface WatchOptions {
  /** Only changes that may bring jobs to claim, or move when the next one is due (a worker's claim loop). */
  readonly newWork?: boolean;
}

export interface Backend {
  readonly name: string;
  readonly capabilities: BackendCapabilities;

  /**
   * Stores the batch all or nothing. A job whose id is already stored makes the whole batch fail
   * and stores none of it (the outbox relay and the resend of a lost reply rely on this); a job
   * whose key an unfinished job of its task holds is not stored, and that job is returned instead.
   */
  enqueue(request: EnqueueRequest): Promise<EnqueueResult[]>;
  /**
   * Due scheduled and retrying jobs of these queues are staged first, so they compete in order.
   * An adapter may stage those of other queues in the same step (SQLite and PostgreSQL do): they
   * are due either way, and only their state shows it sooner.
   */
  claim(request: ClaimRequest): Promise<ClaimedJob[]>;
  heartbeat(request: HeartbeatRequest): Promise<HeartbeatResult>;
  /**
   * Acknowledges a batch of successes; one status per ack, in order. Sending an ack again with
   * the token that completed the job is OK and changes nothing, so a batch whose reply was lost
   * can be retried; no other lease operation accepts that token from then on. The same holds
   * within one batch: a lease named twice is OK twice, and the first result is the one kept.
   */
  complete(acks: readonly CompleteAck[], now: number): Promise<AckStatus[]>;
  /**
   * Records a failed attempt: `retrying` or `failed`, or `cancelled` when a cancel was requested
   * while it ran (the request is honoured, as rescue and release honour it). Sent again with the same token while the
   * job is still `retrying`, `failed` or `cancelled` from it, it answers the same status and changes nothing
   * (no second error, no event), so a failure whose reply was lost can be retried. Once the job
   * has moved on (staged, claimed again, retried by hand), the token is dead: LEASE_LOST.
   */
  fail(request: FailRequest): Promise<FailStatus>;
  /**
   * An active job that was asked to cancel and whose handler stopped: `active` → `cancelled`.
   * Sent again with the same token, it is OK and changes nothing, as `complete`.
   */
  acknowledgeCancel(lease: Lease, now: number): Promise<AckStatus>;
  /**
   * Hands active jobs back to `queued` (graceful shutdown); the attempt is not counted. A job
   * whose cancel was requested ends `cancelled` instead, and says so (the worker reports it as
   * cancelled, not released). One status per lease, in order, as if released one after the
   * other: a lease named twice is LEASE_LOST the second time.
   */
  release(leases: readonly Lease[], now: number): Promise<ReleaseStatus[]>;
  /**
   * Records progress on the job and as an event. Progress is a gauge: of one run's progress events
   * (one lease token's), the job's history keeps only the newest, so a handler that reports per
   * row cannot grow it without bound; a reader following the feed live still sees each.
   */
  progress(request: Lease & { readonly progress: number; readonly message: string | undefined; readonly now: number }): Promise<AckStatus>;
  /**
   * Appends a log line to the job's history. A run keeps at most `maxLines` (default
   * MAX_LOG_LINES_PER_RUN) lines; the next is replaced by logCapLine(maxLines) and later ones are
   * acknowledged but not kept. A new run (a retry, a rescue) starts counting again.
   */
  log(request: Lease & { readonly line: string; readonly now: number; readonly maxLines?: number }): Promise<AckStatus>;

  cancel(id: string, now: number): Promise<CancelStatus>;
  /**
   * A failed or cancelled job back to `queued` with a fresh set of attempts; its history is kept,
   * trimmed to `kept` (default HISTORY_KEPT; on Redis the events to nine tenths of it, see HistoryKept).
   */
  retry(id: string, now: number, kept?: HistoryKept): Promise<RetryStatus>;
  /** `retry` for every failed job matching the filter; returns how many were queued. */
  replay(filter: ReplayFilter, now: number, kept?: HistoryKept): Promise<number>;

  /** Scheduled and retrying jobs whose time has come move to `queued`; returns how many. */
  stageDue(now: number): Promise<number>;
  rescueExpired(now: number): Promise<RescueResult>;
  /** Deletes finished jobs (and their events) older than their retention; returns how many jobs. */
  prune(retention: Retention, now: number): Promise<number>;

  getJob(id: string): Promise<JobRecord | undefined>;
  /**
   * Each stored job of `ids`, in one round trip (any order; ids of no job are left out). What the
   * app's waiters (job.result(), SSE streams) read on every change signal, all at once, instead of
   * each reading its own job: never the payload, the result or the events themselves.
   */
  peekJobs(ids: readonly string[]): Promise<JobPeek[]>;
  listJobs(filter: ListFilter): Promise<JobRecord[]>;
  counts(): Promise<QueueCounts[]>;
  /** The earliest run_at among scheduled and retrying jobs in these queues, to sleep until then. */
  nextDueAt(queues: readonly string[]): Promise<number | undefined>;
  readEvents(request: { readonly jobId?: string | undefined; readonly afterId: number; readonly limit: number }): Promise<JobEvent[]>;

  /**
   * Calls `listener` soon after anything may have changed, in this process or another: new
   * jobs, transitions, progress. A hint to look again, never the data itself; may be spurious.
   * With `newWork`, changes known to bring nothing to claim (a claim, a completion, progress, a
   * log line, a cancel) may be left out.
   */
  watch(listener: () => void, options?: WatchOptions): () => void;
  /**
   * Whether `error`, from a call of this backend, means the server could not be reached, did not
   * answer, or could not take the call now (full, overloaded, read-only in a failover), so a
   * caller may try again later, rather than a refusal of the call itself or a fault. The app's
   * calls then get a BackendUnavailableError. For adapters without a server this is always false.
   */
  unavailable?(error: unknown): boolean;
  /**
   * The server's clock, epoch ms; absent for a store in this process. Every call carries the
   * caller's `now` (tests run on a fake clock), so hosts whose clocks disagree compare leases and
   * run times across clocks: a worker checks its clock against this at start (clock-check.ts).
   */
  serverTime?(): Promise<number>;
  close(): Promise<void>;
  /** True from the moment close() is called: the backend is not to be used again (a wait stops there). */
  readonly closed: boolean;
}
