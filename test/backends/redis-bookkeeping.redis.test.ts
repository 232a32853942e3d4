// Redis adapter: the store's own bookkeeping (per-queue counters, state indexes, the idempotency
// key table) checked against the jobs themselves after unusual sequences of transitions. The
// conformance suite judges what callers see; these cases judge what Redis holds, because a drift
// there (a counter off by one, a job left in a second index) shows up only much later.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { Redis } from "ioredis";
import { keyField, unlinkAndQuit } from "./redis-helpers.ts";
import { RedisBackend } from "../../src/backend/redis/redis-backend.ts";
import { ScriptRunner } from "../../src/backend/redis/scripts.ts";
import { JOB_STATES, type JobState } from "../../src/core/job.ts";
import { randomToken, uuidv7 } from "../../src/core/ids.ts";
import { LEASE, T0, attemptError, claimOne, enqueueOne, newJob } from "../conformance/fixtures.ts";

const url = process.env["OFFLOAD_TEST_REDIS_URL"] ?? "redis://127.0.0.1:6379";
const run = `r${randomToken().slice(0, 8)}`;
let n = 0;
const admin = new Redis(url);

const FINAL: readonly JobState[] = ["succeeded", "failed", "cancelled"];

/**
 * Reads every job hash under the backend's prefix and checks the store against it: counters per
 * queue and state equal the real numbers, each job sits in exactly the one index of its state,
 * and the key table maps exactly the keys of unfinished jobs. Returns the real counts.
 */
async function checkStore(backend: RedisBackend): Promise<Record<string, Record<JobState, number>>> {
  const p = backend.keyPrefix;
  const ids = await admin.zrange(`${p}jobs`, "0", "-1");
  const real: Record<string, Record<JobState, number>> = {};
  const wantKeys: Record<string, string> = {};
  const queues = await admin.smembers(`${p}queues`);
  for (const id of ids) {
    const [state, queue, priority, key, task] = await admin.hmget(`${p}job:${id}`, "state", "queue", "priority", "key", "task");
    assert.ok(typeof state === "string" && typeof queue === "string" && typeof priority === "string", `job ${id} is listed but its hash is gone`);
    const counts = (real[queue] ??= Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>);
    counts[state as JobState] += 1;
    if (typeof key === "string" && !FINAL.includes(state as JobState)) wantKeys[keyField(task ?? "", key)] = id;
    // Every index this job could be in, and whether it should be there.
    const places: Array<[string, boolean]> = [
      [`${p}active`, state === "active"],
      ...FINAL.map((s): [string, boolean] => [`${p}done:${s}`, state === s]),
    ];
    for (const q of queues) {
      places.push([`${p}due:${q}`, q === queue && (state === "scheduled" || state === "retrying")]);
      for (const prio of await admin.zrange(`${p}prios:${q}`, "0", "-1")) {
        places.push([`${p}queued:${q}:${prio}`, q === queue && prio === priority && state === "queued"]);
      }
    }
    if (state === "queued") {
      const prios = await admin.zrange(`${p}prios:${queue}`, "0", "-1");
      assert.ok(prios.includes(priority), `queued job ${id}: its priority level ${priority} is not in prios:${queue}`);
    }
    for (const [index, expected] of places) {
      const score = await admin.zscore(index, id);
      assert.equal(score !== null, expected, `job ${id} (${state}) ${expected ? "missing from" : "left in"} ${index}`);
    }
  }
  // No index holds an id that is not a job.
  const known = new Set(ids);
  const indexes = [`${p}active`, ...FINAL.map((s) => `${p}done:${s}`)];
  for (const q of queues) {
    indexes.push(`${p}due:${q}`);
    for (const prio of await admin.zrange(`${p}prios:${q}`, "0", "-1")) indexes.push(`${p}queued:${q}:${prio}`);
  }
  for (const index of indexes) {
    for (const id of await admin.zrange(index, "0", "-1")) assert.ok(known.has(id), `${index} holds ${id}, which is no job`);
  }
  assert.deepEqual(await admin.hgetall(`${p}keys`), wantKeys, "the key table holds exactly the keys of unfinished jobs");
  for (const q of queues) {
    const stored = await admin.hgetall(`${p}counts:${q}`);
    const counts = real[q] ?? (Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>);
    for (const s of JOB_STATES) assert.equal(Number(stored[s] ?? 0), counts[s], `counts:${q} ${s}`);
  }
  return real;
}

