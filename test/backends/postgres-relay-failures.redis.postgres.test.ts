// The outbox relay when its destination misbehaves, on a real PostgreSQL outbox and a real Redis
// destination (wrapped to refuse a queue, or to hold deliveries until the test lets them go):
// - a job the destination refuses on its own holds nothing up: the rest of its batch is relayed
//   once, and the refused job is tried again later, its attempt counted;
// - a delivery that waits longer than the lease keeps its leases, so another relay does not rescue
//   the batch (charging every job an attempt) and deliver it a second time;
// - a cancel asked for in the outbox while the relay holds the job reaches the destination.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { Redis } from "ioredis";
import type { Backend, EnqueueRequest, EnqueueResult, HeartbeatRequest, HeartbeatResult } from "../../src/backend/backend.ts";
import { openBackend } from "../../src/backend/open.ts";
import { OutboxRelay } from "../../src/backend/postgres/outbox-relay.ts";
import { Offload } from "../../src/index.ts";
import { deferred } from "../support/deferred.ts";
import { POSTGRES_URL, dropSchema, uniqueSchema } from "./postgres-helpers.ts";
import { unlinkAndQuit } from "./redis-helpers.ts";

const REDIS_URL = process.env["OFFLOAD_TEST_REDIS_URL"] ?? "redis://127.0.0.1:6379";
const run = uniqueSchema("relayf");
const schemas: string[] = [];

after(async () => {
  for (const schema of schemas) await dropSchema(schema);
  await unlinkAndQuit(new Redis(REDIS_URL), `{${run}-*`);
});

interface Setup {
  readonly outbox: Offload;
  readonly source: Backend;
  readonly destination: Backend;
  close(): Promise<void>;
}

/** An outbox (its own schema) and a destination (its own Redis prefix). */
async function setup(): Promise<Setup> {
  const schema = uniqueSchema("relayf");
  schemas.push(schema);
  const from = `${POSTGRES_URL}?schema=${schema}`;
  const outbox = new Offload({ backend: from });
  const source = await openBackend(from);
  const destination = await openBackend(`${REDIS_URL}${REDIS_URL.includes("?") ? "&" : "?"}prefix=${run}-${schema.slice(7)}`);
  return {
    outbox, source, destination,
    close: async () => {
      await destination.close();
      await source.close();
      await outbox.close();
    },
  };
}

