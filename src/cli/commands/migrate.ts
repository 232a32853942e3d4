// `offload migrate [--url …] [--schema …]`: brings a backend's schema up to date. PostgreSQL
// migrations are versioned .sql files applied under an advisory lock, so running this while
// workers start is safe; other backends migrate when opened, which this does too.
import { Command } from "commander";
import { DEFAULT_BACKEND_URL, openBackend } from "../../backend/open.ts";

export interface MigrateCommandOptions {
  readonly url?: string;
  readonly schema?: string;
}

/** Returns a one-line report of what was done. */
export async function runMigrate(options: MigrateCommandOptions): Promise<string> {
  const url = options.url ?? process.env["OFFLOAD_URL"] ?? DEFAULT_BACKEND_URL;
  if (/^postgres(ql)?:/i.test(url)) {
    const { PostgresBackend } = await import("../../backend/postgres/postgres-backend.ts");
    const backend = await PostgresBackend.open({ url, migrate: false, ...(options.schema ? { schema: options.schema } : {}) });
    try {
      const result = await backend.migrate();
      return result.applied.length === 0
        ? `schema ${backend.schema} is up to date (version ${result.to})`
        : `schema ${backend.schema}: applied ${result.applied.join(", ")} (version ${result.from} → ${result.to})`;
    } finally {
      await backend.close();
    }
  }
  const backend = await openBackend(url);
  await backend.close();
  return `${backend.name} is up to date`;
}

export function migrateCommand(): Command {
  return new Command("migrate")
    .description("create or upgrade the backend's schema (PostgreSQL: versioned, advisory-locked)")
    .option("--url <url>", "backend URL (default: --backend, else $OFFLOAD_URL)")
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
