// The PostgreSQL backend, on node-postgres: a pool for operations and one dedicated connection for
// LISTEN. Every transition is one statement guarded by state and lease token (queries/*.sql);
// claims use FOR UPDATE SKIP LOCKED, so any number of workers in any number of processes share a
// queue without blocking each other. Enqueue can join the caller's own transaction (tx), which is
// what makes this backend an outbox: a job exists exactly when the caller's writes committed.
import pg from "pg";
import type { ClaimedJob, JobRecord, JobState } from "../../core/job.ts";
import type {
  AckStatus, Backend, BackendCapabilities, CancelStatus, ClaimRequest, CompleteAck, EnqueueRequest, EnqueueResult,
  FailRequest, FailStatus, ReleaseStatus, HeartbeatRequest, HeartbeatResult, JobEvent, JobPeek, Lease, ListFilter,
  QueueCounts, ReplayFilter, RescueResult, Retention, RetryStatus, WatchOptions,
} from "../backend.ts";
import { HISTORY_KEPT, MAX_LOG_LINES_PER_RUN, logCapLine } from "../backend.ts";
import { ClosedError, SchemaNotMigratedError } from "../../core/errors.ts";
import { randomToken } from "../../core/ids.ts";
import { countsFromRows, jobPeek } from "../decode.ts";
import { QUIET_OPERATIONS } from "../change-listeners.ts";
import { distinctLeases, leaseKey } from "../lease-batch.ts";
import { claimRecovering, enqueueResending } from "../lost-replies.ts";
import { type PostgresOptions, connectionSettings, endedWhileIdle, judged, resendable, rollbackWarning, rolledBack, unavailable as serverUnavailable } from "./connection.ts";
import { type EnqueueStatements, enqueueJobs } from "./enqueue.ts";
import { Listener } from "./listener.ts";
import { type MigrateResult, migrate } from "./migrate.ts";
import { channelName, loadQueries, type QueryName, withOrigin, withoutNotify } from "./queries.ts";
import { Notifier } from "./notifier.ts";
import { type Row, textArray, toJobEvent, toJobRecord } from "./rows.ts";
import { pooledQuery, serverPidOf } from "./pooled-query.ts";
import { askUntil } from "./ask-until.ts";
import { storable, storableText } from "./text.ts";
import { type RunQuery, transactionRunner } from "./transaction.ts";

export type { PostgresOptions };

/**
 * Hot statements are prepared once per connection (named) and run on a generic plan
 * (pooled-query.ts); the rest are planned with their actual parameters.
 */
const PREPARED: ReadonlySet<QueryName> = new Set(["claim", "complete", "heartbeat", "enqueue", "enqueue-keyed", "get-job", "fail", "next-due", "peek-jobs", "notify-change"]);
/** Rows per statement of the bulk steps (staging due jobs, rescue, prune), until a statement_timeout says less. */
const BULK_STEP = 5_000;
/** The smallest step: a server that cannot stage or prune this many rows within its timeout fails the call. */
const MIN_BULK_STEP = 10;
/** Pauses before each resend of a statement rolled back by a serialization failure or deadlock (jittered ±50%). */
const ROLLED_BACK_PAUSES_MS: readonly number[] = [1, 5, 20, 50, 100, 200];
const UNIQUE_VIOLATION = "23505";
/**
 * How long a read of the global feed waits for transactions that may still commit events below
 * the newest it sees (#feedHorizon) before it answers with nothing new. Offload's own are single
 * statements of milliseconds; an app's transaction that enqueued with `tx` holds the feed back
 * until it ends.
 */
const FEED_WAIT_MS = 1_000;
const STATEMENT_CANCELLED = "57014";

