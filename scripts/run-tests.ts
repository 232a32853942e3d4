// `npm test`: runs every test file with node's own runner. Suites that need Redis or PostgreSQL
// run when the server answers, and those that start a PgBouncer when its program is installed; on
// a laptop without them, the rest still runs and the suites that could not are named. With
// OFFLOAD_REQUIRE_BACKENDS=1 (CI) a missing server or program is a failure.
import { spawnSync } from "node:child_process";
import { existsSync, globSync } from "node:fs";
import { connect } from "node:net";

interface Service {
  readonly name: string;
  /** Test files whose name contains this marker need the service. */
  readonly marker: string;
  readonly host: string;
  readonly port: number;
}

const services: Service[] = [
  { name: "Redis", marker: ".redis.", ...hostPort(process.env["OFFLOAD_TEST_REDIS_URL"] ?? "redis://127.0.0.1:6379", 6379) },
  { name: "PostgreSQL", marker: ".postgres.", ...hostPort(process.env["OFFLOAD_TEST_POSTGRES_URL"] ?? "postgres://127.0.0.1:5432/test", 5432) },
];

/** Programs some suites start themselves (test files whose name contains the marker). */
const programs = [
  { name: "PgBouncer", marker: "pgbouncer.", path: process.env["OFFLOAD_TEST_PGBOUNCER"] ?? "/usr/sbin/pgbouncer", install: "apt-get install pgbouncer" },
];

function hostPort(url: string, defaultPort: number): { host: string; port: number } {
  const parsed = new URL(url);
  return { host: parsed.hostname || "127.0.0.1", port: Number(parsed.port || defaultPort) };
}

function reachable(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 1_000 });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("timeout", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", () => resolve(false));
  });
}

const only = process.argv.slice(2);
const all = (only.length ? only : globSync("test/**/*.test.ts")).sort();
const required = process.env["OFFLOAD_REQUIRE_BACKENDS"] === "1";
const notRun: string[] = [];
let files = all;
for (const service of services) {
  const needing = all.filter((f) => f.includes(service.marker));
  if (needing.length === 0) continue;
  if (await reachable(service.host, service.port)) continue;
  const message = `${service.name} at ${service.host}:${service.port} is unreachable: not run: ${needing.join(", ")}`;
  if (required) {
    console.error(`error: ${message} (OFFLOAD_REQUIRE_BACKENDS=1)`);
    process.exit(1);
  }
  notRun.push(message);
  files = files.filter((f) => !needing.includes(f));
}

for (const program of programs) {
  const needing = files.filter((f) => f.includes(program.marker));
  if (needing.length === 0 || existsSync(program.path)) continue;
  const message = `${program.name} is not installed (${program.path}; ${program.install}): not run: ${needing.join(", ")}`;
  if (required) {
    console.error(`error: ${message} (OFFLOAD_REQUIRE_BACKENDS=1)`);
    process.exit(1);
  }
  notRun.push(message);
  files = files.filter((f) => !needing.includes(f));
}

// --test-force-exit: a test file that leaks a handle (a client reconnecting to a server its test
// already stopped) ends with its last test instead of hanging the whole run. Leaks stay bugs;
// this keeps one from costing a CI run.
const result = spawnSync(
  process.execPath,
  ["--test", "--test-reporter=spec", "--test-concurrency=2", "--test-timeout=120000", "--test-force-exit", ...files],
  { stdio: "inherit" },
);
for (const message of notRun) console.log(`\nnote: ${message}`);
process.exit(result.status ?? 1);
