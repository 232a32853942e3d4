// The embedded backend, on Node's built-in node:sqlite: nothing to install or compile. One file
// in WAL mode is shared safely by many processes; every write is one IMMEDIATE transaction, so
// writers queue on SQLite's lock (busy_timeout) instead of failing.
import { DatabaseSync, type SQLInputValue, type StatementSync } from "node:sqlite";
import type { ClaimedJob, JobRecord, JobState } from "../../core/job.ts";
import type {
  AckStatus, Backend, CancelStatus, ClaimRequest, CompleteAck, EnqueueRequest, EnqueueResult,
  FailRequest, FailStatus, ReleaseStatus, HeartbeatRequest, HeartbeatResult, JobEvent, JobPeek, Lease, ListFilter,
  QueueCounts, ReplayFilter, RescueResult, Retention, RetryStatus, WatchOptions,
} from "../backend.ts";
import { HISTORY_KEPT, type HistoryKept, MAX_LOG_LINES_PER_RUN, logCapLine } from "../backend.ts";
import { countsFromRows, jobPeek } from "../decode.ts";
import { distinctLeases, leaseKey } from "../lease-batch.ts";
import { ChangeFeed } from "./change-feed.ts";
import { loadQueries, type QueryName } from "./queries.ts";
import { type Row, toJobEvent, toJobRecord } from "./rows.ts";
import { migrate } from "./migrate.ts";

export interface SqliteOptions {
  /** A file path, or ":memory:". */
  readonly path: string;
  /** How long a writer waits for another process's write lock, ms. Default 10000. */
  readonly busyTimeoutMs?: number;
  /** Safety poll for cross-process changes when file watching misses them, ms. Default 100. */
  readonly pollMs?: number;
  /** "normal" (default) survives process crashes; "full" also survives power loss, slower. */
  readonly synchronous?: "normal" | "full";
}

type Params = Record<string, SQLInputValue>;

/** Finished jobs deleted per write (prune.sql). */
const PRUNE_CHUNK = 1_000;
const ALWAYS = (): boolean => true;
/** A write that brings nothing to claim (a completion, progress, a cancel): see ChangeListeners. */
const QUIET = (): boolean => false;

export class SqliteBackend implements Backend {
  readonly name = "sqlite";
  readonly capabilities;
  readonly #db: DatabaseSync;
  readonly #statements = new Map<QueryName, StatementSync>();
  readonly #sql = loadQueries();
  readonly #feed: ChangeFeed;
  readonly #dataVersion: StatementSync;
  readonly #busyTimeoutMs: number;

  constructor(options: SqliteOptions) {
    const memory = options.path === ":memory:";
    this.capabilities = { transactionalEnqueue: false, sharedAcrossProcesses: !memory };
    this.#db = new DatabaseSync(options.path);
    // SQLite's own busy handler sleeps in coarse steps (1, 2, 5, 10, ... 100 ms) although our
    // transactions hold the lock for well under a millisecond; writes wait in #begin() instead.
    this.#busyTimeoutMs = options.busyTimeoutMs ?? 10_000;
    this.#db.exec("PRAGMA busy_timeout = 0");
    // Opening reads the file: another process may hold it locked for a moment (its first open
    // turning on WAL, or its last close checkpointing), so these wait as writes do.
    if (!memory) this.#whileBusy(() => this.#db.exec("PRAGMA journal_mode = WAL"));
    this.#db.exec(`PRAGMA synchronous = ${options.synchronous === "full" ? "FULL" : "NORMAL"}`);
    this.#db.exec("PRAGMA cache_size = -32768"); // 32 MiB: the hot indexes stay in memory
    migrate(this.#db, () => this.#begin(), (read) => this.#whileBusy(read));
    this.#dataVersion = this.#db.prepare("PRAGMA data_version");
    const version = (): number => Number((this.#dataVersion.get() as Row | undefined)?.["data_version"] ?? 0);
    this.#feed = new ChangeFeed(memory ? undefined : options.path, version, options.pollMs ?? 100);
  }

  #stmt(name: QueryName): StatementSync {
    let statement = this.#statements.get(name);
    if (!statement) {
      statement = this.#db.prepare(this.#sql[name]);
      this.#statements.set(name, statement);
    }
    return statement;
  }

  #all(name: QueryName, params: Params): Row[] {
    return this.#stmt(name).all(params) as Row[];
  }

  #get(name: QueryName, params: Params): Row | undefined {
    return this.#stmt(name).get(params) as Row | undefined;
  }

