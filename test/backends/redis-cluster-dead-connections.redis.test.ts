// Redis Cluster and connections that stop answering, on a one-node cluster this file starts
// itself. The node announces a proxy's port, so every connection of a client goes through a proxy
// that can freeze some of them.
// - A call dropped by the reply timeout (here: a server busy with another client's long script)
//   may have run. ioredis's Cluster used to send it again on a new connection ("Connection is
//   closed" counts as a failover there), so a script ran twice. It must fail as "outcome unknown"
//   instead, as on a standalone server.
// - A Cluster client holds its subscription on a connection of its own: a PING sent through the
//   Cluster goes over a command connection and proves nothing about the subscription.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Redis } from "ioredis";
import { watcherHearsAgainAfterFreeze } from "./dead-connection-scenarios.ts";
import { FreezingProxy } from "./freezing-proxy.ts";
import { RedisProcesses, freePort } from "./redis-processes.ts";
import { RedisBackend } from "../../src/backend/redis/redis-backend.ts";
import { T0, claimOne, enqueueOne } from "../conformance/fixtures.ts";

const servers = new RedisProcesses();
let port = 0;
let proxy: FreezingProxy;

before(async () => {
  port = await freePort();
  proxy = await FreezingProxy.start({ host: "127.0.0.1", port });
  await servers.startClusterNode(port, ["--cluster-announce-port", String(proxy.port)]);
});

after(async () => {
  await proxy.close();
  await servers.stopAll();
});

describe("redis cluster: connections that stop answering", () => {
  it("a call dropped by the reply timeout is not sent again: a log line written while the server was busy is stored once", { timeout: 30_000 }, async () => {
    const backend = new RedisBackend({ url: `redis+cluster://127.0.0.1:${proxy.port}?prefix=busy`, replyTimeout: "300ms" });
    const admin = new Redis(port, "127.0.0.1");
    try {
      const id = await enqueueOne(backend);
      const claimed = await claimOne(backend);
      // The script is cached on the server first: the call below is one EVALSHA, no NOSCRIPT path.
      await backend.log({ id, token: claimed.token, line: "warm", now: T0 + 1 });
      // Another client keeps the server busy for longer than the reply timeout (a long script):
      // the log call waits behind it, its connection is dropped, and it runs once the server is free.
      const busy = admin.eval("local t = redis.call('TIME'); local s = t[1] * 1000000 + t[2]; repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] - s > 1500000; return 1", 0);
      await new Promise<void>((resolve) => setImmediate(resolve));
      const logged = backend.log({ id, token: claimed.token, line: "once", now: T0 + 1 }).then(
        () => "stored",
        (error: unknown) => (error instanceof Error ? error.message : String(error)),
      );
      assert.equal(await busy, 1);
      const outcome = await logged;
      const events = await backend.readEvents({ jobId: id, afterId: 0, limit: 100 });
      const lines = events.filter((e) => e.data["line"] === "once");
      assert.equal(lines.length, 1, `the log script ran ${lines.length} times (the call reported: ${outcome})`);
      assert.match(outcome, /outcome is unknown|Connection is closed|Socket timeout/);
    } finally {
      await backend.close();
      await admin.quit();
    }
  });

  it("a frozen subscriber connection is found and made again, and watchers hear changes again", { timeout: 30_000 }, async () => {
    const backend = new RedisBackend({ url: `redis+cluster://127.0.0.1:${proxy.port}?prefix=sub`, replyTimeout: "300ms" });
    const writer = new RedisBackend({ url: `redis+cluster://127.0.0.1:${proxy.port}?prefix=sub` });
    try {
      // Only the subscription goes silent; the connections commands use stay healthy.
      await watcherHearsAgainAfterFreeze(backend, writer, () => {
        assert.equal(proxy.freeze((sent) => /subscribe/i.test(sent)), 1, "the subscriber connection was frozen");
      });
    } finally {
      await backend.close();
      await writer.close();
    }
  });
});
