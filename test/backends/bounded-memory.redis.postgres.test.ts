// Bounded memory, on Redis and on PostgreSQL: a realistic mix of jobs (successes, flaky jobs that
// succeed on a retry, permanent failures, jobs that use up their attempts, cancels before and while
// running, lost leases, graceful hand-backs, keyed and delayed jobs, progress and log lines, several
// queues and priority levels, then a replay and retries by hand) is driven through the backend port
// with a fake `now`. Once the clock is past retention and prune has run, what is left must be a
// small fixed set: on Redis the keys `queues`, `event-seq`, `events` (capped) and one `counts:<q>`
// per queue, all counters zero; on PostgreSQL empty `jobs` and `events` tables and zeroed finished counts. Running the whole
// mix again must not make what is left bigger. A second case checks the global event stream
// against its cap while every job is still live.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { Redis } from "ioredis";
import pg from "pg";
import type { Backend, CompleteAck, Lease, NewJob, Retention } from "../../src/backend/backend.ts";
import { RedisBackend } from "../../src/backend/redis/redis-backend.ts";
import { randomToken, uuidv7 } from "../../src/core/ids.ts";
import { UNFINISHED_STATES, type ClaimedJob } from "../../src/core/job.ts";
import { LEASE, T0, attemptError } from "../conformance/fixtures.ts";
import { POSTGRES_URL, openIsolated, uniqueSchema } from "./postgres-helpers.ts";
import { unlinkAndQuit } from "./redis-helpers.ts";

const REDIS_URL = process.env["OFFLOAD_TEST_REDIS_URL"] ?? "redis://127.0.0.1:6379";
const run = `bm${randomToken().slice(0, 8)}`;
const admin = new Redis(REDIS_URL);

const QUEUES = ["emails", "reports", "webhooks"] as const;
const PRIORITIES = [0, 5, -3, 10, 1] as const;
const DAY = 86_400_000;
/** The defaults of `new Offload()`: 7 days for succeeded and cancelled jobs, 30 for failed ones. */
const RETENTION: Retention = { succeeded: 7 * DAY, failed: 30 * DAY, cancelled: 7 * DAY };
const JOBS_PER_ROUND = 1_400;
const ROUNDS = 3;
/** The stream is trimmed (XTRIM MINID, exact) when event ids cross a multiple of 256 (lib.lua flush). */
const TRIM_STEP = 256;

type Plan =
  | "ok" // succeeds at once
  | "chatty" // reports progress and log lines, then succeeds
  | "flaky" // fails its first attempt (retrying), succeeds on the second
  | "permanent" // fails without retry: failed at once
  | "exhaust" // fails every attempt until none is left (2 attempts): failed
  | "cancelWaiting" // cancelled before it ever runs (queued or still scheduled)
  | "cancelActive" // cancelled while it runs: the worker hears it on heartbeat and acknowledges
  | "cancelThenFail" // cancelled while it runs, and its handler fails meanwhile: cancelled
  | "lost" // its worker vanishes on the first attempt: the lease expires, rescue queues it again
  | "released"; // handed back once (graceful shutdown), then succeeds

/** One plan per index modulo 20: half plain successes, the rest one of each unusual path. */
const PLANS: readonly Plan[] = [
  "ok", "chatty", "chatty", "ok", "ok", "ok", "ok", "ok",
  "flaky", "flaky", "permanent", "exhaust", "cancelWaiting", "cancelActive",
  "cancelThenFail", "lost", "released", "ok", "ok", "ok",
];

interface MixResult {
  /** Jobs the round created (keyed enqueues that returned a holder created none). */
  readonly created: number;
  /** The fake clock after the round's jobs are all finished. */
  readonly now: number;
  /** Keyed enqueues answered with the unfinished job holding the key. */
  readonly holders: number;
  /** Failed jobs requeued by the replay, and cancelled ones by retry. */
  readonly replayed: number;
  readonly retried: number;
}

/** Called between steps of the mix, with jobs live: a place to check the store mid-flight. */
type Observe = (phase: string) => Promise<void>;

/**
 * Drives one round of the mix through the port, from `start`, until every job it created is
 * finished (nothing scheduled, queued, active or retrying). `round` makes the priority level used
 * by a single job unique to this round, so a level that outlived its jobs would show up as growth.
 */
