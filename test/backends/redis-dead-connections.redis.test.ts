// Connections that die without closing: the peer stops answering but never resets the socket (a
// host gone, a NAT or firewall that forgot the flow). Workers go through a proxy that can freeze
// every connection it holds; they must notice, connect again (through the proxy, to the healthy
// server) and finish every job. Without a reply timeout, a frozen worker waits for ever.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Redis } from "ioredis";
import { claimLostOnTheWayFails, claimSurvivesLostReply, enqueueSurvivesLostReplies, watcherHearsAgainAfterFreeze, workerOutlivesFrozenConnections } from "./dead-connection-scenarios.ts";
import { FreezingProxy } from "./freezing-proxy.ts";
import { unlinkMatching } from "./redis-helpers.ts";
import { RESEND_BUDGET_MS } from "../../src/backend/lost-replies.ts";
import { RedisBackend } from "../../src/backend/redis/redis-backend.ts";
import { randomToken } from "../../src/core/ids.ts";
import { BackendOpenError } from "../../src/index.ts";

const server = new URL(process.env["OFFLOAD_TEST_REDIS_URL"] ?? "redis://127.0.0.1:6379");
const prefix = `t${randomToken().slice(0, 8)}-frozen`;
let proxy: FreezingProxy;
let admin: Redis;

before(async () => {
  proxy = await FreezingProxy.start({ host: server.hostname, port: Number(server.port || 6379) });
  admin = new Redis(server.toString());
});

after(async () => {
  await unlinkMatching(admin, `{${prefix}}:*`);
  await admin.quit();
  await proxy.close();
});

describe("redis: connections that stop answering without closing", () => {
  it("a worker whose connections freeze mid-run connects again and every job completes", { timeout: 60_000 }, async () => {
    const viaProxy = `redis://127.0.0.1:${proxy.port}?prefix=${prefix}&replyTimeout=500ms`;
    await workerOutlivesFrozenConnections(proxy, viaProxy, `redis://${server.host}?prefix=${prefix}`);
  });

  it("a frozen connection fails the call waiting on it as outcome unknown, and the next call works", { timeout: 30_000 }, async () => {
    const backend = new RedisBackend({ url: `redis://127.0.0.1:${proxy.port}`, prefix, replyTimeout: "300ms" });
    try {
      const counts = await backend.counts();
      proxy.freeze();
      await assert.rejects(backend.counts(), /outcome is unknown|Socket timeout/);
      assert.deepEqual(await backend.counts(), counts);
    } finally {
      await backend.close();
    }
  });

  it("an enqueue or a claim whose reply is lost after the script ran is answered as if it had come", { timeout: 30_000 }, async () => {
    const own = `${prefix}-lost`;
    const backend = new RedisBackend({ url: `redis://127.0.0.1:${proxy.port}`, prefix: own, replyTimeout: "300ms" });
    const direct = new RedisBackend({ url: `redis://${server.host}`, prefix: own });
    try {
      await enqueueSurvivesLostReplies(proxy, backend, direct);
      await claimSurvivesLostReply(proxy, backend, direct);
    } finally {
      await backend.close();
      await direct.close();
      await unlinkMatching(admin, `{${own}}:*`);
    }
  });

  it("a claim that never reached the server fails rather than answer that there are no jobs; the next claim takes them", { timeout: 30_000 }, async () => {
    const own = `${prefix}-unsent`;
    const backend = new RedisBackend({ url: `redis://127.0.0.1:${proxy.port}`, prefix: own, replyTimeout: "300ms" });
    const direct = new RedisBackend({ url: `redis://${server.host}`, prefix: own });
    try {
      await claimLostOnTheWayFails(proxy, backend, direct, /outcome is unknown/);
    } finally {
      await backend.close();
      await direct.close();
      await unlinkMatching(admin, `{${own}}:*`);
    }
  });

  it("a claim whose server vanished gives up within the resend budget, instead of waiting out every reconnect", { timeout: 60_000 }, async () => {
    const vanishing = await FreezingProxy.start({ host: server.hostname, port: Number(server.port || 6379) });
    const backend = new RedisBackend({ url: `redis://127.0.0.1:${vanishing.port}`, prefix, replyTimeout: "300ms" });
    try {
      await backend.counts(); // connected
      vanishing.vanish();
      const started = performance.now();
      // Each resend waits in ioredis's queue for a connection that never completes; without the
      // budget the claim (and a worker's stop(), which waits for it) took minutes.
      await assert.rejects(backend.claim({ queues: ["q"], limit: 1, worker: "w", leaseMs: 60_000, now: Date.now() }));
      const elapsed = performance.now() - started;
      assert.ok(elapsed < 300 + RESEND_BUDGET_MS + 1_000, `the claim gave up after ${Math.round(elapsed)} ms`);
    } finally {
      await backend.close();
      await vanishing.close();
    }
  });

  it("a frozen subscriber connection is found by its ping and made again, and watchers hear changes again", { timeout: 30_000 }, async () => {
    const backend = new RedisBackend({ url: `redis://127.0.0.1:${proxy.port}`, prefix, replyTimeout: "300ms" });
    const writer = new RedisBackend({ url: `redis://${server.host}`, prefix });
    try {
      // No command is in flight: only the ping can notice.
      await watcherHearsAgainAfterFreeze(backend, writer, () => proxy.freeze());
    } finally {
      await backend.close();
      await writer.close();
    }
  });

  it("?replyTimeout= takes ms or a duration, and refuses nonsense", () => {
    for (const bad of ["0", "soon", "-5"]) {
      assert.throws(() => new RedisBackend({ url: `redis://127.0.0.1:${proxy.port}?replyTimeout=${bad}` }), BackendOpenError, bad);
    }
  });
});