function fresh(): RedisBackend {
  return new RedisBackend({ url, prefix: `${run}-${n++}` });
}

async function using(body: (b: RedisBackend) => Promise<void>): Promise<void> {
  const b = fresh();
  try {
    await body(b);
  } finally {
    await b.close();
  }
}

describe("redis store bookkeeping", () => {
  it("counters, indexes and the key table match the jobs after unusual sequences of transitions", () => using(async (b) => {
    // A retrying job cancelled, then retried by hand.
    const a = await enqueueOne(b, { key: "ka" });
    const first = await claimOne(b);
    await b.fail({ id: a, token: first.token, error: attemptError(1), retryAt: T0 + 100, now: T0 });
    await checkStore(b);
    assert.equal(await b.cancel(a, T0 + 1), "CANCELLED");
    await checkStore(b);
    assert.equal(await b.retry(a, T0 + 2), "QUEUED");
    await checkStore(b);
    // Two more failed attempts, then an expired lease on the last one: rescued to failed.
    const second = await claimOne(b, T0 + 3);
    await b.fail({ id: a, token: second.token, error: attemptError(1), retryAt: T0 + 4, now: T0 + 3 });
    assert.equal(await b.stageDue(T0 + 5), 1);
    await checkStore(b);
    const third = await claimOne(b, T0 + 5);
    await b.fail({ id: a, token: third.token, error: attemptError(2), retryAt: T0 + 6, now: T0 + 5 });
    const last = await claimOne(b, T0 + 7);
    assert.deepEqual((await b.rescueExpired(T0 + 8 + LEASE)).failed, [a]);
    await checkStore(b);
    // The lost worker's late failure changes nothing.
    assert.equal(await b.fail({ id: a, token: last.token, error: attemptError(3), retryAt: undefined, now: T0 + 9 + LEASE }), "LEASE_LOST");
    await checkStore(b);
    assert.equal(await b.replay({}, T0 + 10 + LEASE), 1);
    await checkStore(b);
    // Rescued to queued, claimed again, then the old worker's late failure.
    const stale = await claimOne(b, T0 + 11 + LEASE);
    assert.deepEqual((await b.rescueExpired(T0 + 12 + 2 * LEASE)).requeued, [a]);
    const fresh = await claimOne(b, T0 + 12 + 2 * LEASE);
    assert.equal(await b.fail({ id: a, token: stale.token, error: attemptError(1), retryAt: T0 + 3 * LEASE, now: T0 + 13 + 2 * LEASE }), "LEASE_LOST");
    await checkStore(b);
    assert.deepEqual(await b.complete([{ id: a, token: fresh.token, resultJson: "1" }], T0 + 14 + 2 * LEASE), ["OK"]);
    await checkStore(b);
    assert.equal(await b.prune({ succeeded: 0, failed: 0, cancelled: 0 }, T0 + 15 + 2 * LEASE), 1);
    assert.deepEqual(await checkStore(b), {});
  }));

  it("a queued job whose hash was deleted by hand is dropped by the claim, and the rest of its batch is claimed", () => using(async (b) => {
    const ids = [await enqueueOne(b), await enqueueOne(b), await enqueueOne(b)];
    await admin.del(`${b.keyPrefix}job:${ids[1] ?? ""}`);
    const claimed = await b.claim({ queues: ["q"], limit: 3, worker: "w1", leaseMs: LEASE, now: T0 });
    assert.deepEqual(claimed.map((c) => c.job.id).sort(), [ids[0], ids[2]].sort());
    assert.deepEqual((await b.counts()).map((c) => [c.queue, c.counts.queued, c.counts.active]), [["q", 0, 2]]);
    await checkStore(b);
  }));

  it("a lease sweep goes past active ids whose hash was deleted by hand: it drops them and rescues every expired job in one sweep", () => using(async (b) => {
    // More expired leases than one rescue chunk (1,000), and the ids that come first in the
    // lease set (one lease_until for all: by id) lost their hashes.
    const p = b.keyPrefix;
    const jobs = Array.from({ length: 1_500 }, () => newJob({ id: uuidv7(T0) }));
    await b.enqueue({ jobs, now: T0 });
    assert.equal((await b.claim({ queues: ["q"], limit: 1_500, worker: "w1", leaseMs: LEASE, now: T0 })).length, 1_500);
    const gone = jobs.slice(0, 10).map((j) => j.id);
    await admin.del(...gone.map((id) => `${p}job:${id}`));
    // And an id in the lease set whose job is not active (the set drifted from the job): a queued job.
    const waiting = await enqueueOne(b, { queue: "other" });
    await admin.zadd(`${p}active`, T0, waiting);
    const rescued = await b.rescueExpired(T0 + LEASE + 1);
    assert.equal(rescued.requeued.length, 1_490, "every expired lease of a job that exists is rescued in one sweep");
    assert.deepEqual(new Set(rescued.requeued), new Set(jobs.slice(10).map((j) => j.id)));
    assert.deepEqual([rescued.failed, rescued.cancelled], [[], []]);
    assert.equal(await admin.zcard(`${p}active`), 0, "the lease set is empty");
    assert.deepEqual(await admin.zmscore(`${p}jobs`, ...gone), gone.map(() => null), "the ids with no hash left the jobs index");
    assert.equal((await b.getJob(waiting))?.state, "queued", "the queued job in the lease set is left as it is");
    assert.equal((await b.claim({ queues: ["other"], limit: 1, worker: "w1", leaseMs: LEASE, now: T0 + LEASE + 2 }))[0]?.job.id, waiting);
  }));

  it("a queue named twice in one claim is claimed from once: one lease per job, counters exact", () => using(async (b) => {
    // `offload worker --queues q,q` reaches the backend as ["q", "q"]. claim.lua gathered the
    // candidates of each name it was given, so every job of q was a candidate twice and the
    // same job was activated twice in one call.
    const id = await enqueueOne(b);
    const claimed = await b.claim({ queues: ["q", "q"], limit: 5, worker: "w1", leaseMs: LEASE, now: T0 });
    assert.deepEqual(claimed.map((c) => [c.job.id, c.job.attempt]), [[id, 1]]);
    const stored = await b.getJob(id);
    assert.equal(stored?.attempt, 1, "the claim counted one attempt");
    const [only] = claimed;
    assert.ok(only);
    // The lease handed out is the one the job holds.
    const lease = { id, token: only.token };
    assert.deepEqual(await b.heartbeat({ worker: "w1", leases: [lease], leaseMs: LEASE, now: T0 + 1 }), { lost: [], cancelRequested: [] });
    assert.deepEqual((await b.counts()).map((c) => [c.queue, c.counts.queued, c.counts.active]), [["q", 0, 1]]);
    await checkStore(b);
  }));

  it("a maintenance call handles at most its chunk in all, however many queues or final states share it", () => using(async (b) => {
    // The adapter calls stage-due and prune with 1,000; here the scripts are called one at a
    // time with 10, so the bound shows with few jobs. Each call is one script, which blocks the
    // server while it runs: its length must not grow with the number of queues or states.
    const scripts = new ScriptRunner(admin, b.keyPrefix, (now) => [b.keyPrefix, now, 100_000, "test"]);
    const calls = async (name: "stage-due" | "prune", now: number, args: number[]): Promise<number[][]> => {
      const replies: number[][] = [];
      for (;;) {
        const reply = (await scripts.run(name, now, args)) as number[];
        replies.push(reply);
        if (reply[1] !== 1) return replies;
      }
    };
    const queues = ["qa", "qb", "qc"];
    await b.enqueue({ jobs: queues.flatMap((queue) => Array.from({ length: 15 }, () => newJob({ queue, runAt: T0 + 100 }))), now: T0 });
    assert.deepEqual(await calls("stage-due", T0 + 100, [10]), [[10, 1], [10, 1], [10, 1], [10, 1], [5, 0]]);
    await checkStore(b);
    // 15 jobs end in each final state.
    const claimed = await b.claim({ queues, limit: 45, worker: "w1", leaseMs: LEASE, now: T0 + 101 });
    assert.equal(claimed.length, 45);
    for (const [i, c] of claimed.entries()) {
      if (i < 15) assert.deepEqual(await b.complete([{ id: c.job.id, token: c.token, resultJson: "1" }], T0 + 102), ["OK"]);
      else if (i < 30) assert.equal(await b.fail({ id: c.job.id, token: c.token, error: attemptError(1), retryAt: undefined, now: T0 + 102 }), "FAILED");
      else {
        assert.equal(await b.cancel(c.job.id, T0 + 102), "CANCEL_REQUESTED");
        assert.equal(await b.acknowledgeCancel({ id: c.job.id, token: c.token }, T0 + 102), "OK");
      }
    }
    await checkStore(b);
    assert.deepEqual(await calls("prune", T0 + 200, [T0 + 200, T0 + 200, T0 + 200, 10]), [[10, 1], [10, 1], [10, 1], [10, 1], [5, 0]]);
    assert.deepEqual(await checkStore(b), {});
  }));
});

