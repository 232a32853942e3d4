// Rows read back from SQLite are checked as they become JobRecords: a row that does not fit is a
// corrupted store, and we say so instead of passing `unknown` data on as typed.
import { decodeJson } from "../../core/json.ts";
import { type JobFieldReader, attemptErrors, jobEventFrom, jobRecordFrom } from "../decode.ts";
import type { AttemptError, JobRecord } from "../../core/job.ts";
import type { JobEvent } from "../backend.ts";

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

const SQLITE_FIELDS: JobFieldReader<Row> = {
  where: "offload_jobs",
  text,
  optionalText,
  int,
  optionalNumber: optionalInt,
  json: (row, column) => decodeJson(optionalText(row, column)),
  cancelRequested: (row) => row["cancel_requested"] === 1,
  errors: (row) => errorsColumn(text(row, "errors")),
};

export function toJobRecord(row: Row): JobRecord {
  return jobRecordFrom(row, SQLITE_FIELDS);
}

export function toJobEvent(row: Row): JobEvent {
  return jobEventFrom(row, SQLITE_FIELDS, "offload_events");
}
