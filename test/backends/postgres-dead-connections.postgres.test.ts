// Connections that die without closing: the server stops answering but never resets the socket (a
// host gone, a NAT or firewall that forgot the flow). Workers go through a proxy that can freeze
// every connection it holds; they must notice, connect again (through the proxy, to the healthy
// server) and finish every job. Without a reply timeout, a frozen worker waits for many minutes.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { claimLostOnTheWayFails, claimSurvivesLostReply, enqueueSurvivesLostReplies, workerOutlivesFrozenConnections } from "./dead-connection-scenarios.ts";
import { FreezingProxy } from "./freezing-proxy.ts";
import { POSTGRES_URL, dropSchema, openIsolated, uniqueSchema } from "./postgres-helpers.ts";
import { T0, newJob } from "../conformance/fixtures.ts";
import { uuidv7 } from "../../src/core/ids.ts";
import { PostgresBackend } from "../../src/backend/postgres/postgres-backend.ts";
import type { Duration } from "../../src/core/duration.ts";
import { ConfigError } from "../../src/index.ts";

const server = new URL(POSTGRES_URL);
const schema = uniqueSchema("frozen");
let proxy: FreezingProxy;

/** The server's URL with the proxy's port, this file's schema, and `params`. */
function viaProxy(params: string): string {
  const url = new URL(POSTGRES_URL);
  url.host = `127.0.0.1:${proxy.port}`;
  return `${url.toString()}?schema=${schema}&${params}`;
}

/** A backend through the proxy (with `options`) and one direct, both on a schema of their own. */
async function inOwnSchema(options: { replyTimeout?: Duration }, body: (viaProxy: PostgresBackend, direct: PostgresBackend) => Promise<void>): Promise<void> {
  const own = uniqueSchema("lost");
  const direct = await PostgresBackend.open({ url: `${POSTGRES_URL}?schema=${own}` });
  const url = new URL(POSTGRES_URL);
  url.host = `127.0.0.1:${proxy.port}`;
  const backend = await PostgresBackend.open({ url: `${url.toString()}?schema=${own}`, ...options });
  try {
    await body(backend, direct);
  } finally {
    await backend.close();
    await direct.close();
    await dropSchema(own);
  }
}

before(async () => {
  proxy = await FreezingProxy.start({ host: server.hostname, port: Number(server.port || 5432) });
});

after(async () => {
  await proxy.close();
  await dropSchema(schema);
});

