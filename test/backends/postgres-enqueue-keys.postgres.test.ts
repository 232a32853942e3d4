// Idempotency keys under concurrency on PostgreSQL: an enqueue whose key another transaction takes
// while the enqueue's statement runs. That statement skips its job (ON CONFLICT) without seeing
// the holder in its snapshot, so the adapter looks the holder up again; the holder may even have
// finished by then, freeing the key.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import pg from "pg";
import { T0, newJob } from "../conformance/fixtures.ts";
import { POSTGRES_URL, openIsolated, untilSessionWaits } from "./postgres-helpers.ts";

describe("postgres: idempotency keys taken during an enqueue", () => {
  it("a holder that commits during the enqueue and finishes before the lookup is still the answer", async () => {
    const backend = await openIsolated();
    const holderTx = new pg.Client({ connectionString: POSTGRES_URL });
    const ours = new pg.Client({ connectionString: POSTGRES_URL });
    const observer = new pg.Client({ connectionString: POSTGRES_URL });
    await Promise.all([holderTx.connect(), ours.connect(), observer.connect()]);
    try {
      const holder = newJob({ key: "invoice-7" });
      await holderTx.query("BEGIN");
      await backend.enqueue({ jobs: [holder], now: T0, tx: holderTx });

      // Our enqueue runs on a connection of its own (autocommit): the statements it sends can be
      // watched, and the holder finished between them.
      const statements: string[] = [];
      const watched = {
        query: async (text: string, values?: unknown[]): Promise<unknown> => {
          statements.push(text);
          if (statements.length === 2) await backend.cancel(holder.id, T0); // finished: the key is free again
          return ours.query(text, values);
        },
      };
      const ourPid = (await ours.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]?.pid;
      const enqueued = backend.enqueue({ jobs: [newJob({ key: "invoice-7" })], now: T0, tx: watched });
      // Our INSERT waits on the holder's uncommitted row (the unique index on the key).
      await untilSessionWaits(observer, "wait_event_type = 'Lock' AND pid = $1", [ourPid], enqueued);
      await holderTx.query("COMMIT");

      const [result] = await enqueued;
      assert.equal(result?.created, false, "no second job for the key");
      assert.equal(result?.job.id, holder.id, "the job that held the key during this enqueue");
      assert.equal(result?.job.state, "cancelled");
      assert.ok(statements.length >= 2, "the holder was looked up after the statement");
      assert.equal((await backend.listJobs({ limit: 10 })).length, 1);
    } finally {
      await Promise.all([holderTx.end(), ours.end(), observer.end()]);
      await backend.close();
    }
  });

  it("two batches taking shared keys in opposite orders both finish: keys are taken in one order, never in a cycle", async () => {
    const backend = await openIsolated();
    const [blocker, first, second, observer] = Array.from({ length: 4 }, () => new pg.Client({ connectionString: POSTGRES_URL }));
    const clients = [blocker, first, second, observer].filter((c) => c !== undefined);
    await Promise.all(clients.map((c) => c.connect()));
    try {
      const pid = async (c: pg.Client): Promise<number | undefined> => (await c.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]?.pid;
      // The blocker holds key x, uncommitted. In batch order, the first batch would take a, then
      // wait for x; the second would take b, then wait for a; and once x is free, the first would
      // wait for b: a deadlock, one of them failing with 40P01.
      await blocker?.query("BEGIN");
      await backend.enqueue({ jobs: [newJob({ key: "x" })], now: T0, tx: blocker });
      await first?.query("BEGIN");
      await second?.query("BEGIN");
      const [firstPid, secondPid] = [await pid(first as pg.Client), await pid(second as pg.Client)];
      const one = backend.enqueue({ jobs: [newJob({ key: "a" }), newJob({ key: "x" }), newJob({ key: "b" })], now: T0, tx: first });
      await untilSessionWaits(observer as pg.Client, "wait_event_type = 'Lock' AND pid = $1", [firstPid], one);
      const two = backend.enqueue({ jobs: [newJob({ key: "b" }), newJob({ key: "a" })], now: T0, tx: second });
      await untilSessionWaits(observer as pg.Client, "wait_event_type = 'Lock' AND pid = $1", [secondPid], two);
      await blocker?.query("ROLLBACK");
      assert.deepEqual((await one).map((r) => r.created), [true, true, true]);
      await first?.query("COMMIT");
      const results = await two; // it waited for the first batch's keys, which are now committed
      assert.deepEqual(results.map((r) => r.created), [false, false], "both keys are held by the first batch's jobs");
      await second?.query("COMMIT");
      assert.equal((await backend.listJobs({ limit: 10 })).length, 3);
    } finally {
      await Promise.all(clients.map((c) => c.end()));
      await backend.close();
    }
  });
});
