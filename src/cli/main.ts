#!/usr/bin/env node
// The `offload` command. Errors print one line (the typed error's message) and exit non-zero;
// stack traces only with OFFLOAD_DEBUG=1.
import { readFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { Offload } from "../client/offload.ts";
import { OffloadError } from "../core/errors.ts";
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

const open = (): Offload => new Offload();
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
