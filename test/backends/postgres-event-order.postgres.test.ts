// One job's events must become visible in id order, or an SSE stream that resumes "after id N"
// skips one for good. Ids are taken when a row is inserted, not when it commits, so two writes of
// one job's events must not be in flight at once: each locks the job's row before it takes an id.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import pg from "pg";
import { channelName, loadQueries } from "../../src/backend/postgres/queries.ts";
import { T0, newJob } from "../conformance/fixtures.ts";
import { POSTGRES_URL, openIsolated, untilSessionWaits } from "./postgres-helpers.ts";

describe("postgres: the order of one job's events", () => {
  it("two log lines of one job written at once commit in id order: the second waits for the first", async () => {
    const backend = await openIsolated();
    const first = new pg.Client({ connectionString: POSTGRES_URL });
    const observer = new pg.Client({ connectionString: POSTGRES_URL });
    await Promise.all([first.connect(), observer.connect()]);
    try {
      const [enqueued] = await backend.enqueue({ jobs: [newJob()], now: T0 });
      const [claimed] = await backend.claim({ queues: ["q"], limit: 1, worker: "w", leaseMs: 60_000, now: T0 });
      assert.ok(enqueued && claimed);
      const lease = { id: claimed.job.id, token: claimed.token };
      // The first line's statement has run but not committed (a handler's log call still in flight).
      await first.query("BEGIN");
      await first.query(loadQueries(backend.schema).log, [lease.id, lease.token, "first", T0 + 1, 10, "cap", channelName(backend.schema)]);
      const second = backend.log({ ...lease, line: "second", now: T0 + 2 });
      await untilSessionWaits(observer, "wait_event_type = 'Lock' AND query LIKE $1", ["%'line'%"], second);
      await first.query("COMMIT");
      assert.equal(await second, "OK");
      const logs = (await backend.readEvents({ jobId: lease.id, afterId: 0, limit: 10 })).filter((e) => e.type === "log");
      assert.deepEqual(logs.map((e) => e.data["line"]), ["first", "second"]);
    } finally {
      await Promise.all([first.end(), observer.end()]);
      await backend.close();
    }
  });
});
