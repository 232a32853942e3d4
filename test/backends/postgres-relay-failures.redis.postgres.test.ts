// The outbox relay when its destination misbehaves, on a real PostgreSQL outbox and a real Redis
// destination (wrapped to refuse a queue, or to hold deliveries until the test lets them go):
// - a job the destination refuses on its own holds nothing up: the rest of its batch is relayed
//   once, and the refused job is tried again later, its attempt counted, until it ends failed;
// - a job that keeps failing while the jobs around it go through is counted and ends failed, while
//   an outage (the destination gone, or refusing every job) hands the batch back uncounted after a
//   few calls, or at once when the relay stops; a write to the outbox failing while a batch is
//   settled leaves only its own jobs leased;
// - a delivery that waits longer than the lease keeps its leases, so another relay does not rescue
//   the batch (charging every job an attempt) and deliver it a second time;
// - a cancel asked for in the outbox while the relay holds the job reaches the destination.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { Redis } from "ioredis";
import type { Backend, EnqueueRequest, EnqueueResult, FailRequest, FailStatus, HeartbeatRequest, HeartbeatResult } from "../../src/backend/backend.ts";
import { openBackend } from "../../src/backend/open.ts";
import { OutboxRelay } from "../../src/backend/postgres/outbox-relay.ts";
import { FakeClock } from "../../src/core/clock.ts";
import { OffloadError } from "../../src/core/errors.ts";
import { Offload } from "../../src/index.ts";
import { T0, newJob, replacing } from "../conformance/fixtures.ts";
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

