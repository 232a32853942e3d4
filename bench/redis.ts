// Redis benchmark: Offload, BullMQ and bee-queue in one run, on the same server, with the same N
// and concurrency, measured the same way (bench/offload-suite.ts; peers in bench/redis-peers.ts).
// Each system gets its own key prefix, deleted afterwards.
//   npm run bench -- --backend redis [--n 20000] [--rounds 3] [--url redis://127.0.0.1:6379] [--only offload,bullmq]
import { Redis } from "ioredis";
import { unlinkMatching } from "../test/backends/redis-helpers.ts";
import { randomToken } from "../src/core/ids.ts";
import { measureOffload } from "./offload-suite.ts";
import { interleavedRounds, option, printRounds } from "./measure.ts";
import { type RedisPeer, measureRedisPeer } from "./redis-peers.ts";

const SYSTEMS = ["offload", "bullmq", "bee-queue"] as const;

/** Deletes every key that matches `pattern` (a SCAN pattern), without blocking the server. */
async function deleteKeys(url: string, pattern: string): Promise<void> {
  const admin = new Redis(url);
  try {
    await unlinkMatching(admin, pattern);
  } finally {
    await admin.quit();
  }
}

export async function main(args: string[]): Promise<void> {
  const n = Number(option(args, "n", "20000"));
  const url = option(args, "url", process.env["OFFLOAD_BENCH_REDIS_URL"] ?? "redis://127.0.0.1:6379");
  const only = option(args, "only", "").split(",").filter((s) => s !== "");
  const systems = SYSTEMS.filter((s) => only.length === 0 || only.some((o) => s.startsWith(o)));
  const rounds = Number(option(args, "rounds", "1"));
  const run = `bench-${randomToken().slice(0, 6)}`;
  console.log(`Redis benchmark: N = ${n}, concurrency 1 and 50, ${rounds} round(s), node ${process.version}, ${new URL(url).host}, key prefix ${run}`);
  const all = await interleavedRounds(systems, rounds, async (system, round) => {
    const prefix = `${run}-${system}-${round}`;
    try {
      return system === "offload"
        ? await measureOffload(`${url}?prefix=${prefix}`, n)
        : await measureRedisPeer(system satisfies RedisPeer, url, prefix, n);
    } finally {
      await deleteKeys(url, system === "offload" ? `{${prefix}}:*` : `${prefix}*`);
    }
  });
  printRounds("Offload on Redis vs BullMQ and bee-queue (same server, same run)", systems, all);
}
