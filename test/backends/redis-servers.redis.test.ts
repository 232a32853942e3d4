// Redis deployments beyond one healthy server, on redis-server processes this file starts itself
// (temp dirs, free loopback ports) so nothing here touches the shared server:
// - a real 3-node Redis Cluster runs jobs of several queues, also while its nodes kill every client
//   connection mid-run;
// - every client connection is killed mid-run, and the idle worker's pub/sub comes back;
// - redis-server restarts mid-run with AOF on: every job it kept completes;
// - behind Sentinel, the master fails over to its replica mid-run: workers follow, every job completes;
// - a master short of the replicas min-replicas-to-write asks for refuses writes (NOREPLICAS):
//   an enqueue is sent again, and lands once a replica is in sync;
// - a full server (maxmemory, noeviction) refuses claims and lease rescues as it refuses
//   heartbeats and outcomes: no run starts that could not be recorded, no attempt is charged.
// Waits are on worker events and job results; the only loops poll a server for readiness.
import assert from "node:assert/strict";
import { setTimeout as delay } from "node:timers/promises";
import { after, describe, it } from "node:test";
import { Redis } from "ioredis";
import { RedisBackend } from "../../src/backend/redis/redis-backend.ts";
import { BackendUnavailableError, Offload } from "../../src/index.ts";
import type { JobHandle } from "../../src/client/job-handle.ts";
import type { Worker } from "../../src/worker/worker.ts";
import { TestCluster } from "./redis-cluster.ts";
import { T0, newJob } from "../conformance/fixtures.ts";
import { RedisProcesses, freePort, until } from "./redis-processes.ts";

const servers = new RedisProcesses();
after(() => servers.stopAll());

/**
 * Calls `at(n)` as the worker reports its n-th success: the moment to break something mid-run.
 * Completion itself is checked with job.result() afterwards: a success whose reply was lost with
 * the connection is stored but never reported by the worker, which is correct, not a hang.
 */
function onSuccesses(worker: Worker, at: (done: number) => void): void {
  let done = 0;
  worker.on("job", (event) => {
    if (event.type === "succeeded") at(++done);
  });
}

