// Surviving the database: PostgreSQL is crashed and restarted (a private server, see
// postgres-server.ts) while workers run. Without help, the workers and the LISTEN connection
// reconnect, jobs whose acknowledgement was lost are rescued when their lease expires, and every
// committed job ends succeeded: nothing lost, nothing left active.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { PostgresBackend } from "../../src/backend/postgres/postgres-backend.ts";
import { BackendUnavailableError, type JobHandle, Offload } from "../../src/index.ts";
import { type PrivateServer, startPrivateServer } from "./postgres-server.ts";

describe("postgres: the server restarts mid-run", () => {
  let server: PrivateServer;
  before(async () => {
    server = await startPrivateServer();
  });
  after(() => server.stop());

  it("workers and the listener recover by themselves; every committed job completes", async () => {
    const offload = new Offload({ backend: server.url });
    const errors: Error[] = [];
    const work = offload.task({ name: "work", retry: { attempts: 10, base: "100ms", jitter: false }, run: async (n: number) => {
      await new Promise((resolve) => setImmediate(resolve));
      return n * 2;
    } });
    const workers = [offload.worker({ concurrency: 4, lease: "2s", heartbeat: "300ms" }), offload.worker({ concurrency: 4, lease: "2s", heartbeat: "300ms" })];
    for (const w of workers) {
      w.on("error", (e) => errors.push(e));
      await w.start();
    }
    try {
      // Let both workers get going (20 successes each), then crash the server under them. Counted by
      // listeners in place before the first job: a nextEvent() per success, one worker after the
      // other, missed those of a batch after its first, and waited out its 10 s once the 300 jobs
      // ran out first (seen on a machine that completed them in big batches).
      const going = new Promise<void>((resolve) => {
        const done = [0, 0];
        workers.forEach((w, i) => w.on("job", (e) => {
          if (e.type === "succeeded") done[i] = (done[i] ?? 0) + 1;
          if (done.every((n) => n >= 20)) resolve();
        }));
      });
      const jobs: JobHandle<number>[] = await work.enqueueMany(Array.from({ length: 300 }, (_, i) => i));
      await going;
      // The app goes on enqueueing while the server goes down and comes back, and right after,
      // without retrying: each enqueue rides out the restart itself (lost-replies.ts).
      const restarted = server.restart("immediate");
      const during = work.enqueueMany(Array.from({ length: 50 }, (_, i) => 1_000 + i));
      await restarted;
      const later = [...(await during), ...(await work.enqueueMany(Array.from({ length: 50 }, (_, i) => 1_050 + i)))];
      for (const [i, job] of [...jobs, ...later].entries()) {
        const expected = i < 300 ? i * 2 : (1_000 + i - 300) * 2;
        assert.equal(await retryUntilUp(() => job.result({ timeout: "60s" })), expected);
      }
      const counts = await offload.jobs.counts();
      const total = counts.reduce((n, q) => n + q.counts.succeeded, 0);
      assert.equal(total, 400);
      assert.ok(counts.every((q) => q.counts.active === 0 && q.counts.queued === 0), "nothing left active or waiting");
      assert.ok(errors.length > 0, "the workers did notice the outage");
      // Reported as the app's own calls see an outage, whatever pg said (connection ended, 57P01…).
      const other = errors.filter((e) => !(e instanceof BackendUnavailableError));
      assert.deepEqual(other.map(String), [], "every reported error is a BackendUnavailableError");
    } finally {
      await offload.close();
    }
  });

  it("the LISTEN connection comes back: a change from another connection wakes watchers", async () => {
    const troubles: Error[] = [];
    const backend = await PostgresBackend.open({
      url: server.url, schema: "listen_check", pollMs: 3_600_000, onConnectionError: (e) => troubles.push(e),
    });
    try {
      await backend.listening();
      await server.restart("fast");
      // The listener reconnects on its own; wait until its LISTEN is in place on the new server.
      const probe = new pg.Client({ connectionString: server.url });
      await probe.connect();
      const listening = "SELECT 1 FROM pg_stat_activity WHERE query = 'LISTEN \"offload:listen_check\"'";
      while ((await probe.query(listening)).rowCount === 0) await probe.query("SELECT pg_sleep(0.02)");
      await probe.end();
      let woke!: () => void;
      const woken = new Promise<void>((resolve) => {
        woke = resolve;
      });
      let armed = false;
      const stop = backend.watch(() => {
        if (armed) woke();
      });
      await new Promise((resolve) => setImmediate(resolve)); // let the reconnect's own announcement pass
      armed = true;
      const other = new pg.Client({ connectionString: server.url });
      await other.connect();
      await other.query(`NOTIFY "offload:listen_check"`);
      await other.end();
      await woken;
      stop();
      assert.ok(troubles.length > 0, "the lost LISTEN connection was reported");
    } finally {
      await backend.close();
    }
  });
});

/** Calls `work` until the server answers: right after a restart, the first queries may fail. */
async function retryUntilUp<T>(work: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      if (attempt >= 50) throw error;
      const backoffMs = Math.min(10 * 2 ** attempt, 200); // the server is back within a second or two
      await new Promise((resolve) => setTimeout(resolve, backoffMs));
    }
  }
}
