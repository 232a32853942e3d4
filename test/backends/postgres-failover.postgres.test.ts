// Surviving a failover, as managed PostgreSQL does one (RDS Multi-AZ, Cloud SQL HA, Patroni): the
// primary dies, a streaming standby is promoted, and the name the app connects to (here a TCP
// proxy, FreezingProxy) moves to it while the old flows are cut. Workers and a producer that
// enqueues throughout must come back by themselves, the LISTEN connection with them.
//
// Replication is synchronous (postgres-replicas.ts): a commit is answered only once the standby has
// flushed it, so every enqueue the app saw acknowledged, and every completion a worker saw
// acknowledged, is on the new primary. What may be lost is what Offload commits asynchronously on
// purpose: a claim (docs/postgres.md, "A claim commits asynchronously"). A job claimed on the old
// primary can therefore come back `queued` on the new one and run again, and a completion that
// died with the old primary is written again, or its job rescued after its lease. So a handler may
// run twice only for a job that was claimed on the old primary and whose success was not yet
// acknowledged when it died (its run began before the name moved: nothing can be claimed between
// the crash and the move); a job first run after the move runs exactly once, and no job is
// acknowledged as succeeded twice.
import assert from "node:assert/strict";
import { describe, it, type TestContext } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import pg from "pg";
import { PostgresBackend } from "../../src/backend/postgres/postgres-backend.ts";
import { type JobRecord, Offload, type WorkerEvent } from "../../src/index.ts";
import { until } from "../support/until.ts";
import { FreezingProxy } from "./freezing-proxy.ts";
import { type ReplicatedPair, startReplicatedPair } from "./postgres-replicas.ts";

const INITIAL_JOBS = 200;
/** Jobs the producer must have had acknowledged after the failover before it stops. */
const ENQUEUED_AFTER = 40;

/** Waits for a condition on what the workers report, checked at each of their events: no polling. */
class EventGate {
  readonly #waiters = new Set<{ holds: () => boolean; resolve: () => void }>();

  check(): void {
    for (const waiter of this.#waiters) {
      if (!waiter.holds()) continue;
      this.#waiters.delete(waiter);
      waiter.resolve();
    }
  }

  async until(holds: () => boolean, what: string, limitMs: number): Promise<void> {
    if (holds()) return;
    let timer: NodeJS.Timeout | undefined;
    const waiter = { holds, resolve: () => {} };
    try {
      await new Promise<void>((resolve, reject) => {
        waiter.resolve = resolve;
        this.#waiters.add(waiter);
        timer = setTimeout(() => reject(new Error(`${what}: not reached within ${limitMs} ms`)), limitMs);
      });
    } finally {
      clearTimeout(timer);
      this.#waiters.delete(waiter);
    }
  }
}

/** Every job of the backend, newest first, page by page. */
async function allJobs(offload: Offload): Promise<JobRecord[]> {
  const jobs: JobRecord[] = [];
  for (;;) {
    const page = await offload.jobs.list({ limit: 500, before: jobs.at(-1)?.id });
    jobs.push(...page);
    if (page.length < 500) return jobs;
  }
}

/** Whether a server session of Offload's LISTENs on its channel (the listener is back). */
async function listening(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(`SELECT 1 FROM pg_stat_activity WHERE query = 'LISTEN "offload:offload"'`)).rowCount === 1;
  } finally {
    await client.end();
  }
}

/** Offload's sessions on a server (application_name "offload"). */
async function offloadSessions(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'offload'")).rows[0]?.n ?? 0;
  } finally {
    await client.end();
  }
}

/** The SQLSTATE of an error or of the first error down its cause chain that has one. */
function sqlState(error: unknown): string | undefined {
  for (let current = error, depth = 0; current instanceof Error && depth < 10; current = current.cause, depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string" && /^[0-9A-Z]{5}$/.test(code)) return code;
  }
  return undefined;
}

/**
 * Where the name points between the crash and the move: nowhere ("none": at the dead primary), or
 * at the old primary up again taking no writes, in recovery ("standby") or fenced by
 * default_transaction_read_only ("read-only"; it takes LISTEN there).
 */
type Detour = "none" | "standby" | "read-only";

/**
 * Runs workers and a producer through the proxy, fails the primary over to the standby mid-run and
 * checks what survived.
 */
