// Loads the SQL beside this module once, by operation name, for one schema. The files name every
// table `offload.<table>`; that prefix becomes the configured schema (quoted) at load, so the SQL
// stays readable and runnable as written for the default schema.
import { createHash } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import { ConfigError } from "../../core/errors.ts";

const QUERY_NAMES = [
  "acknowledge-cancel", "cancel", "claim", "complete", "counts", "drop-zero-counts", "end-backend", "end-claim", "enqueue", "enqueue-find-key",
  "enqueue-find-last-key", "enqueue-keyed", "fail", "feed-horizon", "feed-writers", "fold-counts", "get-job", "heartbeat", "list-jobs", "log", "next-due", "notify-change", "notify-work", "peek-jobs", "progress",
  "prune", "read-events", "reclaim", "release", "replay", "rescue-expired", "retry", "server-time", "stage-due", "stored-ids",
] as const;

export type QueryName = (typeof QUERY_NAMES)[number];

export const DEFAULT_SCHEMA = "offload";

/** Schema names are identifiers we quote; still keep them plain so they read well in psql and in channel names. */
const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

export function checkSchemaName(schema: string): string {
  if (!SCHEMA_NAME.test(schema)) throw new ConfigError(`schema name ${JSON.stringify(schema)} must be 1-63 of A-Z a-z 0-9 _, not starting with a digit`);
  return schema;
}

export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** `offload.x` → `"schema".x`, everywhere in a SQL text. */
export function inSchema(sql: string, schema: string): string {
  return sql.replace(/\boffload\./g, `${quoteIdent(schema)}.`);
}

const cache = new Map<string, Record<QueryName, string>>();

/**
 * The query files open with comment lines naming their parameters ("($1) ids text[]"). They are
 * for readers: the server never needs them, they would travel with every statement, and an ORM
 * adapter that rebuilds `$n` placeholders (docs/postgres.md, Drizzle) would count the ones in them.
 */
function withoutCommentLines(sql: string): string {
  return sql.replace(/^[ \t]*--.*(?:\r?\n|$)/gm, "");
}

export function loadQueries(schema: string): Record<QueryName, string> {
  let queries = cache.get(schema);
  if (!queries) {
    const entries = QUERY_NAMES.map((name) => [name, inSchema(withoutCommentLines(withEachExpanded(readQueryFile(`${name}.sql`))), schema)]);
    queries = Object.fromEntries(entries) as Record<QueryName, string>;
    cache.set(schema, queries);
  }
  return queries;
}

function readQueryFile(file: string): string {
  return readFileSync(new URL(`./queries/${file}`, import.meta.url), "utf8");
}

/**
 * A line `@each <file> <state> …` of a query file stands for <file>, beside it, once per state it
 * names, with `@state` in it replaced by that state. list-jobs.sql has the same branches for each
 * state, and the planner must see each state as a constant (its header says why): written once,
 * they still are.
 */
function withEachExpanded(sql: string): string {
  return sql.replace(/^@each ([a-z-]+\.sql)((?: [a-z]+)+)[ \t]*$/gm, (_line, file: string, states: string) => {
    const branches = readQueryFile(file);
    return states.trim().split(" ").map((state) => branches.replaceAll("@state", state).trimEnd()).join("\n");
  });
}

/** How the statements name the origin of their notifications, when nothing more is known. */
const ORIGIN_SETTING = "current_setting('offload_notify.origin', true)";

/**
 * The statements with `origin` (a backend instance's random id, [0-9a-f]) as the origin of their
 * notifications, where they otherwise read it from a session variable that nothing sets now (a
 * process of an earlier version set it on its own sessions): so notifications of an app's
 * transaction carry none.
 */
export function withOrigin(queries: Readonly<Record<QueryName, string>>, origin: string): Record<QueryName, string> {
  if (!/^[0-9a-f]+$/.test(origin)) throw new Error(`not an origin: ${JSON.stringify(origin)}`);
  const out = { ...queries };
  for (const name of QUERY_NAMES) out[name] = queries[name].replaceAll(ORIGIN_SETTING, `'${origin}'::text`);
  // end-backend.sql tells this backend's claim from another's by pg_stat_activity's text, which
  // is cut at track_activity_query_size (1 kB by default): the origin in its pg_notify, some 2 kB
  // in, was cut off, and another backend's claim of the same schema matched and was terminated.
  // So the claim's text names its origin first. One text per backend: its prepared statement holds.
  out.claim = `/* offload claim of ${origin} */\n${out.claim}`;
  return out;
}

/** The statements that are a NOTIFY and nothing else. */
const NOTIFY_ALONE: ReadonlySet<QueryName> = new Set(["notify-work", "notify-change"]);

/**
 * The enqueue statements with their `pg_notify` taken out, for Offload's own connections, whose
 * Notifier tells other processes after the commit (notifier.ts); the app's transactions run them
 * as written, and notify when the app commits. The `notified` step `SELECT pg_notify($n::text, …)
 * FROM logged LIMIT 1` becomes one that returns no row but still names `$n`, so both forms take
 * the same parameters (an unreferenced one has no type, and the server refuses it). No other
 * statement notifies.
 */
export function withoutNotify(queries: Readonly<Record<QueryName, string>>): Record<QueryName, string> {
  const out = { ...queries };
  for (const name of QUERY_NAMES) {
    if (NOTIFY_ALONE.has(name) || !queries[name].includes("pg_notify(")) continue;
    const text = queries[name].replace(/SELECT pg_notify\((\$\d+)::text, [^\n]*\) FROM logged LIMIT 1/, "SELECT $1::text FROM logged LIMIT 0");
    if (text.includes("pg_notify(")) throw new Error(`${name}.sql: its pg_notify is not in the form withoutNotify() takes out`);
    out[name] = text;
  }
  return out;
}

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/** Migrations in version order, from files named NNN_description.sql, for one schema. */
export function loadMigrations(schema: string): Migration[] {
  const dir = new URL("./migrations/", import.meta.url);
  return readdirSync(dir)
    .filter((f) => /^\d{3}_.+\.sql$/.test(f))
    .sort()
    .map((f) => ({ version: Number(f.slice(0, 3)), name: f.replace(/\.sql$/, ""), sql: inSchema(readFileSync(new URL(f, dir), "utf8"), schema) }));
}

/** Channel names are identifiers: pg_notify refuses 64 bytes or more, and LISTEN truncates them. */
const MAX_CHANNEL_BYTES = 63;

/**
 * The LISTEN/NOTIFY channel of a schema; every writing statement takes it as a parameter and
 * notifies on it. `offload:<schema>`, unless that is too long (a schema of 56+ characters): then
 * the schema's start and a hash of all of it, so two long names never share a channel.
 */
export function channelName(schema: string): string {
  const plain = `offload:${schema}`;
  if (plain.length <= MAX_CHANNEL_BYTES) return plain; // schema names are ASCII: characters are bytes
  const hash = createHash("sha256").update(schema).digest("hex").slice(0, 16);
  return `${plain.slice(0, MAX_CHANNEL_BYTES - hash.length - 1)}:${hash}`;
}
