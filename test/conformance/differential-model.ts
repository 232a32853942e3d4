// A differential model of the backend port, without test cases of its own
// (differential.redis.postgres.test.ts runs it). One seeded sequence of port operations is applied,
// with the same job ids and the same `now`, to several backends; after every step their answers
// must be equal, and every few steps (and after each prune) so must their job records, counts and
// event feeds, and each backend must keep the port's invariants on its own. The conformance cases
// pin down what each operation means; this finds the sequences nobody thought to write down.
import { inspect, isDeepStrictEqual } from "node:util";
import type { Backend, JobEvent, Lease, ListFilter, NewJob, QueueCounts, Retention } from "../../src/backend/backend.ts";
import { FINISHED_STATES, JOB_STATES, isJobState, type JobRecord, type JobState } from "../../src/core/job.ts";
import { T0, attemptError, newJob } from "./fixtures.ts";

/** A backend under comparison, named for failure messages. */
export interface Replica {
  readonly name: string;
  readonly backend: Backend;
}

/** Short enough that prune finds finished jobs within one sequence; different per final state. */
const RETENTION: Retention = { succeeded: 20_000, failed: 60_000, cancelled: 15_000 };
const QUEUES = ["a", "b", "c"] as const;
const TASKS = ["t1", "t2"] as const;
const KEYS = ["k1", "k2", "k3"] as const;
const WORKERS = ["w1", "w2", "w3"] as const;
/** Reads that must return everything there is. */
const EVERYTHING = 100_000;

/** xorshift32: a seeded sequence in [0, 1), the same on every run, so a failing seed replays. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state / 4_294_967_296;
  };
}

/**
 * A job named the same way on every backend. `recent: k` is the k-th most recently claimed job on
 * that backend (tokens and claims are each backend's own); `id` is a fixed id, maybe never stored.
 */
type JobRef = { readonly recent: number } | { readonly id: string };

/** Which of a job's tokens: the newest, the one before it (a stale lease), or one never issued. */
type TokenRole = "current" | "previous" | "bogus";

interface LeaseRef {
  readonly job: JobRef;
  readonly token: TokenRole;
}

/** One step. Times are offsets from the sequence's clock, so a step reads the same on every backend. */
export type Op =
  | { readonly op: "tick"; readonly ms: number }
  | { readonly op: "enqueue"; readonly jobs: readonly NewJob[] }
  | { readonly op: "claim"; readonly queues: readonly string[]; readonly limit: number; readonly worker: string; readonly leaseMs: number }
  | { readonly op: "heartbeat"; readonly worker: string; readonly leases: readonly LeaseRef[]; readonly leaseMs: number }
  | { readonly op: "complete"; readonly acks: readonly (LeaseRef & { readonly resultJson: string })[] }
  | { readonly op: "fail"; readonly lease: LeaseRef; readonly retryIn: number | undefined; readonly message: string }
  | { readonly op: "acknowledgeCancel"; readonly lease: LeaseRef }
  | { readonly op: "release"; readonly leases: readonly LeaseRef[] }
  | { readonly op: "progress"; readonly lease: LeaseRef; readonly progress: number; readonly message: string | undefined }
  | { readonly op: "log"; readonly lease: LeaseRef; readonly line: string }
  | { readonly op: "cancel"; readonly job: JobRef }
  | { readonly op: "retry"; readonly job: JobRef }
  | { readonly op: "replay"; readonly queue?: string; readonly task?: string; readonly sinceAgo?: number; readonly untilAgo?: number }
  | { readonly op: "stageDue" }
  | { readonly op: "rescueExpired" }
  | { readonly op: "prune" }
  | { readonly op: "getJob"; readonly id: string }
  | { readonly op: "listJobs"; readonly filter: ListFilter }
  | { readonly op: "counts" }
  | { readonly op: "nextDueAt"; readonly queues: readonly string[] }
  /** `skip` counts events of that backend's own feed: event ids differ from backend to backend. */
  | { readonly op: "readEvents"; readonly jobId: string | undefined; readonly skip: number; readonly limit: number };

