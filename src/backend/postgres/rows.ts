// Rows read back from PostgreSQL are checked as they become JobRecords. Our own pool returns
// bigints as numbers and json as text (see connection.ts); rows read through a caller's
// transaction come from whatever driver they use, so numbers may arrive as strings and JSON
// columns are cast to text in those queries. Both shapes are accepted here, nothing else.
import { decodeJson } from "../../core/json.ts";
import { type JobFieldReader, attemptErrors, jobEventFrom, jobRecordFrom } from "../decode.ts";
import type { JobRecord } from "../../core/job.ts";
import type { JobEvent } from "../backend.ts";

export type Row = Record<string, unknown>;

function text(row: Row, column: string): string {
  const value = row[column];
  if (typeof value !== "string") throw new Error(`offload jobs.${column}: expected text, got ${typeof value}`);
  return value;
}

function optionalText(row: Row, column: string): string | undefined {
  const value = row[column];
  return typeof value === "string" ? value : undefined;
}

function toNumber(value: unknown): number | undefined {
  if (typeof value === "number") return value;
  if (typeof value === "bigint") return Number(value);
  if (typeof value === "string" && value.trim() !== "" && Number.isFinite(Number(value))) return Number(value);
  return undefined;
}

function int(row: Row, column: string): number {
  const value = toNumber(row[column]);
  if (value === undefined) throw new Error(`offload jobs.${column}: expected a number, got ${typeof row[column]}`);
  return value;
}

function optionalInt(row: Row, column: string): number | undefined {
  return row[column] === null ? undefined : toNumber(row[column]);
}

/** A json/jsonb column: text from our queries, or an already parsed value from a foreign driver. */
function json(row: Row, column: string): unknown {
  const value = row[column];
  if (value === null || value === undefined) return undefined;
  return typeof value === "string" ? decodeJson(value) : value;
}


const POSTGRES_FIELDS: JobFieldReader<Row> = {
  where: "offload jobs",
  text,
  optionalText,
  int,
  optionalNumber: optionalInt,
  json,
  cancelRequested: (row) => row["cancel_requested"] === true,
  errors: (row) => attemptErrors(json(row, "errors")),
};

export function toJobRecord(row: Row): JobRecord {
  return jobRecordFrom(row, POSTGRES_FIELDS);
}

export function toJobEvent(row: Row): JobEvent {
  return jobEventFrom(row, POSTGRES_FIELDS, "offload events");
}

/** A text[] column as pg decodes it (an array of strings); anything else is no strings. */
export function textArray(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === "string") : [];
}
