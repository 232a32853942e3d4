// The PostgreSQL claim is one plain statement while no delayed job or retry is due (claim.sql);
// when one is due it stages first and claims again. These cases pin the two things that split
// must not lose: due jobs compete for the claim in order, and a due job that another
// transaction holds locked never stops the claim of everything else.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import pg from "pg";
import { uuidv7 } from "../../src/core/ids.ts";
import { newJob, T0 } from "../conformance/fixtures.ts";
import { MODE_SETTINGS } from "../../src/backend/postgres/pooled-query.ts";
import { loadQueries, withOrigin } from "../../src/backend/postgres/queries.ts";
import { until } from "../support/until.ts";
import { POSTGRES_URL, connectedPair, holdEventInserts, newWorkSignals, assertStalledClaimStopped, openIsolated } from "./postgres-helpers.ts";

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

  it("a claim given up on at its reply timeout is stopped on the server: its job stays queued, unclaimed, and is claimed next time", { timeout: 30_000 }, async () => {
    await assertStalledClaimStopped(await openIsolated());
  });

  it("stopping a claim's server process by pid leaves a session alone that is not running this backend's claim (a session-mode pooler's pid may be anyone's)", async () => {
    const b = await openIsolated();
    const [sleeper, caller] = await connectedPair();
    try {
      const pid = (await sleeper.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]?.pid;
      const sleeping = sleeper.query("SELECT pg_sleep(30)").then(() => "slept", (error: unknown) => String(error));
      const queries = loadQueries(b.schema);
      const running = async (): Promise<number> => (await caller.query("SELECT FROM pg_stat_activity WHERE pid = $1 AND state = 'active'", [pid])).rowCount ?? 0;
      await until(async () => (await running()) === 1, "the sleeper's statement running", 10);
      // The same user, database and pid, but another statement: no row, and no signal.
      const stopped = await caller.query(queries["end-backend"], [pid, null, queries["claim"]]);
      assert.equal(stopped.rowCount, 0);
      assert.equal(await running(), 1, "the session still runs its own statement");
      await caller.query("SELECT pg_cancel_backend($1)", [pid]);
      assert.match(await sleeping, /canceling statement due to user request/, "cancelled by the test, not terminated");
    } finally {
      await Promise.all([sleeper.end(), caller.end()]);
      await b.close();
    }
  });

  it("stopping a claim's server process by pid leaves another backend's claim alone, though pg_stat_activity cuts both texts (track_activity_query_size) before the origin near their end", async () => {
    const b = await openIsolated();
    const [claimer, caller] = await connectedPair();
    const blocker = new pg.Client({ connectionString: POSTGRES_URL });
    await blocker.connect();
    try {
      const ours = withOrigin(loadQueries(b.schema), "a1");
      const theirs = withOrigin(loadQueries(b.schema), "b2");
      const pid = (await claimer.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]?.pid;
      // Another backend's claim (same schema, user and database) held running: its event insert waits.
      await blocker.query("BEGIN");
      await blocker.query(`LOCK TABLE "${b.schema}".events IN SHARE MODE`);
      const claiming = claimer.query(theirs["claim"], [["q"], 1, "w", T0 + 60_000, T0, false, "t.", false])
        .then(() => "claimed", (error: unknown) => String(error));
      const shown = async (): Promise<string | undefined> =>
        (await caller.query<{ query: string }>("SELECT query FROM pg_stat_activity WHERE pid = $1 AND state = 'active' AND wait_event_type = 'Lock'", [pid])).rows[0]?.query;
      await until(async () => (await shown()) !== undefined, "the other backend's claim waiting", 10);
      assert.ok(((await shown())?.length ?? 0) < theirs["claim"].length, "pg_stat_activity shows the claim's text cut short (track_activity_query_size)");
      const stopped = await caller.query(ours["end-backend"], [pid, null, ours["claim"]]);
      assert.equal(stopped.rowCount, 0, "not this backend's claim: no row, and no signal");
      await blocker.query("COMMIT");
      assert.equal(await claiming, "claimed", "the other backend's claim ran to its end");
    } finally {
      await blocker.query("ROLLBACK").catch(() => {});
      await Promise.all([claimer.end(), caller.end(), blocker.end()]);
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

  it("over more queues than its limit, a claim whose best queues' jobs are held by others claims from the next queues", async () => {
    // claim.sql, $10: best first takes candidates only from the `limit` queues whose best jobs
    // rank highest. Rows another transaction holds there are skipped: the claim must then look
    // at every queue, or a worker would sit idle beside jobs of the others.
    const b = await openIsolated();
    const other = new pg.Client({ connectionString: POSTGRES_URL });
    await other.connect();
    try {
      const jobs = [9, 8, 1, 0].map((priority, i) => newJob({ id: uuidv7(T0), queue: `q${i}`, priority }));
      await b.enqueue({ jobs, now: T0 });
      const queues = jobs.map((j) => j.queue);
      await other.query("BEGIN");
      await other.query(`SELECT id FROM "${b.schema}".jobs WHERE queue IN ('q0', 'q1') FOR UPDATE`);
      const claimed = await b.claim({ queues, limit: 2, worker: "w", leaseMs: 1_000, now: T0 });
      assert.deepEqual(claimed.map((c) => c.job.queue), ["q2", "q3"]);
      await other.query("ROLLBACK");
      // Unheld, the best queues' jobs come first again.
      const [best] = await b.claim({ queues, limit: 1, worker: "w", leaseMs: 1_000, now: T0 });
      assert.equal(best?.job.queue, "q0");
    } finally {
      await other.end();
      await b.close();
    }
  });

  it("over more queues than its limit, a second statement the server refuses leaves the first one's jobs claimed, handed over, not stranded active", { timeout: 30_000 }, async () => {
    // Best first came back short (rows another transaction holds), so the claim looks at every
    // queue in a second statement. The first one has committed: if the server refuses the second
    // (here a lock timeout at its event insert; a statement timeout or a server out of
    // connections alike), its jobs are the claim's, and must not sit active under a lease nobody
    // knows of until rescue charges them an attempt they never ran.
    const b = await openIsolated({ pollMs: 600_000 });
    const [admin, other] = await connectedPair();
    try {
      const held = newJob({ id: uuidv7(T0), queue: "q0", priority: 9 });
      const next = newJob({ id: uuidv7(T0), queue: "q0", priority: 9 });
      const jobs = [held, next, newJob({ id: uuidv7(T0), queue: "q1", priority: 8 }), newJob({ id: uuidv7(T0), queue: "q2", priority: 1 }), newJob({ id: uuidv7(T0), queue: "q3", priority: 0 })];
      await b.enqueue({ jobs, now: T0 });
      const queues = ["q0", "q1", "q2", "q3"];
      await other.query("BEGIN");
      await other.query(`SELECT id FROM "${b.schema}".jobs WHERE id = $1 OR queue = 'q1' FOR UPDATE`, [held.id]);
      // The event insert of a claim of q2's job waits on a lock the test holds, past a lock timeout.
      await holdEventInserts(admin, b.schema, 4243, {
        when: `(SELECT queue FROM "${b.schema}".jobs WHERE id = NEW.job_id) = 'q2'`,
        first: "PERFORM set_config('lock_timeout', '100ms', true);",
      });
      await admin.query("SELECT pg_advisory_lock(4243)");
      const work = await newWorkSignals(b);
      const claimed = await b.claim({ queues, limit: 2, worker: "w", leaseMs: 60_000, now: T0 });
      assert.deepEqual(claimed.map((c) => c.job.id), [next.id]);
      const { rows } = await admin.query(`SELECT id, state, lease_token FROM "${b.schema}".jobs WHERE state <> 'queued'`);
      assert.deepEqual(rows, [{ id: next.id, state: "active", lease_token: claimed[0]?.token }], "the refused statement took nothing");
      // The refused statement could not look at q2 and q3: this process's claim loops look again
      // (the one that asked has a slot left), rather than sleep until the poll beside their jobs.
      await new Promise<void>((resolve) => setImmediate(resolve));
      assert.equal(work(), 1);
      await admin.query("SELECT pg_advisory_unlock(4243)");
      await other.query("ROLLBACK");
    } finally {
      await admin.query("SELECT pg_advisory_unlock_all()").catch(() => {});
      await other.query("ROLLBACK").catch(() => {});
      await admin.end();
      await other.end();
      await b.close();
    }
  });

  it("the hot statements' generic plans reach jobs by index, never by a scan of the table", async () => {
    // They run in the session settings of pooled-query.ts (force_generic_plan, enable_seqscan
    // off), where LIMIT $2 and the arrays' lengths are guesses, and a plan is kept until the
    // statistics change: a plan that scans every job, made while the table was small, would cost
    // milliseconds per claim once it is full. Checked on an empty table and on a full one.
    // EXPLAIN without ANALYZE: nothing runs.
    const b = await openIsolated();
    const session = new pg.Client({ connectionString: POSTGRES_URL });
    await session.connect();
    try {
      await session.query(MODE_SETTINGS.generic);
      const sql = loadQueries(b.schema);
      const args: Record<string, string> = {
        claim: `(ARRAY['a', 'b'], 50, 'w', ${T0 + 1_000}, ${T0}, true, 'base.', false)`,
        "claim best first": `(ARRAY['a', 'b'], 1, 'w', ${T0 + 1_000}, ${T0}, true, 'base.', true)`,
        complete: `(ARRAY['x'], ARRAY['t'], ARRAY['null'], ${T0})`,
        heartbeat: `(ARRAY['x'], ARRAY['t'], ${T0})`,
        fail: `('x', 't', '{}', NULL, ${T0})`,
        "get-job": "('x')",
        "next-due": "(ARRAY['a'])",
      };
      const checkPlans = async (when: string): Promise<void> => {
        for (const [label, values] of Object.entries(args)) {
          const name = label.split(" ")[0] ?? label;
          await session.query(`PREPARE "${name}" AS ${sql[name as keyof typeof sql]}`);
          const plan = (await session.query(`EXPLAIN EXECUTE "${name}"${values}`)).rows.map((r: Record<string, string>) => r["QUERY PLAN"]).join("\n");
          assert.doesNotMatch(plan, /Seq Scan on jobs/, `${label}, ${when}:\n${plan}`);
          await session.query(`DEALLOCATE "${name}"`);
        }
      };
      await checkPlans("empty table");
      for (let i = 0; i < 20; i++) {
        const jobs = Array.from({ length: 1_000 }, () => newJob({ id: uuidv7(T0), queue: i % 2 === 0 ? "a" : "b", priority: i % 3 }));
        await b.enqueue({ jobs, now: T0 });
      }
      await session.query(`ANALYZE "${b.schema}".jobs`);
      await checkPlans("20,000 jobs");
    } finally {
      await session.end();
      await b.close();
    }
  });
});