async function failOver(t: TestContext, detour: Detour): Promise<void> {
  const pair: ReplicatedPair = await startReplicatedPair();
  const proxy = await FreezingProxy.start({ host: "127.0.0.1", port: pair.primary.port });
  try {
    const url = `postgres://postgres@127.0.0.1:${proxy.port}/postgres`;
    // Workers poll every 30 s and the listener every 60 s: a job they start sooner was announced
    // by a notification, so the LISTEN connection was back on the new primary.
    const troubles: Error[] = [];
    const backend = await PostgresBackend.open({ url, pollMs: 60_000, onConnectionError: (error) => troubles.push(error) });
    const consumer = new Offload({ backend });
    const producer = new Offload({ backend: url });
    try {
      await run(t, { pair, proxy, consumer, producer, detour, troubles });
    } finally {
      await producer.close();
      await consumer.close();
      await backend.close();
    }
  } finally {
    await proxy.close();
    pair.stop();
  }
}

interface Setup {
  readonly pair: ReplicatedPair;
  readonly proxy: FreezingProxy;
  readonly consumer: Offload;
  readonly producer: Offload;
  readonly detour: Detour;
  /** What the consumer's backend reported of its connections (onConnectionError). */
  readonly troubles: readonly Error[];
}

async function run(t: TestContext, { pair, proxy, consumer, producer, detour, troubles }: Setup): Promise<void> {
  const gate = new EventGate();
  const runs = new Map<string, number>();
  /** Jobs whose run began before the name moved: claimed on the old primary, before it died. */
  const startedOnOld = new Set<string>();
  const succeeded = new Map<string, number>();
  const succeededBeforeCrash = new Set<string>();
  const startedAt = new Map<string, number>();
  const errors: Error[] = [];
  let crashed = false;
  let failedOver = false;
  let leaseLost = 0;
  const retry = { attempts: 10, base: "100ms", jitter: false } as const;
  consumer.task({ name: "work", retry, run: async (n: number, ctx) => {
    runs.set(ctx.job.id, (runs.get(ctx.job.id) ?? 0) + 1);
    if (!failedOver) startedOnOld.add(ctx.job.id);
    // The job's own work, a few ms, so that some jobs are mid-run when the primary dies.
    await delay(5 + (n % 15));
    return n;
  } });
  const work = producer.task({ name: "work", retry, run: (n: number) => n });
  const workers = [1, 2].map(() => consumer.worker({ concurrency: 4, lease: "2s", heartbeat: "300ms", poll: "30s" }));
  const onEvent = (event: WorkerEvent): void => {
    if (event.type === "started") startedAt.set(event.job.id, performance.now());
    if (event.type === "lease-lost") leaseLost++;
    if (event.type === "succeeded") {
      succeeded.set(event.job.id, (succeeded.get(event.job.id) ?? 0) + 1);
      if (!crashed) succeededBeforeCrash.add(event.job.id);
    }
    gate.check();
  };
  for (const worker of workers) {
    worker.on("job", onEvent);
    worker.on("error", (error) => {
      errors.push(error);
      gate.check();
    });
    await worker.start();
  }

  const acked = new Set((await work.enqueueMany(Array.from({ length: INITIAL_JOBS }, (_, i) => i))).map((job) => job.id));
  // The producer enqueues throughout, failover included; each enqueue rides out the outage itself
  // (sent again for up to 10 s) or fails with BackendUnavailableError, and only those acknowledged
  // are owed.
  let producing = true;
  let ackedAfterFailover = 0;
  const refused: Error[] = [];
  const producerDone = (async () => {
    for (let n = INITIAL_JOBS; producing; n += 2) {
      try {
        for (const job of await work.enqueueMany([n, n + 1])) acked.add(job.id);
        if (failedOver) ackedAfterFailover += 2;
      } catch (error) {
        refused.push(error instanceof Error ? error : new Error(String(error)));
      }
      gate.check();
      await delay(15); // paces the load; nothing waits on it
    }
  })();

  try {
    await gate.until(() => succeeded.size >= 60, "60 jobs done before the failover", 30_000);
    crashed = true;
    const crashAt = performance.now();
    await pair.crashPrimary();
    if (detour === "standby") {
      // The name still points at the old primary, up again in recovery.
      await pair.restartOldPrimary("standby");
      await until(async () => (await offloadSessions(pair.primary.url)) > 0, "Offload reaches the old primary in recovery", 20, 10_000);
    } else if (detour === "read-only") {
      // The old primary up again, fenced read only: it takes the listener's LISTEN, and the
      // listener keeps it (no server that takes writes is reachable yet) but says so.
      await pair.restartOldPrimary("read-only");
      await until(async () => (await listening(pair.primary.url)) && troubles.some((e) => /read only/.test(e.message)), "the listener reaches the read-only old primary, keeps it and says so", 20, 10_000);
    }
    await pair.promoteStandby();
    proxy.retarget({ host: "127.0.0.1", port: pair.standby.port });
    // A dead primary's flows are gone (cut here, as its host's would be). An old primary that is up
    // keeps its open sessions when the name moves: nothing tells a client to leave it.
    const cut = detour === "none" ? proxy.drop() : 0;
    failedOver = true;
    const movedAt = performance.now();
    await until(() => listening(pair.standby.url), "the LISTEN connection on the new primary", 20, 20_000);
    const listeningAfterMs = performance.now() - movedAt;
    if (detour === "read-only") assert.equal(await listening(pair.primary.url), false, "the LISTEN on the read-only old primary was given up once the new one was reached");
    const succeededAtMove = succeeded.size;
    await gate.until(() => succeeded.size > succeededAtMove, "a job succeeds on the new primary", 20_000);
    const firstSuccessAfterMs = performance.now() - movedAt;
    await gate.until(() => ackedAfterFailover >= ENQUEUED_AFTER, `${ENQUEUED_AFTER} jobs enqueued after the failover`, 30_000);
    producing = false;
    await producerDone;
    await gate.until(() => [...acked].every((id) => succeeded.has(id)), "every acknowledged job succeeds", 60_000);
    // Jobs that were committed but whose enqueue was not acknowledged run too: wait for them, so
    // that the workers are idle before the probe.
    await until(async () => (await consumer.jobs.counts()).every((q) => q.counts.queued + q.counts.active + q.counts.retrying === 0), "nothing left to run", 50, 30_000);

    // A job enqueued by another Offload instance (another process, as far as the workers know)
    // starts within a second: woken by its notification, not by a poll.
    const probe = await work.enqueue(-1);
    const enqueuedAt = performance.now();
    await gate.until(() => startedAt.has(probe.id), "the probe job starts", 10_000);
    const probeStartMs = (startedAt.get(probe.id) ?? Infinity) - enqueuedAt;
    assert.ok(probeStartMs < 1_000, `the probe started ${Math.round(probeStartMs)} ms after its enqueue: woken by LISTEN, not by a 30 s poll`);
    await gate.until(() => succeeded.has(probe.id), "the probe job succeeds", 10_000);
    acked.add(probe.id);

    // Nothing lost, nothing done twice, nothing left active, counts that agree with the jobs.
    const jobs = await allJobs(consumer);
    const byId = new Map(jobs.map((job) => [job.id, job]));
    for (const id of acked) assert.equal(byId.get(id)?.state, "succeeded", `acknowledged job ${id} succeeded`);
    assert.ok(jobs.every((job) => job.state === "succeeded"), "every stored job succeeded, none left active");
    for (const [id, n] of succeeded) assert.equal(n, 1, `job ${id} acknowledged as succeeded once`);
    assert.equal(succeeded.size, jobs.length, "each stored job succeeded, and only stored jobs did");
    // A run that began after the crash but before the move was claimed before the crash (nothing
    // could be claimed meanwhile); its claim, committed asynchronously, may not have reached the
    // standby.
    const activeAtCrash = new Set([...startedOnOld].filter((id) => !succeededBeforeCrash.has(id)));
    const ranTwice = [...runs].filter(([, n]) => n > 1).map(([id]) => id);
    for (const id of ranTwice) {
      assert.ok(activeAtCrash.has(id), `job ${id} ran ${runs.get(id)} times but was not running when the primary died`);
      assert.equal(runs.get(id), 2, `job ${id} ran at most twice`);
    }
    const counts = await consumer.jobs.counts();
    const total = (state: "succeeded" | "active" | "queued"): number => counts.reduce((sum, q) => sum + q.counts[state], 0);
    assert.deepEqual([total("succeeded"), total("active"), total("queued")], [jobs.length, 0, 0], "counts() agree with the jobs listed");
    t.diagnostic(
      `${jobs.length} jobs (${acked.size} acknowledged, ${refused.length} enqueues refused); ${activeAtCrash.size} running at the crash, ` +
      `${ranTwice.length} ran twice, ${leaseLost} lease-lost; ${cut} connections cut at the move; LISTEN back ${Math.round(listeningAfterMs)} ms ` +
      `and first success ${Math.round(firstSuccessAfterMs)} ms after the move (${Math.round(movedAt - crashAt)} ms from crash to move); ` +
      `probe started in ${Math.round(probeStartMs)} ms; ${errors.length} worker errors (${[...new Set(errors.map(sqlState))].join(", ")})`,
    );
  } finally {
    producing = false;
    await producerDone;
  }
}

describe("postgres: failover to a synchronous standby", () => {
  it("the primary dies and the standby is promoted: workers, the listener and the producer recover; every acknowledged job succeeds once", { timeout: 120_000 }, (t) => failOver(t, "none"));

  it("the name points at the old primary restarted as a standby (25006 to writes and LISTEN) before it moves to the new primary", { timeout: 120_000 }, (t) => failOver(t, "standby"));

  it("the name points at the old primary restarted read only (default_transaction_read_only) before it moves, its sessions left open", { timeout: 120_000 }, (t) => failOver(t, "read-only"));
});
