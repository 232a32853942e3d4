// Decoding helpers every adapter shares when it turns stored data back into port types: the
// attempt-error history (stored as JSON) and per-queue counts (stored as rows or counters).
import type { AttemptError, JobState } from "../core/job.ts";
import { JOB_STATES } from "../core/job.ts";
import type { QueueCounts } from "./backend.ts";

/** The attempt errors in a parsed JSON array; fields of the wrong type fall back to neutral values. */
export function attemptErrors(parsed: unknown): AttemptError[] {
  if (!Array.isArray(parsed)) return [];
  return parsed.map((e: Record<string, unknown>) => ({
    attempt: typeof e["attempt"] === "number" ? e["attempt"] : 0,
    message: typeof e["message"] === "string" ? e["message"] : "",
    name: typeof e["name"] === "string" ? e["name"] : "Error",
    stack: typeof e["stack"] === "string" ? e["stack"] : undefined,
    worker: typeof e["worker"] === "string" ? e["worker"] : undefined,
    at: typeof e["at"] === "number" ? e["at"] : 0,
  }));
}

export function zeroCounts(): Record<JobState, number> {
  return Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
}

/** Per-queue counts from (queue, state, count, oldest queued run time) rows, sorted by queue. */
export function countsFromRows(rows: Iterable<{ queue: string; state: string; n: number; oldest: number | undefined }>): QueueCounts[] {
  const byQueue = new Map<string, { counts: Record<JobState, number>; oldest: number | undefined }>();
  for (const row of rows) {
    let entry = byQueue.get(row.queue);
    if (!entry) {
      entry = { counts: zeroCounts(), oldest: undefined };
      byQueue.set(row.queue, entry);
    }
    entry.counts[row.state as JobState] = row.n;
    if (row.oldest !== undefined) entry.oldest = row.oldest;
  }
  return [...byQueue.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([queue, e]) => ({ queue, counts: e.counts, oldestQueuedAt: e.oldest }));
}
