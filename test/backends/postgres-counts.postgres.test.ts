// counts() on PostgreSQL: unfinished jobs are counted through their partial indexes, finished
// jobs through finished_counts (migration 003), so `offload queues` and the relay's queue
// discovery do not scan every retained job. These tests check that the plan reads no finished
// rows, that sharded counters stay exact while several connections finish, retry and prune jobs
// at once, and that migrating a schema which already holds finished jobs counts them.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import pg from "pg";
import type { Backend } from "../../src/backend/backend.ts";
import { PostgresBackend } from "../../src/backend/postgres/postgres-backend.ts";
import { loadMigrations, loadQueries, quoteIdent } from "../../src/backend/postgres/queries.ts";
import { LEASE, T0, newJob } from "../conformance/fixtures.ts";
import { type Tally, counted, finishMany } from "./counts-tally.ts";
import { POSTGRES_URL, dropSchema, openIsolated, uniqueSchema, withClient } from "./postgres-helpers.ts";

/** The truth, from a scan of the jobs table. */
async function scanned(client: pg.Client, schema: string): Promise<Tally> {
  const { rows } = await client.query<{ queue: string; state: string; n: number }>(
    `SELECT queue, state, count(*)::int AS n FROM ${quoteIdent(schema)}.jobs GROUP BY queue, state`);
  return Object.fromEntries(rows.map((r) => [`${r.queue}/${r.state}`, r.n]));
}


/** Enqueues `n` jobs of `queue` in batches and runs them all to success. */
interface PlanNode { readonly "Node Type": string; readonly "Relation Name"?: string; readonly Plans?: readonly PlanNode[] }

function nodes(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodes)];
}

