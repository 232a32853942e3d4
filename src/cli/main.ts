#!/usr/bin/env node
// The `offload` command. Errors print one line (the typed error's message) and exit non-zero;
// stack traces only with OFFLOAD_DEBUG=1.
import { existsSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { Command, CommanderError } from "commander";
import { Offload } from "../client/offload.ts";
import { BackendOpenError, OffloadError } from "../core/errors.ts";
import { DEFAULT_BACKEND_URL, sqlitePath } from "../backend/open.ts";
import { registerJobs } from "./commands/jobs.ts";
import { registerMigrate } from "./commands/migrate.ts";
import { registerQueues } from "./commands/queues.ts";
import { registerRelay } from "./commands/relay.ts";
import { registerWorker } from "./commands/worker.ts";

// Two folders up from src/cli/ and from the package's dist/cli/ alike. The first question asked
// of a command in an incident (which release is this?) had no answer: --version was unknown.
const { version } = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };

const program = new Command();
program
  .name("offload")
  .description("Offload: background jobs for TypeScript")
  .version(version, "-V, --version", "print the version")
  .option("-b, --backend <url>", "backend URL (default: $OFFLOAD_URL, else sqlite://./offload.db)")
  .showHelpAfterError()
  .exitOverride();

program.hook("preAction", () => {
  const backend = program.opts<{ backend?: string }>().backend;
  if (backend) process.env["OFFLOAD_URL"] = backend; // the app module's Offload picks it up too
});

/**
 * The Offload of the commands that look at jobs and act on them (queues, jobs): they read or
 * change jobs that exist, so they make no store. A SQLite file that is not there is an error (the
 * default ./offload.db, run from another folder than the app's, made an empty database and showed
 * "no queues yet"), and PostgreSQL is opened without migrating: a schema that is not there, or
 * older than this code, is a ConfigError saying to run `offload migrate`, not a typo's new schema,
 * nor DDL run on production by an operator's newer CLI. `offload migrate` makes and upgrades.
 */
const open = (): Offload => {
  const url = process.env["OFFLOAD_URL"] ?? DEFAULT_BACKEND_URL;
  if (/^sqlite:/i.test(url)) {
    const path = sqlitePath(url);
    // A missing folder is left to the opening, which says so in its own words.
    if (path !== ":memory:" && existsSync(dirname(path)) && !existsSync(path)) {
      throw new BackendOpenError(url, `no such file ${path}: name the app's database with --backend or $OFFLOAD_URL (the default, sqlite://./offload.db, is in the folder the command runs in); offload migrate makes a new one`);
    }
  }
  if (/^postgres(ql)?:/i.test(url) && !/[?&]migrate=/i.test(url)) {
    return new Offload({ backend: `${url}${url.includes("?") ? "&" : "?"}migrate=false` });
  }
  return new Offload({ backend: url });
};
registerWorker(program);
registerJobs(program, open);
registerQueues(program, open);
registerMigrate(program);
registerRelay(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) process.exit(error.exitCode === 0 ? 0 : 2);
  const message = error instanceof OffloadError ? `${error.name}: ${error.message}` : String(error);
  console.error(`offload: ${message}`);
  if (process.env["OFFLOAD_DEBUG"] === "1" && error instanceof Error) console.error(error.stack);
  process.exit(error instanceof OffloadError && error.code === "CONFIG" ? 2 : 1);
}
