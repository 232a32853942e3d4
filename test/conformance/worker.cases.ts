// The worker and the public API on top of a backend, driven by a fake clock: backoff, Retry,
// Permanent, retryIf, cancel of an active job, timeouts, unknown tasks, results.
import assert from "node:assert/strict";
import { it } from "node:test";
import type { Backend, NewJob } from "../../src/backend/backend.ts";
import { Offload, Permanent, Retry, JobFailedError, JobCancelledError, ClosedError, WaitTimeoutError } from "../../src/index.ts";
import { FakeClock, nextEvent } from "../../src/testing/index.ts";
import { type UseBackend, driverMessage, replacing } from "./fixtures.ts";
import { UNKNOWN_TASK_RETRY_MS } from "../../src/worker/executor.ts";

type Body = (ctx: { offload: Offload; clock: FakeClock; backend: Backend }) => Promise<void>;

function withOffload(use: UseBackend, body: Body): () => Promise<void> {
  return use(async (backend) => {
    const clock = new FakeClock();
    const offload = new Offload({ backend, clock });
    try {
      await body({ offload, clock, backend });
    } finally {
      await offload.close({ grace: 0 }); // on a fake clock a grace period would never end
    }
  });
}

/** The backend with one operation replaced (see replacing). */
function withOperation<K extends "complete" | "fail" | "getJob" | "progress">(backend: Backend, name: K, operation: Backend[K]): Backend {
  return replacing(backend, { [name]: operation });
}

