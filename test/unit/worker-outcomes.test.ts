// What a run comes to when more than one thing ends it at once (a timeout and a return), and what
// an Offload keeps of the workers it made once they are stopped.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { queryObjects, setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { ConfigError, Offload, SchemaNotMigratedError, type Worker, type WorkerEvent } from "../../src/index.ts";
import { FakeClock, nextEvent } from "../../src/testing/index.ts";
import { deferred, turn } from "../support/deferred.ts";
import { openBackend } from "../../src/backend/open.ts";
import { DEFAULT_RETRY } from "../../src/core/backoff.ts";
import { LeaseLost } from "../../src/worker/abort-reasons.ts";
import { execute } from "../../src/worker/executor.ts";
import { JobControl } from "../../src/worker/job-control.ts";
import { makeJobContext } from "../../src/worker/job-context.ts";
import { TaskRegistry } from "../../src/worker/task-registry.ts";
import { T0, claimOne, enqueueOne } from "../conformance/fixtures.ts";

describe("worker outcomes", () => {
  it("a worker's job events carry the state they recorded, not the claimed record's `active`", async () => {
    const offload = new Offload({ backend: "sqlite::memory:" });
    try {
      const ok = offload.task({ name: "ok", run: () => 1 });
      const flaky = offload.task({ name: "flaky", retry: { attempts: 2, base: "1ms", jitter: false }, run: () => {
        throw new Error("boom");
      } });
      const worker = offload.worker({ poll: "60s" });
      const events: string[] = [];
      const seen = new Promise<void>((resolve) => {
        worker.on("job", (event) => {
          events.push(`${event.type}:${event.job.state}`);
          if (event.type === "failed") resolve();
        });
      });
      await worker.start();
      await ok.enqueue(null);
      await flaky.enqueue(null);
      await seen;
      assert.deepEqual(events.filter((e) => !e.startsWith("started")).sort(), ["failed:failed", "retrying:retrying", "succeeded:succeeded"]);
      assert.ok(events.filter((e) => e.startsWith("started")).every((e) => e === "started:active"));
    } finally {
      await offload.close({ grace: 0 });
    }
  });

  it("a handler meeting a schema not migrated yet is retried (a deploy cures it); a plain ConfigError fails its job at once", async () => {
    const offload = new Offload({ backend: "sqlite::memory:" });
    try {
      const retry = { attempts: 3, base: "1h", jitter: false } as const;
      const midDeploy = offload.task({ name: "mid-deploy", retry, run: () => {
        throw new SchemaNotMigratedError("app", "the PostgreSQL schema \"app\" has no Offload tables: run `offload migrate` for it");
      } });
      const misused = offload.task({ name: "misused", retry, run: () => {
        throw new ConfigError("enqueue({ tx }) on Redis");
      } });
      const worker = offload.worker({ poll: "60s" });
      const ended = new Map<string, WorkerEvent>();
      const both = new Promise<void>((resolve) => {
        worker.on("job", (event) => {
          if (event.type === "started") return;
          ended.set(event.job.task, event);
          if (ended.size === 2) resolve();
        });
      });
      await worker.start();
      await midDeploy.enqueue(null);
      await misused.enqueue(null);
      await both;
      assert.equal(ended.get("mid-deploy")?.type, "retrying");
      assert.equal(ended.get("misused")?.type, "failed");
      const error = new SchemaNotMigratedError("app", "m");
      assert.ok(error instanceof ConfigError && error.code === "CONFIG" && error.schema === "app", "the app still meets it as a ConfigError");
    } finally {
      await offload.close({ grace: 0 });
    }
  });

  it("a handler that returns an unstorable result after its timeout fails the job at once, as it would without the timeout", async () => {
    const clock = new FakeClock();
    const offload = new Offload({ backend: "sqlite::memory:", clock });
    try {
      const returns = deferred();
      const late = offload.task({
        name: "late",
        timeout: "1s",
        retry: { attempts: 3 },
        run: async () => {
          await returns.promise;
          return { total: 10n }; // BigInt: never storable, on any attempt
        },
      });
      const worker = offload.worker({ poll: "60s" });
      const started = nextEvent(worker, "started");
      // Whichever the worker records: a failure, or (the bug) a retry.
      const ended = new Promise<WorkerEvent>((resolve) => {
        worker.on("job", (event) => {
          if (event.type === "failed" || event.type === "retrying") resolve(event);
        });
      });
      await worker.start();
      const job = await late.enqueue(null);
      await started;
      await clock.sleeping(1_000);
      clock.advance(1_000); // the timeout aborts ctx.signal; the hard stop is 1 s away
      returns.resolve(); // the handler returns anyway, within the hard stop
      const event = await ended;
      assert.equal(event.type, "failed");
      assert.equal(event.error.name, "NotSerializableError");
      const stored = await job.get();
      assert.equal(stored.state, "failed", "no second attempt that would return the same BigInt");
      assert.equal(stored.attempt, 1);
      assert.equal(stored.errors.length, 1);
      assert.equal(stored.errors[0]?.name, "NotSerializableError", "the history says why, not a timeout");
    } finally {
      await offload.close({ grace: 0 });
    }
  });

  it("a stopped worker is not kept alive by the Offload that made it", async () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const offload = new Offload({ backend: "sqlite::memory:" });
    try {
      offload.task({ name: "noop", run: () => null });
      // Made in a function of its own, so no variable of this test's scope holds the worker.
      const made = async (): Promise<WeakRef<Worker>> => {
        const worker = offload.worker({ poll: "60s" });
        await worker.start();
        await worker.stop();
        return new WeakRef(worker);
      };
      const stopped = await made();
      const running = offload.worker({ poll: "60s" });
      await running.start();
      const runningRef = new WeakRef(running);
      // A WeakRef holds its target until the current turn ends.
      await turn();
      gc();
      assert.equal(stopped.deref(), undefined, "the stopped worker was collected");
      assert.ok(runningRef.deref(), "a running worker is still held (close() must stop it)");
    } finally {
      await offload.close({ grace: 0 });
    }
  });
});