export class PostgresBackend implements Backend {
  readonly name = "postgres";
  readonly capabilities: BackendCapabilities = { transactionalEnqueue: true, sharedAcrossProcesses: true };
  readonly schema: string;
  readonly #pool: pg.Pool;
  /**
   * The NOTIFYs' way out when the pool has no connection free (notifier.ts): one connection of
   * their own, made when needed, closed once idle for the pool's idle timeout. In the pool's queue a
   * NOTIFY waited behind every statement queued before it: with 2,000 enqueue() calls at once on
   * the pool of 10, a worker in another process started the first job 1.3-1.6 s after it
   * committed, once nearly all of them had run (50 ms when each enqueue notified itself), and one
   * enqueue waiting on a row lock (a key an app's open transaction holds) held it back as long.
   */
  readonly #notifyPool: pg.Pool;
  readonly #sql: Record<QueryName, string>;
  readonly #listener: Listener;
  /** Tells other processes of this one's writes, after they commit (notifier.ts). */
  readonly #notifier: Notifier;
  readonly #channel: string;
  readonly #statements: EnqueueStatements;
  /** The same statements without this backend's origin, for enqueues in the app's transactions. */
  readonly #appStatements: EnqueueStatements;
  readonly #replyTimeoutMs: number;
  /** The pool is a transaction pooler: no named statements, no session state (connection.ts). */
  readonly #transactionPooler: boolean;
  /**
   * Errors of statements of ours rolled back by contention at every resend (#query): the app's
   * calls get them as BackendUnavailableError. The same codes from the app's own transaction
   * (enqueue with tx) are the app's to act on, and reach it as they are.
   */
  readonly #contended = new WeakSet<object>();
  /** The rollback codes (40001, 40P01) already reported by a warning: once each per backend. */
  readonly #reportedRollbacks = new Set<string>();
  /** Rows per statement of each bulk step (#inSteps). */
  readonly #stepSizes = { "stage-due": BULK_STEP, "rescue-expired": BULK_STEP, prune: BULK_STEP };
  #closed: Promise<void> | undefined;
  /**
   * Statements on their way, and queued for a connection: close() lets them finish before the pools
   * end. The pool's end answered none of those queued (their calls never settled), and the writes
   * that committed meanwhile notified no one: the notifier had closed.
   */
  readonly #running = new Map<Promise<unknown>, (error: Error) => void>();
  /**
   * Set when close() gave up on the calls still out, with the ClosedError they got: on a server
   * that does not answer, those queued for a connection would each wait out a reply timeout in
   * turn (30 s per pool's worth), and close() with them. Each call holds its own way to be given
   * up (the values of #running): a Promise.race of every call against one promise that settles
   * only at close() left a reaction on that promise per call, holding the call's rows, for as long
   * as the backend was open (about 6 promises and 2.5 KB per job a worker ran).
   */
  #gaveUp: Error | undefined;

