// A private primary and a streaming standby (pg_basebackup -R), for failover tests: the primary can
// be crashed, the standby promoted, and the old primary started again taking no writes (as a
// demoted primary is before it follows the new one, or a fenced one). Replication is synchronous
// (synchronous_standby_names = '*', synchronous_commit on by default), so a commit is answered
// only once the standby has flushed it: every transaction a client saw commit survives the
// failover. The shared server on 5432 is never touched; stop() removes both data directories.
import { mkdtempSync, readFileSync, rmSync, writeFileSync, chownSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { freePort } from "../support/ports.ts";
import { until } from "../support/until.ts";
import { asPostgres, asPostgresAsync, postgresUid } from "./postgres-server.ts";

export interface ReplicaNode {
  readonly port: number;
  /** A direct URL (not through the proxy), for the test's own checks. */
  readonly url: string;
}

export interface ReplicatedPair {
  readonly primary: ReplicaNode;
  readonly standby: ReplicaNode;
  /** The primary dies at once (pg_ctl stop -m immediate: no checkpoint, connections cut). */
  crashPrimary(): Promise<void>;
  /** The standby becomes a primary (pg_ctl promote, waiting until it takes writes). */
  promoteStandby(): Promise<void>;
  /**
   * The crashed primary starts again, taking no writes: "standby", in recovery (standby.signal)
   * following no one, as an old primary is while it is turned into a standby (reads answered,
   * writes and LISTEN refused with 25006); "read-only", as a primary fenced with
   * default_transaction_read_only (writes refused with 25006, LISTEN taken).
   */
  restartOldPrimary(as: "standby" | "read-only"): Promise<void>;
  stop(): void;
}

export async function startReplicatedPair(): Promise<ReplicatedPair> {
  const dir = mkdtempSync(join(tmpdir(), "offload-pg-pair-"));
  if (userInfo().uid === 0) {
    const { uid, gid } = postgresUid();
    chownSync(dir, uid, gid);
  }
  const [primaryData, standbyData] = [join(dir, "primary"), join(dir, "standby")];
  const [primaryPort, standbyPort] = [await freePort(), await freePort()];
  const settings = (port: number): string => `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1`;
  const start = (data: string, port: number, extra = ""): Promise<void> =>
    asPostgresAsync("pg_ctl", ["-D", data, "-o", settings(port) + extra, "-w", "-l", `${data}.log`, "start"]);
  const running = new Set<string>();
  const stopAll = (): void => {
    for (const data of running) {
      try {
        asPostgres("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"]);
      } catch {
        // already down (crashed by the test): nothing to stop
      }
    }
    running.clear();
    rmSync(dir, { recursive: true, force: true });
  };
  const node = (port: number): ReplicaNode => ({ port, url: `postgres://postgres@127.0.0.1:${port}/postgres` });
  try {
    // initdb's pg_hba.conf trusts replication connections from loopback, and wal_level = replica
    // with max_wal_senders = 10 is the default: nothing more to configure for streaming.
    asPostgres("initdb", ["-D", primaryData, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"]);
    await start(primaryData, primaryPort);
    running.add(primaryData);
    asPostgres("pg_basebackup", ["-D", standbyData, "-R", "-X", "stream", "-c", "fast", "-h", "127.0.0.1", "-p", String(primaryPort), "-U", "postgres"]);
    await start(standbyData, standbyPort);
    running.add(standbyData);
    // Made synchronous only now, with ALTER SYSTEM on the primary: had the standby copied the
    // setting, once promoted it would wait on a standby of its own that does not exist, and every
    // commit would hang.
    const primary = new pg.Client({ connectionString: node(primaryPort).url });
    await primary.connect();
    try {
      await primary.query("ALTER SYSTEM SET synchronous_standby_names = '*'");
      await primary.query("SELECT pg_reload_conf()");
      await until(async () => (await primary.query("SELECT 1 FROM pg_stat_replication WHERE sync_state = 'sync' AND state = 'streaming'")).rowCount === 1, "the standby streams synchronously", 50, 20_000);
    } finally {
      await primary.end();
    }
  } catch (error) {
    const logs = [primaryData, standbyData].map((data) => {
      try {
        return readFileSync(`${data}.log`, "utf8");
      } catch {
        return "";
      }
    });
    stopAll();
    throw new Error(`the replicated pair did not start: ${logs.join("\n---\n")}`, { cause: error });
  }
  return {
    primary: node(primaryPort),
    standby: node(standbyPort),
    async crashPrimary() {
      await asPostgresAsync("pg_ctl", ["-D", primaryData, "-m", "immediate", "-w", "stop"]);
      running.delete(primaryData);
    },
    async promoteStandby() {
      await asPostgresAsync("pg_ctl", ["-D", standbyData, "-w", "promote"]);
    },
    async restartOldPrimary(as) {
      if (as === "standby") {
        writeFileSync(join(primaryData, "standby.signal"), "");
        if (userInfo().uid === 0) {
          const { uid, gid } = postgresUid();
          chownSync(join(primaryData, "standby.signal"), uid, gid);
        }
      }
      await start(primaryData, primaryPort, as === "read-only" ? " -c default_transaction_read_only=on" : "");
      running.add(primaryData);
    },
    stop: stopAll,
  };
}
