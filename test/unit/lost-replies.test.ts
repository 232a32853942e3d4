// The rules for sending an enqueue again after its reply was lost, and for recovering a claim's (src/backend/lost-replies.ts),
// over a real store (SQLite in memory) whose replies a wrapper loses on purpose. The server
// adapters' own tests lose real replies through a proxy (test/backends/*-dead-connections.*).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { NewJob } from "../../src/backend/backend.ts";
import { type ResendEnqueue, RESEND_DELAYS_MS, claimRecovering, enqueueResending } from "../../src/backend/lost-replies.ts";
import { SqliteBackend } from "../../src/backend/sqlite/sqlite-backend.ts";
import { T0, newJob } from "../conformance/fixtures.ts";

class LostReply extends Error {}
class NotSent extends Error {}

/** `enqueueResending` over an in-memory store; `plan` says, call by call, what happens to each attempt. */
function harness(plan: Array<"lose-reply" | "lose-request" | "deliver" | "refuse" | "not-sent">, beforeAttempt?: (attempt: number, store: SqliteBackend) => Promise<void>) {
  const store = new SqliteBackend({ path: ":memory:" });
  const attempts: string[][] = [];
  const pauses: number[] = [];
  const deps: ResendEnqueue = {
    async send(jobs) {
      attempts.push(jobs.map((j) => j.id));
      await beforeAttempt?.(attempts.length, store);
      const step = plan[attempts.length - 1] ?? "deliver";
      if (step === "lose-request") throw new LostReply("never reached the server");
      if (step === "refuse") throw new Error("the server refused the batch");
      if (step === "not-sent") throw new NotSent("no connection in time; the call was not sent");
      const results = await store.enqueue({ jobs, now: T0 });
      if (step === "lose-reply") throw new LostReply("reply lost after the server stored the batch");
      return results;
    },
    resendable: (error) => error instanceof LostReply,
    notSent: (error) => error instanceof NotSent,
    // SQLITE_CONSTRAINT_PRIMARYKEY: a job with one of these ids exists.
    duplicateId: (error) => error instanceof Error && (error as { errcode?: unknown }).errcode === 1555,
    async stored(ids) {
      const found = await Promise.all(ids.map((id) => store.getJob(id)));
      return new Set(ids.filter((_, i) => found[i] !== undefined));
    },
    async pause(ms) {
      pauses.push(ms);
    },
  };
  const count = async (): Promise<number> => (await store.listJobs({ limit: 100 })).length;
  return { store, deps, attempts, pauses, count };
}

const queued = (job: NewJob) => ({ job: { id: job.id, state: "queued" }, created: true });

