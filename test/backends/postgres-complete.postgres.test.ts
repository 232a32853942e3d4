// A completion sent again (its first reply was lost) must be answered OK even when it reaches the
// server while the first one is still committing: the repeat waits for the row, and must judge it
// by the row it then sees (succeeded by the same token), not by its own older snapshot.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { loadQueries } from "../../src/backend/postgres/queries.ts";
import { LEASE, T0, newJob } from "../conformance/fixtures.ts";
import { warningsOf } from "../support/warnings.ts";
import { connectedPair, openIsolated, untilSessionWaits } from "./postgres-helpers.ts";

describe("postgres: repeated completions", () => {
  it("a repeat that waits on the first completion's commit is answered OK, and writes nothing", async () => {
    const b = await openIsolated();
    const [first, observer] = await connectedPair();
    try {
      const job = newJob();
      await b.enqueue({ jobs: [job], now: T0 });
      const [claimed] = await b.claim({ queues: ["q"], limit: 1, worker: "w", leaseMs: LEASE, now: T0 });
      assert.ok(claimed);
      // The first completion, written but not yet committed.
      await first.query("BEGIN");
      await first.query(loadQueries(b.schema)["complete"], [[job.id], [claimed.token], ['"first"'], T0 + 1]);
      const repeat = b.complete([{ id: job.id, token: claimed.token, resultJson: '"again"' }], T0 + 2);
      // Wait until the repeat is blocked on the first one's row lock, then let the first commit.
      await untilSessionWaits(observer, "wait_event_type = 'Lock' AND query LIKE $1", ["%unnest($1::text[], $2::text[], $3::text[])%"], repeat);
      await first.query("COMMIT");
      assert.deepEqual(await repeat, ["OK"]);
      const stored = await b.getJob(job.id);
      assert.equal(stored?.state, "succeeded");
      assert.equal(stored?.result, "first", "the repeat wrote nothing");
      const states = (await b.readEvents({ jobId: job.id, afterId: 0, limit: 10 })).map((e) => e.data["state"]);
      assert.deepEqual(states, ["queued", "active", "succeeded"]);
    } finally {
      await first.end();
      await observer.end();
      await b.close();
    }
  });

  it("a completion chosen as a deadlock's victim did nothing, and is sent again: both jobs succeed, and a warning names the statement", { timeout: 30_000 }, async () => {
    const b = await openIsolated();
    const [other, observer] = await connectedPair();
    const warnings = warningsOf("OFFLOAD_POSTGRES_ROLLED_BACK");
    try {
      const jobs = [newJob(), newJob()]; // ids increase: the batch locks jobs[0] first
      await b.enqueue({ jobs, now: T0 });
      const claimed = await b.claim({ queues: ["q"], limit: 2, worker: "w", leaseMs: LEASE, now: T0 });
      assert.equal(claimed.length, 2);
      // Another transaction holds the second job's row; the completion locks the first, then waits.
      await other.query("BEGIN");
      await other.query(`SELECT FROM "${b.schema}".jobs WHERE id = $1 FOR UPDATE`, [jobs[1]?.id]);
      const completing = b.complete(claimed.map((c) => ({ id: c.job.id, token: c.token, resultJson: "1" })), T0 + 1);
      await untilSessionWaits(observer, "wait_event_type = 'Lock' AND query LIKE $1 AND query LIKE $2", ["%unnest($1::text[], $2::text[], $3::text[])%", `%"${b.schema}".jobs%`], completing);
      // ...and it now wants the first: a cycle. The completion waited first, so its deadlock check
      // (after deadlock_timeout) finds the cycle and rolls it back (40P01); this one gets the row.
      await other.query(`SELECT FROM "${b.schema}".jobs WHERE id = $1 FOR UPDATE`, [jobs[0]?.id]);
      await other.query("ROLLBACK");
      assert.deepEqual(await completing, ["OK", "OK"]);
      for (const job of jobs) assert.equal((await b.getJob(job.id))?.state, "succeeded");
      // Sent again without a word, a deadlock between Offload's own statements would go unseen.
      await new Promise((resolve) => setImmediate(resolve)); // process.emitWarning emits on the next tick
      const [warning = "no warning"] = warnings.seen;
      assert.match(warning, /statement complete was chosen as a deadlock's victim/);
      assert.ok(warning.includes(`"${b.schema}"`), warning);
      assert.equal(warnings.seen.length, 1);
    } finally {
      warnings.stop();
      await other.query("ROLLBACK").catch(() => {});
      await other.end();
      await observer.end();
      await b.close();
    }
  });
});
