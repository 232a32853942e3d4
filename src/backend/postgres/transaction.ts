// Transactional enqueue: the caller hands over its own open transaction, and the job rows are
// written through it, so they commit or roll back with the caller's own writes. Anything with
// `query(text, values)` works: a pg Client or PoolClient inside BEGIN, or a two-line adapter for
// Drizzle, Kysely or Prisma (docs/postgres.md). The result may be pg's `{ rows }` or a bare array.
import { ConfigError } from "../../core/errors.ts";
import type { Row } from "./rows.ts";
import { judged } from "./connection.ts";

export interface Queryable {
  query(text: string, values?: unknown[]): Promise<unknown>;
}

export type RunQuery = (text: string, values: unknown[]) => Promise<Row[]>;

function isQueryable(tx: unknown): tx is Queryable {
  return typeof tx === "object" && tx !== null && typeof (tx as { query?: unknown }).query === "function";
}

function rowsOf(result: unknown): Row[] {
  if (Array.isArray(result)) return result as Row[];
  if (typeof result === "object" && result !== null && Array.isArray((result as { rows?: unknown }).rows)) {
    return (result as { rows: Row[] }).rows;
  }
  throw new ConfigError("tx.query() must resolve to { rows } (node-postgres) or an array of rows");
}

/**
 * A pg Pool has query() too, but each call runs on whichever connection is free, outside any
 * transaction of the caller: the job would commit at once, whatever the caller then does. Told
 * apart by the counters every pg Pool has and a client has not.
 */
function isPool(tx: Queryable): boolean {
  const counts = tx as { totalCount?: unknown; idleCount?: unknown; waitingCount?: unknown };
  return typeof counts.totalCount === "number" && typeof counts.idleCount === "number" && typeof counts.waitingCount === "number";
}

/**
 * node-postgres clients (8.x) report where their session is: "I" idle, outside a transaction,
 * where each statement commits on its own (the same hazard as a Pool); "T" inside one; "E" inside
 * one that failed, where every statement is refused until ROLLBACK. ORM adapters do not say.
 * The status is the one after the last statement answered; statements still in flight run before
 * this enqueue (a client runs them in order), so a BEGIN sent without waiting for it counts, and
 * a COMMIT or ROLLBACK still in flight ends the transaction this enqueue would join. (Read through
 * the fields pg 8 keeps them in, so no deprecation warning is printed.) A client in pipeline mode
 * (`pipeline: true`, pg 8.23) sends each statement at once, and keeps those sent but not answered
 * in a queue of their own, after the one being answered: a ROLLBACK there was missed, and the job
 * was stored on its own after it, a job for rows that were never written.
 * pg rejects a failed statement on the server's error message, before the ReadyForQuery after it
 * brings the new status: a caller that awaited the failure may call us in between, when the status
 * still reads "T". That window is the only time pg has neither a statement in flight nor
 * readyForQuery set; the transaction has then failed ("E"), or ended if the failed statement was
 * its COMMIT ("I"). Both are refused, so "E" is the safe reading.
 */
function transactionStatus(tx: Queryable): string | undefined {
  const client = tx as { getTransactionStatus?: unknown; _activeQuery?: unknown; _sentQueryQueue?: unknown; _queryQueue?: unknown; readyForQuery?: unknown; _connecting?: unknown };
  if (typeof client.getTransactionStatus !== "function") return undefined;
  // null until the connection's first ReadyForQuery: a client still connecting has no transaction
  // yet (it used to pass unread, and the job committed on its own once the connection was made).
  const reported: unknown = (client.getTransactionStatus as () => unknown).call(tx) ?? "I";
  if (typeof reported !== "string") return undefined;
  const failurePending = client.readyForQuery === false && client._activeQuery == null && client._connecting !== true;
  const pending = [client._activeQuery, ...queued(client._sentQueryQueue), ...queued(client._queryQueue)];
  let status = failurePending && reported === "T" ? "E" : reported;
  for (const query of pending) {
    const text = typeof query === "object" && query !== null ? (query as { text?: unknown }).text : undefined;
    if (typeof text !== "string") continue;
    status = statusAfter(text, status);
  }
  return status;
}

/** One of pg's queues of statements, if it is one. */
function queued(queue: unknown): unknown[] {
  return Array.isArray(queue) ? (queue as unknown[]) : [];
}

/** Transaction control, as PostgreSQL spells it: the optional WORK or TRANSACTION, then the rest. */
const BEGINS = /^\s*(?:BEGIN|START\s+TRANSACTION)\b/i;
const ENDS = /^\s*(?:COMMIT|END|ROLLBACK|ABORT)(?:\s+(?:WORK|TRANSACTION))?(?:\s+AND\s+(NO\s+)?(CHAIN))?\s*;?\s*$/i;
const TO_SAVEPOINT = /^\s*ROLLBACK(?:\s+(?:WORK|TRANSACTION))?\s+TO\s/i;
const PREPARES = /^\s*PREPARE\s+TRANSACTION\s/i;

/**
 * The session's status once `text` has run: BEGIN opens a transaction; COMMIT, END, ROLLBACK,
 * ABORT (WORK or TRANSACTION or not) and PREPARE TRANSACTION close it, unless AND CHAIN opens the
 * next at once; ROLLBACK TO a savepoint leaves a failed transaction usable again. Any other
 * statement leaves the status as it was (a statement that fails is not foreseen).
 */
function statusAfter(text: string, status: string): string {
  if (BEGINS.test(text)) return status === "E" ? "E" : "T"; // in a failed transaction, BEGIN fails too
  const ended = ENDS.exec(text);
  if (ended) return ended[2] !== undefined && ended[1] === undefined ? "T" : "I";
  if (TO_SAVEPOINT.test(text)) return status === "I" ? "I" : "T";
  if (PREPARES.test(text)) return "I";
  return status;
}

export function transactionRunner(tx: unknown): RunQuery {
  if (!isQueryable(tx)) {
    throw new ConfigError("enqueue({ tx }) on PostgreSQL needs the caller's transaction: an object with query(text, values), e.g. a pg client after BEGIN");
  }
  if (isPool(tx)) {
    throw new ConfigError("enqueue({ tx }) was given a pg Pool, which runs each statement on its own: pass the client of your transaction (const client = await pool.connect(); await client.query(\"BEGIN\"))");
  }
  const status = transactionStatus(tx);
  if (status === "I") {
    throw new ConfigError("enqueue({ tx }) was given a pg client outside a transaction, where the job would commit at once: run BEGIN on it first");
  }
  if (status === "E") {
    throw new ConfigError("enqueue({ tx }) was given a pg client whose transaction has failed: roll it back");
  }
  return async (text, values) => {
    try {
      return rowsOf(await tx.query(text, values));
    } catch (error) {
      // A read-only transaction (BEGIN READ ONLY, or a client of a standby's pool) can never take
      // the job: say so, rather than let it pass for a server to try again later (25006 is that
      // for the adapter's own connections, which a failover can leave on a standby).
      const driver = judged(error);
      if (driver instanceof Error && (driver as { code?: unknown }).code === "25006") {
        throw new ConfigError("enqueue({ tx }) was given a read-only transaction (BEGIN READ ONLY, or a standby's connection): enqueue in a read-write transaction on the primary", { cause: error });
      }
      throw error;
    }
  };
}
