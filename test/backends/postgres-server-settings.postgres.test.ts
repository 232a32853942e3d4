// Server settings that managed providers and DBAs set, and that the shared test server never has:
// each test turns one on for a private server (postgres-server.ts), with ALTER SYSTEM or a
// session default in the URL, and checks what Offload needs of it (docs/postgres.md, *Server
// settings*).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { PostgresBackend } from "../../src/backend/postgres/postgres-backend.ts";
import { Offload } from "../../src/index.ts";
import { nextEvent } from "../../src/testing/index.ts";
import { uuidv7 } from "../../src/core/ids.ts";
import { newJob } from "../conformance/fixtures.ts";
import { type PrivateServer, startPrivateServer } from "./postgres-server.ts";
import { workersSharingAQueue } from "./postgres-helpers.ts";
import { warningsOf } from "../support/warnings.ts";

let server: PrivateServer;
let admin: pg.Client;

before(async () => {
  server = await startPrivateServer();
  // The test's own session is spared what it sets for everyone else.
  const spared = "-c idle_session_timeout=0 -c statement_timeout=0 -c lock_timeout=0 -c default_transaction_read_only=off";
  admin = new pg.Client({ connectionString: server.url, options: spared });
  await admin.connect();
});

after(async () => {
  await admin.end();
  server.stop();
});

/**
 * Sets `name` server-wide for `body`, as a DBA would (ALTER SYSTEM, reload), and resets it after.
 * `value` is written as SHOW prints it, so that the test knows when new sessions have it.
 */
async function withSetting(name: string, value: string, body: () => Promise<void>): Promise<void> {
  const before = await shown(name);
  await admin.query(`ALTER SYSTEM SET ${name} = '${value}'`);
  await reloaded(name, value);
  try {
    await body();
  } finally {
    await admin.query(`ALTER SYSTEM RESET ${name}`);
    await reloaded(name, before);
  }
}

/** `name` as a new session sees it. */
async function shown(name: string): Promise<string> {
  const probe = new pg.Client({ connectionString: server.url });
  await probe.connect();
  try {
    return (await probe.query<{ value: string }>("SELECT current_setting($1) AS value", [name])).rows[0]?.value ?? "";
  } finally {
    await probe.end();
  }
}

