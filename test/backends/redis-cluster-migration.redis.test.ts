// Redis Cluster moving a queue's slot to another master (resharding), and losing the master that
// serves it, on clusters this file starts itself (temp dirs, free loopback ports).
//
// While a slot moves, its keys go over one MIGRATE at a time, and for a while some are on the old
// node and some on the new one. Redis checks the keys a call declares before running it, but a
// Lua script builds most of its keys from the prefix, and those it only checks as the script
// touches them: a script could stop half way ("non local key", its writes so far kept) and strand
// jobs, or run on the new node over keys not moved yet. The adapter declares a key that is never
// written (<prefix>slot-guard), so every call into a slot in migration is refused before it runs,
// and sent again until the move is over. Shown here:
// - a claim while the slot is half moved takes nothing; afterwards every job is claimable, and
//   counts, queue index and leases agree;
// - an enqueue during the move is held off (past ioredis's own redirection limit) and stored in
//   full once the move ends; after it, enqueues work as before;
// - workers drain 600 jobs (some retrying) while the slot moves in batches of keys, each batch
//   made only after the workers' calls have been refused again: every job succeeds exactly once;
// - the master serving the queue is killed (SIGKILL) mid-drain: its replica takes over, workers
//   carry on, jobs enqueued after the failover complete, and no job runs twice.
// The only loops poll a server's state (cluster ownership, command statistics) under a deadline.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { RedisBackend } from "../../src/backend/redis/redis-backend.ts";
import type { QueueCounts } from "../../src/backend/backend.ts";
import { Offload, Retry } from "../../src/index.ts";
import type { Worker } from "../../src/worker/worker.ts";
import { T0, newJob } from "../conformance/fixtures.ts";
import { TestCluster } from "./redis-cluster.ts";
import { RedisProcesses, until } from "./redis-processes.ts";

const servers = new RedisProcesses();
let cluster: TestCluster;
before(async () => {
  cluster = await TestCluster.start(servers, { masters: 3 });
});
after(async () => {
  cluster.close();
  await servers.stopAll();
});

const NO_COUNTS = { scheduled: 0, queued: 0, active: 0, retrying: 0, succeeded: 0, failed: 0, cancelled: 0 };

/** Job ids in a fixed order, so the test can name the job whose hash moves. */
function jobId(n: number): string {
  return `${String(n).padStart(8, "0")}-0000-7000-8000-000000000000`;
}

/** The slot of `prefix`, the master serving it and another master to move it to. */
async function slotMove(prefix: string): Promise<{ slot: number; from: number; to: number }> {
  const slot = await cluster.slotOf(prefix);
  const from = await cluster.ownerOf(slot);
  const to = (await cluster.masters()).find((port) => port !== from);
  if (to === undefined) throw new Error("no other master to move the slot to");
  return { slot, from, to };
}

/**
 * Script calls that reached `ports` so far, run or refused (a refusal counts as a rejected call):
 * how a test sees clients keep trying while a slot is in migration.
 */
async function scriptCalls(ports: readonly number[]): Promise<number> {
  let total = 0;
  for (const port of ports) {
    const stats = await cluster.admin(port).info("commandstats");
    for (const match of stats.matchAll(/^cmdstat_eval(?:sha)?:calls=(\d+),.*rejected_calls=(\d+)/gm)) total += Number(match[1]) + Number(match[2]);
  }
  return total;
}

/** Script calls `ports` refused so far (ASK and TRYAGAIN answers count as rejected calls). */
async function refusedCalls(ports: readonly number[]): Promise<number> {
  let total = 0;
  for (const port of ports) {
    const stats = await cluster.admin(port).info("commandstats");
    for (const match of stats.matchAll(/^cmdstat_eval(?:sha)?:.*rejected_calls=(\d+)/gm)) total += Number(match[1]);
  }
  return total;
}