/**
 * A UUIDv7-shaped id made from the clock and a counter instead of random bits (uuidv7 draws some),
 * so a seed makes the same ids on every run and a failure message can be matched to a rerun. Ids
 * made later in a sequence sort later, as the port's `before` cursor and newest-first order expect.
 */
function sequenceId(seed: number, now: number, n: number): string {
  const ms = now.toString(16).padStart(12, "0");
  const counter = n.toString(16).padStart(3, "0");
  return `${ms.slice(0, 8)}-${ms.slice(8)}-7${counter}-8${(seed & 0xfff).toString(16).padStart(3, "0")}-${n.toString(16).padStart(12, "0")}`;
}

/** The steps of one seed. Weights favour the lease operations, where the adapters differ most. */
export function generateOps(seed: number, steps: number): Op[] {
  const random = seededRandom(seed);
  const chance = (p: number): boolean => random() < p;
  const int = (low: number, high: number): number => low + Math.floor(random() * (high - low + 1));
  const pick = <T>(items: readonly T[]): T => {
    const item = items[Math.floor(random() * items.length)];
    if (item === undefined) throw new Error("pick from an empty list");
    return item;
  };
  const ids: string[] = [];
  let now = T0;
  const unknownId = sequenceId(seed, T0 - 1, 0);
  const someId = (): string => (ids.length === 0 ? unknownId : chance(0.6) ? pick(ids.slice(-6)) : pick(ids));
  const recent = (): JobRef => ({ recent: chance(0.7) ? int(0, 3) : int(0, 12) });
  const leaseRef = (): LeaseRef => ({
    job: chance(0.9) ? recent() : { id: someId() },
    token: chance(0.75) ? "current" : chance(0.6) ? "previous" : "bogus",
  });
  /** Some batches name one job twice (the same lease, or a stale token beside the current one). */
  const leaseBatch = (size: number, repeats: boolean): LeaseRef[] => {
    const leases = Array.from({ length: size }, leaseRef);
    const first = leases[0];
    if (repeats && first && chance(0.25)) leases.push({ job: first.job, token: chance(0.5) ? first.token : leaseRef().token });
    return leases;
  };
  const job = (): NewJob => {
    const id = sequenceId(seed, now, ids.length + 1);
    ids.push(id);
    return newJob({
      id,
      task: pick(TASKS),
      queue: pick(QUEUES),
      payloadJson: JSON.stringify({ n: ids.length }),
      priority: pick([0, 0, 0, 1, 5, -1]),
      runAt: chance(0.25) ? now + int(1, 15_000) : chance(0.2) ? now - int(0, 5_000) : now,
      maxAttempts: int(1, 3),
      key: chance(0.4) ? pick(KEYS) : undefined,
      owner: chance(0.2) ? "o1" : undefined,
    });
  };
  const enqueue = (): Op => {
    const jobs = Array.from({ length: chance(0.6) ? 1 : int(2, 5) }, job);
    const [head] = jobs;
    // Now and then the batch also names an existing job's id: the whole batch must be refused.
    if (head && chance(0.04) && ids.length > jobs.length) jobs.push({ ...head, id: pick(ids.slice(0, -jobs.length)), key: undefined });
    return { op: "enqueue", jobs };
  };
  const weighted: readonly (readonly [number, () => Op | readonly Op[]])[] = [
    [12, () => ({ op: "tick", ms: chance(0.15) ? int(10_000, 70_000) : int(0, 3_000) })],
    [15, enqueue],
    [13, () => ({ op: "claim", queues: chance(0.5) ? [pick(QUEUES)] : [...new Set([pick(QUEUES), pick(QUEUES), pick(QUEUES)])], limit: int(1, 4), worker: pick(WORKERS), leaseMs: int(1_000, 8_000) })],
    [5, () => ({ op: "heartbeat", worker: pick(WORKERS), leases: leaseBatch(int(1, 3), false), leaseMs: int(1_000, 8_000) })],
    // Each ack its own result, so a batch naming one lease twice shows which result was kept.
    [8, () => ({ op: "complete", acks: leaseBatch(int(1, 3), true).map((l) => ({ ...l, resultJson: JSON.stringify({ r: int(0, 9) }) })) })],
    [8, () => ({ op: "fail", lease: leaseRef(), retryIn: chance(0.7) ? int(0, 6_000) : undefined, message: pick(["boom", "bang"]) })],
    [3, () => ({ op: "acknowledgeCancel", lease: leaseRef() })],
    [3, () => ({ op: "release", leases: leaseBatch(int(1, 2), true) })],
    [3, () => ({ op: "progress", lease: leaseRef(), progress: int(0, 10) / 10, message: chance(0.5) ? "m" : undefined })],
    [2, () => ({ op: "log", lease: leaseRef(), line: pick(["l1", "l2"]) })],
    [5, () => ({ op: "cancel", job: chance(0.5) ? recent() : { id: someId() } })],
    [4, () => ({ op: "retry", job: chance(0.4) ? recent() : { id: someId() } })],
    [2, () => ({
      op: "replay",
      ...(chance(0.4) ? { queue: pick(QUEUES) } : {}),
      ...(chance(0.3) ? { task: pick(TASKS) } : {}),
      ...(chance(0.3) ? { sinceAgo: int(0, 20_000) } : {}),
      ...(chance(0.3) ? { untilAgo: int(0, 20_000) } : {}),
    })],
    [3, () => ({ op: "stageDue" })],
    [3, () => ({ op: "rescueExpired" })],
    [2, () => ({ op: "prune" })],
    // A quiet spell past every retention, then prune: the newest event of the whole backend may
    // then be a pruned job's (SQLite once kept it in that job's own feed).
    [2, () => [{ op: "tick", ms: int(60_001, 70_000) }, { op: "prune" }]],
    [2, () => ({ op: "getJob", id: someId() })],
    [3, () => ({
      op: "listJobs",
      filter: {
        state: chance(0.4) ? pick(JOB_STATES) : undefined,
        queue: chance(0.3) ? pick(QUEUES) : undefined,
        task: chance(0.2) ? pick(TASKS) : undefined,
        before: chance(0.3) ? someId() : undefined,
        limit: int(1, 6),
      },
    })],
    [1, () => ({ op: "counts" })],
    [1, () => ({ op: "nextDueAt", queues: chance(0.5) ? [pick(QUEUES)] : QUEUES })],
    [3, () => ({ op: "readEvents", jobId: chance(0.5) ? someId() : undefined, skip: int(0, 6), limit: int(1, 5) })],
  ];
  const total = weighted.reduce((sum, [weight]) => sum + weight, 0);
  const ops: Op[] = [];
  while (ops.length < steps) {
    let roll = random() * total;
    const entry = weighted.find(([weight]) => (roll -= weight) < 0) ?? weighted[0];
    if (!entry) throw new Error("no operations to choose from");
    for (const op of [entry[1]()].flat()) {
      if (op.op === "tick") now += op.ms;
      ops.push(op);
    }
  }
  return ops.slice(0, steps);
}

