// The Redis backend (standalone, TLS, or Cluster). Each job is a hash; per-state indexes are
// sorted sets; every state change is one Lua script (scripts/*.lua) guarded by the expected
// state and the lease token. All keys of one prefix share one {hash tag}, so every script runs
// on one Cluster slot; docs/redis.md explains that choice and its throughput trade-off.
//
// Invariants:
// - `now` always comes from the caller and reaches the scripts as an argument (never TIME).
// - The per-queue counters, the state indexes and the job hashes change together, in one script.
// - Event ids come from one counter per prefix, so they increase across the whole backend.
import { Cluster, type Redis } from "ioredis";
import type { ClaimedJob, JobRecord, JobState } from "../../core/job.ts";
import { JOB_STATES } from "../../core/job.ts";
import { type Duration, positiveMs } from "../../core/duration.ts";
import { ConfigError } from "../../core/errors.ts";
import { randomToken } from "../../core/ids.ts";
import type {
  AckStatus, Backend, CancelStatus, ClaimRequest, CompleteAck, EnqueueRequest, EnqueueResult,
  FailRequest, FailStatus, ReleaseStatus, HeartbeatRequest, HeartbeatResult, JobEvent, JobPeek, Lease, ListFilter, NewJob,
  QueueCounts, ReplayFilter, RescueResult, Retention, RetryStatus, WatchOptions,
} from "../backend.ts";
import { HISTORY_KEPT, MAX_LOG_LINES_PER_RUN, logCapLine } from "../backend.ts";
import { ChangeFeed } from "./change-feed.ts";
import { QUIET_OPERATIONS } from "../change-listeners.ts";
import { watchServer } from "./server-check.ts";
import { claimRecovering, enqueueResending } from "../lost-replies.ts";
import { DEFAULT_REPLY_TIMEOUT_MS, closeClient, createClient, notSent, parseRedisUrl, refusedForNow, resendable, subscriberClient } from "./connection.ts";
import { type Arg, type ScriptName, ScriptRunner } from "./scripts.ts";
import { jobPeek } from "../decode.ts";
import { CLAIM_FIELDS, claimedRecord, eventFieldsAfter, feedEvents, jobEvents, toFields, toJobRecord } from "./records.ts";

export interface RedisBackendOptions {
  /** redis://, rediss://, redis(s)+cluster:// or redis(s)+sentinel:// URL; its ?prefix= and ?maxEvents= apply unless given below. */
  readonly url?: string;
  /** An ioredis client to use instead of a URL; the backend does not close it. */
  readonly client?: Redis | Cluster;
  /** Isolates one Offload installation (or one test) from others on the same server. Default "offload". */
  readonly prefix?: string;
  /** Size of the global event feed; older events are trimmed (a job's own events stay until it is pruned). Default 100000. */
  readonly maxEvents?: number;
  /**
   * How long a command may wait for its reply before its connection is presumed dead, dropped and
   * made again (calls on it fail as "outcome unknown"). Default: the URL's ?replyTimeout=, else
   * "10s". With your own `client`, set ioredis's `socketTimeout` on it instead.
   */
  readonly replyTimeout?: Duration;
}

const PREFIX = /^[A-Za-z0-9_.:-]{1,100}$/;
/** Jobs (or ids) one maintenance script call handles, so no call blocks the server for long. */
const CHUNK = 1_000;
/** enqueue.lua's error reply when a job id of the batch exists: nothing of the batch was written. */
const DUPLICATE_ID = "OFFLOAD_DUPLICATE_ID";

type Writer = (name: ScriptName, now: number, args: readonly Arg[]) => Promise<unknown>;

export class RedisBackend implements Backend {
  readonly name = "redis";
  readonly capabilities = { transactionalEnqueue: false, sharedAcrossProcesses: true, overlappingClaims: true };
  /** The key prefix, hash tag included: "{offload}:". */
  readonly keyPrefix: string;
  readonly #client: Redis | Cluster;
  readonly #ownsClient: boolean;
  readonly #scripts: ScriptRunner;
  readonly #feed: ChangeFeed;