/** Reloads the configuration, and resolves once new sessions see `name` as `value`. */
async function reloaded(name: string, value: string): Promise<void> {
  await admin.query("SELECT pg_reload_conf()");
  // The postmaster reloads on its own time: sessions made right after may still have the old value.
  for (const deadline = Date.now() + 10_000; (await shown(name)) !== value; ) {
    if (Date.now() > deadline) throw new Error(`new sessions did not get ${name} = ${value} within 10 s`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The server processes of the sessions LISTENing on Offload's channels. */
async function listenerPids(): Promise<number[]> {
  const { rows } = await admin.query<{ pid: number }>(
    "SELECT pid FROM pg_stat_activity WHERE query LIKE '%LISTEN \"offload:%' AND pid <> pg_backend_pid() ORDER BY pid",
  );
  return rows.map((r) => r.pid);
}

describe("postgres: server settings", () => {
  it("idle_session_timeout: the LISTEN session is kept, idle pooled sessions go unreported, and a new job still starts at once", { timeout: 30_000 }, async () => {
    await withSetting("idle_session_timeout", "300ms", async () => {
      const troubles: Error[] = [];
      const workerSide = await PostgresBackend.open({ url: server.url, schema: "idle_session", onConnectionError: (e) => troubles.push(e) });
      const appSide = await PostgresBackend.open({ url: server.url, schema: "idle_session", migrate: false });
      const workers = new Offload({ backend: workerSide });
      const app = new Offload({ backend: appSide });
      try {
        workers.task({ name: "t", run: (n: number) => n });
        const task = app.task({ name: "t", run: (n: number) => n });
        // A poll of a minute: only a notification can start the job within the test.
        const worker = workers.worker({ poll: "60s" });
        await worker.start();
        await workerSide.listening();
        const [listener, ...others] = await listenerPids();
        assert.ok(listener !== undefined && others.length === 0, "the worker's process LISTENs");
        // A quiet spell: a session of the same settings is ended by the server, so every idle
        // session of ours was due to be ended too (the pool's included: their end is not trouble).
        const canary = new pg.Client({ connectionString: server.url });
        const ended = new Promise<Error>((resolve) => canary.once("error", resolve));
        await canary.connect();
        assert.match((await ended).message, /idle-session timeout/);
        await canary.end().catch(() => {});
        const started = nextEvent(worker, "started", () => true, 5_000);
        const job = await task.enqueue(1); // its pooled session was ended: the enqueue gets a new one
        assert.equal((await started).job.id, job.id);
        assert.equal(await job.result({ timeout: "5s" }), 1);
        // Every lost LISTEN session would be reported; a pooled one the server ended while idle is not.
        assert.deepEqual(troubles.map((e) => e.message), [], "nothing reported");
        assert.ok((await listenerPids()).includes(listener), "the same LISTEN session, never ended and made again");
        await worker.stop();
      } finally {
        await workers.close();
        await app.close();
        await workerSide.close();
        await appSide.close();
      }
    });
  });

  it("statement_timeout: a burst of due jobs is staged, expired leases rescued, and finished jobs pruned, in steps the timeout allows", { timeout: 60_000 }, async () => {
    const schema = "statement_timeout";
    const setup = await PostgresBackend.open({ url: server.url, schema });
    const now = Date.now();
    const burst = 20_000; // staged in one statement, ~0.4 s here: four times the timeout below
    try {
      for (let i = 0; i < burst; i += 5_000) {
        await setup.enqueue({ jobs: Array.from({ length: 5_000 }, () => newJob({ id: uuidv7(), runAt: now + 1_000 })), now });
      }
    } finally {
      await setup.close();
    }
    const states = async (): Promise<Record<string, number>> => {
      const { rows } = await admin.query<{ state: string; n: number }>(`SELECT state, count(*)::int AS n FROM ${schema}.jobs GROUP BY state`);
      return Object.fromEntries(rows.map((r) => [r.state, r.n]));
    };
    await withSetting("statement_timeout", "100ms", async () => {
      const backend = await PostgresBackend.open({ url: server.url, schema });
      try {
        // The claim that meets the burst stages all of it before it claims (in claim order).
        const claimed = await backend.claim({ queues: ["q"], limit: 10, worker: "w", leaseMs: 30_000, now: now + 2_000 });
        assert.equal(claimed.length, 10);
        assert.deepEqual(await states(), { queued: burst - 10, active: 10 });
        // A fleet of workers that died holding every job: their leases run out together, and
        // one rescue statement for all of them was cancelled on every sweep (jobs active for good).
        await admin.query(`UPDATE ${schema}.jobs SET state = 'active', attempt = 1, lease_token = 'gone.' || id, lease_until = $1, worker = 'gone'`, [now + 2_500]);
        const rescued = await backend.rescueExpired(now + 2_600);
        assert.equal(rescued.requeued.length, burst);
        assert.deepEqual(await states(), { queued: burst });
        await admin.query(`UPDATE ${schema}.jobs SET state = 'succeeded', finished_at = $1, lease_token = NULL, lease_until = NULL`, [now + 2_000]);
        // As autovacuum would have by the time they are past retention: without statistics the
        // planner scans every event for each step's few jobs.
        await admin.query(`ANALYZE ${schema}.jobs, ${schema}.events`);
        assert.equal(await backend.prune({ succeeded: 0, failed: 0, cancelled: 0 }, now + 3_000), burst);
        assert.deepEqual(await states(), {});
      } finally {
        await backend.close();
      }
    });
  });

  it("default_transaction_isolation serializable (set for the app's transactions): workers sharing a queue report no serialization failure, and each job runs once", { timeout: 60_000 }, async () => {
    const schema = "iso_serializable";
    await withSetting("default_transaction_isolation", "serializable", async () => {
      const warnings = warningsOf("OFFLOAD_POSTGRES_ROLLED_BACK");
      try {
        const { runs, errors } = await workersSharingAQueue(`${server.url}?schema=${schema}`, 1_500);
        assert.deepEqual(runs.filter((n) => n !== 1), [], "each job ran once");
        // Under serializable, two workers' claims over the same queue failed each other
        // ("could not serialize access due to read/write dependencies"): 14-57 errors per 2,000
        // jobs before Offload's sessions ran at read committed.
        assert.deepEqual(errors, []);
        assert.deepEqual(warnings.seen, [], "no statement was rolled back and sent again either");
      } finally {
        warnings.stop();
        await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      }
    });
  });
});