/** What one backend has been told and has answered so far: its tokens, claims, jobs and events. */
class Tracked {
  /** Every token each job was claimed with, oldest first. */
  readonly tokens = new Map<string, string[]>();
  /** Claimed job ids, in the order claims returned them. */
  readonly claimed: string[] = [];
  /** Ids this backend said it created: they must stay until a prune removes them. */
  readonly created = new Set<string>();
  readonly pruned = new Set<string>();
  /** Event ids seen in the global feed: a new one must be above all of them (ids never go back). */
  readonly seenEventIds = new Set<number>();
  maxEventId = 0;

  readonly replica: Replica;

  constructor(replica: Replica) {
    this.replica = replica;
  }

  jobId(ref: JobRef): string {
    if ("id" in ref) return ref.id;
    // A job never claimed here: an id no job has, so the operation meets "not found".
    return this.claimed.at(-1 - ref.recent) ?? sequenceId(0, T0 - 1, 0);
  }

  lease(ref: LeaseRef): Lease {
    const id = this.jobId(ref.job);
    const tokens = this.tokens.get(id) ?? [];
    const never = "never-issued-token";
    if (ref.token === "bogus") return { id, token: never };
    if (ref.token === "current") return { id, token: tokens.at(-1) ?? never };
    return { id, token: tokens.at(-2) ?? tokens.at(-1) ?? never };
  }
}

