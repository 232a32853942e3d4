// `offload jobs list|show|retry|cancel|replay`: look at jobs and act on them, through the same
// service layer as the HTTP API.
import type { Command } from "commander";
import { ConfigError } from "../../core/errors.ts";
import type { Offload } from "../../client/offload.ts";
import { jobDetail, jobsTable } from "../format.ts";
import { instant, jobState, positiveInt } from "../options.ts";

type Open = () => Offload;

async function checkQueue(offload: Offload, queue: string | undefined): Promise<void> {
  if (queue === undefined) return;
  const known = (await offload.jobs.counts()).map((c) => c.queue);
  if (!known.includes(queue)) throw new ConfigError(`unknown queue ${queue} (queues with jobs: ${known.join(", ") || "none"})`);
}

export function registerJobs(program: Command, open: Open): void {
  const jobs = program.command("jobs").description("list, inspect, retry, cancel and replay jobs");

  jobs
    .command("list")
    .description("list jobs, newest first")
    .option("-s, --state <state>", "only jobs in this state (e.g. failed)")
    .option("-q, --queue <name>", "only jobs of this queue")
    .option("-t, --task <name>", "only jobs of this task")
    .option("-n, --limit <n>", "at most this many", "50")
    .option("--json", "print JSON")
    .action(async (flags: { state?: string; queue?: string; task?: string; limit: string; json?: boolean }) => {
      const offload = open();
      const state = jobState(flags.state);
      await checkQueue(offload, flags.queue);
      const list = await offload.jobs.list({ state, queue: flags.queue, task: flags.task, limit: positiveInt(flags.limit, "--limit") });
      console.log(flags.json ? JSON.stringify(list, null, 2) : list.length ? jobsTable(list) : "no jobs");
      await offload.close();
    });

  jobs
    .command("show")
    .description("show one job: payload, result, every attempt's error")
    .argument("<id>")
    .option("--json", "print JSON")
    .action(async (id: string, flags: { json?: boolean }) => {
      const offload = open();
      const job = await offload.jobs.get(id);
      console.log(flags.json ? JSON.stringify(job, null, 2) : jobDetail(job));
      await offload.close();
    });

  jobs
    .command("retry")
    .description("put a failed or cancelled job back in its queue, with fresh attempts")
    .argument("<id>")
    .action(async (id: string) => {
      const offload = open();
      await offload.jobs.retry(id);
      console.log(`job ${id} queued again`);
      await offload.close();
    });

  jobs
    .command("cancel")
    .description("cancel a job: at once if waiting; an active job is aborted by its worker")
    .argument("<id>")
    .action(async (id: string) => {
      const offload = open();
      await offload.jobs.cancel(id);
      const job = await offload.jobs.get(id);
      // An active job stays active until its worker stops it: say the request is in. One that
      // had already succeeded or failed is left as it was (cancel is a no-op there): say that too.
      const said = job.state === "active" && job.cancelRequested ? "active, cancel requested (its worker aborts it)"
        : job.state === "succeeded" || job.state === "failed" ? `already ${job.state}, not cancelled`
          : job.state;
      console.log(`job ${id}: ${said}`);
      await offload.close();
    });

  jobs
    .command("replay")
    .description("put failed jobs (the dead-letter state) back in their queues")
    .option("-q, --queue <name>", "only jobs of this queue")
    .option("-t, --task <name>", "only jobs of this task")
    .option("--since <time>", "only jobs that failed at or after this time (ISO 8601)")
    .option("--until <time>", "only jobs that failed at or before this time (ISO 8601)")
    .action(async (flags: { queue?: string; task?: string; since?: string; until?: string }) => {
      const offload = open();
      await checkQueue(offload, flags.queue);
      const n = await offload.jobs.replay({ queue: flags.queue, task: flags.task, since: instant(flags.since, "--since"), until: instant(flags.until, "--until") });
      console.log(`${n} failed job${n === 1 ? "" : "s"} queued again`);
      await offload.close();
    });
}