/** `backend`, with some of its methods replaced (the rest still the real backend's). */
function overriding(backend: Backend, overrides: Partial<Backend>): Backend {
  return new Proxy(backend, {
    get(target, prop) {
      if (prop in overrides) return (overrides as Record<string | symbol, unknown>)[prop];
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** A destination whose enqueues wait at a gate: `entered` resolves when one arrives, `open()` lets them through. */
function gated(destination: Backend): { backend: Backend; entered: Promise<void>; open: () => void } {
  const entered = deferred<void>();
  const gate = deferred<void>();
  const backend = overriding(destination, {
    enqueue: async (request: EnqueueRequest): Promise<EnqueueResult[]> => {
      entered.resolve();
      await gate.promise;
      return destination.enqueue(request);
    },
  });
  return { backend, entered: entered.promise, open: () => gate.resolve() };
}

describe("outbox relay: a destination that refuses, stalls, or must cancel", () => {
  it("a job the destination refuses holds nothing up; it is tried again later with its attempt counted", async () => {
    const { outbox, source, destination, close } = await setup();
    try {
      const mail = outbox.task({ name: "mail.send", queue: "mail", run: () => null });
      const bad = outbox.task({ name: "bad.task", queue: "bad", run: () => null });
      // Claims go by priority: the refused job sits in the middle of the batch.
      const ahead = await mail.enqueueMany([{ n: 1 }, { n: 2 }], { priority: 10 });
      const refusedJob = await bad.enqueue({}, { priority: 5 });
      const behind = await mail.enqueueMany([{ n: 3 }, { n: 4 }]);
      const strict = overriding(destination, {
        enqueue: (request: EnqueueRequest): Promise<EnqueueResult[]> => {
          if (request.jobs.some((j) => j.queue === "bad")) return Promise.reject(new Error("queue bad is not served here"));
          return destination.enqueue(request);
        },
      });
      const errors: string[] = [];
      const relay = new OutboxRelay({ from: source, to: strict, onError: (e) => errors.push(String(e)) });

      assert.equal(await relay.relayBatch(), 4, "the four others are relayed in the same round");
      for (const h of [...ahead, ...behind]) {
        assert.equal((await outbox.jobs.get(h.id)).state, "succeeded", "marked relayed in the outbox");
        assert.equal((await destination.getJob(h.id))?.state, "queued", "at the destination once");
      }
      const refused = await outbox.jobs.get(refusedJob.id);
      assert.equal(refused.state, "retrying", "tried again later");
      assert.equal(refused.attempt, 1);
      assert.deepEqual(refused.errors.map((e) => [e.name, e.message]), [["RelayRefused", "the destination refused the job: queue bad is not served here"]]);
      assert.equal(await destination.getJob(refusedJob.id), undefined);
      assert.ok(errors.some((e) => /delivering job by job/.test(e)), "the refusal is reported");

      // The next round has nothing due: the refused job waits out its back-off; nothing goes twice.
      assert.equal(await relay.relayBatch(), 0);
      assert.equal((await destination.listJobs({ limit: 10 })).length, 4);

      // A batch the destination refuses whole is handed back, its attempt not counted: that is
      // what an outage looks like, and an outage must not use up attempts.
      const alone = await bad.enqueue({}, { priority: 20 });
      await assert.rejects(relay.relayBatch(), /queue bad is not served here/);
      const handedBack = await outbox.jobs.get(alone.id);
      assert.deepEqual([handedBack.state, handedBack.attempt, handedBack.errors.length], ["queued", 0, 0]);
    } finally {
      await close();
    }
  });

  // A relay that does not renew never sends the fourth heartbeat: the time limit ends the wait.
  it("a delivery that outlasts the lease keeps it: no other relay rescues the batch, nothing is charged or sent twice", { timeout: 30_000 }, async () => {
    const { outbox, source, destination, close } = await setup();
    try {
      const mail = outbox.task({ name: "mail.send", queue: "mail", run: () => null });
      const job = await mail.enqueue({ n: 1 });
      const { backend: stalled, entered, open } = gated(destination);
      // Count the stalled relay's heartbeats: each is a third of a lease apart.
      let renewals = 0;
      const renewed = deferred<void>();
      const counting = overriding(source, {
        heartbeat: async (request: HeartbeatRequest): Promise<HeartbeatResult> => {
          const result = await source.heartbeat(request);
          if (++renewals === 4) renewed.resolve();
          return result;
        },
      });
      const leaseMs = 300;
      const slow = new OutboxRelay({ from: counting, to: stalled, leaseMs, id: "slow" });
      const delivering = slow.relayBatch();
      await entered;
      await renewed.promise; // over a lease has passed since the claim
      // Another relay, with the real destination: it must find nothing to rescue or to claim.
      const other = new OutboxRelay({ from: source, to: destination, leaseMs, id: "other", queues: ["mail"] });
      assert.equal(await other.relayBatch(), 0);
      const held = await outbox.jobs.get(job.id);
      assert.deepEqual([held.state, held.attempt, held.errors.length], ["active", 1, 0], "still leased to the slow relay, never rescued");
      open();
      assert.equal(await delivering, 1);
      const relayed = await outbox.jobs.get(job.id);
      assert.deepEqual([relayed.state, relayed.attempt, relayed.errors.length], ["succeeded", 1, 0]);
      assert.equal((await destination.listJobs({ limit: 10 })).length, 1);
    } finally {
      await close();
    }
  });

  it("a cancel asked for while the relay holds the job is passed on to the destination", async () => {
    const { outbox, source, destination, close } = await setup();
    try {
      const mail = outbox.task({ name: "mail.send", queue: "mail", run: () => null });
      const [cancelled, kept] = await mail.enqueueMany([{ n: 1 }, { n: 2 }]);
      assert.ok(cancelled && kept);
      const { backend: stalled, entered, open } = gated(destination);
      const relay = new OutboxRelay({ from: source, to: stalled });
      const delivering = relay.relayBatch();
      await entered;
      await outbox.jobs.cancel(cancelled.id); // the job is active (held by the relay): flagged only
      assert.equal((await outbox.jobs.get(cancelled.id)).cancelRequested, true);
      open();
      assert.equal(await delivering, 1, "only the other job counts as relayed");
      assert.equal((await outbox.jobs.get(cancelled.id)).state, "cancelled");
      assert.equal((await destination.getJob(cancelled.id))?.state, "cancelled", "cancelled where it was delivered");
      assert.equal((await outbox.jobs.get(kept.id)).state, "succeeded");
      assert.equal((await destination.getJob(kept.id))?.state, "queued");
    } finally {
      await close();
    }
  });
});
