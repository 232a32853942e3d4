// `offload queues`: jobs per state per queue, and how long the oldest queued job has waited.
import type { Command } from "commander";
import type { Offload } from "../../client/offload.ts";
import { queuesTable } from "../format.ts";

export function registerQueues(program: Command, open: () => Offload): void {
  program
    .command("queues")
    .description("counts per state per queue, and the age of the oldest queued job")
    .option("--json", "print JSON")
    .action(async (flags: { json?: boolean }) => {
      const offload = open();
      const counts = await offload.jobs.counts();
      console.log(flags.json ? JSON.stringify(counts, null, 2) : counts.length ? queuesTable(counts, offload.clock.now()) : "no queues yet");
      await offload.close();
    });
}
