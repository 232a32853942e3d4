// Child process for postgres-relay.redis.postgres.test.ts.
//   crash <from> <to>: relays with a destination that, after its 3rd delivered batch, reports the
//                      batch's ids on stdout and hangs before the relay can mark them in the
//                      outbox (the parent SIGKILLs it there: the worst moment to die).
//   cli <from> <to>:   runs the `offload relay` command until SIGTERM.
import type { Backend, EnqueueRequest, EnqueueResult } from "../../src/backend/backend.ts";
import { openBackend } from "../../src/backend/open.ts";
import { OutboxRelay } from "../../src/backend/postgres/outbox-relay.ts";
import { relayCommand } from "../../src/cli/commands/relay.ts";

const [mode, from, to] = process.argv.slice(2);
if (!mode || !from || !to) throw new Error("usage: postgres-relay-child.ts crash|cli <from> <to>");

if (mode === "cli") {
  await relayCommand().parseAsync(["--from", from, "--to", to, "--batch", "100", "--lease", "2s", "--quiet"], { from: "user" });
} else {
  const destination = await openBackend(to);
  let delivered = 0;
  const hanging: Backend = Object.create(destination) as Backend;
  hanging.enqueue = async (request: EnqueueRequest): Promise<EnqueueResult[]> => {
    const results = await destination.enqueue(request);
    if (++delivered === 3) {
      process.stdout.write(`${JSON.stringify({ delivered: request.jobs.map((j) => j.id) })}\n`);
      await new Promise(() => {}); // never marked: killed here
    }
    return results;
  };
  const relay = new OutboxRelay({ from: await openBackend(from), to: hanging, batchSize: 100, leaseMs: 2_000 });
  await relay.run(new AbortController().signal);
}