  private constructor(options: PostgresOptions) {
    const settings = connectionSettings(options);
    this.schema = settings.schema;
    this.#channel = channelName(settings.schema);
    // Every write is NOTIFYed with its origin (by the notifier, after it commits), and the listener
    // skips its own: this process announces its writes directly, and a worker woken by its own
    // claims and completions claimed again for nothing, about three times per job run one at a
    // time. The origin was a session variable set on each pooled connection, but behind a
    // transaction pooler a session is anyone's from one transaction to the next: the variable
    // named this process in other clients' writes (skipped here as ours). The notifier names it in
    // each NOTIFY. A transaction of the app's own has no origin (its enqueue statements notify
    // inside, as written): its jobs wake everyone, this process too. The claim's text names the
    // origin too (withOrigin), for end-backend.sql.
    const origin = randomToken();
    this.#sql = withoutNotify(withOrigin(loadQueries(settings.schema), origin));
    // A NOTIFY refused as sent (no verdict lost) would be refused again: only a lost one is retried.
    this.#notifier = new Notifier(origin, (payload) => this.#query("notify-change", this.#sql["notify-change"], [this.#channel, payload], undefined, this.#notifyVia()).then(
      () => {},
      (error: unknown) => {
        if (resendable(error) && !this.closed) throw error;
      },
    ));
    this.#statements = { sql: this.#sql, channel: this.#channel };
    this.#appStatements = { sql: loadQueries(settings.schema), channel: this.#channel };
    this.#replyTimeoutMs = settings.replyTimeoutMs;
    this.#transactionPooler = settings.transactionPooler;
    this.#pool = new pg.Pool(settings.pool);
    this.#notifyPool = new pg.Pool({ ...settings.pool, max: 1 });
    // An idle pooled connection that breaks (server restart) is dropped by the pool; the next
    // query opens a fresh one. Without a listener this event would crash the process.
    const onError = options.onConnectionError ?? ((): void => {});
    // ...except one the server ended for sitting idle (57P05, idle_session_timeout): that is the
    // server's policy at work, not trouble, and under a short timeout it was reported every few
    // seconds for as long as the app ran.
    const onPoolError = (error: Error): void => {
      if (!endedWhileIdle(error)) onError(error);
    };
    this.#pool.on("error", onPoolError);
    this.#notifyPool.on("error", onPoolError);
    // The statements are written for read committed (a claim skips locked rows and takes the
    // rest), whatever isolation the database gives the app's transactions by default: under
    // serializable, workers' claims over one queue failed each other (40001) a few times per
    // hundred jobs, each failure reported. Set before the pool hands a new connection out (pg runs
    // a client's queries in order). Behind a transaction pooler no session is ours to set: there
    // a statement rolled back for that is sent again (#query).
    if (!settings.transactionPooler) {
      this.#pool.on("connect", (client) => {
        client.query("SET default_transaction_isolation = 'read committed'").catch(() => {});
      });
    }
    this.#listener = new Listener(settings.listen, this.#channel, settings.pollMs, onError, origin);
  }

  /** Opens a pool and, unless `migrate: false`, brings the schema up to date first. */
  static async open(options: PostgresOptions): Promise<PostgresBackend> {
    const backend = new PostgresBackend(options);
    try {
      if (connectionSettings(options).migrate) await backend.migrate();
    } catch (error) {
      await backend.close();
      throw error;
    }
    return backend;
  }

  /** Applies pending migrations under an advisory lock; safe to call from many processes at once. */
  migrate(): Promise<MigrateResult> {
    return migrate(this.#pool, this.schema, { sessionSettings: !this.#transactionPooler });
  }

  /** Resolves once change notifications are being received (the LISTEN is in place). */
  listening(): Promise<void> {
    return this.#listener.ready();
  }

  /**
   * Where a NOTIFY goes now: the pool when it hands out a connection without a wait (it has an idle
   * one, most often the one the write just gave back, or room for another, and nothing queued
   * for it), else the NOTIFYs' own connection.
   */
  #notifyVia(): pg.Pool {
    const pool = this.#pool;
    const free = pool.waitingCount === 0 && (pool.idleCount > 0 || pool.totalCount < (pool.options.max ?? 10));
    return free ? pool : this.#notifyPool;
  }

  /** Runs one of our statements; `replyTimeoutMs` shortens the pool's reply timeout for this one. */
  async #rows(name: QueryName, values: unknown[], replyTimeoutMs?: number): Promise<Row[]> {
    return this.#query(name, this.#sql[name], values, replyTimeoutMs);
  }

  /**
   * Runs `text` on a pooled connection: a hot statement (PREPARED) named and on a generic plan,
   * anything else on custom plans; behind a transaction pooler, unnamed and as the server is set
   * (pooled-query.ts). `pool`: the NOTIFYs' own, for a NOTIFY when the pool has none free.
   */
  async #query(name: QueryName | undefined, text: string, values: unknown[], replyTimeoutMs?: number, pool = this.#pool): Promise<Row[]> {
    const running = this.#queryNow(name, text, values, replyTimeoutMs, pool);
    let giveUp: (error: Error) => void = () => {};
    const answered = new Promise<Row[]>((resolve, reject) => {
      giveUp = reject;
      running.then(resolve, reject);
    });
    this.#running.set(running, giveUp);
    if (this.#gaveUp) giveUp(this.#gaveUp);
    try {
      return await answered;
    } finally {
      this.#running.delete(running);
    }
  }

  async #queryNow(name: QueryName | undefined, text: string, values: unknown[], replyTimeoutMs: number | undefined, pool: pg.Pool): Promise<Row[]> {
    // pg reads query_timeout from the query too (its types do not say so).
    const timeout = replyTimeoutMs === undefined ? {} : { query_timeout: replyTimeoutMs };
    const run = (): Promise<Row[]> => {
      if (this.#transactionPooler) return pooledQuery<Row>(pool, { text, values, ...timeout }, "as-is");
      return name !== undefined && PREPARED.has(name)
        ? pooledQuery<Row>(pool, { name: `offload_${name}`, text, values, ...timeout }, "generic")
        : pooledQuery<Row>(pool, { text, values, ...timeout }, "custom");
    };
    // Each statement is a transaction of its own: one rolled back by a serialization failure or
    // a deadlock did nothing, and is sent again, as PostgreSQL asks of such transactions.
    for (let retry = 0; ; retry++) {
      try {
        return await run();
      } catch (error) {
        const pause = ROLLED_BACK_PAUSES_MS[retry];
        if (!rolledBack(error)) throw notMigrated(error, this.schema) ?? error;
        this.#reportRollback(name, error);
        if (pause === undefined || this.closed) {
          this.#contended.add(error);
          throw error;
        }
        await new Promise<void>((resolve) => setTimeout(resolve, pause * (0.5 + Math.random())));
      }
    }
  }

  /**
   * Resends keep the work going, but the cause is the operator's to know of: a deadlock means
   * someone else locks Offload's rows (or a lock-order bug of ours), and a serialization failure
   * means the role's isolation level is stricter than read committed where Offload cannot set its
   * own (behind a transaction pooler). Said once per cause, not once per resend.
   */
  #reportRollback(name: QueryName | undefined, error: Error): void {
    const code = (error as { code?: unknown }).code === "40P01" ? "40P01" : "40001";
    if (this.#reportedRollbacks.has(code)) return;
    this.#reportedRollbacks.add(code);
    process.emitWarning(rollbackWarning(code, name ?? "a statement", this.schema), { code: "OFFLOAD_POSTGRES_ROLLED_BACK" });
  }

  async #first(name: QueryName, values: unknown[]): Promise<Row | undefined> {
    return (await this.#rows(name, values))[0];
  }

  /** A write of ours: watchers in this process are told now, other processes once it has committed. */
  async #write(name: QueryName, values: unknown[]): Promise<Row[]> {
    let rows: Row[];
    try {
      rows = await this.#rows(name, values);
    } catch (error) {
      // It may have landed: look again anyway.
      if (resendable(error)) this.#changed(!QUIET_OPERATIONS.has(name));
      throw error;
    }
    if (rows.length > 0) this.#changed(!QUIET_OPERATIONS.has(name));
    return rows;
  }

  /** Tells this process's watchers and, by a NOTIFY after the commit, every other process's. */
  #changed(newWork = true): void {
    this.#listener.announce(newWork);
    this.#notifier.notify(!newWork);
  }

  async enqueue(request: EnqueueRequest): Promise<EnqueueResult[]> {
    if (request.jobs.length === 0) return [];
    if (request.tx !== undefined) {
      // No local announce: the rows exist only once the caller commits, and the NOTIFY says so then.
      try {
        return await enqueueJobs(transactionRunner(request.tx), this.#appStatements, request.jobs, request.now);
      } catch (error) {
        throw notMigrated(error, this.schema) ?? error;
      }
    }
    const run: RunQuery = (text, values) => {
      const name = text === this.#sql["enqueue"] ? "enqueue" : text === this.#sql["enqueue-keyed"] ? "enqueue-keyed" : undefined;
      return this.#query(name, text, values);
    };
    // A batch whose reply was lost is sent again as it was (lost-replies.ts). Not inside the
    // caller's transaction above: an error there aborts the transaction, and the caller decides.
    try {
      return await enqueueResending(request.jobs, request.now, {
        send: (jobs) => enqueueJobs(run, this.#statements, jobs, request.now),
        resendable: (error) => !this.closed && resendable(error),
        duplicateId: (error) => isCode(error, UNIQUE_VIOLATION) && (error as { constraint?: unknown }).constraint === "jobs_pkey",
        stored: async (ids) => new Set((await this.#rows("stored-ids", [ids])).map((r) => String(r["id"]))),
      });
    } finally {
      // Also when every resend failed: the batch may have landed.
      this.#changed();
    }
  }

  async claim(request: ClaimRequest): Promise<ClaimedJob[]> {
    if (request.limit <= 0 || request.queues.length === 0) return [];
    const queues = [...new Set(request.queues)]; // a queue named twice would be scanned twice
    const leaseUntil = request.now + request.leaseMs;
    // Every lease token of this claim starts with it, so that the jobs of a claim whose reply was
    // lost can be found again instead of waiting for their leases to run out (lost-replies.ts).
    const tokenBase = `${randomToken()}.`;
    // Over more queues than its limit, candidates come from the queues whose best jobs rank
    // highest only (claim.sql, $8).
    const bestFirst = queues.length > request.limit;
    // Behind a transaction pooler the claim's server session is known by its text only (see the
    // reclaim below): it starts with a comment naming the claim. Elsewhere the text stays the
    // prepared statement's, the same for every claim.
    const tag = `/* offload claim ${tokenBase} */`;
    const text = this.#transactionPooler ? `${tag}\n${this.#sql["claim"]}` : this.#sql["claim"];
    const claimWith = (checkDue: boolean, best: boolean, limit: number): Promise<Row[]> =>
      this.#query("claim", text, [queues, limit, request.worker, leaseUntil, request.now, checkDue, tokenBase, best], replyTimeoutMs);
    const claimed = (rows: Row[]): ClaimedJob[] =>
      rows.filter((row) => row["id"] !== null).map((row) => ({ job: toJobRecord(row), token: String(row["lease_token"]) })).sort(claimOrder);
    // A claim never waits on a lock (SKIP LOCKED), so its reply is due within a third of the lease
    // at most: a reply lost on a silent connection is then noticed while the jobs' leases still
    // run, and they can be found again before rescue charges them an attempt. Never under 1 s:
    // on a busy machine a healthy claim may take that long, and one cut short is stopped and
    // looked for (below), a detour that costs it its jobs for now.
    const replyTimeoutMs = Math.min(this.#replyTimeoutMs, Math.max(1_000, Math.floor(request.leaseMs / 3)));
    // A claim given up on at its reply timeout goes on running on the server, and may commit after
    // the reclaim has looked: its jobs then sat active under a lease nobody held, until rescue
    // charged them an attempt they never ran (with `attempts: 1`, failed unrun; found by a chaos
    // soak). So its server process is stopped first, and the reclaim looks once it has ended.
    let stalled: (() => Promise<void>) | undefined;
    return claimRecovering({
      claim: async () => {
        try {
          let rows = await claimWith(true, bestFirst, request.limit);
          if (rows[0]?.["due"] === true) {
            // Scheduled or retrying jobs are due, and claim.sql claimed nothing: stage them, then claim.
            await this.stageDue(request.now);
            rows = await claimWith(false, bestFirst, request.limit);
          }
          let jobs = claimed(rows);
          if (jobs.length < request.limit && rows[0]?.["more_queues"] === true) {
            // Best first came back short while more queues than it looked at have jobs: rows that
            // other claims held were skipped. Every queue, for the slots left (claim.sql, $10).
            try {
              jobs = [...jobs, ...claimed(await claimWith(false, false, request.limit - jobs.length))].sort(claimOrder);
            } catch (error) {
              // The first statement's jobs are claimed (it committed). A lost reply is recovered
              // below: the reclaim finds the jobs of both statements by their token base. Refused
              // by the server (a statement or lock timeout, no connection to spare…), the second
              // statement took nothing, and the claim hands over the first one's jobs: thrown,
              // they sat active under a lease nobody held until rescue charged them an attempt
              // they never ran. This process's claim loops look again, for the queues it missed.
              if (jobs.length === 0 || resendable(error)) throw error;
              this.#listener.announce();
            }
          }
          // Quiet for claim loops (result waiters and event streams see `active`), unless it may
          // have hidden jobs from them: over several queues, a full claim locked up to its limit
          // of candidates in each and let the extras go at commit, and a claim of another worker
          // that skipped them meanwhile came back short.
          if (jobs.length > 0) this.#changed(queues.length > 1 && jobs.length === request.limit);
          return jobs;
        } catch (error) {
          // Behind a transaction pooler the process id we know is the pooler's, not the server
          // session's (and may be some other session's), and the pooler, told only that we hung up, left
          // the statement running: its session is found by the claim's text instead. Left to
          // commit after the reclaim looked, its jobs sat active under a lease nobody held until
          // rescue charged them an attempt they never ran (with `attempts: 1`, failed unrun).
          const pid = serverPidOf(error);
          stalled = this.#transactionPooler
            ? () => this.#claimEnded(tag, replyTimeoutMs)
            : pid === undefined ? undefined : () => this.#ended(pid, text, replyTimeoutMs);
          throw error;
        }
      },
      reclaim: async () => {
        if (stalled !== undefined) {
          await stalled();
          stalled = undefined;
          // Rolled back, it hid its rows from claims that skipped them meanwhile and came back
          // short: they look again (so does this process).
          await this.#rows("notify-work", [this.#channel]);
          this.#listener.announce();
        }
        const jobs = claimed(await this.#rows("reclaim", [leaseUntil, tokenBase]));
        // The claim's own change, `active`, for waiters elsewhere: its reply was lost, and with it
        // the moment to tell them.
        if (jobs.length > 0) this.#notifier.notify(true);
        return jobs;
      },
      resendable: (error) => !this.closed && resendable(error),
      now: request.now,
      leaseUntil,
    });
  }

  /**
   * Stops the server process `pid` (a connection given up on) while it runs `claimText`, and
   * resolves once it no longer does; fails if it still does after `withinMs` (a frozen server: the
   * caller tries again later).
   */
  async #ended(pid: number, claimText: string, withinMs: number): Promise<void> {
    let started: unknown = null; // the process's start time, from the first answer
    const ended = await askUntil(async () => {
      const [row] = await this.#rows("end-backend", [pid, started, claimText], withinMs);
      started = row?.["backend_start"] ?? started;
      return row === undefined;
    }, { withinMs, firstPauseMs: 10, maxPauseMs: 200 });
    if (!ended) throw new Error(`the server process of a claim given up on (pid ${pid}) has not ended yet`);
  }


  /**
   * Behind a transaction pooler: stops the server session still running the claim whose text
   * starts with `tag` (end-claim.sql), and resolves once none runs it; fails if one still does
   * after `withinMs`, as #ended. A claim the pooler never passed on (it waited for a free server
   * session when we hung up) is dropped by the pooler, and nothing runs it.
   */
  async #claimEnded(tag: string, withinMs: number): Promise<void> {
    const ended = await askUntil(async () => (await this.#rows("end-claim", [tag], withinMs)).length === 0, { withinMs, firstPauseMs: 10, maxPauseMs: 200 });
    if (!ended) throw new Error("the server session of a claim given up on has not ended yet");
  }


  async heartbeat(request: HeartbeatRequest): Promise<HeartbeatResult> {
    if (request.leases.length === 0) return { lost: [], cancelRequested: [] };
    const rows = await this.#rows("heartbeat", [request.leases.map((l) => l.id), request.leases.map((l) => l.token), request.now + request.leaseMs]);
    const held = new Map(rows.map((r) => [String(r["id"]), r["cancel_requested"] === true]));
    return {
      lost: request.leases.filter((l) => !held.has(l.id)).map((l) => l.id),
      cancelRequested: request.leases.filter((l) => held.get(l.id) === true).map((l) => l.id),
    };
  }

  async complete(acks: readonly CompleteAck[], now: number): Promise<AckStatus[]> {
    if (acks.length === 0) return [];
    // Each lease once (lease-batch.ts): a repeat in the batch is answered as its first.
    const once = distinctLeases(acks);
    const rows = await this.#write("complete", [once.map((a) => a.id), once.map((a) => a.token), once.map((a) => a.resultJson), now]);
    const status = new Map(once.map((a, i): [string, AckStatus] => [leaseKey(a), rows[i]?.["ok"] === true ? "OK" : "LEASE_LOST"]));
    return acks.map((a) => status.get(leaseKey(a)) ?? "LEASE_LOST");
  }

  async fail(request: FailRequest): Promise<FailStatus> {
    const error = JSON.stringify(storable(request.error));
    const row = (await this.#write("fail", [request.id, request.token, error, request.retryAt ?? null, request.now]))[0];
    if (!row) return "LEASE_LOST";
    return row["state"] === "retrying" ? "RETRYING" : row["state"] === "cancelled" ? "CANCELLED" : "FAILED";
  }

  async acknowledgeCancel(lease: Lease, now: number): Promise<AckStatus> {
    return (await this.#write("acknowledge-cancel", [lease.id, lease.token, now])).length > 0 ? "OK" : "LEASE_LOST";
  }

  async release(leases: readonly Lease[], now: number): Promise<ReleaseStatus[]> {
    if (leases.length === 0) return [];
    // Each lease once (lease-batch.ts): a repeat finds the lease released by its first.
    const once = distinctLeases(leases);
    const rows = await this.#write("release", [once.map((l) => l.id), once.map((l) => l.token), now]);
    const released = new Map(rows.map((r) => [leaseKey({ id: String(r["id"]), token: String(r["token"]) }), r["state"] === "cancelled"]));
    return leases.map((l) => {
      const key = leaseKey(l);
      const cancelled = released.get(key);
      released.delete(key); // a lease named twice: the repeat is LEASE_LOST
      return cancelled === undefined ? "LEASE_LOST" : cancelled ? "CANCELLED" : "QUEUED";
    });
  }

  async progress(request: Lease & { progress: number; message: string | undefined; now: number }): Promise<AckStatus> {
    const message = request.message === undefined ? null : storableText(request.message);
    const rows = await this.#write("progress", [request.id, request.token, request.progress, message, request.now]);
    return rows.length > 0 ? "OK" : "LEASE_LOST";
  }

  async log(request: Lease & { line: string; now: number; maxLines?: number }): Promise<AckStatus> {
    const maxLines = request.maxLines ?? MAX_LOG_LINES_PER_RUN;
    const rows = await this.#write("log", [request.id, request.token, storableText(request.line), request.now, maxLines, logCapLine(maxLines)]);
    return rows.length > 0 ? "OK" : "LEASE_LOST";
  }

  async cancel(id: string, now: number): Promise<CancelStatus> {
    // CHANGED: the job moved between states while the statement ran; a second look settles it.
    for (let attempt = 0; attempt < 5; attempt++) {
      const status = (await this.#write("cancel", [id, now]))[0]?.["status"];
      if (status === undefined) return "NOT_FOUND";
      if (status === "CANCELLED" || status === "CANCEL_REQUESTED" || status === "ALREADY_FINISHED") return status;
    }
    throw new Error(`cancel ${id}: the job kept changing state`);
  }

  async retry(id: string, now: number, kept = HISTORY_KEPT): Promise<RetryStatus> {
    try {
      if ((await this.#write("retry", [id, now, kept.errors, kept.events])).length > 0) return "QUEUED";
    } catch (error) {
      if (isCode(error, UNIQUE_VIOLATION)) return "KEY_IN_USE";
      throw error;
    }
    return (await this.getJob(id)) ? "NOT_FINISHED" : "NOT_FOUND";
  }

  async replay(filter: ReplayFilter, now: number, kept = HISTORY_KEPT): Promise<number> {
    const params = [filter.queue ?? null, filter.task ?? null, filter.since ?? null, filter.until ?? null, now, kept.errors, kept.events];
    for (let attempt = 1; ; attempt++) {
      try {
        return (await this.#write("replay", params)).length;
      } catch (error) {
        // A key taken by a job enqueued during the statement: the next statement skips that job.
        if (!isCode(error, UNIQUE_VIOLATION) || attempt >= 3) throw error;
      }
    }
  }

  async stageDue(now: number): Promise<number> {
    return this.#inSteps("stage-due", async (size) => (await this.#write("stage-due", [now, size])).length);
  }

  async rescueExpired(now: number): Promise<RescueResult> {
    const rows: Row[] = [];
    await this.#inSteps("rescue-expired", async (size) => {
      const step = await this.#write("rescue-expired", [now, size]);
      rows.push(...step);
      return step.length;
    });
    const pick = (state: JobState): string[] => rows.filter((r) => r["state"] === state).map((r) => String(r["id"]));
    return { requeued: pick("queued"), failed: pick("failed"), cancelled: pick("cancelled") };
  }

  async prune(retention: Retention, now: number): Promise<number> {
    const before = [now - retention.succeeded, now - retention.failed, now - retention.cancelled];
    const total = await this.#inSteps("prune", async (size) => Number((await this.#first("prune", [...before, size]))?.["n"] ?? 0));
    if (total > 0) {
      await this.#first("fold-counts", []);
      await this.#first("drop-zero-counts", []);
    }
    return total;
  }

  /**
   * Runs a bulk statement one step of rows at a time, until a step comes back short. A step the
   * server cancels (57014: its statement_timeout, which a provider or DBA may set at a fraction
   * of a second) is tried again at half the size, and this backend keeps the smaller size. In one
   * statement, a burst of due jobs or a prune that took longer than the timeout failed on every
   * try: the burst's jobs never ran, and finished jobs piled up. A statement rolled back by a
   * cancel did nothing, so trying it again is safe.
   */
  async #inSteps(name: "stage-due" | "rescue-expired" | "prune", step: (size: number) => Promise<number>): Promise<number> {
    let total = 0;
    for (;;) {
      const size = this.#stepSizes[name];
      let n: number;
      try {
        n = await step(size);
      } catch (error) {
        if (!isCode(error, STATEMENT_CANCELLED) || size <= MIN_BULK_STEP) throw error;
        this.#stepSizes[name] = Math.max(MIN_BULK_STEP, Math.floor(size / 2));
        continue;
      }
      total += n;
      if (n < size) return total;
    }
  }

  async getJob(id: string): Promise<JobRecord | undefined> {
    const row = await this.#first("get-job", [id]);
    return row ? toJobRecord(row) : undefined;
  }

  async peekJobs(ids: readonly string[]): Promise<JobPeek[]> {
    if (ids.length === 0) return [];
    const rows = await this.#rows("peek-jobs", [ids]);
    return rows.map((r) => jobPeek("postgres job", r["id"], r["state"], r["last_event"]));
  }

  async listJobs(filter: ListFilter): Promise<JobRecord[]> {
    const params = [filter.state ?? null, filter.queue ?? null, filter.task ?? null, filter.before ?? null, filter.limit];
    return (await this.#rows("list-jobs", params)).map(toJobRecord);
  }

  async counts(): Promise<QueueCounts[]> {
    const rows = await this.#rows("counts", []);
    return countsFromRows(rows.map((r) => ({ queue: String(r["queue"]), state: String(r["state"]), n: Number(r["n"]), oldest: typeof r["oldest"] === "number" ? r["oldest"] : undefined })));
  }


  async nextDueAt(queues: readonly string[]): Promise<number | undefined> {
    const at = (await this.#first("next-due", [queues]))?.["at"];
    return typeof at === "number" ? at : undefined;
  }

  async serverTime(): Promise<number> {
    return Number((await this.#first("server-time", []))?.["ms"]);
  }

  async readEvents(request: { jobId?: string | undefined; afterId: number; limit: number }): Promise<JobEvent[]> {
    // One job's events commit in id order (each write locks the job's row first), so its feed
    // needs no horizon (docs/decisions.md, *Event feed ordering*).
    if (request.jobId !== undefined) return (await this.#rows("read-events", [request.jobId, request.afterId, request.limit, null])).map(toJobEvent);
    const upTo = await this.#feedHorizon(request.afterId, request.limit);
    if (upTo === undefined) return [];
    return (await this.#rows("read-events", [null, request.afterId, request.limit, upTo])).map(toJobEvent);
  }

  /**
   * The id up to which the global feed after `afterId` is final: every event with an id at or
   * below it that will ever commit has committed. Ids are taken in one order and committed in
   * another, and a reader that resumed after an id skipped, for good, a lower one that committed a
   * moment later (an app's transaction that enqueued with `tx` and committed after a worker's
   * claim, say). So the feed waits for the transactions that were writing events when it looked
   * (feed-horizon.sql); undefined when there is nothing new, or when one of them is still open
   * after FEED_WAIT_MS (the caller asks again).
   */
  async #feedHorizon(afterId: number, limit: number): Promise<string | undefined> {
    const [look] = await this.#rows("feed-horizon", [afterId, limit]);
    const upTo = look?.["upto"];
    if (typeof upTo !== "string" && typeof upTo !== "number") return undefined;
    let writers = textArray(look?.["writers"]);
    let looked = false; // the first answer is feed-horizon's own: ask again only after a pause
    const ended = await askUntil(async () => {
      if (looked && writers.length > 0) writers = (await this.#rows("feed-writers", [writers])).map((row) => String(row["writer"]));
      looked = true;
      return writers.length === 0;
    }, { withinMs: FEED_WAIT_MS, firstPauseMs: 1, maxPauseMs: 50 });
    return ended ? String(upTo) : undefined;
  }

  watch(listener: () => void, options?: WatchOptions): () => void {
    return this.#listener.subscribe(listener, options?.newWork === true);
  }

  unavailable(error: unknown): boolean {
    return serverUnavailable(error) || (typeof error === "object" && error !== null && this.#contended.has(error));
  }

  get closed(): boolean {
    return this.#closed !== undefined;
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      await this.#listener.close();
      // A write that settles tells the notifier in a later microtask: a turn after each wait. For
      // one reply timeout at most, the longest a statement on a healthy connection may take.
      let expired = false;
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          expired = true;
          resolve();
        }, this.#replyTimeoutMs);
      });
      while (this.#running.size > 0 && !expired) {
        await Promise.race([Promise.allSettled(this.#running.keys()), deadline]);
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      clearTimeout(timer);
      if (this.#running.size > 0) {
        this.#gaveUp = new ClosedError("the PostgreSQL backend was closed before this call was answered (the server did not answer within its reply timeout)");
        for (const giveUp of this.#running.values()) giveUp(this.#gaveUp);
      }
      await this.#notifier.close();
      await Promise.all([this.#pool.end(), this.#notifyPool.end()]);
    })();
    return this.#closed;
  }
}

function claimOrder(a: ClaimedJob, b: ClaimedJob): number {
  return b.job.priority - a.job.priority || a.job.runAt - b.job.runAt || (a.job.id < b.job.id ? -1 : 1);
}

/**
 * SQLSTATEs of a statement that names what the schema lacks: undefined table, schema, function or
 * column. Met by a backend opened with ?migrate=false on a schema `offload migrate` never made (or
 * one older than this code), where pg's "relation … does not exist" told nothing of what to do.
 */
const SCHEMA_LACKS = new Set(["42P01", "3F000", "42883", "42703"]);

function notMigrated(error: unknown, schema: string): SchemaNotMigratedError | undefined {
  // judged: through an ORM's wrapper (an enqueue with tx) to pg's own error and its SQLSTATE.
  const driver = judged(error);
  if (!(driver instanceof Error) || !SCHEMA_LACKS.has(String((driver as { code?: unknown }).code))) return undefined;
  return new SchemaNotMigratedError(
    schema,
    `the PostgreSQL schema "${schema}" has no Offload tables, or older ones than this code's (${driver.message}): run \`offload migrate\` for it, or open the backend without ?migrate=false`,
    { cause: error },
  );
}

function isCode(error: unknown, code: string): boolean {
  return typeof error === "object" && error !== null && (error as { code?: unknown }).code === code;
}
