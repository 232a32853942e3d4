// The LISTEN connection's notifications: every writing statement notifies with its session's
// origin, and " quiet" when it brings nothing to claim. A backend skips its own (it announced its
// writes directly), and a worker's claim loop skips quiet ones: woken by its own claims and
// completions, a worker claimed again for nothing two or three times per job.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import pg from "pg";
import { Listener } from "../../src/backend/postgres/listener.ts";
import type { PostgresBackend, PostgresOptions } from "../../src/backend/postgres/postgres-backend.ts";
import { channelName } from "../../src/backend/postgres/queries.ts";
import { T0, newJob } from "../conformance/fixtures.ts";
import { POSTGRES_URL, connectedPair, holdEventInserts, newWorkSignals, openIsolated, untilSessionWaits } from "./postgres-helpers.ts";

describe("postgres: change notifications", () => {
  it("a claim over one queue notifies as quiet, a full one over several as work: it locked candidates it let go, which other claims skipped; a short one let none go", async () => {
    const b = await openIsolated();
    const listening = new pg.Client({ connectionString: POSTGRES_URL });
    await listening.connect();
    try {
      await listening.query(`LISTEN "${channelName(b.schema)}"`);
      const payloads: string[] = [];
      let heard = (): void => {};
      listening.on("notification", (message) => {
        payloads.push(message.payload ?? "");
        heard();
      });
      let read = 0; // payloads taken so far: one may arrive before it is asked for
      const next = async (): Promise<string> => {
        while (payloads.length <= read) await new Promise<void>((resolve) => (heard = resolve));
        return payloads[read++] ?? "";
      };
      await b.enqueue({ jobs: [newJob({ queue: "a" }), newJob({ queue: "a" }), newJob({ queue: "b" })], now: T0 });
      const enqueued = await next();
      const [origin] = enqueued.split(" ");
      assert.ok(origin !== undefined && origin !== "", "the enqueue names its origin");
      assert.equal(enqueued, origin, "an enqueue brings work");
      await b.claim({ queues: ["a"], limit: 1, worker: "w", leaseMs: 10_000, now: T0 });
      assert.equal(await next(), `${origin} quiet`);
      await b.claim({ queues: ["a", "b"], limit: 1, worker: "w", leaseMs: 10_000, now: T0 });
      assert.equal(await next(), origin);
      assert.equal((await b.claim({ queues: ["a", "b"], limit: 5, worker: "w", leaseMs: 10_000, now: T0 })).length, 1);
      assert.equal(await next(), `${origin} quiet`);
    } finally {
      await listening.end();
      await b.close();
    }
  });

  it("a full claim over several queues tells this process's claim loops too: another claim here that skipped the candidates it let go came back short", { timeout: 30_000 }, async () => {
    // No safety poll in this test's time.
    await withAdmin({ pollMs: 600_000 }, async (b, admin, observer) => {
      // Two queues, no more than the claims' limit: each claim locks up to its limit of candidates
      // in every queue (over more queues than its limit, it looks at the best queues only).
      await b.enqueue({ jobs: ["a", "a", "b", "b"].map((queue) => newJob({ queue })), now: T0 });
      // A claim's state events wait for an advisory lock the test holds: the claim has locked its
      // candidates, two in each queue, and holds them until the test lets it go on.
      await holdEventInserts(admin, b.schema, 4242);
      await admin.query("SELECT pg_advisory_lock(4242)");
      const work = await newWorkSignals(b);
      const first = b.claim({ queues: ["a", "b"], limit: 2, worker: "w1", leaseMs: 60_000, now: T0 });
      await untilSessionWaits(observer, "wait_event = 'advisory' AND query LIKE $1", ["%CROSS JOIN LATERAL%"], first);
      assert.deepEqual(await b.claim({ queues: ["a", "b"], limit: 2, worker: "w2", leaseMs: 60_000, now: T0 }), [], "every job is locked by the first claim");
      await admin.query("SELECT pg_advisory_unlock(4242)");
      assert.equal((await first).length, 2);
      await new Promise<void>((resolve) => setImmediate(resolve));
      assert.equal(work(), 1, "the jobs the first claim let go are there to claim, and the worker whose claim skipped them hears so");
    });
  });

  it("a claim stopped on the server after its reply timeout tells every process to look again", { timeout: 30_000 }, async () => {
    await withAdmin({}, async (b, admin, listening) => {
        await listening.query(`LISTEN "${channelName(b.schema)}"`);
        const payloads: string[] = [];
        listening.on("notification", (message) => payloads.push(message.payload ?? ""));
      // The enqueue's own notification (its origin: new work) comes once it has committed.
      const heard = new Promise((resolve) => listening.once("notification", resolve));
      await b.enqueue({ jobs: [newJob({ queue: "q" })], now: T0 });
      await heard;
      assert.equal(payloads.length, 1);
      assert.match(payloads[0] ?? "", /^[0-9a-f]+$/);
      payloads.length = 0;
      await admin.query("BEGIN");
      await admin.query(`LOCK TABLE "${b.schema}".events IN SHARE MODE`);
      await assert.rejects(b.claim({ queues: ["q"], limit: 1, worker: "w", leaseMs: 3_000, now: T0 }), /Query read timeout/, "it took nothing: no answer");
      await admin.query("COMMIT");
      // A statement on the listening connection returns after every notification that came before it.
      await listening.query("SELECT 1");
      assert.deepEqual(payloads, [""], "one notification with no origin: everyone looks again, this process too");
    });
  });

  it("an enqueue's NOTIFY does not wait behind the statements queued for the pool meanwhile", { timeout: 30_000 }, async () => {
    // One pooled connection: the first enqueue runs, the second waits for the pool. The second is
    // held mid-statement (an advisory lock its event insert waits on), as a keyed enqueue waits
    // behind an app's open transaction, or as a write waits its turn behind a thousand others.
    const held = newJob({ queue: "q" });
    await withAdmin({ poolSize: 1 }, async (b, admin, listening) => {
        await listening.query(`LISTEN "${channelName(b.schema)}"`);
        await holdEventInserts(admin, b.schema, 4343, { when: `NEW.job_id = '${held.id}'` });
      await admin.query("SELECT pg_advisory_lock(4343)");
      // Listened for from before the first enqueue commits; a bound, so that a NOTIFY that never
      // comes fails the test instead of hanging it.
      const heard = new Promise<boolean>((resolve) => {
        listening.once("notification", () => resolve(true));
        setTimeout(() => resolve(false), 10_000).unref();
    });
    const first = b.enqueue({ jobs: [newJob({ queue: "q" })], now: T0 });
    const second = b.enqueue({ jobs: [held], now: T0 });
    await first; // committed: the pool's one connection went on to the second, which waits
    await untilSessionWaits(listening, "wait_event = 'advisory'", [], second);
    // The first enqueue's job is there to claim, and other processes hear so now, not once the
    // statements queued before its NOTIFY are done (here: not until the lock is let go).
    assert.ok(await heard, "no NOTIFY while the pool's connection was taken");
    await admin.query("SELECT pg_advisory_unlock(4343)");
    await second;
    });
  });

  it("close() lets the enqueues on their way and queued for the pool finish, and tells other processes of them", { timeout: 30_000 }, async () => {
    const held = newJob({ queue: "q" });
    await withAdmin({ poolSize: 1 }, async (b, admin, listening) => {
        await listening.query(`LISTEN "${channelName(b.schema)}"`);
        let heard = 0;
      let onHeard = (): void => {};
      listening.on("notification", () => {
        heard++;
        onHeard();
    });
    const next = (): Promise<void> => new Promise((resolve) => (onHeard = resolve));
    const first = next();
    await b.enqueue({ jobs: [newJob({ queue: "q" })], now: T0 });
    await first; // the first enqueue's NOTIFY: nothing else of it is on its way
    await holdEventInserts(admin, b.schema, 4444, { when: `NEW.job_id = '${held.id}'` });
    await admin.query("SELECT pg_advisory_lock(4444)");
    const second = b.enqueue({ jobs: [held], now: T0 });
    await untilSessionWaits(admin, "wait_event = 'advisory'", [], second);
    const third = b.enqueue({ jobs: [newJob({ queue: "q" })], now: T0 }); // queued for the pool's one connection
    const heardBefore = heard;
    const closing = b.close();
    await admin.query("SELECT pg_advisory_unlock(4444)");
    // Bounded: on the pool's end, a statement queued for a connection was never answered.
    const settled = await Promise.race([
      Promise.allSettled([second, third, closing]).then((results) => results.map((r) => r.status)),
      new Promise<string>((resolve) => setTimeout(() => resolve("not settled within 10 s"), 10_000).unref()),
    ]);
    assert.deepEqual(settled, ["fulfilled", "fulfilled", "fulfilled"]);
    await listening.query("SELECT 1"); // every notification sent before this one's answer is in
    assert.ok(heard > heardBefore, "both jobs committed while closing, and no other process heard of them");
    });
  });

  it("the listener skips notifications from its own origin, and tells new work from quiet changes", async () => {
    const channel = `offload_listener_test_${process.pid}`;
    const listener = new Listener({ connectionString: POSTGRES_URL }, channel, 60_000, () => {}, "mine");
    const notifier = new pg.Client({ connectionString: POSTGRES_URL });
    await notifier.connect();
    try {
      listener.subscribe(() => {});
      await listener.ready();
      const calls: boolean[] = [];
      let wake = (): void => {};
      // Recorded where each notification is handled, before calls are coalesced for listeners.
      listener.announce = (newWork = true) => {
        calls.push(newWork);
        wake();
      };
      const announced = (): Promise<void> => new Promise((resolve) => (wake = resolve));
      // Delivered in commit order on the one LISTEN connection, each handled as it is read.
      let next = announced();
      await notifier.query("BEGIN");
      await notifier.query(
        "SELECT pg_notify($1, 'mine'), pg_notify($1, 'mine quiet'), pg_notify($1, 'theirs'), pg_notify($1, 'theirs quiet'), pg_notify($1, ''), pg_notify($1, ' quiet')",
        [channel],
      );
      await notifier.query("COMMIT");
      await next;
      next = announced();
      await notifier.query("SELECT pg_notify($1, 'last')", [channel]);
      await next;
      // 'theirs', 'theirs quiet', '' (the app's own transaction, or an older process: may be
      // anything), ' quiet', and 'last'; nothing of 'mine'.
      assert.deepEqual(calls, [true, false, true, false, true]);
    } finally {
      await notifier.end();
      await listener.close();
    }
  });
});

/**
 * A backend in a fresh schema and two connections of the test's own (an admin that may hold locks
 * or a transaction, and one that listens or observes), all ended after `body`, whatever it left.
 */
async function withAdmin(options: Partial<PostgresOptions>, body: (b: PostgresBackend, admin: pg.Client, other: pg.Client) => Promise<void>): Promise<void> {
  const b = await openIsolated(options);
  const [admin, other] = await connectedPair();
  try {
    await body(b, admin, other);
  } finally {
    await admin.query("ROLLBACK").catch(() => {});
    await admin.query("SELECT pg_advisory_unlock_all()").catch(() => {});
    await admin.end();
    await other.end();
    await b.close();
  }
}
