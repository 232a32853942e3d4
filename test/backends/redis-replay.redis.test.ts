// Redis: bulk replay walks the failed jobs in chunks of 1,000, one script call each, and other
// writers run between two calls: another replay, a retry, a prune. Each case here holds the
// replay after its first chunk, runs such a writer to its end, and lets the replay go on: every
// failed job its filter asks for must still be requeued. The hold is made at the client the
// backend is given, so the interleaving is exact, with no timing in it.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { Redis } from "ioredis";
import { unlinkAndQuit } from "./redis-helpers.ts";
import { HISTORY_KEPT } from "../../src/backend/backend.ts";
import { RedisBackend } from "../../src/backend/redis/redis-backend.ts";
import { ScriptRunner } from "../../src/backend/redis/scripts.ts";
import { randomToken, uuidv7 } from "../../src/core/ids.ts";
import { LEASE, T0, attemptError, newJob } from "../conformance/fixtures.ts";

const url = process.env["OFFLOAD_TEST_REDIS_URL"] ?? "redis://127.0.0.1:6379";
const run = `rp${randomToken().slice(0, 8)}`;
let n = 0;
const admin = new Redis(url);
after(() => unlinkAndQuit(admin, `{${run}-*`));

/** More than one replay chunk (1,000 jobs), so a writer can come between two of them. */
const JOBS = 2_500;

/**
 * A client for a backend whose script calls can be held: after each script call's reply, while
 * `between` is set, it runs (once) before the reply is handed on. `scripts` counts the calls.
 */
function holdingClient(): { client: Redis; hold: (between: () => Promise<void>) => void; scripts: () => number } {
  const target = new Redis(url);
  let between: (() => Promise<void>) | undefined;
  let scripts = 0;
  const call = async (...args: unknown[]): Promise<unknown> => {
    const send = target.call.bind(target) as (...a: unknown[]) => Promise<unknown>;
    const reply = await send(...args);
    if (args[0] === "EVALSHA" || args[0] === "EVAL") {
      scripts++;
      const step = between;
      between = undefined;
      if (step) await step();
    }
    return reply;
  };
  const client = new Proxy(target, {
    get(object, property) {
      if (property === "call") return call;
      const value: unknown = Reflect.get(object, property, object);
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(object) : value;
    },
  });
  return {
    client,
    hold: (step) => {
      between = step;
      scripts = 0;
    },
    scripts: () => scripts,
  };
}

/** Two backends on one fresh prefix: `held` (its script calls can be held) and `other`. */
async function pair(body: (held: RedisBackend, other: RedisBackend, hold: (between: () => Promise<void>) => void, scripts: () => number) => Promise<void>): Promise<void> {
  const prefix = `${run}-${n++}`;
  const { client, hold, scripts } = holdingClient();
  const held = new RedisBackend({ client, prefix });
  const other = new RedisBackend({ url, prefix });
  try {
    await body(held, other, hold, scripts);
  } finally {
    await held.close();
    await other.close();
    await client.quit();
  }
}

async function failedCount(b: RedisBackend, queue?: string): Promise<number> {
  return (await b.counts()).filter((c) => queue === undefined || c.queue === queue).reduce((sum, c) => sum + c.counts.failed, 0);
}

describe("redis: a replay that other writers overtake between its chunks", () => {
  it("a replay of one queue, overtaken by a replay of another, requeues every failed job of its queue (jobs that failed at one time)", () => pair(async (held, other, hold, scripts) => {
    // Alternating queues, ids in enqueue order, all failed by one rescue: one finish time, so the
    // failed set orders them by id alone (as rescues and batch failures leave thousands).
    const jobs = Array.from({ length: JOBS }, (_, i) => newJob({ id: uuidv7(T0), queue: i % 2 ? "q" : "other", maxAttempts: 1 }));
    await other.enqueue({ jobs, now: T0 });
    assert.equal((await other.claim({ queues: ["q", "other"], limit: JOBS, worker: "w1", leaseMs: LEASE, now: T0 })).length, JOBS);
    assert.equal((await other.rescueExpired(T0 + LEASE + 1)).failed.length, JOBS);
    const now = T0 + LEASE + 2;
    let overtaken = 0;
    // The first chunk has looked at 1,000 jobs, 500 of each queue, and left the 500 of "other"
    // failed; now "other" is replayed whole, from another process.
    hold(async () => {
      overtaken = await other.replay({ queue: "other" }, now);
    });
    const replayed = await held.replay({ queue: "q" }, now);
    assert.ok(scripts() > 1, "the replay took more than one chunk");
    assert.equal(overtaken, JOBS / 2, "the overtaking replay requeued every failed job of its queue");
    assert.equal(replayed, JOBS / 2, "the overtaken replay requeued every failed job of its queue");
    assert.equal(await failedCount(other), 0, "no failed job is left");
    assert.equal(await admin.zcard(`${held.keyPrefix}done:failed`), 0);
  }));

  it("a replay of one task, overtaken by a retry of a job it left, requeues every failed job of its task (jobs that failed one by one)", () => pair(async (held, other, hold, scripts) => {
    // Each job fails at its own time, in id order: the failed set, newest first, is the reverse.
    const jobs = Array.from({ length: JOBS }, (_, i) => newJob({ id: uuidv7(T0), task: i % 2 ? "a" : "b", maxAttempts: 1 }));
    await other.enqueue({ jobs, now: T0 });
    const claimed = await other.claim({ queues: ["q"], limit: JOBS, worker: "w1", leaseMs: LEASE, now: T0 });
    assert.deepEqual(claimed.map((c) => c.job.id), jobs.map((j) => j.id));
    for (const [i, c] of claimed.entries()) {
      assert.equal(await other.fail({ id: c.job.id, token: c.token, error: attemptError(1, T0 + 1 + i), retryAt: undefined, now: T0 + 1 + i }), "FAILED");
    }
    const newestB = jobs.findLast((j) => j.task === "b");
    assert.ok(newestB);
    const now = T0 + JOBS + 10;
    // The first chunk has looked at the 1,000 newest failures and left the 500 of task "b"; the
    // newest of those is retried by hand.
    hold(async () => {
      assert.equal(await other.retry(newestB.id, now), "QUEUED");
    });
    const replayed = await held.replay({ task: "a" }, now);
    assert.ok(scripts() > 1, "the replay took more than one chunk");
    assert.equal(replayed, JOBS / 2, "the overtaken replay requeued every failed job of its task");
    const left = await admin.zrange(`${held.keyPrefix}done:failed`, "0", "-1");
    assert.equal(left.length, JOBS / 2 - 1, "the failed jobs of task b are left, but the one retried");
    for (const id of left) assert.equal((await held.getJob(id))?.task, "b", `${id} is a job of task b`);
    assert.equal(await failedCount(other), JOBS / 2 - 1);
  }));
});

