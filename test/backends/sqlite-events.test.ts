// One job's events on SQLite (GET /jobs/:id/events reads them on every wake of an SSE stream) are
// read through offload_events_job (job_id, id). The statement was shared with the global feed and
// planned once for both: it walked every event after `afterId`, of every job, so a new stream read
// every retained event (360 ms of a stalled event loop with 3,000,000 events, which the default
// retention keeps for 1,000,000 jobs). These tests check the plan, and what the read answers.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { after, describe, it } from "node:test";
import { loadQueries } from "../../src/backend/sqlite/queries.ts";
import { SqliteBackend } from "../../src/backend/sqlite/sqlite-backend.ts";
import { LEASE, T0, newJob } from "../conformance/fixtures.ts";

const dir = mkdtempSync(join(tmpdir(), "offload-sqlite-events-"));
after(() => rmSync(dir, { recursive: true, force: true }));

describe("sqlite: one job's events", () => {
  it("are read through the (job_id, id) index, not by walking the feed", async () => {
    await new SqliteBackend({ path: join(dir, "plan.db") }).close(); // creates the schema
    const db = new DatabaseSync(join(dir, "plan.db"), { readOnly: true });
    try {
      const plan = db.prepare(`EXPLAIN QUERY PLAN ${loadQueries()["read-job-events"]}`).all().map((r) => String(r["detail"]));
      const eventReads = plan.filter((d) => /\boffload_events\b/.test(d));
      assert.equal(eventReads.length, 1, plan.join("\n"));
      assert.match(eventReads[0] ?? "", /^SEARCH offload_events USING INDEX offload_events_job \(job_id=\? AND id>\?\)$/, plan.join("\n"));
    } finally {
      db.close();
    }
  });

  it("answer that job's events after the id, in order and up to the limit, among many of other jobs; none once it is pruned", async () => {
    const backend = new SqliteBackend({ path: join(dir, "events.db") });
    try {
      const mine = newJob({ queue: "mine" });
      await backend.enqueue({ jobs: [mine], now: T0 });
      await backend.enqueue({ jobs: Array.from({ length: 2_000 }, () => newJob({ queue: "other" })), now: T0 });
      const [claimed] = await backend.claim({ queues: ["mine"], limit: 1, worker: "w", leaseMs: LEASE, now: T0 });
      assert.ok(claimed);
      for (let i = 0; i < 5; i++) await backend.log({ id: mine.id, token: claimed.token, line: `line ${i}`, now: T0 });
      await backend.enqueue({ jobs: Array.from({ length: 2_000 }, () => newJob({ queue: "other" })), now: T0 });
      await backend.complete([{ id: mine.id, token: claimed.token, resultJson: "1" }], T0);

      const all = await backend.readEvents({ jobId: mine.id, afterId: 0, limit: 200 });
      assert.deepEqual(all.map((e) => e.type), ["state", "state", "log", "log", "log", "log", "log", "state"]);
      assert.ok(all.every((e) => e.jobId === mine.id));
      assert.deepEqual(all.map((e) => e.id), [...all.map((e) => e.id)].sort((a, b) => a - b));
      const third = all[2];
      assert.ok(third);
      assert.deepEqual(await backend.readEvents({ jobId: mine.id, afterId: third.id, limit: 2 }), all.slice(3, 5));
      assert.deepEqual(await backend.readEvents({ jobId: mine.id, afterId: all.at(-1)?.id ?? 0, limit: 200 }), []);
      const feed = await backend.readEvents({ afterId: 0, limit: 10 });
      assert.equal(feed.length, 10, "the global feed still reads every job's events");

      // Pruned last, its newest event is the newest row, which prune keeps: the feed has it, the job none.
      await backend.prune({ succeeded: 0, failed: 0, cancelled: 0 }, T0 + 1);
      assert.equal(await backend.getJob(mine.id), undefined);
      assert.deepEqual(await backend.readEvents({ jobId: mine.id, afterId: 0, limit: 200 }), []);
      const newest = all.at(-1);
      assert.ok(newest);
      assert.deepEqual((await backend.readEvents({ afterId: newest.id - 1, limit: 10 })).map((e) => e.id), [newest.id]);
    } finally {
      await backend.close();
    }
  });
});
