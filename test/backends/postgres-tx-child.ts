// Child process for the crash test in postgres-tx.postgres.test.ts: opens a transaction, writes an
// app row, enqueues a job inside it, reports both ids on stdout, then waits to be SIGKILLed before
// it can commit. Usage: node postgres-tx-child.ts <postgres url> <schema>
import pg from "pg";
import { Offload } from "../../src/index.ts";

const [url, schema] = process.argv.slice(2);
if (!url || !schema) throw new Error("usage: postgres-tx-child.ts <url> <schema>");

const offload = new Offload({ backend: `${url}?schema=${schema}` });
const send = offload.task({ name: "orders.confirm", run: (p: { order: number }) => p.order });
const client = new pg.Client({ connectionString: url });
await client.connect();
await client.query("BEGIN");
// Released only when this transaction ends: the parent waits on it to know the server rolled back.
await client.query("SELECT pg_advisory_xact_lock($1)", [process.pid]);
const order = await client.query<{ id: number }>(`INSERT INTO "${schema}".orders (note) VALUES ('from the child') RETURNING id`);
const orderId = order.rows[0]?.id ?? -1;
const job = await send.enqueue({ order: orderId }, { tx: client });
process.stdout.write(`${JSON.stringify({ orderId, jobId: job.id, pid: process.pid })}\n`);
// Stay in the open transaction until killed.
setInterval(() => {}, 60_000);
