// Shared by the PostgreSQL test files: every test gets its own schema on the shared server
// (127.0.0.1:5432, or $OFFLOAD_TEST_POSTGRES_URL) and drops it afterwards, so test files running
// in parallel never see each other's jobs.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import pg from "pg";
import { PostgresBackend, type PostgresOptions } from "../../src/backend/postgres/postgres-backend.ts";
import { uuidv7 } from "../../src/core/ids.ts";
import { Offload } from "../../src/index.ts";
import { T0, newJob } from "../conformance/fixtures.ts";

export const POSTGRES_URL = process.env["OFFLOAD_TEST_POSTGRES_URL"] ?? "postgres://postgres@127.0.0.1:5432/test";

export function uniqueSchema(prefix = "t"): string {
  return `${prefix}_${randomBytes(6).toString("hex")}`;
}

export async function dropSchema(schema: string, url = POSTGRES_URL): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}

/** Runs `body` with a client of `url` (the test server by default), ended afterwards. */
export async function withClient<T>(body: (client: pg.Client) => Promise<T>, url = POSTGRES_URL): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await body(client);
  } finally {
    await client.end();
  }
}

/** Two connected clients of the test server, for a test that plays other sessions; the test ends them. */
export async function connectedPair(): Promise<[pg.Client, pg.Client]> {
  const pair: [pg.Client, pg.Client] = [new pg.Client({ connectionString: POSTGRES_URL }), new pg.Client({ connectionString: POSTGRES_URL })];
  await Promise.all(pair.map((client) => client.connect()));
  return pair;
}

/** A backend in a fresh schema that drops its schema when closed. */
export async function openIsolated(options: Partial<PostgresOptions> = {}): Promise<PostgresBackend> {
  const schema = options.schema ?? uniqueSchema();
  const url = options.url ?? POSTGRES_URL;
  const backend = await PostgresBackend.open({ ...options, url, schema });
  const close = backend.close.bind(backend);
  let dropped: Promise<void> | undefined;
  backend.close = () => {
    dropped ??= close().then(() => dropSchema(schema, url));
    return dropped;
  };
  return backend;
}

/**
 * An Offload on a fresh schema that also holds an app table, `"<schema>".orders (id, note)`, for
 * the transactional-enqueue tests; closed and dropped afterwards.
 */
export async function withOrdersSchema(prefix: string, body: (f: { schema: string; offload: Offload }) => Promise<void>): Promise<void> {
  const schema = uniqueSchema(prefix);
  const offload = new Offload({ backend: `${POSTGRES_URL}?schema=${schema}` });
  try {
    await offload.backend(); // opens and migrates the schema
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    try {
      await client.query(`CREATE TABLE "${schema}".orders (id serial PRIMARY KEY, note text NOT NULL)`);
    } finally {
      await client.end();
    }
    await body({ schema, offload });
  } finally {
    await offload.close();
    await dropSchema(schema);
  }
}

/**
 * Resolves once a session of this database matches `condition` (SQL over pg_stat_activity, e.g.
 * "wait_event_type = 'Lock' AND query LIKE $1"): how a test knows that a statement it started is
 * blocked where it wants it, before it lets the blocker go. Asks again after each answer, yielding
 * a turn between looks. Rejects if `operation` settles first: it was meant to be blocked.
 */