describe("postgres: counts", () => {
  it("with 20,000 finished jobs retained, counts() reads no finished row and is exact", async () => {
    const backend = await openIsolated({ schema: uniqueSchema("cnt") });
    try {
      await finishMany(backend, "done", 20_000, T0);
      await backend.enqueue({ jobs: [newJob({ queue: "done" }), newJob({ queue: "live" }), newJob({ queue: "live", runAt: T0 + 60_000 })], now: T0 });
      const schema = backend.schema;
      await withClient(async (client) => {
        await client.query(`ANALYZE ${quoteIdent(schema)}.jobs`);
        const [explained] = (await client.query<{ "QUERY PLAN": [{ Plan: PlanNode }] }>(`EXPLAIN (FORMAT JSON) ${loadQueries(schema).counts}`)).rows;
        const plan = explained?.["QUERY PLAN"][0].Plan;
        assert.ok(plan, "a plan");
        const scans = nodes(plan).filter((n) => n["Relation Name"] === "jobs").map((n) => n["Node Type"]);
        assert.equal(scans.length, 3, `one read of jobs per unfinished branch: ${scans.join(", ")}`);
        assert.ok(!scans.includes("Seq Scan"), `no sequential scan of jobs: ${scans.join(", ")}`);
        assert.deepEqual(await counted(backend), await scanned(client, schema));
      });
      assert.deepEqual(await counted(backend), { "done/succeeded": 20_000, "done/queued": 1, "live/queued": 1, "live/scheduled": 1 });
    } finally {
      await backend.close();
    }
  });

  it("four connections finishing, failing, cancelling, retrying and pruning at once keep the counts exact", async () => {
    const schema = uniqueSchema("cnt");
    const backends = await Promise.all(Array.from({ length: 4 }, () => PostgresBackend.open({ url: POSTGRES_URL, schema, poolSize: 2 })));
    try {
      const queues = ["a", "b", "c"];
      // Each backend runs rounds over all three queues; rounds end in every final state, and some
      // jobs are retried or pruned by a backend other than the one that finished them.
      await Promise.all(backends.map(async (backend, w) => {
        for (let round = 0; round < 12; round++) {
          const now = T0 + round * 1_000;
          const jobs = Array.from({ length: 60 }, (_, i) => newJob({ queue: queues[(i + w) % 3] ?? "a", maxAttempts: 1 }));
          await backend.enqueue({ jobs, now });
          const claimed = await backend.claim({ queues, limit: 45, worker: `w${w}`, leaseMs: LEASE, now });
          const [toComplete, toFail, toCancel] = [claimed.slice(0, 25), claimed.slice(25, 35), claimed.slice(35)];
          await backend.complete(toComplete.map((c) => ({ id: c.job.id, token: c.token, resultJson: "1" })), now);
          for (const c of toFail) await backend.fail({ id: c.job.id, token: c.token, error: { attempt: 1, name: "E", message: "no", stack: undefined, worker: `w${w}`, at: now }, retryAt: undefined, now });
          for (const c of toCancel) {
            await backend.cancel(c.job.id, now);
            await backend.acknowledgeCancel({ id: c.job.id, token: c.token }, now);
          }
          const other = backends[(w + 1) % backends.length];
          const failed = toFail[0];
          if (other && failed && round % 3 === 0) await other.retry(failed.job.id, now);
          if (other && round % 4 === 3) await other.prune({ succeeded: 2_000, failed: 3_000, cancelled: 1_000 }, now);
        }
      }));
      await withClient(async (client) => assert.deepEqual(await counted(backends[0] as Backend), await scanned(client, schema)));
    } finally {
      await Promise.all(backends.map((b) => b.close()));
      await dropSchema(schema);
    }
  });

  it("queues whose jobs are all pruned leave no counter rows behind, however many connections finished them", async () => {
    // Each connection counts into its own shard, so a queue's finished jobs are spread over many
    // rows that prune, on its own connection, cannot bring to zero one by one. Queues named per
    // tenant would leave rows for every name ever used, and counts() sums them all.
    const schema = uniqueSchema("cnt");
    const backends = await Promise.all(Array.from({ length: 4 }, () => PostgresBackend.open({ url: POSTGRES_URL, schema, poolSize: 1 })));
    try {
      const queues = Array.from({ length: 30 }, (_, i) => `tenant-${i}`);
      // One connection after another: finishMany claims every job of its queue, which a
      // concurrent claim of the same queue could leave it short of.
      for (const backend of backends) {
        for (const queue of queues) await finishMany(backend, queue, 2, T0);
      }
      const [first] = backends;
      assert.ok(first);
      await first.enqueue({ jobs: [newJob({ queue: "tenant-0" })], now: T0 });
      assert.equal(await first.prune({ succeeded: 0, failed: 0, cancelled: 0 }, T0 + 1), 240);
      await withClient(async (client) => {
        const { rows } = await client.query<{ queue: string; n: string }>(`SELECT queue, n FROM ${quoteIdent(schema)}.finished_counts`);
        assert.deepEqual(rows, [], "no counter row is left for a queue with no finished job");
        assert.deepEqual(await counted(first), await scanned(client, schema));
      });
      assert.deepEqual(await counted(first), { "tenant-0/queued": 1 });
      // Counting goes on from zero.
      await finishMany(first, "tenant-1", 3, T0 + 2);
      assert.deepEqual(await counted(first), { "tenant-0/queued": 1, "tenant-1/succeeded": 3 });
    } finally {
      await Promise.all(backends.map((b) => b.close()));
      await dropSchema(schema);
    }
  });

  it("a queue's finished count past 2^31 is read as it is (shards that sum beyond an int)", async () => {
    const backend = await openIsolated();
    try {
      await withClient((client) => client.query(
        `INSERT INTO ${quoteIdent(backend.schema)}.finished_counts (queue, state, shard, n) VALUES ('archive', 'succeeded', 0, 2000000000), ('archive', 'succeeded', 1, 2000000000)`));
      assert.equal((await backend.counts()).find((q) => q.queue === "archive")?.counts.succeeded, 4_000_000_000);
    } finally {
      await backend.close();
    }
  });

  it("a schema at version 2 that holds finished jobs has them counted once migrated", async () => {
    const schema = uniqueSchema("cnt");
    try {
      await withClient(async (client) => {
        await client.query(`CREATE SCHEMA ${quoteIdent(schema)}`);
        for (const m of loadMigrations(schema).filter((m) => m.version <= 2)) await client.query(m.sql);
        await client.query(`CREATE TABLE ${quoteIdent(schema)}.migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
        await client.query(`INSERT INTO ${quoteIdent(schema)}.migrations (version, name) VALUES (1, '001'), (2, '002')`);
        await client.query(`
          INSERT INTO ${quoteIdent(schema)}.jobs (id, task, queue, state, payload, run_at, max_attempts, created_at, updated_at, finished_at)
          SELECT 'old-' || g, 't', 'q' || (g % 2), (ARRAY['succeeded', 'failed', 'cancelled', 'queued'])[g % 4 + 1], '1', $1::bigint, 1, $1::bigint, $1::bigint,
                 CASE WHEN g % 4 = 3 THEN NULL ELSE $1::bigint END
            FROM generate_series(1, 40) g`, [T0]);
      });
      const backend = await PostgresBackend.open({ url: POSTGRES_URL, schema });
      try {
        await withClient(async (client) => assert.deepEqual(await counted(backend), await scanned(client, schema)));
        assert.equal(Object.values(await counted(backend)).reduce((a, b) => a + b, 0), 40);
      } finally {
        await backend.close();
      }
    } finally {
      await dropSchema(schema);
    }
  });
});
