// Transactional enqueue: a job enqueued with { tx } exists exactly when the caller's transaction
// commits. Commit → it runs; rollback → it never exists; the process dying before commit → neither
// the app's row nor the job.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { Socket } from "node:net";
import { createInterface } from "node:readline";
import { describe, it } from "node:test";
import pg from "pg";
import { BackendUnavailableError, ConfigError, Offload, type Task } from "../../src/index.ts";
import { nextEvent, recordEvents } from "../../src/testing/index.ts";
import { POSTGRES_URL, withOrdersSchema } from "./postgres-helpers.ts";

interface Fixture {
  readonly schema: string;
  readonly offload: Offload;
  readonly client: pg.Client;
}

function withFixture(body: (f: Fixture) => Promise<void>): Promise<void> {
  return withOrdersSchema("tx", async ({ schema, offload }) => {
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    try {
      await body({ schema, offload, client });
    } finally {
      await client.end();
    }
  });
}

/**
 * A socket for a pg client that can hold back what the server sends after an ErrorResponse: once
 * armed, the bytes up to the end of the next error message reach the client, and the rest (the
 * ReadyForQuery that tells the new transaction status) wait for release(). pg rejects the failed
 * statement on the error alone, so this opens, every time, the window that a busy machine opens
 * now and then by splitting the two messages across reads.
 */
class ErrorGate {
  readonly socket = new Socket();
  #armed = false;
  #held: Buffer[] | undefined;
  #pending = Buffer.alloc(0); // bytes of a message not complete yet
  #deliver: (chunk: Buffer) => boolean = () => false;

