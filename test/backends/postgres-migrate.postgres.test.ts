// Migrations: versioned, per schema, advisory-locked so processes starting together migrate once;
// skipped at open with ?migrate=false and run by `offload migrate`.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import pg from "pg";
import { openBackend } from "../../src/backend/open.ts";
import { PostgresBackend } from "../../src/backend/postgres/postgres-backend.ts";
import { serverVersionProblem } from "../../src/backend/postgres/migrate.ts";
import { loadMigrations, quoteIdent } from "../../src/backend/postgres/queries.ts";
import { ConfigError, Offload, SchemaNotMigratedError } from "../../src/index.ts";
import { runMigrate } from "../../src/cli/commands/migrate.ts";
import { LEASE, T0, claimOne, enqueueOne } from "../conformance/fixtures.ts";
import { POSTGRES_URL, dropSchema, openIsolated, uniqueSchema } from "./postgres-helpers.ts";

async function appliedVersions(schema: string): Promise<number[]> {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    const found = await client.query<{ ok: boolean }>("SELECT to_regclass($1) IS NOT NULL AS ok", [`"${schema}".migrations`]);
    if (!found.rows[0]?.ok) return [];
    return (await client.query<{ version: number }>(`SELECT version FROM "${schema}".migrations ORDER BY version`)).rows.map((r) => r.version);
  } finally {
    await client.end();
  }
}

/** Every version this code knows, in order. */
function allVersions(schema: string): number[] {
  return loadMigrations(schema).map((m) => m.version);
}

