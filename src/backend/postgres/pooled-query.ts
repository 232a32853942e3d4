// Runs a statement on a pooled connection under the plan cache mode it needs.
//
// Hot statements (claim, complete, heartbeat, enqueue…) are prepared once per connection. Left to
// itself PostgreSQL kept re-planning them for every execution: its generic plan looked dearer on
// paper than the custom ones, though the two are the same index walks. Planning was a third of a
// one-job claim (0.25 of 0.7 ms). Those statements run with plan_cache_mode = force_generic_plan,
// and are planned once per connection. Every other statement (list-jobs with optional filters,
// maintenance) keeps custom plans made for its actual parameters. The setting is per session, so a
// connection switches (one SET) only when it goes from one kind of statement to the other: rare,
// since a busy worker's connections run almost nothing but hot statements.
// A generic plan is kept until the table's statistics change, and one made while the table was
// empty chose to scan it, cheapest for no rows, ruinous for a million. The hot statements are
// written to reach jobs through indexes, so they also run with enable_seqscan off: the planner
// then takes the index path whatever the table's size when it planned.
// Behind a transaction pooler none of this is ours to set: a session setting would stay with the
// server session the pooler lent us and reach whoever it serves next, and a named statement would
// be prepared on one session and run on another ("prepared statement … does not exist", or
// "already exists"). There statements run unnamed, on the server's settings (mode "as-is"), each
// planned for its own parameters.
import type pg from "pg";

type Mode = "generic" | "custom";

/** What puts a session in each mode (one round trip, simple protocol). */
export const MODE_SETTINGS: Readonly<Record<Mode, string>> = {
  generic: "SET plan_cache_mode = force_generic_plan; SET enable_seqscan = off",
  custom: "RESET plan_cache_mode; RESET enable_seqscan",
};

/** The mode each pooled connection is in; a connection not in the map has the server default. */
const modes = new WeakMap<pg.PoolClient, Mode>();

/** Puts a pooled connection in `mode`, unless it is in it already (migrations want "custom"). */
export async function useMode(client: pg.PoolClient, mode: Mode): Promise<void> {
  if ((modes.get(client) ?? "custom") === mode) return;
  await client.query(MODE_SETTINGS[mode]);
  modes.set(client, mode);
}

export async function pooledQuery<R extends pg.QueryResultRow>(pool: pg.Pool, config: pg.QueryConfig, mode: Mode | "as-is"): Promise<R[]> {
  const client = await pool.connect();
  // A connection that dies while checked out emits "error" on its client, which with no listener
  // would crash the process; the query in flight rejects with the same error, which is what the
  // caller hears (pool.query guards the same way).
  client.on("error", ignore);
  try {
    if (mode !== "as-is") await useMode(client, mode);
    const rows = (await client.query<R>(config)).rows;
    client.off("error", ignore);
    client.release();
    return rows;
  } catch (error) {
    client.off("error", ignore);
    // As pool.query does: a connection that saw an error is not handed out again.
    client.release(error instanceof Error ? error : true);
    if (error instanceof Error) serverPids.set(error, (client as { processID?: number | null }).processID ?? undefined);
    throw error;
  }
}

const serverPids = new WeakMap<Error, number | undefined>();

/**
 * The server process of the connection a pooled statement failed on. Given up on by its reply
 * timeout, a statement goes on running there (the server reads the connection's end only once it
 * is done) and may still commit: postgres-backend.ts stops it before it looks for what it did.
 */
export function serverPidOf(error: unknown): number | undefined {
  return error instanceof Error ? serverPids.get(error) : undefined;
}

function ignore(): void {}
