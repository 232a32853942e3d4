// `offload worker <app-module>`: runs a worker over the app's tasks until SIGTERM or SIGINT, then
// shuts down gracefully: stop claiming, let active jobs finish within the grace period, hand the
// rest back to the queue, exit 0. A second signal exits at once (jobs come back by lease expiry).
import type { Command } from "commander";
import { ConfigError, toError, withoutPassword } from "../../core/errors.ts";
import type { WorkerEvent } from "../../worker/worker.ts";
import { loadApp } from "../load-app.ts";
import { duration, positiveInt, splitList } from "../options.ts";

interface WorkerFlags {
  readonly queues?: string;
  readonly concurrency: string;
  readonly lease?: string;
  readonly grace?: string;
  readonly quiet?: boolean;
}

function describe(event: WorkerEvent): string {
  const head = `${new Date().toISOString()} ${event.type.padEnd(10)} ${event.job.task} ${event.job.id}`;
  switch (event.type) {
    case "started":
      return `${head} attempt ${event.job.attempt}/${event.job.maxAttempts}`;
    case "succeeded":
      return `${head} in ${event.ms} ms`;
    case "retrying":
      return `${head} ${event.error.message} (retry at ${new Date(event.retryAt).toISOString()})`;
    case "failed":
      return `${head} ${event.error.name}: ${event.error.message}`;
    default:
      return head;
  }
}

export function registerWorker(program: Command): void {
  program
    .command("worker")
    .description("run a worker over the tasks of an app module until SIGTERM/SIGINT")
    .argument("<app-module>", "a module that exports your Offload instance (as default, as `offload`, or as its only Offload export)")
    .option("-q, --queues <names>", "comma-separated queues to work (default: every queue the app's tasks use)")
    .option("-c, --concurrency <n>", "jobs run at once", "10")
    .option("--lease <duration>", "how long a claimed job is held without a heartbeat before another worker may run it (default: 15s)")
    .option("--grace <duration>", "on SIGTERM/SIGINT, how long active jobs may finish before they are aborted and handed back (default: 10s; a second signal exits at once)")
    .option("--quiet", "print nothing per job")
    .action(async (appModule: string, flags: WorkerFlags, command: Command) => {
      // Signals are handled from the start: one that comes while the app loads or the worker
      // starts (and may have claimed jobs already) must stop it gracefully, not kill it.
      let signalled: string | undefined;
      let stop: ((signal: string) => void) | undefined;
      const onSignal = (signal: string): void => {
        if (signalled !== undefined) {
          console.error(`${signal} again: exiting now; active jobs return by lease expiry`);
          process.exit(130);
        }
        signalled = signal;
        stop?.(signal);
      };
      process.on("SIGTERM", () => onSignal("SIGTERM"));
      process.on("SIGINT", () => onSignal("SIGINT"));

      const concurrency = positiveInt(flags.concurrency, "--concurrency");
      const lease = flags.lease === undefined ? undefined : duration(flags.lease, "--lease", { positive: true });
      const grace = flags.grace === undefined ? undefined : duration(flags.grace, "--grace");
      const offload = await loadApp(appModule);
      // --backend reaches the app as OFFLOAD_URL, which an Offload that names its own backend
      // does not read: say so, rather than work another backend than the one asked for unsaid.
      const asked = command.parent?.opts<{ backend?: string }>().backend;
      if (asked !== undefined && asked !== offload.url) {
        console.error(`offload worker: --backend ${withoutPassword(asked)} is not used: ${appModule} names its own backend (${withoutPassword(offload.url)}); make its Offload with new Offload() to take the URL from --backend or OFFLOAD_URL`);
      }
      const known = offload.registry.queues();
      const queues = flags.queues === undefined ? known : splitList(flags.queues);
      // An empty list would fall back to every queue: the opposite of what was asked.
      if (queues.length === 0) throw new ConfigError(`--queues names no queue, got ${JSON.stringify(flags.queues)}`);
      // A typo would start a worker that never does anything: said loudly. Not refused: a queue
      // that tasks reach only through `enqueue(p, { queue })` has no job yet on a fresh deploy,
      // and its worker exiting there would restart in a loop until the first one came (Celery's
      // -Q, Sidekiq's -q and BullMQ's Worker all take whatever name they are given).
      const undeclared = queues.filter((q) => !known.includes(q));
      if (undeclared.length > 0) {
        const withJobs = (await offload.jobs.counts()).map((c) => c.queue);
        const unknown = undeclared.filter((q) => !withJobs.includes(q));
        if (unknown.length > 0) {
          console.error(`offload worker: no task of ${appModule} uses queue ${unknown.join(", ")} and no job was sent to it yet: a typo? Working it anyway (known: ${known.join(", ") || "none"}; queues with jobs: ${withJobs.join(", ") || "none"})`);
        }
      }
      const worker = offload.worker({
        queues,
        concurrency,
        ...(lease === undefined ? {} : { lease }),
        ...(grace === undefined ? {} : { shutdownGrace: grace }),
      });
      // Job lines wait for the start line: on SQLite the first claim's jobs start before start()
      // resolves, and a log read from the top showed jobs before the worker that ran them.
      let early: string[] | undefined = [];
      const flushEarly = (): void => {
        const lines = early ?? [];
        early = undefined;
        for (const line of lines) console.log(line);
      };
      if (!flags.quiet) {
        worker.on("job", (e) => {
          if (early) early.push(describe(e));
          else console.log(describe(e));
        });
      }
      worker.on("error", (e) => console.error(`${new Date().toISOString()} error      ${e.message}`));

      stop = (signal: string): void => {
        flushEarly();
        console.log(`${signal}: stopping (finishing ${worker.active.length} active jobs)`);
        // stop() also ends a start() still under way, before or after it claimed.
        worker
          .stop()
          .then(() => offload.close())
          .then(() => process.exit(0))
          .catch((error: unknown) => {
            console.error(`offload: ${toError(error).message}`);
            process.exit(1);
          });
      };
      if (signalled !== undefined) {
        stop(signalled);
        return;
      }
      await worker.start();
      if (signalled !== undefined) return;
      // The worker's own list (each queue once); the URL without its password: this goes to logs.
      console.log(`offload worker ${worker.id}: queues ${worker.queues.join(", ")}, concurrency ${worker.concurrency}, backend ${withoutPassword(offload.url)}`);
      flushEarly();
    });
}