  constructor(options: RedisBackendOptions) {
    const fromUrl = options.url === undefined ? undefined : parseRedisUrl(options.url).options;
    const prefix = options.prefix ?? fromUrl?.prefix ?? "offload";
    if (!PREFIX.test(prefix)) throw new ConfigError(`redis prefix ${JSON.stringify(prefix)} must be 1-100 of A-Z a-z 0-9 _ . : -`);
    const maxEvents = options.maxEvents ?? fromUrl?.maxEvents ?? 100_000;
    // As the URL's ?maxEvents= is checked: a fractional cap makes the trim's MINID an invalid
    // stream id, and the script fails after its writes (a transition applied, reported failed).
    if (!Number.isSafeInteger(maxEvents) || maxEvents < 1) throw new ConfigError(`redis maxEvents must be a positive integer, got ${maxEvents}`);
    const replyTimeoutMs = options.replyTimeout === undefined ? fromUrl?.replyTimeoutMs ?? DEFAULT_REPLY_TIMEOUT_MS : positiveMs(options.replyTimeout, "replyTimeout");
    this.keyPrefix = `{${prefix}}:`;
    if (options.client) {
      this.#client = options.client;
      this.#ownsClient = false;
    } else if (options.url !== undefined) {
      this.#client = createClient(options.url, replyTimeoutMs);
      this.#client.on("error", () => {}); // connection errors reach callers as rejected commands; reconnects are automatic
      this.#ownsClient = true;
    } else {
      throw new Error("RedisBackend needs a url or a client");
    }
    const origin = randomToken();
    this.#scripts = new ScriptRunner(this.#client, this.keyPrefix, (now) => [this.keyPrefix, now, maxEvents, origin], replyTimeoutMs);
    watchServer(this.#client, {
      warn: (message) => process.emitWarning(message, { code: "OFFLOAD_REDIS_EVICTION" }),
      refuse: (error) => this.#scripts.refuse(error),
    });
    this.#feed = new ChangeFeed({
      subscriber: () => {
        const subscriber = subscriberClient(this.#client);
        subscriber.on("error", () => {});
        return subscriber;
      },
      channel: `${this.keyPrefix}changed`,
      origin,
      replyTimeoutMs,
      report: () => {}, // a lost subscription is re-made on reconnect; workers poll meanwhile
    });
  }

  /** Runs a script that changes jobs, and tells this process's watchers. */
  readonly #write: Writer = async (name, now, args) => {
    let reply: unknown;
    try {
      reply = await this.#scripts.run(name, now, args);
    } catch (error) {
      // It may have run, and its message, from our origin, is skipped here: look again anyway.
      if (resendable(error)) this.#feed.announce(!QUIET_OPERATIONS.has(name));
      throw error;
    }
    this.#feed.announce(!QUIET_OPERATIONS.has(name));
    return reply;
  };

  async enqueue(request: EnqueueRequest): Promise<EnqueueResult[]> {
    if (request.jobs.length === 0) return [];
    // A batch whose reply was lost is sent again as it was (lost-replies.ts).
    return enqueueResending(request.jobs, request.now, {
      send: (jobs) => this.#enqueue(jobs, request.now),
      resendable: (error) => !this.closed && resendable(error),
      notSent: (error) => !this.closed && notSent(error),
      duplicateId: (error) => error instanceof Error && error.message.startsWith(DUPLICATE_ID),
      stored: (ids) => this.#stored(ids),
    });
  }

  async #enqueue(jobs: readonly NewJob[], now: number): Promise<EnqueueResult[]> {
    const args: Arg[] = [jobs.length];
    for (const j of jobs) {
      args.push(j.id, j.task, j.queue, j.payloadJson, j.priority, j.runAt, j.maxAttempts,
        j.key === undefined ? "-" : `+${j.key}`, j.owner === undefined ? "-" : `+${j.owner}`);
    }
    const reply = await this.#write("enqueue", now, args);
    const inserted = (job: NewJob): EnqueueResult => ({ job: { id: job.id, state: job.runAt > now ? "scheduled" : "queued" }, created: true });
    if (reply === jobs.length) return jobs.map(inserted);
    const entries = asArray(reply);
    return jobs.map((job, i) => {
      const entry = entries[i];
      return entry === 1 ? inserted(job) : { job: toJobRecord(toFields(entry)), created: false };
    });
  }

  /** Which of these ids have a job (the `jobs` index holds every stored id). */
  async #stored(ids: readonly string[]): Promise<ReadonlySet<string>> {
    const found = new Set<string>();
    for (let i = 0; i < ids.length; i += CHUNK) {
      const chunk = ids.slice(i, i + CHUNK);
      const scores = asArray(await this.#scripts.read((c) => c.call("ZMSCORE", [`${this.keyPrefix}jobs`, ...chunk])));
      chunk.forEach((id, k) => {
        if (scores[k] !== null) found.add(id);
      });
    }
    return found;
  }

  async claim(request: ClaimRequest): Promise<ClaimedJob[]> {
    if (request.limit <= 0 || request.queues.length === 0) return [];
    const token = `${randomToken()}.`;
    const leaseUntil = request.now + request.leaseMs;
    // Each queue once: claim.lua gathers candidates per queue name it is given, so a name given
    // twice (`--queues a,a`) would offer every job of that queue twice, and the script would
    // activate the same job twice in one call (two leases, attempt + 2, counters off by one).
    const queues = [...new Set(request.queues)];
    const args = [request.limit, request.worker, leaseUntil, token, CLAIM_FIELDS.length, ...CLAIM_FIELDS, ...queues];
    // A claim whose reply is lost is not sent again (it would take other jobs): the jobs it took
    // are found by its token base instead (lost-replies.ts).
    return claimRecovering({
      claim: async () => {
        // Quiet for this process's claim loops (announced below) unless it left staged jobs
        // queued; its result waiters and event streams see `active`.
        const reply = asArray(await this.#scripts.runBuffer("claim", request.now, args));
        const claimed: ClaimedJob[] = [];
        for (let i = 0; i + 1 < reply.length; i += 2) {
          const leaseToken = `${token}${String(reply[i])}`;
          const job = claimedRecord(reply[i + 1], { token: leaseToken, leaseUntil, worker: request.worker, now: request.now });
          claimed.push({ job, token: leaseToken });
        }
        // An odd last element: due jobs this claim staged may be left queued (claim.lua), and
        // other workers here must hear of them as they do in other processes.
        const leftStaged = reply.length % 2 === 1;
        if (claimed.length > 0 || leftStaged) this.#feed.announce(leftStaged);
        return claimed.sort(claimOrder);
      },
      reclaim: () => this.#reclaim(request.now, leaseUntil, token),
      resendable: (error) => !this.closed && resendable(error),
      notSent: (error) => !this.closed && notSent(error),
      now: request.now,
      leaseUntil,
    });
  }

  /** The jobs a claim took (its reply was lost): active under its lease_until and token base. */
  async #reclaim(now: number, leaseUntil: number, tokenBase: string): Promise<ClaimedJob[]> {
    const reply = asArray(await this.#scripts.run("reclaim", now, [leaseUntil, tokenBase]));
    return reply.map((entry) => {
      const fields = toFields(entry);
      return { job: toJobRecord(fields), token: fields["token"] ?? "" };
    }).sort(claimOrder);
  }

  async heartbeat(request: HeartbeatRequest): Promise<HeartbeatResult> {
    if (request.leases.length === 0) return { lost: [], cancelRequested: [] };
    const args: Arg[] = [request.now + request.leaseMs, ...request.leases.flatMap((l) => [l.id, l.token])];
    const reply = asArray(await this.#scripts.run("heartbeat", request.now, args));
    const lost: string[] = [];
    const cancelRequested: string[] = [];
    request.leases.forEach((lease, i) => {
      if (reply[i] === 0) lost.push(lease.id);
      else if (reply[i] === 2) cancelRequested.push(lease.id);
    });
    return { lost, cancelRequested };
  }

  async complete(acks: readonly CompleteAck[], now: number): Promise<AckStatus[]> {
    if (acks.length === 0) return [];
    const reply = asArray(await this.#write("complete", now, acks.flatMap((a) => [a.id, a.token, a.resultJson])));
    return acks.map((_, i) => ack(reply[i]));
  }

  async fail(request: FailRequest): Promise<FailStatus> {
    const args = [request.id, request.token, JSON.stringify(request.error), request.retryAt ?? ""];
    const reply = await this.#write("fail", request.now, args);
    return reply === "retrying" ? "RETRYING" : reply === "failed" ? "FAILED" : reply === "cancelled" ? "CANCELLED" : "LEASE_LOST";
  }

  async acknowledgeCancel(lease: Lease, now: number): Promise<AckStatus> {
    return ack(await this.#write("acknowledge-cancel", now, [lease.id, lease.token]));
  }

  async release(leases: readonly Lease[], now: number): Promise<ReleaseStatus[]> {
    if (leases.length === 0) return [];
    const reply = asArray(await this.#write("release", now, leases.flatMap((l) => [l.id, l.token])));
    return leases.map((_, i) => (reply[i] === 2 ? "CANCELLED" : reply[i] === 1 ? "QUEUED" : "LEASE_LOST"));
  }

  async progress(request: Lease & { progress: number; message: string | undefined; now: number }): Promise<AckStatus> {
    const data = JSON.stringify({ progress: request.progress, message: request.message ?? null });
    const message = request.message === undefined ? "-" : `+${request.message}`;
    return ack(await this.#write("progress", request.now, [request.id, request.token, request.progress, message, data]));
  }

  async log(request: Lease & { line: string; now: number; maxLines?: number }): Promise<AckStatus> {
    const maxLines = request.maxLines ?? MAX_LOG_LINES_PER_RUN;
    const args = [request.id, request.token, JSON.stringify({ line: request.line }), maxLines, JSON.stringify({ line: logCapLine(maxLines) })];
    return ack(await this.#write("log", request.now, args));
  }

  async cancel(id: string, now: number): Promise<CancelStatus> {
    return (await this.#write("cancel", now, [id])) as CancelStatus;
  }

  async retry(id: string, now: number, kept = HISTORY_KEPT): Promise<RetryStatus> {
    return (await this.#write("retry", now, [id, kept.errors, kept.events])) as RetryStatus;
  }

  async replay(filter: ReplayFilter, now: number, kept = HISTORY_KEPT): Promise<number> {
    let total = 0;
    // Each call goes on after the (finished_at, id) of the last job the one before it looked at
    // (replay.lua): jobs other writers take out of the failed set meanwhile move no one's place.
    let cursor: [string, string] = ["", ""];
    for (;;) {
      const args = [filter.queue ?? "", filter.task ?? "", filter.since ?? "-inf", filter.until ?? "+inf", ...cursor, CHUNK, kept.errors, kept.events];
      const [requeued, more, score, id] = asArray(await this.#write("replay", now, args));
      total += Number(requeued ?? 0);
      if (more !== 1) return total;
      cursor = [String(score), String(id)];
    }
  }

  async stageDue(now: number): Promise<number> {
    let total = 0;
    for (;;) {
      const [staged, more] = asArray(await this.#scripts.run("stage-due", now, [CHUNK])).map(Number);
      if ((staged ?? 0) > 0) this.#feed.announce(); // a pass that found nothing due changed nothing
      total += staged ?? 0;
      if (more !== 1) return total;
    }
  }

  async rescueExpired(now: number): Promise<RescueResult> {
    const result: Record<"queued" | "failed" | "cancelled", string[]> = { queued: [], failed: [], cancelled: [] };
    for (;;) {
      // The ids it looked at first: those with no job (deleted by hand) are dropped, not
      // rescued, so a short list of rescues does not mean the sweep is over (rescue-expired.lua).
      const [looked, ...reply] = asArray(await this.#scripts.run("rescue-expired", now, [CHUNK])).map(String);
      if (reply.length > 0) this.#feed.announce(); // an idle sweep must not wake this process's claim loops
      for (let i = 0; i + 1 < reply.length; i += 2) {
        const state = reply[i + 1] as "queued" | "failed" | "cancelled";
        result[state].push(reply[i] ?? "");
      }
      if (Number(looked) < CHUNK) break;
    }
    return { requeued: result.queued, failed: result.failed, cancelled: result.cancelled };
  }

  async prune(retention: Retention, now: number): Promise<number> {
    let total = 0;
    for (;;) {
      const args = [now - retention.succeeded, now - retention.failed, now - retention.cancelled, CHUNK];
      const [deleted, more] = asArray(await this.#scripts.run("prune", now, args)).map(Number);
      total += deleted ?? 0;
      if (more !== 1) return total;
    }
  }

  async getJob(id: string): Promise<JobRecord | undefined> {
    const fields = toFields(await this.#scripts.run("get-job", 0, [id]));
    return fields["state"] === undefined ? undefined : toJobRecord(fields);
  }

  async peekJobs(ids: readonly string[]): Promise<JobPeek[]> {
    if (ids.length === 0) return [];
    const reply = asArray(await this.#scripts.run("peek-jobs", 0, ids));
    const peeks: JobPeek[] = [];
    for (let i = 0; i + 2 < reply.length; i += 3) peeks.push(jobPeek("redis job hash", reply[i], reply[i + 1], reply[i + 2]));
    return peeks;
  }

  async listJobs(filter: ListFilter): Promise<JobRecord[]> {
    const jobs: JobRecord[] = [];
    let before = filter.before ?? "";
    while (jobs.length < filter.limit) {
      const args = [before, filter.state ?? "", filter.queue ?? "", filter.task ?? "", filter.limit - jobs.length, 2_000];
      const [matches, last, exhausted] = asArray(await this.#scripts.run("list-jobs", 0, args));
      for (const entry of asArray(matches)) jobs.push(toJobRecord(toFields(entry)));
      if (exhausted === 1 || typeof last !== "string" || last === "") break;
      before = last;
    }
    return jobs;
  }

  async counts(): Promise<QueueCounts[]> {
    const reply = asArray(await this.#scripts.run("counts", 0, []));
    const out: QueueCounts[] = [];
    for (const entry of reply) {
      const [queue, rawCounts, oldest] = asArray(entry);
      const fields = toFields(rawCounts);
      const counts = Object.fromEntries(JOB_STATES.map((s) => [s, Number(fields[s] ?? 0)])) as Record<JobState, number>;
      if (Object.values(counts).every((n) => n === 0)) continue; // like a GROUP BY: only queues that hold jobs
      out.push({ queue: String(queue), counts, oldestQueuedAt: oldest === "" || oldest === undefined ? undefined : Number(oldest) });
    }
    return out.sort((a, b) => a.queue.localeCompare(b.queue));
  }

  async nextDueAt(queues: readonly string[]): Promise<number | undefined> {
    if (queues.length === 0) return undefined;
    const reply = await this.#scripts.run("next-due", 0, queues);
    return reply === "" || reply === null ? undefined : Number(reply);
  }

  async readEvents(request: { jobId?: string | undefined; afterId: number; limit: number }): Promise<JobEvent[]> {
    if (request.jobId !== undefined) {
      // The field names first, then only the page's events: a stream pages through a long
      // history, and the server stays free of sorting (two round trips, no script).
      const key = `${this.keyPrefix}job:${request.jobId}`;
      const names = eventFieldsAfter(await this.#scripts.read((c) => c.hkeys(key)), request.afterId, request.limit);
      if (names.length === 0) return [];
      const bodies = await this.#scripts.read((c) => c.hmget(key, ...names));
      return jobEvents(request.jobId, names, bodies);
    }
    // Entries are named after their last event, so the first entry after `afterId` may start
    // with events at or before it; feedEvents skips those.
    const key = `${this.keyPrefix}events`;
    const entries = await this.#scripts.read((c) => c.xrange(key, `(${request.afterId}-0`, "+", "COUNT", request.limit));
    return feedEvents(entries, request.afterId, request.limit);
  }

  async serverTime(): Promise<number> {
    const [seconds, micros] = await this.#scripts.read((c) => c.time());
    return Number(seconds) * 1_000 + Math.floor(Number(micros) / 1_000);
  }

  watch(listener: () => void, options?: WatchOptions): () => void {
    return this.#feed.subscribe(listener, options?.newWork === true);
  }

  unavailable(error: unknown): boolean {
    return resendable(error) || notSent(error) || refusedForNow(error);
  }

  #closed = false;

  get closed(): boolean {
    return this.#closed;
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#scripts.close();
    await this.#feed.close();
    if (this.#ownsClient) await closeClient(this.#client);
  }
}

function asArray(reply: unknown): unknown[] {
  if (!Array.isArray(reply)) throw new Error(`redis: expected an array reply, got ${typeof reply}`);
  return reply as unknown[];
}

function ack(reply: unknown): AckStatus {
  return reply === 1 ? "OK" : "LEASE_LOST";
}

function claimOrder(a: ClaimedJob, b: ClaimedJob): number {
  return b.job.priority - a.job.priority || a.job.runAt - b.job.runAt || (a.job.id < b.job.id ? -1 : 1);
}
