// The outbox relay, end to end: jobs enqueued inside app transactions into a PostgreSQL outbox are
// moved to a Redis backend by `offload relay`. The relay is SIGKILLed at the worst moment (a
// batch delivered to Redis, not yet marked in the outbox), restarted, and every outbox job is at
// Redis exactly once; a rolled-back job is not there at all.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { after, describe, it } from "node:test";
import { Redis } from "ioredis";
import pg from "pg";
import { openBackend } from "../../src/backend/open.ts";
import { Wakeup } from "../../src/core/wakeup.ts";
import { systemClock } from "../../src/core/clock.ts";
import { Offload } from "../../src/index.ts";
import { POSTGRES_URL, dropSchema, uniqueSchema } from "./postgres-helpers.ts";

const REDIS_URL = process.env["OFFLOAD_TEST_REDIS_URL"] ?? "redis://127.0.0.1:6379";
const CHILD = new URL("./postgres-relay-child.ts", import.meta.url).pathname;
const JOBS = 1_000;

function child(mode: "crash" | "cli", from: string, to: string): ChildProcess {
  return spawn(process.execPath, [CHILD, mode, from, to], { stdio: ["ignore", "pipe", "inherit"] });
}

describe("postgres: outbox relay to Redis", () => {
  const schema = uniqueSchema("outbox");
  const prefix = `relay${schema.slice(7)}`;
  const from = `${POSTGRES_URL}?schema=${schema}`;
  const to = `${REDIS_URL}${REDIS_URL.includes("?") ? "&" : "?"}prefix=${prefix}`;

  after(async () => {
    await dropSchema(schema);
    const redis = new Redis(REDIS_URL);
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `{${prefix}}*`, "COUNT", 1_000);
      if (keys.length > 0) await redis.unlink(...keys);
      cursor = next;
    } while (cursor !== "0");
    await redis.quit();
  });

  it("SIGKILL mid-batch, restart: every outbox job arrives exactly once", async () => {
    const app = new Offload({ backend: from });
    const mail = app.task({ name: "mail.send", queue: "mail", run: (p: { n: number }) => p.n });
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    const outboxIds: string[] = [];
    try {
      for (let tx = 0; tx < JOBS / 100; tx++) {
        await client.query("BEGIN");
        const jobs = await mail.enqueueMany(Array.from({ length: 100 }, (_, i) => ({ n: tx * 100 + i })), { tx: client });
        await client.query("COMMIT");
        outboxIds.push(...jobs.map((j) => j.id));
      }
      await client.query("BEGIN");
      const ghost = await mail.enqueue({ n: -1 }, { tx: client });
      await client.query("ROLLBACK");

      // First relay: dies after Redis took its 3rd batch, before the outbox marked it.
      const crashing = child("crash", from, to);
      const exited = once(crashing, "exit");
      const [line] = (await once(createInterface({ input: crashing.stdout! }), "line")) as [string];
      const { delivered } = JSON.parse(line) as { delivered: string[] };
      crashing.kill("SIGKILL");
      await exited;

      const destination = await openBackend(to);
      try {
        for (const id of delivered) {
          assert.equal((await app.jobs.get(id)).state, "active", "delivered but not marked in the outbox");
          assert.ok(await destination.getJob(id), "already at the destination");
        }

        // Second relay: the CLI. It waits out the dead relay's lease, redelivers nothing twice.
        const relay = child("cli", from, to);
        const relayExited = once(relay, "exit");
        const wakeup = new Wakeup();
        const stop = destination.watch(() => wakeup.notify());
        try {
          for (;;) {
            const counts = await app.jobs.counts();
            const relayed = counts.reduce((n, q) => n + q.counts.succeeded, 0);
            if (relayed === JOBS) break;
            await wakeup.wait(500, systemClock);
          }
        } finally {
          stop();
        }
        relay.kill("SIGTERM");
        assert.deepEqual((await relayExited)[0], 0, "the relay stops cleanly on SIGTERM");

        const atDestination = await destination.listJobs({ limit: JOBS * 2 });
        assert.equal(atDestination.length, JOBS, "no job twice, none missing");
        assert.deepEqual(new Set(atDestination.map((j) => j.id)), new Set(outboxIds));
        assert.ok(atDestination.every((j) => j.state === "queued" && j.task === "mail.send" && j.queue === "mail"));
        assert.equal(await destination.getJob(ghost.id), undefined, "a rolled-back enqueue is never relayed");
        const sample = atDestination.find((j) => j.id === outboxIds[123]);
        assert.deepEqual(sample?.payload, { n: 123 });
      } finally {
        await destination.close();
      }
    } finally {
      await client.end();
      await app.close();
    }
  });
});