describe("redis: cluster, connection loss, server restart", () => {
  it("a 3-node Redis Cluster runs jobs of several queues", async () => {
    const cluster = await TestCluster.start(servers, { masters: 3 });
    const url = cluster.url;
    const ports = cluster.nodes.map((n) => n.port);
    // Two installations (prefixes): their hash tags usually land on different nodes.
    for (const prefix of ["alpha", "beta"]) {
      const offload = new Offload({ backend: `${url}?prefix=${prefix}` });
      try {
        const tasks = ["mail", "reports", "webhooks"].map((queue) =>
          offload.task({ name: `${queue}.run`, queue, run: (p: { n: number }) => ({ queue, doubled: p.n * 2 }) }));
        const worker = offload.worker({ concurrency: 20 });
        worker.on("error", () => {});
        await worker.start();
        const handles = (await Promise.all(tasks.map((t) => t.enqueueMany(Array.from({ length: 50 }, (_, n) => ({ n })))))).flat();
        const results = await Promise.all(handles.map((h) => h.result({ timeout: "30s" })));
        assert.equal(results.length, 150);
        assert.ok(results.every((r, i) => r.doubled === (i % 50) * 2));
        const counts = await offload.jobs.counts();
        assert.deepEqual(counts.map((c) => [c.queue, c.counts.succeeded]), [["mail", 50], ["reports", 50], ["webhooks", 50]]);
        const first = handles[0];
        assert.ok(first);
        const events = await offload.jobs.events({ jobId: first.id, afterId: 0 });
        assert.deepEqual(events.map((e) => e.data["state"]), ["queued", "active", "succeeded"]);
        await worker.stop();

        // Another process's watcher hears a change over Cluster pub/sub. Its first signal comes
        // once it is subscribed; the second can only come from the channel.
        const watcher = new RedisBackend({ url: `${url}?prefix=${prefix}` });
        try {
          const next = (): Promise<void> => new Promise((resolve) => {
            const stop = watcher.watch(() => {
              stop();
              resolve();
            });
          });
          await next();
          const heard = next();
          await tasks[0]?.enqueue({ n: 1 });
          await heard;
        } finally {
          await watcher.close();
        }
      } finally {
        await offload.close();
      }
    }

    // Connections to the cluster's nodes die mid-run (each node kills all its normal clients):
    // the cluster client reconnects, and every job completes.
    const offload = new Offload({ backend: `${url}?prefix=gamma` });
    const admins = ports.map((port) => new Redis(port, "127.0.0.1"));
    try {
      const work = offload.task({ name: "work", run: async (p: { n: number }) => {
        await delay(1); // jobs in flight when the connections die
        return p.n;
      } });
      const worker = offload.worker({ concurrency: 10, lease: "3s", heartbeat: "500ms" });
      worker.on("error", () => {});
      await worker.start();
      const handles = await work.enqueueMany(Array.from({ length: 200 }, (_, n) => ({ n })));
      const killed = new Promise<unknown[]>((resolve, reject) => {
        onSuccesses(worker, (done) => {
          if (done === 50) Promise.all(admins.map((a) => a.call("CLIENT", "KILL", "TYPE", "normal"))).then(resolve, reject);
        });
      });
      const perNode = (await killed).map(Number);
      assert.ok(perNode.reduce((a, b) => a + b, 0) > 0, "connections were killed mid-run");
      const results = await Promise.all(handles.map((h) => h.result({ timeout: "60s" })));
      assert.deepEqual(results, handles.map((_, n) => n));
      await worker.stop();
    } finally {
      await offload.close();
      await Promise.all(admins.map((a) => a.quit()));
    }
  });

  it("workers reconnect after every client connection is killed, and pub/sub wakes an idle worker again", async () => {
    const port = await freePort();
    await servers.start(port);
    const url = `redis://127.0.0.1:${port}?prefix=kill`;
    const admin = new Redis(port, "127.0.0.1");
    admin.on("error", () => {});
    const offload = new Offload({ backend: url });
    const other = new Offload({ backend: url });
    try {
      const work = offload.task({ name: "work", run: async (p: { n: number }) => {
        await delay(2); // a little I/O-like work, so jobs are in flight when connections die
        return p.n;
      } });
      const enqueueElsewhere = other.task({ name: "work", run: (p: { n: number }) => p.n });
      const worker = offload.worker({ concurrency: 10, lease: "3s", heartbeat: "500ms" });
      worker.on("error", () => {});
      await worker.start();
      const killAll = async (): Promise<void> => {
        await admin.call("CLIENT", "KILL", "TYPE", "normal");
        await admin.call("CLIENT", "KILL", "TYPE", "pubsub");
      };
      const handles = await work.enqueueMany(Array.from({ length: 300 }, (_, n) => ({ n })));
      const kills: Promise<void>[] = [];
      const twoKills = new Promise<void>((resolve) => {
        onSuccesses(worker, (done) => {
          if (done === 50 || done === 150) kills.push(killAll());
          if (kills.length === 2) resolve();
        });
      });
      await twoKills;
      await Promise.all(kills);
      const results = await Promise.all(handles.map((h) => h.result({ timeout: "60s" })));
      assert.deepEqual(results, handles.map((_, n) => n));

      await worker.stop();

      // The change feed comes back after a kill: a watcher hears a change made by another
      // process, and an idle worker runs a new job (its poll is 5 s; a claim that died with the
      // connection makes it wait one poll before trying again).
      const idle = offload.worker({ poll: "5s" });
      idle.on("error", () => {});
      await idle.start();
      const channel = "{kill}:changed";
      const subscribers = async (): Promise<number> => Number(((await admin.pubsub("NUMSUB", channel)) as unknown[])[1]);
      await killAll();
      await until(async () => (await subscribers()) >= 1, "the worker subscribed again", 20);
      const backend = await offload.backend();
      const heard = new Promise<void>((resolve) => {
        const stop = backend.watch(() => {
          stop();
          resolve();
        });
      });
      const job = await enqueueElsewhere.enqueue({ n: 7 });
      await heard;
      assert.equal(await job.result({ timeout: "20s" }), 7);
      await idle.stop();
    } finally {
      await offload.close();
      await other.close();
      await admin.quit();
    }
  });

  it("jobs Redis kept complete after redis-server restarts mid-run (AOF on)", async () => {
    const port = await freePort();
    const persistence = ["--appendonly", "yes", "--appendfsync", "always", "--appendfilename", `aof-${port}.aof`, "--appenddirname", `aof-${port}`];
    let server = await servers.start(port, persistence);
    const offload = new Offload({ backend: `redis://127.0.0.1:${port}?prefix=restart` });
    try {
      const work = offload.task({ name: "work", run: async (p: { n: number }) => {
        await delay(2);
        return p.n;
      } });
      const worker = offload.worker({ concurrency: 10, lease: "3s", heartbeat: "500ms" });
      const errors: Error[] = [];
      worker.on("error", (error) => errors.push(error));
      await worker.start();
      const handles = await work.enqueueMany(Array.from({ length: 300 }, (_, n) => ({ n })));
      // The app enqueues while the server is down, without retrying: the call waits for it.
      let duringOutage: Promise<JobHandle<number>[]> | undefined;
      const restarted = new Promise<void>((resolve, reject) => {
        onSuccesses(worker, (done) => {
          if (done !== 50) return;
          (async () => {
            await servers.stop(server);
            duringOutage = work.enqueueMany(Array.from({ length: 50 }, (_, n) => ({ n: 300 + n })));
            server = await servers.start(port, persistence);
          })().then(resolve, reject);
        });
      });
      await restarted;
      const all = [...handles, ...(await (duringOutage ?? Promise.reject(new Error("no enqueue during the outage"))))];
      const results = await Promise.all(all.map((h) => h.result({ timeout: "60s" })));
      assert.deepEqual(results, all.map((_, n) => n));
      await worker.stop();
      // Whatever the worker reported of the outage, it reported as the app's own calls see one,
      // whatever ioredis said ("Connection is closed.", ECONNREFUSED, LOADING…). A restart quick
      // enough to fall between its calls leaves nothing to report.
      assert.deepEqual(errors.filter((e) => !(e instanceof BackendUnavailableError)).map(String), []);
    } finally {
      await offload.close();
    }
  });

  it("behind Sentinel, workers follow a failover of the master mid-run and every job completes", async () => {
    const [masterPort, replicaPort, sentinelPort] = [await freePort(), await freePort(), await freePort()];
    // As a Sentinel deployment should run: a master cut off from its replica refuses writes
    // (NOREPLICAS) instead of taking ones that the promoted replica will never have.
    await servers.start(masterPort, ["--min-replicas-to-write", "1", "--min-replicas-max-lag", "10"]);
    await servers.start(replicaPort, ["--replicaof", "127.0.0.1", String(masterPort)]);
    const master = new Redis(masterPort, "127.0.0.1");
    const sentinel = new Redis(sentinelPort, "127.0.0.1", { lazyConnect: true });
    master.on("error", () => {});
    sentinel.on("error", () => {});
    const offloads: Offload[] = [];
    let worker: Worker | undefined;
    try {
      await until(async () => (await master.info("replication")).includes("state=online"), "the replica in sync", 50);
      // Started after the replica is in sync, so the sentinel's first look at the master finds it.
      await servers.startSentinel(sentinelPort, "offloadmain", masterPort);
      await sentinel.connect();
      const masterPortNow = async (): Promise<number> => Number(((await sentinel.call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "offloadmain")) as string[])[1]);
      // Promotable once the sentinel has talked to the replica itself and seen its link up.
      const promotable = async (): Promise<boolean> => {
        const replicas = (await sentinel.call("SENTINEL", "REPLICAS", "offloadmain")) as string[][];
        return replicas.some((fields) => {
          const field = (name: string): string | undefined => fields[fields.indexOf(name) + 1];
          return field("flags") === "slave" && field("master-link-status") === "ok" && Number(field("info-refresh")) < 5_000;
        });
      };
      await until(promotable, "the replica promotable", 50);

      const url = `redis+sentinel://127.0.0.1:${sentinelPort}/offloadmain?prefix=sentinel`;
      const offload = new Offload({ backend: url });
      offloads.push(offload);
      const work = offload.task({ name: "work", run: async (p: { n: number }) => {
        await delay(2); // jobs in flight when the master changes
        return p.n;
      } });
      // A short lease: a claim or completion the old master took but had not yet passed on to its
      // replica is lost with it (replication is asynchronous), and such a job runs again when its
      // lease runs out. Every job still completes.
      worker = offload.worker({ concurrency: 10, lease: "3s", heartbeat: "500ms" });
      worker.on("error", () => {});
      await worker.start();
      const running = worker;
      const before = await work.enqueueMany(Array.from({ length: 200 }, (_, n) => ({ n })));
      const failedOver = new Promise<void>((resolve, reject) => {
        onSuccesses(running, (done) => {
          if (done !== 50) return;
          // The enqueued jobs are on the replica before it is promoted, so none is lost. WAIT
          // covers the writes of its own connection: one write here, after all the enqueues,
          // and the replica's acknowledgement of it covers everything before it in the stream.
          master.set("sentinel-test:marker", "1")
            .then(() => master.call("WAIT", "1", "5000"))
            .then(() => sentinel.call("SENTINEL", "FAILOVER", "offloadmain"))
            .then(async () => {
              await until(async () => (await masterPortNow()) === replicaPort, "the sentinel naming the new master", 50);
              // Until the old master follows the new one, a client still on it could write there
              // (min-replicas-to-write narrows that window, but its count is refreshed once a
              // second). Once it is a replica it refuses writes, and no enqueue below can be lost.
              await until(async () => (await master.info("replication")).includes("role:slave"), "the old master following the new one", 50);
            })
            .then(resolve, reject);
        });
      });
      await failedOver;
      // The client may still be on the old master for a moment: an enqueue that fails is sent
      // again under the same idempotency key (as the docs tell apps to do), so it is stored once.
      const enqueueSurely = async (n: number): Promise<JobHandle<number>> => {
        for (let attempt = 1; ; attempt++) {
          try {
            return await work.enqueue({ n }, { key: `after-${n}` });
          } catch (error) {
            if (attempt === 100) throw error;
            await delay(20);
          }
        }
      };
      const afterward = await Promise.all(Array.from({ length: 100 }, (_, n) => enqueueSurely(200 + n)));
      const results = await Promise.all([...before, ...afterward].map((h) => h.result({ timeout: "60s" })));
      assert.deepEqual(results, Array.from({ length: 300 }, (_, n) => n));
      const promoted = new Redis(replicaPort, "127.0.0.1");
      try {
        assert.match(await promoted.info("replication"), /role:master/, "the replica took over");
      } finally {
        promoted.disconnect();
      }
    } finally {
      await worker?.stop({ grace: 0 });
      await Promise.all(offloads.map((o) => o.close()));
      master.disconnect();
      sentinel.disconnect();
    }
  });

  it("an app's enqueue on a full server fails with BackendUnavailableError, the server's refusal as its cause; reads go on, and the enqueue is taken once memory is back", { timeout: 30_000 }, async () => {
    const port = await freePort();
    await servers.start(port, ["--maxmemory-policy", "noeviction"]);
    const admin = new Redis(port, "127.0.0.1");
    const offload = new Offload({ backend: `redis://127.0.0.1:${port}?prefix=unavailable` });
    try {
      const task = offload.task({ name: "t", run: () => 1 });
      const first = await task.enqueue(null);
      await admin.config("SET", "maxmemory", "1");
      const refused = await task.enqueue(null).then(() => undefined, (error: unknown) => error);
      assert.ok(refused instanceof BackendUnavailableError, `a BackendUnavailableError, got ${String(refused)}`);
      assert.deepEqual([refused.code, refused.backend], ["BACKEND_UNAVAILABLE", "redis"]);
      assert.ok(refused.cause instanceof Error && /^OOM command not allowed/.test(refused.cause.message), `the server's refusal as cause, got ${String(refused.cause)}`);
      assert.deepEqual((await offload.jobs.list({ limit: 10 })).map((j) => [j.id, j.state]), [[first.id, "queued"]], "reads go on; nothing of the refused enqueue was stored");
      await admin.config("SET", "maxmemory", "0");
      const taken = await task.enqueue(null);
      assert.equal((await offload.jobs.get(taken.id)).state, "queued");
    } finally {
      await offload.close();
      admin.disconnect();
    }
  });

  it("a full server refuses claims and lease rescues, as it does heartbeats and completions: nothing is run or charged until memory is back; pruning still runs", { timeout: 30_000 }, async () => {
    const port = await freePort();
    await servers.start(port, ["--maxmemory-policy", "noeviction"]);
    const admin = new Redis(port, "127.0.0.1");
    const backend = new RedisBackend({ url: `redis://127.0.0.1:${port}`, prefix: "full" });
    const oom = /OOM command not allowed/;
    try {
      const [old, first, waiting, due] = [newJob(), newJob(), newJob(), newJob({ runAt: T0 + 500 })]; // ids in this order
      await backend.enqueue({ jobs: [old, first, waiting, due], now: T0 });
      const [done] = await backend.claim({ queues: ["q"], limit: 1, worker: "w", leaseMs: 1_000, now: T0 });
      assert.deepEqual(await backend.complete([{ id: old.id, token: done?.token ?? "", resultJson: "1" }], T0), ["OK"]);
      const [running] = await backend.claim({ queues: ["q"], limit: 1, worker: "w", leaseMs: 1_000, now: T0 });
      assert.equal(running?.job.id, first.id);
      const lease = { id: running.job.id, token: running.token };
      await admin.config("SET", "maxmemory", "1"); // the server is now over its limit
      // Pruning frees memory, and still runs.
      assert.equal(await backend.prune({ succeeded: 1, failed: 1, cancelled: 1 }, T0 + 10), 1);
      // Refused whole, before any write: a claim used to pop and activate jobs here (its first
      // write, ZPOPMIN, is not one Redis refuses), and a rescue to charge their attempts, while
      // the heartbeats and outcomes of those runs were refused.
      await assert.rejects(backend.heartbeat({ worker: "w", leases: [lease], leaseMs: 1_000, now: T0 + 500 }), oom);
      await assert.rejects(backend.claim({ queues: ["q"], limit: 5, worker: "w", leaseMs: 1_000, now: T0 + 600 }), oom);
      await assert.rejects(backend.stageDue(T0 + 600), oom);
      await assert.rejects(backend.rescueExpired(T0 + 5_000), oom);
      await assert.rejects(backend.complete([{ ...lease, resultJson: "1" }], T0 + 5_000), oom);
      await assert.rejects(backend.cancel(running.job.id, T0 + 5_000), oom, "a cancel request for a running job adds data: refused too");
      const stored = await backend.getJob(running.job.id);
      assert.deepEqual([stored?.state, stored?.attempt, stored?.errors.length], ["active", 1, 0], "not rescued, no attempt charged");
      assert.deepEqual([(await backend.getJob(waiting.id))?.state, (await backend.getJob(due.id))?.state], ["queued", "scheduled"]);
      const [counts] = await backend.counts();
      assert.deepEqual([counts?.counts.active, counts?.counts.queued, counts?.counts.scheduled], [1, 1, 1]);
      // Memory is back: the outcome held meanwhile lands, as the worker's retry would send it.
      await admin.config("SET", "maxmemory", "0");
      assert.deepEqual(await backend.complete([{ ...lease, resultJson: "1" }], T0 + 5_000), ["OK"]);
      const next = await backend.claim({ queues: ["q"], limit: 5, worker: "w", leaseMs: 1_000, now: T0 + 5_000 });
      assert.deepEqual(next.map((c) => [c.job.id, c.job.attempt]).sort(), [[waiting.id, 1], [due.id, 1]].sort());
      assert.equal(await admin.exists("{full}:oom-guard"), 0, "the guard never makes its key");
    } finally {
      await backend.close();
      admin.disconnect();
    }
  });

  it("an enqueue refused with NOREPLICAS (a master waiting for its replica) is sent again, and lands once the replica is in sync", { timeout: 30_000 }, async () => {
    const [masterPort, replicaPort] = [await freePort(), await freePort()];
    await servers.start(masterPort, ["--min-replicas-to-write", "1", "--min-replicas-max-lag", "10"]);
    const admin = new Redis(masterPort, "127.0.0.1");
    const offload = new Offload({ backend: `redis://127.0.0.1:${masterPort}?prefix=noreplicas` });
    try {
      const task = offload.task({ name: "t", run: () => 1 });
      const enqueued = task.enqueue(null);
      enqueued.catch(() => {}); // awaited below
      await until(async () => /errorstat_NOREPLICAS:count=\d+/.test(await admin.info("errorstats")), "the first refusal", 20);
      await servers.start(replicaPort, ["--replicaof", "127.0.0.1", String(masterPort)]);
      const job = await enqueued;
      assert.equal(await job.state(), "queued");
      assert.equal((await offload.jobs.counts())[0]?.counts.queued, 1, "stored once");
    } finally {
      await offload.close();
      admin.disconnect();
    }
  });
});