describe("enqueue sent again after a lost reply", () => {
  it("a batch stored before its reply was lost is answered as created, and stored once", async () => {
    const h = harness(["lose-reply"]);
    const jobs = [newJob(), newJob()];
    assert.deepEqual(await enqueueResending(jobs, T0, h.deps), jobs.map(queued));
    assert.equal(h.attempts.length, 2);
    assert.deepEqual(h.pauses, [RESEND_DELAYS_MS[0]]);
    assert.equal(await h.count(), 2);
  });

  it("a batch lost on its way is stored by the resend", async () => {
    const h = harness(["lose-request", "lose-request"]);
    const jobs = [newJob()];
    assert.deepEqual(await enqueueResending(jobs, T0, h.deps), jobs.map(queued));
    assert.deepEqual(h.pauses, RESEND_DELAYS_MS.slice(0, 2));
    assert.equal(await h.count(), 1);
  });

  it("a keyed job that the lost attempt stored is found as its key's holder: reported created", async () => {
    const h = harness(["lose-reply"]);
    const job = newJob({ key: "report:7" });
    assert.deepEqual(await enqueueResending([job], T0, h.deps), [queued(job)]);
    assert.equal(await h.count(), 1);
  });

  it("a keyed job the lost attempt matched to another holder is matched again; the rest are its own", async () => {
    const h = harness(["deliver", "lose-reply"]);
    const holder = newJob({ key: "report:7" });
    await enqueueResending([holder], T0, h.deps);
    const matched = newJob({ key: "report:7" });
    const fresh = newJob();
    const results = await enqueueResending([matched, fresh], T0, h.deps);
    assert.deepEqual(results.map((r) => [r.job.id, r.created]), [[holder.id, false], [fresh.id, true]]);
    assert.deepEqual(h.attempts.slice(1), [[matched.id, fresh.id], [matched.id, fresh.id], [matched.id]], "the matched job alone, once the refusal showed the batch had landed");
    assert.equal(await h.count(), 2);
  });

  it("a keyed job the lost attempt stored, which finished and gave up its key before the resend, is still this call's", async () => {
    const job = newJob({ key: "report:9" });
    const other = newJob({ key: "report:9" });
    const h = harness(["lose-reply"], async (attempt, store) => {
      if (attempt !== 2) return;
      // Between the lost reply and the resend: the job runs and succeeds, and another takes the key.
      const [claimed] = await store.claim({ queues: ["q"], limit: 1, worker: "w", leaseMs: 1_000, now: T0 });
      await store.complete([{ id: job.id, token: claimed?.token ?? "", resultJson: "1" }], T0);
      await store.enqueue({ jobs: [other], now: T0 });
    });
    assert.deepEqual(await enqueueResending([job], T0, h.deps), [queued(job)]);
    assert.equal(await h.count(), 2);
  });

  it("a refusal for ids that were there before the call stands (a relay delivering again): nothing is claimed as stored", async () => {
    const h = harness(["deliver", "lose-request"]);
    const delivered = newJob();
    await enqueueResending([delivered], T0, h.deps);
    const missing = newJob();
    await assert.rejects(enqueueResending([delivered, missing], T0, h.deps), (error: unknown) => h.deps.duplicateId(error));
    assert.equal(await h.store.getJob(missing.id), undefined);
  });

  it("an error the server answered is not sent again", async () => {
    const h = harness(["refuse"]);
    await assert.rejects(enqueueResending([newJob()], T0, h.deps), /refused/);
    assert.equal(h.attempts.length, 1);
    assert.deepEqual(h.pauses, []);
  });

  it("a resend that could not be sent is tried again: the next one finds the batch the lost attempt stored", async () => {
    const h = harness(["lose-reply", "not-sent", "deliver"]);
    const job = newJob();
    assert.deepEqual(await enqueueResending([job], T0, h.deps), [queued(job)]);
    assert.equal(h.attempts.length, 3);
    assert.equal(await h.count(), 1);
  });

  it("resends that are never sent, or refused, end with the doubt of the lost attempt, not with their own answer", async () => {
    for (const after of ["not-sent", "refuse"] as const) {
      const h = harness(["lose-reply", ...Array.from({ length: RESEND_DELAYS_MS.length }, () => after)]);
      // "not sent" or "refused" would say the job was not stored; the first attempt stored it.
      await assert.rejects(enqueueResending([newJob()], T0, h.deps), (error: unknown) => error instanceof LostReply, after);
      assert.equal(await h.count(), 1, after);
    }
  });

  it("a first attempt that could not be sent is the answer: nothing was written, nothing is sent again", async () => {
    const h = harness(["not-sent"]);
    await assert.rejects(enqueueResending([newJob()], T0, h.deps), NotSent);
    assert.equal(h.attempts.length, 1);
    assert.equal(await h.count(), 0);
  });

  it("gives up after the last pause of the schedule, with the last error", async () => {
    const h = harness(Array.from({ length: RESEND_DELAYS_MS.length + 1 }, () => "lose-request" as const));
    await assert.rejects(enqueueResending([newJob()], T0, h.deps), LostReply);
    assert.equal(h.attempts.length, RESEND_DELAYS_MS.length + 1);
    assert.deepEqual(h.pauses, RESEND_DELAYS_MS);
    assert.equal(await h.count(), 0);
  });
});

describe("claim recovered after a lost reply", () => {
  const lost = new LostReply("reply lost");
  /** A claim whose reply is lost; each look for its jobs finds the next entry of `found`. */
  function recovering(found: string[][], leaseMs = 60_000) {
    let looks = 0;
    const now = Date.now();
    const claimed = claimRecovering<string>({
      claim: () => Promise.reject(lost),
      reclaim: async () => found[looks++] ?? [],
      resendable: () => true, // as PostgreSQL's adapter has it: any error without a server code
      now,
      leaseUntil: now + leaseMs,
    });
    return { claimed, looks: () => looks };
  }

  it("hands over the jobs the lost claim took", async () => {
    const r = recovering([["a", "b"]]);
    assert.deepEqual(await r.claimed, ["a", "b"]);
    assert.equal(r.looks(), 1);
  });

  it("fails with the lost reply's error when the lost claim took nothing: an empty answer reads as an empty queue", async () => {
    const r = recovering([[]]);
    await assert.rejects(r.claimed, (error) => error === lost);
    assert.equal(r.looks(), 1, "one look settles it: nothing is looked for again");
  });

  it("fails likewise once the claim's leases have run out, without looking (the jobs are rescue's)", async () => {
    const r = recovering([["a"]], 0);
    await assert.rejects(r.claimed, (error) => error === lost);
    assert.equal(r.looks(), 0);
  });
});
