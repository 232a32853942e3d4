// Leases, heartbeats, rescue of expired leases, fencing, release on shutdown.
import assert from "node:assert/strict";
import { it } from "node:test";
import { type UseBackend, LEASE, T0, attemptError, claimOne, enqueueOne } from "./fixtures.ts";

export function leaseCases(use: UseBackend): void {
  it("an expired lease is rescued: the job is queued again and its next claim is attempt 2", use(async (b) => {
    const id = await enqueueOne(b);
    const first = await claimOne(b, T0, ["q"], 1_000);
    assert.deepEqual(await b.rescueExpired(T0 + 1_000), { requeued: [], failed: [], cancelled: [] }, "not expired at the deadline itself");
    const rescued = await b.rescueExpired(T0 + 1_001);
    assert.deepEqual(rescued.requeued, [id]);
    const job = await b.getJob(id);
    assert.equal(job?.state, "queued");
    assert.equal(job?.errors.length, 1);
    assert.equal(job?.errors[0]?.name, "LeaseExpired");
    assert.equal(job?.errors[0]?.attempt, 1);
    assert.equal(job?.errors[0]?.worker, "w1");
    const second = await claimOne(b, T0 + 1_002);
    assert.equal(second.job.attempt, 2);
    assert.notEqual(second.token, first.token);
  }));

  it("fencing: a completion with a lost lease is refused and writes nothing", use(async (b) => {
    const id = await enqueueOne(b);
    const stale = await claimOne(b, T0, ["q"], 1_000);
    await b.rescueExpired(T0 + 2_000);
    const fresh = await claimOne(b, T0 + 2_001);
    assert.deepEqual(await b.complete([{ id, token: stale.token, resultJson: '"stale"' }], T0 + 2_002), ["LEASE_LOST"]);
    assert.equal(await b.fail({ id, token: stale.token, error: attemptError(1), retryAt: T0 + 5_000, now: T0 + 2_002 }), "LEASE_LOST");
    assert.equal(await b.progress({ id, token: stale.token, progress: 0.9, message: "stale", now: T0 + 2_002 }), "LEASE_LOST");
    assert.equal(await b.log({ id, token: stale.token, line: "stale", now: T0 + 2_002 }), "LEASE_LOST");
    assert.deepEqual(await b.release([{ id, token: stale.token }], T0 + 2_002), ["LEASE_LOST"]);
    assert.equal(await b.acknowledgeCancel({ id, token: stale.token }, T0 + 2_002), "LEASE_LOST");
    const during = await b.getJob(id);
    assert.equal(during?.state, "active");
    assert.equal(during?.progress, undefined);
    assert.deepEqual(await b.complete([{ id, token: fresh.token, resultJson: '"fresh"' }], T0 + 2_003), ["OK"]);
    assert.equal((await b.getJob(id))?.result, "fresh");
    const logs = (await b.readEvents({ jobId: id, afterId: 0, limit: 100 })).filter((e) => e.type !== "state");
    assert.deepEqual(logs, [], "no stale progress or log reached the feed");
  }));

  it("a batch of completions answers each lease on its own", use(async (b) => {
    const a = await enqueueOne(b);
    const c = await enqueueOne(b);
    const [ca, cc] = await b.claim({ queues: ["q"], limit: 2, worker: "w1", leaseMs: LEASE, now: T0 });
    assert.ok(ca && cc);
    const statuses = await b.complete(
      [
        { id: ca.job.id, token: ca.token, resultJson: "1" },
        { id: cc.job.id, token: "not-the-token", resultJson: "2" },
      ],
      T0 + 1,
    );
    assert.deepEqual(statuses, ["OK", "LEASE_LOST"]);
    assert.equal((await b.getJob(ca.job.id))?.state, "succeeded");
    assert.equal((await b.getJob(cc.job.id))?.state, "active");
    assert.ok([a, c].includes(ca.job.id));
  }));

  it("one batch with a stale run's ack and the new run's ack for the same job answers each by its token", use(async (b) => {
    const id = await enqueueOne(b);
    const stale = await claimOne(b, T0, ["q"], 1_000);
    await b.rescueExpired(T0 + 2_000);
    const fresh = await claimOne(b, T0 + 2_001);
    const statuses = await b.complete([{ id, token: stale.token, resultJson: '"stale"' }, { id, token: fresh.token, resultJson: '"fresh"' }], T0 + 2_002);
    assert.deepEqual(statuses, ["LEASE_LOST", "OK"]);
    assert.equal((await b.getJob(id))?.result, "fresh");
  }));

  it("a completion sent again (its reply was lost) is OK and changes nothing; nothing else reuses the token", use(async (b) => {
    const id = await enqueueOne(b);
    const other = await enqueueOne(b);
    const c = await claimOne(b, T0);
    assert.equal(c.job.id, id);
    assert.deepEqual(await b.complete([{ id, token: c.token, resultJson: '"first"' }], T0 + 1), ["OK"]);
    const eventsBefore = await b.readEvents({ afterId: 0, limit: 100 });
    const countsBefore = await b.counts();
    assert.deepEqual(await b.complete([{ id, token: c.token, resultJson: '"again"' }, { id: other, token: c.token, resultJson: "0" }], T0 + 2), ["OK", "LEASE_LOST"]);
    const job = await b.getJob(id);
    assert.equal(job?.result, "first", "the first result stays");
    assert.equal(job?.finishedAt, T0 + 1);
    assert.deepEqual(await b.readEvents({ afterId: 0, limit: 100 }), eventsBefore, "no second succeeded event");
    assert.deepEqual(await b.counts(), countsBefore);
    // The kept token opens nothing but the repeat: every other lease operation needs an active job.
    assert.equal(await b.fail({ id, token: c.token, error: attemptError(1), retryAt: undefined, now: T0 + 3 }), "LEASE_LOST");
    assert.equal(await b.progress({ id, token: c.token, progress: 0.5, message: undefined, now: T0 + 3 }), "LEASE_LOST");
    assert.equal(await b.log({ id, token: c.token, line: "late", now: T0 + 3 }), "LEASE_LOST");
    assert.deepEqual(await b.release([{ id, token: c.token }], T0 + 3), ["LEASE_LOST"]);
    assert.equal(await b.acknowledgeCancel({ id, token: c.token }, T0 + 3), "LEASE_LOST");
    assert.deepEqual((await b.heartbeat({ worker: "w1", leases: [{ id, token: c.token }], leaseMs: LEASE, now: T0 + 3 })).lost, [id]);
    assert.equal((await b.getJob(id))?.state, "succeeded");
  }));

  it("a failure sent again (its reply was lost) is answered as the first and changes nothing, until the job moves on", use(async (b) => {
    const id = await enqueueOne(b, { maxAttempts: 2 });
    const first = await claimOne(b, T0);
    assert.equal(await b.fail({ id, token: first.token, error: attemptError(1, T0 + 1), retryAt: T0 + 100, now: T0 + 1 }), "RETRYING");
    const eventsBefore = await b.readEvents({ afterId: 0, limit: 100 });
    const countsBefore = await b.counts();
    assert.equal(await b.fail({ id, token: first.token, error: attemptError(1, T0 + 2, "again"), retryAt: T0 + 200, now: T0 + 2 }), "RETRYING");
    const retrying = await b.getJob(id);
    assert.deepEqual(retrying?.errors.map((e) => e.message), ["boom"], "one error for one attempt");
    assert.equal(retrying?.runAt, T0 + 100, "the first retry time stays");
    assert.deepEqual(await b.readEvents({ afterId: 0, limit: 100 }), eventsBefore, "no second retrying event");
    assert.deepEqual(await b.counts(), countsBefore);
    // The kept token opens nothing else while the job waits.
    assert.deepEqual(await b.complete([{ id, token: first.token, resultJson: "1" }], T0 + 3), ["LEASE_LOST"]);
    assert.equal(await b.acknowledgeCancel({ id, token: first.token }, T0 + 3), "LEASE_LOST");
    assert.equal(await b.progress({ id, token: first.token, progress: 0.5, message: undefined, now: T0 + 3 }), "LEASE_LOST");
    assert.deepEqual((await b.heartbeat({ worker: "w1", leases: [{ id, token: first.token }], leaseMs: LEASE, now: T0 + 3 })).lost, [id]);
    // Claimed again, the job has moved on: the old run's repeat is refused.
    const second = await claimOne(b, T0 + 100);
    assert.equal(await b.fail({ id, token: first.token, error: attemptError(1, T0 + 101), retryAt: T0 + 200, now: T0 + 101 }), "LEASE_LOST");
    assert.equal(await b.fail({ id, token: second.token, error: attemptError(2, T0 + 102), retryAt: T0 + 200, now: T0 + 102 }), "FAILED", "no attempt left");
    assert.equal(await b.fail({ id, token: second.token, error: attemptError(2, T0 + 103, "again"), retryAt: undefined, now: T0 + 103 }), "FAILED");
    const failed = await b.getJob(id);
    assert.equal(failed?.state, "failed");
    assert.equal(failed?.finishedAt, T0 + 102);
    assert.deepEqual(failed?.errors.map((e) => e.attempt), [1, 2]);
    // Retried by hand, it has moved on again.
    assert.equal(await b.retry(id, T0 + 200), "QUEUED");
    assert.equal(await b.fail({ id, token: second.token, error: attemptError(2, T0 + 201), retryAt: undefined, now: T0 + 201 }), "LEASE_LOST");
    assert.equal((await b.getJob(id))?.state, "queued");
  }));

  it("a cancellation acknowledged again is OK and changes nothing", use(async (b) => {
    const id = await enqueueOne(b);
    const c = await claimOne(b, T0);
    assert.equal(await b.cancel(id, T0 + 1), "CANCEL_REQUESTED");
    assert.equal(await b.acknowledgeCancel({ id, token: c.token }, T0 + 2), "OK");
    const eventsBefore = await b.readEvents({ afterId: 0, limit: 100 });
    assert.equal(await b.acknowledgeCancel({ id, token: c.token }, T0 + 3), "OK");
    // A failure from the same run finds it ended cancelled (as a failure after a cancel request
    // would have left it) and writes nothing either.
    assert.equal(await b.fail({ id, token: c.token, error: attemptError(1), retryAt: undefined, now: T0 + 3 }), "CANCELLED");
    const job = await b.getJob(id);
    assert.equal(job?.state, "cancelled");
    assert.equal(job?.finishedAt, T0 + 2);
    assert.deepEqual(job?.errors, []);
    assert.deepEqual(await b.readEvents({ afterId: 0, limit: 100 }), eventsBefore);
  }));

  it("a job cancelled while retrying or retried by hand keeps no token that a cancellation acknowledgement would take", use(async (b) => {
    // Retrying from a failed run, then cancelled by a user: no run of it was cancelled.
    const waiting = await enqueueOne(b);
    const w = await claimOne(b, T0);
    assert.equal(await b.fail({ id: waiting, token: w.token, error: attemptError(1), retryAt: T0 + 100, now: T0 + 1 }), "RETRYING");
    assert.equal(await b.cancel(waiting, T0 + 2), "CANCELLED");
    assert.equal(await b.acknowledgeCancel({ id: waiting, token: w.token }, T0 + 3), "LEASE_LOST");
    assert.equal(await b.fail({ id: waiting, token: w.token, error: attemptError(1), retryAt: T0 + 100, now: T0 + 3 }), "LEASE_LOST");
    // Failed, retried by hand, then cancelled before it ran again.
    const failed = await enqueueOne(b, { maxAttempts: 1 });
    const f = await claimOne(b, T0 + 10);
    assert.equal(f.job.id, failed);
    assert.equal(await b.fail({ id: failed, token: f.token, error: attemptError(1), retryAt: undefined, now: T0 + 11 }), "FAILED");
    assert.equal(await b.retry(failed, T0 + 12), "QUEUED");
    assert.equal(await b.cancel(failed, T0 + 13), "CANCELLED");
    assert.equal(await b.acknowledgeCancel({ id: failed, token: f.token }, T0 + 14), "LEASE_LOST");
  }));

  it("a heartbeat extends the lease; a lost lease is reported", use(async (b) => {
    const id = await enqueueOne(b);
    const claimed = await claimOne(b, T0, ["q"], 1_000);
    const beat = await b.heartbeat({ worker: "w1", leases: [{ id, token: claimed.token }], leaseMs: 1_000, now: T0 + 900 });
    assert.deepEqual(beat, { lost: [], cancelRequested: [] });
    assert.equal((await b.getJob(id))?.leaseUntil, T0 + 1_900);
    assert.deepEqual((await b.rescueExpired(T0 + 1_500)).requeued, [], "the extended lease holds");
    assert.deepEqual((await b.rescueExpired(T0 + 1_901)).requeued, [id]);
    const lost = await b.heartbeat({ worker: "w1", leases: [{ id, token: claimed.token }], leaseMs: 1_000, now: T0 + 2_000 });
    assert.deepEqual(lost.lost, [id]);
  }));

  it("rescuing the last attempt fails the job (dead letter)", use(async (b) => {
    const id = await enqueueOne(b, { maxAttempts: 1 });
    await claimOne(b, T0, ["q"], 1_000);
    const rescued = await b.rescueExpired(T0 + 5_000);
    assert.deepEqual(rescued.failed, [id]);
    const job = await b.getJob(id);
    assert.equal(job?.state, "failed");
    assert.equal(job?.finishedAt, T0 + 5_000);
  }));

  it("release of a job whose cancel was requested ends it cancelled, still naming the worker that ran it", use(async (b) => {
    const id = await enqueueOne(b);
    const claimed = await claimOne(b);
    assert.equal(await b.cancel(id, T0 + 1), "CANCEL_REQUESTED");
    assert.deepEqual(await b.release([{ id, token: claimed.token }], T0 + 2), ["CANCELLED"]);
    const job = await b.getJob(id);
    assert.equal(job?.state, "cancelled");
    assert.equal(job?.attempt, 1);
    assert.equal(job?.worker, "w1");
    assert.equal(job?.finishedAt, T0 + 2);
  }));

  it("a release batch naming one lease twice hands the job back once: the repeat finds the lease gone", use(async (b) => {
    const id = await enqueueOne(b);
    const claimed = await claimOne(b);
    assert.deepEqual(await b.release([{ id, token: claimed.token }, { id, token: claimed.token }], T0 + 1), ["QUEUED", "LEASE_LOST"]);
    const job = await b.getJob(id);
    assert.equal(job?.state, "queued");
    assert.equal(job?.attempt, 0, "the attempt is given back once");
  }));

  it("a release batch with a stale and the current lease of one job answers each by its token", use(async (b) => {
    const id = await enqueueOne(b);
    const stale = await claimOne(b, T0, ["q"], 1_000);
    await b.rescueExpired(T0 + 2_000);
    const current = await claimOne(b, T0 + 2_001);
    assert.deepEqual(await b.release([{ id, token: stale.token }, { id, token: current.token }], T0 + 2_002), ["LEASE_LOST", "QUEUED"]);
    assert.equal((await b.getJob(id))?.state, "queued");
  }));

  it("a completion batch naming one lease twice: both OK, the first result kept, one state event", use(async (b) => {
    const id = await enqueueOne(b);
    const claimed = await claimOne(b);
    const acks = [{ id, token: claimed.token, resultJson: '"first"' }, { id, token: claimed.token, resultJson: '"second"' }];
    assert.deepEqual(await b.complete(acks, T0 + 1), ["OK", "OK"]);
    const job = await b.getJob(id);
    assert.equal(job?.state, "succeeded");
    assert.equal(job?.result, "first");
    const states = (await b.readEvents({ jobId: id, afterId: 0, limit: 10 })).map((e) => e.data["state"]);
    assert.deepEqual(states, ["queued", "active", "succeeded"]);
  }));

  it("release hands an active job back to queued without counting the attempt", use(async (b) => {
    const id = await enqueueOne(b);
    const claimed = await claimOne(b);
    assert.deepEqual(await b.release([{ id, token: claimed.token }], T0 + 1), ["QUEUED"]);
    const job = await b.getJob(id);
    assert.equal(job?.state, "queued");
    assert.equal(job?.attempt, 0);
    assert.equal((await claimOne(b, T0 + 2)).job.attempt, 1);
  }));
}