/** A job record's events without their ids, which each backend numbers on its own. */
function comparable(events: readonly JobEvent[]): unknown[] {
  return events.map((e) => ({ jobId: e.jobId, type: e.type, data: e.data, at: e.at }));
}

/** Queues in name order; a queue whose jobs are all gone may linger in one backend with zeros. */
function comparableCounts(counts: readonly QueueCounts[]): QueueCounts[] {
  return counts
    .filter((q) => Object.values(q.counts).some((n) => n > 0))
    .sort((x, y) => (x.queue < y.queue ? -1 : 1))
    .map((q) => ({ queue: q.queue, counts: q.counts, oldestQueuedAt: q.oldestQueuedAt }));
}

/**
 * Heartbeat with each job once. MASKED: the port answers heartbeats by id, "so a request names
 * each job once (with the token it holds); two tokens of one job have no defined answer"
 * (HeartbeatResult in src/backend/backend.ts), and the worker sends one token per job.
 */
function oneLeasePerJob(leases: readonly Lease[]): Lease[] {
  return leases.filter((lease, i) => leases.findIndex((other) => other.id === lease.id) === i);
}

/** Runs one step on one backend and returns its answer in a form comparable across backends. */
async function apply(t: Tracked, op: Op, now: number): Promise<unknown> {
  const b = t.replica.backend;
  switch (op.op) {
    case "tick":
      return null;
    case "enqueue": {
      const results = await b.enqueue({ jobs: op.jobs, now });
      for (const r of results) if (r.created) t.created.add(r.job.id);
      return results.map((r) => ({ id: r.job.id, state: r.job.state, created: r.created }));
    }
    case "claim": {
      // MASKED: stage due jobs of every queue first. The port lets claim stage due jobs of other
      // queues in the same step ("An adapter may stage those of other queues in the same step
      // (SQLite and PostgreSQL do)", Backend.claim in src/backend/backend.ts), so without this
      // their states would differ by design until the next stageDue.
      await b.stageDue(now);
      const claimed = await b.claim({ queues: op.queues, limit: op.limit, worker: op.worker, leaseMs: op.leaseMs, now });
      for (const c of claimed) {
        t.tokens.set(c.job.id, [...(t.tokens.get(c.job.id) ?? []), c.token]);
        t.claimed.push(c.job.id);
      }
      return claimed.map((c) => c.job);
    }
    case "heartbeat": {
      const r = await b.heartbeat({ worker: op.worker, leases: oneLeasePerJob(op.leases.map((l) => t.lease(l))), leaseMs: op.leaseMs, now });
      return { lost: [...r.lost].sort(), cancelRequested: [...r.cancelRequested].sort() };
    }
    case "complete":
      return b.complete(op.acks.map((a) => ({ ...t.lease(a), resultJson: a.resultJson })), now);
    case "fail":
      return b.fail({ ...t.lease(op.lease), error: attemptError(0, now, op.message), retryAt: op.retryIn === undefined ? undefined : now + op.retryIn, now });
    case "acknowledgeCancel":
      return b.acknowledgeCancel(t.lease(op.lease), now);
    case "release":
      return b.release(op.leases.map((l) => t.lease(l)), now);
    case "progress":
      return b.progress({ ...t.lease(op.lease), progress: op.progress, message: op.message, now });
    case "log":
      return b.log({ ...t.lease(op.lease), line: op.line, now });
    case "cancel":
      return b.cancel(t.jobId(op.job), now);
    case "retry":
      return b.retry(t.jobId(op.job), now);
    case "replay": {
      const ago = (ms: number | undefined): number | undefined => (ms === undefined ? undefined : now - ms);
      return b.replay({ queue: op.queue, task: op.task, since: ago(op.sinceAgo), until: ago(op.untilAgo) }, now);
    }
    case "stageDue":
      return b.stageDue(now);
    case "rescueExpired": {
      const r = await b.rescueExpired(now);
      return { requeued: [...r.requeued].sort(), failed: [...r.failed].sort(), cancelled: [...r.cancelled].sort() };
    }
    case "prune":
      return b.prune(RETENTION, now);
    case "getJob":
      return b.getJob(op.id);
    case "listJobs":
      return b.listJobs(op.filter);
    case "counts":
      return comparableCounts(await b.counts());
    case "nextDueAt":
      return b.nextDueAt(op.queues);
    case "readEvents": {
      const all = await b.readEvents({ jobId: op.jobId, afterId: 0, limit: EVERYTHING });
      const afterId = op.skip <= 0 ? 0 : (all[Math.min(op.skip, all.length) - 1]?.id ?? 0);
      const page = await b.readEvents({ jobId: op.jobId, afterId, limit: op.limit });
      // A page of the global feed is not compared: the events of different jobs written by one
      // call may interleave as the adapter likes (the port only says ids increase). The snapshot compares the
      // global feed job by job instead.
      return op.jobId === undefined ? page.length : comparable(page);
    }
  }
}

