// One Offload drain on PostgreSQL, with what the server spent on it: jobs/s, the CPU of every
// postgres process per job, and the machine's CPU per job. For working on the drain path;
// `npm run bench -- --backend postgres` is the comparison with the peers. Linux only (/proc).
//   node bench/postgres-drain.ts [--n 20000] [--concurrency 50] [--url postgres://postgres@127.0.0.1:5432/test]
// Works in a schema of its own, dropped afterwards.
import { readdirSync, readFileSync } from "node:fs";
import pg from "pg";
import { Offload } from "../src/index.ts";
import { randomToken } from "../src/core/ids.ts";
import { drainInChild, machineBusySeconds, option } from "./measure.ts";

const args = process.argv.slice(2);
const n = Number(option(args, "n", "20000"));
const concurrency = option(args, "concurrency", "50");
const server = option(args, "url", "postgres://postgres@127.0.0.1:5432/test");
const schema = `bench_drain_${randomToken().slice(0, 6).toLowerCase()}`;
const url = `${server}?schema=${schema}`;

/**
 * CPU seconds (user + system) of every process whose command is `postgres`, and of the ones that
 * have ended: the server reaps its backends, so their time is in its children's time.
 */
function postgresCpuSeconds(): number {
  let ticks = 0;
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const close = stat.lastIndexOf(")");
      if (!stat.slice(stat.indexOf("(") + 1, close).startsWith("postgres")) continue;
      const fields = stat.slice(close + 2).split(" ");
      ticks += Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]); // utime, stime, cutime, cstime
    } catch {
      // the process ended meanwhile
    }
  }
  return ticks / 100; // USER_HZ on Linux
}

const offload = new Offload({ backend: url });
try {
  const noop = offload.task({ name: "bench.noop", run: () => null });
  for (let i = 0; i < n; i += 1_000) {
    await noop.enqueueMany(Array.from({ length: Math.min(1_000, n - i) }, (_, k) => ({ i: i + k })), { queue: "drain" });
  }
  const pgBefore = postgresCpuSeconds();
  const machineBefore = machineBusySeconds();
  const { rate } = await drainInChild(new URL("./offload-child.ts", import.meta.url), [url, "drain", "drain", concurrency, String(n)]);
  const perJob = (seconds: number): string => `${((seconds * 1e6) / n).toFixed(1)} µs/job`;
  console.log(`drain c=${concurrency}: ${rate} jobs/s; PostgreSQL CPU ${perJob(postgresCpuSeconds() - pgBefore)}; machine CPU ${perJob(machineBusySeconds() - machineBefore)} (includes the worker's start-up)`);
} finally {
  await offload.close();
  const admin = new pg.Client({ connectionString: server });
  await admin.connect();
  await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await admin.end();
}
