// A Redis that is not there at all: nothing listens on the port, or on the sentinels' or the
// cluster nodes' ports. A call must fail within the reply timeout with an error that says so,
// whatever the URL form (Sentinel and Cluster clients try to connect for ever, and ioredis held
// their calls for as long), and a call given up must never run later, once a server appears.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { RedisBackend } from "../../src/backend/redis/redis-backend.ts";
import { NoConnectionError } from "../../src/backend/redis/connection.ts";
import { newJob, T0 } from "../conformance/fixtures.ts";
import { RedisProcesses, freePort } from "./redis-processes.ts";

const servers = new RedisProcesses();
after(() => servers.stopAll());

describe("redis: no server to connect to", () => {
  for (const form of ["redis://127.0.0.1:PORT", "redis+cluster://127.0.0.1:PORT", "redis+sentinel://127.0.0.1:PORT/main"]) {
    it(`${form.split(":")[0]}: a call fails with NoConnectionError after the reply timeout`, { timeout: 20_000 }, async () => {
      const url = `${form.replace("PORT", String(await freePort()))}?prefix=unreachable&replyTimeout=300ms`;
      const backend = new RedisBackend({ url });
      try {
        await assert.rejects(backend.counts(), (e: unknown) => e instanceof NoConnectionError && /no connection within 300 ms/.test(e.message));
        await assert.rejects(backend.enqueue({ jobs: [newJob()], now: T0 }), NoConnectionError);
      } finally {
        await backend.close();
      }
    });
  }

  it("close() during an outage fails the calls waiting for a connection at once, not at their deadline", { timeout: 20_000 }, async () => {
    // A reply timeout longer than the test's own: a call left to its deadline fails the test.
    const backend = new RedisBackend({ url: `redis://127.0.0.1:${await freePort()}?prefix=unreachable&replyTimeout=60s` });
    const waiting = backend.counts();
    await backend.close();
    await assert.rejects(waiting, /Connection is closed/);
    await assert.rejects(backend.getJob(newJob().id), /Connection is closed/);
  });

  it("an enqueue given up for want of a connection is not sent once a server comes up", { timeout: 30_000 }, async () => {
    const port = await freePort();
    const backend = new RedisBackend({ url: `redis://127.0.0.1:${port}?prefix=unreachable&replyTimeout=300ms` });
    try {
      const job = newJob();
      await assert.rejects(backend.enqueue({ jobs: [job], now: T0 }), NoConnectionError);
      await servers.start(port);
      // A call made now is held until the client's connection is ready, then sent: once it is
      // answered, anything that had been left queued would have been sent before it.
      let counted = false;
      while (!counted) {
        counted = await backend.counts().then(() => true, (error: unknown) => {
          if (!(error instanceof NoConnectionError)) throw error;
          return false; // still connecting: the client's reconnect back-off is up to 1 s
        });
      }
      assert.equal(await backend.getJob(job.id), undefined, "the given-up enqueue never ran");
      assert.deepEqual(await backend.counts(), []);
    } finally {
      await backend.close();
    }
  });
});
