// Connections that die without closing: the peer stops answering but never resets the socket (a
// host gone, a NAT or firewall that forgot the flow). Workers go through a proxy that can freeze
// every connection it holds; they must notice, connect again (through the proxy, to the healthy
// server) and finish every job. Without a reply timeout, a frozen worker waits for ever.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Redis } from "ioredis";
import { FreezingProxy } from "./freezing-proxy.ts";
import { unlinkMatching } from "./redis-helpers.ts";
import { RedisBackend } from "../../src/backend/redis/redis-backend.ts";
import { randomToken } from "../../src/core/ids.ts";
import { BackendOpenError, Offload } from "../../src/index.ts";
import { newJob } from "../conformance/fixtures.ts";

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
    const direct = `redis://${server.host}?prefix=${prefix}`;
    const offload = new Offload({ backend: viaProxy });
    const enqueuer = new Offload({ backend: direct });
    try {
      offload.task({ name: "echo", run: (p: { n: number }) => p.n });
      const echo = enqueuer.task({ name: "echo", run: (p: { n: number }) => p.n });
      const worker = offload.worker({ concurrency: 5, lease: "3s", heartbeat: "500ms", poll: "60s" });
      const errors: Error[] = [];
      worker.on("error", (e) => errors.push(e));
      await worker.start();
      const first = await echo.enqueueMany(Array.from({ length: 20 }, (_, n) => ({ n })));
      assert.deepEqual(await Promise.all(first.map((h) => h.result({ timeout: "20s" }))), first.map((_, n) => n));

      // Every connection the worker's process holds (commands and pub/sub) goes silent.
      const before = proxy.connections;
      assert.ok(proxy.freeze() >= 2, "the command and the subscriber connections were frozen");
      // Enqueued elsewhere: the frozen process learns of them only once it has a live connection
      // again (its poll is 60 s, so the change signal on a new subscription is what wakes it).
      const second = await echo.enqueueMany(Array.from({ length: 20 }, (_, n) => ({ n: 100 + n })));
      assert.deepEqual(await Promise.all(second.map((h) => h.result({ timeout: "30s" }))), second.map((_, n) => 100 + n));
      assert.ok(proxy.connections > before, "the worker's process connected again");
      await worker.stop();
    } finally {
      await offload.close();
      await enqueuer.close();
    }
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

  it("a frozen subscriber connection is found by its ping and made again, and watchers hear changes again", { timeout: 30_000 }, async () => {
    const backend = new RedisBackend({ url: `redis://127.0.0.1:${proxy.port}`, prefix, replyTimeout: "300ms" });
    const writer = new RedisBackend({ url: `redis://${server.host}`, prefix });
    try {
      let onHeard = (): void => {};
      const nextHeard = (): Promise<void> => new Promise<void>((resolve) => (onHeard = resolve));
      const subscribed = nextHeard();
      const stop = backend.watch(() => onHeard());
      await subscribed; // the subscription is confirmed: listeners are told to look
      proxy.freeze(); // no command is in flight: only the ping can notice
      // The new subscription tells the watcher to look again (changes made meanwhile were missed)…
      await nextHeard();
      // …and from then on it hears changes made by other processes.
      const heardWrite = nextHeard();
      await writer.enqueue({ jobs: [newJob()], now: Date.now() });
      await heardWrite;
      stop();
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
