// The ORM adapters that docs/postgres.md shows for transactional enqueue, run as written against
// the real server: with Kysely, Drizzle and Prisma, a job exists exactly when the ORM's
// transaction commits.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createRequire } from "node:module";
import { describe, it } from "node:test";
import { promisify } from "node:util";
import { PrismaPg } from "@prisma/adapter-pg";
import { type SQL, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/node-postgres";
import { CamelCasePlugin, CompiledQuery, Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import { BackendUnavailableError, ConfigError, type JobHandle, type Offload } from "../../src/index.ts";
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

/** What the test uses of the Prisma client generated from prisma/schema.prisma. */
interface PrismaTx {
  readonly order: {
    create(args: { data: { note: string } }): Promise<{ id: number }>;
    findMany(): Promise<{ note: string }[]>;
  };
  $queryRawUnsafe(text: string, ...values: unknown[]): Promise<unknown>;
}
interface PrismaClientLike {
  readonly order: PrismaTx["order"];
  $transaction<T>(body: (tx: PrismaTx) => Promise<T>): Promise<T>;
  $disconnect(): Promise<void>;
}
type PrismaClientClass = new (options: { adapter: PrismaPg }) => PrismaClientLike;

/**
 * Generates the Prisma client for prisma/schema.prisma into test/.generated/prisma, as an app does
 * with `prisma generate`, and loads it. Prisma 7 runs queries in the process (no engine binary),
 * but its CLI still looks for the schema engine, a binary it would download, before it generates;
 * generate never runs it, so any existing file will do.
 */
async function loadPrismaClient(): Promise<PrismaClientClass> {
  const cli = createRequire(import.meta.url).resolve("prisma/build/index.js");
  const schema = new URL("./prisma/schema.prisma", import.meta.url).pathname;
  await promisify(execFile)(process.execPath, [cli, "generate", "--schema", schema], {
    env: { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: process.execPath, PRISMA_HIDE_UPDATE_MESSAGE: "1", CHECKPOINT_DISABLE: "1" },
  });
  const generated = new URL("../.generated/prisma/client.ts", import.meta.url).href;
  const loaded = (await import(generated)) as { PrismaClient: PrismaClientClass };
  return loaded.PrismaClient;
}

/** The Prisma adapter of docs/postgres.md, as printed there. */
function prismaTx(tx: PrismaTx): { query(text: string, values?: unknown[]): Promise<unknown> } {
  return { query: (text: string, values: unknown[] = []) => tx.$queryRawUnsafe(text, ...values) };
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

  it("Drizzle: an enqueue into a transaction that has failed rejects with the driver's error, not BackendUnavailableError", () => withFixture(async ({ offload, pool }) => {
    const confirm = offload.task({ name: "orders.confirm", run: (p: { order: number }) => ({ confirmed: p.order }) });
    const db = drizzle({ client: pool });
    let enqueued: unknown;
    // Its COMMIT rolls back, as PostgreSQL ends a failed transaction.
    await db.transaction(async (tx) => {
      await assert.rejects(tx.execute(sql.raw("SELECT 1/0"))); // the app caught it: its transaction has failed
      enqueued = await confirm.enqueue({ order: 1 }, { tx: drizzleTx(tx) }).catch((error: unknown) => error);
    });
    // Drizzle wraps pg's error (25P02) in one without a SQLSTATE: that is an answer of the server,
    // not an outage a later try would get past (a web app would answer 503 "try again shortly").
    assert.ok(enqueued instanceof Error && !(enqueued instanceof BackendUnavailableError), String(enqueued));
    assert.equal((enqueued.cause as { code?: unknown } | undefined)?.code, "25P02");
  }));

  it("Prisma: commit → the job runs; rollback → no job, ever", () => withFixture(async ({ schema, offload }) => {
    const PrismaClient = await loadPrismaClient();
    const confirm = offload.task({ name: "orders.confirm", run: (p: { order: number }) => ({ confirmed: p.order }) });
    const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: POSTGRES_URL, max: 2 }, { schema }) });
    try {
      const enqueueIn = (tx: PrismaTx, order: number, key?: string) =>
        // A keyed job waits an hour: the worker below must not finish it and free its key.
        confirm.enqueue({ order }, { tx: prismaTx(tx), ...(key === undefined ? {} : { key, delay: "1h" }) });
      const committed = await prisma.$transaction(async (tx) => {
        await tx.order.create({ data: { note: "kept" } });
        return enqueueIn(tx, 1);
      });
      let rolledBack = "";
      await assert.rejects(prisma.$transaction(async (tx) => {
        await tx.order.create({ data: { note: "rolled back" } });
        rolledBack = (await enqueueIn(tx, 2)).id;
        throw new Rollback();
      }), Rollback);
      await onlyTheCommittedJobRuns(offload, committed, rolledBack);
      assert.deepEqual((await prisma.order.findMany()).map((o) => o.note), ["kept"], "the app's row went with its job");
      // A keyed enqueue that meets the key's holder reads the holder's row back through Prisma,
      // whose raw rows carry bigints as BigInt.
      const holder = await prisma.$transaction((tx) => enqueueIn(tx, 3, "order-3"));
      const again = await prisma.$transaction((tx) => enqueueIn(tx, 3, "order-3"));
      assert.equal(again.id, holder.id, "the key's holder, not a second job");
      assert.equal((await offload.jobs.find(holder.id))?.state, "scheduled");
    } finally {
      await prisma.$disconnect();
    }
  }));

  it("Prisma: a lock timeout is a BackendUnavailableError and a read-only transaction a ConfigError, read from Prisma's error", () => withFixture(async ({ schema, offload, pool }) => {
    // Prisma reports a failed raw query as its own error (code P2010), pg's SQLSTATE inside its
    // meta: read as an error without a verdict, a lock timeout was not "try later", and a
    // read-only transaction was not named as the caller's mistake.
    const PrismaClient = await loadPrismaClient();
    const confirm = offload.task({ name: "orders.confirm", run: (p: { order: number }) => ({ confirmed: p.order }) });
    const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: POSTGRES_URL, max: 2 }, { schema }) });
    const other = await pool.connect();
    try {
      // Another transaction holds the key, uncommitted: a second keyed insert waits for it.
      await other.query("BEGIN");
      await confirm.enqueue({ order: 7 }, { tx: other, key: "order-7" });
      const waited = await prisma.$transaction(async (tx) => {
        await tx.$queryRawUnsafe("SET LOCAL lock_timeout = '100ms'");
        return confirm.enqueue({ order: 7 }, { tx: prismaTx(tx), key: "order-7" }).then(() => undefined, (error: unknown) => error);
      }).catch((error: unknown) => error);
      assert.ok(waited instanceof BackendUnavailableError, String(waited));
      assert.match(String(waited.cause), /55P03|lock timeout/);
      await other.query("ROLLBACK");
      const readOnly = await prisma.$transaction(async (tx) => {
        await tx.$queryRawUnsafe("SET TRANSACTION READ ONLY");
        return confirm.enqueue({ order: 8 }, { tx: prismaTx(tx) }).then(() => undefined, (error: unknown) => error);
      }).catch((error: unknown) => error);
      assert.ok(readOnly instanceof ConfigError, String(readOnly));
      assert.match(readOnly.message, /read-only transaction/);
      assert.deepEqual(await offload.jobs.counts(), [], "no job was stored");
    } finally {
      other.release();
      await prisma.$disconnect();
    }
  }));
});
