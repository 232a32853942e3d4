// Failed attempts, backoff scheduling, dead letter, retry and replay, cancel.
import assert from "node:assert/strict";
import { it } from "node:test";
import { uuidv7 } from "../../src/core/ids.ts";
import { type UseBackend, T0, attemptError, claimOne, enqueueOne } from "./fixtures.ts";

export function failureCases(use: UseBackend): void {
  it("a failed attempt with attempts left is retrying until its retry time", use(async (b) => {
    const id = await enqueueOne(b, { maxAttempts: 3 });
    const c1 = await claimOne(b);
    assert.equal(await b.fail({ id, token: c1.token, error: attemptError(1), retryAt: T0 + 4_000, now: T0 + 10 }), "RETRYING");
    const retrying = await b.getJob(id);
    assert.equal(retrying?.state, "retrying");
    assert.equal(retrying?.runAt, T0 + 4_000);
    assert.equal(retrying?.finishedAt, undefined);
    assert.equal(await b.nextDueAt(["q"]), T0 + 4_000);
    assert.deepEqual(await b.claim({ queues: ["q"], limit: 1, worker: "w1", leaseMs: 1_000, now: T0 + 3_999 }), []);
    const c2 = await claimOne(b, T0 + 4_000);
    assert.equal(c2.job.attempt, 2);
  }));

  it("after the last attempt the job is failed and keeps every attempt's error", use(async (b) => {
    const id = await enqueueOne(b, { maxAttempts: 2 });
    const c1 = await claimOne(b, T0);
    await b.fail({ id, token: c1.token, error: attemptError(1, T0 + 1, "first"), retryAt: T0 + 100, now: T0 + 1 });
    const c2 = await claimOne(b, T0 + 100);
    assert.equal(await b.fail({ id, token: c2.token, error: attemptError(2, T0 + 101, "second"), retryAt: T0 + 500, now: T0 + 101 }), "FAILED");
    const job = await b.getJob(id);
    assert.equal(job?.state, "failed");
    assert.equal(job?.finishedAt, T0 + 101);
    assert.deepEqual(job?.errors.map((e) => [e.attempt, e.message, e.worker, e.at]), [[1, "first", "w1", T0 + 1], [2, "second", "w1", T0 + 101]]);
    assert.match(job?.errors[1]?.stack ?? "", /Error: second/);
    assert.deepEqual(await b.claim({ queues: ["q"], limit: 1, worker: "w1", leaseMs: 1_000, now: T0 + 10_000 }), []);
  }));

  it("a failure without a retry time (Permanent) fails at once", use(async (b) => {
    const id = await enqueueOne(b, { maxAttempts: 5 });
    const c1 = await claimOne(b);
    assert.equal(await b.fail({ id, token: c1.token, error: attemptError(1), retryAt: undefined, now: T0 + 1 }), "FAILED");
    assert.equal((await b.getJob(id))?.state, "failed");
  }));

  it("retry puts a failed job back with fresh attempts and its history", use(async (b) => {
    const id = await enqueueOne(b, { maxAttempts: 1 });
    const c1 = await claimOne(b);
    await b.fail({ id, token: c1.token, error: attemptError(1), retryAt: undefined, now: T0 + 1 });
    assert.equal(await b.retry(id, T0 + 2), "QUEUED");
    const job = await b.getJob(id);
    assert.equal(job?.state, "queued");
    assert.equal(job?.attempt, 0);
    assert.equal(job?.errors.length, 1);
    assert.equal(job?.finishedAt, undefined);
    assert.equal((await claimOne(b, T0 + 3)).job.attempt, 1);
    assert.equal(await b.retry(id, T0 + 4), "NOT_FINISHED");
    assert.equal(await b.retry("01890000-0000-7000-8000-000000000000", T0 + 4), "NOT_FOUND");
  }));

  it("replay re-queues failed jobs by queue, task and time", use(async (b) => {
    const failAt = async (overrides: { queue?: string; task?: string }, now: number): Promise<string> => {
      const id = await enqueueOne(b, { ...overrides, maxAttempts: 1 }, now);
      const [c] = await b.claim({ queues: [overrides.queue ?? "q"], limit: 1, worker: "w1", leaseMs: 1_000, now });
      assert.ok(c);
      await b.fail({ id, token: c.token, error: attemptError(1, now), retryAt: undefined, now });
      return id;
    };
    const early = await failAt({ task: "a" }, T0 + 10);
    const late = await failAt({ task: "a" }, T0 + 1_000);
    const otherTask = await failAt({ task: "b" }, T0 + 1_000);
    const otherQueue = await failAt({ queue: "r", task: "a" }, T0 + 1_000);
    assert.equal(await b.replay({ queue: "q", task: "a", since: T0 + 500 }, T0 + 2_000), 1);
    assert.equal((await b.getJob(late))?.state, "queued");
    assert.equal((await b.getJob(early))?.state, "failed");
    assert.equal(await b.replay({ until: T0 + 100 }, T0 + 2_000), 1);
    assert.equal((await b.getJob(early))?.state, "queued");
    assert.equal(await b.replay({}, T0 + 2_000), 2);
    assert.equal((await b.getJob(otherTask))?.state, "queued");
    assert.equal((await b.getJob(otherQueue))?.state, "queued");
  }));

  it("replay tells a key apart from an id: a failed job keyed with another failed job's id is replayed beside it", use(async (b) => {
    const failNow = async (overrides: { id?: string; key?: string }): Promise<string> => {
      const id = await enqueueOne(b, { ...overrides, maxAttempts: 1 });
      const c = await claimOne(b);
      assert.equal(c.job.id, id);
      await b.fail({ id, token: c.token, error: attemptError(1), retryAt: undefined, now: T0 });
      return id;
    };
    const plain = await failNow({});
    const keyed = await failNow({ key: plain });
    assert.equal(await b.replay({}, T0 + 1_000), 2);
    assert.equal((await b.getJob(plain))?.state, "queued");
    assert.equal((await b.getJob(keyed))?.state, "queued");
  }));

  it("replay of failed jobs sharing a key requeues the one that failed last, and leaves the others failed", use(async (b) => {
    const failNow = async (id: string, now: number): Promise<void> => {
      const c = await claimOne(b, now);
      assert.equal(c.job.id, id);
      assert.equal(await b.fail({ id, token: c.token, error: attemptError(1, now), retryAt: undefined, now }), "FAILED");
    };
    const older = await enqueueOne(b, { id: uuidv7(T0 + 1), key: "invoice-9", maxAttempts: 1 }, T0 + 1);
    await failNow(older, T0 + 1);
    const newer = await enqueueOne(b, { id: uuidv7(T0 + 2), key: "invoice-9", maxAttempts: 1 }, T0 + 2);
    await failNow(newer, T0 + 2); // the key was free again once the older one failed
    assert.equal(await b.replay({}, T0 + 10), 1);
    assert.equal((await b.getJob(newer))?.state, "queued");
    assert.equal((await b.getJob(older))?.state, "failed");

    // Failed again, and the older one, retried by hand, failed after it: now the older is the last.
    await failNow(newer, T0 + 11);
    assert.equal(await b.retry(older, T0 + 12), "QUEUED");
    await failNow(older, T0 + 13);
    assert.equal(await b.replay({}, T0 + 20), 1);
    assert.equal((await b.getJob(older))?.state, "queued");
    assert.equal((await b.getJob(newer))?.state, "failed");
  }));

  it("a job put back by hand keeps its newest errors, and once they were over their cap its newest events, so one replayed in a loop stays bounded", use(async (b) => {
    const kept = { errors: 2, events: 4 };
    // Text that reads as the end of one error and the start of another, escapes, an emoji.
    const message = (round: number): string => `round ${round}: "},{\\" {\n\u{1F600}`;
    const history = async (id: string): Promise<number[]> => (await b.readEvents({ jobId: id, afterId: 0, limit: 100 })).map((e) => e.id);
    const looped = await enqueueOne(b, { maxAttempts: 1 });
    const other = await enqueueOne(b, { queue: "other", maxAttempts: 1 });
    const otherFailed = await claimOne(b, T0, ["other"]);
    await b.fail({ id: other, token: otherFailed.token, error: attemptError(1, T0, "other"), retryAt: undefined, now: T0 });
    const otherHistory = await history(other);

    let now = T0;
    for (let round = 1; round <= 4; round++) {
      const c = await claimOne(b, ++now);
      assert.equal(c.job.id, looped);
      assert.equal(await b.log({ id: looped, token: c.token, line: `round ${round}`, now: ++now }), "OK");
      assert.equal(await b.fail({ id: looped, token: c.token, error: attemptError(1, ++now, message(round)), retryAt: undefined, now }), "FAILED");
      const before = await history(looped);
      if (round % 2 === 0) assert.equal(await b.replay({ queue: "q" }, ++now, kept), 1);
      else assert.equal(await b.retry(looped, ++now, kept), "QUEUED");
      const after = await history(looped);
      // Each round's failure adds an error. Once they are over their cap, the newest
      // `kept.events` of the events before stay; until then all of them. Then the requeue's own.
      const trimmed = round > kept.errors;
      assert.deepEqual(after.slice(0, -1), trimmed ? before.slice(-kept.events) : before, `round ${round}`);
      assert.equal(after.length, (trimmed ? kept.events : before.length) + 1);
      const job = await b.getJob(looped);
      assert.equal(job?.state, "queued");
      assert.deepEqual(job?.errors.map((e) => e.message), Array.from({ length: round }, (_, i) => message(i + 1)).slice(-kept.errors));
    }
    const events = await b.readEvents({ jobId: looped, afterId: 0, limit: 100 });
    assert.deepEqual(events.map((e) => [e.type, e.data]), [
      ["state", { state: "queued", attempt: 0 }],
      ["state", { state: "active", attempt: 1 }],
      ["log", { line: "round 4" }],
      ["state", { state: "failed", attempt: 1 }],
      ["state", { state: "queued", attempt: 0 }],
    ]);
    assert.deepEqual(await history(other), otherHistory, "another job's history is not touched");
  }));

  it("cancel: a waiting job at once, an active job by request, a finished one not at all", use(async (b) => {
    const scheduled = await enqueueOne(b, { runAt: T0 + 60_000 });
    const queued = await enqueueOne(b);
    assert.equal(await b.cancel(scheduled, T0 + 1), "CANCELLED");
    assert.equal(await b.cancel(queued, T0 + 1), "CANCELLED");
    assert.equal((await b.getJob(queued))?.state, "cancelled");
    assert.equal((await b.getJob(queued))?.finishedAt, T0 + 1);
    assert.equal(await b.cancel(queued, T0 + 2), "ALREADY_FINISHED");
    assert.equal(await b.cancel("01890000-0000-7000-8000-000000000000", T0 + 2), "NOT_FOUND");

    const active = await enqueueOne(b);
    const c = await claimOne(b, T0 + 3);
    assert.equal(c.job.id, active);
    assert.equal(await b.cancel(active, T0 + 4), "CANCEL_REQUESTED");
    assert.equal((await b.getJob(active))?.state, "active", "an active job runs until its worker stops it");
    assert.equal((await b.getJob(active))?.cancelRequested, true);
    const beat = await b.heartbeat({ worker: "w1", leases: [{ id: active, token: c.token }], leaseMs: 10_000, now: T0 + 5 });
    assert.deepEqual(beat.cancelRequested, [active]);
    assert.equal(await b.acknowledgeCancel({ id: active, token: c.token }, T0 + 6), "OK");
    assert.equal((await b.getJob(active))?.state, "cancelled");
    assert.equal(await b.retry(active, T0 + 7), "QUEUED", "a cancelled job can be retried");
  }));

  it("an attempt that fails after a cancel was requested ends the job cancelled, its error kept", use(async (b) => {
    const id = await enqueueOne(b, { maxAttempts: 3 });
    const c = await claimOne(b);
    assert.equal(await b.cancel(id, T0 + 1), "CANCEL_REQUESTED");
    // The handler failed before its worker learned of the request: the retry must not forget it.
    assert.equal(await b.fail({ id, token: c.token, error: attemptError(1, T0 + 2), retryAt: T0 + 1_000, now: T0 + 2 }), "CANCELLED");
    const job = await b.getJob(id);
    assert.equal(job?.state, "cancelled");
    assert.equal(job?.finishedAt, T0 + 2);
    assert.deepEqual(job?.errors.map((e) => e.message), ["boom"]);
    assert.deepEqual(await b.claim({ queues: ["q"], limit: 1, worker: "w1", leaseMs: 10_000, now: T0 + 1_000 }), [], "never run again");
    assert.equal(await b.fail({ id, token: c.token, error: attemptError(1, T0 + 3), retryAt: T0 + 1_000, now: T0 + 3 }), "CANCELLED", "a repeat is answered as the first");
    assert.equal((await b.counts()).find((q) => q.queue === "q")?.counts.cancelled, 1);
    assert.equal((await b.counts()).find((q) => q.queue === "q")?.counts.active, 0);
    assert.equal(await b.retry(id, T0 + 4), "QUEUED", "retried by hand, it runs again without the old request");
    const again = await claimOne(b, T0 + 5);
    assert.equal(again.job.cancelRequested, false);
    assert.equal(await b.fail({ id, token: again.token, error: attemptError(1, T0 + 6), retryAt: T0 + 1_000, now: T0 + 6 }), "RETRYING");
  }));

  it("a retrying job can be cancelled; an active one cancelled and then rescued ends cancelled", use(async (b) => {
    const id = await enqueueOne(b);
    const c1 = await claimOne(b);
    await b.fail({ id, token: c1.token, error: attemptError(1), retryAt: T0 + 1_000, now: T0 + 1 });
    assert.equal(await b.cancel(id, T0 + 2), "CANCELLED");
    const other = await enqueueOne(b);
    await claimOne(b, T0 + 3, ["q"], 100);
    await b.cancel(other, T0 + 4);
    assert.deepEqual((await b.rescueExpired(T0 + 1_000)).cancelled, [other]);
    assert.equal((await b.getJob(other))?.state, "cancelled");
  }));
}
