// Loads the SQL beside this module once, by operation name. Keeping SQL in files (not strings in
// code) lets each backend be read and reviewed as SQL.
import { readFileSync, readdirSync } from "node:fs";

const QUERY_NAMES = [
  "acknowledge-cancel", "cancel-active", "cancel-pending", "claim", "claim-candidates", "complete", "complete-repeated", "counts",
  "enqueue-bulk", "enqueue-find-key", "enqueue-insert", "event-delete", "event-insert", "fail", "get-job", "heartbeat",
  "lease-outcome", "list-jobs", "next-due", "peek-jobs", "progress", "prune", "prune-counts", "read-events", "read-job-events", "release", "replay",
  "rescue-expired", "retry", "run-history", "run-log-lines", "stage-due", "trim-errors", "trim-events",
] as const;

export type QueryName = (typeof QUERY_NAMES)[number];

export function loadQueries(): Record<QueryName, string> {
  const entries = QUERY_NAMES.map((name) => [name, readFileSync(new URL(`./queries/${name}.sql`, import.meta.url), "utf8")]);
  return Object.fromEntries(entries) as Record<QueryName, string>;
}

export interface Migration {
  readonly version: number;
  readonly sql: string;
}

/** Migrations in version order, from files named NNN_description.sql. */
export function loadMigrations(): Migration[] {
  const dir = new URL("./migrations/", import.meta.url);
  return readdirSync(dir)
    .filter((f) => /^\d{3}_.+\.sql$/.test(f))
    .sort()
    .map((f) => ({ version: Number(f.slice(0, 3)), sql: readFileSync(new URL(f, dir), "utf8") }));
}
