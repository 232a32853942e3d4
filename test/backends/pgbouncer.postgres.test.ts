// Offload behind PgBouncer in transaction mode (what Supabase's port 6543, Neon's -pooler hosts
// and most PgBouncer set-ups are): each transaction may run on any server session, so no named
// prepared statements, no session settings and no LISTEN through it (`?pooler=transaction`,
// docs/postgres.md). A private pgbouncer with fewer server sessions than clients, in front of the
// shared server, so that clients do share them.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { LOCK_NAMESPACE } from "../../src/backend/postgres/migrate.ts";
import { PostgresBackend } from "../../src/backend/postgres/postgres-backend.ts";
import { channelName, loadMigrations } from "../../src/backend/postgres/queries.ts";
import { Offload } from "../../src/index.ts";
import { defineBackendSuite } from "../conformance/suite.ts";
import { T0, newJob } from "../conformance/fixtures.ts";
import { type PgBouncer, startPgBouncer } from "./pgbouncer.ts";
import { POSTGRES_URL, assertStalledClaimStopped, dropSchema, openIsolated, uniqueSchema, untilSessionWaits, withClient } from "./postgres-helpers.ts";
import { startPrivateServer } from "./postgres-server.ts";
import { warningsOf } from "../support/warnings.ts";

/** Every migration version this code knows, in order, and the newest (the schema name does not matter). */
const ALL_VERSIONS = loadMigrations("offload").map((m) => m.version);
const LATEST = ALL_VERSIONS.at(-1) ?? 0;

let shared: PgBouncer | undefined;
let single: PgBouncer | undefined;
before(async () => {
  shared = await startPgBouncer(POSTGRES_URL, { mode: "transaction", poolSize: 4 });
  // One server session for every client: whatever a client leaves on it, the next one meets.
  single = await startPgBouncer(POSTGRES_URL, { mode: "transaction", poolSize: 1 });
});
after(async () => {
  await Promise.all([shared?.stop(), single?.stop()]);
});

function pooled(bouncer: PgBouncer | undefined, params = ""): string {
  if (!bouncer) throw new Error("pgbouncer not started");
  return `${bouncer.url}?pooler=transaction${params}`;
}

const direct = `&listenUrl=${encodeURIComponent(POSTGRES_URL)}`;

defineBackendSuite("postgres behind PgBouncer (transaction pooling, LISTEN on a direct connection)", () =>
  openIsolated({ url: pooled(shared, direct) }));

