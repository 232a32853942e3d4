// Shutdown interleavings: runs whose outcome is already decided when the grace period ends, timers
// a stopped worker must not leave behind, and a claim that hangs (a connection to a host that
// vanished) while stop() gives running jobs their grace period and hands them back.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { openBackend } from "../../src/backend/open.ts";
import { Offload } from "../../src/index.ts";
import { FakeClock, nextEvent, recordEvents } from "../../src/testing/index.ts";
import { replacing } from "../conformance/fixtures.ts";
import { deferred, turn } from "../support/deferred.ts";

describe("worker shutdown", () => {
  it("a run stopped by its timeout when the grace ends records its timeout once, not a hand-back and a lost lease", async () => {
    const clock = new FakeClock();
    const real = await openBackend("sqlite::memory:");
    let releases = 0;
    const backend = replacing(real, {
      release: (leases, now) => {
        releases++;
        return real.release(leases, now);
      },
    });
    const offload = new Offload({ backend, clock });
    try {
      // Ignores its signal: only the hard stop, 1 s after the timeout, ends its run.
      const task = offload.task({ name: "deaf", timeout: "1s", retry: { attempts: 3 }, run: () => new Promise<never>(() => {}) });
      const worker = offload.worker({ poll: "60s" });
      const events = recordEvents(worker);
      const started = nextEvent(worker, "started");
      await worker.start();
      const job = await task.enqueue(null);
      await started;
      await clock.sleeping(1_000);
      clock.advance(1_000); // the timeout aborts the handler; the hard stop is due at 2 s
      const stopping = worker.stop({ grace: 500 });
      await clock.sleeping(500);
      clock.advance(500); // the grace ends while the hard stop is still 500 ms away
      for (let i = 0; i < 50 && releases === 0; i++) await turn();
      clock.advance(500); // the hard stop
      await stopping; // resolves once the run's outcome is written
      assert.deepEqual(events.map((e) => e.type), ["started", "retrying"], "one terminal event for the run");
      const stored = await job.get();
      assert.equal(stored.state, "retrying");
      assert.equal(stored.errors[0]?.name, "TaskTimeoutError", "the timeout is in the job's history");
    } finally {
      await offload.close({ grace: 0 });
      await real.close();
    }
  });

  it("a handler that returned while its log write was out is not handed back at stop: its result is written", async () => {
    const clock = new FakeClock();
    const real = await openBackend("sqlite::memory:");
    const logSent = deferred();
    const logGate = deferred();
    const backend = replacing(real, {
      log: async (request) => {
        logSent.resolve();
        await logGate.promise;
        return real.log(request);
      },
    });
    const offload = new Offload({ backend, clock });
    try {
      let runs = 0;
      const task = offload.task({ name: "logs", run: (_: null, ctx) => {
        runs++;
        ctx.log("almost done");
        return "done";
      } });
      const worker = offload.worker({ poll: "60s" });
      const events = recordEvents(worker);
      await worker.start();
      const job = await task.enqueue(null);
      await logSent.promise;
      await turn();
      // The handler has returned; only its log line is still on its way when stop() begins.
      const stopping = worker.stop({ grace: 0 });
      await turn();
      logGate.resolve();
      await stopping;
      assert.deepEqual(events.map((e) => e.type), ["started", "succeeded"]);
      assert.equal((await job.get()).state, "succeeded");
      assert.equal(runs, 1);
    } finally {
      await offload.close({ grace: 0 });
      await real.close();
    }
  });

  it("a stopped worker leaves no hard-stop timer behind for a handler that honoured its signal", async () => {
    const clock = new FakeClock();
    const offload = new Offload({ backend: "sqlite::memory:", clock });
    try {
      const task = offload.task({ name: "polite", run: (_: null, ctx) => new Promise<never>((_resolve, reject) => {
        ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason as Error), { once: true });
      }) });
      const worker = offload.worker({ poll: "60s" });
      const started = nextEvent(worker, "started");
      await worker.start();
      await task.enqueue(null);
      await started;
      await worker.stop({ grace: 0 });
      assert.equal(clock.sleepers, 0, "no timer outlives stop()");
    } finally {
      await offload.close({ grace: 0 });
    }
  });
});

describe("worker stop with a claim that hangs", () => {
  it("stop() hands the running job back while a claim is unanswered, then hands back what that claim brings", async () => {
    const clock = new FakeClock();
    const real = await openBackend("sqlite::memory:");
    let hang = false;
    const hungClaimSent = deferred();
    const answer = deferred();
    const answered = deferred();
    const backend = replacing(real, {
      claim: async (request) => {
        if (!hang) return real.claim(request);
        hungClaimSent.resolve();
        await answer.promise;
        const claimed = await real.claim(request);
        answered.resolve();
        return claimed;
      },
    });
    const offload = new Offload({ backend, clock });
    try {
      const task = offload.task({ name: "held", run: (_: null, ctx) => new Promise<never>((_resolve, reject) => {
        ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason as Error), { once: true });
      }) });
      const worker = offload.worker({ concurrency: 2, poll: "60s" });
      const events = recordEvents(worker);
      const started = nextEvent(worker, "started");
      const first = await task.enqueue(null);
      await worker.start();
      await started;
      // The next claim, woken by a new job, gets no answer for now.
      hang = true;
      const second = await task.enqueue(null);
      await hungClaimSent.promise;
      let stopped = false;
      const stopping = worker.stop({ grace: 0 }).then(() => (stopped = true));
      for (let i = 0; i < 50 && (await first.get()).state === "active"; i++) await turn();
      assert.equal((await first.get()).state, "queued", "the running job was handed back with the claim unanswered");
      assert.deepEqual(events.map((e) => e.type), ["started", "released"]);
      assert.equal(stopped, false, "stop() still waits for the claim, to hand back what it brings");
      // The claim is answered: the job it claimed is handed back, not run, before stop() returns.
      hang = false;
      answer.resolve();
      await answered.promise;
      await stopping;
      const late = await second.get();
      assert.equal(late.state, "queued", "the late claim's job was handed back");
      assert.equal(late.attempt, 0, "its attempt not counted");
      assert.deepEqual(events.map((e) => e.type), ["started", "released"], "nothing ran after the hand-back");
      assert.deepEqual(worker.active, []);
    } finally {
      answer.resolve();
      await offload.close({ grace: 0 });
      await real.close();
    }
  });
});
