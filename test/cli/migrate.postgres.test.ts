// `offload migrate` as a deploy step runs it, a real process against a real PostgreSQL: what it
// says about the schema it finds, and about a server it cannot reach.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { loadMigrations } from "../../src/backend/postgres/queries.ts";
import { isolatedPostgresUrl, POSTGRES_URL, type IsolatedUrl } from "../support/isolated-urls.ts";
import { freePort } from "../support/ports.ts";

const CLI = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));

function offload(...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", timeout: 60_000, killSignal: "SIGKILL" });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe("offload migrate (PostgreSQL)", () => {
  let isolated: IsolatedUrl;
  before(async () => (isolated = await isolatedPostgresUrl("cli_migrate")));
  after(() => isolated.cleanup());

  it("says so when the schema is newer than this code's migrations, instead of calling it up to date", async () => {
    const latest = loadMigrations("offload").at(-1)?.version ?? 0;
    const first = offload("migrate", "--url", isolated.url);
    assert.equal(first.code, 0, first.err);
    const schema = new URL(isolated.url).searchParams.get("schema") ?? "";
    // A newer release migrated this schema (a rollback of the code, or an old pod's deploy step).
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    try {
      await client.query(`INSERT INTO "${schema}".migrations (version, name) VALUES ($1, $2)`, [latest + 1, "999_from_the_future"]);
    } finally {
      await client.end();
    }
    const r = offload("migrate", "--url", isolated.url);
    // Not a failure: older code keeps working on a newer schema during a rolling upgrade (docs/postgres.md).
    assert.equal(r.code, 0, r.err);
    assert.doesNotMatch(r.out, /up to date/);
    assert.equal(r.out.trim(), `schema ${schema} is at version ${latest + 1}, newer than this offload's migrations (version ${latest}): nothing applied`);
  });

  it("a server it cannot reach is a BackendOpenError naming the URL without its password, not pg's bare error", async () => {
    const url = `postgres://postgres:hunter2@127.0.0.1:${await freePort()}/test?schema=cli_nowhere`;
    const r = offload("migrate", "--url", url);
    assert.equal(r.code, 1, r.err);
    assert.match(r.err, /^offload: BackendOpenError: cannot open backend postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/test\?schema=cli_nowhere: connect ECONNREFUSED/);
    assert.doesNotMatch(r.err, /hunter2/);
    // queues and jobs open without migrating (below), so their first read is what fails.
    const queues = offload("--backend", url, "queues");
    assert.equal(queues.code, 1, queues.err);
    assert.match(queues.err, /^offload: BackendUnavailableError: the postgres backend is unavailable: connect ECONNREFUSED 127\.0\.0\.1:\d+\n$/);
  });

  it("queues and jobs on a schema that was never migrated say to run offload migrate, rather than create it and show no queues", async () => {
    // A typo in ?schema= made a new, empty schema (five migrations' DDL, from an operator's
    // command) and answered "no queues yet" while the app's queue backed up.
    const typo = await isolatedPostgresUrl("cli_typo");
    try {
      for (const args of [["queues"], ["jobs", "list", "--state", "failed"]]) {
        const r = offload("--backend", typo.url, ...args);
        assert.equal(r.code, 2, r.out + r.err);
        assert.match(r.err, /^offload: SchemaNotMigratedError: the PostgreSQL schema "cli_typo_\w+" has no Offload tables.*run `offload migrate`/);
      }
      const schema = new URL(typo.url).searchParams.get("schema");
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      try {
        const found = await client.query("SELECT 1 FROM pg_namespace WHERE nspname = $1", [schema]);
        assert.equal(found.rowCount, 0, "no schema made");
      } finally {
        await client.end();
      }
      // A schema that was migrated is read as before.
      assert.equal(offload("--backend", isolated.url, "queues").code, 0);
    } finally {
      await typo.cleanup();
    }
  });
});