describe("redis: replay.lua's cursor", () => {
  it("walks newest first, ids by bytes within one finish time, on after a cursor whose job has left the set", async () => {
    // Called one job at a time (chunk 1), so each reply's cursor names the job it looked at. The
    // members are no jobs (nothing is requeued). Between two calls every other cursor's member is
    // removed, as a requeue or another replay would, and members are added on both sides of it.
    const prefix = `{${run}-${n++}}:`;
    const failed = `${prefix}done:failed`;
    const scripts = new ScriptRunner(admin, prefix, (now) => [prefix, now, 100_000, "test"]);
    const e = "\u00e9"; // two bytes, 0xc3 0xa9: after every ASCII byte
    await admin.zadd(failed, 9, "late", 7, "z", 5, "a", 5, "ab", 5, "b", 5, "B", 5, e, 5, "-x", 3, "m", 1, "early");
    const seen: string[] = [];
    let cursor: [string, string] = ["", ""];
    for (;;) {
      // since 2, until 8: "late" and "early" are out of range.
      const [requeued, more, score, id] = (await scripts.run("replay", T0, ["", "", 2, 8, ...cursor, 1, HISTORY_KEPT.errors, HISTORY_KEPT.events])) as [number, number, string, string];
      assert.equal(requeued, 0);
      if (more !== 1) break;
      seen.push(id);
      cursor = [score, id];
      if (seen.length % 2 === 0) await admin.zrem(failed, id);
      // "c" lies ahead of the cursor; "\u00ff" (0xc3 0xbf) and "new" behind it.
      if (id === e) await admin.zadd(failed, 5, "c", 5, "\u00ff", 8, "new");
    }
    assert.deepEqual(seen, ["z", e, "c", "b", "ab", "a", "B", "-x", "m"]);
    assert.deepEqual(await admin.zrevrange(failed, "0", "-1"), ["late", "new", "z", "\u00ff", "c", "ab", "B", "m", "early"]);
    await admin.del(failed);
  });
});

describe("redis: a replay's calls stay short when it trims large histories", () => {
  it("a call stops taking jobs once it has listed 50,000 event fields to trim; the next call goes on (each job still trimmed)", () => pair(async (held, other, hold, scripts) => {
    // Three failed jobs of 25,000 events each, over the 20,000 a requeue keeps: trimming one lists
    // its hash's fields (HKEYS), sorts them and deletes the oldest, about 30 ms of the server's
    // time each here, so a chunk of 1,000 such jobs held the server for half a minute.
    const jobs = Array.from({ length: 3 }, () => newJob({ id: uuidv7(T0), maxAttempts: 1 }));
    await other.enqueue({ jobs, now: T0 });
    const claimed = await other.claim({ queues: ["q"], limit: 3, worker: "w1", leaseMs: LEASE, now: T0 });
    for (const c of claimed) assert.equal(await other.fail({ id: c.job.id, token: c.token, error: attemptError(1, T0 + 1), retryAt: undefined, now: T0 + 1 }), "FAILED");
    const events = 25_000;
    let seq = Number(await admin.get(`${held.keyPrefix}event-seq`));
    for (const job of jobs) {
      const fields: string[] = [];
      for (let i = 0; i < events; i++) fields.push(`~${++seq}`, `log\t${T0 + 1}\t{"line":"${i}"}`);
      await admin.hset(`${held.keyPrefix}job:${job.id}`, ...fields);
    }
    await admin.set(`${held.keyPrefix}event-seq`, seq);
    hold(async () => {});
    // Errors kept 0: each job's one error is over it, which is when a requeue trims events too.
    assert.equal(await held.replay({}, T0 + 2, { errors: 0, events: HISTORY_KEPT.events }), 3);
    assert.ok(scripts() >= 2, `two jobs' trims (50,000 fields listed) end a call: ${scripts()} call(s)`);
    const kept = HISTORY_KEPT.events - Math.floor(HISTORY_KEPT.events / 10);
    for (const job of jobs) {
      const page = await held.readEvents({ jobId: job.id, afterId: 0, limit: 100_000 });
      assert.equal(page.length, kept + 1, "the newest nine tenths of the cap, and the requeue's own event");
      assert.deepEqual(page.at(-1)?.data, { state: "queued", attempt: 0 });
    }
  }));
});
