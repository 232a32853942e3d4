// The ORM adapters that docs/postgres.md shows for transactional enqueue, run as written against
// the real server: with Kysely and with Drizzle, a job exists exactly when the ORM's transaction
// commits. (Prisma's snippet is not run: its query engine is a binary download this CI cannot do.)
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type SQL, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/node-postgres";
import { CamelCasePlugin, CompiledQuery, Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import type { JobHandle, Offload } from "../../src/index.ts";
import { POSTGRES_URL, withOrdersSchema } from "./postgres-helpers.ts";

interface Fixture {
  readonly schema: string;
  readonly offload: Offload;
  readonly pool: pg.Pool;
}

function withFixture(body: (f: Fixture) => Promise<void>): Promise<void> {
  return withOrdersSchema("orm", async ({ schema, offload }) => {
    const pool = new pg.Pool({ connectionString: POSTGRES_URL, max: 2 });
    try {
      await body({ schema, offload, pool });
    } finally {
      await pool.end();
    }
  });
}

/** After one committed and one rolled-back transaction: only the committed job exists, and it runs. */
async function onlyTheCommittedJobRuns(offload: Offload, committed: JobHandle<unknown>, rolledBack: string): Promise<void> {
  const worker = offload.worker();
  await worker.start();
  assert.deepEqual(await committed.result({ timeout: "10s" }), { confirmed: 1 });
  assert.equal(await offload.jobs.find(rolledBack), undefined);
  assert.deepEqual((await offload.jobs.counts()).map((c) => c.counts.succeeded), [1]);
}

class Rollback extends Error {}

/** The Drizzle adapter of docs/postgres.md, as printed there. */
function drizzleTx(tx: { execute: (query: SQL) => Promise<unknown> }): { query(text: string, values?: unknown[]): Promise<unknown> } {
  return {
    query(text: string, values: unknown[] = []) {
      const parts = text.split(/\$(\d+)/);
      const chunks: SQL[] = [sql.raw(parts[0] ?? "")];
      for (let i = 1; i < parts.length; i += 2) chunks.push(sql`${sql.param(values[Number(parts[i]) - 1])}`, sql.raw(parts[i + 1] ?? ""));
      return tx.execute(sql.join(chunks));
    },
  };
}

describe("postgres: transactional enqueue through ORMs (the docs' adapters)", () => {
  it("Kysely: commit → the job runs; rollback → no job, ever", () => withFixture(async ({ schema, offload, pool }) => {
    const confirm = offload.task({ name: "orders.confirm", run: (p: { order: number }) => ({ confirmed: p.order }) });
    // CamelCasePlugin, as many Kysely apps have it: the adapter must bypass it (run_at → runAt).
    const db = new Kysely<Record<string, never>>({ dialect: new PostgresDialect({ pool }), plugins: [new CamelCasePlugin()] });
    const enqueueIn = (trx: Kysely<Record<string, never>>, order: number, key?: string) => {
      const tx = { query: (text: string, values: unknown[]) => trx.withoutPlugins().executeQuery(CompiledQuery.raw(text, values)) };
      // A keyed job waits an hour: the worker below must not finish it and free its key.
      return confirm.enqueue({ order }, { tx, ...(key === undefined ? {} : { key, delay: "1h" }) });
    };
    const committed = await db.transaction().execute(async (trx) => {
      await trx.executeQuery(CompiledQuery.raw(`INSERT INTO "${schema}".orders (note) VALUES ('kept')`));
      return enqueueIn(trx, 1);
    });
    let rolledBack = "";
    await assert.rejects(db.transaction().execute(async (trx) => {
      rolledBack = (await enqueueIn(trx, 2)).id;
      throw new Rollback();
    }), Rollback);
    await onlyTheCommittedJobRuns(offload, committed, rolledBack);
    // A keyed enqueue that meets the key's holder reads the holder's row back through the adapter.
    const holder = await db.transaction().execute((trx) => enqueueIn(trx, 3, "order-3"));
    const again = await db.transaction().execute((trx) => enqueueIn(trx, 3, "order-3"));
    assert.equal(again.id, holder.id, "the key's holder, not a second job");
  }));

  it("Drizzle: commit → the job runs; rollback → no job, ever", () => withFixture(async ({ schema, offload, pool }) => {
    const confirm = offload.task({ name: "orders.confirm", run: (p: { order: number }) => ({ confirmed: p.order }) });
    const db = drizzle({ client: pool });
    const committed = await db.transaction(async (tx) => {
      await tx.execute(sql.raw(`INSERT INTO "${schema}".orders (note) VALUES ('kept')`));
      return confirm.enqueue({ order: 1 }, { tx: drizzleTx(tx) });
    });
    let rolledBack = "";
    await assert.rejects(db.transaction(async (tx) => {
      rolledBack = (await confirm.enqueue({ order: 2 }, { tx: drizzleTx(tx) })).id;
      throw new Rollback();
    }), Rollback);
    await onlyTheCommittedJobRuns(offload, committed, rolledBack);
  }));
});
