// Migrations: versioned, per schema, advisory-locked so processes starting together migrate once;
// skipped at open with ?migrate=false and run by `offload migrate`.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import pg from "pg";
import { openBackend } from "../../src/backend/open.ts";
import { PostgresBackend } from "../../src/backend/postgres/postgres-backend.ts";
import { runMigrate } from "../../src/cli/commands/migrate.ts";
import { POSTGRES_URL, dropSchema, uniqueSchema } from "./postgres-helpers.ts";

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

describe("postgres: migrations", () => {
  it("eight backends opening one fresh schema at once migrate it once", async () => {
    const schema = uniqueSchema("mig");
    try {
      const backends = await Promise.all(Array.from({ length: 8 }, () => PostgresBackend.open({ url: POSTGRES_URL, schema })));
      assert.deepEqual(await appliedVersions(schema), [1]);
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
      assert.match(await runMigrate({ url: POSTGRES_URL, schema }), /applied 001_initial \(version 0 → 1\)/);
      assert.match(await runMigrate({ url: `${POSTGRES_URL}?schema=${schema}` }), /up to date \(version 1\)/);
      assert.deepEqual(await appliedVersions(schema), [1]);
    } finally {
      await dropSchema(schema);
    }
  });
});
