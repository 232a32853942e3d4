// Work that must follow a statement's result, not the size of the tables: listing jobs with
// filters, each step of a prune, a rescue sweep. Checked by the rows the executed plan reads from
// jobs and events (EXPLAIN ANALYZE), on a table large enough that reading all of it shows: a page
// or a step reads about its own rows, however many jobs are retained. A count of rows, not a time, so
// the machine's load cannot make these pass or fail.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import type { Backend, ListFilter } from "../../src/backend/backend.ts";
import { loadQueries, quoteIdent } from "../../src/backend/postgres/queries.ts";
import { LEASE, T0, attemptError, newJob } from "../conformance/fixtures.ts";
import { openIsolated, uniqueSchema, withClient } from "./postgres-helpers.ts";

interface PlanNode {
  readonly "Node Type": string;
  readonly "Relation Name"?: string;
  readonly "Actual Rows"?: number;
  readonly "Actual Loops"?: number;
  readonly "Rows Removed by Filter"?: number;
  readonly "Rows Removed by Index Recheck"?: number;
  readonly "Index Name"?: string;
  readonly Plans?: readonly PlanNode[];
}

function nodes(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodes)];
}

const INDEX_SCANS = new Set(["Index Scan", "Index Only Scan", "Bitmap Index Scan"]);

/**
 * Rows the plan's scans of `table` read: those they returned and those they read and dropped.
 * A bitmap's index scan names no relation: counted when its index is one of the table's.
 */
function rowsRead(plan: PlanNode, indexes: ReadonlySet<string>, table: string): number {
  return nodes(plan)
    .filter((n) => n["Relation Name"] === table || (INDEX_SCANS.has(n["Node Type"]) && indexes.has(n["Index Name"] ?? "")))
    .reduce((sum, n) => sum + ((n["Actual Rows"] ?? 0) + (n["Rows Removed by Filter"] ?? 0) + (n["Rows Removed by Index Recheck"] ?? 0)) * (n["Actual Loops"] ?? 1), 0);
}

async function indexesOf(client: pg.Client, schema: string, table: string): Promise<Set<string>> {
  const { rows } = await client.query<{ name: string }>(
    "SELECT indexname AS name FROM pg_indexes WHERE schemaname = $1 AND tablename = $2", [schema, table]);
  return new Set(rows.map((r) => r.name));
}

/**
 * The executed plan of `sql` with `values`, rolled back, planned as the backend plans it (custom
 * plans, default settings). `noSeqScan`: a table of 20,000 jobs is small enough that reading all
 * of it is the cheapest way to fetch a few hundred rows, which at millions it is not; with
 * sequential scans priced out, the plan is the one a large table gets.
 */
async function executed(client: pg.Client, sql: string, values: unknown[], noSeqScan = false): Promise<PlanNode> {
  await client.query("BEGIN");
  try {
    if (noSeqScan) await client.query("SET LOCAL enable_seqscan = off");
    const { rows } = await client.query<{ "QUERY PLAN": [{ Plan: PlanNode }] }>({ text: `EXPLAIN (ANALYZE, FORMAT JSON) ${sql}`, values });
    const plan = rows[0]?.["QUERY PLAN"][0].Plan;
    assert.ok(plan, "a plan");
    return plan;
  } finally {
    await client.query("ROLLBACK");
  }
}

/** Enqueues `n` jobs of `queue` and `task` at `now`, claims them and ends each as `end` says. */
async function runMany(backend: Backend, n: number, queue: string, task: string, now: number, end: "succeeded" | "failed" | "queued"): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i += 1_000) {
    const jobs = Array.from({ length: Math.min(1_000, n - i) }, () => newJob({ queue, task, maxAttempts: 1 }));
    await backend.enqueue({ jobs, now });
    ids.push(...jobs.map((j) => j.id));
    if (end === "queued") continue;
    const claimed = await backend.claim({ queues: [queue], limit: jobs.length, worker: "w", leaseMs: LEASE, now });
    if (end === "succeeded") await backend.complete(claimed.map((c) => ({ id: c.job.id, token: c.token, resultJson: "null" })), now);
    else for (const c of claimed) await backend.fail({ id: c.job.id, token: c.token, error: attemptError(1, now), retryAt: undefined, now });
  }
  return ids;
}

