// Enqueue, claim, complete; ordering; scheduling; idempotency keys; atomic batches.
import assert from "node:assert/strict";
import { it } from "node:test";
import { uuidv7 } from "../../src/core/ids.ts";
import { type UseBackend, LEASE, T0, attemptError, claimOne, enqueueOne, newJob, nextChange } from "./fixtures.ts";

export function lifecycleCases(use: UseBackend): void {
  it("enqueue → claim → complete stores the result and the times", use(async (b) => {
    const id = await enqueueOne(b, { payloadJson: JSON.stringify({ to: "ada" }) });
    const queued = await b.getJob(id);
    assert.equal(queued?.state, "queued");
    assert.deepEqual(queued?.payload, { to: "ada" });
    assert.equal(queued?.attempt, 0);

    const claimed = await claimOne(b, T0 + 5);
    assert.equal(claimed.job.id, id);
    assert.equal(claimed.job.state, "active");
    assert.equal(claimed.job.attempt, 1);
    assert.equal(claimed.job.worker, "w1");
    assert.equal(claimed.job.leaseUntil, T0 + 5 + LEASE);
    assert.ok(claimed.token.length >= 16);

    assert.deepEqual(await b.complete([{ id, token: claimed.token, resultJson: JSON.stringify({ sent: true }) }], T0 + 9), ["OK"]);
    const done = await b.getJob(id);
    assert.equal(done?.state, "succeeded");
    assert.deepEqual(done?.result, { sent: true });
    assert.equal(done?.startedAt, T0 + 5);
    assert.equal(done?.finishedAt, T0 + 9);
    assert.equal(done?.createdAt, T0);
    assert.deepEqual(await b.claim({ queues: ["q"], limit: 5, worker: "w1", leaseMs: LEASE, now: T0 + 10 }), []);
  }));

  it("a claimed job carries its text fields exactly, whatever characters they hold", use(async (b) => {
    // Separators and markers a store might use inside its replies, non-Latin text and an emoji:
    // what goes in must come out of a claim unchanged. (U+0000 only inside the payload, where
    // JSON escapes it: PostgreSQL text cannot hold it, so the client refuses it in keys and owners.)
    const odd = "tab\there\nnewline ÿþ \u00a0 ✓ 🎉 \\ \" ' , ; | \u001f\u007f";
    const payload = { text: `${odd} \u0000`, empty: "" };
    const id = await enqueueOne(b, { payloadJson: JSON.stringify(payload), key: `k ${odd}`, owner: odd });
    const [claimed] = await b.claim({ queues: ["q"], limit: 2, worker: "w1", leaseMs: LEASE, now: T0 + 1 });
    assert.equal(claimed?.job.id, id);
    assert.deepEqual(claimed?.job.payload, payload);
    assert.equal(claimed?.job.key, `k ${odd}`);
    assert.equal(claimed?.job.owner, odd);
    assert.deepEqual(await b.getJob(id).then((j) => [j?.key, j?.owner]), [`k ${odd}`, odd]);
  }));

  it("claims never more than the limit, and only from the asked queues", use(async (b) => {
    await b.enqueue({ jobs: [1, 2, 3, 4, 5].map(() => newJob({ id: uuidv7(T0) })), now: T0 });
    await enqueueOne(b, { queue: "other" });
    const first = await b.claim({ queues: ["q"], limit: 3, worker: "w1", leaseMs: LEASE, now: T0 });
    assert.equal(first.length, 3);
    const second = await b.claim({ queues: ["q"], limit: 3, worker: "w2", leaseMs: LEASE, now: T0 });
    assert.equal(second.length, 2);
    const ids = new Set([...first, ...second].map((c) => c.job.id));
    assert.equal(ids.size, 5, "no job is claimed twice");
    assert.ok([...first, ...second].every((c) => c.job.queue === "q"));
    const other = await b.claim({ queues: ["q", "other"], limit: 10, worker: "w3", leaseMs: LEASE, now: T0 });
    assert.deepEqual(other.map((c) => c.job.queue), ["other"]);
  }));

  it("claims in priority order, then run time, then id", use(async (b) => {
    const low = await enqueueOne(b, { id: uuidv7(T0), priority: 0, runAt: T0 - 50 });
    const high = await enqueueOne(b, { id: uuidv7(T0), priority: 10, runAt: T0 });
    const lowOlder = await enqueueOne(b, { id: uuidv7(T0), priority: 0, runAt: T0 - 100 });
    const lowSameTimeLater = await enqueueOne(b, { id: uuidv7(T0), priority: 0, runAt: T0 - 50 });
    const order: string[] = [];
    for (let i = 0; i < 4; i++) order.push((await claimOne(b, T0 + i)).job.id);
    assert.deepEqual(order, [high, lowOlder, low, lowSameTimeLater]);
    const batch = await (async () => {
      const ids = [uuidv7(T0), uuidv7(T0), uuidv7(T0)];
      await b.enqueue({ jobs: ids.map((id, i) => newJob({ id, priority: i })), now: T0 });
      return b.claim({ queues: ["q"], limit: 3, worker: "w", leaseMs: LEASE, now: T0 + 10 });
    })();
    assert.deepEqual(batch.map((c) => c.job.priority), [2, 1, 0], "a batch claim comes back in claim order");
  }));

  it("a claim over more queues than its limit takes the best jobs of all of them, in claim order, claim after claim", use(async (b) => {
    // 12 queues, claims of 3: a queue may hold several of a claim's jobs, or none; levels emptied
    // by a cancel are passed over. Every job is claimed once, in the order of one sorted list.
    let seed = 7;
    const random = (n: number): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed % n;
    };
    const queues = Array.from({ length: 12 }, (_, i) => `mq${i}`);
    const jobs = Array.from({ length: 60 }, (_, i) => newJob({
      id: uuidv7(T0 + i), queue: queues[random(queues.length)] ?? "mq0", priority: random(4), runAt: T0 - random(5) * 10,
    }));
    await b.enqueue({ jobs, now: T0 });
    const cancelled = new Set(jobs.filter((j) => j.priority === 3 && j.queue === "mq1").map((j) => j.id));
    for (const id of cancelled) assert.equal(await b.cancel(id, T0), "CANCELLED");
    const expected = jobs.filter((j) => !cancelled.has(j.id))
      .sort((x, y) => y.priority - x.priority || x.runAt - y.runAt || (x.id < y.id ? -1 : 1))
      .map((j) => j.id);
    const claimed: string[] = [];
    for (let n = 0; n < 30 && claimed.length < expected.length; n++) {
      const batch = await b.claim({ queues, limit: 3, worker: "w", leaseMs: LEASE, now: T0 + 1 + n });
      claimed.push(...batch.map((c) => c.job.id));
    }
    assert.deepEqual(claimed, expected);
  }));

  it("a claim fills its batch across many priority levels, past levels whose jobs were all cancelled", use(async (b) => {
    // 12 levels above the rest hold only cancelled jobs; 40 more levels hold one job each.
    const cancelled = Array.from({ length: 12 }, (_, i) => newJob({ id: uuidv7(T0), priority: 1_000 + i }));
    const kept = Array.from({ length: 40 }, (_, i) => newJob({ id: uuidv7(T0), priority: i }));
    await b.enqueue({ jobs: [...cancelled, ...kept], now: T0 });
    for (const job of cancelled) assert.equal(await b.cancel(job.id, T0), "CANCELLED");
    for (const queues of [["q"], ["q", "elsewhere"]]) {
      const batch = await b.claim({ queues, limit: 5, worker: "w", leaseMs: LEASE, now: T0 + 1 });
      assert.equal(batch.length, 5, `a full batch from ${queues.join(", ")}`);
      assert.deepEqual(batch.map((c) => c.job.priority), batch.map((c) => c.job.priority).sort((x, y) => y - x), "in priority order");
    }
    const all = await b.claim({ queues: ["q"], limit: 100, worker: "w", leaseMs: LEASE, now: T0 + 2 });
    assert.deepEqual(all.map((c) => c.job.priority), Array.from({ length: 30 }, (_, i) => 29 - i), "the rest, highest first");
  }));

  it("a delayed job is scheduled, not claimable before its time, claimable after", use(async (b) => {
    const id = await enqueueOne(b, { runAt: T0 + 60_000 });
    assert.equal((await b.getJob(id))?.state, "scheduled");
    assert.equal(await b.nextDueAt(["q"]), T0 + 60_000);
    assert.equal(await b.nextDueAt(["elsewhere"]), undefined);
    assert.deepEqual(await b.claim({ queues: ["q"], limit: 1, worker: "w1", leaseMs: LEASE, now: T0 + 59_999 }), []);
    const claimed = await claimOne(b, T0 + 60_000);
    assert.equal(claimed.job.id, id);
  }));

  it("stageDue moves due scheduled jobs to queued and leaves the rest", use(async (b) => {
    const soon = await enqueueOne(b, { runAt: T0 + 1_000 });
    const later = await enqueueOne(b, { runAt: T0 + 9_000 });
    assert.equal(await b.stageDue(T0 + 1_000), 1);
    assert.equal((await b.getJob(soon))?.state, "queued");
    assert.equal((await b.getJob(later))?.state, "scheduled");
  }));

  it("due jobs compete for a claim in claim order, as if staged with the rest: a due job of higher priority first, and none left behind newer work", use(async (b) => {
    // 900 due at one instant: a step of staging that took the oldest first would leave the
    // urgent one behind them, and a claim larger than such a step would take newer work ahead
    // of older due jobs (docs/decisions.md, *Scale*).
    await b.enqueue({ jobs: Array.from({ length: 900 }, () => newJob({ id: uuidv7(T0), runAt: T0 + 1_000 })), now: T0 });
    const urgent = await enqueueOne(b, { id: uuidv7(T0), priority: 10, runAt: T0 + 1_500 });
    const newer = await enqueueOne(b, { id: uuidv7(T0 + 1_600), runAt: T0 + 1_600 }, T0 + 1_600); // queued at once
    const claimed = await b.claim({ queues: ["q"], limit: 901, worker: "w", leaseMs: LEASE, now: T0 + 2_000 });
    assert.equal(claimed[0]?.job.id, urgent);
    assert.equal(claimed.length, 901);
    assert.ok(!claimed.some((c) => c.job.id === newer), "the newer job waits for every older due one");
  }));

  it("a claim's own due job is not kept waiting behind another queue's burst of due jobs", use(async (b) => {
    const burst = Array.from({ length: 2_500 }, () => newJob({ id: uuidv7(T0), queue: "bulk", runAt: T0 + 1_000 }));
    await b.enqueue({ jobs: burst, now: T0 });
    const own = await enqueueOne(b, { runAt: T0 + 1_500 }); // due after the whole burst
    const [claimed] = await b.claim({ queues: ["q"], limit: 1, worker: "w", leaseMs: LEASE, now: T0 + 2_000 });
    assert.equal(claimed?.job.id, own);
  }));

  it("an idempotency key returns the unfinished job, and is free again once it finished", use(async (b) => {
    const [first] = await b.enqueue({ jobs: [newJob({ key: "report:1" })], now: T0 });
    const [again] = await b.enqueue({ jobs: [newJob({ id: uuidv7(T0), key: "report:1" })], now: T0 + 1 });
    assert.equal(first?.created, true);
    assert.equal(again?.created, false);
    assert.equal(again?.job.id, first?.job.id);

    const claimed = await claimOne(b, T0 + 2);
    const [whileActive] = await b.enqueue({ jobs: [newJob({ id: uuidv7(T0), key: "report:1" })], now: T0 + 3 });
    assert.equal(whileActive?.job.id, first?.job.id, "an active job still holds its key");
    await b.complete([{ id: claimed.job.id, token: claimed.token, resultJson: "null" }], T0 + 4);

    const [after] = await b.enqueue({ jobs: [newJob({ id: uuidv7(T0), key: "report:1" })], now: T0 + 5 });
    assert.equal(after?.created, true);
    assert.notEqual(after?.job.id, first?.job.id);
  }));

  it("the same key twice in one batch yields one job", use(async (b) => {
    const results = await b.enqueue({ jobs: [newJob({ id: uuidv7(T0), key: "k" }), newJob({ id: uuidv7(T0), key: "k" })], now: T0 });
    assert.deepEqual(results.map((r) => r.created), [true, false]);
    assert.equal(results[0]?.job.id, results[1]?.job.id);
  }));

  it("an idempotency key is held per task: another task's job with the same key is its own; retry and replay go by the task's key", use(async (b) => {
    const [mail, charge, mailAgain] = await b.enqueue({
      jobs: [newJob({ id: uuidv7(T0), task: "mail", key: "order:1" }), newJob({ id: uuidv7(T0), task: "charge", key: "order:1" }), newJob({ id: uuidv7(T0), task: "mail", key: "order:1" })],
      now: T0,
    });
    assert.deepEqual([mail?.created, charge?.created, mailAgain?.created], [true, true, false]);
    assert.equal(mailAgain?.job.id, mail?.job.id);
    assert.notEqual(charge?.job.id, mail?.job.id);
    const [later] = await b.enqueue({ jobs: [newJob({ id: uuidv7(T0 + 1), task: "charge", key: "order:1" })], now: T0 + 1 });
    assert.deepEqual([later?.created, later?.job.id], [false, charge?.job.id]);

    // The mail job fails for good; while another mail job holds the key, it cannot be retried, and
    // the charge job holding the same key does not stand in its way.
    const claimed = await b.claim({ queues: ["q"], limit: 2, worker: "w", leaseMs: LEASE, now: T0 + 2 });
    const mailRun = claimed.find((c) => c.job.task === "mail");
    assert.ok(mailRun);
    assert.equal(await b.fail({ id: mailRun.job.id, token: mailRun.token, error: attemptError(1, T0 + 3), retryAt: undefined, now: T0 + 3 }), "FAILED");
    const [otherMail] = await b.enqueue({ jobs: [newJob({ id: uuidv7(T0 + 4), task: "mail", key: "order:1" })], now: T0 + 4 });
    assert.equal(otherMail?.created, true, "the failed job let go of its key");
    assert.equal(await b.retry(mailRun.job.id, T0 + 5), "KEY_IN_USE");
    assert.equal(await b.replay({ task: "mail" }, T0 + 5), 0);
  }));

  it("a batch is atomic: when one job cannot be stored, none is", use(async (b) => {
    const existing = await enqueueOne(b);
    const fresh = uuidv7(T0);
    await assert.rejects(b.enqueue({ jobs: [newJob({ id: fresh }), newJob({ id: existing })], now: T0 }));
    assert.equal(await b.getJob(fresh), undefined);
  }));

  it("announces changes to every watcher, and no more to one that stopped", use(async (b) => {
    let calls = 0;
    const stop = b.watch(() => calls++);
    const seen = nextChange(b);
    await enqueueOne(b);
    await seen;
    assert.ok(calls >= 1, "the other watcher heard the change too");
    stop();
    const heard = calls;
    // A second change reaches a watcher still subscribed, and not the stopped one.
    const seenAgain = nextChange(b);
    await enqueueOne(b);
    await seenAgain;
    assert.equal(calls, heard, "a stopped watcher was called");
  }));
}