async function runMix(b: Backend, round: number, start: number, observe: Observe): Promise<MixResult> {
  let now = start;
  const plans = new Map<string, Plan>();
  const secondLife = new Set<string>();
  const released = new Set<string>();
  const failedIds: string[] = [];
  const cancelledIds: string[] = [];
  let holders = 0;
  let retried = 0;

  // 1. Enqueue, in batches of 200: every 7th job delayed, every 4th keyed (keys shared across
  //    batches and rounds, and repeated inside a batch, so some enqueues return their holder).
  for (let batch = 0; batch < JOBS_PER_ROUND / 200; batch++) {
    const jobs: NewJob[] = [];
    const planOf = new Map<string, Plan>();
    for (let j = 0; j < 200; j++) {
      const i = batch * 200 + j;
      const plan = PLANS[i % PLANS.length] ?? "ok";
      const id = uuidv7(now);
      planOf.set(id, plan);
      jobs.push({
        id,
        task: `task.${i % 4}`,
        queue: QUEUES[i % QUEUES.length] ?? "emails",
        payloadJson: JSON.stringify({ to: `user${i}@example.com`, round, n: i }),
        priority: PRIORITIES[i % PRIORITIES.length] ?? 0,
        runAt: i % 7 === 0 ? now + 30_000 + (i % 5) * 1_000 : now,
        maxAttempts: plan === "exhaust" ? 2 : 3,
        key: i % 4 === 0 ? `order:${i % 120}` : undefined,
        owner: i % 3 === 0 ? `owner-${i % 11}` : undefined,
      });
    }
    // One job per round at a priority level no other job uses, cancelled before it is claimed.
    if (batch === 0) {
      const id = uuidv7(now);
      planOf.set(id, "cancelWaiting");
      jobs.push({ id, task: "task.once", queue: "reports", payloadJson: "{}", priority: 1_000 + round, runAt: now, maxAttempts: 1, key: undefined, owner: undefined });
    }
    const results = await b.enqueue({ jobs, now });
    for (const [index, result] of results.entries()) {
      const job = jobs[index];
      if (!job) continue;
      if (!result.created) {
        holders++;
        continue;
      }
      assert.equal(result.job.id, job.id);
      plans.set(job.id, planOf.get(job.id) ?? "ok");
    }
    for (const job of jobs) {
      if (plans.get(job.id) !== "cancelWaiting") continue;
      assert.equal(await b.cancel(job.id, now), "CANCELLED");
      cancelledIds.push(job.id);
    }
    now += 10;
  }
  await observe("enqueued");

  // 2. Work as a worker would, until nothing is left unfinished.
  const onClaimed = async (claimed: readonly ClaimedJob[]): Promise<void> => {
    const acks: CompleteAck[] = [];
    const cancelling: Lease[] = [];
    for (const c of claimed) {
      const id = c.job.id;
      const lease: Lease = { id, token: c.token };
      const plan: Plan = secondLife.has(id) ? "ok" : (plans.get(id) ?? "ok");
      const fail = async (retryAt: number | undefined): Promise<string> =>
        b.fail({ ...lease, error: attemptError(c.job.attempt, now), retryAt, now });
      switch (plan) {
        case "ok":
          acks.push({ ...lease, resultJson: JSON.stringify({ sent: true, id }) });
          break;
        case "chatty":
          for (let step = 1; step <= 3; step++) {
            assert.equal(await b.progress({ ...lease, progress: step / 4, message: step === 2 ? undefined : `step ${step}`, now }), "OK");
            assert.equal(await b.log({ ...lease, line: `page ${step} of 3`, now }), "OK");
          }
          acks.push({ ...lease, resultJson: JSON.stringify({ url: `/files/${id}.pdf` }) });
          break;
        case "flaky":
          if (c.job.attempt === 1) assert.equal(await fail(now + 500), "RETRYING");
          else acks.push({ ...lease, resultJson: "true" });
          break;
        case "permanent":
          assert.equal(await fail(undefined), "FAILED");
          failedIds.push(id);
          break;
        case "exhaust": {
          const status = await fail(now + 200);
          assert.equal(status, c.job.attempt >= 2 ? "FAILED" : "RETRYING");
          if (status === "FAILED") failedIds.push(id);
          break;
        }
        case "cancelWaiting":
          assert.fail(`job ${id} was cancelled before it ran, yet it was claimed`);
          break;
        case "cancelActive":
          assert.equal(await b.cancel(id, now), "CANCEL_REQUESTED");
          cancelling.push(lease);
          break;
        case "cancelThenFail":
          assert.equal(await b.cancel(id, now), "CANCEL_REQUESTED");
          assert.equal(await fail(now + 100), "CANCELLED");
          cancelledIds.push(id);
          break;
        case "lost":
          // The first attempt's worker is gone: nothing is sent; rescueExpired takes it back.
          if (c.job.attempt > 1) acks.push({ ...lease, resultJson: "1" });
          break;
        case "released":
          if (released.has(id)) {
            acks.push({ ...lease, resultJson: "2" });
          } else {
            released.add(id);
            assert.deepEqual(await b.release([lease], now), ["QUEUED"]);
          }
          break;
      }
    }
    if (cancelling.length > 0) {
      const beat = await b.heartbeat({ worker: "w1", leases: cancelling, leaseMs: LEASE, now });
      assert.deepEqual([...beat.cancelRequested].sort(), cancelling.map((l) => l.id).sort());
      for (const lease of cancelling) {
        assert.equal(await b.acknowledgeCancel(lease, now), "OK");
        cancelledIds.push(lease.id);
      }
    }
    if (acks.length > 0) assert.deepEqual(await b.complete(acks, now), acks.map(() => "OK"));
  };

  const work = async (): Promise<void> => {
    for (let step = 0; ; step++) {
      assert.ok(step < 5_000, "the mix did not finish");
      await b.stageDue(now);
      await b.rescueExpired(now);
      const claimed = await b.claim({ queues: QUEUES, limit: 120, worker: "w1", leaseMs: LEASE, now });
      if (claimed.length > 0) {
        await onClaimed(claimed);
        if (step % 5 === 0) await observe("working");
        now += 100;
        continue;
      }
      const unfinished = (await b.counts()).some((c) => UNFINISHED_STATES.some((s) => c.counts[s] > 0));
      if (!unfinished) return;
      // Only jobs due later or leases of lost workers are left: move the clock to the next of them.
      const due = await b.nextDueAt(QUEUES);
      now = due !== undefined && due > now ? due : now + LEASE + 1;
    }
  };
  await work();

  // 3. An operator replays the failed webhooks and retries every other cancelled job by hand.
  for (const id of failedIds) secondLife.add(id);
  const replayed = await b.replay({ queue: "webhooks" }, now);
  assert.ok(replayed > 0, "some failed webhooks were replayed");
  for (const [index, id] of cancelledIds.entries()) {
    if (index % 2 !== 0) continue;
    const status = await b.retry(id, now);
    assert.ok(status === "QUEUED" || status === "KEY_IN_USE", `retry ${id}: ${status}`);
    if (status === "QUEUED") retried++;
    secondLife.add(id);
  }
  await observe("requeued");
  await work();
  await observe("finished");
  return { created: plans.size, now, holders, replayed, retried };
}

