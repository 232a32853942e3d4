// Rows read back from SQLite are checked as they become JobRecords: a row that does not fit is a
// corrupted store, and we say so instead of passing `unknown` data on as typed.
import { decodeJson } from "../../core/json.ts";
import { attemptErrors } from "../decode.ts";
import { type AttemptError, type JobRecord, isJobState } from "../../core/job.ts";
import type { JobEvent, JobEventType } from "../backend.ts";

export type Row = Record<string, unknown>;

function text(row: Row, column: string): string {
  const value = row[column];
  if (typeof value !== "string") throw new Error(`offload_jobs.${column}: expected text, got ${typeof value}`);
  return value;
}

function optionalText(row: Row, column: string): string | undefined {
  const value = row[column];
  return typeof value === "string" ? value : undefined;
}

function int(row: Row, column: string): number {
  const value = row[column];
  if (typeof value !== "number") throw new Error(`offload_jobs.${column}: expected a number, got ${typeof value}`);
  return value;
}

function optionalInt(row: Row, column: string): number | undefined {
  const value = row[column];
  return typeof value === "number" ? value : undefined;
}


function errorsColumn(json: string): AttemptError[] {
  return json === "[]" ? [] : attemptErrors(decodeJson(json)); // "[]" is the common case, on the claim hot path
}

export function toJobRecord(row: Row): JobRecord {
  const state = text(row, "state");
  if (!isJobState(state)) throw new Error(`offload_jobs.state: unknown state ${state}`);
  const progress = row["progress"];
  return {
    id: text(row, "id"),
    task: text(row, "task"),
    queue: text(row, "queue"),
    state,
    payload: decodeJson(text(row, "payload")),
    priority: int(row, "priority"),
    runAt: int(row, "run_at"),
    attempt: int(row, "attempt"),
    maxAttempts: int(row, "max_attempts"),
    key: optionalText(row, "key"),
    worker: optionalText(row, "worker"),
    leaseUntil: optionalInt(row, "lease_until"),
    cancelRequested: row["cancel_requested"] === 1,
    progress: typeof progress === "number" ? progress : undefined,
    progressMessage: optionalText(row, "progress_message"),
    result: decodeJson(optionalText(row, "result")),
    errors: errorsColumn(text(row, "errors")),
    owner: optionalText(row, "owner"),
    createdAt: int(row, "created_at"),
    startedAt: optionalInt(row, "started_at"),
    finishedAt: optionalInt(row, "finished_at"),
    expiresAt: undefined,
  };
}

const EVENT_TYPES: readonly string[] = ["state", "progress", "log"];

export function toJobEvent(row: Row): JobEvent {
  const type = text(row, "type");
  if (!EVENT_TYPES.includes(type)) throw new Error(`offload_events.type: unknown type ${type}`);
  const data = decodeJson(text(row, "data"));
  return {
    id: int(row, "id"),
    jobId: text(row, "job_id"),
    type: type as JobEventType,
    data: typeof data === "object" && data !== null ? (data as Record<string, unknown>) : {},
    at: int(row, "at"),
  };
}
