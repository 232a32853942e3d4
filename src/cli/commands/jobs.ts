// `offload jobs list|show|retry|cancel|replay`: look at jobs and act on them, through the same
// service layer as the HTTP API.
import type { Command } from "commander";
import { ConfigError, InvalidStateError, JobNotFoundError } from "../../core/errors.ts";
import { isJobId } from "../../core/ids.ts";
import { nearMiss } from "../../core/near-miss.ts";
import { MAX_PAGE } from "../../client/job-filters.ts";
import type { Offload } from "../../client/offload.ts";
import { historyLines, jobDetail, jobsTable } from "../format.ts";
import type { JobEvent } from "../../backend/backend.ts";
import { instant, jobState, positiveInt } from "../options.ts";

type Open = () => Offload;

async function checkQueue(offload: Offload, queue: string | undefined): Promise<void> {
  if (queue === undefined) return;
  const known = (await offload.jobs.counts()).map((c) => c.queue);
  if (!known.includes(queue)) {
    const guess = nearMiss(queue, known);
    throw new ConfigError(`unknown queue ${queue}${guess ? ` (did you mean ${guess}?)` : ""} (queues with jobs: ${known.join(", ") || "none"})`);
  }
}

/** Every event a job keeps, read a page at a time. */
async function allEvents(offload: Offload, jobId: string): Promise<JobEvent[]> {
  const events: JobEvent[] = [];
  for (;;) {
    const page = await offload.jobs.events({ jobId, afterId: events.at(-1)?.id ?? 0, limit: 1_000 });
    events.push(...page);
    if (page.length < 1_000) return events;
  }
}

/** A value as one shell word: quoted when it holds more than letters, digits and . _ : / - */
function shellWord(value: string): string {
  return /^[\w.:/-]+$/.test(value) ? value : `'${value.replaceAll("'", "'\\''")}'`;
}

/**
 * Acts on each job of `ids` in turn (ids piped in from jobs list --json, say). One that cannot be
 * acted on (no such job, not in a state that allows it) is reported on stderr and the rest go on,
 * as xargs would run them one by one; the exit code is then 1. A backend failure stops the run.
 */
async function eachJob(open: Open, ids: readonly string[], act: (offload: Offload, id: string) => Promise<void>): Promise<void> {
  const offload = open();
  let refused = 0;
  try {
    for (const id of ids) {
      try {
        await act(offload, id);
      } catch (error) {
        if (!(error instanceof JobNotFoundError || error instanceof InvalidStateError)) throw error;
        console.error(`offload: ${error.name}: ${error.message}`);
        refused++;
      }
    }
  } finally {
    await offload.close();
  }
  if (refused > 0) process.exitCode = 1;
}

export function registerJobs(program: Command, open: Open): void {
  const jobs = program.command("jobs").description("list, inspect, retry, cancel and replay jobs");

  jobs
    .command("list")
    .description("list jobs, newest first, a page at a time")
    .option("-s, --state <state>", "only jobs in this state (e.g. failed)")
    .option("-q, --queue <name>", "only jobs of this queue")
    .option("-t, --task <name>", "only jobs of this task")
    .option("-n, --limit <n>", "at most this many", "50")
    .option("--before <id>", "only jobs older than this one: the next page after a page that ended with it")
    .option("--json", "print JSON")
    .action(async (flags: { state?: string; queue?: string; task?: string; limit: string; before?: string; json?: boolean }) => {
      const state = jobState(flags.state);
      const limit = positiveInt(flags.limit, "--limit");
      // Checked here too, so that the message names the flag, as for every other bad value.
      if (limit > MAX_PAGE) throw new ConfigError(`--limit must be at most ${MAX_PAGE.toLocaleString("en-US")} (a page; --before gives the next), got ${JSON.stringify(flags.limit)}`);
      // An id is time-ordered, and the backends page on it; another string was a driver error on
      // PostgreSQL and an empty page elsewhere.
      if (flags.before !== undefined && !isJobId(flags.before)) throw new ConfigError(`--before must be a job id (the last id of the page before), got ${JSON.stringify(flags.before)}`);
      const offload = open();
      await checkQueue(offload, flags.queue);
      const list = await offload.jobs.list({ state, queue: flags.queue, task: flags.task, before: flags.before, limit });
      console.log(flags.json ? JSON.stringify(list, null, 2) : list.length ? jobsTable(list) : "no jobs");
      // Without --before only the newest page could be seen: say how to get the next. On stderr,
      // so the table can still be piped; not with --json, whose readers page by the last id.
      const last = list.at(-1);
      if (!flags.json && last !== undefined && list.length === limit) {
        const words = ["offload", "jobs", "list"];
        for (const [flag, value] of [["--state", state], ["--queue", flags.queue], ["--task", flags.task], ["--limit", String(limit)], ["--before", last.id]] as const) {
          if (value !== undefined) words.push(flag, shellWord(value));
        }
        console.error(`next page: ${words.join(" ")}`);
      }
      await offload.close();
    });

  jobs
    .command("show")
    .description("show one job: payload, result, every attempt's error")
    .argument("<id>")
    .option("--history", "also its history: states, progress and log lines, oldest first")
    .option("--json", "print JSON (with --history, the events as history)")
    .action(async (id: string, flags: { history?: boolean; json?: boolean }) => {
      const offload = open();
      const job = await offload.jobs.get(id);
      // Not by default: a job keeps up to 20,000 events (its log lines), a screenful of errors is the common need.
      const history = flags.history ? await allEvents(offload, id) : undefined;
      if (flags.json) console.log(JSON.stringify(history ? { ...job, history } : job, null, 2));
      else console.log(history ? `${jobDetail(job)}\n${historyLines(history)}` : jobDetail(job));
      await offload.close();
    });

  jobs
    .command("retry")
    .description("put failed or cancelled jobs back in their queues, with fresh attempts")
    .argument("<ids...>", "one or more job ids")
    .action(async (ids: string[]) => {
      await eachJob(open, ids, async (offload, id) => {
        await offload.jobs.retry(id);
        console.log(`job ${id} queued again`);
      });
    });

  jobs
    .command("cancel")
    .description("cancel jobs: at once if waiting; an active job is aborted by its worker")
    .argument("<ids...>", "one or more job ids")
    .action(async (ids: string[]) => {
      await eachJob(open, ids, async (offload, id) => {
        await offload.jobs.cancel(id);
        const job = await offload.jobs.get(id);
        // An active job stays active until its worker stops it: say the request is in. One that
        // had already succeeded or failed is left as it was (cancel is a no-op there): say that too.
        const said = job.state === "active" && job.cancelRequested ? "active, cancel requested (its worker aborts it)"
          : job.state === "succeeded" || job.state === "failed" ? `already ${job.state}, not cancelled`
            : job.state;
        console.log(`job ${id}: ${said}`);
      });
    });

  jobs
    .command("replay")
    .description("put failed jobs (the dead-letter state) back in their queues, with fresh attempts: every failed job unless filtered")
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