/** Advances past retention and prunes; then an idle claim on every queue, as an idle worker makes. */
async function pruneAll(b: Backend, now: number): Promise<number> {
  const later = now + RETENTION.failed + DAY;
  const pruned = await b.prune(RETENTION, later);
  assert.deepEqual(await b.claim({ queues: QUEUES, limit: 10, worker: "w1", leaseMs: LEASE, now: later }), []);
  assert.deepEqual(await b.counts(), [], "offload queues lists no queue once everything is pruned");
  assert.deepEqual(await b.listJobs({ limit: 10 }), [], "no job is left to list");
  return pruned;
}

// ---- Redis ----------------------------------------------------------------------------------

let nextPrefix = 0;
function redisBackend(maxEvents: number): RedisBackend {
  return new RedisBackend({ url: REDIS_URL, prefix: `${run}-${nextPrefix++}`, maxEvents });
}

interface KeyInfo {
  readonly type: string;
  readonly bytes: number;
}

/** Every key under the backend's prefix (suffix after the prefix), with its type and MEMORY USAGE. */
async function redisKeys(b: RedisBackend): Promise<Map<string, KeyInfo>> {
  const out = new Map<string, KeyInfo>();
  let cursor = "0";
  do {
    const [next, keys] = await admin.scan(cursor, "MATCH", `${b.keyPrefix}*`, "COUNT", 1_000);
    for (const key of keys) {
      const type = await admin.type(key);
      const bytes = Number(await admin.call("MEMORY", "USAGE", key, "SAMPLES", "0"));
      out.set(key.slice(b.keyPrefix.length), { type, bytes });
    }
    cursor = next;
  } while (cursor !== "0");
  return out;
}

/** Events held by the stream: every line of every entry (an entry holds one script's events). */
async function streamEvents(b: RedisBackend): Promise<{ entries: number; events: number; oldest: number | undefined }> {
  const entries = await admin.xrange(`${b.keyPrefix}events`, "-", "+");
  let events = 0;
  let oldest: number | undefined;
  for (const [, fields] of entries) {
    const lines = (fields[1] ?? "").split("\n");
    events += lines.length;
    oldest ??= Number(lines[0]?.split("\t")[0]);
  }
  return { entries: entries.length, events, oldest };
}

