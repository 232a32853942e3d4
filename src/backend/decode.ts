// Decoding every adapter shares when it turns stored data back into port types: the job record
// (one field list for all stores), the attempt-error history, and per-queue counts.
import type { AttemptError, JobRecord, JobState } from "../core/job.ts";
import { JOB_STATES, isJobState } from "../core/job.ts";
import type { JobEvent, JobEventType, JobPeek, QueueCounts } from "./backend.ts";

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

/** One peekJobs() answer from stored values, checked as a record's are. */
export function jobPeek(where: string, id: unknown, state: unknown, lastEvent: unknown): JobPeek {
  if (!isJobState(state)) throw new Error(`${where}.state: unknown state ${String(state)}`);
  const lastEventId = Number(lastEvent ?? 0);
  if (!Number.isSafeInteger(lastEventId) || lastEventId < 0) throw new Error(`${where}: newest event id ${String(lastEvent)} is not an id`);
  return { id: String(id), state, lastEventId };
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

/**
 * How one store reads a stored job's fields. Stores differ only in this (SQLite returns typed
 * values, PostgreSQL bigints as text, Redis every field as a string); the field list itself
 * lives once, in jobRecordFrom. Stateless, so no object is made per row on the claim path.
 */
export interface JobFieldReader<R> {
  /** Names the store in error messages, e.g. "offload_jobs". */
  readonly where: string;
  text(row: R, field: string): string;
  optionalText(row: R, field: string): string | undefined;
  int(row: R, field: string): number;
  optionalNumber(row: R, field: string): number | undefined;
  json(row: R, field: string): unknown;
  cancelRequested(row: R): boolean;
  errors(row: R): AttemptError[];
}

/** A stored job as a JobRecord; a row that does not fit is reported as a corrupted store. */
export function jobRecordFrom<R>(row: R, read: JobFieldReader<R>): JobRecord {
  const state = read.text(row, "state");
  if (!isJobState(state)) throw new Error(`${read.where}.state: unknown state ${state}`);
  return {
    id: read.text(row, "id"),
    task: read.text(row, "task"),
    queue: read.text(row, "queue"),
    state,
    payload: read.json(row, "payload"),
    priority: read.int(row, "priority"),
    runAt: read.int(row, "run_at"),
    attempt: read.int(row, "attempt"),
    maxAttempts: read.int(row, "max_attempts"),
    key: read.optionalText(row, "key"),
    worker: read.optionalText(row, "worker"),
    leaseUntil: read.optionalNumber(row, "lease_until"),
    cancelRequested: read.cancelRequested(row),
    progress: read.optionalNumber(row, "progress"),
    progressMessage: read.optionalText(row, "progress_message"),
    result: read.json(row, "result"),
    errors: read.errors(row),
    owner: read.optionalText(row, "owner"),
    createdAt: read.int(row, "created_at"),
    startedAt: read.optionalNumber(row, "started_at"),
    finishedAt: read.optionalNumber(row, "finished_at"),
    expiresAt: undefined,
  };
}

const EVENT_TYPES: readonly string[] = ["state", "progress", "log"] satisfies JobEventType[];

export function isJobEventType(type: string): type is JobEventType {
  return EVENT_TYPES.includes(type);
}

/** An event's data: the stored JSON object, or {} for anything else. */
export function eventData(data: unknown): Record<string, unknown> {
  return typeof data === "object" && data !== null && !Array.isArray(data) ? (data as Record<string, unknown>) : {};
}

/** A stored event row (id, job_id, type, data, at) as a JobEvent; a row that does not fit is a corrupted store. */
export function jobEventFrom<R>(row: R, read: JobFieldReader<R>, where: string): JobEvent {
  const type = read.text(row, "type");
  if (!isJobEventType(type)) throw new Error(`${where}.type: unknown type ${type}`);
  return { id: read.int(row, "id"), jobId: read.text(row, "job_id"), type, data: eventData(read.json(row, "data")), at: read.int(row, "at") };
}
