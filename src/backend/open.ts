// Backend URLs → adapters. Adapters load lazily, so an app on SQLite never loads Redis or pg code.
import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { BackendOpenError } from "../core/errors.ts";
import type { Backend } from "./backend.ts";

export const DEFAULT_BACKEND_URL = "sqlite://./offload.db";

type Loader = (url: string) => Promise<Backend>;

async function openSqlite(url: string): Promise<Backend> {
  const { SqliteBackend } = await import("./sqlite/sqlite-backend.ts");
  const path = sqlitePath(url);
  if (path !== ":memory:" && !existsSync(dirname(path))) throw new BackendOpenError(url, `folder ${dirname(path)} does not exist`);
  return new SqliteBackend({ path });
}

/** "sqlite::memory:" → ":memory:"; "sqlite://./a.db" → "./a.db"; "sqlite:///abs/a.db" → "/abs/a.db". */
export function sqlitePath(url: string): string {
  if (url === "sqlite::memory:" || url === "sqlite://:memory:") return ":memory:";
  const rest = url.replace(/^sqlite:(\/\/)?/, "").replace(/\?.*$/, "");
  if (rest === "") throw new BackendOpenError(url, "no file path (use sqlite://path/to/file.db or sqlite::memory:)");
  return resolve(rest);
}

async function openRedis(url: string): Promise<Backend> {
  const { RedisBackend } = await import("./redis/redis-backend.ts");
  return new RedisBackend({ url });
}

async function openPostgres(url: string): Promise<Backend> {
  const { PostgresBackend } = await import("./postgres/postgres-backend.ts");
  return PostgresBackend.open({ url });
}

const LOADERS: Record<string, Loader> = {
  "sqlite:": openSqlite,
  "postgres:": openPostgres,
  "postgresql:": openPostgres,
  "redis:": openRedis,
  "rediss:": openRedis,
  "redis+cluster:": openRedis,
  "redis+sentinel:": openRedis,
  "rediss+cluster:": openRedis,
  "rediss+sentinel:": openRedis,
};

/** Adds a scheme, so adapters in their own folders plug in here without this file knowing them. */
export function registerBackend(scheme: string, loader: Loader): void {
  LOADERS[scheme] = loader;
}

export async function openBackend(url: string): Promise<Backend> {
  const scheme = /^([a-z][a-z0-9+.-]*:)/i.exec(url)?.[1]?.toLowerCase();
  const loader = scheme === undefined ? undefined : LOADERS[scheme];
  if (!loader) {
    throw new BackendOpenError(url, `unknown scheme${scheme ? ` ${scheme}` : ""} (supported: ${Object.keys(LOADERS).join(", ")})`);
  }
  try {
    return await loader(url);
  } catch (error) {
    if (error instanceof BackendOpenError) throw error;
    const reason = error instanceof Error ? error.message : String(error);
    throw new BackendOpenError(url, reason, { cause: error });
  }
}
