// One job's events must become visible in id order, or an SSE stream that resumes "after id N"
// skips one for good. Ids are taken when a row is inserted, not when it commits, so two writes of
// one job's events must not be in flight at once: each locks the job's row before it takes an id.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import pg from "pg";
import { loadQueries } from "../../src/backend/postgres/queries.ts";
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
      await first.query(loadQueries(backend.schema).log, [lease.id, lease.token, "first", T0 + 1, 10, "cap"]);
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

// The global feed (all jobs' events) has no row to lock: two transactions take event ids in one
// order and may commit in the other. A reader that resumed after the higher id skipped the lower
// one for good, so the feed reads only up to where no writing transaction can still commit below.
describe("postgres: the global feed", () => {
  it("an event that commits after a later id's is not skipped: the feed holds the later one back until the writer ends, then gives both in id order", async () => {
    const backend = await openIsolated();
    const app = new pg.Client({ connectionString: POSTGRES_URL });
    await app.connect();
    try {
      const [early, late] = [newJob(), newJob()];
      await app.query("BEGIN");
      await backend.enqueue({ jobs: [early], now: T0, tx: app }); // takes the lower event id, uncommitted
      await backend.enqueue({ jobs: [late], now: T0 }); // the higher one, committed
      // A reader here that took the later event and resumed after it would never see the earlier.
      assert.deepEqual(await backend.readEvents({ afterId: 0, limit: 10 }), [], "held back while the app's transaction is open");
      await app.query("COMMIT");
      const feed = await backend.readEvents({ afterId: 0, limit: 10 });
      assert.deepEqual(feed.map((e) => e.jobId), [early.id, late.id]);
      assert.ok((feed[0]?.id ?? 0) < (feed[1]?.id ?? 0));
    } finally {
      await app.query("ROLLBACK").catch(() => {});
      await app.end();
      await backend.close();
    }
  });

  it("a rolled-back enqueue leaves a gap in the ids that the feed passes at once", async () => {
    const backend = await openIsolated();
    const app = new pg.Client({ connectionString: POSTGRES_URL });
    await app.connect();
    try {
      await app.query("BEGIN");
      await backend.enqueue({ jobs: [newJob()], now: T0, tx: app });
      await app.query("ROLLBACK");
      const kept = newJob();
      await backend.enqueue({ jobs: [kept], now: T0 });
      // Nothing holds the events table: the feed reads past the rolled-back id without waiting.
      assert.deepEqual((await backend.readEvents({ afterId: 0, limit: 10 })).map((e) => e.jobId), [kept.id]);
    } finally {
      await app.end();
      await backend.close();
    }
  });

  it("a reader that resumes after the last id it got, while transactions commit out of id order, gets every committed event once, in id order", { timeout: 60_000 }, async () => {
    const backend = await openIsolated();
    const apps = Array.from({ length: 4 }, () => new pg.Client({ connectionString: POSTGRES_URL }));
    await Promise.all(apps.map((c) => c.connect()));
    try {
      let writing = true;
      const writers = apps.map(async (app, w) => {
        for (let i = 0; i < 40; i++) {
          await app.query("BEGIN");
          await backend.enqueue({ jobs: [newJob()], now: T0, tx: app });
          // Hold the transaction open a little, a different while each time, so commits overtake
          // each other's ids; every fifth rolls back.
          await app.query("SELECT pg_sleep($1)", [((i * 7 + w * 3) % 5) / 1_000]);
          await app.query((i + w) % 5 === 0 ? "ROLLBACK" : "COMMIT");
        }
      });
      const seen: number[] = [];
      const reading = (async () => {
        let after = 0;
        for (;;) {
          const done = !writing; // read once more after the writers ended
          const batch = await backend.readEvents({ afterId: after, limit: 25 });
          for (const event of batch) seen.push(event.id);
          after = batch.at(-1)?.id ?? after;
          if (done && batch.length === 0) return;
        }
      })();
      await Promise.all(writers);
      writing = false;
      await reading;
      const committed = await apps[0]?.query<{ id: string }>(`SELECT id FROM "${backend.schema}".events ORDER BY id`);
      assert.deepEqual(seen, committed?.rows.map((r) => Number(r.id)), "every committed event, once, in id order");
      assert.equal(seen.length, 4 * 32);
    } finally {
      await Promise.all(apps.map((c) => c.end()));
      await backend.close();
    }
  });
});