/**
 * A refused call is compared as "refused": the error type (a batch naming a stored id breaks a
 * SQLite, PostgreSQL or Lua constraint of its own) is the adapter's; that it was refused, and
 * that nothing was stored (the next snapshot), is the port's.
 */
async function answer(t: Tracked, op: Op, now: number): Promise<unknown> {
  try {
    return await apply(t, op, now);
  } catch {
    return { refused: true };
  }
}

/** Everything a backend stores about the sequence's jobs, read through the port. */
interface Snapshot {
  readonly jobs: Readonly<Record<string, JobRecord | undefined>>;
  readonly list: readonly JobRecord[];
  readonly counts: readonly QueueCounts[];
  readonly feed: readonly JobEvent[];
  readonly jobFeeds: Readonly<Record<string, readonly JobEvent[]>>;
}

async function snapshot(b: Backend, ids: readonly string[]): Promise<Snapshot> {
  const jobs: Record<string, JobRecord | undefined> = {};
  const jobFeeds: Record<string, JobEvent[]> = {};
  for (const id of ids) {
    jobs[id] = await b.getJob(id);
    jobFeeds[id] = await b.readEvents({ jobId: id, afterId: 0, limit: EVERYTHING });
  }
  return {
    jobs,
    jobFeeds,
    list: await b.listJobs({ limit: EVERYTHING }),
    counts: comparableCounts(await b.counts()),
    feed: await b.readEvents({ afterId: 0, limit: EVERYTHING }),
  };
}

/**
 * The global feed's events of jobs stored now, grouped by job in id order. Two things the port
 * leaves open are set aside: how one call's events of different jobs interleave, and on Redis the
 * events of pruned jobs, which stay in the global feed until its cap ("The global feed is a window,
 * not an index of live jobs", docs/redis.md). Events from before a job's createdAt belong to an
 * earlier, pruned job with the same id.
 */
function liveFeed(s: Snapshot): unknown[] {
  const live = s.feed.filter((e) => {
    const job = s.jobs[e.jobId];
    return job !== undefined && e.at >= job.createdAt;
  });
  return comparable([...live].sort((x, y) => (x.jobId < y.jobId ? -1 : x.jobId > y.jobId ? 1 : 0)));
}

/** Which state each state may follow, from the JobState comments in src/core/job.ts. */
const NEXT_STATES: Readonly<Record<JobState | "start", readonly JobState[]>> = {
  start: ["scheduled", "queued"],
  scheduled: ["queued", "cancelled"],
  queued: ["active", "cancelled"],
  active: ["succeeded", "retrying", "failed", "cancelled", "queued"],
  retrying: ["queued", "cancelled"],
  succeeded: [],
  failed: ["queued"],
  cancelled: ["queued"],
};

/** A step where the backends disagree, or one breaks an invariant. */
export class Divergence extends Error {}

const show = (value: unknown): string => inspect(value, { depth: 8, breakLength: 160 });

