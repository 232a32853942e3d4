// Versioned migrations for the SQLite schema, tracked in PRAGMA user_version. The check and the
// upgrade happen inside one IMMEDIATE transaction, so processes starting together migrate once.
import type { DatabaseSync } from "node:sqlite";
import { loadMigrations } from "./queries.ts";

/** `whileBusy` retries a read that found the file locked by another process. */
export function migrate(db: DatabaseSync, begin: () => void, whileBusy: <T>(read: () => T) => T): void {
  const migrations = loadMigrations();
  const latest = migrations.at(-1)?.version ?? 0;
  const current = (): number => Number((db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version);
  if (whileBusy(current) >= latest) return;
  begin();
  try {
    const from = current();
    for (const m of migrations) {
      if (m.version > from) db.exec(m.sql);
    }
    db.exec(`PRAGMA user_version = ${latest}`);
    db.exec("COMMIT");
  } catch (error) {
    if (db.isTransaction) db.exec("ROLLBACK");
    throw error;
  }
}
