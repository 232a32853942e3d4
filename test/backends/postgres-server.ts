// A private PostgreSQL server for tests that stop and start the database (the shared one on 5432
// is never touched). initdb into a temp dir owned by the postgres user, listen on a free loopback
// port, and remove everything on stop. PostgreSQL refuses to run as root, hence runuser.
import { execFile, execFileSync } from "node:child_process";
import { promisify } from "node:util";
import { chownSync, mkdtempSync, rmSync } from "node:fs";
import { freePort } from "../support/ports.ts";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";

const BIN = "/usr/lib/postgresql/15/bin";

export interface PrivateServer {
  readonly url: string;
  /**
   * Stops the server ("immediate" is a crash: no checkpoint, recovery at start) and starts it
   * again. Asynchronous, so clients in this process live through the outage.
   */
  restart(mode?: "fast" | "immediate"): Promise<void>;
  stop(): void;
}

function asPostgres(command: string, args: string[]): void {
  const argv = userInfo().uid === 0 ? ["runuser", "-u", "postgres", "--", join(BIN, command), ...args] : [join(BIN, command), ...args];
  const [file, ...rest] = argv;
  execFileSync(file ?? command, rest, { stdio: ["ignore", "ignore", "pipe"] });
}

async function asPostgresAsync(command: string, args: string[]): Promise<void> {
  const argv = userInfo().uid === 0 ? ["runuser", "-u", "postgres", "--", join(BIN, command), ...args] : [join(BIN, command), ...args];
  const [file, ...rest] = argv;
  await promisify(execFile)(file ?? command, rest);
}

function postgresUid(): { uid: number; gid: number } {
  const [uid, gid] = execFileSync("id", ["-u", "postgres"]).toString().trim().split(" ").concat(execFileSync("id", ["-g", "postgres"]).toString().trim());
  return { uid: Number(uid), gid: Number(gid) };
}

export async function startPrivateServer(): Promise<PrivateServer> {
  const dir = mkdtempSync(join(tmpdir(), "offload-pg-"));
  if (userInfo().uid === 0) {
    const { uid, gid } = postgresUid();
    chownSync(dir, uid, gid);
  }
  const data = join(dir, "data");
  const port = await freePort();
  asPostgres("initdb", ["-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"]);
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1`;
  const start = (): void => asPostgres("pg_ctl", ["-D", data, "-o", options, "-w", "-l", join(dir, "log"), "start"]);
  const stopWith = (mode: string): void => asPostgres("pg_ctl", ["-D", data, "-m", mode, "-w", "stop"]);
  start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    async restart(mode = "immediate") {
      await asPostgresAsync("pg_ctl", ["-D", data, "-m", mode, "-w", "stop"]);
      await asPostgresAsync("pg_ctl", ["-D", data, "-o", options, "-w", "-l", join(dir, "log"), "start"]);
    },
    stop() {
      try {
        stopWith("immediate");
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