/**
 * Where the values differ, one line per backend: for records, only the keys that differ (nested
 * records, such as job records by id, down to their differing fields), else the whole values.
 */
function describeDifference(names: readonly string[], values: readonly unknown[], indent = "  "): string {
  const records = values.every((v) => typeof v === "object" && v !== null && !Array.isArray(v));
  if (!records) return names.map((name, k) => `${indent}${name}: ${show(values[k])}`).join("\n");
  const fields = values.map((v) => v as Record<string, unknown>);
  const keys = [...new Set(fields.flatMap((f) => Object.keys(f)))];
  return keys
    .map((key) => ({ key, vs: fields.map((f) => f[key]) }))
    .filter(({ vs }) => vs.some((v) => !isDeepStrictEqual(v, vs[0])))
    .map(({ key, vs }) => `${indent}${key}:\n${describeDifference(names, vs, `${indent}  `)}`)
    .join("\n");
}

/**
 * How a step is named in failure messages: number, time and the operation as generated. Stored
 * state is not compared after every step, so the step that caused a difference in it may be one
 * of those since the last comparison: the label names where that was.
 */
function stepLabel(index: number, op: Op, now: number, lastCompared: number): string {
  const since = lastCompared < 0 ? "not compared yet" : `last compared equal after step ${lastCompared}`;
  return `step ${index} at T0+${now - T0} ms (stored state ${since}): ${show(op)}`;
}

/** Throws unless every backend gave the same value. */
function agree(what: string, replicas: readonly Replica[], values: readonly unknown[], where: string): void {
  if (values.every((v) => isDeepStrictEqual(v, values[0]))) return;
  throw new Divergence(`${where}\n${what} differ:\n${describeDifference(replicas.map((r) => r.name), values)}`);
}

/** The port's promises that one backend must keep whatever the others do. */
function checkInvariants(t: Tracked, s: Snapshot, pruning: boolean, where: string): void {
  const broken = (message: string): never => {
    throw new Divergence(`${where}\n${t.replica.name} breaks an invariant: ${message}`);
  };
  // Event ids increase along the feed, and an event not seen before is newer than all seen so far.
  s.feed.forEach((e, i) => {
    const before = s.feed[i - 1];
    if (before && e.id <= before.id) broken(`global feed ids do not increase at ${i}: ${before.id}, ${e.id}`);
    if (!t.seenEventIds.has(e.id) && e.id <= t.maxEventId) broken(`new event id ${e.id} is not above ${t.maxEventId}, seen earlier`);
  });
  for (const e of s.feed) {
    t.seenEventIds.add(e.id);
    t.maxEventId = Math.max(t.maxEventId, e.id);
  }
  // counts() agrees with the jobs themselves.
  const tally: Record<string, Record<JobState, number>> = {};
  for (const job of s.list) {
    const queue = (tally[job.queue] ??= { scheduled: 0, queued: 0, active: 0, retrying: 0, succeeded: 0, failed: 0, cancelled: 0 });
    queue[job.state]++;
  }
  const counted = Object.fromEntries(s.counts.map((q) => [q.queue, q.counts]));
  if (!isDeepStrictEqual(counted, tally)) broken(`counts ${show(counted)}, but the jobs are ${show(tally)}`);
  for (const q of s.counts) {
    const waiting = s.list.filter((j) => j.queue === q.queue && j.state === "queued").map((j) => j.runAt);
    const oldest = waiting.length > 0 ? Math.min(...waiting) : undefined;
    if (q.oldestQueuedAt !== oldest) broken(`queue ${q.queue}: oldestQueuedAt ${q.oldestQueuedAt}, oldest queued runAt ${oldest}`);
  }
  s.list.forEach((job, i) => {
    const before = s.list[i - 1];
    if (before && job.id >= before.id) broken(`listJobs is not newest first at ${i}`);
  });
  for (const [id, job] of Object.entries(s.jobs)) {
    const events = s.jobFeeds[id] ?? [];
    if (job === undefined) {
      // A job goes only by prune, and takes its own events with it.
      if (t.created.has(id) && !t.pruned.has(id)) {
        if (!pruning) broken(`job ${id} vanished`);
        t.pruned.add(id);
      }
      if (t.pruned.has(id) && events.length > 0) broken(`pruned job ${id} still has events: ${show(comparable(events))}`);
      continue;
    }
    t.pruned.delete(id); // stored again under the same id after a prune
    if (!isDeepStrictEqual(s.list.find((j) => j.id === id), job)) broken(`listJobs and getJob disagree on ${id}`);
    if (job.attempt > job.maxAttempts) broken(`${id}: attempt ${job.attempt} of ${job.maxAttempts}`);
    if (job.state === "active" && (job.leaseUntil === undefined || job.worker === undefined)) broken(`${id} is active without a lease`);
    if (FINISHED_STATES.includes(job.state) !== (job.finishedAt !== undefined)) broken(`${id} is ${job.state} with finishedAt ${job.finishedAt}`);
    events.forEach((e, i) => {
      const before = events[i - 1];
      if (before && e.id <= before.id) broken(`${id}: event ids do not increase at ${i}`);
    });
    // The state events walk a legal path and end in the job's state.
    const path = events.filter((e) => e.type === "state").map((e) => e.data["state"]);
    let last: JobState | "start" = "start";
    for (const next of path) {
      if (!isJobState(next) || !NEXT_STATES[last].includes(next)) broken(`${id}: ${last} -> ${String(next)} in ${path.join(", ")}`);
      else last = next;
    }
    if (last !== job.state) broken(`${id} is ${job.state}, its last state event says ${last}`);
    // A job's own feed is its part of the global feed, ids and all.
    const inFeed = s.feed.filter((e) => e.jobId === id && e.at >= job.createdAt);
    if (!isDeepStrictEqual(inFeed, events)) broken(`${id}: global feed part ${show(comparable(inFeed))}, own feed ${show(comparable(events))}`);
  }
}

