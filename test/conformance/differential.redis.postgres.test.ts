// Differential test of the three adapters: for each fixed seed, one generated sequence of port
// operations (differential-model.ts) runs on a fresh SQLite (in memory), PostgreSQL (own schema)
// and Redis (own key prefix) backend with the same ids and clock; every answer, and regularly every
// job record, count and event feed, must be the same on all three. A failure names the seed, the
// step, the operation and what each backend returned; the seed replays the same steps.
import { describe, it } from "node:test";
import type { Backend } from "../../src/backend/backend.ts";
import { openBackend } from "../../src/backend/open.ts";
import { SqliteBackend } from "../../src/backend/sqlite/sqlite-backend.ts";
import { openIsolated } from "../backends/postgres-helpers.ts";
import { isolatedRedisUrl } from "../support/isolated-urls.ts";
import { Divergence, type Replica, generateOps, runDifferential } from "./differential-model.ts";

/** Fixed seeds, so every run checks the same sequences; add one that found a bug to keep it found. */
const SEEDS = [1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610, 987, 1597] as const;
const STEPS = 150;
/**
 * Stored state is compared every few steps rather than after each: one comparison reads every job
 * and its events from all three backends, and costs more than the steps between two of them.
 */
const COMPARE_EVERY = 4;

/** Runs `body` on a fresh backend of each kind, then closes them and removes what they stored. */
async function withFreshBackends(body: (replicas: Replica[]) => Promise<void>): Promise<void> {
  const redis = await isolatedRedisUrl("diff");
  const opened: Backend[] = [];
  const open = <B extends Backend>(backend: B): B => {
    opened.push(backend);
    return backend;
  };
  try {
    await body([
      { name: "sqlite", backend: open(new SqliteBackend({ path: ":memory:" })) },
      { name: "postgres", backend: open(await openIsolated()) }, // drops its schema when closed
      { name: "redis", backend: open(await openBackend(redis.url)) },
    ]);
  } finally {
    const closed = await Promise.allSettled(opened.map((b) => b.close()));
    await redis.cleanup();
    const failed = closed.find((r) => r.status === "rejected");
    if (failed) throw failed.reason;
  }
}

describe("differential: SQLite, PostgreSQL and Redis agree step by step", () => {
  for (const seed of SEEDS) {
    it(`seed ${seed} (${STEPS} steps)`, async () => {
      await withFreshBackends(async (replicas) => {
        try {
          await runDifferential(replicas, generateOps(seed, STEPS), { compareEvery: COMPARE_EVERY });
        } catch (error) {
          // The seed leads the message: it is what reruns the same steps.
          if (error instanceof Divergence) error.message = `seed ${seed}, ${error.message}`;
          throw error;
        }
      });
    });
  }
});