/**
 * The feed's cap as the code keeps it: trimmed exactly by id, but only when ids cross a multiple
 * of 256, so up to 255 events more than `maxEvents` can be held between trims, plus the older
 * events of the one entry that straddles the trim point (at most one script's events, minus one).
 */
async function assertStreamCapped(b: RedisBackend, maxEvents: number, largestScript: number, where: string): Promise<void> {
  const seq = Number(await admin.get(`${b.keyPrefix}event-seq`));
  const { entries, events, oldest } = await streamEvents(b);
  assert.equal(await admin.xlen(`${b.keyPrefix}events`), entries);
  assert.ok(entries <= maxEvents + TRIM_STEP - 1, `${where}: ${entries} stream entries, cap ${maxEvents} (+${TRIM_STEP - 1} between trims)`);
  assert.ok(events <= maxEvents + TRIM_STEP - 1 + largestScript - 1, `${where}: ${events} events in the stream, cap ${maxEvents}`);
  // The window the docs promise: the newest `maxEvents` events (or all of them, early on) are there.
  if (seq > 0) assert.ok(oldest !== undefined && oldest <= Math.max(1, seq - maxEvents + 1), `${where}: oldest event ${oldest}, newest ${seq}`);
}

describe("bounded memory: redis", () => {
  it("after a mixed workload is pruned, only event-seq and events remain, and repeating it adds nothing", async (t) => {
    const maxEvents = 500;
    const b = redisBackend(maxEvents);
    try {
      const p = b.keyPrefix;
      // The largest single script's events: an enqueue batch of 201, or a claim of 120.
      const observe: Observe = (phase) => assertStreamCapped(b, maxEvents, 201, phase);
      // The queues are forgotten with their last job: no name, counters or priority levels.
      const expected = ["event-seq", "events"];
      let now = T0;
      let baseline: Map<string, KeyInfo> | undefined;
      for (let round = 0; round < ROUNDS; round++) {
        const mix = await runMix(b, round, now, observe);
        assert.ok(mix.created > JOBS_PER_ROUND / 2, `round ${round} created ${mix.created} jobs`);
        // Finished but not yet past retention: everything is still there, and counted.
        const counted = (await b.counts()).reduce((sum, c) => sum + c.counts.succeeded + c.counts.failed + c.counts.cancelled, 0);
        assert.equal(counted, mix.created);
        assert.equal(await pruneAll(b, mix.now), mix.created, `round ${round}: every job is pruned`);
        now = mix.now + RETENTION.failed + 2 * DAY;

        const left = await redisKeys(b);
        assert.deepEqual([...left.keys()].sort(), expected, `round ${round}: keys left under ${p}`);
        for (const gone of ["jobs", "keys", "active", "queues", "done:succeeded", "done:failed", "done:cancelled", ...QUEUES.flatMap((q) => [`due:${q}`, `prios:${q}`, `counts:${q}`])]) {
          assert.equal(await admin.exists(`${p}${gone}`), 0, `${gone} is gone`);
        }
        await assertStreamCapped(b, maxEvents, 201, `round ${round} pruned`);

        const info = (name: string): KeyInfo => left.get(name) ?? { type: "none", bytes: 0 };
        assert.equal(info("events").type, "stream");
        // At most maxEvents + 255 + 200 events of about 100 bytes each, plus the stream's own overhead.
        assert.ok(info("events").bytes < 160 * 1024, `the stream's memory ${info("events").bytes} B`);
        const rest = [...left].filter(([name]) => name !== "events").reduce((sum, [, k]) => sum + k.bytes, 0);
        const stream = await streamEvents(b);
        t.diagnostic(`round ${round}: ${mix.created} jobs (${mix.holders} keyed enqueues returned their holder, ${mix.replayed} replayed, ${mix.retried} retried), ` +
          `left: stream ${stream.entries} entries / ${stream.events} events / ${info("events").bytes} B, other keys ${rest} B`);
        assert.ok(rest < 2 * 1024, `memory of the keys other than the stream: ${rest} B`);
        if (baseline === undefined) {
          baseline = left;
        } else {
          for (const [name, k] of left) {
            if (name === "events") continue; // a window: its size moves within the cap
            assert.ok(k.bytes <= (baseline.get(name)?.bytes ?? 0) + 16, `${name} grew from ${baseline.get(name)?.bytes} to ${k.bytes} B after round ${round}`);
          }
        }
      }
    } finally {
      await b.close();
    }
  });

  it("the event stream stays within its cap while every job is still live, and a job's own events stay whole", async () => {
    const maxEvents = 40;
    const b = redisBackend(maxEvents);
    try {
      const batches = 6;
      const perBatch = 10;
      const largestScript = batches * perBatch; // the claim of every job at once
      let now = T0;
      for (let batch = 0; batch < batches; batch++) {
        const jobs = Array.from({ length: perBatch }, (_, i): NewJob => ({
          id: uuidv7(now), task: "t", queue: "q", payloadJson: JSON.stringify({ batch, i }), priority: i % 3, runAt: now, maxAttempts: 3, key: undefined, owner: undefined,
        }));
        await b.enqueue({ jobs, now });
        await assertStreamCapped(b, maxEvents, largestScript, `enqueue ${batch}`);
        now += 1;
      }
      const claimed = await b.claim({ queues: ["q"], limit: largestScript, worker: "w1", leaseMs: 100 * LEASE, now });
      assert.equal(claimed.length, largestScript);
      await assertStreamCapped(b, maxEvents, largestScript, "claim");
      const writesPerJob = 12;
      for (let step = 0; step < writesPerJob / 2; step++) {
        for (const c of claimed) {
          now += 1;
          // Log lines, not progress: a run's newer progress event replaces the one before.
          assert.equal(await b.log({ id: c.job.id, token: c.token, line: `step ${step}`, now }), "OK");
          assert.equal(await b.log({ id: c.job.id, token: c.token, line: `line ${step}`, now }), "OK");
          await assertStreamCapped(b, maxEvents, largestScript, `job ${c.job.id} step ${step}`);
        }
      }
      const total = largestScript * (2 + writesPerJob);
      assert.equal(Number(await admin.get(`${b.keyPrefix}event-seq`)), total, "every event was numbered");
      // The feed is a window; each live job's own history is whole: enqueue, claim and its writes.
      for (const c of claimed) {
        const own = await b.readEvents({ jobId: c.job.id, afterId: 0, limit: 1_000 });
        assert.equal(own.length, 2 + writesPerJob, `job ${c.job.id}'s events`);
      }
      const feed = await b.readEvents({ afterId: total - maxEvents, limit: 1_000 });
      assert.deepEqual(feed.map((e) => e.id), Array.from({ length: maxEvents }, (_, i) => total - maxEvents + 1 + i), "the newest maxEvents events are readable");
    } finally {
      await b.close();
    }
  });
});