/** Compares the stored state of every backend after a step, and checks each on its own. */
async function compareStores(tracked: readonly Tracked[], ids: readonly string[], pruning: boolean, where: string): Promise<void> {
  const replicas = tracked.map((t) => t.replica);
  const snaps: Snapshot[] = [];
  for (const t of tracked) snaps.push(await snapshot(t.replica.backend, ids));
  agree("job records", replicas, snaps.map((s) => s.jobs), where);
  agree("listJobs ids", replicas, snaps.map((s) => s.list.map((j) => j.id)), where);
  agree("counts", replicas, snaps.map((s) => s.counts), where);
  agree("per-job event feeds", replicas, snaps.map((s) => Object.fromEntries(Object.entries(s.jobFeeds).map(([id, e]) => [id, comparable(e)]))), where);
  agree("global event feeds (live jobs, by job)", replicas, snaps.map(liveFeed), where);
  tracked.forEach((t, k) => {
    const s = snaps[k];
    if (s) checkInvariants(t, s, pruning, where);
  });
}

export interface RunOptions {
  /** Compare stored state after every this many steps (and after each prune and the last step). */
  readonly compareEvery: number;
}

/** Applies the steps to every replica in turn; throws a Divergence at the first disagreement. */
export async function runDifferential(replicas: readonly Replica[], ops: readonly Op[], options: RunOptions): Promise<void> {
  const tracked = replicas.map((r) => new Tracked(r));
  const ids: string[] = [];
  let now = T0;
  let lastCompared = -1;
  for (const [index, op] of ops.entries()) {
    if (op.op === "tick") {
      now += op.ms;
      continue;
    }
    if (op.op === "enqueue") for (const job of op.jobs) if (!ids.includes(job.id)) ids.push(job.id);
    const where = stepLabel(index, op, now, lastCompared);
    const answers: unknown[] = [];
    for (const t of tracked) answers.push(await answer(t, op, now));
    agree("answers", replicas, answers, where);
    if (index % options.compareEvery === 0 || op.op === "prune" || index === ops.length - 1) {
      await compareStores(tracked, ids, op.op === "prune", where);
      lastCompared = index;
    }
  }
}
