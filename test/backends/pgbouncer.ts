// A private PgBouncer for the tests of Offload behind a connection pooler: Debian's pgbouncer
// binary on a free loopback port, in front of the shared test server, with its own config in a
// temp dir; stopped (SIGTERM: immediate shutdown) and removed afterwards. PgBouncer refuses to
// run as root, so as root it is told to switch to the postgres user (-u).
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { freePort } from "../support/ports.ts";
import { until } from "../support/until.ts";

export const PGBOUNCER_BIN = process.env["OFFLOAD_TEST_PGBOUNCER"] ?? "/usr/sbin/pgbouncer";

export interface PgBouncer {
  /** postgres://… of the pooler, same database and user as `target`. */
  readonly url: string;
  /** postgres://… of PgBouncer's admin console (database `pgbouncer`), for SHOW, KILL, RECONNECT… */
  readonly adminUrl: string;
  /** Stops PgBouncer (SIGTERM: every client connection drops) and starts it again on the same port. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/**
 * Starts PgBouncer in front of `target` (a postgres:// URL with trust auth). `poolSize` server
 * sessions per database and user: fewer than the clients, so clients share sessions, as in
 * production.
 */
export async function startPgBouncer(
  target: string,
  options: { mode: "transaction" | "session"; poolSize: number; settings?: Readonly<Record<string, string | number>> },
): Promise<PgBouncer> {
  const server = new URL(target);
  const user = decodeURIComponent(server.username || "postgres");
  const database = server.pathname.slice(1) || "postgres";
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "offload-pgbouncer-"));
  const config = join(dir, "pgbouncer.ini");
  writeFileSync(join(dir, "users.txt"), `"${user}" ""\n`);
  writeFileSync(config, [
    "[databases]",
    `${database} = host=${server.hostname} port=${server.port || "5432"} dbname=${database}`,
    "[pgbouncer]",
    "listen_addr = 127.0.0.1",
    `listen_port = ${port}`,
    "unix_socket_dir =",
    "auth_type = trust",
    `auth_file = ${join(dir, "users.txt")}`,
    `pool_mode = ${options.mode}`,
    `default_pool_size = ${options.poolSize}`,
    "max_client_conn = 1000",
    `admin_users = ${user}`,
    ...Object.entries(options.settings ?? {}).map(([name, value]) => `${name} = ${value}`),
    "",
  ].join("\n"));
  const args = userInfo().uid === 0 ? ["-u", "postgres", config] : [config];
  let child = await spawnPgBouncer(args, port, () => rmSync(dir, { recursive: true, force: true }));
  const base = `postgres://${encodeURIComponent(user)}@127.0.0.1:${port}`;
  return {
    url: `${base}/${database}`,
    adminUrl: `${base}/pgbouncer`,
    async restart() {
      await child.stop();
      child = await spawnPgBouncer(args, port, () => {});
    },
    async stop() {
      await child.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Runs pgbouncer with `args`, resolving once `port` accepts connections; `failed` cleans up if it exits at start. */
async function spawnPgBouncer(args: string[], port: number, failed: () => void): Promise<{ stop(): Promise<void> }> {
  const child: ChildProcess = spawn(PGBOUNCER_BIN, args, { stdio: ["ignore", "ignore", "pipe"] });
  let output = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4_000);
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await exited;
  };
  // Up when its port accepts a connection; a config it refuses ends the process first.
  try {
    await until(async () => {
      if (child.exitCode !== null) throw new Error(`pgbouncer exited at start: ${output}`);
      return accepts(port);
    }, "pgbouncer accepting connections", 20);
  } catch (error) {
    await stop();
    failed();
    throw error;
  }
  return { stop };
}