export async function untilSessionWaits(observer: pg.Client, condition: string, values: unknown[], operation: Promise<unknown>): Promise<void> {
  let settled = false;
  operation.then(() => (settled = true), () => (settled = true));
  for (;;) {
    const { rows } = await observer.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND ${condition}`,
      values,
    );
    if ((rows[0]?.n ?? 0) > 0) return;
    if (settled) throw new Error(`the operation finished without ever waiting (${condition})`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/**
 * Makes event inserts into `schema` wait on advisory lock `key` (which the caller takes with
 * pg_advisory_lock and lets go when the statement may go on): a claim or any write is then held
 * between taking its rows and committing. `when` (SQL over NEW, default every insert) picks the
 * inserts held; `first` (SQL statements) runs before the wait, e.g. a lock_timeout of its own.
 */
export async function holdEventInserts(admin: pg.Client, schema: string, key: number, options: { when?: string; first?: string } = {}): Promise<void> {
  await admin.query(`CREATE FUNCTION "${schema}".hold() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF ${options.when ?? "true"} THEN
        ${options.first ?? ""}
        PERFORM pg_advisory_xact_lock_shared(${key});
      END IF;
      RETURN NEW;
    END $$`);
  await admin.query(`CREATE TRIGGER hold BEFORE INSERT ON "${schema}".events FOR EACH ROW EXECUTE FUNCTION "${schema}".hold()`);
}

/** Counts the new-work signals `backend` gives its watchers from now on (after the listener's first look-again). */
export async function newWorkSignals(backend: PostgresBackend): Promise<() => number> {
  let work = 0;
  backend.watch(() => work++, { newWork: true });
  await backend.listening();
  await new Promise<void>((resolve) => setImmediate(resolve)); // the listener's first look-again
  const before = work;
  return () => work - before;
}

/**
 * Three Offload instances on `url`, a worker of concurrency 10 in each, drain `count` jobs of one
 * queue: how many times each job ran (by payload), and the errors the workers reported.
 */
export async function workersSharingAQueue(url: string, count: number): Promise<{ runs: number[]; errors: string[] }> {
  const runs = new Array<number>(count).fill(0);
  const errors: string[] = [];
  const instances = [1, 2, 3].map(() => new Offload({ backend: url }));
  const tasks = instances.map((offload) => offload.task({
    name: "count",
    run: (payload: { n: number }) => {
      runs[payload.n] = (runs[payload.n] ?? 0) + 1;
      return payload.n;
    },
  }));
  const workers = instances.map((offload) => offload.worker({ concurrency: 10 }));
  try {
    for (const worker of workers) {
      worker.on("error", (error) => errors.push(String(error)));
      await worker.start();
    }
    const [task] = tasks;
    if (!task) throw new Error("no task");
    const handles = [];
    for (let i = 0; i < count; i += 100) handles.push(...await task.enqueueMany(Array.from({ length: Math.min(100, count - i) }, (_, k) => ({ n: i + k }))));
    await Promise.all(handles.map((h) => h.result({ timeout: "50s" })));
    return { runs, errors };
  } finally {
    for (const worker of workers) await worker.stop();
    await Promise.all(instances.map((offload) => offload.close()));
  }
}

/**
 * A claim past its reply timeout (its event insert waits behind a lock such as CREATE INDEX takes
 * on the events table) must be stopped on the server before claim() answers: its job stays queued
 * with no attempt charged, and the next claim takes it. Left to commit after the reclaim had
 * looked, it sat active under a lease nobody held until rescue charged it an attempt it never ran.
 * The test of this on a direct connection and through a transaction pooler.
 */
export async function assertStalledClaimStopped(b: PostgresBackend): Promise<void> {
  const admin = new pg.Client({ connectionString: POSTGRES_URL });
  await admin.connect();
  try {
    const job = newJob({ id: uuidv7(T0), runAt: T0 });
    await b.enqueue({ jobs: [job], now: T0 });
    // Past the claim's reply timeout: a third of a 3 s lease, at least 1 s.
    await admin.query("BEGIN");
    await admin.query(`LOCK TABLE "${b.schema}".events IN SHARE MODE`);
    // Nothing was handed over, and the claim fails with its timeout rather than answer "no jobs"
    // (a worker would read that as an empty queue): the worker claims again after its back-off.
    await assert.rejects(b.claim({ queues: ["q"], limit: 1, worker: "w", leaseMs: 3_000, now: T0 }), /Query read timeout/);
    await admin.query("COMMIT");
    // A statement left running would go on once the lock is gone, and commit: none may be.
    const running = await admin.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid() AND query LIKE $1",
      [`%"${b.schema}".jobs%`],
    );
    assert.equal(running.rows[0]?.n, 0, "the claim's server session was stopped before claim() answered");
    const after = await b.getJob(job.id);
    assert.equal(after?.state, "queued");
    assert.equal(after?.attempt, 0, "no attempt charged for a run that never happened");
    const [next] = await b.claim({ queues: ["q"], limit: 1, worker: "w", leaseMs: 3_000, now: T0 + 1 });
    assert.equal(next?.job.id, job.id);
    assert.equal(next?.job.attempt, 1);
  } finally {
    await admin.query("ROLLBACK").catch(() => {});
    await admin.end();
    await b.close();
  }
}

