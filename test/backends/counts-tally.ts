// What the counts tests of each SQL backend share: counts() as a tally to compare with a scan of
// the jobs table, and a quick way to retain many finished jobs.
import type { Backend } from "../../src/backend/backend.ts";
import { LEASE, newJob } from "../conformance/fixtures.ts";

/** "queue/state" → jobs. */
export type Tally = Record<string, number>;

/** What counts() says, as a tally (states with no job left out). */
export async function counted(backend: Backend): Promise<Tally> {
  const out: Tally = {};
  for (const q of await backend.counts()) {
    for (const [state, n] of Object.entries(q.counts)) if (n !== 0) out[`${q.queue}/${state}`] = n;
  }
  return out;
}

/** Enqueues, claims and completes `n` jobs of `queue`, a thousand at a time. */
export async function finishMany(backend: Backend, queue: string, n: number, now: number): Promise<void> {
  for (let i = 0; i < n; i += 1_000) {
    const jobs = Array.from({ length: Math.min(1_000, n - i) }, () => newJob({ queue }));
    await backend.enqueue({ jobs, now });
    const claimed = await backend.claim({ queues: [queue], limit: jobs.length, worker: "w", leaseMs: LEASE, now });
    await backend.complete(claimed.map((c) => ({ id: c.job.id, token: c.token, resultJson: "null" })), now);
  }
}
