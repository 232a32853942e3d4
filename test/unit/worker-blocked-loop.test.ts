// A handler that blocks the event loop (CPU-bound work run inline) stops the worker's heartbeats:
// past the lease, another worker's rescue takes the job and runs it again, and this run's outcome
// is refused. Nothing is lost (at-least-once), but the second run is a surprise unless the
// worker says why. It warns (OFFLOAD_EVENT_LOOP_BLOCKED) when a heartbeat comes late by half a
// lease (and at least a second) while it holds jobs.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Offload } from "../../src/index.ts";
import { FakeClock } from "../../src/testing/index.ts";
import { blockedLoopWarning } from "../../src/worker/blocked-loop.ts";
import { warningsOf } from "../support/warnings.ts";

const blockedWarnings = (): ReturnType<typeof warningsOf> => warningsOf("OFFLOAD_EVENT_LOOP_BLOCKED");

/** Keeps this thread busy for `ms`, as a CPU-bound handler run inline does. */
function spin(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // busy on purpose
  }
}

describe("worker: an event loop blocked while jobs run", () => {
  it("warns from half the lease on, and never for less than a second (a loaded machine's timers run late)", () => {
    assert.equal(blockedLoopWarning(7_499, 15_000, "w"), undefined);
    assert.match(blockedLoopWarning(7_500, 15_000, "w") ?? "", /^offload worker w: the event loop was blocked for 7\.5 s .*lease is 15\.0 s/);
    assert.equal(blockedLoopWarning(999, 1_000, "w"), undefined);
    assert.match(blockedLoopWarning(1_000, 1_000, "w") ?? "", /blocked for 1\.0 s/);
  });

  it("a handler that blocks the event loop past half the lease gets a warning naming the block and the lease", { timeout: 10_000 }, async () => {
    const warnings = blockedWarnings();
    const offload = new Offload({ backend: "sqlite::memory:" });
    try {
      const crunch = offload.task({ name: "crunch", run: () => {
        spin(1_300);
        return 1;
      } });
      const worker = offload.worker({ poll: "60s", lease: "2s", heartbeat: "100ms" });
      await worker.start();
      await crunch.enqueue(null);
      const message = await warnings.next;
      const blocked = Number(/event loop was blocked for (\d+\.\d) s/.exec(message)?.[1]);
      assert.ok(blocked >= 1.1 && blocked <= 3, message);
      assert.match(message, /lease is 2\.0 s/);
      assert.match(message, /worker_threads/);
      await worker.stop();
    } finally {
      warnings.stop();
      await offload.close({ grace: 0 });
    }
  });

  it("a handler that waits without blocking, for longer than the lease, gets no warning", async () => {
    const warnings = blockedWarnings();
    const offload = new Offload({ backend: "sqlite::memory:" });
    try {
      let finish!: () => void;
      const finished = new Promise<void>((resolve) => (finish = resolve));
      const wait = offload.task({ name: "wait", run: async () => {
        await new Promise((resolve) => setTimeout(resolve, 1_200));
        finish();
        return 1;
      } });
      const worker = offload.worker({ poll: "60s", lease: "1s", heartbeat: "100ms" });
      await worker.start();
      const job = await wait.enqueue(null);
      await finished;
      assert.equal(await job.result({ timeout: "5s" }), 1, "its lease was kept: the result is stored");
      await worker.stop();
      assert.deepEqual(warnings.seen, []);
    } finally {
      warnings.stop();
      await offload.close({ grace: 0 });
    }
  });

  it("on a fake clock, a test that moves time by more than the lease gets no warning", async () => {
    const warnings = blockedWarnings();
    const clock = new FakeClock();
    const offload = new Offload({ backend: "sqlite::memory:", clock });
    try {
      let started!: () => void;
      const running = new Promise<void>((resolve) => (started = resolve));
      const hold = offload.task({ name: "hold", run: (_p: null, ctx) => {
        started();
        return new Promise((resolve) => ctx.signal.addEventListener("abort", () => resolve(1)));
      } });
      const worker = offload.worker({ poll: "60s", lease: "1s", heartbeat: "100ms" });
      await worker.start();
      await hold.enqueue(null);
      await running;
      clock.advance(5_000);
      await new Promise((resolve) => setImmediate(resolve)); // the heartbeat loop wakes and looks
      await worker.stop({ grace: 0 });
      assert.deepEqual(warnings.seen, []);
    } finally {
      warnings.stop();
      await offload.close({ grace: 0 });
    }
  });
});
