// The conformance suite on Redis (127.0.0.1:6379, or $OFFLOAD_TEST_REDIS_URL). Each case gets its
// own key prefix, and the prefix's keys are deleted afterwards, so parallel test files never meet.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { Redis } from "ioredis";
import { unlinkAndQuit } from "./redis-helpers.ts";
import { MAX_LOG_LINES_PER_RUN, logCapLine } from "../../src/backend/backend.ts";
import { openBackend } from "../../src/backend/open.ts";
import { closeClient, createClient } from "../../src/backend/redis/connection.ts";
import { RedisBackend } from "../../src/backend/redis/redis-backend.ts";
import { ConfigError } from "../../src/core/errors.ts";
import { Offload } from "../../src/index.ts";
import { randomToken, uuidv7 } from "../../src/core/ids.ts";
import { defineBackendSuite } from "../conformance/suite.ts";
import { T0, newJob } from "../conformance/fixtures.ts";

const url = process.env["OFFLOAD_TEST_REDIS_URL"] ?? "redis://127.0.0.1:6379";
const run = `t${randomToken().slice(0, 8)}`;
let n = 0;

defineBackendSuite("redis", async () => new RedisBackend({ url, prefix: `${run}-${n++}` }));

describe("redis adapter specifics", () => {
  it("opens from a URL with ?prefix= and ?maxEvents=", async () => {
    const backend = await openBackend(`${url}?prefix=${run}-url&maxEvents=50`);
    try {
      assert.ok(backend instanceof RedisBackend);
      assert.equal(backend.keyPrefix, `{${run}-url}:`);
      const [r] = await backend.enqueue({ jobs: [newJob()], now: T0 });
      assert.equal((await backend.getJob(r?.job.id ?? ""))?.state, "queued");
    } finally {
      await backend.close();
    }
  });

  it("reads global feed entries of the first layout (one event per entry, field m) left by an upgrade", async () => {
    const backend = new RedisBackend({ url, prefix: `${run}-layout1` });
    const admin = new Redis(url);
    try {
      await admin.xadd(`${backend.keyPrefix}events`, "1-0", "m", "1\tsome-job\tstate\t1\t{}");
      await admin.set(`${backend.keyPrefix}event-seq`, "1");
      const [r] = await backend.enqueue({ jobs: [newJob()], now: T0 });
      const feed = await backend.readEvents({ afterId: 0, limit: 10 });
      assert.deepEqual(feed.map((e) => [e.id, e.jobId, e.data["state"]]), [[1, "some-job", undefined], [2, r?.job.id, "queued"]]);
    } finally {
      await admin.quit();
      await backend.close();
    }
  });

  it("closing a client returns while Redis is unreachable, and fails the calls that were waiting for it", async () => {
    const client = createClient("redis://127.0.0.1:1"); // nothing listens on port 1
    const queued = client.get("some-key").then(() => "answered", (error: unknown) => error); // waits in the offline queue
    await closeClient(client); // QUIT would join that queue, behind a reply that cannot come
    const outcome = await queued;
    assert.ok(outcome instanceof Error, `the queued call failed instead of waiting (${String(outcome)})`);
    assert.equal(client.status, "end");
  });

  it("an enqueueMany of 60,000 jobs (540,000 script arguments) is stored whole, in one script", async () => {
    const backend = new RedisBackend({ url, prefix: `${run}-bulk` });
    try {
      const jobs = Array.from({ length: 60_000 }, () => newJob({ id: uuidv7() }));
      const results = await backend.enqueue({ jobs, now: T0 });
      assert.equal(results.length, 60_000);
      const [counts] = await backend.counts();
      assert.equal(counts?.counts.queued, 60_000);
    } finally {
      await backend.close();
    }
  });

  it("a maxEvents, prefix or reply timeout that is not valid is a ConfigError when the backend is made", () => {
    // A fractional cap made the feed trim's MINID an invalid stream id: the script failed after
    // all its writes, so an enqueue that stored its jobs was reported failed.
    for (const maxEvents of [100.5, 0, -1, Number.NaN]) {
      assert.throws(() => new RedisBackend({ url, prefix: `${run}-refused`, maxEvents }), (e: unknown) => e instanceof ConfigError && /maxEvents must be a positive integer/.test(e.message), String(maxEvents));
    }
    assert.throws(() => new RedisBackend({ url, prefix: "has space" }), ConfigError);
    // 0 would make ioredis drop a connection the moment a reply is due.
    assert.throws(() => new RedisBackend({ url, prefix: `${run}-refused`, replyTimeout: 0 }), /replyTimeout must be longer than 0/);
  });

  it("a job that logs 20,000 lines runs to its end while its result is awaited, and its kept events page through in order", { timeout: 120_000 }, async () => {
    // A job's hash holds all its events. Reading the whole hash at each look at the job (a result
    // waiter looks at every change, a log line is one) made this job take minutes: quadratic.
    // A backend given as an object is the caller's to close (Offload.close leaves it open).
    const backend = new RedisBackend({ url, prefix: `${run}-chatty` });
    const offload = new Offload({ backend });
    try {
      const lines = 20_000;
      const chatty = offload.task({ name: "chatty", run: (_: null, ctx) => {
        for (let i = 0; i < lines; i++) ctx.log(`line ${i}`);
        return lines;
      } });
      const job = await chatty.enqueue(null);
      const worker = offload.worker({ concurrency: 1 });
      await worker.start();
      try {
        assert.equal(await job.result({ timeout: "100s" }), lines);
      } finally {
        await worker.stop();
      }
      let after = 0;
      const logged: string[] = [];
      for (;;) {
        const page = await offload.jobs.events({ jobId: job.id, afterId: after, limit: 500 });
        if (page.length === 0) break;
        for (const event of page) {
          assert.ok(event.id > after, "ids increase, none repeated");
          after = event.id;
          if (event.type === "log") logged.push(String(event.data["line"]));
        }
      }
      // The run keeps its first MAX_LOG_LINES_PER_RUN lines, then one that says the rest were not kept.
      assert.equal(logged.length, MAX_LOG_LINES_PER_RUN + 1);
      assert.deepEqual([logged[0], logged[MAX_LOG_LINES_PER_RUN - 1], logged.at(-1)], ["line 0", `line ${MAX_LOG_LINES_PER_RUN - 1}`, logCapLine(MAX_LOG_LINES_PER_RUN)]);
    } finally {
      await offload.close();
      await backend.close();
    }
  });

  it("a claim that staged due jobs and may have left some queued tells every watcher of new work, in this process and others: no look-ahead finds jobs no longer due", async () => {
    const prefix = `${run}-staged`;
    const a = new RedisBackend({ url, prefix });
    const b = new RedisBackend({ url, prefix });
    /** Counts a backend's change signals, and those that bring new work. */
    const tally = (backend: RedisBackend): { work: number; next: () => Promise<void> } => {
      const t = { work: 0, next: () => new Promise<void>((resolve) => {
        const stop = backend.watch(() => {
          stop();
          resolve();
        });
      }) };
      backend.watch(() => t.work++, { newWork: true });
      return t;
    };
    try {
      const [ta, tb] = [tally(a), tally(b)];
      // The first signal of each is its subscription in place (look again: anything may have changed).
      await Promise.all([ta.next(), tb.next()]);
      const heard = Promise.all([ta.next(), tb.next()]);
      const due = [newJob({ id: uuidv7(T0), runAt: T0 + 1_000 }), newJob({ id: uuidv7(T0), runAt: T0 + 1_000 })];
      await b.enqueue({ jobs: due, now: T0 });
      await heard;
      const before = [ta.work, tb.work];

      // Stages both, takes one: the other is queued, and no longer due for anyone's look-ahead.
      let heardHere = ta.next();
      let heardThere = tb.next();
      assert.equal((await a.claim({ queues: ["q"], limit: 1, worker: "w", leaseMs: 60_000, now: T0 + 1_000 })).length, 1);
      assert.equal(await b.nextDueAt(["q"]), undefined);
      await Promise.all([heardHere, heardThere]);
      assert.deepEqual([ta.work, tb.work], [before[0]! + 1, before[1]! + 1], "both processes' claim loops hear of the job left queued");

      // A claim that staged nothing stays quiet for claim loops.
      heardHere = ta.next();
      heardThere = tb.next();
      assert.equal((await a.claim({ queues: ["q"], limit: 1, worker: "w", leaseMs: 60_000, now: T0 + 1_001 })).length, 1);
      await Promise.all([heardHere, heardThere]);
      assert.deepEqual([ta.work, tb.work], [before[0]! + 1, before[1]! + 1]);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("caps the global event feed, and keeps each job's own events", async () => {
    const backend = new RedisBackend({ url, prefix: `${run}-cap`, maxEvents: 100 });
    try {
      for (let i = 0; i < 10; i++) await backend.enqueue({ jobs: Array.from({ length: 100 }, () => newJob()), now: T0 });
      const feed = await backend.readEvents({ afterId: 0, limit: 10_000 });
      assert.ok(feed.length < 1_000, `the feed was trimmed (${feed.length} of 1000 left)`);
      assert.ok((feed[0]?.id ?? 0) > 1, "the oldest events went first");
      const [first] = await backend.listJobs({ limit: 1, before: "ffffffff-ffff-7fff-bfff-ffffffffffff" });
      assert.ok(first);
      const own = await backend.readEvents({ jobId: first.id, afterId: 0, limit: 10 });
      assert.deepEqual(own.map((e) => e.data["state"]), ["queued"]);
    } finally {
      await backend.close();
    }
  });
});

after(() => unlinkAndQuit(new Redis(url), `{${run}-*`));
