// A transaction that has called NOTIFY holds a lock of the whole database from its commit's start
// to its end (PostgreSQL queues notifications in commit order), WAL flush and synchronous
// replication included. Offload's own writes notify after they commit (notifier.ts), so one slow
// notifying commit, the app's or another process's, holds none of them up.
// On a private server whose commits can be made to wait for good: synchronous_standby_names names
// a standby that never connects, and the database's sessions commit `local` (no wait) unless a
// transaction asks for more.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { PostgresBackend } from "../../src/backend/postgres/postgres-backend.ts";
import { channelName } from "../../src/backend/postgres/queries.ts";
import { Offload } from "../../src/index.ts";
import { T0, newJob } from "../conformance/fixtures.ts";
import { until } from "../support/until.ts";
import { type PrivateServer, startPrivateServer } from "./postgres-server.ts";

describe("postgres: a notifying commit that does not end", () => {
  let server: PrivateServer;
  before(async () => {
    server = await startPrivateServer();
    const admin = new pg.Client({ connectionString: server.url });
    await admin.connect();
    try {
      // In this order: once the standby is named, a commit of this session would wait for it too.
      await admin.query("ALTER DATABASE postgres SET synchronous_commit = local");
      await admin.query("CREATE TABLE orders (id serial PRIMARY KEY)");
      await admin.query("ALTER SYSTEM SET synchronous_standby_names = 'nobody'");
      await admin.query("SELECT pg_reload_conf()");
      // Read by each session between statements, once the server has taken the signal.
      await until(async () => (await admin.query("SHOW synchronous_standby_names")).rows[0]?.synchronous_standby_names === "nobody", "the standby named", 20);
    } finally {
      await admin.end();
    }
  });
  after(() => server?.stop());

  it("holds up none of Offload's writes: a job is enqueued, claimed, reports progress and succeeds meanwhile", { timeout: 30_000 }, async () => {
    const app = new pg.Client({ connectionString: server.url });
    const observer = new pg.Client({ connectionString: server.url });
    await app.connect();
    await observer.connect();
    const offload = new Offload({ backend: `${server.url}?schema=held` });
    try {
      const task = offload.task({ name: "report", run: async (n: number, ctx) => {
        await ctx.progress(0.5, "half way");
        return n * 2;
      } });
      await offload.backend(); // migrated before the lock is held
      // The app's transaction writes a row and notifies, and its commit waits for a standby that
      // never comes, holding the notify lock until it is cancelled (a transaction that writes
      // nothing has no commit to wait for).
      const { appPid, committing } = await commitHeldAfterNotify(app, observer);

      const worker = offload.worker({ concurrency: 2 });
      await worker.start();
      const job = await task.enqueue(21);
      assert.equal(await job.result({ timeout: "20s" }), 42);
      assert.equal((await job.get()).progress, 0.5);
      await worker.stop();

      // Offload's own NOTIFYs wait for the lock meanwhile (a hint, sent once it is free).
      await observer.query("SELECT pg_cancel_backend($1)", [appPid]);
      await committing.catch(() => {}); // committed locally; the wait for the standby is what was cancelled
    } finally {
      await offload.close();
      await app.end().catch(() => {});
      await observer.end();
    }
  });
  it("an enqueue's NOTIFY whose session dies on its way is sent again: the enqueue had committed", { timeout: 30_000 }, async () => {
    const [app, observer, listening] = [server.url, server.url, server.url].map((connectionString) => new pg.Client({ connectionString })) as [pg.Client, pg.Client, pg.Client];
    await Promise.all([app.connect(), observer.connect(), listening.connect()]);
    const backend = await PostgresBackend.open({ url: server.url, schema: "resent" });
    try {
      await listening.query(`LISTEN "${channelName("resent")}"`);
      const heard = new Promise<boolean>((resolve) => {
        listening.once("notification", () => resolve(true));
        setTimeout(() => resolve(false), 10_000).unref();
      });
      // The app's notifying commit waits for the standby: Offload's NOTIFY, sent after the
      // enqueue committed, waits for the lock, and its server process is ended meanwhile (a
      // restart, an administrator, a pooler's server session closed: its connection is gone).
      const { appPid, committing } = await commitHeldAfterNotify(app, observer);
      await backend.enqueue({ jobs: [newJob()], now: T0 });
      const notifying = "pid <> pg_backend_pid() AND wait_event_type = 'Lock' AND query LIKE '%pg_notify%'";
      await until(async () => (await observer.query(`SELECT 1 FROM pg_stat_activity WHERE ${notifying}`)).rowCount === 1, "Offload's NOTIFY waits for the lock", 20);
      await observer.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE ${notifying}`);
      await until(async () => (await observer.query(`SELECT 1 FROM pg_stat_activity WHERE ${notifying}`)).rowCount === 0, "its server process ended", 20);
      await observer.query("SELECT pg_cancel_backend($1)", [appPid]);
      await committing.catch(() => {}); // committed locally; the wait for the standby is what was cancelled
      assert.ok(await heard, "the enqueue's job is there to claim, and no other process heard so");
    } finally {
      await backend.close();
      await Promise.all([app, observer, listening].map((client) => client.end().catch(() => {})));
    }
  });
});

/**
 * The app's transaction writes a row and notifies, and its COMMIT waits for a standby that never
 * comes, holding the notify lock until it is cancelled (pg_cancel_backend of `appPid`). Resolves
 * once `observer` sees it wait; `committing` is that COMMIT.
 */
async function commitHeldAfterNotify(app: pg.Client, observer: pg.Client): Promise<{ appPid: number; committing: Promise<unknown> }> {
  const appPid = Number((await app.query("SELECT pg_backend_pid() AS pid")).rows[0]?.pid);
  await app.query("BEGIN");
  await app.query("SET LOCAL synchronous_commit = on");
  await app.query("INSERT INTO orders DEFAULT VALUES");
  await app.query("SELECT pg_notify('elsewhere', 'x')");
  const committing = app.query("COMMIT");
  await until(async () => (await observer.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND wait_event = 'SyncRep'", [appPid])).rowCount === 1, "the app's commit waits for its standby", 20);
  return { appPid, committing };
}
