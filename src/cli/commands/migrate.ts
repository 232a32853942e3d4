// `offload migrate [--url …] [--schema …]`: brings a backend's schema up to date. PostgreSQL
// migrations are versioned .sql files applied under an advisory lock, so running this while
// workers start is safe; other backends migrate when opened, which this does too.
import { Command } from "commander";
import { DEFAULT_BACKEND_URL, openBackend } from "../../backend/open.ts";
import { callForCaller } from "../../backend/backend-errors.ts";
import { BackendOpenError, ConfigError, OffloadError, toError } from "../../core/errors.ts";

export interface MigrateCommandOptions {
  readonly url?: string;
  readonly schema?: string;
}

/** Returns a one-line report of what was done. */
export async function runMigrate(options: MigrateCommandOptions): Promise<string> {
  const url = options.url ?? process.env["OFFLOAD_URL"] ?? DEFAULT_BACKEND_URL;
  if (/^postgres(ql)?:/i.test(url)) {
    try {
      return await migratePostgres(url, options.schema);
    } catch (error) {
      // pg's own errors (a connection refused, a role that does not exist) said neither which
      // server nor that it was the opening that failed; every other command says both.
      if (error instanceof OffloadError) throw error;
      throw new BackendOpenError(url, toError(error).message, { cause: error });
    }
  }
  // Ignored, it would have migrated whatever the URL names and said nothing of the flag.
  if (options.schema !== undefined) throw new ConfigError(`--schema is for a PostgreSQL URL; this one is ${/^[a-z][a-z0-9+.-]*:/i.exec(url)?.[0] ?? "none"} (a Redis URL takes ?prefix=)`);
  const backend = await openBackend(url);
  try {
    // A Redis client connects in the background, so opening proves nothing: without a call that
    // reaches the server, a Redis that was down was reported "up to date" (exit 0) to a deploy.
    await callForCaller(backend, (b) => b.counts());
  } finally {
    await backend.close();
  }
  return `${backend.name} is up to date`;
}

async function migratePostgres(url: string, schema: string | undefined): Promise<string> {
  const { PostgresBackend } = await import("../../backend/postgres/postgres-backend.ts");
  const backend = await PostgresBackend.open({ url, migrate: false, ...(schema ? { schema } : {}) });
  try {
    const result = await backend.migrate();
    if (result.to > result.latest) {
      // Not an error: older code works on a newer schema through a rolling upgrade (docs/postgres.md).
      return `schema ${backend.schema} is at version ${result.to}, newer than this offload's migrations (version ${result.latest}): nothing applied`;
    }
    return result.applied.length === 0
      ? `schema ${backend.schema} is up to date (version ${result.to})`
      : `schema ${backend.schema}: applied ${result.applied.join(", ")} (version ${result.from} → ${result.to})`;
  } finally {
    await backend.close();
  }
}

export function migrateCommand(): Command {
  return new Command("migrate")
    .description("create or upgrade the backend's schema (PostgreSQL: versioned, advisory-locked)")
    .option("--url <url>", "backend URL (default: --backend, else $OFFLOAD_URL, else sqlite://./offload.db)")
    .option("--schema <name>", "PostgreSQL schema (default: the URL's ?schema=, else offload)")
    .action(async (options: MigrateCommandOptions) => {
      console.log(await runMigrate(options));
    });
}

export function registerMigrate(program: Command): void {
  // Built on their own (for tests), so they take the program's settings here: without its
  // exitOverride, a missing or unknown option exited 1 from inside commander, not 2 as a usage error.
  program.addCommand(migrateCommand().copyInheritedSettings(program));
}
