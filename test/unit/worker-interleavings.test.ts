// Worker and client interleavings that once broke: overlapping start() calls, a heartbeat reply
// that arrives after the job it was about was claimed again, and enqueue checks in inline mode.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Backend } from "../../src/backend/backend.ts";
import { openBackend } from "../../src/backend/open.ts";
import { ClosedError, ConfigError, type JobHandle, Offload, Worker, type WorkerEvent, type WorkerOptions } from "../../src/index.ts";
import { TaskRegistry } from "../../src/worker/task-registry.ts";
import { FakeClock, nextEvent, recordEvents } from "../../src/testing/index.ts";
import { replacing } from "../conformance/fixtures.ts";
import { deferred } from "../support/deferred.ts";

/** A worker running one job whose handler waits for its abort: what stop() must hand back. */
async function runningHeldJob(offload: Offload, options: WorkerOptions): Promise<Worker> {
  const task = offload.task({ name: "held", run: (_: null, ctx) => new Promise<never>((_resolve, reject) => {
    ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason as Error), { once: true });
  }) });
  const worker = offload.worker(options);
  worker.on("error", () => {});
  const started = nextEvent(worker, "started");
  await worker.start();
  await task.enqueue(null);
  await started;
  return worker;
}

/** A started worker (errors ignored) with the given lease, and one job of a task that counts its runs. */
async function countedJobRunning(offload: Offload, lease: `${number}s`): Promise<{ job: JobHandle<number>; runs: () => number }> {
  let runs = 0;
  const task = offload.task({ name: "once", run: () => ++runs });
  const worker = offload.worker({ poll: "60s", lease });
  worker.on("error", () => {});
  await worker.start();
  return { job: await task.enqueue(null), runs: () => runs };
}