  /** Takes the write lock, waiting for another process's transaction in fine steps. */
  #begin(): void {
    this.#whileBusy(() => this.#db.exec("BEGIN IMMEDIATE"));
  }

  /** Runs `step` again while another process holds the lock, up to the busy timeout. */
  #whileBusy<T>(step: () => T): T {
    let waited = 0;
    let pause = 0.05;
    for (;;) {
      try {
        return step();
      } catch (error) {
        if (!isBusy(error) || waited >= this.#busyTimeoutMs) throw error;
        Atomics.wait(PAUSE, 0, 0, pause); // a synchronous sleep: node:sqlite is synchronous anyway
        waited += pause;
        pause = Math.min(pause * 2, 2);
      }
    }
  }

  /**
   * Runs `work` in a write transaction; announces the change unless `changed` says there was none,
   * as new work unless `newWork` says it brings nothing to claim (ChangeListeners).
   */
  #write<T>(work: () => T, changed: (result: T) => boolean = () => true, newWork: (result: T) => boolean = () => true): T {
    this.#begin();
    let result: T;
    try {
      result = work();
      this.#db.exec("COMMIT");
    } catch (error) {
      if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
      throw error;
    }
    if (changed(result)) this.#feed.announce(newWork(result));
    return result;
  }

  async enqueue(request: EnqueueRequest): Promise<EnqueueResult[]> {
    const { jobs, now } = request;
    if (jobs.length > 1 && jobs.every((j) => j.key === undefined)) {
      const rows = jobs.map((j) => [j.id, j.task, j.queue, j.payloadJson, j.priority, j.runAt, j.maxAttempts, j.owner ?? null]);
      this.#write(() => this.#stmt("enqueue-bulk").run({ jobs: JSON.stringify(rows), now }));
      return jobs.map((j) => ({ job: { id: j.id, state: j.runAt > now ? "scheduled" : "queued" }, created: true }));
    }
    return this.#write(() =>
      jobs.map((job) => {
        if (job.key !== undefined) {
          const existing = this.#get("enqueue-find-key", { task: job.task, key: job.key });
          if (existing) return { job: { id: String(existing["id"]), state: existing["state"] as JobState }, created: false };
        }
        const row = this.#get("enqueue-insert", {
          id: job.id, task: job.task, queue: job.queue, payload: job.payloadJson, priority: job.priority,
          run_at: job.runAt, max_attempts: job.maxAttempts, key: job.key ?? null, owner: job.owner ?? null, now,
        });
        if (!row) throw new Error("enqueue-insert returned no row");
        return { job: { id: String(row["id"]), state: row["state"] as JobState }, created: true };
      }),
    );
  }

  async claim(request: ClaimRequest): Promise<ClaimedJob[]> {
    if (request.limit <= 0 || request.queues.length === 0) return [];
    let staged = 0;
    const rows = this.#write(() => {
      staged = Number(this.#stmt("stage-due").run({ now: request.now }).changes);
      const ids = this.#candidates(request.queues, request.limit);
      if (ids.length === 0) return [];
      return this.#all("claim", { ids: JSON.stringify(ids), worker: request.worker, lease_until: request.now + request.leaseMs, now: request.now });
    }, (claimed) => claimed.length > 0 || staged > 0, () => staged > 0); // an empty claim changed nothing: no signal
    return rows.map((row) => ({ job: toJobRecord(row), token: String(row["lease_token"]) })).sort(claimOrder);
  }

  /** The best `limit` queued job ids across `queues`, in claim order. */
  #candidates(queues: readonly string[], limit: number): string[] {
    let from = queues;
    if (queues.length > limit) {
      // Only the queues whose best job ranks among the `limit` best of all the queues' best jobs
      // can hold a job of this claim (any other queue's jobs rank below `limit` others): read
      // each queue's best job, then candidates of those queues only. Over 1,000 queues a claim of
      // 25 read and sorted 25,000 rows, blocking this process's event loop (as redis/claim.lua).
      const heads = queues.flatMap((queue) => this.#all("claim-candidates", { queue, limit: 1 }).map((row) => ({ queue, row })));
      heads.sort((a, b) => claimRank(a.row, b.row));
      from = heads.slice(0, limit).map((h) => h.queue);
    }
    const rows = from.flatMap((queue) => this.#all("claim-candidates", { queue, limit }));
    if (from.length > 1) rows.sort(claimRank);
    return rows.slice(0, limit).map((r) => String(r["id"]));
  }

  async heartbeat(request: HeartbeatRequest): Promise<HeartbeatResult> {
    if (request.leases.length === 0) return { lost: [], cancelRequested: [] };
    const lost: string[] = [];
    const cancelRequested: string[] = [];
    this.#write(() => {
      for (const lease of request.leases) {
        const row = this.#get("heartbeat", { id: lease.id, token: lease.token, lease_until: request.now + request.leaseMs });
        if (!row) lost.push(lease.id);
        else if (row["cancel_requested"] === 1) cancelRequested.push(lease.id);
      }
    }, ALWAYS, QUIET);
    return { lost, cancelRequested };
  }

  async complete(acks: readonly CompleteAck[], now: number): Promise<AckStatus[]> {
    if (acks.length === 0) return [];
    // Each lease once (lease-batch.ts): a repeat in the batch is answered as its first.
    const once = distinctLeases(acks);
    const rows = this.#write(() => this.#all("complete", { acks: JSON.stringify(once.map((a) => [a.id, a.token, a.resultJson])), now }), ALWAYS, QUIET);
    // By id and token: a batch could hold a stale run's ack beside the new run's, for one job.
    const lease = (row: Row): string => leaseKey({ id: String(row["id"]), token: String(row["lease_token"]) });
    const done = new Set(rows.map(lease));
    const rest = once.filter((a) => !done.has(leaseKey(a)));
    if (rest.length > 0) {
      const repeated = this.#all("complete-repeated", { acks: JSON.stringify(rest.map((a) => [a.id, a.token])) });
      for (const r of repeated) done.add(lease(r));
    }
    return acks.map((a) => (done.has(leaseKey(a)) ? "OK" : "LEASE_LOST"));
  }

  async fail(request: FailRequest): Promise<FailStatus> {
    const row = this.#write(() =>
      this.#get("fail", {
        id: request.id, token: request.token, error: JSON.stringify(request.error),
        retry_at: request.retryAt ?? null, now: request.now,
      }),
    );
    const state = row ? row["state"] : this.#recordedBy(request)?.["state"];
    return failStatus(state);
  }

  async acknowledgeCancel(lease: Lease, now: number): Promise<AckStatus> {
    const row = this.#write(() => this.#get("acknowledge-cancel", { id: lease.id, token: lease.token, now }), ALWAYS, QUIET);
    return row || this.#recordedBy(lease)?.["state"] === "cancelled" ? "OK" : "LEASE_LOST";
  }

  /** The row's state if this lease already recorded the job's failure or cancellation (a repeat). */
  #recordedBy(lease: Lease): Row | undefined {
    return this.#get("lease-outcome", { id: lease.id, token: lease.token });
  }

  async release(leases: readonly Lease[], now: number): Promise<ReleaseStatus[]> {
    if (leases.length === 0) return [];
    return this.#write(() => leases.map((l) => {
      const row = this.#get("release", { id: l.id, token: l.token, now });
      return row === undefined ? "LEASE_LOST" : row["state"] === "cancelled" ? "CANCELLED" : "QUEUED";
    }));
  }

  async progress(request: Lease & { progress: number; message: string | undefined; now: number }): Promise<AckStatus> {
    return this.#write(() => {
      const run = this.#get("run-history", { id: request.id, token: request.token });
      if (!run) return "LEASE_LOST";
      const data = JSON.stringify({ progress: request.progress, message: request.message ?? null });
      const event = this.#stmt("event-insert").run({ job_id: request.id, type: "progress", data, at: request.now }).lastInsertRowid;
      this.#stmt("progress").run({ id: request.id, token: request.token, progress: request.progress, message: request.message ?? null, now: request.now, event });
      // Progress is a gauge: the run's newest progress event replaces its previous one.
      const previous = run["progress_event"];
      if (typeof previous === "number" || typeof previous === "bigint") this.#stmt("event-delete").run({ id: previous });
      return "OK";
    }, ALWAYS, QUIET);
  }

  async log(request: Lease & { line: string; now: number; maxLines?: number }): Promise<AckStatus> {
    const maxLines = request.maxLines ?? MAX_LOG_LINES_PER_RUN;
    return this.#write(() => {
      const run = this.#get("run-history", { id: request.id, token: request.token });
      if (!run) return "LEASE_LOST";
      const lines = Number(run["log_lines"]) + 1;
      if (lines > maxLines + 1) return "OK"; // past the cap, and its line was written: not kept
      const line = lines > maxLines ? logCapLine(maxLines) : request.line;
      this.#stmt("event-insert").run({ job_id: request.id, type: "log", data: JSON.stringify({ line }), at: request.now });
      this.#stmt("run-log-lines").run({ id: request.id, token: request.token, lines });
      return "OK";
    }, ALWAYS, QUIET);
  }

  async cancel(id: string, now: number): Promise<CancelStatus> {
    return this.#write(() => {
      if (this.#get("cancel-pending", { id, now })) return "CANCELLED";
      if (this.#get("cancel-active", { id, now })) return "CANCEL_REQUESTED";
      return this.#get("get-job", { id }) ? "ALREADY_FINISHED" : "NOT_FOUND";
    }, ALWAYS, QUIET);
  }

  async retry(id: string, now: number, kept = HISTORY_KEPT): Promise<RetryStatus> {
    return this.#write(() => {
      try {
        if (this.#get("retry", { id, now })) {
          this.#trimHistory(id, kept);
          return "QUEUED";
        }
      } catch (error) {
        if (isUniqueViolation(error)) return "KEY_IN_USE";
        throw error;
      }
      return this.#get("get-job", { id }) ? "NOT_FINISHED" : "NOT_FOUND";
    });
  }

  async replay(filter: ReplayFilter, now: number, kept = HISTORY_KEPT): Promise<number> {
    return this.#write(() => {
      const params = { queue: filter.queue ?? null, task: filter.task ?? null, since: filter.since ?? null, until: filter.until ?? null, now };
      const requeued = this.#all("replay", params);
      for (const row of requeued) this.#trimHistory(String(row["id"]), kept);
      return requeued.length;
    });
  }

  /** Inside a requeue's transaction, after its UPDATE. */
  #trimHistory(id: string, kept: HistoryKept): void {
    // Events only once the errors were over their cap, as on every backend (HistoryKept).
    if (Number(this.#stmt("trim-errors").run({ id, errors: kept.errors }).changes) > 0) this.#stmt("trim-events").run({ id, events: kept.events });
  }

  async stageDue(now: number): Promise<number> {
    return this.#write(() => Number(this.#stmt("stage-due").run({ now }).changes), (staged) => staged > 0);
  }

  async rescueExpired(now: number): Promise<RescueResult> {
    const rows = this.#write(() => this.#all("rescue-expired", { now }), (rescued) => rescued.length > 0);
    const pick = (state: JobState): string[] => rows.filter((r) => r["state"] === state).map((r) => String(r["id"]));
    return { requeued: pick("queued"), failed: pick("failed"), cancelled: pick("cancelled") };
  }

  async prune(retention: Retention, now: number): Promise<number> {
    const params = {
      succeeded_before: now - retention.succeeded, failed_before: now - retention.failed, cancelled_before: now - retention.cancelled, limit: PRUNE_CHUNK,
    };
    let total = 0;
    for (;;) {
      // Deleting finished jobs gives no worker anything to do: no signal.
      const deleted = this.#write(() => Number(this.#stmt("prune").run(params).changes), () => false);
      total += deleted;
      if (deleted < PRUNE_CHUNK) {
        if (total > 0) this.#write(() => this.#stmt("prune-counts").run(), () => false);
        return total;
      }
      // Between steps, the rest of this process (a claim, an enqueue) gets its turn.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  async getJob(id: string): Promise<JobRecord | undefined> {
    const row = this.#get("get-job", { id });
    return row ? toJobRecord(row) : undefined;
  }

  async peekJobs(ids: readonly string[]): Promise<JobPeek[]> {
    if (ids.length === 0) return [];
    return this.#all("peek-jobs", { ids: JSON.stringify(ids) }).map((r) => jobPeek("sqlite job", r["id"], r["state"], r["last_event"]));
  }

  async listJobs(filter: ListFilter): Promise<JobRecord[]> {
    const params = { state: filter.state ?? null, queue: filter.queue ?? null, task: filter.task ?? null, before: filter.before ?? null, limit: filter.limit };
    return this.#all("list-jobs", params).map(toJobRecord);
  }

  async counts(): Promise<QueueCounts[]> {
    const rows = this.#all("counts", {});
    return countsFromRows(rows.map((r) => ({ queue: String(r["queue"]), state: String(r["state"]), n: Number(r["n"]), oldest: typeof r["oldest"] === "number" ? r["oldest"] : undefined })));
  }


  async nextDueAt(queues: readonly string[]): Promise<number | undefined> {
    const times = queues.map((queue) => this.#get("next-due", { queue })?.["at"]).filter((at): at is number => typeof at === "number");
    return times.length ? Math.min(...times) : undefined;
  }

  async readEvents(request: { jobId?: string | undefined; afterId: number; limit: number }): Promise<JobEvent[]> {
    const rows = request.jobId === undefined
      ? this.#all("read-events", { after_id: request.afterId, limit: request.limit })
      : this.#all("read-job-events", { job_id: request.jobId, after_id: request.afterId, limit: request.limit });
    return rows.map(toJobEvent);
  }

  watch(listener: () => void, options?: WatchOptions): () => void {
    return this.#feed.subscribe(listener, options?.newWork === true);
  }

  #closed = false;

  get closed(): boolean {
    return this.#closed;
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#feed.close();
    if (this.#db.isOpen) this.#db.close();
  }
}

function claimOrder(a: ClaimedJob, b: ClaimedJob): number {
  return b.job.priority - a.job.priority || a.job.runAt - b.job.runAt || (a.job.id < b.job.id ? -1 : 1);
}

const PAUSE = new Int32Array(new SharedArrayBuffer(4));

function isBusy(error: unknown): boolean {
  const code = error instanceof Error && "errcode" in error ? Number((error as { errcode: unknown }).errcode) : 0;
  return (code & 0xff) === 5 || (code & 0xff) === 6; // SQLITE_BUSY, SQLITE_LOCKED
}

/** Claim order of candidate rows: priority DESC, run_at, id. */
function claimRank(a: Row, b: Row): number {
  return Number(b["priority"]) - Number(a["priority"]) || Number(a["run_at"]) - Number(b["run_at"]) || (String(a["id"]) < String(b["id"]) ? -1 : 1);
}

function isUniqueViolation(error: unknown): boolean {
  return error instanceof Error && "errcode" in error && (error as { errcode: unknown }).errcode === 2067; // SQLITE_CONSTRAINT_UNIQUE
}

/** A failure's status from the state it left the job in (fail.sql, lease-outcome.sql). */
function failStatus(state: unknown): FailStatus {
  return state === "retrying" ? "RETRYING" : state === "failed" ? "FAILED" : state === "cancelled" ? "CANCELLED" : "LEASE_LOST";
}