describe("postgres: statements that must not read the whole table", () => {
  let backend: Backend & { schema: string };
  let rare: string[] = [];
  before(async () => {
    backend = await openIsolated({ schema: uniqueSchema("scale") });
    // 20,000 finished jobs of one queue and task; older, a few failed jobs of a rare queue and
    // task; newer, a few queued ones of the big queue.
    rare = await runMany(backend, 20, "rare", "rare-task", T0, "failed");
    await runMany(backend, 20_000, "big", "t", T0 + 1_000, "succeeded");
    await runMany(backend, 5, "big", "t", T0 + 2_000, "queued");
    // The newest jobs: a backlog in another queue, which a walk of the primary key for the big
    // queue's finished jobs would step over.
    await runMany(backend, 300, "backlog", "t", T0 + 3_000, "queued");
    await withClient(async (client) => client.query(`ANALYZE ${quoteIdent(backend.schema)}.jobs; ANALYZE ${quoteIdent(backend.schema)}.events`));
  });
  after(async () => backend.close());

  const filters: [string, Partial<ListFilter>, number][] = [
    ["a queue whose jobs are all older than the big queue's", { queue: "rare" }, 20],
    ["a queue with no job", { queue: "none" }, 0],
    ["a task whose jobs are all old", { task: "rare-task" }, 20],
    ["a state few jobs are in (failed)", { state: "failed" }, 20],
    ["a state no job is in (cancelled)", { state: "cancelled" }, 0],
    ["a queue and a state few of its jobs are in", { queue: "big", state: "queued" }, 5],
    ["a task and a state", { task: "t", state: "failed" }, 0],
    ["a queue and a task", { queue: "rare", task: "rare-task" }, 20],
    ["the queue that holds nearly every job", { queue: "big" }, 50],
    ["the queue that holds nearly every job, past a cursor", { queue: "big", before: "0" }, 0],
  ];
  for (const [what, filter, expected] of filters) {
    it(`listJobs by ${what} reads its page, not the table`, async () => {
      const listed = await backend.listJobs({ limit: 50, ...filter });
      assert.equal(listed.length, expected);
      await withClient(async (client) => {
        const values = [filter.state ?? null, filter.queue ?? null, filter.task ?? null, filter.before ?? null, 50];
        const plan = await executed(client, loadQueries(backend.schema)["list-jobs"], values, true);
        const read = rowsRead(plan, await indexesOf(client, backend.schema, "jobs"), "jobs");
        // The page's rows, read once from an index and once from the table, and a little slack;
        // queued jobs are read as far as the backlog that matches (305 jobs: with a task filter,
        // no index narrows it), never the 20,000 finished ones.
        assert.ok(read <= 4 * expected + 50 + 305, `read ${read} rows of jobs for a page of ${expected}`);
      });
    });
  }

  it("listJobs pages through a queue newest first with the cursor, each page read on its own", async () => {
    const seen: string[] = [];
    let before: string | undefined;
    for (;;) {
      const page = await backend.listJobs({ queue: "rare", limit: 7, before });
      seen.push(...page.map((j) => j.id));
      if (page.length < 7) break;
      before = page.at(-1)?.id;
    }
    assert.deepEqual(seen, [...rare].sort().reverse());
  });
});