describe("postgres behind PgBouncer (transaction pooling)", () => {
  it("hot statements leave no session setting, origin or prepared statement on the server session for the next client", async () => {
    const b = await openIsolated({ url: pooled(single) });
    try {
      await b.enqueue({ jobs: [newJob({ queue: "q" }), newJob({ queue: "q", key: "k" })], now: T0 });
      const [first, second] = await b.claim({ queues: ["q"], limit: 2, worker: "w", leaseMs: 10_000, now: T0 });
      assert.ok(first && second);
      const held = await b.heartbeat({ worker: "w", leases: [{ id: second.job.id, token: second.token }], leaseMs: 10_000, now: T0 });
      assert.deepEqual(held.lost, []);
      assert.deepEqual(await b.complete([first, second].map((c) => ({ id: c.job.id, token: c.token, resultJson: "1" })), T0), ["OK", "OK"]);
      assert.equal((await b.getJob(first.job.id))?.state, "succeeded");
      // The same and only server session, now lent to another client.
      const seen = await withClient(async (client) => (await client.query<{ mode: string; seqscan: string; origin: string | null; prepared: string }>(
        `SELECT current_setting('plan_cache_mode') AS mode, current_setting('enable_seqscan') AS seqscan,
                current_setting('offload_notify.origin', true) AS origin, (SELECT count(*) FROM pg_prepared_statements)::text AS prepared`,
      )).rows[0], single?.url);
      assert.deepEqual(seen, { mode: "auto", seqscan: "on", origin: null, prepared: "0" });
    } finally {
      await b.close();
    }
  });

  it("processes that start together through the pooler migrate the schema once, and leave no migration lock behind", async () => {
    const schema = uniqueSchema("pgbm");
    const opened: PostgresBackend[] = [];
    try {
      const results = await Promise.allSettled([1, 2, 3, 4].map(async () => {
        const backend = await PostgresBackend.open({ url: pooled(shared), schema });
        opened.push(backend);
        return backend;
      }));
      assert.deepEqual(results.map((r) => (r.status === "fulfilled" ? "opened" : String(r.reason))), ["opened", "opened", "opened", "opened"]);
      const state = await withClient(async (client) => {
        const versions = await client.query<{ version: number }>(`SELECT version FROM "${schema}".migrations ORDER BY version`);
        // A two-key advisory lock: classid and objid are the keys, objsubid 2.
        const locks = await client.query<{ held: string }>(
          "SELECT count(*)::text AS held FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 AND classid = $1::oid AND objid = hashtext($2)::oid",
          [LOCK_NAMESPACE, schema],
        );
        return { versions: versions.rows.map((r) => r.version), held: locks.rows[0]?.held };
      });
      assert.deepEqual(state.versions, ALL_VERSIONS, "each migration applied once");
      assert.equal(state.held, "0", "no session of the pooler's still holds the schema's migration lock");
      // A later open (a deploy) finds the schema current, without waiting on any lock.
      const again = await PostgresBackend.open({ url: pooled(shared), schema });
      opened.push(again);
      assert.deepEqual(await again.migrate(), { from: LATEST, to: LATEST, applied: [], latest: LATEST });
    } finally {
      await Promise.all(opened.map((b) => b.close()));
      await dropSchema(schema);
    }
  });

  it("on a database whose default isolation is repeatable read, processes that waited on each other's migration lock through the pooler see the migrations it applied", { timeout: 60_000 }, async () => {
    // A database default (ALTER DATABASE … SET), which behind a transaction pooler no session
    // setting of Offload's overrides: a private server, as the shared one's settings are not ours.
    const server = await startPrivateServer();
    const bouncer = await startPgBouncer(server.url, { mode: "transaction", poolSize: 4 });
    const admin = new pg.Client({ connectionString: server.url });
    await admin.connect();
    const schema = uniqueSchema("pgbi");
    const opened: PostgresBackend[] = [];
    try {
      await admin.query("ALTER DATABASE postgres SET default_transaction_isolation = 'repeatable read'");
      // An earlier process holds the schema's migration lock (as one of a previous version does,
      // for a whole migration run): both openers wait on it inside their first migration's transaction.
      await admin.query("SELECT pg_advisory_lock($1, hashtext($2))", [LOCK_NAMESPACE, schema]);
      const opening = [1, 2].map(async () => {
        const backend = await PostgresBackend.open({ url: `${bouncer.url}?pooler=transaction`, schema });
        opened.push(backend);
        return backend;
      });
      const all = Promise.allSettled(opening);
      const waiting = "wait_event_type = 'Lock' AND wait_event = 'advisory' AND (SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'advisory') >= $1";
      await untilSessionWaits(admin, waiting, [2], all);
      await admin.query("SELECT pg_advisory_unlock($1, hashtext($2))", [LOCK_NAMESPACE, schema]);
      const results = await all;
      assert.deepEqual(results.map((r) => (r.status === "fulfilled" ? "opened" : String(r.reason))), ["opened", "opened"]);
      const versions = await admin.query<{ version: number }>(`SELECT version FROM "${schema}".migrations ORDER BY version`);
      assert.deepEqual(versions.rows.map((r) => r.version), ALL_VERSIONS, "each migration applied once");
    } finally {
      await Promise.all(opened.map((b) => b.close()));
      await admin.end();
      await bouncer.stop();
      server.stop();
    }
  });

  it("on a database whose default isolation is repeatable read, a completion rolled back by a serialization failure through the pooler is sent again, and a warning says how to set the role", { timeout: 60_000 }, async () => {
    const server = await startPrivateServer();
    const bouncer = await startPgBouncer(server.url, { mode: "transaction", poolSize: 2 });
    const [admin, observer] = [new pg.Client({ connectionString: server.url }), new pg.Client({ connectionString: server.url })];
    await Promise.all([admin.connect(), observer.connect()]);
    const warnings = warningsOf("OFFLOAD_POSTGRES_ROLLED_BACK");
    const schema = uniqueSchema("pgbs");
    let backend: PostgresBackend | undefined;
    try {
      await admin.query("ALTER DATABASE postgres SET default_transaction_isolation = 'repeatable read'");
      backend = await PostgresBackend.open({ url: `${bouncer.url}?pooler=transaction`, schema });
      const job = newJob();
      await backend.enqueue({ jobs: [job], now: T0 });
      const [claimed] = await backend.claim({ queues: ["q"], limit: 1, worker: "w", leaseMs: 10_000, now: T0 });
      assert.ok(claimed);
      // Another transaction updates the job's row; the completion's snapshot is taken before that
      // commits, so under repeatable read its update of the same row fails with 40001.
      await admin.query("BEGIN ISOLATION LEVEL READ COMMITTED");
      await admin.query(`UPDATE "${schema}".jobs SET attempt = attempt WHERE id = $1`, [job.id]);
      const completing = backend.complete([{ id: job.id, token: claimed.token, resultJson: "1" }], T0 + 1);
      await untilSessionWaits(observer, "wait_event_type = 'Lock' AND query LIKE $1", [`%"${schema}".jobs%`], completing);
      await admin.query("COMMIT");
      assert.deepEqual(await completing, ["OK"], "the resend, on a fresh snapshot, completed the job");
      assert.equal((await backend.getJob(job.id))?.state, "succeeded");
      await new Promise((resolve) => setImmediate(resolve)); // process.emitWarning emits on the next tick
      const [warning = "no warning"] = warnings.seen;
      assert.match(warning, /statement complete was rolled back by a serialization failure/);
      assert.match(warning, /ALTER ROLE <role> SET default_transaction_isolation = 'read committed'/);
    } finally {
      warnings.stop();
      await admin.query("ROLLBACK").catch(() => {});
      await backend?.close();
      await Promise.all([admin.end(), observer.end()]);
      await bouncer.stop();
      server.stop();
    }
  });

  it("with no listenUrl there is no LISTEN through the pooler, and a worker in another process finds new jobs by polling", { timeout: 30_000 }, async () => {
    const schema = uniqueSchema("pgbp");
    const url = `${pooled(shared)}&schema=${schema}&poll=200`;
    const web = new Offload({ backend: url });
    const workers = new Offload({ backend: url });
    const define = (offload: Offload) => offload.task({ name: "echo", queue: "q", run: (payload: { n: number }) => payload.n * 2 });
    const echo = define(web);
    define(workers);
    const worker = workers.worker({ queues: ["q"], concurrency: 2 });
    try {
      await worker.start();
      const backend = await workers.backend();
      assert.ok(backend instanceof PostgresBackend);
      await backend.listening(); // resolves at once: polling needs nothing to be ready
      const handles = await Promise.all([1, 2, 3].map((n) => echo.enqueue({ n })));
      const results = await Promise.all(handles.map((h) => h.result({ timeout: "20s" })));
      assert.deepEqual(results, [2, 4, 6]);
      const listeners = await withClient(async (client) => (await client.query<{ n: string }>(
        "SELECT count(*)::text AS n FROM pg_stat_activity WHERE query = $1", [`LISTEN "${channelName(schema)}"`],
      )).rows[0]?.n);
      assert.equal(listeners, "0");
    } finally {
      await worker.stop();
      await Promise.all([web.close(), workers.close()]);
      await dropSchema(schema);
    }
  });

  it("a claim given up on at its reply timeout is stopped on the server through the pooler: its job stays queued, unclaimed, and is claimed next time", { timeout: 30_000 }, async () => {
    // The process id the client knows is PgBouncer's: the claim's session is found by its text.
    await assertStalledClaimStopped(await openIsolated({ url: pooled(shared) }));
  });

  it("a misspelt pooler mode or a listenUrl that is not a postgres:// URL is refused at open", async () => {
    await assert.rejects(PostgresBackend.open({ url: `${POSTGRES_URL}?pooler=transactions` }), /pooler must be "transaction" or "session"/);
    await assert.rejects(PostgresBackend.open({ url: `${POSTGRES_URL}?pooler=transaction&listenUrl=127.0.0.1:5432` }), /listenUrl must be a postgres:\/\/ URL/);
  });
});
