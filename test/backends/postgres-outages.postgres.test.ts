// Outages around the PostgreSQL adapter, each pinned by the case that once broke it:
// - a connection that drops while a migration holds it (waiting on the migration lock
//   behind another process) must reject the migration, not crash the process with an unhandled
//   "error" event;
// - the outbox relay must not spend the outbox's attempts of a batch that the destination did not
//   take: during a destination outage, jobs would end failed in the outbox and never be relayed;
// - an enqueue handed a pooled session that the server ended while it sat idle (57P05) never ran,
//   and must be sent again rather than fail the caller.
import assert from "node:assert/strict";
import { type Socket, connect, createServer } from "node:net";
import { describe, it } from "node:test";
import pg from "pg";
import type { Backend } from "../../src/backend/backend.ts";
import { LOCK_NAMESPACE } from "../../src/backend/postgres/migrate.ts";
import { OutboxRelay } from "../../src/backend/postgres/outbox-relay.ts";
import { PostgresBackend } from "../../src/backend/postgres/postgres-backend.ts";
import { SqliteBackend } from "../../src/backend/sqlite/sqlite-backend.ts";
import { FakeClock } from "../../src/core/clock.ts";
import { BackendUnavailableError, Offload } from "../../src/index.ts";
import { T0, newJob } from "../conformance/fixtures.ts";
import { POSTGRES_URL, connectedPair, dropSchema, openIsolated, uniqueSchema, untilSessionWaits } from "./postgres-helpers.ts";

/** A TCP relay to the test server whose connections can be reset at once, as a network failure would. */
async function openProxy(): Promise<{ url: string; cut: () => void; close: () => Promise<void> }> {
  const target = new URL(POSTGRES_URL);
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(Number(target.port || 5432), target.hostname);
    for (const [a, b] of [[client, upstream], [upstream, client]] as const) {
      sockets.add(a);
      a.on("error", () => b.destroy());
      a.on("close", () => {
        sockets.delete(a);
        b.destroy();
      });
      a.pipe(b);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (typeof address !== "object" || address === null) throw new Error("proxy has no port");
  const url = new URL(POSTGRES_URL);
  url.hostname = "127.0.0.1";
  url.port = String(address.port);
  return {
    url: url.toString(),
    cut: () => {
      for (const socket of sockets) socket.resetAndDestroy();
    },
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** `destination`, except that every call rejects while `down()` says so. */
function unreachableWhile(destination: Backend, down: () => boolean): Backend {
  return new Proxy(destination, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== "function") return value;
      const method = value as (...args: unknown[]) => unknown;
      return (...args: unknown[]): unknown => (down() ? Promise.reject(new Error("destination unreachable")) : method.apply(target, args));
    },
  });
}

describe("postgres: outages around the adapter", () => {
  it("a migration whose connection drops while it waits for the migration lock rejects, and the process lives", async () => {
    const schema = uniqueSchema("rvm");
    const proxy = await openProxy();
    const [holder, observer] = await connectedPair();
    try {
      // Another process is migrating this schema: it holds the lock the opening backend waits on.
      await holder.query("SELECT pg_advisory_lock($1, hashtext($2))", [LOCK_NAMESPACE, schema]);
      const holderPid = (await holder.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]?.pid;
      const opening = PostgresBackend.open({ url: proxy.url, schema }).then(
        async (backend) => {
          await backend.close();
          return undefined;
        },
        (error: unknown) => error,
      );
      await untilSessionWaits(observer, "wait_event = 'advisory' AND query LIKE 'SELECT pg_advisory_%lock(%' AND pid <> $1", [holderPid], opening);
      // The network drops the connection (a failover, a server crash): no error message first,
      // the socket just resets. pg reports that on the connection as an "error" event, besides
      // rejecting the query.
      proxy.cut();
      const outcome = await opening;
      assert.ok(outcome instanceof Error, "open() rejects with the connection's error");
    } finally {
      await holder.query("SELECT pg_advisory_unlock($1, hashtext($2))", [LOCK_NAMESPACE, schema]).catch(() => {});
      await holder.end();
      await observer.end();
      await proxy.close();
      await dropSchema(schema);
    }
  });

  it("outbox relay: a batch the destination refused is handed back with its attempt unspent, and relayed once it is back", async () => {
    const outbox = await openIsolated();
    const clock = new FakeClock(T0);
    const destination = new SqliteBackend({ path: ":memory:" });
    let down = true;
    const relay = new OutboxRelay({
      from: outbox, to: unreachableWhile(destination, () => down), queues: ["q"], leaseMs: 1_000, clock,
    });
    try {
      // One attempt: a single expired relay lease would fail it in the outbox for good.
      const job = newJob({ maxAttempts: 1 });
      await outbox.enqueue({ jobs: [job], now: T0 });

      await assert.rejects(relay.relayBatch(), /destination unreachable/);
      const handedBack = await outbox.getJob(job.id);
      assert.equal(handedBack?.state, "queued", "not left leased until its lease runs out");
      assert.equal(handedBack?.attempt, 0, "the relay's claim did not count");

      // Later, past the lease the relay held, the destination is back.
      clock.advance(5_000);
      down = false;
      assert.equal(await relay.relayBatch(), 1);
      assert.equal((await destination.getJob(job.id))?.state, "queued", "delivered");
      assert.equal((await outbox.getJob(job.id))?.state, "succeeded", "marked relayed in the outbox");
      assert.equal(await relay.relayBatch(), 0, "nothing left, nothing twice");
      assert.equal((await destination.listJobs({ limit: 10 })).length, 1);
    } finally {
      await destination.close();
      await outbox.close();
    }
  });
});