export function workerCases(use: UseBackend): void {
  it("a worker given jobs one at a time claims once for each: its own claims and completions do not wake it", use(async (real) => {
    let claims = 0;
    const backend = replacing(real, {
      claim: (request) => {
        claims++;
        return real.claim(request);
      },
    });
    const offload = new Offload({ backend, clock: new FakeClock() });
    try {
      const noop = offload.task({ name: "noop", run: () => null });
      const worker = offload.worker({ concurrency: 4 });
      await worker.start();
      const jobs = 20;
      for (let i = 0; i < jobs; i++) await (await noop.enqueue(null)).result();
      // One claim at start, then one per enqueue's signal. Woken by its own completions (and, on
      // a server, by the notifications of its own claims), it made two to four per job.
      assert.ok(claims <= jobs + 2, `${claims} claims for ${jobs} jobs`);
    } finally {
      await offload.close({ grace: 0 });
    }
  }));

  it("runs a job and hands its typed result to job.result()", withOffload(use, async ({ offload }) => {
    const add = offload.task({ name: "add", run: (p: { a: number; b: number }) => ({ sum: p.a + p.b }) });
    const worker = offload.worker({ concurrency: 2 });
    await worker.start();
    const job = await add.enqueue({ a: 2, b: 3 });
    const result: { sum: number } = await job.result();
    assert.deepEqual(result, { sum: 5 });
    assert.equal(await job.state(), "succeeded");
  }));

  it("retries with the task's backoff, on the clock", withOffload(use, async ({ offload, clock }) => {
    let runs = 0;
    const flaky = offload.task({
      name: "flaky",
      retry: { attempts: 3, base: "10s", jitter: false },
      run: () => {
        runs++;
        if (runs < 3) throw new Error(`try ${runs}`);
        return "ok";
      },
    });
    const worker = offload.worker();
    await worker.start();
    const firstRetry = nextEvent(worker, "retrying");
    const job = await flaky.enqueue(null);
    const r1 = await firstRetry;
    assert.equal(r1.retryAt, clock.now() + 10_000, "first backoff is the base");
    const secondRetry = nextEvent(worker, "retrying");
    clock.advance(10_000);
    const r2 = await secondRetry;
    assert.equal(r2.retryAt, clock.now() + 20_000, "then it doubles");
    const done = nextEvent(worker, "succeeded");
    clock.advance(19_999);
    assert.equal(await job.state(), "retrying");
    clock.advance(1);
    await done;
    const stored = await job.get();
    assert.equal(stored.attempt, 3);
    assert.deepEqual(stored.errors.map((e) => e.message), ["try 1", "try 2"]);
  }));

  it("Retry({ in }) overrides the backoff; Permanent and retryIf fail at once", withOffload(use, async ({ offload, clock }) => {
    const snooze = offload.task({ name: "snooze", run: (_: null, ctx) => {
      if (ctx.attempt === 1) throw new Retry({ in: "5m" });
      return ctx.attempt;
    } });
    const perm = offload.task({ name: "perm", retry: { attempts: 5 }, run: () => {
      throw new Permanent(new Error("bad address"));
    } });
    const http = offload.task({ name: "http", retry: { attempts: 5 }, retryIf: (e) => !e.message.startsWith("4"), run: () => {
      throw new Error("404 not found");
    } });
    const worker = offload.worker();
    await worker.start();
    const retried = nextEvent(worker, "retrying");
    const s = await snooze.enqueue(null);
    assert.equal((await retried).retryAt, clock.now() + 300_000);
    const p = await perm.enqueue(null);
    await assert.rejects(p.result(), (e: unknown) => e instanceof JobFailedError && /bad address/.test(e.message));
    assert.equal((await p.get()).attempt, 1);
    const h = await http.enqueue(null);
    await assert.rejects(h.result(), JobFailedError);
    assert.equal((await h.get()).attempt, 1);
    clock.advance(300_000);
    assert.equal(await s.result(), 2);
  }));

  it("a handler that throws after a cancel was requested, before it was aborted, ends the job cancelled", withOffload(use, async ({ offload }) => {
    let runs = 0;
    const task = offload.task({ name: "cancelled-then-throws", retry: { attempts: 3, base: "1s", jitter: false }, run: async (_: null, ctx) => {
      runs++;
      // The request lands while the handler runs; no heartbeat has carried it yet.
      await offload.jobs.cancel(ctx.job.id);
      throw new Error("gave up");
    } });
    const worker = offload.worker();
    const outcomes: string[] = [];
    worker.on("job", (e) => {
      if (e.type !== "started") outcomes.push(e.type);
    });
    await worker.start();
    const cancelled = nextEvent(worker, "cancelled");
    const job = await task.enqueue(null);
    await cancelled;
    assert.deepEqual(outcomes, ["cancelled"]);
    assert.equal(await job.state(), "cancelled");
    assert.equal(runs, 1);
  }));

  it("cancelling an active job aborts its signal and ends it cancelled", withOffload(use, async ({ offload, clock }) => {
    let sawAbort = false;
    const slow = offload.task({ name: "slow", run: (_: null, ctx) => new Promise((_resolve, reject) => {
      ctx.signal.addEventListener("abort", () => {
        sawAbort = true;
        reject(ctx.signal.reason as Error);
      });
    }) });
    const worker = offload.worker({ heartbeat: "1s", lease: "10s" });
    await worker.start();
    const started = nextEvent(worker, "started");
    const job = await slow.enqueue(null);
    await started;
    await job.cancel();
    const cancelled = nextEvent(worker, "cancelled");
    clock.advance(1_000); // the next heartbeat carries the cancel request
    await cancelled;
    assert.ok(sawAbort);
    assert.equal(await job.state(), "cancelled");
    await assert.rejects(job.result(), JobCancelledError);
  }));

  it("a job over its timeout is aborted and counts as a failed attempt", withOffload(use, async ({ offload, clock }) => {
    const hang = offload.task({ name: "hang", timeout: "30s", retry: { attempts: 1 }, run: (_: null, ctx) => new Promise((_r, reject) => {
      ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason as Error));
    }) });
    const worker = offload.worker({ lease: "5m" });
    await worker.start();
    const started = nextEvent(worker, "started");
    const failed = nextEvent(worker, "failed");
    const job = await hang.enqueue(null);
    await started;
    clock.advance(30_000);
    const event = await failed;
    assert.equal(event.error.name, "TaskTimeoutError");
    assert.equal((await job.get()).errors[0]?.name, "TaskTimeoutError");
  }));

  it("a job of a task this worker does not know is retried later for a worker that knows it (a rolling deploy), and fails on its last attempt, naming the task", withOffload(use, async ({ offload, backend, clock }) => {
    offload.task({ name: "known", run: () => 1 });
    const worker = offload.worker({ queues: ["default"] });
    await worker.start();
    const ghost = (id: string, maxAttempts: number): NewJob => ({ id, task: "ghost", queue: "default", payloadJson: "{}", priority: 0, runAt: clock.now(), maxAttempts, key: undefined, owner: undefined });
    const retrying = nextEvent(worker, "retrying");
    await backend.enqueue({ jobs: [ghost("01890000-0000-7000-8000-0000000000aa", 5)], now: clock.now() });
    const retry = await retrying;
    assert.equal(retry.error.name, "UnknownTaskError");
    assert.match(retry.error.message, /ghost/);
    assert.equal(retry.retryAt, clock.now() + UNKNOWN_TASK_RETRY_MS, "the first wait; later ones grow with the attempt");
    assert.equal((await offload.job(retry.job.id).get()).state, "retrying");

    const failed = nextEvent(worker, "failed");
    await backend.enqueue({ jobs: [ghost("01890000-0000-7000-8000-0000000000ab", 1)], now: clock.now() });
    const event = await failed;
    assert.equal(event.error.name, "UnknownTaskError");
    assert.equal((await offload.job(event.job.id).get()).attempt, 1, "its last attempt: failed, no loop");
  }));

  it("a queue named twice is one queue: every job runs once, on its first attempt", withOffload(use, async ({ offload }) => {
    let runs = 0;
    const once = offload.task({ name: "once", queue: "twice", run: () => ++runs });
    const worker = offload.worker({ queues: ["twice", "twice"], concurrency: 8 });
    assert.deepEqual(worker.queues, ["twice"]);
    const jobs = await once.enqueueMany([null, null, null]);
    await worker.start();
    await Promise.all(jobs.map((j) => j.result({ timeout: "10s" })));
    assert.equal(runs, 3);
    for (const j of jobs) assert.equal((await j.get()).attempt, 1);
  }));

  it("progress and logs from a handler reach the job and its events before the outcome", withOffload(use, async ({ offload }) => {
    const report = offload.task({ name: "report", run: async (_: null, ctx) => {
      await ctx.progress(0.5, "half way");
      ctx.log("rendered page 1");
      return "done";
    } });
    const worker = offload.worker();
    await worker.start();
    const job = await report.enqueue(null);
    assert.equal(await job.result(), "done");
    const stored = await job.get();
    assert.equal(stored.progress, 0.5);
    assert.equal(stored.progressMessage, "half way");
    const events = await offload.jobs.events({ jobId: job.id, afterId: 0 });
    const log = events.findIndex((e) => e.type === "log");
    const succeeded = events.findIndex((e) => e.type === "state" && e.data["state"] === "succeeded");
    assert.ok(log >= 0 && log < succeeded, "the log line was written before the job succeeded");
  }));

  it("progress reported faster than it can be written collapses to the newest value; awaited progress is each written", use(async (real) => {
    const written: (string | undefined)[] = [];
    const backend = withOperation(real, "progress", (request) => {
      written.push(request.message);
      return real.progress(request);
    });
    const offload = new Offload({ backend, clock: new FakeClock() });
    try {
      const rows = 1_000;
      const importer = offload.task({ name: "import", run: async (_: null, ctx) => {
        await ctx.progress(0, "starting");
        // A loop that does not wait for its progress writes: one write in flight, the rest collapse.
        for (let i = 1; i <= rows; i++) void ctx.progress(i / rows, `row ${i}`);
        await ctx.progress(1, "done");
        return rows;
      } });
      const worker = offload.worker();
      await worker.start();
      const job = await importer.enqueue(null);
      assert.equal(await job.result(), rows);
      const stored = await job.get();
      assert.equal(stored.progress, 1);
      assert.equal(stored.progressMessage, "done", "the newest value wins");
      assert.deepEqual(written, ["starting", "row 1", "done"], "the first call of the loop goes out at once; the rest waited and collapsed into the last");
      const progress = (await offload.jobs.events({ jobId: job.id, afterId: 0 })).filter((e) => e.type === "progress").map((e) => e.data["message"]);
      assert.deepEqual(progress, ["done"], "the history keeps the run's newest progress event");
    } finally {
      await offload.close({ grace: 0 });
    }
  }));

  it("progress writes that fail under a loop that does not await them are sent again, then reported; the job still succeeds, the process lives", use(async (backend) => {
    const refusing = withOperation(backend, "progress", () => Promise.reject(new Error("connection reset")));
    const clock = new FakeClock();
    const offload = new Offload({ backend: refusing, clock });
    try {
      const importer = offload.task({ name: "import-offline", run: (_: null, ctx) => {
        for (let i = 1; i <= 100; i++) void ctx.progress(i / 100, `row ${i}`);
        return "imported";
      } });
      const worker = offload.worker({ poll: "60s" });
      const errors: string[] = [];
      worker.on("error", (e) => errors.push(driverMessage(e)));
      await worker.start();
      const succeeded = nextEvent(worker, "succeeded", () => true, 30_000);
      const job = await importer.enqueue(null);
      // Each write is sent again on the acknowledgements' schedule, then every second until twice
      // the lease has passed. The clock moves in steps, each with a moment of real time for the
      // worker's heartbeats to reach the server and come back: its lease is renewed meanwhile, as
      // it would be in life (moved at once, the clock left a networked server's reply behind).
      let over = false;
      void succeeded.then(() => (over = true), () => (over = true));
      while (!over) {
        clock.advance(50);
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      assert.equal((await succeeded).job.id, job.id);
      assert.equal(await job.result(), "imported");
      assert.equal((await job.get()).attempt, 1);
      assert.ok(errors.length >= 2 && errors.every((m) => m === "connection reset"), `every failed try is reported: row 1's, then the collapsed rest's (${errors.join("; ")})`);
      await worker.stop({ grace: 0 });
    } finally {
      await offload.close({ grace: 0 });
    }
  }));

  it("a worker that lost its lease aborts the job and records nothing", withOffload(use, async ({ offload, clock, backend }) => {
    let sawReason = "";
    const slow = offload.task({ name: "slow-lease", run: (_: null, ctx) => new Promise((_resolve, reject) => {
      ctx.signal.addEventListener("abort", () => {
        sawReason = (ctx.signal.reason as Error).name;
        reject(ctx.signal.reason as Error);
      });
    }) });
    const worker = offload.worker({ lease: "10s", heartbeat: "1s" });
    await worker.start();
    const started = nextEvent(worker, "started");
    const job = await slow.enqueue(null);
    await started;
    // Another process's rescue, with its clock past this lease: the job is queued again. The
    // worker learns it at its next heartbeat, or sooner if it claims the job again meanwhile.
    const lost = nextEvent(worker, "lease-lost");
    assert.deepEqual((await backend.rescueExpired(clock.now() + 10_001)).requeued, [job.id]);
    clock.advance(1_000);
    await lost;
    assert.equal(sawReason, "LeaseLost");
    const stored = await job.get();
    assert.ok(stored.state === "queued" || stored.state === "active", `a new claim may already run it, got ${stored.state}`);
    assert.equal(stored.errors.length, 1, "only the rescue's LeaseExpired entry: the lost worker wrote no outcome");
    assert.equal(stored.errors[0]?.name, "LeaseExpired");
    await worker.stop({ grace: 0 }); // it may have claimed the job again; hand it back
  }));

  it("a completion whose reply is lost is sent again: the job succeeds once, and runs once", use(async (backend) => {
    // The first completion is written, then its reply is lost, as when a connection drops.
    let lostReplies = 0;
    const dropsFirstReply = withOperation(backend, "complete", async (...args) => {
      const statuses = await backend.complete(...args);
      if (lostReplies++ === 0) throw new Error("connection closed before the reply; the outcome is unknown");
      return statuses;
    });
    const clock = new FakeClock();
    const offload = new Offload({ backend: dropsFirstReply, clock });
    try {
      let runs = 0;
      const once = offload.task({ name: "once", run: () => ++runs });
      const worker = offload.worker();
      const reported: string[] = [];
      worker.on("error", (error) => reported.push(driverMessage(error)));
      const outcomes: string[] = [];
      worker.on("job", (e) => {
        if (e.type !== "started") outcomes.push(e.type);
      });
      await worker.start();
      const succeeded = nextEvent(worker, "succeeded");
      const job = await once.enqueue(null);
      // The batch waits 50 ms before it is sent again (without a retry, `succeeded` times out).
      if (await Promise.race([clock.sleeping(50).then(() => true), succeeded.then(() => false)])) clock.advance(50);
      await succeeded;
      assert.equal(await job.result(), 1);
      assert.equal(runs, 1);
      assert.deepEqual(outcomes, ["succeeded"], "no lease-lost: the repeated ack is answered OK");
      assert.equal(lostReplies, 2);
      assert.deepEqual(reported, ["connection closed before the reply; the outcome is unknown"]);
      const states = (await backend.readEvents({ jobId: job.id, afterId: 0, limit: 10 })).map((e) => e.data["state"]);
      assert.deepEqual(states, ["queued", "active", "succeeded"]);
      await worker.stop();
    } finally {
      await offload.close({ grace: 0 });
    }
  }));

  it("a failure whose reply is lost is sent again: one error, one retrying event, no lease-lost", use(async (backend) => {
    let lostReplies = 0;
    const dropsFirstReply = withOperation(backend, "fail", async (request) => {
      const status = await backend.fail(request);
      if (lostReplies++ === 0) throw new Error("connection reset before the reply; the outcome is unknown");
      return status;
    });
    const clock = new FakeClock();
    const offload = new Offload({ backend: dropsFirstReply, clock });
    try {
      const flaky = offload.task({ name: "flaky-once", retry: { attempts: 2, base: "10s", jitter: false }, run: () => {
        throw new Error("upstream timed out");
      } });
      const worker = offload.worker();
      worker.on("error", () => {});
      const outcomes: string[] = [];
      worker.on("job", (e) => {
        if (e.type !== "started") outcomes.push(e.type);
      });
      await worker.start();
      const retrying = nextEvent(worker, "retrying");
      const job = await flaky.enqueue(null);
      // The failure waits 50 ms before it is sent again (without a retry, `retrying` never comes).
      if (await Promise.race([clock.sleeping(50).then(() => true), retrying.then(() => false)])) clock.advance(50);
      await retrying;
      assert.equal(lostReplies, 2);
      assert.deepEqual(outcomes, ["retrying"], "the repeat is answered as the first was");
      const record = await backend.getJob(job.id);
      assert.equal(record?.state, "retrying");
      assert.deepEqual(record?.errors.map((e) => e.message), ["upstream timed out"], "the error was kept, once");
      const states = (await backend.readEvents({ jobId: job.id, afterId: 0, limit: 10 })).map((e) => e.data["state"]);
      assert.deepEqual(states, ["queued", "active", "retrying"]);
      await worker.stop({ grace: 0 });
    } finally {
      await offload.close({ grace: 0 });
    }
  }));

  it("job.result() rides out reads that fail (a failover or a restart), and gives up after a long outage", use(async (backend) => {
    let failing = 3;
    const outages = withOperation(backend, "getJob", (id) => {
      if (failing-- > 0) return Promise.reject(new Error("connection closed before the reply; the outcome is unknown"));
      return backend.getJob(id);
    });
    const clock = new FakeClock();
    const offload = new Offload({ backend: outages, clock });
    try {
      const task = offload.task({ name: "read-through-outage", run: () => "ok" });
      const worker = offload.worker();
      await worker.start();
      const job = await task.enqueue(null);
      /** Moves the fake clock a poll at a time while the waiter sleeps, until `wait` settles. */
      const onClock = async <T>(wait: Promise<T>): Promise<PromiseSettledResult<T>> => {
        const outcome = Promise.allSettled([wait]).then(([r]) => r as PromiseSettledResult<T>);
        while (await Promise.race([clock.sleeping(500).then(() => true), outcome.then(() => false)])) {
          // A turn of the event loop first: on SQLite a read needs no I/O, and a loop of promises
          // alone would starve the worker's own turns (it would never claim the job).
          await new Promise((resolve) => setImmediate(resolve));
          clock.advance(500);
        }
        return outcome;
      };
      const riddenOut = await onClock(job.result());
      assert.deepEqual(riddenOut, { status: "fulfilled", value: "ok" }, "three failed reads, then the answer");
      assert.ok(failing < 0, "the failed reads were all made");

      failing = Number.POSITIVE_INFINITY;
      const from = clock.now();
      const lost = await onClock(job.result());
      assert.equal(lost.status, "rejected");
      assert.match(String((lost as PromiseRejectedResult).reason), /outcome is unknown/, "the backend's own error, not a timeout");
      assert.ok(clock.now() - from >= 30_000, "after a long outage, not at the first failure");
      await worker.stop({ grace: 0 });
    } finally {
      await offload.close({ grace: 0 });
    }
  }));

  it("close() ends a wait still pending with ClosedError, and opens nothing again", use(async (backend) => {
    const clock = new FakeClock();
    const offload = new Offload({ backend, clock });
    const task = offload.task({ name: "never-run", run: () => 1 });
    const job = await task.enqueue(null);
    const waiting = job.result();
    await clock.sleeping(500); // the waiter is parked until a change or its next look
    await offload.close();
    clock.advance(500);
    await assert.rejects(waiting, ClosedError);
    await assert.rejects(offload.backend(), ClosedError);
    await assert.rejects(task.enqueue(null), ClosedError);
    assert.equal((await backend.getJob(job.id))?.state, "queued", "a backend passed in stays open: it is the caller's");
  }));

  it("a wait ends with ClosedError when its backend's owner closes it, instead of retrying as in an outage", use(async (backend) => {
    const clock = new FakeClock();
    const offload = new Offload({ backend, clock });
    try {
      const task = offload.task({ name: "never-run", run: () => 1 });
      const job = await task.enqueue(null);
      const waiting = job.result();
      // Parked: a wait without a timeout sleeps until the shared look (polling every 500 ms) wakes it.
      await clock.sleeping(Number.POSITIVE_INFINITY);
      await backend.close();
      clock.advance(500);
      // The shared look fails, so the wait reads for itself, and that read fails. It must end
      // there, not park to try again; a wait that parked would never end on this clock.
      const parked = new Promise<string>((resolve) => setTimeout(() => resolve("still waiting after 5 s"), 5_000).unref());
      const outcome = await Promise.race([waiting.then(() => "resolved", (error: unknown) => error), parked]);
      assert.ok(outcome instanceof ClosedError, `ended with ${String(outcome)}`);
    } finally {
      await offload.close();
    }
  }));

  it("result({ timeout }) ends at its deadline, and result({ signal }) on abort, even when a read never answers (a connection being re-made)", use(async (backend) => {
    let reads = 0;
    let answered = (): void => {};
    const firstAnswered = new Promise<void>((resolve) => (answered = resolve));
    const stuck = withOperation(backend, "getJob", (id) => (++reads === 1 ? backend.getJob(id).finally(answered) : new Promise<never>(() => {})));
    const clock = new FakeClock();
    const offload = new Offload({ backend: stuck, clock });
    try {
      const task = offload.task({ name: "never-run", run: () => 1 });
      const job = await task.enqueue(null);
      const waiting = job.result({ timeout: "2s" });
      // The first read answered "queued" (the wait's 2 s sleep starts with the read, not after its
      // answer: a cancel sent then could reach the server first, on a slow path such as a pooler's,
      // and the read answered "cancelled"); the wait parks until its deadline.
      await firstAnswered;
      await clock.sleeping(2_000);
      // The job ends: the shared look sees it, and the wait reads it again. That read hangs.
      assert.equal(await backend.cancel(job.id, clock.now()), "CANCELLED");
      for (const deadline = Date.now() + 5_000; reads < 2;) {
        if (Date.now() > deadline) throw new Error("the wait never read the ended job");
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      assert.equal(reads, 2);
      await clock.sleeping(2_000); // only the deadline is left to end it
      clock.advance(2_000);
      await assert.rejects(waiting, WaitTimeoutError);

      // No timeout, a signal instead: aborting it ends the wait, though the read never answers.
      const controller = new AbortController();
      const aborted = job.result({ signal: controller.signal });
      const reason = new Error("the page that waited was closed");
      controller.abort(reason);
      await assert.rejects(aborted, (error) => error === reason, "rejects with the signal's reason");
      assert.ok(reads >= 3, "that wait was stuck in a read");
    } finally {
      await offload.close();
    }
  }));

  it("stop() does not wait out the retries of acknowledgements that keep failing", use(async (backend) => {
    let attempts = 0;
    const unreachable = withOperation(backend, "complete", () => {
      attempts++;
      return Promise.reject(new Error("connection refused"));
    });
    const clock = new FakeClock(); // never advanced: a retry pause would last for ever
    const offload = new Offload({ backend: unreachable, clock });
    try {
      const task = offload.task({ name: "done-but-unacked", run: () => 1 });
      const worker = offload.worker();
      const firstFailure = new Promise<void>((resolve) => worker.once("error", () => resolve()));
      worker.on("error", () => {});
      await worker.start();
      const job = await task.enqueue(null);
      await firstFailure;
      let timer: NodeJS.Timeout | undefined;
      const stopped = await Promise.race([
        worker.stop({ grace: 0 }).then(() => true),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), 5_000))),
      ]);
      clearTimeout(timer);
      assert.equal(stopped, true, "stop() resolved without the clock moving");
      assert.equal(attempts, 2, "the first write, and one last attempt when stop() hurried the retries");
      assert.equal((await backend.getJob(job.id))?.state, "active", "left to its lease: rescued and run again later");
    } finally {
      await offload.close({ grace: 0 });
    }
  }));

  it("a job rescued from this very worker runs again here, and the stale run stops at once", withOffload(use, async ({ offload, clock, backend }) => {
    const reasons: string[] = [];
    const twice = offload.task({ name: "twice", run: (_: null, ctx) => {
      if (ctx.job.attempt > 1) return "second run";
      return new Promise<string>((_resolve, reject) => {
        ctx.signal.addEventListener("abort", () => {
          reasons.push((ctx.signal.reason as Error).name);
          reject(ctx.signal.reason as Error);
        });
      });
    } });
    const worker = offload.worker({ concurrency: 2, lease: "10s" });
    await worker.start();
    const started = nextEvent(worker, "started");
    const job = await twice.enqueue(null);
    await started;
    const lost = nextEvent(worker, "lease-lost");
    assert.deepEqual((await backend.rescueExpired(clock.now() + 10_001)).requeued, [job.id]);
    // No clock move: the rescue's change signal makes the worker claim the job again.
    await lost;
    assert.equal(await job.result(), "second run");
    assert.deepEqual(reasons, ["LeaseLost"]);
    const stored = await job.get();
    assert.equal(stored.attempt, 2);
    assert.deepEqual(stored.errors.map((e) => e.name), ["LeaseExpired"], "the stale run wrote nothing");
  }));

  it("never runs more handlers at once than its concurrency, with several claims in flight", withOffload(use, async ({ offload }) => {
    const release: Array<() => void> = [];
    let most = 0;
    let reached: { count: number; resolve: () => void } | undefined;
    const slow = offload.task({
      name: "slow",
      run: (_: null, ctx) => new Promise<null>((resolve, reject) => {
        ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason as Error)); // lets close() end a failed test
        release.push(() => resolve(null));
        most = Math.max(most, release.length);
        if (reached && (release.length >= reached.count || release.length > 7)) reached.resolve();
      }),
    });
    const running = (count: number): Promise<void> =>
      release.length >= count ? Promise.resolve() : new Promise((resolve) => (reached = { count, resolve }));
    const jobs = await slow.enqueueMany(Array.from({ length: 30 }, () => null));
    const worker = offload.worker({ concurrency: 7 });
    await worker.start();
    for (let done = 0; done < 30;) {
      await running(Math.min(7, 30 - done));
      assert.ok(most <= 7 && worker.active.length <= 7, `${Math.max(most, worker.active.length)} handlers ran at once`);
      const batch = release.splice(0, 3); // free a few slots: the worker claims into exactly those
      for (const finish of batch) finish();
      done += batch.length;
    }
    for (const job of jobs) assert.equal(await job.result(), null);
    assert.equal(most, 7, "all slots were used, and never more");
  }));

  it("an idle worker asks once per poll, and again at once when a job arrives", withOffload(use, async ({ offload, backend, clock }) => {
    let claims = 0;
    let idles = 0; // the loop asks when the next scheduled job is due right before it goes idle
    let idled: () => void = () => {};
    const claim = backend.claim.bind(backend);
    backend.claim = (request) => {
      claims++;
      return claim(request);
    };
    const nextDueAt = backend.nextDueAt.bind(backend);
    backend.nextDueAt = async (queues) => {
      const at = await nextDueAt(queues);
      idles++;
      idled();
      return at;
    };
    const idle = async (count: number): Promise<void> => {
      while (idles < count) await new Promise<void>((resolve) => (idled = resolve));
      await clock.sleeping(7_000);
    };
    const echo = offload.task({ name: "echo", run: (n: number) => n });
    const worker = offload.worker({ concurrency: 8, poll: "7s" });
    await worker.start();
    // Reaching the poll's sleep at all is the point: a loop that kept waking itself never sleeps.
    // Besides the first claim, start-up may bring a change signal or two (the subscription
    // confirmed, the first maintenance pass), and each may cost one more claim.
    await idle(1);
    assert.ok(claims <= 3, `${claims} claims before the worker went idle`);
    const before = claims;
    clock.advance(7_000);
    await idle(idles + 1);
    assert.ok(claims - before <= 2, `${claims - before} claims for one poll`);
    const job = await echo.enqueue(5); // the change signal wakes it, long before the next poll
    assert.equal(await job.result(), 5);
  }));

  it("stop() hands active jobs back to queued once the grace period is over", withOffload(use, async ({ offload, clock }) => {
    const stuck = offload.task({ name: "stuck", run: (_: null, ctx) => new Promise((_r, reject) => {
      ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason as Error));
    }) });
    const worker = offload.worker({ concurrency: 3 });
    await worker.start();
    const jobs = await stuck.enqueueMany([null, null, null]);
    while (worker.active.length < 3) await nextEvent(worker, "started");
    const graceStarted = clock.sleeping(5_000);
    const stopping = worker.stop({ grace: "5s" });
    await graceStarted;
    assert.equal(worker.active.length, 3, "jobs keep running during the grace period");
    clock.advance(5_000);
    await stopping;
    for (const j of jobs) {
      const job = await j.get();
      assert.equal(job.state, "queued");
      assert.equal(job.attempt, 0);
    }
  }));

  it("stop() hands a job back only once its handler has wound down: no other worker runs it meanwhile", use(async (backend) => {
    const clock = new FakeClock();
    let handlerRunning = false;
    let releasedWhileRunning = false;
    const watched = replacing(backend, {
      release: (leases, now) => {
        releasedWhileRunning ||= handlerRunning;
        return backend.release(leases, now);
      },
    });
    const offload = new Offload({ backend: watched, clock });
    try {
      let aborted!: () => void;
      const abortSeen = new Promise<void>((resolve) => (aborted = resolve));
      let cleanedUp!: () => void;
      const cleanup = new Promise<void>((resolve) => (cleanedUp = resolve));
      const slow = offload.task({ name: "slow-cleanup", run: async (_: null, ctx) => {
        handlerRunning = true;
        await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));
        aborted();
        await cleanup; // flushing a temporary file, say: the job is still running here
        handlerRunning = false;
        throw ctx.signal.reason as Error;
      } });
      const worker = offload.worker({ concurrency: 1 });
      await worker.start();
      const job = await slow.enqueue(null);
      await nextEvent(worker, "started");
      const graceStarted = clock.sleeping(5_000); // 5 s: no other sleeper of the worker is that long
      const stopping = worker.stop({ grace: "5s" });
      await graceStarted;
      clock.advance(5_000);
      await abortSeen;
      assert.equal((await job.get()).state, "active", "still this worker's while its handler winds down");
      cleanedUp();
      await stopping;
      assert.equal(releasedWhileRunning, false, "handed back while the handler was still running");
      const after = await job.get();
      assert.equal(after.state, "queued");
      assert.equal(after.attempt, 0);
    } finally {
      await offload.close({ grace: 0 });
    }
  }));
}
