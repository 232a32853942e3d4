// `offload relay --from postgres://… --to redis://…`: moves jobs enqueued transactionally into a
// PostgreSQL outbox to the backend where workers run them, exactly once (see
// backend/postgres/outbox-relay.ts). Runs until SIGINT/SIGTERM; the batch in flight finishes first.
import { Command } from "commander";
import { openBackend } from "../../backend/open.ts";
import { OutboxRelay } from "../../backend/postgres/outbox-relay.ts";
import { ConfigError, toError, withoutPassword } from "../../core/errors.ts";
import { duration, positiveInt, splitList } from "../options.ts";

export interface RelayCommandOptions {
  readonly from: string;
  readonly to: string;
  readonly queues?: string;
  readonly batch: string;
  readonly lease: string;
  readonly quiet?: boolean;
}

export async function runRelay(options: RelayCommandOptions, signal: AbortSignal): Promise<void> {
  // Flags first: a typo is a usage error (exit 2), not a connection made and dropped.
  const batchSize = positiveInt(options.batch, "--batch");
  const leaseMs = duration(options.lease, "--lease", { positive: true });
  const queues = options.queues === undefined ? undefined : splitList(options.queues);
  // An empty list would fall back to every queue: the opposite of what was asked (an empty
  // $RELAY_QUEUES, say). offload worker refuses it the same way.
  if (queues?.length === 0) throw new ConfigError(`--queues names no queue, got ${JSON.stringify(options.queues)}`);
  // Relayed into itself, every job is "found at the destination" and marked relayed, never run.
  // The same store under two spellings of its URL is caught by the relay itself (SameStoreError).
  if (options.from === options.to) {
    throw new ConfigError(`--from and --to name the same backend (${withoutPassword(options.from)}): a relay moves jobs from an outbox to another backend`);
  }
  const from = await openBackend(options.from);
  try {
    const to = await openBackend(options.to);
    try {
      const relay = new OutboxRelay({
        from, to, batchSize, leaseMs,
        ...(queues ? { queues } : {}),
        onError: (error) => console.error(`offload relay: ${toError(error).message}`),
        // A round that moved nothing (the destination down: its jobs handed back, the error
        // printed) is not news; "relayed 0" after each error read as if something had gone.
        onBatch: (count) => {
          if (!options.quiet && count > 0) console.log(`relayed ${count}`);
        },
      });
      if (!options.quiet) console.log(`offload relay ${relay.id}: ${from.name} → ${to.name}`);
      await relay.run(signal);
    } finally {
      await to.close();
    }
  } finally {
    await from.close();
  }
}

export function relayCommand(): Command {
  return new Command("relay")
    .description("move jobs from a PostgreSQL outbox to another backend, exactly once")
    .requiredOption("--from <url>", "the outbox the app enqueues into (postgres://…)")
    .requiredOption("--to <url>", "the backend workers run from (redis://…, postgres://…, sqlite://…)")
    .option("--queues <names>", "comma-separated queues to relay (default: every queue in the outbox)")
    .option("--batch <n>", "jobs per batch", "500")
    .option("--lease <duration>", "how long a batch is held before another relay may take it over", "30s")
    .option("--quiet", "print nothing but errors")
    .action(async (options: RelayCommandOptions) => {
      const stop = new AbortController();
      const onSignal = (): void => stop.abort();
      process.once("SIGINT", onSignal);
      process.once("SIGTERM", onSignal);
      try {
        await runRelay(options, stop.signal);
      } finally {
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
      }
    });
}

export function registerRelay(program: Command): void {
  // Built on their own (for tests), so they take the program's settings here: without its
  // exitOverride, a missing or unknown option exited 1 from inside commander, not 2 as a usage error.
  program.addCommand(relayCommand().copyInheritedSettings(program));
}