/** Blocks the event loop, so what the server sends meanwhile stays unread in the socket. */
function blockFor(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

describe("postgres: a pooled session the server ended while idle", () => {
  it("an enqueue that meets it (57P05, idle_session_timeout) is sent again and stored once", { timeout: 60_000 }, async () => {
    const url = `${POSTGRES_URL}?options=${encodeURIComponent("-c idle_session_timeout=200")}`;
    const backend = await openIsolated({ url, poolSize: 1 });
    try {
      const now = Date.now();
      await backend.enqueue({ jobs: [newJob({ runAt: now })], now }); // the pool now holds one idle session
      blockFor(600); // the server ends it meanwhile; the pool has not read its FATAL yet
      const job = newJob({ runAt: now });
      assert.deepEqual(await backend.enqueue({ jobs: [job], now }), [{ job: { id: job.id, state: "queued" }, created: true }]);
      assert.equal((await backend.getJob(job.id))?.state, "queued");
    } finally {
      await backend.close();
    }
  });
});

describe("postgres: the app's calls when the server cannot take them", () => {
  it("an enqueue that meets a server limit (a lock timeout, 55P03) fails with BackendUnavailableError, pg's error as its cause; once the lock is gone, it is taken", async () => {
    const schema = uniqueSchema("unav");
    const setup = await PostgresBackend.open({ url: POSTGRES_URL, schema }); // migrates the schema
    const limited = await PostgresBackend.open({ url: POSTGRES_URL, schema, migrate: false, pg: { lock_timeout: 100 } });
    const offload = new Offload({ backend: limited });
    const locker = new pg.Client({ connectionString: POSTGRES_URL });
    await locker.connect();
    try {
      const task = offload.task({ name: "t", run: () => 1 });
      await locker.query("BEGIN");
      await locker.query(`LOCK TABLE "${schema}".jobs IN ACCESS EXCLUSIVE MODE`); // a migration of the DBA's, say
      const refused = await task.enqueue(null).then(() => undefined, (error: unknown) => error);
      assert.ok(refused instanceof BackendUnavailableError, `a BackendUnavailableError, got ${String(refused)}`);
      assert.ok(refused.cause instanceof pg.DatabaseError, "pg's error as its cause");
      assert.deepEqual([refused.code, refused.backend, refused.cause.code], ["BACKEND_UNAVAILABLE", "postgres", "55P03"]);
      await locker.query("ROLLBACK");
      assert.equal((await offload.jobs.list({ limit: 10 })).length, 0, "nothing was stored");
      const taken = await task.enqueue(null);
      assert.equal((await offload.jobs.get(taken.id)).state, "queued");
    } finally {
      await offload.close();
      await setup.close();
      await locker.end();
      await dropSchema(schema);
    }
  });
});