/** A test body run on a fresh outbox and destination, closed afterwards whatever happens. */
function withFixture(body: (setup: Setup) => Promise<void>): () => Promise<void> {
  return async () => {
    const fixture = await setup();
    try {
      await body(fixture);
    } finally {
      await fixture.close();
    }
  };
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

/** A destination that refuses, with a typed verdict, every enqueue holding a job of `queue`. */
function refusing(destination: Backend, queue: string): Backend {
  return replacing(destination, {
    enqueue: (request: EnqueueRequest): Promise<EnqueueResult[]> =>
      request.jobs.some((j) => j.queue === queue)
        ? Promise.reject(new OffloadError("VALIDATION", `queue ${queue} is not served here`))
        : destination.enqueue(request),
  });
}

/** A destination whose enqueues wait at a gate: `entered` resolves when one arrives, `open()` lets them through. */
function gated(destination: Backend): { backend: Backend; entered: Promise<void>; open: () => void } {
  const entered = deferred<void>();
  const gate = deferred<void>();
  const backend = replacing(destination, {
    enqueue: async (request: EnqueueRequest): Promise<EnqueueResult[]> => {
      entered.resolve();
      await gate.promise;
      return destination.enqueue(request);
    },
  });
  return { backend, entered: entered.promise, open: () => gate.resolve() };
}

describe("outbox relay: a destination that refuses, stalls, or must cancel", () => {
  it("a job the destination refuses holds nothing up; it is tried again later with its attempt counted", withFixture(async ({ outbox, source, destination }) => {
    const mail = outbox.task({ name: "mail.send", queue: "mail", run: () => null });
    const bad = outbox.task({ name: "bad.task", queue: "bad", run: () => null });
    // Claims go by priority: the refused job sits in the middle of the batch.
    const ahead = await mail.enqueueMany([{ n: 1 }, { n: 2 }], { priority: 10 });
    const refusedJob = await bad.enqueue({}, { priority: 5 });
    const behind = await mail.enqueueMany([{ n: 3 }, { n: 4 }]);
    const errors: string[] = [];
    const relay = new OutboxRelay({ from: source, to: refusing(destination, "bad"), onError: (e) => errors.push(String(e)) });

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
  }));

  it("a job refused every time ends failed after its attempts, also when it is claimed alone", withFixture(async ({ source, destination }) => {
    const clock = new FakeClock(T0);
    const bad = newJob({ queue: "bad", maxAttempts: 3 });
    await source.enqueue({ jobs: [bad], now: T0 });
    const relay = new OutboxRelay({ from: source, to: refusing(destination, "bad"), queues: ["bad"], clock });
    for (let attempt = 1; attempt <= 3; attempt++) {
      assert.equal(await relay.relayBatch(), 0);
      clock.advance(2 * 3_600_000); // past the longest back-off
    }
    const job = await source.getJob(bad.id);
    assert.deepEqual([job?.state, job?.attempt, job?.errors.map((e) => e.name)], ["failed", 3, ["RelayRefused", "RelayRefused", "RelayRefused"]]);
  }));

  it("a job that always fails without a verdict is counted once others go through, ends failed, and stops costing job-by-job rounds", withFixture(async ({ source, destination }) => {
    const clock = new FakeClock(T0);
    const poison = newJob({ queue: "mail", priority: 10, maxAttempts: 2 });
    await source.enqueue({ jobs: [poison], now: T0 });
    let calls = 0;
    const erring = replacing(destination, {
      enqueue: (request: EnqueueRequest): Promise<EnqueueResult[]> => {
        calls++;
        return request.jobs.some((j) => j.id === poison.id) ? Promise.reject(new Error("ERR value is too large")) : destination.enqueue(request);
      },
    });
    const relay = new OutboxRelay({ from: source, to: erring, queues: ["mail"], clock });
    // Alone, nothing tells its failure from an outage: handed back, its attempts untouched.
    await assert.rejects(relay.relayBatch(), /ERR value is too large/);
    const alone = await source.getJob(poison.id);
    assert.deepEqual([alone?.state, alone?.attempt, alone?.errors.length], ["queued", 0, 0]);
    const callsPerRound: number[] = [];
    for (let round = 0; round < 3; round++) {
      await source.enqueue({ jobs: Array.from({ length: 20 }, () => newJob({ queue: "mail" })), now: clock.now() });
      calls = 0;
      assert.equal(await relay.relayBatch(), 20, `round ${round}: the others go through`);
      callsPerRound.push(calls);
      clock.advance(2 * 3_600_000); // past the longest back-off
    }
    const job = await source.getJob(poison.id);
    assert.deepEqual([job?.state, job?.attempt, job?.errors.map((e) => e.message)],
      ["failed", 2, ["the destination refused the job: ERR value is too large", "the destination refused the job: ERR value is too large"]]);
    assert.deepEqual(callsPerRound, [23, 23, 1], "job by job while it is in the batch (the batch, its failure, the next job, its second try, 19 more), one call once it is out");
    assert.equal((await destination.listJobs({ limit: 100 })).length, 60);
  }));

  it("an outage met job by job stops the walk: the rest of the batch is handed back uncounted, and so is all of it when the relay stops", withFixture(async ({ source, destination }) => {
    const jobs = Array.from({ length: 6 }, () => newJob({ queue: "mail", maxAttempts: 1 }));
    await source.enqueue({ jobs, now: T0 });
    let calls = 0;
    const away = replacing(destination, {
      enqueue: () => {
        calls++;
        return Promise.reject(new Error("ERR the server is not taking writes"));
      },
    });
    const relay = new OutboxRelay({ from: source, to: away, queues: ["mail"], clock: new FakeClock(T0) });
    await assert.rejects(relay.relayBatch(), /not taking writes/);
    assert.equal(calls, 3, "the batch, then two jobs in a row failing: not one call per job");
    for (const j of jobs) assert.deepEqual(await source.getJob(j.id).then((r) => [r?.state, r?.attempt]), ["queued", 0]);

    // Told to stop while the batch is refused: nothing more is tried.
    const stopping = new AbortController();
    const stoppable = replacing(destination, {
      enqueue: () => {
        stopping.abort();
        return Promise.reject(new Error("ERR busy"));
      },
    });
    calls = 0;
    await assert.rejects(new OutboxRelay({ from: source, to: stoppable, queues: ["mail"], clock: new FakeClock(T0) }).relayBatch(stopping.signal), /the relay is stopping/);
    for (const j of jobs) assert.deepEqual(await source.getJob(j.id).then((r) => [r?.state, r?.attempt]), ["queued", 0]);
  }));

  it("an outbox write failing while a batch is settled leaves only its own jobs leased: the delivered ones are marked", withFixture(async ({ source, destination }) => {
    const clock = new FakeClock(T0);
    const bad = newJob({ queue: "bad", priority: 10, maxAttempts: 3 });
    const good = [newJob({ queue: "mail", maxAttempts: 1 }), newJob({ queue: "mail", maxAttempts: 1 })];
    await source.enqueue({ jobs: [bad, ...good], now: T0 });
    let blips = 1;
    const blippy = replacing(source, {
      fail: (request: FailRequest): Promise<FailStatus> =>
        blips-- > 0 ? Promise.reject(new Error("Connection terminated unexpectedly")) : source.fail(request),
    });
    const relay = new OutboxRelay({ from: blippy, to: refusing(destination, "bad"), queues: ["mail", "bad"], clock });
    await assert.rejects(relay.relayBatch(), /Connection terminated/, "the failed write is reported to the caller");
    for (const g of good) {
      assert.equal((await source.getJob(g.id))?.state, "succeeded", "marked relayed");
      assert.equal((await destination.getJob(g.id))?.state, "queued");
    }
    // The refused job stays leased; once its lease is over it is rescued, its attempt spent.
    clock.advance(31_000);
    assert.equal(await relay.relayBatch(), 0);
    assert.equal((await source.getJob(bad.id))?.state, "retrying");
  }));

  // A relay that does not renew never sends the fourth heartbeat: the time limit ends the wait.
  it("a delivery that outlasts the lease keeps it: no other relay rescues the batch, nothing is charged or sent twice", { timeout: 30_000 }, withFixture(async ({ outbox, source, destination }) => {
    const mail = outbox.task({ name: "mail.send", queue: "mail", run: () => null });
    const job = await mail.enqueue({ n: 1 });
    const { backend: stalled, entered, open } = gated(destination);
    // Count the stalled relay's heartbeats: each is a third of a lease apart.
    let renewals = 0;
    const renewed = deferred<void>();
    const counting = replacing(source, {
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
  }));

  it("a cancel asked for while the relay holds the job is passed on to the destination", withFixture(async ({ outbox, source, destination }) => {
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
  }));

  it("the destination going away after taking a job: that job is marked relayed, the rest handed back (cancels there honoured)", withFixture(async ({ source, destination }) => {
    const delivered = newJob({ queue: "mail", priority: 10 });
    const stranded = newJob({ queue: "mail" });
    await source.enqueue({ jobs: [delivered, stranded], now: T0 });
    // The batch fails (a blip); job by job, the first goes through, and then the destination is
    // gone. Meanwhile both are asked to cancel in the outbox (they are active there: flagged).
    let down = false;
    const failing = replacing(destination, {
      enqueue: async (request: EnqueueRequest): Promise<EnqueueResult[]> => {
        if (request.jobs.length > 1) throw new Error("connection reset");
        if (down) throw new Error("destination down");
        const result = await destination.enqueue(request);
        assert.equal(await source.cancel(delivered.id, T0), "CANCEL_REQUESTED");
        assert.equal(await source.cancel(stranded.id, T0), "CANCEL_REQUESTED");
        down = true;
        return result;
      },
      getJob: (id: string) => (down ? Promise.reject(new Error("destination down")) : destination.getJob(id)),
      cancel: () => Promise.reject(new Error("destination down")),
    });
    const errors: string[] = [];
    const relay = new OutboxRelay({ from: source, to: failing, queues: ["mail"], clock: new FakeClock(T0), onError: (e) => errors.push(String(e)) });
    assert.equal(await relay.relayBatch(), 1);
    // Where it lives now is the destination: the outbox says relayed, and the cancel that could
    // not be passed on is reported, not dropped in silence.
    assert.equal((await source.getJob(delivered.id))?.state, "succeeded");
    assert.equal((await destination.getJob(delivered.id))?.state, "queued");
    assert.ok(errors.some((e) => e.includes(`job ${delivered.id} was relayed, but its cancel could not be passed on`)));
    // The other never left: handed back, its cancel honoured there.
    assert.equal((await source.getJob(stranded.id))?.state, "cancelled");
    assert.equal(await destination.getJob(stranded.id), undefined);
  }));

  it("cancels are passed on when the heartbeat that reads them fails, and when rescue ends a delivered job cancelled", withFixture(async ({ source, destination }) => {
    const clock = new FakeClock(T0);
    // The heartbeat that reads the cancel flags fails once: the flags are read job by job.
    const first = newJob({ queue: "mail" });
    await source.enqueue({ jobs: [first], now: T0 });
    let beats = 0;
    const forgetful = replacing(source, {
      heartbeat: (request: HeartbeatRequest) => (++beats === 1 ? Promise.reject(new Error("Connection terminated unexpectedly")) : source.heartbeat(request)),
    });
    const cancelling = replacing(destination, {
      enqueue: async (request: EnqueueRequest): Promise<EnqueueResult[]> => {
        for (const job of request.jobs) assert.equal(await source.cancel(job.id, clock.now()), "CANCEL_REQUESTED");
        return destination.enqueue(request);
      },
    });
    await new OutboxRelay({ from: forgetful, to: cancelling, queues: ["mail"], clock }).relayBatch();
    assert.deepEqual([(await source.getJob(first.id))?.state, (await destination.getJob(first.id))?.state], ["cancelled", "cancelled"]);

    // Delivered, then the outbox write fails; the cancel comes while the job is still leased,
    // and rescue ends it cancelled in the outbox: the next round passes it on.
    const second = newJob({ queue: "mail" });
    await source.enqueue({ jobs: [second], now: clock.now() });
    const unmarking = replacing(source, { complete: () => Promise.reject(new Error("Connection terminated unexpectedly")) });
    await assert.rejects(new OutboxRelay({ from: unmarking, to: destination, queues: ["mail"], clock, leaseMs: 1_000 }).relayBatch());
    assert.equal(await source.cancel(second.id, clock.now()), "CANCEL_REQUESTED");
    clock.advance(2_000);
    assert.equal(await new OutboxRelay({ from: source, to: destination, queues: ["mail"], clock, leaseMs: 1_000 }).relayBatch(), 0);
    assert.deepEqual([(await source.getJob(second.id))?.state, (await destination.getJob(second.id))?.state], ["cancelled", "cancelled"]);
  }));

  it("a job that met an outage ending mid-walk is sent once more, not counted; a keyed job whose reply was lost is found as sent", withFixture(async ({ source, destination }) => {
    const clock = new FakeClock(T0);
    const [a, b] = [newJob({ queue: "mail", maxAttempts: 1, priority: 10 }), newJob({ queue: "mail", maxAttempts: 1 })];
    await source.enqueue({ jobs: [a, b], now: T0 });
    let calls = 0;
    const restarting = replacing(destination, {
      enqueue: (request: EnqueueRequest) => (++calls <= 2 ? Promise.reject(new Error("LOADING Redis is loading the dataset in memory")) : destination.enqueue(request)),
    });
    assert.equal(await new OutboxRelay({ from: source, to: restarting, queues: ["mail"], clock }).relayBatch(), 2);
    assert.deepEqual([(await source.getJob(a.id))?.state, (await source.getJob(a.id))?.errors.length], ["succeeded", 0]);

    // A keyed job whose key a job at the destination holds is stored as that holder, never under
    // its own id: its lost reply cannot be read back, so it is sent again.
    const holder = newJob({ queue: "mail", key: "invoice-9" });
    await destination.enqueue({ jobs: [holder], now: T0 });
    const keyed = newJob({ queue: "mail", key: "invoice-9", maxAttempts: 1, priority: 10 });
    await source.enqueue({ jobs: [keyed, newJob({ queue: "mail" })], now: T0 });
    let lost = false;
    const losing = replacing(destination, {
      enqueue: async (request: EnqueueRequest): Promise<EnqueueResult[]> => {
        const results = await destination.enqueue(request);
        if (!lost && request.jobs.some((j) => j.id === keyed.id)) {
          lost = true;
          throw new Error("Connection reset");
        }
        return results;
      },
    });
    assert.equal(await new OutboxRelay({ from: source, to: losing, queues: ["mail"], clock }).relayBatch(), 2);
    const relayed = await source.getJob(keyed.id);
    assert.equal(relayed?.state, "succeeded");
    assert.deepEqual(relayed.result, { relayedTo: destination.name, jobId: holder.id }, "the outbox row names the job it became");
  }));

  it("a job whose relays die before delivering it is put back, its own attempts kept for the destination, up to five deaths", withFixture(async ({ source, destination }) => {
    const clock = new FakeClock(T0);
    // `attempts: 1`, as a task that must not run twice is often set: the relays' deaths are not its runs.
    const [once, doomed] = [newJob({ queue: "mail", maxAttempts: 1 }), newJob({ queue: "mail", maxAttempts: 1 })];
    const relayOf = (queue: string): OutboxRelay => new OutboxRelay({ from: source, to: destination, queues: [queue], clock, leaseMs: 1_000 });
    /** A relay claims the outbox's job and dies before the destination has it. */
    const dies = async (): Promise<void> => {
      assert.equal((await source.claim({ queues: ["mail"], limit: 10, worker: "doomed", leaseMs: 1_000, now: clock.now() })).length, 1);
      clock.advance(2_000);
    };
    await source.enqueue({ jobs: [once], now: clock.now() });
    await dies();
    assert.equal(await relayOf("mail").relayBatch(), 1, "the next relay puts it back and relays it");
    assert.deepEqual([(await source.getJob(once.id))?.state, (await destination.getJob(once.id))?.maxAttempts], ["succeeded", 1]);

    // Relays that only rescue (they serve another queue) put it back after each death, but the fifth.
    await source.enqueue({ jobs: [doomed], now: clock.now() });
    for (let death = 1; death <= 5; death++) {
      await dies();
      assert.equal(await relayOf("other").relayBatch(), 0);
      const row = await source.getJob(doomed.id);
      assert.deepEqual([row?.state, row?.errors.filter((e) => e.name === "LeaseExpired").length], [death < 5 ? "queued" : "failed", death]);
    }
    assert.equal(await relayOf("mail").relayBatch(), 0, "a job every relay died on ends failed in the outbox");
    assert.equal(await destination.getJob(doomed.id), undefined);
  }));

  it("a delivered job on its last attempt whose batch was never marked ends relayed, not failed, once its lease runs out", withFixture(async ({ source, destination }) => {
    const clock = new FakeClock(T0);
    const job = newJob({ queue: "mail", maxAttempts: 1 });
    await source.enqueue({ jobs: [job], now: T0 });
    const unmarking = replacing(source, { complete: () => Promise.reject(new Error("Connection terminated unexpectedly")) });
    await assert.rejects(new OutboxRelay({ from: unmarking, to: destination, queues: ["mail"], clock, leaseMs: 1_000 }).relayBatch());
    clock.advance(2_000);
    const next = new OutboxRelay({ from: source, to: destination, queues: ["mail"], clock, leaseMs: 1_000 });
    assert.equal(await next.relayBatch(), 1, "rescue failed it; the destination has it, so it is queued again and marked");
    const row = await source.getJob(job.id);
    assert.deepEqual([row?.state, row?.errors.map((e) => e.name)], ["succeeded", ["LeaseExpired"]]);
    assert.equal((await destination.listJobs({ limit: 10 })).length, 1, "not sent again");
  }));
});