// ---- PostgreSQL -----------------------------------------------------------------------------

describe("bounded memory: postgres", () => {
  it("after a mixed workload is pruned, the jobs and events tables are empty, round after round", async (t) => {
    const schema = uniqueSchema("bm");
    const b = await openIsolated({ schema });
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    try {
      const rows = async (table: string): Promise<number> =>
        (await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${schema}".${table}`)).rows[0]?.n ?? -1;
      const tables = async (): Promise<string[]> =>
        (await client.query<{ t: string }>("SELECT table_name AS t FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1", [schema])).rows.map((r) => r.t);
      const observe: Observe = () => Promise.resolve();
      let now = T0;
      for (let round = 0; round < ROUNDS; round++) {
        const mix = await runMix(b, round, now, observe);
        assert.ok(mix.created > JOBS_PER_ROUND / 2, `round ${round} created ${mix.created} jobs`);
        assert.equal(await rows("jobs"), mix.created);
        const events = await rows("events");
        assert.ok(events > mix.created * 3, "events were written");
        t.diagnostic(`round ${round}: ${mix.created} jobs, ${events} events before prune (${mix.replayed} replayed, ${mix.retried} retried)`);
        assert.equal(await pruneAll(b, mix.now), mix.created, `round ${round}: every job is pruned`);
        now = mix.now + RETENTION.failed + 2 * DAY;
        assert.equal(await rows("jobs"), 0, `round ${round}: jobs left`);
        assert.equal(await rows("events"), 0, `round ${round}: events left (they go with their jobs)`);
        assert.deepEqual(await tables(), ["events", "finished_counts", "jobs", "migrations"]);
        // The counters of finished jobs go with them: prune folds the shards (a job may finish on
        // one connection's shard and be pruned on another's) and drops the rows that read 0.
        assert.equal(await rows("finished_counts"), 0, `round ${round}: counter rows left`);
      }
    } finally {
      await client.end();
      await b.close();
    }
  });
});

after(() => unlinkAndQuit(admin, `{${run}-*`));
