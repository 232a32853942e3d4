// counts() on SQLite: unfinished jobs are counted through their partial indexes, finished jobs
// through offload_finished_counts (migration 004, kept by triggers). Before, counts() scanned every
// retained job: with the default retention that grew with the life of the app (0.57 s of a
// blocked event loop per call with 1,000,000 finished jobs retained). These tests check that the
// plan reads no finished row, that the counters stay exact through every transition into and out
// of a final state, and that migrating a file which already holds finished jobs counts them.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { after, describe, it } from "node:test";
import { loadMigrations, loadQueries } from "../../src/backend/sqlite/queries.ts";
import { SqliteBackend } from "../../src/backend/sqlite/sqlite-backend.ts";
import { type Tally, counted, finishMany } from "./counts-tally.ts";
import { LEASE, T0, attemptError, newJob } from "../conformance/fixtures.ts";

const dir = mkdtempSync(join(tmpdir(), "offload-sqlite-counts-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const newFile = (): string => join(dir, `c${files++}.db`);

/** The truth, from a scan of the jobs table. */
function scanned(file: string): Tally {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    const rows = db.prepare("SELECT queue, state, count(*) AS n FROM offload_jobs GROUP BY queue, state").all();
    return Object.fromEntries(rows.map((r) => [`${String(r["queue"])}/${String(r["state"])}`, Number(r["n"])]));
  } finally {
    db.close();
  }
}

describe("sqlite: counts", () => {
  it("with 20,000 finished jobs retained, counts() reads no finished row and is exact", async () => {
    const file = newFile();
    const backend = new SqliteBackend({ path: file });
    try {
      await finishMany(backend, "done", 20_000, T0);
      await backend.enqueue({ jobs: [newJob({ queue: "done" }), newJob({ queue: "live" }), newJob({ queue: "live", runAt: T0 + 60_000 }), newJob({ queue: "run" })], now: T0 });
      await backend.claim({ queues: ["run"], limit: 1, worker: "w", leaseMs: LEASE, now: T0 });
      const db = new DatabaseSync(file, { readOnly: true });
      try {
        const plan = db.prepare(`EXPLAIN QUERY PLAN ${loadQueries().counts}`).all().map((r) => String(r["detail"]));
        const jobReads = plan.filter((d) => /\boffload_jobs\b/.test(d));
        assert.equal(jobReads.length, 3, `one read of offload_jobs per unfinished state:\n${plan.join("\n")}`);
        for (const read of jobReads) {
          assert.match(read, /USING (COVERING )?INDEX offload_jobs_(claim|due_by_queue|lease)\b/, `only partial indexes of unfinished jobs:\n${plan.join("\n")}`);
        }
      } finally {
        db.close();
      }
      assert.deepEqual(await counted(backend), scanned(file));
      assert.deepEqual(await counted(backend), { "done/succeeded": 20_000, "done/queued": 1, "live/queued": 1, "live/scheduled": 1, "run/active": 1 });
    } finally {
      await backend.close();
    }
  });

  it("stays exact through completes, failures, cancels, retries, replays, hand-backs, rescues and prunes", async () => {
    const file = newFile();
    const backend = new SqliteBackend({ path: file });
    const check = async (step: string): Promise<void> => assert.deepEqual(await counted(backend), scanned(file), `after ${step}`);
    try {
      const queues = ["a", "b"];
      for (let round = 0; round < 4; round++) {
        const now = T0 + round * 10_000;
        await backend.enqueue({ jobs: Array.from({ length: 40 }, (_, i) => newJob({ queue: queues[i % 2] ?? "a", maxAttempts: 1 })), now });
        const pending = await backend.enqueue({ jobs: [newJob({ queue: "a", runAt: now + 60_000 })], now });
        const claimed = await backend.claim({ queues, limit: 34, worker: "w", leaseMs: LEASE, now });
        const [toComplete, toFail, toCancel, toHandBack, toRescue] = [claimed.slice(0, 15), claimed.slice(15, 22), claimed.slice(22, 27), claimed.slice(27, 30), claimed.slice(30)];
        await backend.complete(toComplete.map((c) => ({ id: c.job.id, token: c.token, resultJson: "1" })), now);
        await check("complete");
        for (const c of toFail) await backend.fail({ id: c.job.id, token: c.token, error: attemptError(1, now), retryAt: undefined, now });
        await check("fail");
        for (const c of toCancel) {
          await backend.cancel(c.job.id, now);
          await backend.acknowledgeCancel({ id: c.job.id, token: c.token }, now);
        }
        const waiting = pending[0]?.job.id;
        if (waiting) await backend.cancel(waiting, now);
        await check("cancel");
        const [cancelledWhileHeld] = toHandBack;
        if (cancelledWhileHeld) await backend.cancel(cancelledWhileHeld.job.id, now);
        await backend.release(toHandBack.map((c) => ({ id: c.job.id, token: c.token })), now);
        await check("release");
        const rescued = await backend.rescueExpired(now + LEASE + 1);
        assert.ok(rescued.failed.length + rescued.requeued.length >= toRescue.length, "the expired leases were rescued");
        await check("rescue");
        const failed = toFail[0];
        if (failed) await backend.retry(failed.job.id, now);
        if (waiting) await backend.retry(waiting, now);
        await check("retry");
        if (round % 2 === 1) await backend.replay({ queue: "b" }, now);
        await check("replay");
        if (round >= 2) await backend.prune({ succeeded: 15_000, failed: 25_000, cancelled: 5_000 }, now);
        await check("prune");
      }
      const finished = Object.entries(await counted(backend)).filter(([k]) => /\/(succeeded|failed|cancelled)$/.test(k));
      assert.ok(finished.length > 0, "some jobs are still finished and counted");
    } finally {
      await backend.close();
    }
  });

  it("queues whose jobs are all pruned leave no counter rows behind", async () => {
    // Queues named per tenant would otherwise keep a row for every name ever used.
    const file = newFile();
    const backend = new SqliteBackend({ path: file });
    try {
      for (let i = 0; i < 30; i++) await finishMany(backend, `tenant-${i}`, 2, T0);
      await backend.enqueue({ jobs: [newJob({ queue: "tenant-0" })], now: T0 });
      assert.equal(await backend.prune({ succeeded: 0, failed: 0, cancelled: 0 }, T0 + 1), 60);
      const db = new DatabaseSync(file, { readOnly: true });
      try {
        assert.deepEqual(db.prepare("SELECT queue, state, n FROM offload_finished_counts").all(), []);
      } finally {
        db.close();
      }
      assert.deepEqual(await counted(backend), { "tenant-0/queued": 1 });
      await finishMany(backend, "tenant-1", 3, T0 + 2);
      assert.deepEqual(await counted(backend), scanned(file));
      assert.deepEqual(await counted(backend), { "tenant-0/queued": 1, "tenant-1/succeeded": 3 });
    } finally {
      await backend.close();
    }
  });

  it("a file at version 1 that holds finished jobs has them counted once migrated", async () => {
    const file = newFile();
    const db = new DatabaseSync(file);
    const first = loadMigrations().find((m) => m.version === 1);
    assert.ok(first, "migration 001");
    db.exec(first.sql);
    db.exec("PRAGMA user_version = 1");
    const insert = db.prepare(`INSERT INTO offload_jobs (id, task, queue, state, payload, run_at, max_attempts, created_at, updated_at, finished_at)
      VALUES (?, 't', ?, ?, '{}', ${T0}, 1, ${T0}, ${T0}, ?)`);
    const states = ["succeeded", "succeeded", "failed", "cancelled", "queued"] as const;
    for (let i = 0; i < 50; i++) {
      const state = states[i % states.length] ?? "queued";
      insert.run(newJob().id, i % 3 === 0 ? "x" : "y", state, state === "queued" ? null : T0);
    }
    db.close();
    const backend = new SqliteBackend({ path: file });
    try {
      assert.deepEqual(await counted(backend), scanned(file));
      await finishMany(backend, "x", 3, T0);
      assert.deepEqual(await counted(backend), scanned(file));
    } finally {
      await backend.close();
    }
  });
});