describe("executor", () => {
  it("a run aborted after its handler returned arms no hard stop: no timer outlives it", async () => {
    const clock = new FakeClock(T0);
    const backend = await openBackend("sqlite::memory:");
    try {
      await enqueueOne(backend);
      const claimed = await claimOne(backend);
      const registry = new TaskRegistry();
      registry.add({ name: "t", queue: "q", retry: DEFAULT_RETRY, timeoutMs: undefined, retryIf: undefined, run: async () => 1 });
      const control = new JobControl();
      const execution = await execute({ registry, clock, maxResultBytes: 1024 }, claimed, control, (signal) => makeJobContext(backend, claimed, signal, { clock, writes: new Set(), report: () => {} }));
      assert.equal(execution.outcome.kind, "succeeded");
      // What a heartbeat does when the completion landed first and the lease is gone.
      control.abort(new LeaseLost());
      assert.equal(clock.sleepers, 0, "no hard-stop timer for a handler that already returned");
    } finally {
      await backend.close();
    }
  });
});

describe("an idle worker", () => {
  it("keeps no finished run alive (nor its job's payload) once a heartbeat has sent it", async () => {
    const clock = new FakeClock();
    const offload = new Offload({ backend: "sqlite::memory:", clock });
    try {
      const gate = deferred();
      const held = offload.task({ name: "held", run: async () => {
        await gate.promise;
        return 1;
      } });
      const worker = offload.worker({ poll: "60s", heartbeat: "1s" });
      const started = nextEvent(worker, "started");
      await worker.start();
      await held.enqueue(null);
      await started;
      // A heartbeat sends the running job's lease, then sleeps again.
      clock.advance(1_000);
      await clock.sleeping(1_000);
      const succeeded = nextEvent(worker, "succeeded");
      gate.resolve();
      await succeeded;
      // The next heartbeat finds nothing to renew and sleeps: the worker is idle.
      clock.advance(1_000);
      await clock.sleeping(1_000);
      await turn();
      // Before, the loop's frame, suspended in its sleep, still held the last heartbeat's runs.
      assert.equal(queryObjects(JobControl, { format: "count" }), 0, "no run of a finished job is alive");
    } finally {
      await offload.close({ grace: 0 });
    }
  });
});
