// Read models: get, list, counts, the event feed; pruning by retention.
import assert from "node:assert/strict";
import { it } from "node:test";
import { logCapLine } from "../../src/backend/backend.ts";
import { uuidv7 } from "../../src/core/ids.ts";
import { type UseBackend, LEASE, T0, attemptError, claimOne, enqueueOne, newJob } from "./fixtures.ts";

const DAY = 86_400_000;

export function readCases(use: UseBackend): void {
  it("getJob of an unknown id is undefined", use(async (b) => {
    assert.equal(await b.getJob("01890000-0000-7000-8000-000000000000"), undefined);
  }));

  it("peekJobs answers many jobs at once: each one's state and newest event id, which every event moves on", use(async (b) => {
    const id = await enqueueOne(b);
    const other = await enqueueOne(b, { queue: "other" });
    const unknown = "01890000-0000-7000-8000-000000000000";
    assert.deepEqual(await b.peekJobs([]), []);
    const newest = async (jobId: string): Promise<number> => (await b.readEvents({ jobId, afterId: 0, limit: 100 })).at(-1)?.id ?? -1;
    const peek = async (): Promise<Map<string, { state: string; lastEventId: number }>> =>
      new Map((await b.peekJobs([unknown, id, other])).map((p) => [p.id, { state: p.state, lastEventId: p.lastEventId }]));

    let seen = await peek();
    assert.deepEqual([...seen.keys()].sort(), [id, other].sort(), "an id of no job is left out");
    assert.deepEqual(seen.get(id), { state: "queued", lastEventId: await newest(id) });
    assert.deepEqual(seen.get(other), { state: "queued", lastEventId: await newest(other) });

    // Each kind of event moves the job's newest id on, whether or not its state changes.
    const c = await claimOne(b, T0 + 1);
    const steps: Array<[string, () => Promise<unknown>]> = [
      ["active", async () => {}], // the claim, made above
      ["active", () => b.progress({ id, token: c.token, progress: 0.5, message: undefined, now: T0 + 2 })],
      ["active", () => b.progress({ id, token: c.token, progress: 0.6, message: undefined, now: T0 + 3 })], // replaces the previous one
      ["active", () => b.log({ id, token: c.token, line: "a line", now: T0 + 4 })],
      ["succeeded", () => b.complete([{ id, token: c.token, resultJson: "1" }], T0 + 5)],
    ];
    for (const [state, step] of steps) {
      const before = seen.get(id)?.lastEventId ?? 0;
      await step();
      seen = await peek();
      assert.equal(seen.get(id)?.state, state);
      assert.equal(seen.get(id)?.lastEventId, await newest(id));
      assert.ok((seen.get(id)?.lastEventId ?? 0) > before, `a new event (${state}) moves the newest id on`);
    }
    assert.deepEqual(seen.get(other), { state: "queued", lastEventId: await newest(other) }, "the other job's answer is its own");
  }));

  it("counts jobs per queue and state, with the oldest queued job's run time", use(async (b) => {
    await enqueueOne(b, { runAt: T0 - 5_000 });
    await enqueueOne(b, { runAt: T0 - 1_000 });
    await enqueueOne(b, { runAt: T0 + 60_000 });
    await enqueueOne(b, { queue: "mail" });
    const c = await claimOne(b, T0, ["mail"]);
    await b.fail({ id: c.job.id, token: c.token, error: attemptError(1), retryAt: undefined, now: T0 });
    const counts = await b.counts();
    const q = counts.find((x) => x.queue === "q");
    const mail = counts.find((x) => x.queue === "mail");
    assert.deepEqual(q?.counts, { scheduled: 1, queued: 2, active: 0, retrying: 0, succeeded: 0, failed: 0, cancelled: 0 });
    assert.equal(q?.oldestQueuedAt, T0 - 5_000);
    assert.equal(mail?.counts.failed, 1);
    assert.equal(mail?.oldestQueuedAt, undefined);
  }));

  it("lists newest first, filtered by state, queue and task, with a cursor", use(async (b) => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await enqueueOne(b, { id: uuidv7(T0 + i), task: i % 2 ? "odd" : "even" }, T0 + i));
    await enqueueOne(b, { id: uuidv7(T0 + 10), queue: "other" }, T0 + 10);
    const page1 = await b.listJobs({ queue: "q", limit: 2 });
    assert.deepEqual(page1.map((j) => j.id), [ids[4], ids[3]]);
    const page2 = await b.listJobs({ queue: "q", limit: 10, before: page1.at(-1)?.id });
    assert.deepEqual(page2.map((j) => j.id), [ids[2], ids[1], ids[0]]);
    assert.deepEqual((await b.listJobs({ task: "odd", limit: 10 })).map((j) => j.id), [ids[3], ids[1]]);
    assert.equal((await b.listJobs({ state: "queued", limit: 100 })).length, 6);
    assert.equal((await b.listJobs({ state: "failed", limit: 100 })).length, 0);
  }));

  it("the event feed records transitions, progress and logs, with increasing ids", use(async (b) => {
    const id = await enqueueOne(b);
    const other = await enqueueOne(b, { queue: "other" });
    const c = await claimOne(b, T0 + 1);
    assert.equal(await b.progress({ id, token: c.token, progress: 0.25, message: "page 1", now: T0 + 2 }), "OK");
    assert.equal(await b.log({ id, token: c.token, line: "hello", now: T0 + 3 }), "OK");
    assert.deepEqual(await b.complete([{ id, token: c.token, resultJson: "1" }], T0 + 4), ["OK"]);
    const job = await b.getJob(id);
    assert.equal(job?.progress, 0.25);
    assert.equal(job?.progressMessage, "page 1");

    const events = await b.readEvents({ jobId: id, afterId: 0, limit: 100 });
    assert.deepEqual(events.map((e) => [e.type, e.data["state"] ?? e.data["progress"] ?? e.data["line"]]), [
      ["state", "queued"], ["state", "active"], ["progress", 0.25], ["log", "hello"], ["state", "succeeded"],
    ]);
    assert.ok(events.every((e) => e.jobId === id));
    for (let i = 1; i < events.length; i++) assert.ok((events[i]?.id ?? 0) > (events[i - 1]?.id ?? 0));
    assert.equal(events[2]?.data["message"], "page 1");
    assert.equal(events[2]?.at, T0 + 2);

    const resumed = await b.readEvents({ jobId: id, afterId: events[1]?.id ?? 0, limit: 100 });
    assert.deepEqual(resumed.map((e) => e.id), events.slice(2).map((e) => e.id), "resuming after an id loses and repeats nothing");
    const all = await b.readEvents({ afterId: 0, limit: 100 });
    assert.ok(all.some((e) => e.jobId === other));
    assert.equal((await b.readEvents({ afterId: 0, limit: 2 })).length, 2);
  }));

  it("progress is a gauge: of one run's progress events the history keeps the newest; an earlier run's newest stays", use(async (b) => {
    const id = await enqueueOne(b);
    const first = await claimOne(b, T0 + 1);
    const progress = (token: string, value: number, now: number) => b.progress({ id, token, progress: value, message: `at ${value}`, now });
    assert.equal(await progress(first.token, 0.1, T0 + 2), "OK");
    assert.equal(await progress(first.token, 0.2, T0 + 3), "OK");
    assert.equal(await b.log({ id, token: first.token, line: "between", now: T0 + 4 }), "OK");
    assert.equal(await progress(first.token, 0.3, T0 + 5), "OK");
    assert.deepEqual(await b.release([{ id, token: first.token }], T0 + 6), ["QUEUED"]);
    const second = await claimOne(b, T0 + 7);
    assert.equal(await progress(second.token, 0.5, T0 + 8), "OK");
    assert.equal(await progress(second.token, 0.6, T0 + 9), "OK");
    assert.equal(await progress(first.token, 0.9, T0 + 10), "LEASE_LOST");

    const events = await b.readEvents({ jobId: id, afterId: 0, limit: 100 });
    assert.deepEqual(events.map((e) => [e.type, e.data["state"] ?? e.data["progress"] ?? e.data["line"]]), [
      ["state", "queued"], ["state", "active"], ["log", "between"], ["progress", 0.3], ["state", "queued"], ["state", "active"], ["progress", 0.6],
    ]);
    assert.deepEqual([events[3]?.data["message"], events[3]?.at], ["at 0.3", T0 + 5]);
    assert.equal((await b.getJob(id))?.progress, 0.6);
    const feed = (await b.readEvents({ afterId: 0, limit: 100 })).filter((e) => e.jobId === id);
    assert.deepEqual(feed, events, "the global feed holds the same events");
  }));

  it("a run keeps its first log lines up to the cap, then one line that says so; a new run logs again", use(async (b) => {
    const id = await enqueueOne(b);
    const first = await claimOne(b, T0 + 1);
    for (let n = 1; n <= 5; n++) assert.equal(await b.log({ id, token: first.token, line: `line ${n}`, now: T0 + 1 + n, maxLines: 3 }), "OK");
    assert.deepEqual(await b.release([{ id, token: first.token }], T0 + 7), ["QUEUED"]);
    assert.equal(await b.log({ id, token: first.token, line: "late", now: T0 + 8, maxLines: 3 }), "LEASE_LOST", "past the cap, a lost lease is still refused");
    const second = await claimOne(b, T0 + 9);
    assert.equal(await b.log({ id, token: second.token, line: "again", now: T0 + 10, maxLines: 3 }), "OK");
    const lines = (await b.readEvents({ jobId: id, afterId: 0, limit: 100 })).filter((e) => e.type === "log").map((e) => e.data["line"]);
    assert.deepEqual(lines, ["line 1", "line 2", "line 3", logCapLine(3), "again"]);
  }));

  it("prune deletes finished jobs past their retention, and nothing unfinished", use(async (b) => {
    const retention = { succeeded: 7 * DAY, failed: 30 * DAY, cancelled: 7 * DAY };
    const done = await enqueueOne(b);
    const c = await claimOne(b);
    await b.complete([{ id: done, token: c.token, resultJson: "1" }], T0);
    const dead = await enqueueOne(b, { maxAttempts: 1, queue: "d" });
    const cd = await claimOne(b, T0, ["d"]);
    await b.fail({ id: dead, token: cd.token, error: attemptError(1), retryAt: undefined, now: T0 });
    const cancelled = await enqueueOne(b);
    await b.cancel(cancelled, T0);
    const waiting = await enqueueOne(b, { runAt: T0 + 100 * DAY });

    assert.equal(await b.prune(retention, T0 + 7 * DAY), 0, "kept until the retention has passed");
    assert.equal(await b.prune(retention, T0 + 7 * DAY + 1), 2);
    assert.equal(await b.getJob(done), undefined);
    assert.equal(await b.getJob(cancelled), undefined);
    assert.equal((await b.getJob(dead))?.state, "failed");
    assert.deepEqual(await b.readEvents({ jobId: done, afterId: 0, limit: 10 }), [], "events go with their job");
    assert.equal(await b.prune(retention, T0 + 31 * DAY), 1);
    assert.equal((await b.getJob(waiting))?.state, "scheduled");
  }));

  it("prune deletes every finished job past retention, however many (more than one of its bounded steps)", use(async (b) => {
    const n = 2_100; // past one step on every backend but PostgreSQL's 5,000
    await b.enqueue({ jobs: Array.from({ length: n }, () => newJob({ id: uuidv7(T0) })), now: T0 });
    for (let done = 0; done < n; ) {
      const claimed = await b.claim({ queues: ["q"], limit: 500, worker: "w", leaseMs: LEASE, now: T0 + 1 });
      await b.complete(claimed.map((c) => ({ id: c.job.id, token: c.token, resultJson: "1" })), T0 + 2);
      done += claimed.length;
    }
    assert.equal(await b.prune({ succeeded: DAY, failed: DAY, cancelled: DAY }, T0 + 2 * DAY), n);
    assert.deepEqual(await b.listJobs({ limit: 10 }), []);
  }));

  it("a pruned job has no events of its own, even when it wrote the newest event", use(async (b) => {
    const id = await enqueueOne(b);
    assert.equal(await b.cancel(id, T0), "CANCELLED");
    assert.equal(await b.prune({ succeeded: DAY, failed: DAY, cancelled: DAY }, T0 + 2 * DAY), 1);
    assert.deepEqual(await b.readEvents({ jobId: id, afterId: 0, limit: 10 }), []);
  }));

  it("stores payloads as given, unicode included", use(async (b) => {
    const payload = { name: "Zoë 🚀", list: [1, 2.5, null, true], nested: { deep: { "ключ": "значение" } } };
    const [r] = await b.enqueue({ jobs: [newJob({ payloadJson: JSON.stringify(payload) })], now: T0 });
    assert.deepEqual((await b.getJob(r?.job.id ?? ""))?.payload, payload);
  }));
}