describe("postgres: connections that stop answering without closing", () => {
  it("a worker whose connections freeze mid-run connects again and every job completes", { timeout: 60_000 }, async () => {
    await workerOutlivesFrozenConnections(proxy, viaProxy("replyTimeout=500ms&poll=200"), `${POSTGRES_URL}?schema=${schema}`);
  });

  it("an enqueue or a claim whose reply is lost after the commit is answered as if it had come", { timeout: 30_000 }, async () => {
    await inOwnSchema({ replyTimeout: "300ms" }, async (backend, direct) => {
      await enqueueSurvivesLostReplies(proxy, backend, direct);
      await claimSurvivesLostReply(proxy, backend, direct);
    });
  });

  it("a claim that never reached the server fails rather than answer that there are no jobs; the next claim takes them", { timeout: 30_000 }, async () => {
    await inOwnSchema({ replyTimeout: "300ms" }, (backend, direct) => claimLostOnTheWayFails(proxy, backend, direct, /Query read timeout/));
  });

  it("close() waits one reply timeout for calls on a server gone silent, not one per call queued for the pool: the rest end with ClosedError", { timeout: 30_000 }, async () => {
    const own = uniqueSchema("closing");
    const gone = await FreezingProxy.start({ host: server.hostname, port: Number(server.port || 5432) }); // this test's own: it vanishes
    const url = new URL(POSTGRES_URL);
    url.host = `127.0.0.1:${gone.port}`;
    const backend = await PostgresBackend.open({ url: `${url.toString()}?schema=${own}`, replyTimeout: "500ms", poolSize: 1 });
    try {
      await backend.enqueue({ jobs: [newJob()], now: T0 }); // its one connection is open
      gone.vanish();
      // One on the connection, the rest queued for it: each would wait out 500 ms in turn.
      const calls = Array.from({ length: 12 }, () => backend.counts());
      const outcomes = Promise.allSettled(calls);
      const started = performance.now();
      await backend.close();
      const took = performance.now() - started;
      const reasons = (await outcomes).map((r) => (r.status === "rejected" && r.reason instanceof Error ? r.reason.name : r.status));
      assert.ok(reasons.includes("ClosedError"), reasons.join(", "));
      assert.ok(took < 3_000, `close() took ${Math.round(took)} ms; 12 calls at 500 ms each would take 6 s`);
    } finally {
      await backend.close();
      await gone.close();
      await dropSchema(own);
    }
  });

  it("a claim whose reply is lost on a silent connection is recovered within its lease, at the default reply timeout", { timeout: 30_000 }, async () => {
    // The default reply timeout (30 s) is twice the default lease: a claim's own is a third of its
    // lease, so the jobs are found again before rescue would charge them an attempt.
    await inOwnSchema({}, async (backend, direct) => {
      const now = Date.now();
      const job = newJob({ queue: "silent", runAt: now, maxAttempts: 1 });
      await direct.enqueue({ jobs: [job], now });
      const worker = `silent-${job.id}`;
      proxy.loseRepliesAfter(worker);
      const started = performance.now();
      const claimed = await backend.claim({ queues: ["silent"], limit: 1, worker, leaseMs: 3_000, now });
      assert.deepEqual(claimed.map((c) => [c.job.id, c.job.attempt]), [[job.id, 1]]);
      assert.ok(performance.now() - started < 3_000, "handed over while its lease still ran");
      assert.deepEqual(await direct.complete([{ id: job.id, token: claimed[0]?.token ?? "", resultJson: "1" }], now + 1), ["OK"]);
    });
  });

  it("a frozen LISTEN connection is found by its probe and made again", { timeout: 30_000 }, async () => {
    const backend = await PostgresBackend.open({ url: viaProxy("poll=200"), replyTimeout: "300ms" });
    try {
      await backend.listening();
      let onWoken = (): void => {};
      const stop = backend.watch(() => onWoken());
      const before = proxy.connections;
      proxy.freeze();
      // Nothing else runs on this backend: only the listener's probe can find the frozen
      // connection, and only a new LISTEN connection can come through the proxy. The safety
      // poll wakes the watcher meanwhile; each wake-up is a moment to look.
      while (proxy.connections === before) await new Promise<void>((resolve) => (onWoken = resolve));
      await backend.listening();
      stop();
    } finally {
      await backend.close();
    }
  });

  it("calls waiting for a free pooled connection longer than the reply timeout still run", { timeout: 60_000 }, async () => {
    // The reply timeout bounds a statement's wait for its reply and the making of a connection,
    // not a caller's wait for a free pooled connection (pg-pool reads connectionTimeoutMillis for
    // both, and calls on a healthy but busy pool failed with "timeout exceeded when trying to connect").
    const backend = await openIsolated({ poolSize: 1, replyTimeout: "300ms" });
    try {
      // One connection, many calls at once: each is quick, but the last waits for all the others.
      const batches = Array.from({ length: 60 }, () => Array.from({ length: 1_000 }, () => newJob({ id: uuidv7() })));
      const started = Date.now();
      const outcomes = await Promise.allSettled(batches.map((jobs) => backend.enqueue({ jobs, now: T0 })));
      const failures = outcomes.flatMap((o) => (o.status === "rejected" ? [String(o.reason)] : []));
      assert.ok(Date.now() - started > 300, "the calls queued for longer than the reply timeout");
      assert.deepEqual(failures, []);
      const [counts] = await backend.counts();
      assert.equal(counts?.counts.queued, 60_000, "every job stored once");
    } finally {
      await backend.close();
    }
  });

  it("?replyTimeout= takes ms or a duration, and refuses nonsense", async () => {
    for (const bad of ["0", "soon"]) {
      await assert.rejects(PostgresBackend.open({ url: viaProxy(`replyTimeout=${bad}`) }), ConfigError, bad);
    }
  });
});