after(() => unlinkAndQuit(admin, `{${run}-*`));

describe("redis store: queues that empty", () => {
  it("a queue whose last job is pruned leaves no name, counters or priority levels behind; one that still holds a job keeps them", () => using(async (b) => {
    // Apps that make queues per tenant or per customer would otherwise grow `queues` and a
    // counters hash by one for every name ever used (docs/redis.md, *Limits*).
    const p = b.keyPrefix;
    await b.enqueue({ jobs: ["qa", "qb", "qc"].flatMap((queue) => [newJob({ queue, priority: 1 }), newJob({ queue, priority: 5 })]), now: T0 });
    await b.enqueue({ jobs: [newJob({ queue: "qd", runAt: T0 + 10_000 })], now: T0 });
    const claimed = await b.claim({ queues: ["qa", "qb", "qc"], limit: 6, worker: "w1", leaseMs: LEASE, now: T0 });
    assert.equal(claimed.length, 6);
    // qc keeps one job unfinished: it must survive the prune whole.
    const [keep, ...rest] = claimed.filter((c) => c.job.queue === "qc").concat(claimed.filter((c) => c.job.queue !== "qc"));
    assert.ok(keep);
    assert.deepEqual(await b.complete(rest.map((c) => ({ id: c.job.id, token: c.token, resultJson: "1" })), T0 + 1), rest.map(() => "OK"));
    assert.equal(await b.prune({ succeeded: 0, failed: 0, cancelled: 0 }, T0 + 2), 5);
    assert.deepEqual((await admin.smembers(`${p}queues`)).sort(), ["qc", "qd"]);
    const left = (await admin.keys(`${p}*`)).map((k) => k.slice(p.length)).filter((k) => !k.startsWith("job:")).sort();
    assert.deepEqual(left, ["active", "counts:qc", "counts:qd", "due:qd", "event-seq", "events", "jobs", "prios:qc", "queues"]);
    await checkStore(b);
    // The queue comes back with its next job, counted from zero.
    await b.enqueue({ jobs: [newJob({ queue: "qa" })], now: T0 + 3 });
    assert.deepEqual((await b.counts()).map((c) => [c.queue, c.counts.queued, c.counts.active, c.counts.scheduled]).sort(), [["qa", 1, 0, 0], ["qc", 0, 1, 0], ["qd", 0, 0, 1]]);
    assert.equal((await b.claim({ queues: ["qa"], limit: 1, worker: "w1", leaseMs: LEASE, now: T0 + 3 })).length, 1);
    await checkStore(b);
  }));
});