describe("postgres: a prune step", () => {
  it("reads about the jobs and events it deletes, with 20,000 finished jobs retained before them", async () => {
    const backend = await openIsolated({ schema: uniqueSchema("scale") });
    try {
      // Stored first (so first in the table's pages, where a scan starts), 20,000 jobs finished
      // within retention; then 2,000 past it, which the prune deletes 100 at a time.
      const day = 86_400_000;
      await runMany(backend, 20_000, "big", "t", T0 + 10 * day, "succeeded");
      await runMany(backend, 2_000, "old", "t", T0, "succeeded");
      await withClient(async (client) => {
        await client.query(`ANALYZE ${quoteIdent(backend.schema)}.jobs; ANALYZE ${quoteIdent(backend.schema)}.events`);
        const cut = T0 + 7 * day;
        const plan = await executed(client, loadQueries(backend.schema).prune, [cut, cut, cut, 100]);
        const jobsRead = rowsRead(plan, await indexesOf(client, backend.schema, "jobs"), "jobs");
        const eventsRead = rowsRead(plan, await indexesOf(client, backend.schema, "events"), "events");
        // 100 jobs, each found in an index and read (locked, then deleted by primary key); their
        // events, three each (queued, active, succeeded), found in events_job and read.
        assert.ok(jobsRead <= 600, `read ${jobsRead} rows of jobs to delete 100`);
        assert.ok(eventsRead <= 1_000, `read ${eventsRead} rows of events to delete those of 100 jobs`);
      });
      assert.equal(await backend.prune({ succeeded: 7 * day, failed: 7 * day, cancelled: 7 * day }, T0 + 14 * day), 2_000, "every job past retention went, in steps");
    } finally {
      await backend.close();
    }
  });
});

describe("postgres: a rescue sweep", () => {
  it("with nothing expired reads no row, however many jobs were active since the last vacuum", async () => {
    const backend = await openIsolated({ schema: uniqueSchema("scale") });
    try {
      await withClient(async (client) => {
        // No vacuum during the test, as between two of a busy server's: each of these jobs leaves
        // its entry in the lease index (jobs_lease) behind when it finishes.
        await client.query(`ALTER TABLE ${quoteIdent(backend.schema)}.jobs SET (autovacuum_enabled = false)`);
        await runMany(backend, 5_000, "q", "t", T0, "succeeded");
        await runMany(backend, 3, "q", "t", T0, "queued");
        const running = await backend.claim({ queues: ["q"], limit: 3, worker: "w", leaseMs: 100 * LEASE, now: T0 });
        assert.equal(running.length, 3);
        const now = T0 + 2 * LEASE; // past the finished jobs' leases, within the running ones'
        assert.deepEqual(await backend.rescueExpired(now), { requeued: [], failed: [], cancelled: [] });
        const plan = await executed(client, loadQueries(backend.schema)["rescue-expired"], [now, 5_000]);
        const read = rowsRead(plan, await indexesOf(client, backend.schema, "jobs"), "jobs");
        assert.equal(read, 0, `a sweep that rescues nothing read ${read} rows of jobs`);
      });
    } finally {
      await backend.close();
    }
  });
});

describe("postgres: a rescue step", () => {
  it("reads each of 1,000 expired jobs about once, though the statistics expect none", async () => {
    const backend = await openIsolated({ schema: uniqueSchema("scale") });
    try {
      await runMany(backend, 1_000, "q", "t", T0, "queued");
      await withClient(async (client) => {
        // Statistics from before the claim: no job active, none expired (a fleet that died since).
        await client.query(`ANALYZE ${quoteIdent(backend.schema)}.jobs`);
        assert.equal((await backend.claim({ queues: ["q"], limit: 1_000, worker: "w", leaseMs: LEASE, now: T0 })).length, 1_000);
        const plan = await executed(client, loadQueries(backend.schema)["rescue-expired"], [T0 + 2 * LEASE, 5_000]);
        const read = rowsRead(plan, await indexesOf(client, backend.schema, "jobs"), "jobs");
        // Each job found in the lease index, locked, then read by primary key and updated.
        assert.ok(read <= 5_000, `read ${read} rows of jobs to rescue 1,000`);
      });
      // One attempt each (runMany), so each is failed: its last attempt's lease ran out.
      assert.equal((await backend.rescueExpired(T0 + 2 * LEASE)).failed.length, 1_000);
    } finally {
      await backend.close();
    }
  });
});
