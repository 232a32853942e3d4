// Real worker processes against a backend: killed mid-job, stopped with SIGTERM, and four of them
// sharing 20,000 jobs. The same cases run for every backend that can be shared across processes.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import type { Offload } from "../../src/index.ts";
import { Wakeup } from "../../src/core/wakeup.ts";
import { systemClock } from "../../src/core/clock.ts";
import { type App, makeApp } from "./fixtures/app.ts";
import { type WorkerProcess, killAll, startWorker } from "./workers.ts";

/** A fresh, isolated backend URL (a new file, schema or key prefix) and how to clean it up. */
export type UrlFactory = () => Promise<{ url: string; cleanup: () => Promise<void> }>;

function effectLines(file: string): string[][] {
  return readFileSync(file, "utf8").split("\n").filter(Boolean).map((l) => l.split(" "));
}

/** Waits, on the backend's change signal, until `done` holds; fails after `limitMs` of real time. */
async function until(app: Offload, done: () => Promise<boolean>, limitMs: number): Promise<void> {
  const backend = await app.backend();
  const wakeup = new Wakeup();
  const stop = backend.watch(() => wakeup.notify());
  const deadline = Date.now() + limitMs;
  try {
    while (!(await done())) {
      if (Date.now() > deadline) throw new Error(`condition not reached within ${limitMs} ms`);
      await wakeup.wait(200, systemClock);
    }
  } finally {
    stop();
  }
}

export function defineProcessSuite(name: string, makeUrl: UrlFactory): void {
  describe(`worker processes: ${name}`, () => {
    const dir = mkdtempSync(join(tmpdir(), "offload-process-"));
    const started: WorkerProcess[] = [];
    const cleanups: Array<() => Promise<void>> = [];
    after(async () => {
      await killAll(started);
      for (const c of cleanups) await c();
      rmSync(dir, { recursive: true, force: true });
    });

    async function setup(test: string): Promise<{ tasks: App; app: Offload; effects: string; worker: (args: string[]) => WorkerProcess }> {
      const { url, cleanup } = await makeUrl();
      const tasks = makeApp(url);
      const app = tasks.offload;
      cleanups.push(async () => {
        await app.close();
        await cleanup();
      });
      const effects = join(dir, `${test}.effects`);
      writeFileSync(effects, "");
      const worker = (args: string[]): WorkerProcess => {
        const w = startWorker(url, args, effects);
        started.push(w);
        return w;
      };
      return { tasks, app, effects, worker };
    }

    it("a worker SIGKILLed mid-job: a second worker finishes the job exactly once, as attempt 2", async () => {
      const { tasks, effects, worker } = await setup("sigkill");
      const job = await tasks.crashy.enqueue(null);
      const first = worker(["--lease", "1s", "--concurrency", "2"]);
      const hung = await first.next((m) => m.id === job.id && m.attempt === 1);
      first.child.kill("SIGKILL");
      await first.exited;
      assert.equal(await job.state(), "active", "the killed worker's job is still active until its lease runs out");

      const second = worker(["--lease", "1s", "--concurrency", "2"]);
      const result = await job.result({ timeout: "30s" });
      assert.equal(result.attempt, 2);
      assert.notEqual(result.finishedBy, hung.pid);
      const stored = await job.get();
      assert.equal(stored.state, "succeeded");
      assert.equal(stored.attempt, 2);
      assert.equal(stored.errors[0]?.name, "LeaseExpired");
      const lines = effectLines(effects).filter(([id]) => id === job.id);
      assert.equal(lines.length, 1, "the job's effect happened exactly once");
      second.child.kill("SIGTERM");
      assert.equal(await second.exited, 0);
    });

    it("SIGTERM with active jobs: each finishes or is back in queued; none lost, none left active", async () => {
      const { tasks, app, worker } = await setup("sigterm");
      const finishing = await tasks.finishesOnTerm.enqueueMany([null, null]);
      const longRunning = await tasks.runsUntilAborted.enqueueMany([null, null]);
      const w = worker(["--concurrency", "4", "--grace", "1s"]);
      for (const j of [...finishing, ...longRunning]) await w.next((m) => m.id === j.id);
      w.child.kill("SIGTERM");
      assert.equal(await w.exited, 0, w.output());
      for (const j of finishing) {
        const job = await app.jobs.get(j.id);
        assert.equal(job.state, "succeeded", "a job that finished within the grace period is recorded");
      }
      for (const j of longRunning) {
        const job = await app.jobs.get(j.id);
        assert.equal(job.state, "queued", "a job still running after the grace period is handed back");
        assert.equal(job.attempt, 0, "a hand-back does not use up an attempt");
      }
      const counts = (await app.jobs.counts()).find((c) => c.queue === "work");
      assert.equal(counts?.counts.active, 0);
    });

    it("four worker processes share 20,000 jobs: every job succeeds exactly once", async () => {
      const { tasks, app, effects, worker } = await setup("four");
      const total = 20_000;
      for (let i = 0; i < total; i += 1_000) await tasks.count.enqueueMany(Array.from({ length: 1_000 }, (_, k) => ({ n: i + k })));
      const workers = [0, 1, 2, 3].map(() => worker(["--concurrency", "10"]));
      await until(app, async () => (await app.jobs.counts()).find((c) => c.queue === "work")?.counts.succeeded === total, 240_000);
      for (const w of workers) w.child.kill("SIGTERM");
      for (const w of workers) assert.equal(await w.exited, 0, w.output());

      const counts = (await app.jobs.counts()).find((c) => c.queue === "work")?.counts;
      assert.deepEqual({ succeeded: counts?.succeeded, failed: counts?.failed, active: counts?.active, queued: counts?.queued }, { succeeded: total, failed: 0, active: 0, queued: 0 });
      const lines = effectLines(effects);
      const ids = new Set(lines.map(([id]) => id));
      assert.equal(lines.length, total, "no job ran twice");
      assert.equal(ids.size, total, "every job ran");
      const pids = new Set(lines.map(([, pid]) => pid));
      assert.ok(pids.size >= 2, `work was shared between processes (pids: ${[...pids].join(", ")})`);
    });
  });
}
