// A private PostgreSQL server for tests that stop and start the database (the shared one on 5432
// is never touched). initdb into a temp dir owned by the postgres user, listen on a free loopback
// port, and remove everything on stop. PostgreSQL refuses to run as root, hence runuser.
// With `tls`, the server also speaks TLS (ssl = on) with a certificate for 127.0.0.1 and localhost
// signed by a CA made here (as a managed provider's private CA), and with `tls.only`, pg_hba
// accepts TCP connections over TLS only (hostssl), as providers that require TLS do.
import { execFile, execFileSync } from "node:child_process";
import { promisify } from "node:util";
import { appendFileSync, chmodSync, chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { freePort } from "../support/ports.ts";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";

export const BIN = "/usr/lib/postgresql/15/bin";

export interface PrivateServerOptions {
  /** Serve TLS; `only`: refuse TCP connections that do not use it (hostssl-only pg_hba). */
  readonly tls?: { readonly only?: boolean };
}

export interface PrivateServer {
  readonly url: string;
  /** With `tls`: the CA that signed the server's certificate (PEM), for sslrootcert=. */
  readonly ca: string | undefined;
  /**
   * Stops the server ("immediate" is a crash: no checkpoint, recovery at start) and starts it
   * again. Asynchronous, so clients in this process live through the outage.
   */
  restart(mode?: "fast" | "immediate"): Promise<void>;
  stop(): void;
}

/** Runs a PostgreSQL program as the postgres user (the server refuses to run as root). */
export function asPostgres(command: string, args: string[]): void {
  const argv = userInfo().uid === 0 ? ["runuser", "-u", "postgres", "--", join(BIN, command), ...args] : [join(BIN, command), ...args];
  const [file, ...rest] = argv;
  execFileSync(file ?? command, rest, { stdio: ["ignore", "ignore", "pipe"] });
}

export async function asPostgresAsync(command: string, args: string[]): Promise<void> {
  const argv = userInfo().uid === 0 ? ["runuser", "-u", "postgres", "--", join(BIN, command), ...args] : [join(BIN, command), ...args];
  const [file, ...rest] = argv;
  await promisify(execFile)(file ?? command, rest);
}

export function postgresUid(): { uid: number; gid: number } {
  const [uid, gid] = execFileSync("id", ["-u", "postgres"]).toString().trim().split(" ").concat(execFileSync("id", ["-g", "postgres"]).toString().trim());
  return { uid: Number(uid), gid: Number(gid) };
}

/** An openssl command, its output discarded (it reports progress on stderr). */
function openssl(args: string[]): void {
  execFileSync("openssl", args, { stdio: ["ignore", "ignore", "pipe"] });
}

/**
 * A CA, and a server certificate and key it signed for 127.0.0.1 and localhost, in `dir`. The key
 * is the server's alone (mode 0600, owned by the user the server runs as): PostgreSQL refuses to
 * start with a key others may read.
 */
export function makeCertificates(dir: string, name = "offload test CA"): { ca: string; cert: string; key: string } {
  const [ca, caKey, cert, key, csr, ext] = ["ca.crt", "ca.key", "server.crt", "server.key", "server.csr", "san.cnf"].map((f) => join(dir, f)) as [string, string, string, string, string, string];
  openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", caKey, "-out", ca, "-days", "2", "-subj", `/CN=${name}`]);
  openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1"]);
  writeFileSync(ext, "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  openssl(["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", caKey, "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", ext]);
  chmodSync(key, 0o600);
  if (userInfo().uid === 0) {
    const { uid, gid } = postgresUid();
    for (const file of [ca, cert, key]) chownSync(file, uid, gid);
  }
  return { ca, cert, key };
}

export async function startPrivateServer(options: PrivateServerOptions = {}): Promise<PrivateServer> {
  const dir = mkdtempSync(join(tmpdir(), "offload-pg-"));
  if (userInfo().uid === 0) {
    const { uid, gid } = postgresUid();
    chownSync(dir, uid, gid);
  }
  const data = join(dir, "data");
  const port = await freePort();
  asPostgres("initdb", ["-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"]);
  let ca: string | undefined;
  if (options.tls) {
    const files = makeCertificates(dir);
    ca = files.ca;
    appendFileSync(join(data, "postgresql.conf"), `\nssl = on\nssl_cert_file = '${files.cert}'\nssl_key_file = '${files.key}'\n`);
    if (options.tls.only) {
      // TCP over TLS only; the Unix socket (pg_ctl's own checks) stays open.
      writeFileSync(join(data, "pg_hba.conf"), "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 0.0.0.0/0 reject\n");
    }
    // Written by root: the server must still read them.
    if (userInfo().uid === 0) {
      const { uid, gid } = postgresUid();
      for (const file of ["postgresql.conf", "pg_hba.conf"]) chownSync(join(data, file), uid, gid);
    }
  }
  const settings = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1`;
  const start = (): void => asPostgres("pg_ctl", ["-D", data, "-o", settings, "-w", "-l", join(dir, "log"), "start"]);
  const stopWith = (mode: string): void => asPostgres("pg_ctl", ["-D", data, "-m", mode, "-w", "stop"]);
  try {
    start();
  } catch (error) {
    const log = (() => {
      try {
        return readFileSync(join(dir, "log"), "utf8");
      } catch {
        return "";
      }
    })();
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`PostgreSQL did not start: ${log}`, { cause: error });
  }
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    ca,
    async restart(mode = "immediate") {
      await asPostgresAsync("pg_ctl", ["-D", data, "-m", mode, "-w", "stop"]);
      await asPostgresAsync("pg_ctl", ["-D", data, "-o", settings, "-w", "-l", join(dir, "log"), "start"]);
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
