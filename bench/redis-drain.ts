// One Offload drain on Redis, with what the server spent on it: jobs/s, Redis CPU per job, and
// the time per job of each command the scripts called (INFO commandstats). For working on the
// drain path; `npm run bench -- --backend redis` is the comparison with the peers.
//   node bench/redis-drain.ts [--n 20000] [--concurrency 50] [--url redis://127.0.0.1:6379]
// Resets the server's command statistics (CONFIG RESETSTAT); deletes only its own keys.
import { Redis } from "ioredis";
import { unlinkMatching } from "../test/backends/redis-helpers.ts";
import { Offload } from "../src/index.ts";
import { randomToken } from "../src/core/ids.ts";
import { drainInChild, machineBusySeconds, option } from "./measure.ts";

const args = process.argv.slice(2);
const n = Number(option(args, "n", "20000"));
const concurrency = option(args, "concurrency", "50");
const server = option(args, "url", "redis://127.0.0.1:6379");
const prefix = `bench-drain-${randomToken().slice(0, 6)}`;
const url = `${server}?prefix=${prefix}`;

async function cpuSeconds(admin: Redis): Promise<number> {
  const info = await admin.info("cpu");
  const read = (name: string): number => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? Number.NaN);
  return read("used_cpu_user") + read("used_cpu_sys");
}

const offload = new Offload({ backend: url });
const admin = new Redis(server);
try {
  const noop = offload.task({ name: "bench.noop", run: () => null });
  for (let i = 0; i < n; i += 1_000) {
    await noop.enqueueMany(Array.from({ length: Math.min(1_000, n - i) }, (_, k) => ({ i: i + k })), { queue: "drain" });
  }
  await admin.config("RESETSTAT");
  const before = await cpuSeconds(admin);
  const machineBefore = machineBusySeconds();
  const { rate } = await drainInChild(new URL("./offload-child.ts", import.meta.url), [url, "drain", "drain", concurrency, String(n)]);
  const spent = (await cpuSeconds(admin)) - before;
  const machine = machineBusySeconds() - machineBefore;
  console.log(`drain c=${concurrency}: ${rate} jobs/s; Redis CPU ${((spent * 1e6) / n).toFixed(1)} µs/job; machine CPU ${((machine * 1e6) / n).toFixed(1)} µs/job (includes the worker's start-up)`);
  for (const line of (await admin.info("commandstats")).split("\n")) {
    const m = /cmdstat_(\w+):calls=(\d+),usec=(\d+)/.exec(line);
    if (!m || Number(m[3]) / n < 0.05) continue;
    console.log(`  ${m[1]}: ${m[2]} calls, ${(Number(m[3]) / n).toFixed(1)} µs/job`);
  }
} finally {
  await offload.close();
  await unlinkMatching(admin, `{${prefix}}:*`);
  await admin.quit();
}
