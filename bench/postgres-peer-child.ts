// A worker process for the graphile-worker and pg-boss side of bench/postgres.ts, speaking the same
// IPC messages as bench/offload-child.ts: `drain` works through N no-op jobs and reports the time
// and its peak RSS; `latency` reports the wall time at which each job started.
//   node bench/postgres-peer-child.ts <graphile|graphile-tuned|pg-boss> <url> <schema> <drain|latency> <task> <concurrency> [count]
import { Logger, run } from "graphile-worker";
import { PgBoss } from "pg-boss";
import pg from "pg";
import { type ChildMessage, wallNow } from "./measure.ts";

const [system = "", url = "", schema = "", mode = "drain", task = "", concurrencyText = "50", countText = "0"] = process.argv.slice(2);
const concurrency = Number(concurrencyText);
const count = Number(countText);
const send = (m: ChildMessage): void => {
  process.send?.(m);
};

let seen = 0;
let first = 0;
let finish: () => void = () => {};
const finished = new Promise<void>((resolve) => (finish = resolve));

/** Called once per job at its start; returns when the no-op job is done. */
function onJob(id: string): void {
  if (mode === "latency") send({ type: "started", at: wallNow(), id });
  if (first === 0) first = performance.now();
}

function onDone(): void {
  if (mode === "drain" && ++seen === count) finish();
}

let stop: () => Promise<void>;

if (system === "pg-boss") {
  const boss = new PgBoss({ connectionString: url, schema, useListenNotify: true, max: Math.max(10, concurrency) });
  boss.on("error", (e) => console.error(`pg-boss: ${e.message}`));
  await boss.start();
  if (mode === "drain" && concurrency === 1) {
    // pg-boss's work() waits a polling interval between single-job fetches (its burst modes need
    // batches or minute-old stats), so c = 1 is measured as its plain fetch/complete loop.
    void (async () => {
      while (seen < count) {
        const [job] = await boss.fetch(task);
        if (!job) continue;
        onJob(job.id);
        await boss.complete(task, job.id);
        onDone();
      }
    })();
  } else {
    // A batch per fetch: batchSize = concurrency, burst while batches come back full, every job of
    // a batch in parallel. Latency: one job per fetch, `concurrency` fetch loops, woken by NOTIFY.
    const options = mode === "latency"
      ? { batchSize: 1, localConcurrency: concurrency, pollingIntervalSeconds: 0.5 }
      : { batchSize: concurrency, burstWhenBatchFull: true, pollingIntervalSeconds: 0.5 };
    await boss.work(task, options, async (jobs) => {
      await Promise.all(jobs.map(async (job) => {
        onJob(job.id);
        onDone();
      }));
    });
  }
  stop = () => boss.stop({ graceful: true });
} else {
  const tuned = system === "graphile-tuned";
  const runner = await run({
    connectionString: url,
    schema,
    concurrency,
    noHandleSignals: true,
    logger: new Logger(() => () => {}), // its default logs every job to stdout, which would be what we measure
    pollInterval: 2_000,
    maxPoolSize: Math.max(10, concurrency + 1),
    taskList: {
      [task]: async (_payload, helpers) => {
        onJob(helpers.job.id);
        onDone();
      },
    },
    // The batching settings of graphile-worker's performance docs.
    ...(tuned ? { preset: { worker: { localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } } } : {}),
  });
  stop = () => runner.stop();
}

process.once("SIGTERM", () => {
  void stop().then(() => process.exit(0));
});
send({ type: "ready" });
if (mode === "drain") {
  await finished;
  await untilRecorded();
  const ms = performance.now() - first;
  send({ type: "drained", ms, count, maxRssMiB: process.resourceUsage().maxRSS / 1024 });
}

/**
 * Both peers run a handler before its completion is written (graphile-worker batches them after
 * the handler returns; pg-boss completes a batch after its handlers). Offload's drain ends at its
 * last `succeeded` event, which comes after the write commits, so a peer's drain ends only when
 * its database shows every job finished: graphile-worker deletes completed jobs, pg-boss marks them.
 */
async function untilRecorded(): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const sql = system === "pg-boss"
    ? `select count(*)::int as n from "${schema}".job where name = $1 and state <> 'completed'`
    : `select count(*)::int as n from "${schema}"._private_jobs j join "${schema}"._private_tasks t on t.id = j.task_id where t.identifier = $1`;
  try {
    for (;;) {
      const { rows } = await client.query<{ n: number }>(sql, [task]);
      if (rows[0]?.n === 0) return;
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  } finally {
    await client.end();
  }
}