describe("postgres: migrations", () => {
  it("a server older than PostgreSQL 13 is refused by name before any migration runs; 13 and later are taken", () => {
    for (const [num, version] of [[110_022, "11.22"], [120_019, "12.19 (Ubuntu 12.19-1)"]] as const) {
      const problem = serverVersionProblem(num, version);
      assert.ok(problem instanceof ConfigError);
      assert.equal(problem.message, `Offload needs PostgreSQL 13 or later; this server runs ${version}`);
    }
    for (const num of [130_000, 150_020, 170_002, 180_000]) assert.equal(serverVersionProblem(num, String(num)), undefined);
    assert.equal(serverVersionProblem(Number("not a number"), "?"), undefined, "a server that does not say is taken on trust");
  });

  it("eight backends opening one fresh schema at once migrate it once", async () => {
    const schema = uniqueSchema("mig");
    try {
      const backends = await Promise.all(Array.from({ length: 8 }, () => PostgresBackend.open({ url: POSTGRES_URL, schema })));
      assert.deepEqual(await appliedVersions(schema), allVersions(schema));
      const [first] = await backends[0]!.enqueue({
        jobs: [{ id: "01890000-0000-7000-8000-000000000001", task: "t", queue: "q", payloadJson: "1", priority: 0, runAt: 0, maxAttempts: 1, key: undefined, owner: undefined }],
        now: 0,
      });
      assert.equal((await backends[7]!.getJob(first?.job.id ?? ""))?.state, "queued", "all of them see the same tables");
      await Promise.all(backends.map((b) => b.close()));
    } finally {
      await dropSchema(schema);
    }
  });

  it("?migrate=false opens without touching the schema; offload migrate creates it, then has nothing to do", async () => {
    const schema = uniqueSchema("mig");
    try {
      const backend = await openBackend(`${POSTGRES_URL}?schema=${schema}&migrate=false`);
      await backend.close();
      assert.deepEqual(await appliedVersions(schema), []);
      const migrations = loadMigrations(schema);
      const latest = migrations.at(-1)?.version ?? 0;
      assert.match(await runMigrate({ url: POSTGRES_URL, schema }), new RegExp(`applied ${migrations.map((m) => m.name).join(", ")} \\(version 0 → ${latest}\\)`));
      assert.match(await runMigrate({ url: `${POSTGRES_URL}?schema=${schema}` }), new RegExp(`up to date \\(version ${latest}\\)`));
      assert.deepEqual(await appliedVersions(schema), allVersions(schema));
    } finally {
      await dropSchema(schema);
    }
  });

  it("calls on a schema never migrated (?migrate=false) are a ConfigError that says to run offload migrate, not pg's 'relation … does not exist'", async () => {
    const schema = uniqueSchema("mig");
    const offload = new Offload({ backend: `${POSTGRES_URL}?schema=${schema}&migrate=false` });
    try {
      const task = offload.task({ name: "t", run: () => 1 });
      const notMigrated = (error: unknown): boolean =>
        error instanceof SchemaNotMigratedError && error instanceof ConfigError && error.schema === schema &&
        error.message.includes(`schema "${schema}"`) && /run `offload migrate`/.test(error.message);
      await assert.rejects(task.enqueue(1), notMigrated);
      await assert.rejects(offload.jobs.counts(), notMigrated);
      await assert.rejects(offload.jobs.list({ limit: 1 }), notMigrated);
      assert.deepEqual(await appliedVersions(schema), [], "still untouched");
    } finally {
      await offload.close();
      await dropSchema(schema);
    }
  });

  it("an enqueue with tx into a schema never migrated is a SchemaNotMigratedError too, with pg's error as its cause", async () => {
    const schema = uniqueSchema("mig");
    const offload = new Offload({ backend: `${POSTGRES_URL}?schema=${schema}&migrate=false` });
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    try {
      const task = offload.task({ name: "t", run: () => 1 });
      await client.query("BEGIN");
      await assert.rejects(task.enqueue(1, { tx: client }), (error: unknown) =>
        error instanceof SchemaNotMigratedError && error.schema === schema && error.cause instanceof Error && (error.cause as { code?: unknown }).code === "42P01");
      await client.query("ROLLBACK");
    } finally {
      await client.end();
      await offload.close();
      await dropSchema(schema);
    }
  });

  it("a handler whose enqueue meets a schema not migrated yet is retried, not failed for good, and the retry goes through once it is migrated", async () => {
    const app = uniqueSchema("mig");
    const downstream = uniqueSchema("mig");
    const offload = new Offload({ backend: `${POSTGRES_URL}?schema=${app}` });
    const other = new Offload({ backend: `${POSTGRES_URL}?schema=${downstream}&migrate=false` });
    try {
      const sink = other.task({ name: "sink", run: () => 1 });
      let migrated: Promise<unknown> = new Promise(() => {});
      const relay = offload.task({
        name: "relay",
        retry: { attempts: 2, base: "1ms", jitter: false },
        run: async (_payload, ctx) => {
          if (ctx.attempt === 2) await migrated; // the deploy's migration, between the two attempts
          return (await sink.enqueue(1)).id;
        },
      });
      const worker = offload.worker({ poll: "60s" });
      const outcomes: string[] = [];
      const settled = new Promise<string>((resolve) => {
        worker.on("job", (event) => {
          if (event.type === "started") return;
          outcomes.push(event.type);
          if (event.type === "retrying") migrated = runMigrate({ url: POSTGRES_URL, schema: downstream });
          if (event.type === "succeeded" || event.type === "failed") resolve(event.type);
        });
      });
      await worker.start();
      const job = await relay.enqueue(null);
      assert.equal(await settled, "succeeded", outcomes.join(", "));
      assert.deepEqual(outcomes, ["retrying", "succeeded"]);
      const [first] = (await job.get()).errors;
      assert.equal(first?.name, "SchemaNotMigratedError");
    } finally {
      await offload.close({ grace: 0 });
      await other.close();
      await dropSchema(app);
      await dropSchema(downstream);
    }
  });

  it("a schema at version 1 (events from triggers) upgrades with its jobs and events, and keeps writing events", async () => {
    const schema = uniqueSchema("mig");
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    try {
      const [v1] = loadMigrations(schema);
      await client.query(`CREATE SCHEMA "${schema}"`);
      await client.query(`CREATE TABLE "${schema}".migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
      await client.query(v1?.sql ?? "");
      await client.query(`INSERT INTO "${schema}".migrations (version, name) VALUES (1, $1)`, [v1?.name]);
      const id = "01890000-0000-7000-8000-000000000002";
      await client.query(`INSERT INTO "${schema}".jobs (id, task, queue, state, payload, run_at, max_attempts, created_at, updated_at)
                          VALUES ($1, 't', 'q', 'queued', '1', 0, 1, 0, 0)`, [id]);

      const backend = await PostgresBackend.open({ url: POSTGRES_URL, schema });
      assert.deepEqual(await appliedVersions(schema), allVersions(schema));
      const [claimed] = await backend.claim({ queues: ["q"], limit: 1, worker: "w", leaseMs: 1_000, now: 1 });
      assert.equal(claimed?.job.id, id);
      assert.deepEqual(await backend.complete([{ id, token: claimed?.token ?? "", resultJson: "2" }], 2), ["OK"]);
      const events = await backend.readEvents({ jobId: id, afterId: 0, limit: 10 });
      assert.deepEqual(events.map((e) => e.data["state"]), ["queued", "active", "succeeded"], "the version-1 trigger's event, then the statements' own");
      await backend.close();
    } finally {
      await client.end();
      await dropSchema(schema);
    }
  });

  it("statements prepared by a running process survive a later migration that adds a column", async () => {
    // A rolling upgrade: the new version migrates while this version's processes keep running
    // with statements prepared on their pooled connections. One connection, so the statements
    // prepared before the change are the ones used after it.
    const backend = await openIsolated({ poolSize: 1 });
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    try {
      const id = await enqueueOne(backend);
      await backend.getJob(id); // prepared
      await backend.claim({ queues: ["empty"], limit: 1, worker: "w", leaseMs: LEASE, now: T0 }); // prepared
      await client.query(`ALTER TABLE ${quoteIdent(backend.schema)}.jobs ADD COLUMN added_later integer`);
      assert.equal((await backend.getJob(id))?.state, "queued");
      const claimed = await claimOne(backend);
      assert.equal(claimed.job.id, id);
      assert.equal((await backend.getJob(id))?.state, "active");
    } finally {
      await client.end();
      await backend.close();
    }
  });
});