/** JSON.stringify replacer that shows an Error as its message. */
function errorText(_key: string, value: unknown): unknown {
  return value instanceof Error ? `${value.name}: ${value.message}` : value;
}

function countsOf(counts: readonly QueueCounts[], queue: string): QueueCounts["counts"] | undefined {
  return counts.find((c) => c.queue === queue)?.counts;
}

/** Resolves with the worker's `count`-th success from now on. */
function successes(worker: Worker, count: number): Promise<void> {
  return new Promise((resolve) => {
    let seen = 0;
    const listener = (event: { type: string }): void => {
      if (event.type !== "succeeded" || ++seen < count) return;
      worker.off("job", listener);
      resolve();
    };
    worker.on("job", listener);
  });
}

describe("redis cluster: a queue's slot moves to another master", () => {
  it("a claim while the slot is half moved takes nothing; afterwards every job is claimable and the counts agree", { timeout: 60_000 }, async () => {
    const prefix = "half";
    const backend = new RedisBackend({ url: `${cluster.url}?prefix=${prefix}` });
    try {
      const jobs = Array.from({ length: 5 }, (_, n) => newJob({ id: jobId(n) }));
      // A job far ahead: due:q exists, as it does whenever a queue has scheduled or retrying jobs.
      // The claim script reads it first, so without the guard it ran, then stopped at the moved hash.
      const scheduled = newJob({ id: jobId(9), runAt: T0 + 3_600_000 });
      await backend.enqueue({ jobs: [...jobs, scheduled], now: T0 });
      const { slot, from, to } = await slotMove(prefix);
      await cluster.beginMigration(slot, from, to);
      // Only the hash of the middle job moves: MIGRATE batches can split a slot's keys anywhere.
      const moved = `{${prefix}}:job:${jobId(2)}`;
      assert.equal(await cluster.migrateKeys(slot, from, to, 1, (key) => key === moved), 1);

      // A short lease: the claim keeps being refused, and once its lease would have run out it
      // stops trying (a claim that did run by then would leave its jobs to rescue).
      const during = await backend.claim({ queues: ["q"], limit: 5, worker: "w1", leaseMs: 1_000, now: T0 }).then(
        (claimed) => ({ claimed: claimed.map((c) => c.job.id) }),
        (error: unknown) => ({ error }),
      );
      if ("error" in during) {
        assert.ok(during.error instanceof Error);
        assert.doesNotMatch(during.error.message, /non local key/, "the claim script ran and stopped half way");
      } else {
        assert.deepEqual(during.claimed, [], "a claim into a slot in migration took jobs");
      }

      await cluster.finishMigration(slot, from, to);
      assert.equal(await cluster.ownerOf(slot), to);
      assert.deepEqual(await cluster.keysInSlot(slot, from), [], "keys of the slot were left on the old node");
      // Nothing was taken: no job is active, so rescue (long after every lease) finds none.
      assert.deepEqual(countsOf(await backend.counts(), "q"), { ...NO_COUNTS, scheduled: 1, queued: 5 });
      assert.deepEqual(await backend.rescueExpired(T0 + 120_000), { requeued: [], failed: [], cancelled: [] });
      // Every queued job is in the queue index (the claim finds it), and each claim holds a lease
      // (its completion is accepted under its token).
      const claimed = await backend.claim({ queues: ["q"], limit: 10, worker: "w2", leaseMs: 60_000, now: T0 + 1 });
      assert.deepEqual(claimed.map((c) => c.job.id).sort(), jobs.map((j) => j.id));
      const acks = await backend.complete(claimed.map((c) => ({ id: c.job.id, token: c.token, resultJson: "null" })), T0 + 2);
      assert.deepEqual(acks, claimed.map(() => "OK"));
      assert.deepEqual(countsOf(await backend.counts(), "q"), { ...NO_COUNTS, scheduled: 1, succeeded: 5 });
      assert.equal((await backend.getJob(scheduled.id))?.state, "scheduled");
    } finally {
      await backend.close();
    }
  });

  it("an enqueue during the move is held off, then stored in full once; enqueues work after the move", { timeout: 60_000 }, async () => {
    const prefix = "enq";
    const backend = new RedisBackend({ url: `${cluster.url}?prefix=${prefix}` });
    try {
      const first = newJob({ id: jobId(0) });
      await backend.enqueue({ jobs: [first], now: T0 });
      const { slot, from, to } = await slotMove(prefix);
      await cluster.beginMigration(slot, from, to);
      assert.equal(await cluster.migrateKeys(slot, from, to, 1, (key) => key === `{${prefix}}:job:${first.id}`), 1);

      const batch = [1, 2, 3].map((n) => newJob({ id: jobId(n) }));
      const refusedBefore = await refusedCalls([from, to]);
      let settled = false;
      const enqueued = backend.enqueue({ jobs: batch, now: T0 }).then(
        (results) => ({ results }),
        (error: unknown) => ({ error }),
      ).finally(() => {
        settled = true;
      });
      // The source answers ASK, the target TRYAGAIN, and ioredis follows 16 such redirections
      // (100 ms apart after a TRYAGAIN) before it gives up on a call: the move lasts past that,
      // so the adapter's own resending (a refused call did not run) is what carries the enqueue.
      await until(async () => settled || (await refusedCalls([from, to])) - refusedBefore > 20, "the enqueue refused past ioredis's redirection limit", 50);
      if (settled) assert.fail(`the enqueue ended while the slot was in migration: ${JSON.stringify(await enqueued, errorText)}`);
      await cluster.finishMigration(slot, from, to);

      const outcome = await enqueued;
      if ("error" in outcome) assert.fail(`the enqueue failed after the move: ${JSON.stringify(outcome.error, errorText)}`);
      assert.deepEqual(outcome.results.map((r) => [r.job.id, r.job.state, r.created]), batch.map((j) => [j.id, "queued", true]));
      const later = newJob({ id: jobId(4) });
      await backend.enqueue({ jobs: [later], now: T0 });
      // Each job stored once, all in the queue index.
      assert.deepEqual(countsOf(await backend.counts(), "q"), { ...NO_COUNTS, queued: 5 });
      const claimed = await backend.claim({ queues: ["q"], limit: 10, worker: "w", leaseMs: 60_000, now: T0 + 1 });
      assert.deepEqual(claimed.map((c) => c.job.id).sort(), [first, ...batch, later].map((j) => j.id));
    } finally {
      await backend.close();
    }
  });

  it("workers drain 600 jobs while the slot moves in batches of keys: every job succeeds exactly once", { timeout: 60_000 }, async () => {
    const prefix = "drain";
    const offload = new Offload({ backend: `${cluster.url}?prefix=${prefix}` });
    const attempts = new Map<number, number>();
    const work = offload.task({
      name: "work",
      retry: { attempts: 5, base: "50ms", max: "200ms" },
      run: (p: { n: number }, ctx) => {
        attempts.set(p.n, (attempts.get(p.n) ?? 0) + 1);
        // Every 4th job retries once: due:q holds retrying jobs throughout, as in production.
        if (p.n % 4 === 0 && ctx.attempt === 1) throw new Retry({ in: "100ms" });
        return p.n;
      },
    });
    // The lease outlasts the move: every call, heartbeats included, is refused until it ends.
    const worker = offload.worker({ concurrency: 10, lease: "30s", heartbeat: "1s" });
    worker.on("error", () => {}); // calls refused past their retries are tried again by the worker loop
    let succeeded = 0;
    worker.on("job", (event) => {
      if (event.type === "succeeded") succeeded++;
    });
    try {
      const handles = await work.enqueueMany(Array.from({ length: 600 }, (_, n) => ({ n })));
      const { slot, from, to } = await slotMove(prefix);
      const started = successes(worker, 100);
      await worker.start();
      await started;

      await cluster.beginMigration(slot, from, to);
      let batches = 0;
      for (;;) {
        // The next batch only once the workers' calls have reached the slot's nodes again.
        const calls = await scriptCalls([from, to]);
        await until(async () => (await scriptCalls([from, to])) >= calls + 5, "worker calls during the move", 10);
        if ((await cluster.migrateKeys(slot, from, to, 50)) === 0) break;
        batches++;
      }
      await cluster.endMigration(slot, from, to);
      const succeededDuringMove = succeeded;

      const results = await Promise.allSettled(handles.map((h) => h.result({ timeout: "30s" })));
      const unfinished = results.flatMap((r, n) => (r.status === "fulfilled" && r.value === n ? [] : [n]));
      assert.deepEqual(unfinished, [], "jobs that did not succeed (stranded by a script stopped half way?)");
      assert.ok(batches >= 10, `the slot moved in ${batches} batches`);
      assert.ok(succeededDuringMove < 600, "the drain was over before the slot had moved");
      assert.equal(await cluster.ownerOf(slot), to);
      // Exactly the attempts asked for: no job ran again after a claim or completion went astray.
      const extra = [...attempts].filter(([n, count]) => count !== (n % 4 === 0 ? 2 : 1));
      assert.deepEqual({ jobs: attempts.size, extra }, { jobs: 600, extra: [] });
      assert.deepEqual(countsOf(await offload.jobs.counts(), "default"), { ...NO_COUNTS, succeeded: 600 });
      await worker.stop();
    } finally {
      await offload.close();
    }
  });
});

