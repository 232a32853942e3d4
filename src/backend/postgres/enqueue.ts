// Enqueue for PostgreSQL: a whole batch is one INSERT ... SELECT FROM unnest(...) statement (with
// the jobs' first state events in a CTE), so it is atomic and costs one round trip whatever its
// size. Batches without idempotency keys (the common, fast path) read nothing back: the id and
// state of each job are known from what was sent, and that is all the port promises.
// Batches with keys go through ON CONFLICT on the partial unique index (per task and key) and read
// back the jobs that already held a key.
import type { EnqueueResult, NewJob } from "../backend.ts";
import type { QueryName } from "./queries.ts";
import { type Row, toJobRecord } from "./rows.ts";
import { storableText } from "./text.ts";
import type { RunQuery } from "./transaction.ts";

/** What a plain insert reports: the id and the state it was stored in (all the port promises). */
function inserted(job: NewJob, now: number): EnqueueResult["job"] {
  return { id: job.id, state: job.runAt > now ? "scheduled" : "queued" };
}

/** The SQL texts, and the schema's NOTIFY channel that the inserts notify on. */
export interface EnqueueStatements {
  readonly sql: Record<QueryName, string>;
  readonly channel: string;
}

export async function enqueueJobs(
  run: RunQuery,
  { sql, channel }: EnqueueStatements,
  jobs: readonly NewJob[],
  now: number,
): Promise<EnqueueResult[]> {
  const columns = [
    jobs.map((j) => j.id), jobs.map((j) => j.task), jobs.map((j) => j.queue), jobs.map((j) => j.payloadJson),
    jobs.map((j) => j.priority), jobs.map((j) => j.runAt), jobs.map((j) => j.maxAttempts),
  ];
  const owners = jobs.map((j) => j.owner ?? null);
  if (jobs.every((j) => j.key === undefined)) {
    await run(sql["enqueue"], [...columns, owners, now, channel]);
    return jobs.map((job) => ({ job: inserted(job, now), created: true }));
  }
  // Keys as stored (text): a key with a lone surrogate comes back with U+FFFD in its place, and
  // is matched to its holder by that form.
  const keys = jobs.map((j) => (j.key === undefined ? undefined : storableText(j.key)));
  const rows = await run(sql["enqueue-keyed"], [...columns, keys.map((k) => k ?? null), owners, now, channel]);
  const created = new Set<string>();
  const holders = new Map<string, Row>(); // by keySlot(task, key): keys are per task
  for (const row of rows) {
    if (row["created"] === true) created.add(String(row["id"]));
    if (typeof row["key"] === "string") holders.set(keySlot(String(row["task"]), row["key"]), row);
  }
  const missing = (): [string[], string[]] => {
    const pairs = jobs.flatMap((j, i) => {
      const key = keys[i];
      return !created.has(j.id) && key !== undefined && !holders.has(keySlot(j.task, key)) ? [[j.task, key] as const] : [];
    });
    return [pairs.map(([task]) => task), pairs.map(([, key]) => key)];
  };
  const found = (row: Row): void => {
    holders.set(keySlot(String(row["task"]), String(row["key"])), row);
  };
  if (missing()[0].length > 0) {
    // The holder committed while our statement ran, after its snapshot: a new statement sees it.
    for (const row of await run(sql["enqueue-find-key"], missing())) found(row);
  }
  if (missing()[0].length > 0) {
    // ...unless it has finished since, freeing the key: it is still the job that held the key
    // during this enqueue, so it is the answer (a new job would be a second one for that moment).
    for (const row of await run(sql["enqueue-find-last-key"], missing())) found(row);
  }
  return jobs.map((job, i) => {
    if (created.has(job.id)) return { job: inserted(job, now), created: true };
    const key = keys[i];
    const holder = key === undefined ? undefined : holders.get(keySlot(job.task, key));
    if (!holder) throw new Error(`enqueue: job ${job.id} was neither stored nor matched by key ${String(job.key)}`);
    return { job: toJobRecord(holder), created: false };
  });
}

/** A task and one of its keys, as one map key (keys are per task). */
function keySlot(task: string, key: string): string {
  return JSON.stringify([task, key]);
}
