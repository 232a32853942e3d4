// The PostgreSQL claim is one plain statement while no delayed job or retry is due (claim.sql);
// when one is due it stages first and claims again. These cases pin the two things that split
// must not lose: due jobs compete for the claim in order, and a due job that another
// transaction holds locked never stops the claim of everything else.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import pg from "pg";
import { uuidv7 } from "../../src/core/ids.ts";
import { newJob, T0 } from "../conformance/fixtures.ts";
import { POSTGRES_URL, openIsolated } from "./postgres-helpers.ts";

describe("postgres: claim and due jobs", () => {
  it("a due scheduled job with a higher priority is claimed before a queued one, with its events in order", async () => {
    const b = await openIsolated();
    try {
      const delayed = newJob({ id: uuidv7(T0), runAt: T0 + 10, priority: 5 });
      const queued = newJob({ id: uuidv7(T0), runAt: T0 });
      await b.enqueue({ jobs: [delayed, queued], now: T0 });
      const [first] = await b.claim({ queues: ["q"], limit: 1, worker: "w", leaseMs: 1_000, now: T0 + 10 });
      assert.equal(first?.job.id, delayed.id);
      const events = await b.readEvents({ jobId: delayed.id, afterId: 0, limit: 10 });
      assert.deepEqual(events.map((e) => e.data["state"]), ["scheduled", "queued", "active"]);
    } finally {
      await b.close();
    }
  });

  it("a due job locked by another transaction does not stop the claim of queued jobs", async () => {
    const b = await openIsolated();
    const other = new pg.Client({ connectionString: POSTGRES_URL });
    await other.connect();
    try {
      const delayed = newJob({ id: uuidv7(T0), runAt: T0 + 10 });
      const queued = newJob({ id: uuidv7(T0), runAt: T0 });
      await b.enqueue({ jobs: [delayed, queued], now: T0 });
      await other.query("BEGIN");
      await other.query(`SELECT id FROM "${b.schema}".jobs WHERE id = $1 FOR UPDATE`, [delayed.id]);
      const claimed = await b.claim({ queues: ["q"], limit: 5, worker: "w", leaseMs: 1_000, now: T0 + 10 });
      assert.deepEqual(claimed.map((c) => c.job.id), [queued.id]);
      assert.equal((await b.getJob(delayed.id))?.state, "scheduled", "left to whoever holds it");
      await other.query("ROLLBACK");
      const [later] = await b.claim({ queues: ["q"], limit: 5, worker: "w", leaseMs: 1_000, now: T0 + 11 });
      assert.equal(later?.job.id, delayed.id);
    } finally {
      await other.end();
      await b.close();
    }
  });
});