describe("redis cluster: the master serving a queue fails", () => {
  it("SIGKILL of that master: its replica takes over, workers carry on, jobs enqueued after complete, none runs twice", { timeout: 60_000 }, async () => {
    // Its own cluster: a replica for each master, and a short node timeout so the failover comes soon.
    const failing = await TestCluster.start(servers, { masters: 3, replicas: 1, nodeTimeoutMs: 2_000 });
    const prefix = "failover";
    const offload = new Offload({ backend: `${failing.url}?prefix=${prefix}` });
    const runs = new Map<number, number>();
    const work = offload.task({ name: "work", run: async (p: { n: number }) => {
      await new Promise<void>((resolve) => setImmediate(resolve)); // jobs in flight when the master dies
      runs.set(p.n, (runs.get(p.n) ?? 0) + 1);
      return p.n;
    } });
    const worker = offload.worker({ concurrency: 10, lease: "5s", heartbeat: "500ms" });
    worker.on("error", () => {}); // calls to the dead master fail until the replica takes over
    try {
      const before = await work.enqueueMany(Array.from({ length: 600 }, (_, n) => ({ n })));
      const slot = await failing.slotOf(prefix);
      const master = await failing.ownerOf(slot);
      const replica = await failing.replicaOf(master);
      // The enqueued jobs are on the replica before the master dies (replication is asynchronous):
      // WAIT covers this connection's write, and with it everything before it in the stream.
      await failing.admin(master).set(`{${prefix}}:replicated`, "1");
      assert.equal(await failing.admin(master).call("WAIT", "1", "5000"), 1);

      const running = successes(worker, 150);
      await worker.start();
      await running;
      failing.node(master).child.kill("SIGKILL");
      await until(async () => (await failing.ownerOf(slot, replica)) === replica, "the replica serving the slot", 100);
      await successes(worker, 50);

      const afterward = await work.enqueueMany(Array.from({ length: 50 }, (_, n) => ({ n: 600 + n })));
      const results = await Promise.all([...before, ...afterward].map((h) => h.result({ timeout: "30s" })));
      assert.deepEqual(results, Array.from({ length: 650 }, (_, n) => n));
      const twice = [...runs].filter(([, count]) => count > 1).map(([n]) => n);
      assert.deepEqual({ jobs: runs.size, twice }, { jobs: 650, twice: [] });
      await worker.stop();
    } finally {
      await offload.close();
      failing.close();
    }
  });
});
