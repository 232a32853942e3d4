// Versioned migrations for one schema, tracked in <schema>.migrations. Each file runs in its own
// transaction with its version row, so a failed migration leaves no half-applied schema, and each
// transaction first takes an advisory lock keyed by schema, so processes that start together
// migrate once: the first applies the file, the others wait on the lock and then find its version
// row. The lock is the transaction's (pg_advisory_xact_lock), never the session's: behind a
// transaction pooler, a session lock taken in one statement stayed with whichever server session
// ran it, and the unlock, run on another, freed nothing; the next migration of that schema, from
// any process, waited on it for as long as the pooler kept that session open. Processes on
// earlier versions take the session lock on the same key, which the transaction lock waits on.
import type pg from "pg";
import { loadMigrations, quoteIdent } from "./queries.ts";
import { useMode } from "./pooled-query.ts";
import { ConfigError } from "../../core/errors.ts";

/** The oldest PostgreSQL the schema and statements are written for (MATERIALIZED CTEs, core gen_random_uuid). */
const MIN_SERVER_VERSION_NUM = 130_000;

/** The error for a server older than that, if it is: a syntax error half way through a migration would say less. */
export function serverVersionProblem(versionNum: number, version: string): ConfigError | undefined {
  if (!Number.isFinite(versionNum) || versionNum >= MIN_SERVER_VERSION_NUM) return undefined;
  return new ConfigError(`Offload needs PostgreSQL 13 or later; this server runs ${version}`);
}

/** First key of the two-key advisory lock: "offload" in a 32-bit int, so we never collide with app locks using one key. */
export const LOCK_NAMESPACE = 0x0ff10ad;

/**
 * The reply timeout (connection.ts) is not for migrations: waiting on the lock behind another
 * process's migration, or building an index on a big table, legitimately takes minutes.
 * (The largest timer Node keeps; pg reads 0 as "use the connection's timeout".)
 */
const NO_REPLY_TIMEOUT = { query_timeout: 2_147_483_647 } as const;

/**
 * A pooled connection checked out by hand. The pool stops listening for its "error" events while
 * it is out, and pg emits one when the connection breaks (server crash, failover, network), even
 * during a query, which rejects with the same error anyway: with no listener that event would
 * crash the process, e.g. one waiting on the migration lock behind another process. The listener
 * goes when the connection goes back (see pooled-query.ts).
 */
async function checkOut(pool: pg.Pool): Promise<{ client: pg.PoolClient; release: (error?: Error) => void }> {
  const client = await pool.connect();
  client.on("error", ignore);
  return {
    client,
    release: (error) => {
      client.off("error", ignore);
      client.release(error);
    },
  };
}

function ignore(): void {}

export interface MigrateResult {
  readonly from: number;
  readonly to: number;
  readonly applied: readonly string[];
  /**
   * The newest version this code has. Below `to` when a newer release migrated the schema (a
   * rollback of the code): nothing is applied, and "up to date" would not be the truth.
   */
  readonly latest: number;
}

/**
 * The latest migration applied to `schema` (0: none). The table is looked for in the catalog
 * tables, not through the server's cache of them (to_regclass): after a wait on the migration lock
 * inside a transaction, that cache still said "no such schema or table" when the process it
 * waited for had just created them, and CREATE SCHEMA IF NOT EXISTS then failed on a duplicate
 * key. Reading pg_class takes a lock on it, and taking a lock brings the cache up to date.
 */
async function currentVersion(client: pg.PoolClient, schema: string): Promise<number> {
  const exists = await client.query<{ found: boolean }>(
    `SELECT EXISTS (SELECT FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                     WHERE n.nspname = $1 AND c.relname = 'migrations') AS found`, [schema],
  );
  if (!exists.rows[0]?.found) return 0;
  const row = await client.query<{ version: number | null }>(`SELECT max(version) AS version FROM ${quoteIdent(schema)}.migrations`);
  return Number(row.rows[0]?.version ?? 0);
}

export async function migrate(pool: pg.Pool, schema: string, options: { sessionSettings: boolean }): Promise<MigrateResult> {
  const migrations = loadMigrations(schema);
  const latest = migrations.at(-1)?.version ?? 0;
  const { client, release } = await checkOut(pool);
  let broken: unknown;
  try {
    // A pooled connection may come from hot statements, with their planner settings (pooled-query.ts).
    if (options.sessionSettings) await useMode(client, "custom");
    const before = await currentVersion(client, schema);
    if (before >= latest) return { from: before, to: before, applied: [], latest };
    const server = await client.query<{ num: string; version: string }>("SELECT current_setting('server_version_num') AS num, current_setting('server_version') AS version");
    const tooOld = serverVersionProblem(Number(server.rows[0]?.num), server.rows[0]?.version ?? "?");
    if (tooOld) throw tooOld;
    let from: number | undefined;
    const applied: string[] = [];
    for (const m of migrations) {
      if (m.version <= before) continue;
      // Read committed whatever the database's default: under repeatable read or serializable the
      // transaction's snapshot is taken by the lock statement, before its wait, and the version
      // read after it missed what the process waited for had applied ("relation already exists").
      // Behind a transaction pooler no session setting of ours says otherwise (postgres-backend.ts).
      await client.query("BEGIN ISOLATION LEVEL READ COMMITTED");
      try {
        await client.query({ text: "SELECT pg_advisory_xact_lock($1, hashtext($2))", values: [LOCK_NAMESPACE, schema], ...NO_REPLY_TIMEOUT });
        // Another process may have applied it while this one waited on the lock.
        const current = await currentVersion(client, schema);
        from ??= current;
        if (current >= m.version) {
          await client.query("COMMIT");
          continue;
        }
        await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
        await client.query(`CREATE TABLE IF NOT EXISTS ${quoteIdent(schema)}.migrations (
          version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
        await client.query({ text: m.sql, ...NO_REPLY_TIMEOUT });
        await client.query(`INSERT INTO ${quoteIdent(schema)}.migrations (version, name) VALUES ($1, $2)`, [m.version, m.name]);
        await client.query("COMMIT");
      } catch (error) {
        await client.query("ROLLBACK").catch(() => {});
        throw error;
      }
      applied.push(m.name);
    }
    return { from: from ?? before, to: latest, applied, latest };
  } catch (error) {
    broken = error;
    throw error;
  } finally {
    // A connection whose state we no longer know (a failed rollback) is closed, not reused.
    release(broken instanceof Error ? broken : undefined);
  }
}