  constructor() {
    const emit = this.socket.emit.bind(this.socket);
    this.#deliver = (chunk) => emit("data", chunk);
    this.socket.emit = ((event: string | symbol, ...args: unknown[]): boolean =>
      event === "data" ? this.#receive(args[0] as Buffer) : emit(event, ...args)) as Socket["emit"];
  }

  arm(): void {
    this.#armed = true;
  }

  release(): void {
    const held = this.#held ?? [];
    this.#held = undefined;
    for (const chunk of held) this.#deliver(chunk);
  }

  #receive(chunk: Buffer): boolean {
    if (this.#held) {
      this.#held.push(chunk);
      return true;
    }
    if (!this.#armed) return this.#deliver(chunk);
    // Every message from the server is a type byte and a length that counts itself.
    const bytes = Buffer.concat([this.#pending, chunk]);
    let at = 0;
    while (at + 5 <= bytes.length) {
      const end = at + 1 + bytes.readInt32BE(at + 1);
      if (end > bytes.length) break;
      const isError = bytes[at] === 0x45; // 'E'
      at = end;
      if (isError) {
        this.#armed = false;
        this.#pending = Buffer.alloc(0);
        this.#held = at < bytes.length ? [bytes.subarray(at)] : [];
        return this.#deliver(bytes.subarray(0, at));
      }
    }
    this.#pending = bytes.subarray(at);
    return at > 0 ? this.#deliver(bytes.subarray(0, at)) : true;
  }
}

/** An enqueue's rejection: a ConfigError whose message matches. */
function refused(pattern: RegExp): (error: unknown) => boolean {
  return (error) => error instanceof ConfigError && pattern.test(error.message);
}

/**
 * With `before` (a statement or the connect) still on its way, sends a BEGIN and enqueues with
 * `client` as tx, without waiting between: the enqueue must join that transaction, so the
 * ROLLBACK that follows leaves no job.
 */
async function joinsBeginOnItsWay(offload: Offload, task: Task<{ order: number }, number>, client: pg.Client, before: Promise<unknown>): Promise<void> {
  const begun = client.query("BEGIN");
  const enqueued = task.enqueue({ order: 2 }, { tx: client });
  await before;
  await begun;
  await enqueued;
  await client.query("ROLLBACK");
  assert.equal((await offload.jobs.list()).length, 0, "the job joined the transaction and was rolled back with it");
}

async function orderExists(client: pg.Client, schema: string, id: number): Promise<boolean> {
  return (await client.query(`SELECT 1 FROM "${schema}".orders WHERE id = $1`, [id])).rowCount === 1;
}

describe("postgres: transactional enqueue", () => {
  it("commit: the row and the job appear together, and the job runs", () => withFixture(async ({ schema, offload, client }) => {
    const confirm = offload.task({ name: "orders.confirm", run: (p: { order: number }) => ({ confirmed: p.order }) });
    const worker = offload.worker();
    await worker.start();
    await client.query("BEGIN");
    const { rows } = await client.query<{ id: number }>(`INSERT INTO "${schema}".orders (note) VALUES ('a') RETURNING id`);
    const orderId = rows[0]?.id ?? -1;
    const job = await confirm.enqueue({ order: orderId }, { tx: client });
    const outside = await offload.jobs.find(job.id);
    assert.equal(outside, undefined, "invisible to others before commit");
    await client.query("COMMIT");
    assert.deepEqual(await job.result({ timeout: "10s" }), { confirmed: orderId });
    assert.ok(await orderExists(client, schema, orderId));
  }));

  it("enqueueMany with tx and idempotency keys joins the transaction too", () => withFixture(async ({ offload, client }) => {
    const confirm = offload.task({ name: "orders.confirm", run: (p: { order: number }) => p.order });
    await client.query("BEGIN");
    const handles = await confirm.enqueueMany([{ order: 1 }, { order: 2 }], { tx: client, key: "same" });
    assert.equal(handles[0]?.id, handles[1]?.id, "one job per key within the transaction");
    await client.query("COMMIT");
    assert.equal(await handles[0]?.state(), "queued");
  }));

  it("enqueueMany with per-job options joins the tx they name, and refuses jobs split across transactions", () => withFixture(async ({ offload, client }) => {
    const confirm = offload.task({ name: "orders.confirm", run: (p: { order: number }) => p.order });
    await client.query("BEGIN");
    const handles = await confirm.enqueueMany([{ order: 1 }, { order: 2 }], (p) => ({ tx: client, priority: p.order }));
    assert.equal(await offload.jobs.find(handles[0]?.id ?? ""), undefined, "invisible to others before commit");
    await client.query("ROLLBACK");
    for (const h of handles) assert.equal(await offload.jobs.find(h.id), undefined, "rolled back with the caller's transaction");
    await assert.rejects(
      confirm.enqueueMany([{ order: 3 }, { order: 4 }], (p) => (p.order === 3 ? { tx: client } : {})),
      (error: unknown) => error instanceof ConfigError && /same tx/.test(error.message),
    );
    assert.equal((await offload.jobs.list()).length, 0, "nothing of the refused batch was written");
  }));

  it("tx: null is no transaction, as undefined is: the job is stored at once", () => withFixture(async ({ offload }) => {
    const confirm = offload.task({ name: "orders.confirm", run: (p: { order: number }) => p.order });
    const one = await confirm.enqueue({ order: 1 }, { tx: null });
    const many = await confirm.enqueueMany([{ order: 2 }], { tx: null });
    const perJob = await confirm.enqueueMany([{ order: 3 }], () => ({ tx: null }));
    for (const h of [one, ...many, ...perJob]) assert.equal(await h.state(), "queued");
  }));

  it("a pg Pool given as tx is refused: it is no transaction, and the job would commit at once", () => withFixture(async ({ offload }) => {
    const confirm = offload.task({ name: "orders.confirm", run: (p: { order: number }) => p.order });
    const pool = new pg.Pool({ connectionString: POSTGRES_URL, max: 1 });
    try {
      await assert.rejects(confirm.enqueue({ order: 1 }, { tx: pool }), (error: unknown) => error instanceof ConfigError && /pg Pool/.test(error.message));
      assert.equal((await offload.jobs.list()).length, 0);
    } finally {
      await pool.end();
    }
  }));

  it("a client whose failed statement pg has rejected, before the server's ReadyForQuery arrives, is refused as failed", () => withOrdersSchema("tx", async ({ offload }) => {
    const gate = new ErrorGate();
    const client = new pg.Client({ connectionString: POSTGRES_URL, stream: () => gate.socket });
    await client.connect();
    try {
      const confirm = offload.task({ name: "orders.confirm", run: (p: { order: number }) => p.order });
      await client.query("BEGIN");
      gate.arm();
      await assert.rejects(client.query("SELECT 1/0"), /division by zero/);
      // The window: pg still reports the status of before the failure.
      assert.equal(client.getTransactionStatus(), "T");
      const outcome = confirm.enqueue({ order: 1 }, { tx: client }).then(() => undefined, (error: unknown) => error);
      // The enqueue reads the status before any I/O of its own, so by the next turn it has. The
      // server's answer is let through then, either way: a statement sent on this client would
      // wait for it, and fail with the server's "transaction is aborted" instead.
      await new Promise((resolve) => setImmediate(resolve));
      gate.release();
      const error = await outcome;
      assert.ok(error instanceof ConfigError && /failed: roll it back/.test(error.message), `refused as failed, got ${String(error)}`);
      await client.query("ROLLBACK");
      assert.equal(client.getTransactionStatus(), "I");
      assert.equal((await offload.jobs.list()).length, 0);
    } finally {
      gate.release();
      await client.end();
    }
  }));

  it("a pg client outside BEGIN, or in a failed transaction, is refused: the job would commit at once, or never", () => withFixture(async ({ offload, client }) => {
    const confirm = offload.task({ name: "orders.confirm", run: (p: { order: number }) => p.order });
    await assert.rejects(confirm.enqueue({ order: 1 }, { tx: client }), (error: unknown) => error instanceof ConfigError && /outside a transaction.*BEGIN/.test(error.message));
    await client.query("BEGIN");
    await assert.rejects(client.query("SELECT 1/0"), /division by zero/);
    await assert.rejects(confirm.enqueue({ order: 2 }, { tx: client }), (error: unknown) => error instanceof ConfigError && /failed: roll it back/.test(error.message));
    await client.query("ROLLBACK");
    assert.equal((await offload.jobs.list()).length, 0);
    await client.query("BEGIN");
    await confirm.enqueue({ order: 3 }, { tx: client });
    await client.query("COMMIT");
    assert.equal((await offload.jobs.list()).length, 1, "inside BEGIN it is accepted");
    // pg runs a client's statements in order: a BEGIN not yet answered comes before the enqueue.
    const begun = client.query("BEGIN");
    const queued = confirm.enqueue({ order: 4 }, { tx: client });
    await begun;
    await queued;
    await client.query("ROLLBACK");
    assert.equal((await offload.jobs.list()).length, 1, "rolled back with the transaction");
    // Another statement in flight changes nothing: outside BEGIN is still outside.
    const selecting = client.query("SELECT pg_sleep(0.01)");
    await assert.rejects(confirm.enqueue({ order: 5 }, { tx: client }), refused(/outside a transaction/));
    await selecting;
    assert.equal((await offload.jobs.list()).length, 1);
  }));

  it("a read-only transaction is refused with a ConfigError that says so, not taken for a server to try again later", () => withFixture(async ({ offload, client }) => {
    const confirm = offload.task({ name: "orders.confirm", run: (p: { order: number }) => p.order });
    await client.query("BEGIN READ ONLY");
    const refused = await confirm.enqueue({ order: 1 }, { tx: client }).then(() => undefined, (error: unknown) => error);
    assert.ok(refused instanceof ConfigError && /read-only transaction/.test(refused.message), `a ConfigError, got ${String(refused)}`);
    assert.ok(refused.cause instanceof pg.DatabaseError && refused.cause.code === "25006", "pg's error as its cause");
    await client.query("ROLLBACK");
    assert.equal((await offload.jobs.list()).length, 0);
  }));

  it("a serialization failure in the app's repeatable read transaction reaches the app as pg's 40001, for it to run the transaction again, not as the backend unavailable", () => withFixture(async ({ offload, client }) => {
    const confirm = offload.task({ name: "orders.confirm", run: (p: { order: number }) => p.order });
    await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ");
    await client.query("SELECT 1"); // the transaction's snapshot
    // Another request takes the key and commits after that snapshot: the app's insert of the same
    // key conflicts with a row it cannot see, which repeatable read answers with 40001.
    await confirm.enqueue({ order: 1 }, { key: "order-1" });
    const failed = await confirm.enqueue({ order: 1 }, { tx: client, key: "order-1" }).then(() => undefined, (error: unknown) => error);
    await client.query("ROLLBACK");
    assert.ok(failed instanceof pg.DatabaseError && failed.code === "40001", `pg's serialization failure, got ${String(failed)}`);
    assert.equal((await offload.jobs.list()).length, 1);
  }));

  it("an enqueue of Offload's own that the server rolls back at every send (40001) fails as the backend unavailable, after its resends", () => withFixture(async ({ schema, offload, client }) => {
    const confirm = offload.task({ name: "orders.confirm", run: (p: { order: number }) => p.order });
    await client.query(`CREATE FUNCTION "${schema}".contended() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'contended' USING ERRCODE = '40001'; END $$`);
    await client.query(`CREATE TRIGGER contended BEFORE INSERT ON "${schema}".jobs FOR EACH ROW EXECUTE FUNCTION "${schema}".contended()`);
    const failed = await confirm.enqueue({ order: 1 }).then(() => undefined, (error: unknown) => error);
    assert.ok(failed instanceof BackendUnavailableError && failed.cause instanceof pg.DatabaseError && failed.cause.code === "40001", `unavailable, got ${String(failed)}`);
  }));

  it("transaction control still in flight is read as PostgreSQL runs it: ROLLBACK TO a savepoint, COMMIT WORK, AND CHAIN", () => withFixture(async ({ offload, client }) => {
    const confirm = offload.task({ name: "orders.confirm", run: (p: { order: number }) => p.order });
    const stored = async (): Promise<number[]> => (await offload.jobs.list()).map((j) => (j.payload as { order: number }).order).sort((a, b) => a - b);
    // An enqueue made while `statement` is still in flight on the client (sent first: pg runs it first).
    const behind = (statement: string, order: number): { sent: Promise<unknown>; enqueued: Promise<unknown> } =>
      ({ sent: client.query(statement), enqueued: confirm.enqueue({ order }, { tx: client }) });
    // A failed statement, then a rollback to the savepoint before it, not yet answered: the
    // transaction is usable again by the time the enqueue runs, and the job commits with it.
    await client.query("BEGIN");
    await client.query("SAVEPOINT before_risk");
    await assert.rejects(client.query("SELECT 1/0"), /division by zero/);
    // A BEGIN in a failed transaction fails too: still failed.
    const begun = behind("BEGIN", 0);
    await assert.rejects(begun.enqueued, refused(/failed: roll it back/));
    await assert.rejects(begun.sent, /current transaction is aborted/);
    const rolledBack = behind("ROLLBACK TO SAVEPOINT before_risk", 1);
    await rolledBack.sent;
    await rolledBack.enqueued;
    await client.query("COMMIT");
    assert.deepEqual(await stored(), [1], "the job joined the transaction, which committed");
    // COMMIT WORK (and END TRANSACTION) in flight end the transaction: the job would commit on its own.
    for (const ending of ["COMMIT WORK", "END TRANSACTION", "ROLLBACK TRANSACTION AND NO CHAIN"]) {
      await client.query("BEGIN");
      const ended = behind(ending, 2);
      await assert.rejects(ended.enqueued, refused(/outside a transaction/), ending);
      await ended.sent;
    }
    // AND CHAIN opens the next transaction at once: the job goes with that one.
    await client.query("BEGIN");
    const chained = behind("COMMIT AND CHAIN", 3);
    await chained.sent;
    await chained.enqueued;
    await client.query("ROLLBACK");
    assert.deepEqual(await stored(), [1], "rolled back with the chained transaction");
  }));

  it("a pg client in pipeline mode: statements already sent and not yet answered count as run, a ROLLBACK among them included", () => withOrdersSchema("tx", async ({ schema, offload }) => {
    const confirm = offload.task({ name: "orders.confirm", run: (p: { order: number }) => p.order });
    // pipeline: true sends every statement at once; those after the first wait for their answers
    // in a queue of their own (pg 8.23), not in the queue of statements not yet sent.
    const client = new pg.Client({ connectionString: POSTGRES_URL, pipeline: true });
    await client.connect();
    try {
      await client.query("BEGIN");
      const inserted = client.query(`INSERT INTO "${schema}".orders (note) VALUES ('a')`);
      const rolledBack = client.query("ROLLBACK");
      await assert.rejects(confirm.enqueue({ order: 1 }, { tx: client }), refused(/outside a transaction/));
      await inserted;
      await rolledBack;
      assert.equal((await offload.jobs.list()).length, 0, "no job without the app's row: the rollback ran before the enqueue would have");
      // A BEGIN still on its way counts the same: the job joins that transaction.
      await joinsBeginOnItsWay(offload, confirm, client, client.query("SELECT 1"));
    } finally {
      await client.end();
    }
  }));

  it("a pg client still connecting has no transaction yet: refused, unless a BEGIN waits behind its connect", () => withOrdersSchema("tx", async ({ offload }) => {
    const confirm = offload.task({ name: "orders.confirm", run: (p: { order: number }) => p.order });
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    const connected = client.connect();
    try {
      await assert.rejects(confirm.enqueue({ order: 1 }, { tx: client }), refused(/outside a transaction/));
      await connected;
      assert.equal((await offload.jobs.list()).length, 0, "no job stored on its own");
    } finally {
      await client.end();
    }
    const later = new pg.Client({ connectionString: POSTGRES_URL });
    const connecting = later.connect();
    try {
      await joinsBeginOnItsWay(offload, confirm, later, connecting);
    } finally {
      await later.end();
    }
  }));

  it("rollback: no job, ever", () => withFixture(async ({ schema, offload, client }) => {
    const confirm = offload.task({ name: "orders.confirm", run: (p: { order: number }) => p.order });
    const worker = offload.worker();
    const seen = recordEvents(worker);
    await worker.start();
    await client.query("BEGIN");
    const { rows } = await client.query<{ id: number }>(`INSERT INTO "${schema}".orders (note) VALUES ('b') RETURNING id`);
    const ghost = await confirm.enqueue({ order: rows[0]?.id ?? -1 }, { tx: client });
    await client.query("ROLLBACK");
    // A committed job enqueued afterwards runs to the end: the worker has looked at the queue since.
    const real = await confirm.enqueue({ order: 42 });
    assert.equal(await real.result({ timeout: "10s" }), 42);
    assert.equal(await offload.jobs.find(ghost.id), undefined);
    assert.ok(!seen.some((e) => e.job.id === ghost.id), "the worker never saw the rolled-back job");
    assert.equal((await offload.jobs.counts()).reduce((n, q) => n + Object.values(q.counts).reduce((a, b) => a + b, 0), 0), 1);
  }));

  it("a crash before commit (SIGKILL) leaves neither the app's row nor the job", () => withFixture(async ({ schema, offload, client }) => {
    offload.task({ name: "orders.confirm", run: (p: { order: number }) => p.order });
    const child = spawn(process.execPath, [new URL("./postgres-tx-child.ts", import.meta.url).pathname, POSTGRES_URL, schema], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const exited = once(child, "exit");
    const lines = createInterface({ input: child.stdout });
    const [line] = (await once(lines, "line")) as [string];
    const reported = JSON.parse(line) as { orderId: number; jobId: string; pid: number };
    child.kill("SIGKILL");
    await exited;
    // The child held an advisory lock inside its transaction: we get it once the server has
    // noticed the dead connection and rolled that transaction back.
    await client.query("SELECT pg_advisory_lock($1)", [reported.pid]);
    await client.query("SELECT pg_advisory_unlock($1)", [reported.pid]);
    assert.equal(await orderExists(client, schema, reported.orderId), false);
    assert.equal(await offload.jobs.find(reported.jobId), undefined);
    // And no worker will ever get it: the queue is empty.
    const worker = offload.worker();
    await worker.start();
    const control = offload.task({ name: "control", run: () => "ok" });
    const done = nextEvent(worker, "succeeded");
    await control.enqueue(null);
    assert.equal((await done).job.task, "control");
    assert.deepEqual((await offload.jobs.list()).map((j) => j.task), ["control"]);
  }));
});
