// A failure or cancellation acknowledgement sent again (its first reply was lost) must be answered
// as the first was even when it reaches the server while the first one is still committing: the
// repeat waits for the row, and must judge it by the row it then sees, not by its older snapshot.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import pg from "pg";
import type { Backend, NewJob } from "../../src/backend/backend.ts";
import type { ClaimedJob } from "../../src/core/job.ts";
import { loadQueries } from "../../src/backend/postgres/queries.ts";
import { LEASE, T0, attemptError, newJob } from "../conformance/fixtures.ts";
import { POSTGRES_URL, openIsolated, untilSessionWaits } from "./postgres-helpers.ts";

/** Runs `first` uncommitted on its own connection, starts `repeat`, commits once it waits. */
async function repeatWhileFirstCommits<T>(first: (c: pg.Client) => Promise<unknown>, repeat: () => Promise<T>, marker: string): Promise<T> {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  const observer = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  await observer.connect();
  try {
    await client.query("BEGIN");
    await first(client);
    const pending = repeat();
    await untilSessionWaits(observer, "wait_event_type = 'Lock' AND query LIKE $1", [`%${marker}%`], pending);
    await client.query("COMMIT");
    return await pending;
  } finally {
    await client.end();
    await observer.end();
  }
}

/** One job, enqueued and claimed at T0. */
async function enqueuedAndClaimed(b: Backend): Promise<{ job: NewJob; claimed: ClaimedJob }> {
  const job = newJob();
  await b.enqueue({ jobs: [job], now: T0 });
  const [claimed] = await b.claim({ queues: ["q"], limit: 1, worker: "w", leaseMs: LEASE, now: T0 });
  assert.ok(claimed);
  return { job, claimed };
}

describe("postgres: repeated failures and cancellation acknowledgements", () => {
  it("a repeated failure that waits on the first one's commit is answered RETRYING, and writes nothing", async () => {
    const b = await openIsolated();
    try {
      const { job, claimed } = await enqueuedAndClaimed(b);
      const sql = loadQueries(b.schema)["fail"];
      const status = await repeatWhileFirstCommits(
        (c) => c.query(sql, [job.id, claimed.token, JSON.stringify(attemptError(1, T0 + 1)), T0 + 100, T0 + 1]),
        () => b.fail({ id: job.id, token: claimed.token, error: attemptError(1, T0 + 2, "again"), retryAt: T0 + 200, now: T0 + 2 }),
        "'active', 'retrying', 'failed'",
      );
      assert.equal(status, "RETRYING");
      const stored = await b.getJob(job.id);
      assert.deepEqual(stored?.errors.map((e) => e.message), ["boom"]);
      assert.equal(stored?.runAt, T0 + 100);
      const states = (await b.readEvents({ jobId: job.id, afterId: 0, limit: 10 })).map((e) => e.data["state"]);
      assert.deepEqual(states, ["queued", "active", "retrying"]);
    } finally {
      await b.close();
    }
  });

  it("a repeated cancellation acknowledgement that waits on the first one's commit is OK, and writes nothing", async () => {
    const b = await openIsolated();
    try {
      const { job, claimed } = await enqueuedAndClaimed(b);
      assert.equal(await b.cancel(job.id, T0 + 1), "CANCEL_REQUESTED");
      const sql = loadQueries(b.schema)["acknowledge-cancel"];
      const status = await repeatWhileFirstCommits(
        (c) => c.query(sql, [job.id, claimed.token, T0 + 2]),
        () => b.acknowledgeCancel({ id: job.id, token: claimed.token }, T0 + 3),
        "'active', 'cancelled'",
      );
      assert.equal(status, "OK");
      const stored = await b.getJob(job.id);
      assert.equal(stored?.finishedAt, T0 + 2);
      const states = (await b.readEvents({ jobId: job.id, afterId: 0, limit: 10 })).map((e) => e.data["state"]);
      assert.deepEqual(states, ["queued", "active", "cancelled"]);
    } finally {
      await b.close();
    }
  });
});