/** Moves time on in 50 ms steps, each followed by a few turns of the event loop for what it woke. */
async function advanceInSteps(clock: FakeClock, ms: number): Promise<void> {
  for (let elapsed = 0; elapsed < ms; elapsed += 50) {
    clock.advance(50);
    for (let turn = 0; turn < 5; turn++) await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/** An Offload on a fake clock over an in-memory backend, with the operations `replace` returns replaced. */
async function onFakeClock(
  replace: (real: Backend, clock: FakeClock) => Partial<Backend>,
  body: (offload: Offload, clock: FakeClock) => Promise<void>,
): Promise<void> {
  const clock = new FakeClock();
  const real = await openBackend("sqlite::memory:");
  const offload = new Offload({ backend: replacing(real, replace(real, clock)), clock });
  try {
    await body(offload, clock);
  } finally {
    await offload.close({ grace: 0 });
    await real.close();
  }
}

/** An Offload on a fake clock whose backend answers every release with `release()`, counted. */
async function withReleases(
  release: () => Promise<never>,
  body: (offload: Offload, clock: FakeClock, releases: () => number) => Promise<void>,
): Promise<void> {
  let releases = 0;
  const counted = (): Partial<Backend> => ({
    release: () => {
      releases++;
      return release();
    },
  });
  await onFakeClock(counted, (offload, clock) => body(offload, clock, () => releases));
}

/** A write refused as a master short of replicas refuses it (a Sentinel failover under min-replicas-to-write). */
const noReplicas = (): Promise<never> => Promise.reject(new Error("NOREPLICAS Not enough good replicas to write."));

/** stop() with no grace, watched: whether it has returned, after a few turns of the event loop. */
function stopping(worker: Worker): { stopped(): boolean; turns(): Promise<void>; afterHardStop(clock: FakeClock): Promise<void> } {
  let stopped = false;
  void worker.stop({ grace: 0 }).then(() => (stopped = true));
  const turns = async (): Promise<void> => {
    for (let turn = 0; turn < 50 && !stopped; turn++) await new Promise<void>((resolve) => setImmediate(resolve));
  };
  return {
    stopped: () => stopped,
    turns,
    // The hard stop of the aborted handler (1 s) is the only other timer stop() may wait for.
    afterHardStop: async (clock) => {
      await turns();
      if (!stopped) {
        clock.advance(1_000);
        await turns();
      }
    },
  };
}

describe("worker interleavings", () => {
  it("two start() calls at once run one claim loop, so no more jobs run than the concurrency", async () => {
    const clock = new FakeClock();
    const offload = new Offload({ backend: "sqlite::memory:", clock });
    try {
      const started: string[] = [];
      const block = offload.task({ name: "block", run: (_: number, ctx) => new Promise<void>((_resolve, reject) => {
        started.push(ctx.job.id);
        ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason as Error), { once: true });
      }) });
      await block.enqueueMany([1, 2, 3]);
      // A poll no other loop sleeps for: the test waits until the claim loop parks on it.
      const worker = offload.worker({ concurrency: 1, poll: "7s" });
      const parked = clock.sleeping(7_000);
      await Promise.all([worker.start(), worker.start()]);
      await parked;
      // Let every claim already asked for settle and launch its jobs.
      await new Promise<void>((resolve) => setImmediate(resolve));
      assert.equal(started.length, 1, "one slot, one job running");
      assert.equal(worker.active.length, 1);
      await worker.stop({ grace: 0 });
      clock.advance(1_000); // the hard stop for a handler that was aborted
    } finally {
      await offload.close({ grace: 0 });
    }
  });

  it("stop() while start() waits for the backend leaves nothing running and nothing subscribed", async () => {
    const clock = new FakeClock();
    const backend = await openBackend("sqlite::memory:");
    let watching = 0;
    const counted = replacing(backend, {
      watch: (listener: () => void): (() => void) => {
        watching++;
        const unwatch = backend.watch(listener);
        return () => {
          watching--;
          unwatch();
        };
      },
    });
    const opening = deferred<Backend>();
    const worker = new Worker({
      backend: () => opening.promise, registry: new TaskRegistry(), clock, maxResultBytes: 1_000,
      retention: { succeeded: 1_000, failed: 1_000, cancelled: 1_000 },
    });
    try {
      const starting = worker.start();
      const stopping = worker.stop({ grace: 0 });
      // The backend opens only after stop() had every chance to finish on its own.
      await new Promise<void>((resolve) => setImmediate(resolve));
      opening.resolve(counted);
      await Promise.all([starting, stopping]);
      assert.equal(watching, 0, "a stopped worker keeps no change subscription");
      assert.equal(clock.sleepers, 0, "no heartbeat, maintenance or claim loop is left waiting");
    } finally {
      await backend.close();
    }
  });

  it("a heartbeat reply about an earlier run does not abort the job's newer run", async () => {
    const clock = new FakeClock();
    const real = await openBackend("sqlite::memory:");
    let hold: { readonly release: () => void } | undefined;
    let holdNext = false;
    const replied = deferred();
    const backend = replacing(real, { heartbeat: async (request) => {
      if (!holdNext) return real.heartbeat(request);
      // A reply delayed on the network: the request reaches the store only when released.
      holdNext = false;
      const gate = deferred();
      hold = { release: () => gate.resolve() };
      await gate.promise;
      const result = await real.heartbeat(request);
      replied.resolve();
      return result;
    } });
    const offload = new Offload({ backend, clock });
    try {
      const signals: AbortSignal[] = [];
      const finish = deferred<string>();
      const task = offload.task({ name: "long", retry: { attempts: 3 }, run: (_: null, ctx) => new Promise<string>((resolve, reject) => {
        signals.push(ctx.signal);
        ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason as Error), { once: true });
        if (ctx.attempt === 2) void finish.promise.then(resolve);
      }) });
      const worker = offload.worker({ concurrency: 2, lease: "10s", heartbeat: "1s", poll: "7s" });
      const firstRun = nextEvent(worker, "started");
      await worker.start();
      const job = await task.enqueue(null);
      await firstRun;
      // The next heartbeat is sent, and held before it reaches the store.
      holdNext = true;
      await clock.sleeping(1_000);
      clock.advance(1_000);
      while (!hold) await new Promise<void>((resolve) => setImmediate(resolve));
      // Meanwhile the first run's lease expires, the job is rescued, and this worker claims it
      // again (woken by the rescue's change signal).
      const secondRun = nextEvent(worker, "started", (e) => e.job.attempt === 2);
      clock.advance(9_001);
      await real.rescueExpired(clock.now());
      await secondRun;
      assert.equal(signals.length, 2);
      assert.equal(signals[0]?.aborted, true, "the stale run was stopped when the job was claimed again");
      // The held heartbeat now lands: the store says the first run's lease is lost.
      hold.release();
      await replied.promise;
      await new Promise<void>((resolve) => setImmediate(resolve));
      assert.equal(signals[1]?.aborted, false, "the newer run still holds its lease");
      finish.resolve("done");
      assert.equal(await job.result(), "done");
      clock.advance(1_000); // the hard stop armed for the stale run
    } finally {
      await offload.close({ grace: 0 });
      await real.close();
    }
  });

  it("a run stopped by its timeout keeps its lease renewed while its failure is still being written", async () => {
    const clock = new FakeClock();
    const real = await openBackend("sqlite::memory:");
    let failing = true;
    const heartbeatOfJob = deferred();
    let jobId = "";
    const backend = replacing(real, {
      fail: (request) => (failing ? Promise.reject(new Error("connection reset")) : real.fail(request)),
      heartbeat: (request) => {
        if (request.leases.some((l) => l.id === jobId)) heartbeatOfJob.resolve();
        return real.heartbeat(request);
      },
    });
    const offload = new Offload({ backend, clock });
    try {
      const task = offload.task({ name: "slow", timeout: "1s", retry: { attempts: 3 }, run: (_: null, ctx) => new Promise<never>((_resolve, reject) => {
        ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason as Error), { once: true });
      }) });
      const worker = offload.worker({ lease: "5s", heartbeat: "2s", poll: "60s" });
      worker.on("error", () => {}); // the failing writes are reported here
      const started = nextEvent(worker, "started");
      await worker.start();
      const job = await task.enqueue(null);
      jobId = job.id;
      await started;
      /** Moves the clock 100 ms at a time, a turn of the event loop between steps, until `event` happens. */
      const stepUntil = async (event: Promise<unknown>, maxMs: number): Promise<boolean> => {
        let happened = false;
        void event.then(() => (happened = true));
        for (let ms = 0; ms <= maxMs && !happened; ms += 100) {
          await new Promise<void>((resolve) => setImmediate(resolve));
          if (!happened) clock.advance(100);
        }
        return happened;
      };
      // At 1 s the timeout stops the handler; writing its failure fails, and is retried. The
      // heartbeat at 2 s must still carry the job's lease (5 s) while that write is retried.
      assert.ok(await stepUntil(heartbeatOfJob.promise, 4_000), "a heartbeat renewed the lease of the stopped run");
      failing = false;
      assert.ok(await stepUntil(nextEvent(worker, "retrying"), 10_000), "the failure was written at last");
      const stored = await job.get();
      assert.equal(stored.state, "retrying");
      assert.equal(stored.errors[0]?.name, "TaskTimeoutError", "the timeout was recorded, not lost to a rescue");
      await worker.stop({ grace: 0 });
    } finally {
      await offload.close({ grace: 0 });
      await real.close();
    }
  });

  it("stop() with a backend that refuses every release gives up after its last try, without a further pause", async () => {
    await withReleases(() => Promise.reject(new Error("connection refused")), async (offload, clock, releases) => {
      const worker = await runningHeldJob(offload, { poll: "60s" });
      const stop = stopping(worker);
      // The pauses between the five tries: 200, 400, 800 and 1,600 ms.
      for (const pause of [200, 400, 800, 1_600]) {
        await clock.sleeping(pause);
        clock.advance(pause);
      }
      await stop.turns();
      assert.equal(releases(), 5);
      await stop.afterHardStop(clock);
      assert.ok(stop.stopped(), "stop() returned without a pause after the last try");
    });
  });

  for (const { lease, budgetMs } of [{ lease: "12s", budgetMs: 12_000 }, { lease: "10m", budgetMs: 30_000 }] as const) {
    it(`stop() gives up a hand-back that hangs after ${budgetMs} ms with a ${lease} lease, and says the jobs are left to their leases`, { timeout: 20_000 }, async () => {
      // A connection being made again: each call is held, and never answered.
      await withReleases(() => new Promise<never>(() => {}), async (offload, clock, releases) => {
        const worker = await runningHeldJob(offload, { poll: "60s", lease, heartbeat: "1s" });
        const errors: string[] = [];
        worker.on("error", (e) => errors.push(e.message));
        const stop = stopping(worker);
        await clock.sleeping(budgetMs);
        clock.advance(budgetMs - 1);
        await stop.turns();
        assert.equal(stop.stopped(), false, "a hand-back is waited for until its time is up");
        clock.advance(1);
        await stop.afterHardStop(clock);
        assert.ok(stop.stopped(), "stop() returned once the hand-back's time was up");
        assert.equal(releases(), 1, "a try that hangs is not followed by more tries after the deadline");
        assert.ok(errors.some((m) => m.includes(`could not hand back 1 job within ${budgetMs} ms`)), errors.join("; "));
      });
    });
  }

  it("a log line whose write fails (a connection blip) is sent again, in its place, and is in the job's history before its success", { timeout: 20_000 }, async () => {
    let logs = 0;
    const blip = (real: Backend): Partial<Backend> => ({
      log: (request) => (++logs === 1 ? Promise.reject(new Error("Connection terminated unexpectedly")) : real.log(request)),
    });
    await onFakeClock(blip, async (offload, clock) => {
      const task = offload.task({ name: "talks", run: (_: null, ctx) => {
        ctx.log("sent the invoice");
        ctx.log("marked it paid");
        return "done";
      } });
      const worker = offload.worker({ poll: "60s" });
      const errors: string[] = [];
      worker.on("error", (e) => errors.push(e.message));
      await worker.start();
      const job = await task.enqueue(null);
      await clock.sleeping(50); // the first pause of the resend schedule
      clock.advance(50);
      assert.equal(await job.result(), "done");
      const lines = (await offload.jobs.events({ jobId: job.id, afterId: 0 })).filter((e) => e.type === "log").map((e) => e.data["line"]);
      assert.deepEqual(lines, ["sent the invoice", "marked it paid"], "the line sent again still comes first");
      assert.equal(logs, 3);
      assert.deepEqual(errors, ["Connection terminated unexpectedly"], "the failed try is reported");
    });
  });

  it("an awaited progress write that fails (a connection blip) is sent again: the handler goes on, and the job succeeds in its first run", { timeout: 20_000 }, async () => {
    let writes = 0;
    const blip = (real: Backend): Partial<Backend> => ({
      progress: (request) => (++writes === 1 ? Promise.reject(new Error("Connection terminated unexpectedly")) : real.progress(request)),
    });
    await onFakeClock(blip, async (offload, clock) => {
      let runs = 0;
      // As the README's handler does: `await ctx.progress(...)` between steps of the work.
      const task = offload.task({ name: "renders", run: async (_: null, ctx) => {
        runs++;
        await ctx.progress(0.5, "half way");
        return "done";
      } });
      const worker = offload.worker({ poll: "60s" });
      const errors: string[] = [];
      worker.on("error", (e) => errors.push(e.message));
      const outcome = new Promise<WorkerEvent>((resolve) => worker.on("job", (e) => {
        if (e.type !== "started") resolve(e);
      }));
      await worker.start();
      const job = await task.enqueue(null);
      // Either the write waits out the first pause of the resend schedule, or the attempt ends.
      if (await Promise.race([clock.sleeping(50).then(() => true), outcome.then(() => false)])) clock.advance(50);
      const event = await outcome;
      assert.equal(event.type, "succeeded", `the attempt ended ${event.type}: a blip in a progress write cost it`);
      const stored = await job.get();
      assert.equal(stored.attempt, 1);
      assert.deepEqual(stored.errors, []);
      assert.equal(stored.progress, 0.5);
      assert.equal(stored.progressMessage, "half way");
      assert.equal(runs, 1, "the handler ran once");
      assert.equal(writes, 2);
      assert.deepEqual(errors, ["Connection terminated unexpectedly"], "the failed try is reported");
    });
  });

  it("a completion refused for longer than the resend schedule (a failover's NOREPLICAS) is tried until its lease would end, and lands: the job ran once", { timeout: 20_000 }, async () => {
    let tries = 0;
    // Refused for 12 s: a Sentinel failover under min-replicas-to-write took 10-16 s.
    const refusing = (real: Backend, clock: FakeClock): Partial<Backend> => {
      const refusedUntil = clock.now() + 12_000;
      return {
        complete: (acks, now) => {
          tries++;
          return clock.now() < refusedUntil ? noReplicas() : real.complete(acks, now);
        },
      };
    };
    await onFakeClock(refusing, async (offload, clock) => {
      const { job, runs } = await countedJobRunning(offload, "15s");
      // The resend schedule (8.75 s in all), then a try every second while the lease runs.
      for (const ms of [50, 200, 500, 1_000, 2_000, 5_000, 1_000, 1_000, 1_000, 1_000]) {
        await clock.sleeping(ms);
        clock.advance(ms);
      }
      assert.equal(await job.result(), 1);
      assert.equal(runs(), 1, "the handler ran once");
      assert.ok(tries > 7, `tried past the resend schedule's 7 tries (${tries})`);
      assert.equal((await offload.jobs.find(job.id))?.attempt, 1);
    });
  });

  it("while its outcomes fail to write, a worker does not rescue the jobs they are about: past their leases, the outcomes still land", { timeout: 20_000 }, async () => {
    const refusing = (real: Backend, clock: FakeClock): Partial<Backend> => {
      const refusedUntil = clock.now() + 12_000; // longer than the 8 s lease below
      return {
        complete: (acks, now) => (clock.now() < refusedUntil ? noReplicas() : real.complete(acks, now)),
        heartbeat: (request) => (clock.now() < refusedUntil ? noReplicas() : real.heartbeat(request)),
      };
    };
    await onFakeClock(refusing, async (offload, clock) => {
      const { job, runs } = await countedJobRunning(offload, "8s");
      await advanceInSteps(clock, 14_000);
      assert.equal(await job.result(), 1);
      assert.equal(runs(), 1, "the handler ran once: the job was not rescued");
      assert.equal((await offload.jobs.find(job.id))?.attempt, 1);
    });
  });

  it("a job still running when refused writes come back is not rescued by its own worker's sweep: its heartbeat renews it first", { timeout: 20_000 }, async () => {
    const random = Math.random;
    Math.random = () => 0; // the sweep's jitter at its shortest, so it comes before the heartbeat
    const refusing = (real: Backend, clock: FakeClock): Partial<Backend> => {
      const refusedUntil = clock.now() + 8_100; // longer than the 5 s lease below
      const refused = (): boolean => clock.now() < refusedUntil;
      return {
        heartbeat: (request) => (refused() ? noReplicas() : real.heartbeat(request)),
        rescueExpired: (now) => (refused() ? noReplicas() : real.rescueExpired(now)),
      };
    };
    try {
      await onFakeClock(refusing, async (offload, clock) => {
        const finish = deferred<string>();
        let runs = 0;
        // A long job, healthy all along: only the writes about it fail.
        const task = offload.task({ name: "long", run: () => (runs++, finish.promise) });
        const worker = offload.worker({ poll: "60s", lease: "5s", heartbeat: "1s" });
        worker.on("error", () => {});
        const events = recordEvents(worker);
        await worker.start();
        const job = await task.enqueue(null);
        await advanceInSteps(clock, 12_000);
        const seen = events.map((e) => e.type);
        finish.resolve("done"); // before asserting: a handler left running holds close() up
        assert.deepEqual(seen, ["started"], "no lease lost, no second start");
        assert.equal(await job.result(), "done");
        assert.equal(runs, 1, "the handler ran once");
        assert.equal((await offload.jobs.find(job.id))?.attempt, 1);
      });
    } finally {
      Math.random = random;
    }
  });

  it("a rescue that keeps failing (a full Redis refuses it) does not keep the sweep from pruning, nor does a rescue held for failing heartbeats", { timeout: 20_000 }, async () => {
    let prunes = 0;
    const refusing = (real: Backend): Partial<Backend> => ({
      rescueExpired: () => Promise.reject(new Error("OOM command not allowed when used memory > 'maxmemory'.")),
      heartbeat: () => noReplicas(),
      prune: (retention, now) => {
        prunes++;
        return real.prune(retention, now);
      },
    });
    await onFakeClock(refusing, async (offload, clock) => {
      const finish = deferred();
      const task = offload.task({ name: "long", run: () => finish.promise });
      const worker = offload.worker({ poll: "60s" });
      worker.on("error", () => {});
      await worker.start();
      await task.enqueue(null); // its heartbeats fail: the rescue is held
      try {
        await advanceInSteps(clock, 2_000);
        assert.equal(prunes, 1, "pruned at the first sweep");
        await advanceInSteps(clock, 60_000);
        assert.equal(prunes, 2, "and a minute later");
      } finally {
        finish.resolve(); // a handler left running holds close() up
      }
    });
  });

  it("two stop() calls at once are one shutdown: neither returns before the running job is handed back", { timeout: 20_000 }, async () => {
    const real = await openBackend("sqlite::memory:");
    const releaseSent = deferred();
    const answer = deferred();
    // A release on its way over the network: answered when the test says.
    const backend = replacing(real, {
      release: async (leases, now) => {
        releaseSent.resolve();
        await answer.promise;
        return real.release(leases, now);
      },
    });
    const offload = new Offload({ backend });
    try {
      const worker = await runningHeldJob(offload, { poll: "60s" });
      const [job] = await offload.jobs.list({ state: "active" });
      let returned = 0;
      // A signal handler's worker.stop(), then the app's offload.close() stopping it again.
      const first = worker.stop({ grace: 0 }).then(() => returned++);
      await releaseSent.promise;
      const second = worker.stop({ grace: 0 }).then(() => returned++);
      for (let i = 0; i < 20; i++) await new Promise<void>((resolve) => setImmediate(resolve));
      assert.equal(returned, 0, "no stop() returned while the hand-back was on its way");
      answer.resolve();
      await Promise.all([first, second]);
      assert.equal((await offload.jobs.find(job?.id ?? ""))?.state, "queued");
    } finally {
      await offload.close({ grace: 0 });
      await real.close();
    }
  });

  it("stop() returns while the idle loop's look-ahead (nextDueAt) hangs on a dead connection", { timeout: 20_000 }, async () => {
    const real = await openBackend("sqlite::memory:");
    const lookAheadSent = deferred();
    const backend = replacing(real, {
      nextDueAt: () => {
        lookAheadSent.resolve();
        return new Promise<never>(() => {}); // a server that vanished without closing its sockets
      },
    });
    const offload = new Offload({ backend });
    try {
      const worker = offload.worker({ poll: "60s" });
      await worker.start();
      await lookAheadSent.promise;
      await worker.stop({ grace: 0 });
    } finally {
      await offload.close({ grace: 0 });
      await real.close();
    }
  });

  it("a job handed back at shutdown whose cancel was requested meanwhile is reported cancelled, not released", async () => {
    const offload = new Offload({ backend: "sqlite::memory:" });
    try {
      // A long heartbeat: the worker has not heard of the cancel when it stops.
      const worker = await runningHeldJob(offload, { poll: "60s", heartbeat: "60s", lease: "5m" });
      const [job] = await offload.jobs.list({ state: "active" });
      await offload.jobs.cancel(job?.id ?? "");
      const seen: string[] = [];
      worker.on("job", (e) => seen.push(e.type));
      await worker.stop({ grace: 0 });
      assert.equal((await offload.jobs.find(job?.id ?? ""))?.state, "cancelled");
      assert.deepEqual(seen.filter((t) => t === "released" || t === "cancelled"), ["cancelled"]);
    } finally {
      await offload.close({ grace: 0 });
    }
  });

  it("stop() returns while a heartbeat and a rescue sweep hang on a dead connection, and sends no prune after them", { timeout: 20_000 }, async () => {
    const clock = new FakeClock();
    const real = await openBackend("sqlite::memory:");
    const heartbeatSent = deferred();
    const sweepSent = deferred();
    // A server that vanished without closing its sockets: the requests are never answered.
    const never = new Promise<never>(() => {});
    let prunes = 0;
    const backend = replacing(real, {
      heartbeat: () => {
        heartbeatSent.resolve();
        return never;
      },
      rescueExpired: () => {
        sweepSent.resolve();
        return never;
      },
      prune: (retention, now) => {
        prunes++;
        return real.prune(retention, now);
      },
    });
    const offload = new Offload({ backend, clock });
    try {
      const finish = deferred<string>();
      const task = offload.task({ name: "awaited", run: () => finish.promise });
      const worker = offload.worker({ heartbeat: "1s", poll: "60s" });
      const started = nextEvent(worker, "started");
      await worker.start();
      const job = await task.enqueue(null);
      await started;
      await sweepSent.promise;
      await clock.sleeping(1_000);
      clock.advance(1_000);
      await heartbeatSent.promise;
      const succeeded = nextEvent(worker, "succeeded");
      finish.resolve("done");
      await succeeded;
      await worker.stop({ grace: 0 });
      assert.equal((await job.get()).state, "succeeded");
      assert.equal(prunes, 0, "nothing more is sent once stop() has given up on the sweep");
    } finally {
      await offload.close({ grace: 0 });
      await real.close();
    }
  });

  it("a stopped worker does not start again: start() rejects with ClosedError instead of doing nothing", async () => {
    const offload = new Offload({ backend: "sqlite::memory:", clock: new FakeClock() });
    try {
      const worker = offload.worker();
      await worker.start();
      await worker.stop({ grace: 0 });
      await assert.rejects(worker.start(), (e: unknown) => e instanceof ClosedError && /make a new one/.test(e.message));
      const never = offload.worker();
      await never.stop();
      await assert.rejects(never.start(), ClosedError);
    } finally {
      await offload.close({ grace: 0 });
    }
  });

  it("after an outage of the idle loop's look-ahead, one failed claim backs off from the start, not by the outage's count", async () => {
    const clock = new FakeClock();
    const real = await openBackend("sqlite::memory:");
    let lookAheadFailures = 6;
    let claimFailures = 0;
    const backend = replacing(real, {
      nextDueAt: (queues) => (lookAheadFailures-- > 0 ? Promise.reject(new Error("connection refused")) : real.nextDueAt(queues)),
      claim: (request) => (claimFailures-- > 0 ? Promise.reject(new Error("connection reset")) : real.claim(request)),
    });
    const offload = new Offload({ backend, clock });
    try {
      const task = offload.task({ name: "after-outage", run: () => "ran" });
      const worker = offload.worker({ poll: "7s" });
      worker.on("error", () => {});
      await worker.start();
      // The look-ahead fails six times in a row; the loop backs off 100, 200, 400, 800, 1,600, 3,200 ms.
      for (const pause of [100, 200, 400, 800, 1_600, 3_200]) {
        await clock.sleeping(pause);
        clock.advance(pause);
      }
      await clock.sleeping(7_000); // the backend answers again: idle until a change or the poll
      claimFailures = 1;
      const job = await task.enqueue(null); // a change: the loop claims, and that claim fails once
      // A first failure after the recovery waits the first step of the back-off (100 ms), not the
      // step the outage had counted up to (50 ms × 2^7).
      const backedOff = await Promise.race([clock.sleeping(100).then(() => 100), clock.sleeping(6_400).then(() => 6_400)]);
      assert.equal(backedOff, 100);
      clock.advance(100);
      assert.equal(await job.result(), "ran");
    } finally {
      await offload.close({ grace: 0 });
      await real.close();
    }
  });

  it("inline mode refuses a bad delay or runAt as queue mode does, and runs nothing", async () => {
    const offload = new Offload({ mode: "inline" });
    try {
      let runs = 0;
      const task = offload.task({ name: "inline-checked", run: () => ++runs });
      await assert.rejects(task.enqueue(null, { delay: -1 }), ConfigError);
      await assert.rejects(task.enqueue(null, { runAt: Number.NaN }), ConfigError);
      await assert.rejects(task.enqueueMany([null], { runAt: new Date(Number.NaN) }), ConfigError);
      assert.equal(runs, 0);
      assert.deepEqual(await offload.jobs.list(), []);
    } finally {
      await offload.close();
    }
  });
  it("a job listener that throws on started is reported, and the job still runs", async () => {
    const clock = new FakeClock();
    const offload = new Offload({ backend: "sqlite::memory:", clock });
    try {
      const task = offload.task({ name: "listened", run: () => "ran" });
      const worker = offload.worker();
      const errors: Error[] = [];
      worker.on("error", (e) => errors.push(e));
      worker.on("job", (e) => {
        if (e.type === "started") throw new Error("listener broke");
      });
      await worker.start();
      const succeeded = nextEvent(worker, "succeeded");
      const job = await task.enqueue(null);
      await succeeded;
      assert.equal(await job.result(), "ran");
      assert.deepEqual(errors.map((e) => e.message), ["listener broke"]);
      assert.deepEqual(worker.active, []);
    } finally {
      await offload.close({ grace: 0 });
    }
  });
});
